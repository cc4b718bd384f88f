"""A transaction that fails halfway leaves nothing behind; concurrent grants stay consistent."""

import random
import threading

import pytest
from bson import ObjectId
from pymongo.errors import OperationFailure

from core import AlreadyPurchasedError, NotPurchasedError, create_purchase, remove_purchase
from core.operations import check_consistency
from core.storage.schema import AUDIT, COURSES, IDEMPOTENCY, PURCHASES, REVOKED
from tests.conftest import owned, snapshot
from tests.test_failpoints import fail_point

CARD = {"amount": 29.99, "paymentMethod": "credit_card"}


def test_create_rolls_back_the_purchase_when_the_user_update_fails(db, catalog):
    user, course = catalog["user"], catalog["courses"][0]
    before = snapshot(db)
    # The database itself refuses the second write (the user's update, after the purchase's insert)
    with fail_point(db, ["update"], 1, {"errorCode": 2}), pytest.raises(OperationFailure) as refused:
        create_purchase(db, user, course, None, {**CARD, "idempotencyKey": "evt_1"})
    assert refused.value.code == 2  # BadValue, not retried: the whole transaction is undone
    assert snapshot(db) == before
    assert db[PURCHASES].count_documents({}) == 0 and db[IDEMPOTENCY].count_documents({}) == 0


def test_remove_rolls_back_when_the_revoked_record_cannot_be_written(db, catalog):
    user, course = catalog["user"], catalog["courses"][0]
    purchase = create_purchase(db, user, course, None, CARD)
    # The third write (keeping the revoked record) fails: its _id is taken already.
    db[REVOKED].insert_one({"_id": purchase["_id"], "note": "left over"})
    before = snapshot(db)
    with pytest.raises(RuntimeError, match="already holds a document"):
        remove_purchase(db, user, course)
    assert snapshot(db) == before
    assert owned(db, user, "course") == [course]
    assert db[PURCHASES].find_one({"_id": purchase["_id"]}) == purchase


def test_eight_threads_granting_and_revoking_overlapping_pairs(db, catalog):
    users = [catalog["user"], catalog["other_user"]]
    items = [("course", c) for c in catalog["courses"]] + [("test", t) for t in catalog["tests"]]
    unexpected, granted, revoked = [], [], []

    def worker(seed: int):
        rng = random.Random(seed)
        for _ in range(12):
            user = rng.choice(users)
            kind, item = rng.choice(items)
            ids = (item, None) if kind == "course" else (None, item)
            try:
                if rng.random() < 0.6:
                    granted.append(create_purchase(db, user, *ids, CARD)["_id"])
                else:
                    revoked.append(remove_purchase(db, user, *ids, actor=f"thread-{seed}")["_id"])
            except (AlreadyPurchasedError, NotPurchasedError):
                pass  # expected when another thread got there first
            except Exception as error:  # noqa: BLE001 - collected and asserted below
                unexpected.append(repr(error))

    threads = [threading.Thread(target=worker, args=(seed,)) for seed in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert unexpected == []
    assert all(not found for found in check_consistency(db).values())
    for user in users:
        for kind in ("course", "test"):
            array = owned(db, user, kind)
            assert len(array) == len(set(array))
            assert sorted(array) == sorted(p[kind] for p in db[PURCHASES].find({"user": user, kind: {"$exists": True}}))
    # every acknowledged grant is a purchase, active or revoked; every revocation is kept once
    assert granted and revoked
    assert sorted(revoked) == sorted(doc["_id"] for doc in db[REVOKED].find())
    active = sorted(doc["_id"] for doc in db[PURCHASES].find())
    assert sorted(granted) == sorted(active + revoked)
    # and no change without its audit entry, no entry without its change
    entries = list(db[AUDIT].find())
    assert sorted(e["purchase"] for e in entries if e["action"] == "grant") == sorted(granted)
    assert sorted(e["purchase"] for e in entries if e["action"] == "revoke") == sorted(revoked)


@pytest.mark.parametrize("action", ["grant", "revoke"])
def test_no_change_without_its_audit_entry(db, catalog, monkeypatch, action):
    user, course = catalog["user"], catalog["courses"][0]
    if action == "revoke":
        create_purchase(db, user, course, None, CARD)
    # The last write of the transaction, the audit entry, is refused: its _id is taken.
    taken = ObjectId()
    db[AUDIT].insert_one({"_id": taken, "note": "left over"})
    monkeypatch.setattr("core.audit.ObjectId", lambda: taken)
    change = {
        "grant": lambda: create_purchase(db, user, course, None, {**CARD, "idempotencyKey": "evt_9"}),
        "revoke": lambda: remove_purchase(db, user, course, actor="admin@example.com", reason="refund"),
    }[action]
    before = snapshot(db)
    with pytest.raises(RuntimeError, match="audit_log already holds"):
        change()
    assert snapshot(db) == before


def run_at_once(calls):
    """Start every call together; return what each returned or raised."""
    barrier = threading.Barrier(len(calls))
    results = [None] * len(calls)

    def run(index, call):
        barrier.wait()
        try:
            results[index] = call()
        except Exception as error:  # noqa: BLE001 - returned for the assertions
            results[index] = error

    threads = [threading.Thread(target=run, args=(i, c)) for i, c in enumerate(calls)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return results


def test_eight_grants_at_once_all_succeed(db, catalog):
    user = catalog["user"]
    courses = [ObjectId() for _ in range(8)]
    db[COURSES].insert_many([{"_id": c, "title": str(c)} for c in courses])
    results = run_at_once([lambda c=c: create_purchase(db, user, c, None, CARD) for c in courses])
    assert all(isinstance(r, dict) for r in results), results
    assert sorted(owned(db, user, "course")) == sorted(courses)


def test_eight_grants_of_one_item_at_once_make_one_purchase(db, catalog):
    user, course = catalog["user"], catalog["courses"][0]
    results = run_at_once([lambda: create_purchase(db, user, course, None, CARD) for _ in range(8)])
    assert sum(isinstance(r, dict) for r in results) == 1
    assert sum(isinstance(r, AlreadyPurchasedError) for r in results) == 7
    assert db[PURCHASES].count_documents({"user": user}) == 1 and owned(db, user, "course") == [course]
