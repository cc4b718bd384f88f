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

from core import ensure_indexes, get_data_version, get_purchase_analytics, open_database
from core.analytics.buyers import compute_buyers  # the pipeline alone, uncached
from core.operations import seed_demo
from core.storage.schema import PURCHASES, REVOKED


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


def seconds(call, repeat: int) -> float:
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        call()
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def bench_size(opened, size: int, repeat: int) -> dict:
    db = opened.client[f"bench_analytics_{size}_{ObjectId()}"]
    ensure_indexes(db)
    seed_demo(db, users=max(600, size // 10), items=40, purchases=size, seed=size)
    start_day = (datetime.now(UTC) - timedelta(days=89)).date().isoformat()
    start = datetime.fromisoformat(start_day).replace(tzinfo=UTC)
    row = {}
    for label, filters, since in (("all", {}, None), ("90d", {"startDate": start_day}, start)):
        get_purchase_analytics(db, filters)  # warms the buyer cache: these rows time the rollup figures
        row[f"{label}_rollups"] = seconds(lambda f=filters: get_purchase_analytics(db, f), repeat)
        pipelines = seed_pipelines(since)
        row[f"{label}_seed"] = seconds(
            lambda p=pipelines: [list(db[name].aggregate(stages)) for name, group in p.items() for stages in group], 1
        )
        row[f"{label}_buyers"] = seconds(lambda s=since: compute_buyers(db, s, None, None, None), 1)
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
    print("| purchases | query | rollups (all figures but buyers) | seed's pipelines | speed-up | buyer pipeline | data version read |")
    print("|---:|---|---:|---:|---:|---:|---:|")
    for size, r in rows.items():
        for label, name in (("all", "unfiltered"), ("90d", "last 90 days")):
            print(f"| {size:,} | {name} | {r[f'{label}_rollups'] * 1000:.0f} ms | {r[f'{label}_seed'] * 1000:.0f} ms "
                  f"| {r[f'{label}_seed'] / r[f'{label}_rollups']:.0f}x | {r[f'{label}_buyers'] * 1000:.0f} ms "
                  f"| {r['version'] * 1000:.1f} ms |")
    if len(rows) > 1:
        small, large = rows[min(rows)], rows[max(rows)]
        for label, name in (("all", "unfiltered"), ("90d", "last 90 days")):
            print(f"\nrollup time {min(rows):,} -> {max(rows):,} purchases, {name}: "
                  f"{large[f'{label}_rollups'] / small[f'{label}_rollups']:.2f}x", end="")
        print()
    print("\nMedians of one run; rollup rows reuse cached buyer figures, which the buyer column times alone.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
