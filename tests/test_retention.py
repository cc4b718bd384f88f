"""Retention figures: repeat rate, the median of whole days to a second purchase (its middle
ones in two gap bins), lapsed buyers on either side of the 90-day cutoff, revocations."""

from datetime import UTC, datetime, timedelta

from bson import ObjectId

from core import GrantRequest, purchase_items, remove_purchase
from core.analytics.periods import floor
from core.analytics.retention import retention_figures
from core.storage.schema import COURSES, USERS

NOW = datetime.now(UTC)
CUTOFF = floor(NOW, "day") - timedelta(days=90)  # a last purchase before this is lapsed


def shop(db, users: int, courses: int) -> tuple[list, list]:
    people, items = [ObjectId() for _ in range(users)], [ObjectId() for _ in range(courses)]
    db[USERS].insert_many([{"_id": u, "name": "U", "purchasedCourses": [], "purchasedTests": []} for u in people])
    db[COURSES].insert_many([{"_id": c, "title": str(c)} for c in items])
    return people, items


def grant(db, sales: list[tuple]) -> None:
    """(user, course, moment, amount, method) each, in one transaction."""
    results = purchase_items(db, [GrantRequest(user, course, None, {"amount": amount, "paymentMethod": method,
                                                                    "purchasedAt": moment})
                                  for user, course, moment, amount, method in sales])
    assert all(not isinstance(result, Exception) for result in results), results


def test_no_buyers(db):
    assert retention_figures(db, now=NOW) == {"buyers": 0, "repeat_rate": 0.0, "median_days_to_second": None,
                                              "lapsed_90d": 0}


def test_repeat_rate_median_and_lapsed(db):
    (a, b, c, d, e), courses = shop(db, 5, 3)
    start = NOW - timedelta(days=300)
    grant(db, [
        (a, courses[0], start, 10, "stripe"), (a, courses[1], start + timedelta(days=3, hours=23), 10, "stripe"),
        (b, courses[0], start, 5, "paypal"), (b, courses[1], start + timedelta(days=40), 0, "admin_grant"),
        (b, courses[2], NOW - timedelta(days=1), 5, "paypal"),
        (c, courses[0], CUTOFF, 5, "stripe"),  # on the cutoff day's first millisecond: not lapsed
        (d, courses[0], CUTOFF - timedelta(milliseconds=1), 5, "stripe"),  # the day before: lapsed
        (d, courses[1], CUTOFF - timedelta(milliseconds=1), 5, "stripe"),  # the same moment: 0 days
        (e, courses[0], start, 5, "stripe"), (e, courses[1], start + timedelta(days=100), 5, "stripe"),
    ])
    # gaps 3 (a), 40 (b), 0 (d), 100 (e): the middle two, 3 and 40, lie in two bins of 32 days
    assert retention_figures(db, now=NOW) == {"buyers": 5, "repeat_rate": 0.8, "median_days_to_second": 21.5,
                                              "lapsed_90d": 3}  # a, d and e; b bought yesterday, c on the cutoff
    # the filters choose the purchases that count: b's second was free (admin_grant), so paid
    # ones give b the gap to yesterday's, 299 days: 0, 3, 100, 299
    assert retention_figures(db, {"paid": True}, now=NOW) == {
        "buyers": 5, "repeat_rate": 0.8, "median_days_to_second": 51.5, "lapsed_90d": 3}
    assert retention_figures(db, {"paymentMethod": "paypal"}, now=NOW) == {
        "buyers": 1, "repeat_rate": 1.0, "median_days_to_second": 299.0, "lapsed_90d": 0}
    assert retention_figures(db, {"paid": False}, now=NOW)["buyers"] == 1
    assert retention_figures(db, {"kind": "test"}, now=NOW)["buyers"] == 0
    # a day later c lapses too
    assert retention_figures(db, now=NOW + timedelta(days=1))["lapsed_90d"] == 4


def test_a_revocation_changes_the_second_purchase_and_the_last(db):
    (a,), courses = shop(db, 1, 3)
    start = NOW - timedelta(days=200)
    grant(db, [(a, courses[0], start, 5, "stripe"), (a, courses[1], start + timedelta(days=10), 5, "stripe"),
               (a, courses[2], start + timedelta(days=150), 5, "stripe")])
    assert retention_figures(db, now=NOW) == {"buyers": 1, "repeat_rate": 1.0, "median_days_to_second": 10.0,
                                              "lapsed_90d": 0}
    remove_purchase(db, a, courses[1])  # the second: the third becomes it
    assert retention_figures(db, now=NOW)["median_days_to_second"] == 150.0
    remove_purchase(db, a, courses[2])  # the last: only the first is left, 200 days old
    assert retention_figures(db, now=NOW) == {"buyers": 1, "repeat_rate": 0.0, "median_days_to_second": None,
                                              "lapsed_90d": 1}
