"""Cohort and retention figures equal a brute-force computation over `purchases` after random
grants, revocations (first purchases included) and a rebuild; the checker sees a tampered cell."""

import contextlib
import statistics
import uuid
from collections import defaultdict
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from bson import ObjectId
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from core import GrantRequest, create_purchase, ensure_indexes, purchase_items, remove_purchase
from core.analytics.cohorts import (
    COHORT_CELLS,
    COHORT_RETENTION,
    buyer_counters,
    cohort_differences,
    cohort_figures,
    sale_of,
)
from core.analytics.periods import floor, step
from core.analytics.retention import retention_figures
from core.analytics.rollups import active_set, set_collection
from core.changes import read_version
from core.errors import AlreadyPurchasedError, NotPurchasedError, ValidationError
from core.operations import check_consistency, rebuild_rollups
from core.storage.documents import utc
from core.storage.schema import COURSES, DATA_VERSION, PURCHASES, TESTS, USERS
from core.validation import parse_date

USERS_N, ITEMS_N = 4, 5  # items 0-2 courses, 3-4 tests
AMOUNTS = [0, 0.01, 0.1, 9.99, 19.99]
METHODS = ["stripe", "paypal", "admin_grant"]


# the brute force: plain Python over the purchases, sharing nothing with core.analytics.cohorts


