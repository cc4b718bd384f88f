"""Demo data: realistic, consistent, and loaded through the bulk path."""

import random
from collections import Counter
from datetime import UTC, datetime, timedelta

import pytest

from core import get_data_version, get_recent_activity
from core.operations import check_consistency, rollup_differences
from core.operations.demo import DAYS, build_demo, is_empty, load_demo
from core.storage.schema import ACTIVITY, COURSES, PURCHASES, TESTS, USERS

NOW = datetime(2026, 6, 15, 10, 30, tzinfo=UTC)


def test_build_demo_keeps_the_hybrid_invariant():
    docs = build_demo(random.Random(1), users=80, items=12, purchases=400, now=NOW)
    assert len(docs[USERS]) == 80 and len(docs[COURSES]) + len(docs[TESTS]) == 12 and len(docs[PURCHASES]) == 400
    pairs = [(p["user"], p.get("course", p.get("test"))) for p in docs[PURCHASES]]
    assert len(pairs) == len(set(pairs))
    arrays = {(u["_id"], i) for u in docs[USERS] for i in u["purchasedCourses"] + u["purchasedTests"]}
    assert arrays == set(pairs)
    times = [p["purchasedAt"] for p in docs[PURCHASES]]
    assert NOW - timedelta(days=DAYS) <= min(times) and max(times) <= NOW
    methods = Counter(p["paymentMethod"] for p in docs[PURCHASES])
    assert set(methods) <= {"credit_card", "paypal", "stripe", "bank_transfer", "admin_grant"}
    assert all(p["amount"] == 0 for p in docs[PURCHASES] if p["paymentMethod"] == "admin_grant")
    assert all(p["amount"] > 0 for p in docs[PURCHASES] if p["paymentMethod"] != "admin_grant")
    assert all(u["email"].endswith("@example.com") and u["name"] for u in docs[USERS])


def test_demo_has_a_daily_and_weekly_rhythm():
    docs = build_demo(random.Random(2), users=600, items=40, purchases=5000, now=NOW)
    hours = Counter(p["purchasedAt"].hour for p in docs[PURCHASES])
    weekdays = Counter(p["purchasedAt"].weekday() for p in docs[PURCHASES])
    assert hours[20] > 3 * hours[3]
    assert weekdays[1] > weekdays[5]


def test_too_many_purchases_for_the_catalog_is_refused():
    with pytest.raises(ValueError, match="need more than"):
        build_demo(random.Random(0), users=2, items=2, purchases=10, now=NOW)


def test_loaded_demo_is_consistent(db):
    assert is_empty(db)
    docs = build_demo(random.Random(3), users=40, items=10, purchases=150, now=NOW)
    counts = load_demo(db, docs)
    stats = counts.pop("rollups")
    assert counts.pop(ACTIVITY) == 50
    feed = get_recent_activity(db, limit=50)
    newest = sorted(docs[PURCHASES], key=lambda p: p["purchasedAt"])[-50:][::-1]
    assert [e["purchase"] for e in feed] == [p["_id"] for p in newest]
    assert feed[0]["version"] == get_data_version(db) and feed[0]["title"] and feed[0]["userName"]
    assert counts == {COURSES: 6, TESTS: 4, PURCHASES: 150, USERS: 40}
    assert 0 < stats <= 150 * 7 and rollup_differences(db) == []
    assert not is_empty(db)
    assert all(not found for found in check_consistency(db).values())
