"""create_purchase, remove_purchase and has_purchased against the real database."""

from datetime import UTC, datetime

import pytest
from bson import ObjectId

from core import (
    AlreadyPurchasedError,
    ItemNotFoundError,
    NotPurchasedError,
    UserNotFoundError,
    ValidationError,
    create_purchase,
    has_purchased,
    remove_purchase,
)
from core.storage.schema import IDEMPOTENCY, PURCHASES, REVOKED
from tests.conftest import owned, purchases_of, snapshot

CARD = {"amount": 29.99, "paymentMethod": "credit_card"}


def test_course_purchase_lands_in_both_places(db, catalog):
    user, course = catalog["user"], catalog["courses"][0]
    before = datetime.now(UTC)
    purchase = create_purchase(db, user, course, None, {**CARD, "actor": "checkout"})
    assert db[PURCHASES].find_one({"_id": purchase["_id"]}) == purchase
    assert "test" not in purchase and purchase["course"] == course and purchase["user"] == user
    assert purchase["currency"] == "USD" and purchase["actor"] == "checkout"
    assert before.replace(microsecond=0) <= purchase["purchasedAt"] <= datetime.now(UTC)
    assert owned(db, user, "course") == [course]
    assert owned(db, user, "test") == []


def test_test_purchase_has_no_course_field(db, catalog):
    user, test = catalog["user"], catalog["tests"][0]
    purchase = create_purchase(db, str(user), test_id=str(test), purchase_data={"amount": 9.99, "paymentMethod": "paypal"})
    assert "course" not in db[PURCHASES].find_one({"_id": purchase["_id"]})
    assert db[PURCHASES].count_documents({"course": {"$exists": True}}) == 0
    assert owned(db, user, "test") == [test]


def test_has_purchased_reads_the_user_array(db, catalog):
    user, course, test = catalog["user"], catalog["courses"][0], catalog["tests"][0]
    assert has_purchased(db, user, course) is False
    create_purchase(db, user, course, None, CARD)
    assert has_purchased(db, user, course) is True
    assert has_purchased(db, str(user), str(course)) is True
    assert has_purchased(db, user, None, test) is False
    assert has_purchased(db, catalog["other_user"], course) is False
    with pytest.raises(UserNotFoundError, match="no user with id"):
        has_purchased(db, ObjectId(), course)
    with pytest.raises(ValidationError):
        has_purchased(db, user, course, test)


def test_buying_twice_is_refused_and_writes_nothing(db, catalog):
    user, course = catalog["user"], catalog["courses"][0]
    create_purchase(db, user, course, None, CARD)
    before = snapshot(db)
    with pytest.raises(AlreadyPurchasedError, match=str(course)):
        create_purchase(db, user, course, None, CARD)
    assert snapshot(db) == before


@pytest.mark.parametrize(
    ("who", "what", "error", "message"),
    [
        ("missing", "course", UserNotFoundError, "no user with id"),
        ("user", "missing_course", ItemNotFoundError, "no course with id"),
        ("user", "missing_test", ItemNotFoundError, "no test with id"),
        ("user", "both", ValidationError, "exactly one"),
        ("user", "neither", ValidationError, "exactly one"),
        ("bad", "course", ValidationError, "user_id must be"),
    ],
)
def test_rejected_create_writes_nothing(db, catalog, who, what, error, message):
    user = {"missing": ObjectId(), "user": catalog["user"], "bad": "not-an-id"}[who]
    course, test = {
        "course": (catalog["courses"][0], None),
        "missing_course": (ObjectId(), None),
        "missing_test": (None, ObjectId()),
        "both": (catalog["courses"][0], catalog["tests"][0]),
        "neither": (None, None),
    }[what]
    before = snapshot(db)
    with pytest.raises(error, match=message):
        create_purchase(db, user, course, test, CARD)
    assert snapshot(db) == before


def test_bad_purchase_data_writes_nothing(db, catalog):
    before = snapshot(db)
    with pytest.raises(ValidationError, match="paymentMethod 'cash' is not allowed"):
        create_purchase(db, catalog["user"], catalog["courses"][0], None, {"amount": 5, "paymentMethod": "cash"})
    assert snapshot(db) == before