def brute_cohorts(purchases: list[dict], options: dict, now: datetime) -> dict:
    period = options.get("period", "month")
    start = parse_date(options.get("startDate"), "startDate")
    end = parse_date(options.get("endDate"), "endDate", end=True)
    if start is None:
        last = floor(end - timedelta(milliseconds=1) if end else now, "month")
        months = last.year * 12 + last.month - 1 - 11
        start = datetime(months // 12, months % 12 + 1, 1, tzinfo=UTC)
    cells = defaultdict(lambda: defaultdict(lambda: [set(), Decimal(0)]))  # cohort -> offset -> [buyers, revenue]
    for user, theirs in _by_buyer(purchases, options).items():
        cohort = floor(min(p["purchasedAt"] for p in theirs), period)
        if cohort < floor(start, period) or (end is not None and cohort >= end):
            continue
        for p in theirs:
            offset, bucket = 0, cohort
            while bucket < floor(p["purchasedAt"], period):
                offset, bucket = offset + 1, step(bucket, period)
            cells[cohort][offset][0].add(user)
            cells[cohort][offset][1] += Decimal(repr(p["amount"]))
    return {"period": period, "cohorts": [
        {"cohort": cohort, "buyers": len(offsets[0][0]),
         "periods": [{"offset": o, "buyers": len(b), "revenue": float(r)} for o, (b, r) in sorted(offsets.items())]}
        for cohort, offsets in sorted(cells.items())]}


def brute_retention(purchases: list[dict], options: dict, now: datetime) -> dict:
    theirs = [sorted(p["purchasedAt"] for p in ps) for ps in _by_buyer(purchases, options).values()]
    gaps = [(times[1] - times[0]) // timedelta(days=1) for times in theirs if len(times) > 1]
    cutoff = floor(now, "day") - timedelta(days=90)
    return {"buyers": len(theirs), "repeat_rate": len(gaps) / len(theirs) if theirs else 0.0,
            "median_days_to_second": statistics.median(gaps) if gaps else None,
            "lapsed_90d": sum(1 for times in theirs if times[-1] < cutoff)}


def _by_buyer(purchases: list[dict], options: dict) -> dict:
    kind, method, paid = options.get("kind"), options.get("paymentMethod"), options.get("paid")
    found = defaultdict(list)
    for p in purchases:
        if (kind in (None, "course" if "course" in p else "test") and method in (None, p["paymentMethod"])
                and paid in (None, p["amount"] != 0)):
            found[p["user"]].append(p)
    return found


def assert_exact(db, now: datetime) -> None:
    purchases = list(utc(db)[PURCHASES].find())
    since = (now - timedelta(days=200)).date().isoformat()
    for options in ({}, {"period": "week", "startDate": since}, {"kind": "course", "startDate": "2025-01-01"},
                    {"period": "week", "paymentMethod": "stripe", "paid": True, "startDate": since},
                    {"paid": False, "startDate": "2025-06-15", "endDate": (now - timedelta(days=40)).date().isoformat()},
                    {"kind": "test", "paymentMethod": "admin_grant", "startDate": "2025-01-01"}):
        assert cohort_figures(db, options) == brute_cohorts(purchases, options, now), options
    for options in ({}, {"kind": "course"}, {"paymentMethod": "paypal"}, {"paid": True}, {"kind": "test", "paid": False}):
        assert retention_figures(db, options, now=now) == brute_retention(purchases, options, now), options


# the property: random grants in one batch, then grants and revocations one at a time

sale = st.tuples(st.integers(0, USERS_N - 1), st.integers(0, ITEMS_N - 1), st.integers(0, 420), st.integers(0, 23),
                 st.sampled_from(AMOUNTS), st.sampled_from(METHODS))
later = st.one_of(st.tuples(st.just("grant"), sale), st.tuples(st.just("revoke"), st.integers(0, USERS_N - 1)),
                  st.tuples(st.just("revoke_first"), st.integers(0, USERS_N - 1)))


@settings(max_examples=3, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(batch=st.lists(sale, min_size=1, max_size=10), steps=st.lists(later, max_size=4))
def test_figures_equal_a_brute_force_count_after_sales_revocations_and_a_rebuild(opened_database, batch, steps):
    db = opened_database.client[f"cohorts_{uuid.uuid4().hex[:12]}"]
    try:
        ensure_indexes(db)
        users, items, now = shop(db)
        purchase_items(db, [GrantRequest(users[u], *ids(items[i]), data(now, *rest)) for u, i, *rest in batch])
        for action, arg in steps:
            if action == "grant":
                u, i, *rest = arg
                with contextlib.suppress(AlreadyPurchasedError):
                    create_purchase(db, users[u], *ids(items[i]), data(now, *rest))
            else:  # the buyer's newest purchase, or their first: their cohort moves
                mine = sorted(db[PURCHASES].find({"user": users[arg]}), key=lambda p: p["purchasedAt"])
                if mine:
                    chosen = mine[0] if action == "revoke_first" else mine[-1]
                    remove_purchase(db, users[arg], chosen.get("course"), chosen.get("test"))
        assert_exact(db, now)
        assert cohort_differences(db) == []
        rebuild_rollups(db)
        assert_exact(db, now)
    finally:
        opened_database.client.drop_database(db.name)


def shop(db) -> tuple[list, list, datetime]:
    users = [ObjectId() for _ in range(USERS_N)]
    items = [("course" if i < 3 else "test", ObjectId()) for i in range(ITEMS_N)]
    db[USERS].insert_many([{"_id": u, "name": "U", "purchasedCourses": [], "purchasedTests": []} for u in users])
    for kind, item in items:
        db[COURSES if kind == "course" else TESTS].insert_one({"_id": item, "title": str(item)})
    return users, items, datetime.now(UTC)


def ids(item: tuple) -> tuple:
    kind, item_id = item
    return (item_id, None) if kind == "course" else (None, item_id)


def data(now: datetime, days: int, hour: int, amount, method: str) -> dict:
    moment = floor(now, "day") - timedelta(days=days) + timedelta(hours=hour, minutes=7)
    return {"amount": amount, "paymentMethod": method, "purchasedAt": min(moment, now)}


# examples


def test_revoking_a_first_purchase_moves_the_buyer_to_the_cohort_of_the_next(db, catalog):
    user, (c0, c1), now = catalog["user"], catalog["courses"], datetime.now(UTC)
    month = floor(now, "month")
    first = floor(month - timedelta(days=70), "month") + timedelta(days=3)  # two or three months before
    create_purchase(db, user, c0, None, {"amount": 10, "paymentMethod": "stripe", "purchasedAt": first})
    create_purchase(db, user, c1, None, {"amount": 19.99, "paymentMethod": "paypal", "purchasedAt": now})
    cohorts = cohort_figures(db)["cohorts"]
    assert [(c["cohort"], c["buyers"]) for c in cohorts] == [(floor(first, "month"), 1)]
    assert [p["revenue"] for p in cohorts[0]["periods"]] == [10.0, 19.99]
    remove_purchase(db, user, c0)
    assert cohort_figures(db) == {"period": "month", "cohorts": [
        {"cohort": month, "buyers": 1, "periods": [{"offset": 0, "buyers": 1, "revenue": 19.99}]}]}
    assert cohort_figures(db, {"paymentMethod": "stripe"})["cohorts"] == []


def test_a_first_sale_writes_four_documents_of_a_few_counters(db, catalog):
    create_purchase(db, catalog["user"], catalog["courses"][0], None, {"amount": 5, "paymentMethod": "paypal"})
    rollup_set = active_set(read_version(db))
    cells = list(db[set_collection(COHORT_CELLS, rollup_set)].find())
    assert [doc["_id"].split("|")[0] for doc in cells] == ["month", "week"]
    # buyers and revenue of its eight choices: kind * or course, method * or paypal, paid * or paid
    assert all(len(doc["n"]) == 16 for doc in cells)
    assert cells[0]["n"]["course|paypal|paid|r"] == 5000
    retention = {doc["_id"] for doc in db[set_collection(COHORT_RETENTION, rollup_set)].find()}
    assert retention == {"buyers", f"last|{datetime.now(UTC):%Y-%m-%d}"}


def test_the_checker_reports_a_tampered_cell_and_a_rebuild_repairs_it(db, catalog):
    create_purchase(db, catalog["user"], catalog["courses"][0], None, {"amount": 5, "paymentMethod": "paypal"})
    assert check_consistency(db)["rollup_mismatch"] == []
    cells = db[set_collection(COHORT_CELLS, active_set(read_version(db)))]
    cell = cells.find_one({"_id": {"$regex": "^month\\|"}})
    cells.update_one({"_id": cell["_id"]}, {"$inc": {"n.*|*|*|r": 1}})
    assert check_consistency(db)["rollup_mismatch"] == [
        {"collection": COHORT_CELLS, "bucket": cell["_id"], "counter": "n.*|*|*|r", "expected": 5000, "stored": 5001}]
    rebuild_rollups(db)
    assert check_consistency(db)["rollup_mismatch"] == []
    assert cohort_figures(db)["cohorts"][0]["periods"][0]["revenue"] == 5.0


def test_rollups_of_the_release_before_cohorts_are_rebuilt_when_read(db, catalog):
    create_purchase(db, catalog["user"], catalog["courses"][0], None, {"amount": 5, "paymentMethod": "paypal"})
    rollup_set = active_set(read_version(db))
    db.drop_collection(set_collection(COHORT_CELLS, rollup_set))
    db[DATA_VERSION].update_one({"_id": "purchases"}, {"$set": {"rollupFormat": 3}})
    assert cohort_figures(db)["cohorts"][0]["buyers"] == 1


def test_buyer_counters_count_each_period_once_and_revenue_in_thousandths():
    user, jan, feb = ObjectId(), datetime(2026, 1, 31, 23, tzinfo=UTC), datetime(2026, 2, 2, tzinfo=UTC)
    sales = [sale_of({"user": user, "course": ObjectId(), "purchasedAt": at, "amount": amount, "paymentMethod": "a.b"})
             for at, amount in ((jan, 0.1), (jan, 0.2), (feb, 0))]
    found = buyer_counters(sales)
    assert found[(COHORT_CELLS, "month|2026-01-01|00000", "n.course|a%2Eb|*|b")] == 1
    assert found[(COHORT_CELLS, "month|2026-01-01|00000", "n.course|a%2Eb|*|r")] == 300
    assert found[(COHORT_CELLS, "month|2026-01-01|00001", "n.*|*|free|b")] == 0  # free's cohort is February
    assert found[(COHORT_CELLS, "month|2026-02-01|00000", "n.*|*|free|b")] == 1
    assert found[(COHORT_CELLS, "week|2026-01-26|00001", "n.*|*|*|b")] == 1  # Monday 26 January; 2 February
    assert found[(COHORT_RETENTION, "gap|d|0000000", "n.*|*|paid")] == 1  # 0.1 and 0.2 at the same moment
    assert found[(COHORT_RETENTION, "last|2026-02-02", "n.*|*|*")] == 1


@pytest.mark.parametrize(("options", "field"), [
    ("month", "cohort options"), ({"period": "day"}, "period"), ({"period": 1}, "period"), ({"paid": "yes"}, "paid"),
    ({"paid": 1}, "paid"), ({"kind": "book"}, "kind"), ({"paymentMethod": ""}, "paymentMethod"),
    ({"startDate": "2026-13-01"}, "startDate"), ({"startDate": "1999-12-31"}, "startDate"),
    ({"startDate": "2026-03-01", "endDate": "2026-02-01"}, "endDate"), ({"top": 3}, "top"),
    ({"period": "week", "startDate": "2020-01-01"}, "startDate"),  # more than 120 weekly cohorts
])
def test_bad_options_are_refused_before_anything_is_read(options, field):
    with pytest.raises(ValidationError) as refused:
        cohort_figures(None, options)
    assert refused.value.field == field
    assert str(refused.value)


def test_retention_takes_the_filters_only():
    for options in ({"period": "month"}, {"startDate": "2026-01-01"}, {"paid": "no"}):
        with pytest.raises(ValidationError):
            retention_figures(None, options)
    with pytest.raises(ValidationError):
        retention_figures(None, {}, now="today")


def test_a_revocation_of_something_never_bought_changes_nothing(db, catalog):
    create_purchase(db, catalog["user"], catalog["courses"][0], None, {"amount": 5, "paymentMethod": "paypal"})
    before = cohort_figures(db)
    with pytest.raises(NotPurchasedError):
        remove_purchase(db, catalog["user"], catalog["courses"][1])
    assert cohort_figures(db) == before
