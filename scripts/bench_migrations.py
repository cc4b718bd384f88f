"""Time and peak memory of the two migrations and of the checker, on the embedded server, at two sizes.

Usage: python scripts/bench_migrations.py [--sizes 20000:60000,100000:300000] [--keep DIR]

For each size, two legacy databases are built in temporary folders (with the in-process
bulk path): purchases with every user's arrays missing or partial (for migrate_purchases.py),
and arrays with no purchases (for implement_hybrid_purchases.py). Each script then runs as
a user runs it, in its own process that owns the embedded server, and so does the checker
(scripts/test_hybrid_system.py) on the migrated result. Peak memory is the child process's
maximum resident set size, engine included. Prints a table, and each script's own line of
where its time went.
"""

import argparse
import os
import random
import resource
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from bson import ObjectId

from core import bulk_insert, open_database
from core.storage.schema import COURSES, PURCHASES, TESTS, USERS

ROOT = Path(__file__).resolve().parent.parent
CHUNK = 5000
ITEMS = 100  # courses and tests each
START = datetime(2023, 1, 1, tzinfo=UTC)


def build(folder: Path, users: int, purchases: int, direction: str, seed: int = 7) -> None:
    """A legacy database: purchases only ("purchases") or arrays only ("arrays"), 1% of it messy."""
    rng = random.Random(seed)
    with open_database(data_dir=folder) as opened:
        db = opened.db
        catalog = {}
        for name, kind in ((COURSES, "course"), (TESTS, "test")):
            docs = [{"_id": ObjectId(), "title": f"{kind} {i}", "price": round(5 + i * 0.25, 2),
                     "createdAt": START - timedelta(days=i)} for i in range(ITEMS)]
            bulk_insert(db, name, docs)
            catalog[kind] = [d["_id"] for d in docs]
        per_user = purchases // users
        user_docs, purchase_docs = [], []
        for i in range(users):
            uid = ObjectId()
            user = {"_id": uid, "name": f"User {i}", "email": f"user{i}@example.com",
                    "createdAt": START + timedelta(minutes=i)}
            owned = {kind: rng.sample(catalog[kind], per_user) for kind in ("course", "test")}
            bought = [("course", item) for item in owned["course"][: (per_user + 1) // 2]]
            bought += [("test", item) for item in owned["test"][: per_user // 2]]
            if direction == "clean":  # both halves, consistent: what the checker reads after a migration
                user["purchasedCourses"] = [item for kind, item in bought if kind == "course"]
                user["purchasedTests"] = [item for kind, item in bought if kind == "test"]
            if direction == "arrays":
                user["purchasedCourses"] = [item for kind, item in bought if kind == "course"]
                tests = [item for kind, item in bought if kind == "test"]
                user["purchasedTests"] = [str(item) for item in tests] if i % 100 == 0 else tests  # legacy strings
            if direction != "arrays":
                if direction == "purchases" and i % 2:  # half the users have a partial array, the others none
                    user["purchasedCourses"] = [bought[0][1]]
                for n, (kind, item) in enumerate(bought):
                    at = START + timedelta(minutes=i, seconds=n)
                    doc = {"_id": ObjectId(), "user": uid, kind: item, "amount": 9.99, "paymentMethod": "credit_card",
                           "purchasedAt": at}
                    if i % 100 == 0 and direction == "purchases":  # legacy shapes: string ids, amounts and dates
                        doc.update(user=str(uid), amount="9.99", purchasedAt=at.isoformat())
                    purchase_docs.append(doc)
            user_docs.append(user)
            if len(user_docs) >= CHUNK:
                bulk_insert(db, USERS, user_docs)
                user_docs = []
            if len(purchase_docs) >= CHUNK:
                bulk_insert(db, PURCHASES, purchase_docs)
                purchase_docs = []
        bulk_insert(db, USERS, user_docs)
        bulk_insert(db, PURCHASES, purchase_docs)


def run(folder: Path, script: str) -> tuple[float, float, int, str]:
    """(seconds, peak RSS in MB, exit status, its "Time:" line) of a script run in its own process."""
    env = {**os.environ, "DATA_DIR": str(folder)}
    env.pop("MONGODB_URI", None)
    started = time.perf_counter()
    process = subprocess.Popen([sys.executable, script], cwd=ROOT, env=env, stdout=subprocess.PIPE,
                               stderr=subprocess.STDOUT, text=True)
    output = process.stdout.read()
    _, status, usage = os.wait4(process.pid, 0)
    seconds = time.perf_counter() - started
    timing = next((line for line in output.splitlines() if line.startswith("Time:")), "")
    if os.waitstatus_to_exitcode(status) != 0:
        print(output[-3000:], flush=True)
    return seconds, usage.ru_maxrss / 1024, os.waitstatus_to_exitcode(status), timing


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="20000:60000,100000:300000", help="users:purchases, comma-separated")
    parser.add_argument("--only", choices=("purchases", "arrays", "check"), help="one step only (check: the checker on consistent data)")
    args = parser.parse_args(argv)
    sizes = [tuple(int(n) for n in size.split(":")) for size in args.sizes.split(",")]
    rows = []
    for users, purchases in sizes:
        for direction, script in (("purchases", "scripts/migrate_purchases.py"),
                                  ("arrays", "scripts/implement_hybrid_purchases.py"), ("check", None)):
            if args.only and direction != args.only:
                continue
            if direction == "check":
                direction, script = "clean", "scripts/test_hybrid_system.py"
            with tempfile.TemporaryDirectory() as tmp:
                folder = Path(tmp)
                started = time.perf_counter()
                build(folder, users, purchases, direction)
                print(f"built {users:,} users / {purchases:,} purchases ({direction}) in "
                      f"{time.perf_counter() - started:.0f} s", flush=True)
                label = Path(script).name
                if direction == "clean":  # its rollups first, as a migration leaves them
                    run(folder, "scripts/rebuild_rollups.py")
                    label += " (consistent data)"
                seconds, rss, status, timing = run(folder, script)
                rows.append((users, purchases, label, seconds, rss, status))
                print(f"  {label}: {seconds:.0f} s, {rss:.0f} MB, exit {status}. {timing}", flush=True)
                if direction == "purchases":
                    seconds, rss, status, _ = run(folder, "scripts/test_hybrid_system.py")
                    rows.append((users, purchases, "test_hybrid_system.py", seconds, rss, status))
                    print(f"  test_hybrid_system.py: {seconds:.0f} s, {rss:.0f} MB, exit {status}", flush=True)
    print(f"\n{'users':>8} {'purchases':>9}  {'step':<31} {'time':>8} {'peak RSS':>9} {'exit':>4}")
    for users, purchases, step, seconds, rss, status in rows:
        print(f"{users:>8,} {purchases:>9,}  {step:<31} {seconds:>7.0f}s {rss:>7.0f}MB {status:>4}")
    by_step = {}
    for users, _, step, seconds, rss, _ in rows:
        by_step.setdefault(step, []).append((users, seconds, rss))
    print()
    for step, found in by_step.items():
        if len(found) > 1:
            print(f"{step}: memory {found[-1][2] / found[0][2]:.2f}x, time {found[-1][1] / found[0][1]:.2f}x "
                  f"from {found[0][0]:,} to {found[-1][0]:,} users")
    print(f"(this process: {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MB)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
