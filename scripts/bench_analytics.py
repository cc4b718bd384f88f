"""Benchmark get_purchase_analytics (rollups) against the seed's ad-hoc pipelines, and the
cohort and retention figures.

Builds 5,000 and 20,000 purchases on the embedded server through the bulk path and prints
a Markdown table, all measured in one run; then the cohort tables at 5,000, 20,000 and
300,000 purchases spread over a year (the demo's 90 days stretched, so that the 12 monthly
cohorts of the default view have buyers once there are enough buyers). `--sizes` alone (no
number) skips the first table; `--cohort-sizes` alone skips the cohorts.
Usage: python scripts/bench_analytics.py [--sizes 5000 20000] [--repeat 15]
                                         [--cohort-sizes 5000 20000 300000] [--cohort-repeat 30]
"""

import argparse
import random
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta

from bson import ObjectId

from core import (
    create_purchase,
    ensure_indexes,
    get_data_version,
    get_purchase_analytics,
    open_database,
    purchase_figures,
)
from core.analytics import rollups
from core.analytics.buyers import compute_buyers  # the pipeline alone, uncached
from core.analytics.cohorts import cohort_figures
from core.analytics.queries import forget_held_rollups
from core.analytics.retention import retention_figures
from core.analytics.rollups import active_set, set_collection
from core.changes import read_version
from core.operations import build_demo, load_demo, seed_demo
from core.storage.schema import COHORT_COLLECTIONS, COURSES, PURCHASES, REVOKED, USERS

COHORT_DAYS = 365
DEMO_DAYS = 90  # what build_demo spreads purchases over
COHORT_QUERIES = {  # what the insights page asks for
    "12 monthly cohorts": {},
    "12 monthly cohorts, courses by paypal, paid": {"kind": "course", "paymentMethod": "paypal", "paid": True},
    "weekly cohorts of 12 months": {"period": "week"},
}


def seed_pipelines(start):
    """The seed's approach: one ad-hoc pipeline per figure over `purchases`."""
    match = [{"$match": {"purchasedAt": {"$gte": start}}}] if start else []
    revoked_match = [{"$match": {"revokedAt": {"$gte": start}}}] if start else []
    is_course = {"$cond": [{"$gt": ["$course", None]}, "course", "test"]}
    return {
        PURCHASES: [
            match + [{"$group": {"_id": is_course, "revenue": {"$sum": "$amount"}, "count": {"$sum": 1}}}],
            match + [{"$group": {"_id": {"year": {"$year": "$purchasedAt"}, "month": {"$month": "$purchasedAt"},
                                         "day": {"$dayOfMonth": "$purchasedAt"}},
                                 "totalRevenue": {"$sum": "$amount"}, "count": {"$sum": 1}}},
                     {"$sort": {"_id.year": -1, "_id.month": -1, "_id.day": -1}}],
            match + [{"$match": {"course": {"$exists": True}}}, {"$group": {"_id": "$course", "count": {"$sum": 1}}},
                     {"$sort": {"count": -1}}, {"$limit": 10}],
            match + [{"$match": {"test": {"$exists": True}}}, {"$group": {"_id": "$test", "count": {"$sum": 1}}},
                     {"$sort": {"count": -1}}, {"$limit": 10}],
            match + [{"$group": {"_id": "$paymentMethod", "revenue": {"$sum": "$amount"}, "count": {"$sum": 1}}}],
            match + [{"$match": {"amount": 0}}, {"$count": "comped"}],
        ],
        REVOKED: [revoked_match + [{"$group": {"_id": None, "count": {"$sum": 1}, "revenue": {"$sum": "$amount"}}}]],
    }


def seconds(call, repeat: int, before=lambda: None) -> float:
    times = []
    for _ in range(repeat):
        before()
        started = time.perf_counter()
        call()
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def one_sale(db) -> None:
    """A purchase of a new course by some user: the next read finds one change since the last."""
    course = ObjectId()
    db[COURSES].insert_one({"_id": course, "title": f"Bench course {course}"})
    user = db[USERS].find_one({}, {"_id": 1})["_id"]
    create_purchase(db, user, course, None, {"amount": 10, "paymentMethod": "stripe"})


