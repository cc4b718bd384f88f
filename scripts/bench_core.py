"""Benchmark the core API on the embedded server at 5,000 and 20,000 purchases.

Prints a Markdown table: has_purchased against a bare find_one by _id, and
create_purchase / remove_purchase against two bare writes without a transaction.
Usage: python scripts/bench_core.py [--sizes 5000 20000] [--reads 400] [--writes 30]
"""

import argparse
import random
import statistics
import sys
import tempfile
import time

from bson import ObjectId

from core import create_purchase, ensure_indexes, has_purchased, open_database, remove_purchase
from core.operations import seed_demo
from core.storage.schema import COURSES, PURCHASES, USERS, user_array

COURSES_OWNED = user_array("course")  # the user's array of courses


def timed(calls) -> list[float]:
    """Run each call once and return the seconds each took."""
    times = []
    for call in calls:
        started = time.perf_counter()
        call()
        times.append(time.perf_counter() - started)
    return times

def median_ms(times: list[float]) -> float:
    return statistics.median(times) * 1000

def unowned_pairs(db, count: int, rng: random.Random) -> list[tuple]:
    users = [u for u in db[USERS].find({}, {COURSES_OWNED: 1})]
    courses = [c["_id"] for c in db[COURSES].find({}, {"_id": 1})]
    pairs = set()
    while len(pairs) < count:
        user = rng.choice(users)
        course = rng.choice(courses)
        if course not in user[COURSES_OWNED]:
            pairs.add((user["_id"], course))
    return sorted(pairs)

def bench_size(opened, size: int, reads: int, writes: int) -> dict:
    db = opened.client[f"bench_core_{size}_{ObjectId()}"]

    ensure_indexes(db)
    started = time.perf_counter()
    seed_demo(db, users=max(600, size // 10), items=40, purchases=size, seed=size)
    seed_seconds = time.perf_counter() - started
    rng = random.Random(size)
    owners = list(db[PURCHASES].find().limit(reads))
    checks = [(p["user"], p.get("course"), p.get("test")) for p in owners]
    # interleaved, so that drift in the machine's speed touches both sides alike
    paired = timed([call for c in checks for call in (lambda c=c: has_purchased(db, *c),
                                                       lambda c=c: db[USERS].find_one({"_id": c[0]}))])
    has, bare_read = paired[0::2], paired[1::2]

    pairs = unowned_pairs(db, 2 * writes + 5, rng)
    grant, bare_grant, warm = pairs[:writes], pairs[writes : 2 * writes], pairs[2 * writes :]
    data = {"amount": 19.99, "paymentMethod": "stripe"}
    for user, course in warm:  # first writes fill the engine's caches: not timed
        create_purchase(db, user, course, None, data)
        remove_purchase(db, user, course)
    create = timed([lambda p=p: create_purchase(db, p[0], p[1], None, data) for p in grant])
    remove = timed([lambda p=p: remove_purchase(db, p[0], p[1], actor="bench") for p in grant])

    def bare_insert(user, course):
        db[PURCHASES].insert_one({"user": user, "course": course, "purchasedAt": time.time(), **data})
        db[USERS].update_one({"_id": user}, {"$addToSet": {COURSES_OWNED: course}})

    def bare_delete(user, course):
        db[PURCHASES].delete_one({"user": user, "course": course})
        db[USERS].update_one({"_id": user}, {"$pull": {COURSES_OWNED: course}})

    bare_create = timed([lambda p=p: bare_insert(*p) for p in bare_grant])
    bare_remove = timed([lambda p=p: bare_delete(*p) for p in bare_grant])
    opened.client.drop_database(db.name)
    return {
        "seed": seed_seconds,
        "has": median_ms(has),
        "bare_read": median_ms(bare_read),
        "create": median_ms(create),
        "remove": median_ms(remove),
        "bare_create": median_ms(bare_create),
        "bare_remove": median_ms(bare_remove),
    }

def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[5000, 20000])
    parser.add_argument("--reads", type=int, default=400)
    parser.add_argument("--writes", type=int, default=30)
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as data_dir, open_database(data_dir=data_dir) as opened:
        print(f"Database: {opened.description}\n")
        results = {size: bench_size(opened, size, args.reads, args.writes) for size in args.sizes}
    print("| purchases | demo load (bulk) | has_purchased | bare find_one by _id | ratio "
          "| create_purchase | 2 bare writes | remove_purchase | 2 bare writes |")
    print("|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for size, r in results.items():
        print(
            f"| {size:,} | {r['seed']:.1f} s | {r['has']:.2f} ms | {r['bare_read']:.2f} ms | {r['has'] / r['bare_read']:.2f}x "
            f"| {r['create']:.0f} ms ({1000 / r['create']:.1f}/s) | {r['bare_create']:.0f} ms ({1000 / r['bare_create']:.1f}/s) "
            f"| {r['remove']:.0f} ms ({1000 / r['remove']:.1f}/s) | {r['bare_remove']:.0f} ms ({1000 / r['bare_remove']:.1f}/s) |"
        )
    print("\nMedians of one run. A grant or revoke is one transaction: the purchase, the user, the rollups,"
          " the feed and the data version; the bare pair is two writes without a transaction.")
    return 0

if __name__ == "__main__":
    sys.exit(main())
