"""Benchmark many writers on the embedded server: refused-and-retry against the fair line.

16 threads share 2,000 random grants and revocations through core (each thread owns its
users, so every operation's outcome is known), while one reader polls like a live page
tab: the page's own poll request, every second, through the app.
Run twice in one go, on fresh embedded servers: as mongoeco alone serves them (a busy
engine refuses; callers retry with back-off) and with the server's fair line
(database.engine_queue). Prints a Markdown table; checks the end state each time.
Usage: python scripts/bench_concurrency.py [--threads 16] [--operations 2000] [--purchases 500] [--fair-only]
"""

import argparse
import random
import statistics
import sys
import tempfile
import threading
import time
from datetime import UTC
from pathlib import Path

from pymongo import MongoClient

from app import create_app
from core import DatabaseUnavailableError, create_purchase, remove_purchase
from core.operations import check_consistency, seed_demo
from core.storage import ensure_indexes
from core.storage.schema import COURSES, USERS, user_array
from dashboard import shell
from dashboard.accounts import create_account
from dashboard.pages import live
from database.embedded import EmbeddedServer
from scripts.bench_dashboard import poll_request

POLL_SECONDS = 1.0


def run(fair: bool, args) -> dict:
    with tempfile.TemporaryDirectory() as folder:
        server = EmbeddedServer(Path(folder) / "bench.sqlite", fair_queue=fair)
        server.start()
        client = MongoClient(server.uri, tz_aware=True, tzinfo=UTC)
        try:
            return measure(client.bench, folder, args)
        finally:
            client.close()
            server.stop()


def measure(db, folder: str, args) -> dict:
    ensure_indexes(db)
    seed_demo(db, users=max(args.threads * 10, args.purchases // 10), items=40, purchases=args.purchases, seed=3)
    users = [u["_id"] for u in db[USERS].find({}, {"_id": 1})]
    courses = [c["_id"] for c in db[COURSES].find({}, {"_id": 1})]
    per_thread = [users[i::args.threads] for i in range(args.threads)]
    counts = [args.operations // args.threads + (i < args.operations % args.threads) for i in range(args.threads)]
    latencies, failures = [], []
    stop = threading.Event()
    polls = {"updates": 0, "banners": 0, "errors": 0, "seconds": [], "gaps": []}

    courses_owned = user_array("course")
    owned = {d["_id"]: set(d.get(courses_owned, [])) for d in db[USERS].find({}, {courses_owned: 1})}

    def writer(index: int):
        rng = random.Random(index)
        mine = per_thread[index]
        for _ in range(counts[index]):
            user = rng.choice(mine)
            course = rng.choice(courses)
            started = time.perf_counter()
            try:
                if course in owned[user]:
                    remove_purchase(db, user, course_id=course, actor="bench", reason="benchmark")
                    owned[user].discard(course)
                else:
                    create_purchase(db, user, course, None, {"amount": 9.99, "paymentMethod": "credit_card"})
                    owned[user].add(course)
            except Exception as error:  # noqa: BLE001 - counted and shown: the benchmark reports failures
                failures.append(type(error).__name__)
            latencies.append(time.perf_counter() - started)

    host, port = db.client.address
    app = create_app({"MONGODB_URI": f"mongodb://{host}:{port}/", "MONGODB_DB": db.name, "SEED_DEMO": "0", "HEALTH_CHECK_SECONDS": "0", "DATA_DIR": folder})
    create_account(db, "poller@example.com", "viewer", "poller password 123")
    tab = app.test_client()
    tab.post("/login", data={"email": "poller@example.com", "password": "poller password 123"})
    dash_app = app.extensions["dash"]

    def reader():
        state, updated_at = {}, time.monotonic()
        while not stop.is_set():
            started = time.perf_counter()
            reply = tab.post("/_dash-update-component", json=poll_request(dash_app, state))
            took = time.perf_counter() - started
            polls["seconds"].append(took)
            if reply.status_code == 200:
                response = reply.get_json()["response"]
                banner = response.get(shell.BANNER, {}).get("children")
                polls["banners"] += bool(banner)
                new = response.get(live.STATE, {}).get("data", state)
                if new.get("version") != state.get("version"):
                    polls["gaps"].append(time.monotonic() - updated_at)
                    updated_at = time.monotonic()
                    polls["updates"] += 1
                state = new
            elif reply.status_code != 204:
                polls["errors"] += 1
            stop.wait(max(0.0, POLL_SECONDS - took))

    threads = [threading.Thread(target=writer, args=(i,)) for i in range(args.threads)]
    poller = threading.Thread(target=reader)
    started = time.perf_counter()
    poller.start()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    elapsed = time.perf_counter() - started
    stop.set()
    poller.join()
    app.extensions["purchase_database"].close()
    try:
        problems = check_consistency(db)
    except DatabaseUnavailableError:
        # mongoeco alone never aborts a transaction whose client gave up on it midway: the
        # engine stays locked (what the fair line's transaction lifetime ends)
        problems = {"engine left locked by an unfinished transaction": [None]}
    ordered = sorted(latencies)
    return {
        "ops/s": len(latencies) / elapsed,
        "p50": statistics.median(ordered),
        "p99": ordered[int(len(ordered) * 0.99) - 1],
        "max": ordered[-1],
        "failed": len(failures),
        "kinds": sorted(set(failures)),
        "polls": polls,
        "clean": not any(problems.values()),
        "problems": sorted(kind for kind, found in problems.items() if found),
    }


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=16)
    parser.add_argument("--operations", type=int, default=2000)
    parser.add_argument("--purchases", type=int, default=500)
    parser.add_argument("--fair-only", action="store_true", help="skip the run on mongoeco alone (it takes minutes)")
    args = parser.parse_args(argv)
    results = {} if args.fair_only else {"refused, retried (mongoeco alone)": run(False, args)}
    results["fair line (engine_queue)"] = run(True, args)
    print(f"\n{args.threads} threads, {args.operations:,} grants and revocations, {args.purchases:,} purchases to start;"
          f" one live page tab polling every {POLL_SECONDS:g} s\n")
    print("| embedded server | ops/s | p50 | p99 | max | p99 / p50 | failed | poll: updates / banners / errors |"
          " slowest poll | wait for an update: median / longest | end state |")
    print("|---|---:|---:|---:|---:|---:|---:|---|---:|---:|---|")
    for name, r in results.items():
        polls = r["polls"]
        print(f"| {name} | {r['ops/s']:.1f} | {r['p50'] * 1000:.0f} ms | {r['p99'] * 1000:.0f} ms | "
              f"{r['max'] * 1000:.0f} ms | {r['p99'] / r['p50']:.1f}x | {r['failed']} {' '.join(r['kinds'])} | "
              f"{polls['updates']} / {polls['banners']} / {polls['errors']} | {max(polls['seconds']) * 1000:.0f} ms | "
              f"{statistics.median(polls['gaps'][1:] or [0]):.1f} / {max(polls['gaps'][1:] or [0]):.1f} s | {'consistent' if r['clean'] else ', '.join(r['problems'])} |")
    return 0 if all(r["clean"] and not r["failed"] for r in results.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
