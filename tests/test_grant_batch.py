"""purchase_items: many grants in one transaction, each answered as create_purchase would
answer it alone, and written exactly as create_purchase writes it."""

from bson import ObjectId

from core import (
    AlreadyPurchasedError,
    GrantRequest,
    IdempotencyConflictError,
    ItemNotFoundError,
    Outcome,
    UserNotFoundError,
    ValidationError,
    create_purchase,
    get_data_version,
    get_recent_activity,
    purchase_items,
)
from core.operations import check_consistency
from core.storage.schema import AUDIT, IDEMPOTENCY, PURCHASES
from tests.conftest import owned, snapshot

CARD = {"amount": 29.99, "paymentMethod": "paypal"}


def test_each_request_gets_what_create_purchase_would_answer(db, catalog):
    user, other = catalog["user"], catalog["other_user"]
    c0, c1 = catalog["courses"]
    t0 = catalog["tests"][0]
    create_purchase(db, other, c1, None, CARD)
    requests = [
        GrantRequest(user, c0, None, {**CARD, "idempotencyKey": "k1"}, note="first"),
        GrantRequest(user, None, t0, CARD),
        GrantRequest(other, c1, None, CARD),  # owned before the batch
        GrantRequest(ObjectId(), c0, None, CARD),  # no such user
        GrantRequest(user, ObjectId(), None, CARD),  # no such course
        GrantRequest(user, None, t0, CARD),  # granted earlier in this batch
        GrantRequest(user, c0, None, {**CARD, "idempotencyKey": "k1"}, note="first"),  # a replay within the batch
        GrantRequest(user, c1, None, {**CARD, "idempotencyKey": "k1"}),  # the key with another item
        GrantRequest(user, c1, None, {"amount": -1, "paymentMethod": "paypal"}),  # refused before the transaction
        GrantRequest(other, c0, None, {**CARD, "idempotencyKey": "k2"}),
    ]
    version = get_data_version(db)

    results = purchase_items(db, requests, source="bulk")

    kinds = [type(r) for r in results]
    assert kinds == [Outcome, Outcome, AlreadyPurchasedError, UserNotFoundError, ItemNotFoundError,
                     AlreadyPurchasedError, Outcome, IdempotencyConflictError, ValidationError, Outcome]
    granted = [results[i].document for i in (0, 1, 9)]
    assert [results[i].replayed for i in (0, 1, 6, 9)] == [False, False, True, False]
    assert results[6].document["_id"] == granted[0]["_id"]
    assert sorted(owned(db, user, "course")) == [c0] and owned(db, user, "test") == [t0]
    assert sorted(owned(db, other, "course")) == sorted([c0, c1])
    assert {p["_id"] for p in db[PURCHASES].find({"_id": {"$in": [g["_id"] for g in granted]}})} == \
        {g["_id"] for g in granted}
    entries = list(db[AUDIT].find({"source": "bulk"}))
    assert sorted(e["purchase"] for e in entries) == sorted(g["_id"] for g in granted)
    assert [e["note"] for e in entries if e["purchase"] == granted[0]["_id"]] == ["first"]
    assert {r["_id"] for r in db[IDEMPOTENCY].find()} == {"k1", "k2"}
    # each grant its own version and feed entry, newest first, as three create_purchase calls
    assert get_data_version(db) == version + 3
    feed = get_recent_activity(db, 3)
    assert [e["purchase"] for e in feed] == [g["_id"] for g in reversed(granted)]
    assert [e["version"] for e in feed] == [version + 3, version + 2, version + 1]
    assert all(not found for found in check_consistency(db).values())


def test_a_key_granted_by_an_earlier_call_is_a_replay(db, catalog):
    first = create_purchase(db, catalog["user"], catalog["courses"][0], None, {**CARD, "idempotencyKey": "evt_1"})
    before = snapshot(db)

    (again,) = purchase_items(db, [GrantRequest(catalog["user"], catalog["courses"][0], None,
                                                {**CARD, "idempotencyKey": "evt_1"})])

    assert again.replayed and again.document == first
    assert snapshot(db) == before


def test_a_batch_with_nothing_to_grant_writes_nothing(db, catalog):
    create_purchase(db, catalog["user"], catalog["courses"][0], None, CARD)
    before = snapshot(db)

    results = purchase_items(db, [GrantRequest(catalog["user"], catalog["courses"][0], None, CARD),
                                  GrantRequest("not an id", catalog["courses"][1], None, CARD)])

    assert [type(r) for r in results] == [AlreadyPurchasedError, ValidationError]
    assert snapshot(db) == before


def test_more_grants_than_the_feed_holds_keep_the_newest(db, catalog):
    users = [ObjectId() for _ in range(60)]
    db["users"].insert_many([{"_id": u, "name": f"U{n}", "purchasedCourses": [], "purchasedTests": []}
                             for n, u in enumerate(users)])

    results = purchase_items(db, [GrantRequest(u, catalog["courses"][0], None, CARD) for u in users])

    assert all(isinstance(r, Outcome) for r in results)
    feed = get_recent_activity(db, 50)
    assert [e["purchase"] for e in feed] == [r.document["_id"] for r in reversed(results)][:50]
    assert all(not found for found in check_consistency(db).values())
