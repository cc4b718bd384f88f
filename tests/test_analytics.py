"""get_purchase_analytics: every figure equals a brute-force computation over the documents."""

import threading
import time
import uuid
from datetime import UTC, datetime, timedelta

import pytest
from bson import ObjectId
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from core import (
    AlreadyPurchasedError,
    CoreSettings,
    ValidationError,
    create_purchase,
    ensure_indexes,
    get_data_version,
    get_purchase_analytics,
    purchase_figures,
    remove_purchase,
)
from core.analytics import queries
from core.operations import rebuild_rollups, rollup_differences
from core.storage.schema import COURSES, PURCHASES, REVOKED, TESTS, USERS
from tests.analytics_oracle import assert_figures_match, brute_force
from tests.conftest import snapshot

T0 = datetime(2025, 1, 6, tzinfo=UTC)  # a Monday
METHODS = ["credit_card", "paypal", "stripe", "admin_grant"]


# buyer figures recomputed whenever the data version moves
FRESH = CoreSettings(buyers_max_age=0)


def make_world(db, users=4, courses=3, tests=2):
    ids = {"users": [ObjectId() for _ in range(users)], "course": [ObjectId() for _ in range(courses)],
           "test": [ObjectId() for _ in range(tests)]}
    db[USERS].insert_many([{"_id": u, "name": f"U{i}", "purchasedCourses": [], "purchasedTests": []}
                           for i, u in enumerate(ids["users"])])
    db[COURSES].insert_many([{"_id": c, "title": f"Course {i}"} for i, c in enumerate(ids["course"])])
    db[TESTS].insert_many([{"_id": t, "title": f"Test {i}"} for i, t in enumerate(ids["test"])])
    ids["titles"] = {i: f"Course {n}" for n, i in enumerate(ids["course"])} | {
        i: f"Test {n}" for n, i in enumerate(ids["test"])}
    return ids


def buy(db, user, kind, item, cents, method, when):
    ids = (item, None) if kind == "course" else (None, item)
    return create_purchase(db, user, *ids, {"amount": cents / 100, "paymentMethod": method, "purchasedAt": when})


def check(db, world, filters):
    result = get_purchase_analytics(db, filters, settings=FRESH)
    expected = brute_force(list(db[PURCHASES].find()), list(db[REVOKED].find()), world["titles"], filters,
                           result["granularity"], result["asOf"])
    assert_figures_match(result, expected)
    return result




