"""get_purchase_history: order, status, titles, filters and paging."""

from datetime import UTC, datetime, timedelta

import pytest
from bson import ObjectId

from core import UserNotFoundError, ValidationError, create_purchase, get_purchase_history, remove_purchase
from core.purchases.history import parse_history_options

T0 = datetime(2025, 1, 10, 12, tzinfo=UTC)


@pytest.fixture
def bought(db, catalog):
    """Four purchases a day apart (course0, test0, course1, test1), course0 then revoked."""
    user = catalog["user"]
    items = [("course", catalog["courses"][0]), ("test", catalog["tests"][0]),
             ("course", catalog["courses"][1]), ("test", catalog["tests"][1])]
    for day, (kind, item) in enumerate(items):
        data = {"amount": 10 + day, "paymentMethod": "stripe", "purchasedAt": T0 + timedelta(days=day)}
        create_purchase(db, user, item if kind == "course" else None, item if kind == "test" else None, data)
    remove_purchase(db, user, catalog["courses"][0], actor="admin", reason="refund")
    return user


def test_newest_first_with_status_kind_and_title(db, catalog, bought):
    history = get_purchase_history(db, bought)
    assert [h["amount"] for h in history] == [13, 12, 11, 10]
    assert [h["status"] for h in history] == ["active", "active", "active", "revoked"]
    assert [h["kind"] for h in history] == ["test", "course", "test", "course"]
    assert [h["title"] for h in history] == ["Test 1", "Course 1", "Test 0", "Course 0"]
    assert history[-1]["reason"] == "refund"


def test_filters_and_paging(db, catalog, bought):
    assert [h["title"] for h in get_purchase_history(db, bought, {"kind": "course"})] == ["Course 1", "Course 0"]
    assert [h["amount"] for h in get_purchase_history(db, bought, {"includeRevoked": False})] == [13, 12, 11]
    assert [h["amount"] for h in get_purchase_history(db, bought, {"limit": 2, "skip": 1})] == [12, 11]
    # a date-only end includes that whole day
    window = {"startDate": "2025-01-11", "endDate": "2025-01-12"}
    assert [h["amount"] for h in get_purchase_history(db, bought, window)] == [12, 11]
    exact = {"startDate": T0, "endDate": T0 + timedelta(days=1)}
    assert [h["amount"] for h in get_purchase_history(db, bought, exact)] == [11, 10]
    assert get_purchase_history(db, catalog["other_user"]) == []


def test_unknown_user(db, catalog):
    with pytest.raises(UserNotFoundError):
        get_purchase_history(db, ObjectId())


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"kind": "ebook"}, "kind must be"),
        ({"startDate": "2025-13-01"}, "startDate must be"),
        ({"startDate": "2025-02-01", "endDate": "2025-01-01"}, "is before startDate"),
        ({"limit": 0}, "limit must be an integer between 1 and 500"),
        ({"limit": 501}, "limit must be"),
        ({"skip": -1}, "skip must be"),
        ({"includeRevoked": "no"}, "includeRevoked must be"),
        ({"sort": "asc"}, "unknown history options"),
    ],
)
def test_bad_options(options, message):
    with pytest.raises(ValidationError, match=message):
        parse_history_options(options)


def test_a_legacy_purchase_without_a_date_is_listed_last(db, catalog, bought):
    db.purchases.insert_one({"user": bought, "test": catalog["tests"][0], "amount": 1, "paymentMethod": "paypal"})
    history = get_purchase_history(db, bought)
    assert len(history) == 5 and "purchasedAt" not in history[-1]
    assert len(get_purchase_history(db, bought, {"startDate": "2025-01-01"})) == 4