def bench_size(opened, size: int, repeat: int) -> dict:
    db = opened.client[f"bench_analytics_{size}_{ObjectId()}"]
    ensure_indexes(db)
    seed_demo(db, users=max(600, size // 10), items=40, purchases=size, seed=size)
    start_day = (datetime.now(UTC) - timedelta(days=89)).date().isoformat()
    start = datetime.fromisoformat(start_day).replace(tzinfo=UTC)
    row = {}
    for label, filters, since in (("all", {}, None), ("90d", {"startDate": start_day}, start)):
        get_purchase_analytics(db, filters)  # warms the buyer cache: these rows time the rollup figures
        # every range read whole, as a process's first read of a view does
        row[f"{label}_rollups"] = seconds(lambda f=filters: get_purchase_analytics(db, f), repeat, forget_held_rollups)
        pipelines = seed_pipelines(since)
        row[f"{label}_seed"] = seconds(
            lambda p=pipelines: [list(db[name].aggregate(stages)) for name, group in p.items() for stages in group], 1
        )
        row[f"{label}_buyers"] = seconds(lambda s=since: compute_buyers(db, s, None, None, None), 1)
        row[f"{label}_whole"] = seconds(lambda f=filters: purchase_figures(db, f), repeat,
                                        lambda: (one_sale(db), forget_held_rollups()))
        row[f"{label}_held"] = seconds(lambda f=filters: purchase_figures(db, f), repeat, lambda: one_sale(db))
    row["version"] = seconds(lambda: get_data_version(db), 50)
    opened.client.drop_database(db.name)
    return row


def percentiles(call, repeat: int) -> tuple[float, float]:
    """(p50, p95) in seconds of `repeat` calls."""
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        call()
        times.append(time.perf_counter() - started)
    cuts = statistics.quantiles(times, n=20, method="inclusive")
    return statistics.median(times), cuts[18]


def year_of_sales(size: int, now: datetime) -> dict[str, list]:
    """The demo's documents for `size` purchases, their dates stretched from 90 days to a year."""
    documents = build_demo(random.Random(size), max(600, size // 10), 40, size, now)
    for purchase in documents[PURCHASES]:
        purchase["purchasedAt"] = (now - (now - purchase["purchasedAt"]) * (COHORT_DAYS / DEMO_DAYS)).replace(microsecond=0)
    documents[PURCHASES].sort(key=lambda p: p["purchasedAt"])
    return documents


def bench_cohorts(opened, size: int, repeat: int) -> dict:
    db = opened.client[f"bench_cohorts_{size}_{ObjectId()}"]
    ensure_indexes(db)
    started = time.perf_counter()
    load_demo(db, year_of_sales(size, datetime.now(UTC)))
    row = {"load": time.perf_counter() - started, "buyers": retention_figures(db)["buyers"],
           "documents": sum(db[set_collection(name, active_set(read_version(db)))].estimated_document_count()
                            for name in COHORT_COLLECTIONS)}
    for label, options in COHORT_QUERIES.items():
        cohort_figures(db, options)  # warm
        row[label] = percentiles(lambda o=options: cohort_figures(db, o), repeat)
    row["cohorts"] = len(cohort_figures(db)["cohorts"])
    row["cells"] = sum(len(c["periods"]) for c in cohort_figures(db)["cohorts"])
    row["retention"] = percentiles(lambda: retention_figures(db), repeat)
    row["retention, courses"] = percentiles(lambda: retention_figures(db, {"kind": "course"}), repeat)
    row["grant"] = seconds(lambda: one_sale(db), repeat)
    upkeep = rollups._record_buyers
    rollups._record_buyers = lambda *args: None  # the same grant without the cohorts' upkeep
    try:
        row["grant without cohorts"] = seconds(lambda: one_sale(db), repeat)
    finally:
        rollups._record_buyers = upkeep
    opened.client.drop_database(db.name)
    return row


def print_cohorts(rows: dict) -> None:
    print("\n| purchases (over a year) | buyers | query | p50 | p95 |")
    print("|---:|---:|---|---:|---:|")
    for size, r in rows.items():
        for label in (*COHORT_QUERIES, "retention", "retention, courses"):
            print(f"| {size:,} | {r['buyers']:,} | {label} | {r[label][0] * 1000:.0f} ms | {r[label][1] * 1000:.0f} ms |")
    print("\n| purchases | cohort documents | 12 monthly cohorts: cells shown | a grant (p50) | the same without the "
          "cohorts' upkeep | load (bulk, rollups and cohorts) |")
    print("|---:|---:|---:|---:|---:|---:|")
    for size, r in rows.items():
        print(f"| {size:,} | {r['documents']:,} | {r['cells']} in {r['cohorts']} cohorts | {r['grant'] * 1000:.0f} ms "
              f"| {r['grant without cohorts'] * 1000:.0f} ms | {r['load']:.0f} s |")
    print("\nEach figure read whole, at one data version; p50 and p95 of the repeats. A grant is a new course bought by a"
          " buyer who has bought before.")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="*", default=[5000, 20000])
    parser.add_argument("--repeat", type=int, default=15)
    parser.add_argument("--cohort-sizes", type=int, nargs="*", default=[5000, 20000, 300000])
    parser.add_argument("--cohort-repeat", type=int, default=30)
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as data_dir, open_database(data_dir=data_dir) as opened:
        print(f"Database: {opened.description}\n")
        rows = {size: bench_size(opened, size, args.repeat) for size in args.sizes}
        cohorts = {size: bench_cohorts(opened, size, args.cohort_repeat) for size in args.cohort_sizes}
    if cohorts:
        print_cohorts(cohorts)
    if not rows:
        return 0
    print("| purchases | query | rollups (all figures but buyers) | seed's pipelines | speed-up | buyer pipeline "
          "| data version read | after one sale: rollups read whole | after one sale: held, touched buckets read |")
    print("|---:|---|---:|---:|---:|---:|---:|---:|---:|")
    for size, r in rows.items():
        for label, name in (("all", "unfiltered"), ("90d", "last 90 days")):
            print(f"| {size:,} | {name} | {r[f'{label}_rollups'] * 1000:.0f} ms | {r[f'{label}_seed'] * 1000:.0f} ms "
                  f"| {r[f'{label}_seed'] / r[f'{label}_rollups']:.0f}x | {r[f'{label}_buyers'] * 1000:.0f} ms "
                  f"| {r['version'] * 1000:.1f} ms | {r[f'{label}_whole'] * 1000:.0f} ms | {r[f'{label}_held'] * 1000:.0f} ms |")
    if len(rows) > 1:
        small, large = rows[min(rows)], rows[max(rows)]
        for label, name in (("all", "unfiltered"), ("90d", "last 90 days")):
            print(f"\nrollup time {min(rows):,} -> {max(rows):,} purchases, {name}: "
                  f"{large[f'{label}_rollups'] / small[f'{label}_rollups']:.2f}x", end="")
        print()
    print("\nMedians of one run. The rollup column reads every rollup range whole (nothing held from an earlier read)"
          " and reuses cached buyer figures, which the buyer column times alone. The last two are purchase_figures"
          " right after a sale: reading every range whole, then with the rollups of the read before held (only the"
          " buckets the sale touched read again).")
    return 0


if __name__ == "__main__":
    sys.exit(main())
