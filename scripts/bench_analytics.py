"""Benchmark get_purchase_analytics (rollups) against the seed's ad-hoc pipelines.

Builds 5,000 and 20,000 purchases on the embedded server through the bulk path and prints
a Markdown table, all measured in one run.
Usage: python scripts/bench_analytics.py [--sizes 5000 20000] [--repeat 15]
"""

import argparse
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
from core.analytics.buyers import compute_buyers  # the pipeline alone, uncached
from core.analytics.queries import forget_held_rollups
from core.operations import seed_demo
from core.storage.schema import COURSES, PURCHASES, REVOKED, USERS


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


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[5000, 20000])
    parser.add_argument("--repeat", type=int, default=15)
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as data_dir, open_database(data_dir=data_dir) as opened:
        print(f"Database: {opened.description}\n")
        rows = {size: bench_size(opened, size, args.repeat) for size in args.sizes}
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
