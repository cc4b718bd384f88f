"""The audit log: what each change records, and how it is read back."""

from datetime import UTC, datetime, timedelta

import pytest

from core import SOURCES, ValidationError, create_purchase, get_audit_log, remove_purchase
from tests.conftest import snapshot


def test_grant_and_revoke_record_who_what_and_why(db, catalog):
    user, course, test = catalog["user"], catalog["courses"][0], catalog["tests"][0]
    create_purchase(db, user, course, None, {"amount": 29.99, "paymentMethod": "paypal", "actor": "ann@example.com",
                                              "idempotencyKey": "form-1", "discountCode": "SPRING"},
                    source="admin", note="conference speaker")
    create_purchase(db, user, None, test, {"amount": 9.99, "paymentMethod": "stripe"})
    remove_purchase(db, user, course, actor="bob@example.com", reason="refund", source="admin", note="asked twice")
    revoke, api, grant = get_audit_log(db)
    assert (grant["action"], grant["source"], grant["actor"], grant["note"]) == (
        "grant", "admin", "ann@example.com", "conference speaker")
    assert (grant["user"], grant["item"], grant["kind"], grant["title"], grant["userName"]) == (
        user, course, "course", "Course 0", "Ada")
    assert (grant["amount"], grant["paymentMethod"], grant["idempotencyKey"], grant["discountCode"]) == (
        29.99, "paypal", "form-1", "SPRING")
    assert (api["source"], api["actor"], api["item"]) == ("api", None, test)
    assert (revoke["action"], revoke["actor"], revoke["reason"], revoke["note"], revoke["purchase"]) == (
        "revoke", "bob@example.com", "refund", "asked twice", grant["purchase"])
    assert revoke["at"] >= grant["at"] and revoke["at"].tzinfo is not None


def test_a_replay_writes_no_second_entry(db, catalog):
    user, course = catalog["user"], catalog["courses"][0]
    for _ in range(3):
        create_purchase(db, user, course, None, {"amount": 5, "paymentMethod": "paypal", "idempotencyKey": "k"})
    assert len(get_audit_log(db)) == 1


def test_filters(db, catalog):
    user, other, (c0, c1) = catalog["user"], catalog["other_user"], catalog["courses"]
    create_purchase(db, user, c0, None, {"amount": 1, "paymentMethod": "paypal", "actor": "ann"}, source="admin")
    create_purchase(db, other, c0, None, {"amount": 2, "paymentMethod": "paypal", "actor": "bob"}, source="bulk")
    create_purchase(db, other, c1, None, {"amount": 3, "paymentMethod": "paypal", "actor": "ann"}, source="admin")
    assert [e["amount"] for e in get_audit_log(db, {"actor": "ann"})] == [3, 1]
    assert [e["amount"] for e in get_audit_log(db, {"user": str(other)})] == [3, 2]
    assert [e["amount"] for e in get_audit_log(db, {"item": c0})] == [2, 1]
    assert [e["amount"] for e in get_audit_log(db, {"source": "bulk"})] == [2]
    assert [e["amount"] for e in get_audit_log(db, {"limit": 1, "skip": 1})] == [2]
    today = datetime.now(UTC).date()
    assert len(get_audit_log(db, {"startDate": today.isoformat(), "endDate": today.isoformat()})) == 3
    assert get_audit_log(db, {"endDate": (today - timedelta(days=1)).isoformat()}) == []


@pytest.mark.parametrize(("filters", "message"), [
    ({"who": "ann"}, "unknown audit filters"),
    ({"user": "nope"}, "user must be an ObjectId"),
    ({"source": "cron"}, "source must be one of"),
    ({"limit": 0}, "limit must be"),
    ({"actor": {"$ne": None}}, "actor must be a string"),
])
def test_bad_filters_are_refused(db, filters, message):
    with pytest.raises(ValidationError, match=message):
        get_audit_log(db, filters)


def test_an_unknown_source_is_refused_before_anything_is_written(db, catalog):
    before = snapshot(db)
    with pytest.raises(ValidationError, match="source must be one of"):
        create_purchase(db, catalog["user"], catalog["courses"][0], None, {"amount": 1, "paymentMethod": "paypal"},
                        source="cron")
    assert snapshot(db) == before and "admin" in SOURCES