def test_idempotency_key_replays_the_original(db, catalog):
    user, course = catalog["user"], catalog["courses"][0]
    first = create_purchase(db, user, course, None, {**CARD, "idempotencyKey": "evt_42"})
    before = snapshot(db)
    again = create_purchase(db, user, course, None, {**CARD, "idempotencyKey": "evt_42"})
    assert again == first
    assert snapshot(db) == before
    with pytest.raises(ValidationError, match="evt_42.*already used"):
        create_purchase(db, user, catalog["courses"][1], None, {**CARD, "idempotencyKey": "evt_42"})
    with pytest.raises(ValidationError, match="already used"):
        create_purchase(db, catalog["other_user"], course, None, {**CARD, "idempotencyKey": "evt_42"})
    assert snapshot(db) == before


def test_idempotency_key_after_revocation_does_not_grant_again(db, catalog):
    user, course = catalog["user"], catalog["courses"][0]
    first = create_purchase(db, user, course, None, {**CARD, "idempotencyKey": "evt_7"})
    remove_purchase(db, user, course, actor="support", reason="refund")
    before = snapshot(db)
    with pytest.raises(NotPurchasedError, match=f"granted purchase {first['_id']}, which was revoked .*refund"):
        create_purchase(db, user, course, None, {**CARD, "idempotencyKey": "evt_7"})
    assert snapshot(db) == before
    assert has_purchased(db, user, course) is False


@pytest.mark.parametrize("change", [{"amount": 30}, {"paymentMethod": "paypal"}, {"currency": "EUR"},
                                    {"purchasedAt": datetime(2025, 1, 2, tzinfo=UTC)}])
def test_idempotency_key_with_other_parameters_is_an_error(db, catalog, change):
    user, course = catalog["user"], catalog["courses"][0]
    create_purchase(db, user, course, None, {**CARD, "idempotencyKey": "evt_8"})
    before = snapshot(db)
    with pytest.raises(ValidationError, match=f"already used for another purchase .*differs in {next(iter(change))}"):
        create_purchase(db, user, course, None, {**CARD, "idempotencyKey": "evt_8", **change})
    assert snapshot(db) == before


def test_remove_moves_the_purchase_to_revoked(db, catalog):
    user, course, test = catalog["user"], catalog["courses"][0], catalog["tests"][0]
    purchase = create_purchase(db, user, course, None, CARD)
    create_purchase(db, user, None, test, CARD)
    revoked = remove_purchase(db, user, course, actor="admin@example.com", reason="chargeback")
    assert revoked["_id"] == purchase["_id"]
    assert revoked["revokedBy"] == "admin@example.com" and revoked["reason"] == "chargeback"
    assert revoked["revokedAt"] >= purchase["purchasedAt"]
    assert db[REVOKED].find_one({"_id": purchase["_id"]}) == revoked
    assert db[PURCHASES].find_one({"_id": purchase["_id"]}) is None
    assert owned(db, user, "course") == [] and owned(db, user, "test") == [test]
    assert has_purchased(db, user, course) is False
    # bought again after a refund: a new purchase, the old one stays in revoked
    again = create_purchase(db, user, course, None, CARD)
    assert again["_id"] != purchase["_id"] and has_purchased(db, user, course)


def test_rejected_remove_writes_nothing(db, catalog):
    user, course = catalog["user"], catalog["courses"][0]
    create_purchase(db, catalog["other_user"], course, None, CARD)
    before = snapshot(db)
    with pytest.raises(NotPurchasedError, match="has no purchase of course"):
        remove_purchase(db, user, course)
    with pytest.raises(UserNotFoundError):
        remove_purchase(db, ObjectId(), course)
    with pytest.raises(ValidationError, match="reason must be"):
        remove_purchase(db, catalog["other_user"], course, reason=42)
    assert snapshot(db) == before


def test_remove_of_an_array_only_entry_points_at_repair(db, catalog):
    user, course = catalog["user"], catalog["courses"][0]
    db.users.update_one({"_id": user}, {"$push": {"purchasedCourses": course}})
    with pytest.raises(NotPurchasedError, match="--repair"):
        remove_purchase(db, user, course)


def test_idempotency_records_only_for_keyed_purchases(db, catalog):
    create_purchase(db, catalog["user"], catalog["courses"][0], None, CARD)
    assert db[IDEMPOTENCY].count_documents({}) == 0
    assert len(purchases_of(db, catalog["user"])) == 1
