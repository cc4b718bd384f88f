"""Benchmark the customer type-ahead (core.customers.find_customers) at 10,000 and 100,000 users.

Each size gets a fresh embedded database with demo-like users, bulk-loaded. Measured: the
first search (it builds the in-process index), then the median and 95th percentile of many
searches of each kind (prefixes, a domain, a surname before the first name, the audit
filter's words anywhere in a name or an email: customers_containing), the page's search
(find_customers plus one point read per result for its owned count), and a search for a
user added a moment ago, which reads the newcomers (an `_id` range, which the embedded
engine answers with a scan). Prints a Markdown table.
Usage: python scripts/bench_customer_search.py [--sizes 10000 100000] [--searches 300]
"""

import argparse
import random
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime

from core import bulk_insert, open_database
from core.customers import REFRESH_SECONDS, customers_containing, find_customers
from core.operations.demo import FIRST, LAST, build_demo
from core.storage.schema import USERS
from dashboard.pages.customers import search_results

CHUNK = 2_000
LIMIT = 10  # what a type-ahead asks for
REFRESH_SAMPLES = 3
TARGET_MS = 50  # a keystroke's search, before HTTP: well inside a 200 ms debounce


def timed(calls) -> list[float]:
    """Run each call once; the milliseconds each took."""
    times = []
    for call in calls:
        started = time.perf_counter()
        call()
        times.append((time.perf_counter() - started) * 1000)
    return times


def load_users(db, count: int, seed: int) -> tuple[list[dict], float]:
    """Bulk-insert `count` demo users; return them and the seconds it took."""
    users = build_demo(random.Random(seed), count, 2, 0, datetime.now(UTC))[USERS]
    started = time.perf_counter()
    for start in range(0, len(users), CHUNK):
        bulk_insert(db, USERS, users[start : start + CHUNK])
    return users, time.perf_counter() - started


def queries(users: list[dict], count: int, rng: random.Random) -> dict[str, list[str]]:
    """Search texts of each kind, drawn from the loaded users."""
    sample = [rng.choice(users) for _ in range(count)]
    return {
        "email prefix": [u["email"][: rng.randint(3, 10)] for u in sample],
        "first name prefix": [rng.choice(FIRST)[: rng.randint(2, 5)] for _ in sample],
        "last name prefix": [rng.choice(LAST)[: rng.randint(3, 6)] for _ in sample],
        "full email": [u["email"] for u in sample],
        "email domain (`example.com`, `@example.com`)": [rng.choice(["example.com", "@example.com"]) for _ in sample],
        "surname, then first name": [" ".join(reversed(u["name"].split(maxsplit=1))) for u in sample],
        "miss": [f"zq{rng.randrange(10**6)}" for _ in sample],
        "id (24 hex)": [str(u["_id"]) for u in sample],
    }


def bench_size(size: int, searches: int) -> dict[str, str]:
    with tempfile.TemporaryDirectory() as data_dir:
        opened = open_database(data_dir=data_dir, db_name=f"bench_search_{size}")
        try:
            return measure(opened.db, size, searches)
        finally:
            opened.close()


def measure(db, size: int, searches: int) -> dict[str, str]:
    rng = random.Random(size)
    users, load_seconds = load_users(db, size, size)
    print(f"{size:,} users loaded in {load_seconds:.1f} s", file=sys.stderr, flush=True)
    results = {"bulk load": f"{load_seconds:.1f} s"}
    [first] = timed([lambda: find_customers(db, "grace", LIMIT)])
    results["first search (builds the index)"] = f"{first:,.0f} ms"
    for kind, texts in queries(users, searches, rng).items():
        results[kind] = spread(timed([lambda t=t: find_customers(db, t, LIMIT) for t in texts]))
    parts = [u["email"][2:9] for u in rng.sample(users, searches)]
    results["audit filter: words anywhere in a name or email (up to 201 users)"] = spread(timed(
        [lambda t=t: customers_containing(db, t, 201) for t in parts]))
    texts = queries(users, searches // 3, rng)["email prefix"]
    results["page's search (20 results + owned counts)"] = spread(timed([lambda t=t: search_results(db, t)
                                                                         for t in texts]))
    refreshes = []
    for index in range(REFRESH_SAMPLES):
        time.sleep(REFRESH_SECONDS + 0.1)
        new = build_demo(random.Random(index), 10, 2, 0, datetime.now(UTC))[USERS]
        bulk_insert(db, USERS, new)
        refreshes += timed([lambda n=new: find_customers(db, n[0]["email"], LIMIT)])
    results["search for a user added a moment ago (reads the newcomers)"] = f"{statistics.median(refreshes):,.1f} ms"
    return results


def spread(times: list[float]) -> str:
    """Median and 95th percentile."""
    p95 = statistics.quantiles(times, n=20)[-1]
    return f"{statistics.median(times):.2f} ms (p95 {p95:.2f})"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000])
    parser.add_argument("--searches", type=int, default=300, help="searches of each kind per size")
    args = parser.parse_args(argv)
    columns = {size: bench_size(size, args.searches) for size in args.sizes}
    rows = list(next(iter(columns.values())))
    print(f"find_customers(db, text, limit={LIMIT}) on the embedded engine; median (95th percentile) of "
          f"{args.searches} searches per kind; target for a keystroke's search: < {TARGET_MS} ms")
    print()
    print("| measurement | " + " | ".join(f"{size:,} users" for size in columns) + " |")
    print("|---|" + "---:|" * len(columns))
    for row in rows:
        print(f"| {row} | " + " | ".join(columns[size][row] for size in columns) + " |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