@st.composite
def scenarios(draw):
    """Sales, removals and filters over a few hours or weeks, with edges near sales."""
    minutes = draw(st.sampled_from([60 * 3, 60 * 24 * 40]))
    sale = st.tuples(st.integers(0, 3), st.sampled_from(["course", "test"]), st.integers(0, 2),
                     st.integers(0, 9999), st.sampled_from(METHODS), st.integers(0, minutes))
    bought = draw(st.lists(sale, max_size=14))
    near_a_sale = (
        st.tuples(st.sampled_from([b[5] for b in bought]), st.integers(-40, 40)).map(
            lambda pair: T0 + timedelta(minutes=pair[0] + pair[1], seconds=17))
        if bought else st.none()
    )
    date = st.one_of(
        st.none(),
        st.integers(0, minutes // 1440 + 1).map(lambda d: (T0 + timedelta(days=d)).date().isoformat()),
        st.integers(0, minutes).map(lambda m: T0 + timedelta(minutes=m, seconds=17)),
        near_a_sale,
    )
    filters = st.fixed_dictionaries(
        {},
        optional={
            "startDate": date, "endDate": date, "kind": st.sampled_from(["course", "test"]),
            "paymentMethod": st.sampled_from(METHODS), "granularity": st.sampled_from(["day", "week", "month"]),
            "top": st.integers(1, 3),
        },
    )
    return bought, draw(st.lists(st.integers(0, 20), max_size=4)), draw(st.lists(filters, min_size=1, max_size=3))


@settings(max_examples=18, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(scenario=scenarios())
def test_every_figure_equals_brute_force(opened_database, scenario):
    bought, removals, filters = scenario
    db = opened_database.client[f"an_{uuid.uuid4().hex[:12]}"]
    try:
        ensure_indexes(db)
        world = make_world(db)
        made = []
        for user, kind, item, cents, method, minute in bought:
            item_id = world[kind][item % len(world[kind])]
            if not db[PURCHASES].find_one({"user": world["users"][user], kind: item_id}):
                made.append(buy(db, world["users"][user], kind, item_id, 0 if method == "admin_grant" else cents,
                                method, T0 + timedelta(minutes=minute)))
        for index in removals:
            if made:
                victim = made.pop(index % len(made))
                kind = "course" if "course" in victim else "test"
                ids = (victim[kind], None) if kind == "course" else (None, victim[kind])
                remove_purchase(db, victim["user"], *ids)
        for f in filters:
            start, end = f.get("startDate"), f.get("endDate")
            try:
                check(db, world, f)
            except ValidationError as error:
                # only an end before the start is refused here
                assert "before startDate" in str(error) and start is not None and end is not None  # noqa: PT017
        assert rollup_differences(db) == []
    finally:
        opened_database.client.drop_database(db.name)


def test_hour_granularity_and_edges_inside_hours(db):
    world = make_world(db)
    u = world["users"]
    buy(db, u[0], "course", world["course"][0], 1999, "paypal", T0 + timedelta(hours=1, minutes=5))
    buy(db, u[1], "course", world["course"][0], 2999, "stripe", T0 + timedelta(hours=1, minutes=50))
    buy(db, u[1], "test", world["test"][0], 0, "admin_grant", T0 + timedelta(hours=3, minutes=1))
    buy(db, u[2], "test", world["test"][0], 0, "admin_grant", T0 + timedelta(hours=1, minutes=40))
    result = check(db, world, {"startDate": T0 + timedelta(hours=1, minutes=30), "endDate": T0 + timedelta(hours=5),
                               "granularity": "hour"})
    # 1:30-2:00 is read from the purchases themselves, 2:00-5:00 from hourly rollups
    assert result["totalPurchases"] == 3 and result["comped"] == {"count": 2}
    assert [row["count"] for row in result["revenueByPeriod"]] == [2, 0, 1, 0, 0]
    whole = check(db, world, {"startDate": "2025-01-06", "endDate": "2025-01-06"})
    assert whole["granularity"] == "hour" and len(whole["revenueByPeriod"]) == 24


def test_revocations_show_separately(db):
    world = make_world(db)
    u, c = world["users"], world["course"]
    buy(db, u[0], "course", c[0], 5000, "credit_card", T0)
    buy(db, u[1], "course", c[0], 3000, "paypal", T0 + timedelta(days=1))
    remove_purchase(db, u[0], c[0], actor="support", reason="refund")
    today = datetime.now(UTC).date().isoformat()
    now = check(db, world, {"startDate": today, "endDate": today})
    assert now["revoked"] == {"count": 1, "revenue": 50.0} and now["totalPurchases"] == 0
    january = check(db, world, {"startDate": "2025-01-01", "endDate": "2025-01-31"})
    assert january["totalPurchases"] == 1 and january["revoked"]["count"] == 0
    assert january["popularCourses"] == [{"id": c[0], "title": "Course 0", "count": 1, "revenue": 30.0}]


def test_empty_database_has_zeros_and_no_series(db):
    result = get_purchase_analytics(db, settings=FRESH)
    assert result["totalPurchases"] == 0 and result["revenueByPeriod"] == [] and result["popularCourses"] == []
    assert result["uniqueBuyers"] == 0 and result["buyers"]["purchasesPerBuyer"] == []
    empty_range = get_purchase_analytics(db, {"startDate": "2025-01-01", "endDate": "2025-01-03"}, settings=FRESH)
    assert empty_range["granularity"] == "day"
    assert [row["count"] for row in empty_range["revenueByPeriod"]] == [0, 0, 0]


def test_the_seeds_sample_queries_agree(db):
    """The seed's "Most popular courses" and "Revenue by month" pipelines, as written."""
    world = make_world(db, users=14)
    for n in range(14):
        buy(db, world["users"][n], "course", world["course"][n % 3], 1000 + 250 * n, "stripe",
            T0 + timedelta(days=17 * n, hours=n))
        if n % 2:
            buy(db, world["users"][n], "test", world["test"][n % 2], 500, "paypal", T0 + timedelta(days=9 * n))
    popular = list(db[PURCHASES].aggregate([
        {"$match": {"course": {"$exists": True}}},
        {"$group": {"_id": "$course", "count": {"$sum": 1}}},
        {"$sort": {"count": -1}},
        {"$limit": 10},
    ]))
    monthly = list(db[PURCHASES].aggregate([
        {"$group": {"_id": {"year": {"$year": "$purchasedAt"}, "month": {"$month": "$purchasedAt"}},
                    "totalRevenue": {"$sum": "$amount"}, "count": {"$sum": 1}}},
        {"$sort": {"_id.year": -1, "_id.month": -1}},
    ]))
    result = get_purchase_analytics(db, {"granularity": "month"}, settings=FRESH)
    assert {row["_id"]: row["count"] for row in popular} == {row["id"]: row["count"] for row in result["popularCourses"]}
    ours = {(row["period"].year, row["period"].month): row for row in result["revenueByPeriod"] if row["count"]}
    assert len(ours) == len(monthly)
    for row in monthly:
        mine = ours[(row["_id"]["year"], row["_id"]["month"])]
        assert mine["count"] == row["count"] and abs(mine["revenue"] - row["totalRevenue"]) < 0.005


@pytest.mark.parametrize(
    ("filters", "message"),
    [
        ({"startDate": "2025-02-30"}, "startDate must be"),
        # every query has a bounded cost: dates inside the purchases' window, a few thousand points
        ({"startDate": "0001-01-01", "endDate": "2025-01-01"}, "startDate must be between 2000-01-01 and tomorrow"),
        ({"startDate": "2025-01-01", "endDate": "9999-12-30"}, "endDate must be between 2000-01-01 and tomorrow"),
        ({"startDate": "2000-01-01", "endDate": "2024-12-31", "granularity": "day"}, "ranges up to 3660 days"),
        ({"kind": ["course"]}, "kind must be 'course' or 'test'"),
        ({"kind": {"$ne": None}}, "kind must be 'course' or 'test'"),
        ({1: "x", "kind": "course"}, "analytics filters names must be strings"),
        ({"endDate": "soon"}, "endDate must be"),
        ({"startDate": "2025-02-01", "endDate": "2025-01-01"}, "before startDate"),
        ({"kind": "ebook"}, "kind must be 'course' or 'test'"),
        ({"granularity": "year"}, "granularity must be one of"),
        ({"startDate": "2025-01-01", "endDate": "2025-03-01", "granularity": "hour"}, "up to 31 days"),
        ({"top": 0}, "top must be"),
        ({"paymentMethod": ""}, "paymentMethod must be"),
        ({"region": "EU"}, "unknown analytics filters"),
        ("last week", "analytics filters must be a dict"),
    ],
)
def test_bad_filters_raise_and_write_nothing(db, filters, message):
    make_world(db)
    before = snapshot(db)
    with pytest.raises(ValidationError, match=message):
        get_purchase_analytics(db, filters, settings=FRESH)
    assert snapshot(db) == before


def test_data_version_moves_with_every_change_and_only_then(db):
    world = make_world(db)
    u, c = world["users"], world["course"]
    assert get_data_version(db) == 0
    buy(db, u[0], "course", c[0], 100, "paypal", T0)
    assert get_data_version(db) == 1
    with pytest.raises(AlreadyPurchasedError):  # refused: the version must not move
        buy(db, u[0], "course", c[0], 100, "paypal", T0)
    create_purchase(db, u[1], c[1], None, {"amount": 1, "paymentMethod": "paypal", "idempotencyKey": "k"})
    create_purchase(db, u[1], c[1], None, {"amount": 1, "paymentMethod": "paypal", "idempotencyKey": "k"})
    assert get_data_version(db) == 2
    remove_purchase(db, u[0], c[0])
    assert get_data_version(db) == 3
    get_purchase_analytics(db, settings=FRESH)
    assert get_data_version(db) == 3


def test_buyer_figures_are_reused_for_max_age_then_recomputed(db):
    world = make_world(db)
    u, c = world["users"], world["course"]
    buy(db, u[0], "course", c[0], 100, "paypal", T0)
    patient = CoreSettings(buyers_max_age=3600)
    first = get_purchase_analytics(db, {"startDate": "2025-01-01"}, settings=patient)
    buy(db, u[1], "course", c[0], 100, "paypal", T0)
    cached = get_purchase_analytics(db, {"startDate": "2025-01-01"}, settings=patient)
    assert cached["totalPurchases"] == 2  # rollup figures are always exact
    assert cached["uniqueBuyers"] == 1 and cached["buyers"]["asOf"] == first["buyers"]["asOf"]
    fresh = get_purchase_analytics(db, {"startDate": "2025-01-01"}, settings=CoreSettings(buyers_max_age=0))
    assert fresh["uniqueBuyers"] == 2 and fresh["buyers"]["asOf"] > first["buyers"]["asOf"]
    again = get_purchase_analytics(db, {"startDate": "2025-01-01"}, settings=FRESH)
    assert again["buyers"]["asOf"] == fresh["buyers"]["asOf"]  # same version: no new pipeline


def test_rebuild_after_a_bulk_import(db):
    world = make_world(db)
    u, c = world["users"], world["course"]
    buy(db, u[0], "course", c[0], 100, "paypal", T0)
    # an import behind the API's back: purchases and arrays, no rollups
    db[PURCHASES].insert_one({"user": u[1], "course": c[1], "amount": 7.5, "paymentMethod": "stripe",
                              "purchasedAt": T0 + timedelta(days=2)})
    db[USERS].update_one({"_id": u[1]}, {"$push": {"purchasedCourses": c[1]}})
    assert rollup_differences(db) != []
    version = get_data_version(db)
    rebuild_rollups(db)
    assert rollup_differences(db) == []
    assert get_data_version(db) > version
    assert check(db, world, {})["totalPurchases"] == 2


def test_a_rebuild_written_in_parts_equals_the_rollups_the_writes_kept(db, monkeypatch):
    """A rebuild writes a month at a time: a week across two months is written in two parts,
    the second adding to the first's counters, including sales and revocations that cancel
    out; everything equals the rollups the grants and revocations kept."""
    from core.analytics.rollups import active_set, rollup_counters, set_collections
    from core.changes import read_version
    from core.operations import rebuild

    world = make_world(db)
    u, c, t = world["users"], world["course"], world["test"]
    friday = datetime(2025, 1, 31, 20, tzinfo=UTC)  # the ISO week of Monday 27 January to Sunday 2 February
    moments = [friday + timedelta(hours=h) for h in (5, 0, 30, 1, 2, 9, 0)]  # across the month's end, not in order
    bought = [(0, "test", t[0]), (1, "course", c[0]), (2, "test", t[1]), (3, "course", c[1]), (0, "test", t[1]),
              (1, "course", c[1]), (2, "test", t[0])]
    for n, (when, (user, kind, item)) in enumerate(zip(moments, bought, strict=True)):
        buy(db, u[user], kind, item, 1000 + n, ("paypal", "stripe")[n % 2], when)
    remove_purchase(db, u[1], c[1])
    remove_purchase(db, u[2], None, t[0])

    def rollups() -> dict:
        names = set_collections(active_set(read_version(db)))
        return {(name.split("__")[0], doc["_id"]): (doc["level"], doc["period"], rollup_counters(doc))
                for name in names for doc in db[name].find()}

    kept = {key: value for key, value in rollups().items() if value[2]}  # without buckets that went back to 0
    parts = []
    real = rebuild.bulk_write
    monkeypatch.setattr(rebuild, "bulk_write", lambda db, name, requests: parts.extend(requests) or real(db, name, requests))
    rebuild_rollups(db)

    assert rollups() == kept
    assert rollup_differences(db) == []
    assert {update._filter["_id"] for update in parts} == {"week|2025-01-27T00"}  # the week's second part
    assert check(db, world, {})["totalPurchases"] == 5  # seven bought, two removed


def test_readers_and_writers_go_on_while_rollups_are_rebuilt_aside(db):
    world = make_world(db)
    u, c = world["users"], world["course"]
    buy(db, u[0], "course", c[0], 100, "paypal", T0)
    reached, hold = threading.Event(), threading.Event()

    def progress(written, total):
        reached.set()
        hold.wait(20)  # the rebuild stops here, its new set half written

    version, outcome = get_data_version(db), []
    rebuilding = threading.Thread(target=lambda: outcome.append(rebuild_rollups(db, progress)))
    rebuilding.start()
    try:
        assert reached.wait(20)
        started = time.monotonic()
        assert get_purchase_analytics(db, settings=FRESH)["totalPurchases"] == 1
        assert time.monotonic() - started < 5  # no waiting for the rebuild
        buy(db, u[1], "course", c[0], 50, "stripe", T0)  # a writer is not held either
        assert get_purchase_analytics(db, settings=FRESH)["totalRevenue"] == 1.5
    finally:
        hold.set()
        rebuilding.join()
    assert outcome and get_data_version(db) == version + 2  # the sale, then the switch
    assert rollup_differences(db) == []  # the rebuild saw the version move and started over
    assert get_purchase_analytics(db, settings=FRESH)["totalRevenue"] == 1.5


def test_readers_under_continuous_writes_get_figures_of_one_version_never_an_error(db, monkeypatch):
    """Eight writers that never pause (the live page with 16 writers never updated before):
    each read answers, at a version at least as new as the one read before it, with
    figures of exactly that version (here every change is a sale, so count == version)."""
    world = make_world(db, users=40, courses=3, tests=2)
    items = [("course", c) for c in world["course"]] + [("test", t) for t in world["test"]]
    stop, failures, reads, in_transaction = threading.Event(), [], [], []
    real = queries.run_in_transaction
    monkeypatch.setattr(queries, "run_in_transaction", lambda *a, **k: in_transaction.append(1) or real(*a, **k))

    def write(n):
        for i, user in enumerate(world["users"][n * 5:(n + 1) * 5] * 5):
            kind, item = items[(i // 5) % len(items)]
            if stop.is_set():
                return
            try:
                buy(db, user, kind, item, 100 + n, METHODS[n % 4], T0 + timedelta(hours=i))
            except Exception as error:  # noqa: BLE001 - any failure is what this test looks for
                failures.append(repr(error))

    writers = [threading.Thread(target=write, args=(n,)) for n in range(8)]
    for writer in writers:
        writer.start()
    try:
        while any(w.is_alive() for w in writers) and len(reads) < 25:
            before = get_data_version(db)
            figures = purchase_figures(db, {"startDate": "2025-01-01", "top": 100})
            reads.append(figures["dataVersion"])
            assert figures["dataVersion"] >= before
            assert figures["totalPurchases"] == figures["dataVersion"]  # one version, not a mix
            assert sum(r["count"] for r in figures["popularCourses"] + figures["popularTests"]) == figures["totalPurchases"]
            assert sum(r["count"] for r in figures["revenueByPeriod"]) == figures["totalPurchases"]
    finally:
        stop.set()
        for writer in writers:
            writer.join()
    assert failures == []
    assert len(reads) >= 5 and reads == sorted(reads) and reads[-1] > reads[0]
    print(f"{len(reads)} reads, {len(in_transaction)} inside a snapshot transaction")


def test_a_read_inside_a_snapshot_transaction_equals_a_plain_one(db, monkeypatch):
    world = make_world(db)
    buy(db, world["users"][0], "course", world["course"][0], 2999, "paypal", T0)
    buy(db, world["users"][1], "test", world["test"][0], 1, "stripe", T0 + timedelta(minutes=90))
    filters = {"startDate": T0 + timedelta(minutes=30), "top": 100}
    plain = purchase_figures(db, filters)
    monkeypatch.setattr(queries, "OPTIMISTIC_READS", 0)
    inside = purchase_figures(db, filters)
    assert {k: v for k, v in inside.items() if k != "asOf"} == {k: v for k, v in plain.items() if k != "asOf"}
