"""Time and peak memory of the two migrations and of the checker, on the embedded server, at two sizes.

Usage: python scripts/bench_migrations.py [--sizes 20000:60000,100000:300000] [--only STEP] [--keep DIR] [--split]

For each size, two legacy databases are built in temporary folders (with the in-process
bulk path): purchases with every user's arrays missing or partial (for migrate_purchases.py),
and arrays with no purchases (for implement_hybrid_purchases.py). Each script then runs as
a user runs it, in its own process that owns the embedded server, and so does the checker
(scripts/test_hybrid_system.py) on the migrated result. Peak memory is then the child
process's peak resident set size (VmHWM, read as it runs): the script and the engine
together, the engine's opening of the file (its index backfill) included.

--split runs each step a second time joined to a server that another process owns (how a
script runs beside a live app), and reports the two apart: the script's own peak and time,
and the server process's peak (its opening included) and the time it took to open. The
migrations' bulk writes then go over the wire, as beside a live app.

--keep DIR builds each database once into DIR and runs every step on a fresh copy of it.
Prints a table, and each script's own line of where its time went.
"""

import argparse
import os
import random
import resource
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from bson import ObjectId

from core import bulk_insert, open_database
from core.storage.schema import COURSES, PURCHASES, TESTS, USERS, user_array

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
                user[user_array("course")] = [item for kind, item in bought if kind == "course"]
                user[user_array("test")] = [item for kind, item in bought if kind == "test"]
            if direction == "arrays":
                user[user_array("course")] = [item for kind, item in bought if kind == "course"]
                tests = [item for kind, item in bought if kind == "test"]
                user[user_array("test")] = [str(item) for item in tests] if i % 100 == 0 else tests  # legacy strings
            if direction != "arrays":
                if direction == "purchases" and i % 2:  # half the users have a partial array, the others none
                    user[user_array("course")] = [bought[0][1]]
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
    env = _env(folder)
    started = time.perf_counter()
    process = subprocess.Popen([sys.executable, script], cwd=ROOT, env=env, stdout=subprocess.PIPE,
                               stderr=subprocess.STDOUT, text=True)
    peak = PeakMemory(process.pid)
    output = process.stdout.read()
    process.wait()
    seconds = time.perf_counter() - started
    timing = next((line for line in output.splitlines() if line.startswith("Time:")), "")
    if process.returncode != 0:
        print(output[-3000:], flush=True)
    return seconds, peak.stop(), process.returncode, timing


class PeakMemory(threading.Thread):
    """A process's peak resident set size (VmHWM), read every POLL seconds until it ends.

    Not the child's ru_maxrss: Linux counts in it the parent's own peak when the child was
    spawned (vfork, then exec), and this process builds the databases, so every child would
    report at least this process's size.
    """

    POLL = 0.2

    def __init__(self, pid: int):
        super().__init__(daemon=True)
        self.path, self.peak_kb, self._done = Path(f"/proc/{pid}/status"), 0, threading.Event()
        self.start()

    def run(self) -> None:
        while not self._done.is_set():
            try:
                for line in self.path.read_text().splitlines():
                    if line.startswith("VmHWM:"):
                        self.peak_kb = max(self.peak_kb, int(line.split()[1]))
            except (OSError, ValueError):
                return  # the process is gone
            self._done.wait(self.POLL)

    def stop(self) -> float:
        """The peak in MB (the last reading before the process ended)."""
        self._done.set()
        self.join()
        return self.peak_kb / 1024


# Owns the folder's embedded server until its standard input closes.
_HOLDER = """
import sys, time
from settings import load_settings
started = time.perf_counter()
opened = load_settings().open_database()
print(f"ready {time.perf_counter() - started:.1f}", flush=True)
sys.stdin.read()
opened.close()
"""


def run_split(folder: Path, script: str) -> tuple[float, float, int, float, float]:
    """A script joined to a server that another process owns: (its seconds, its peak RSS in
    MB, its exit status, the server process's peak RSS in MB, seconds the server took to open)."""
    env = _env(folder)
    holder = subprocess.Popen([sys.executable, "-c", _HOLDER], cwd=ROOT, env=env, stdin=subprocess.PIPE,
                              stdout=subprocess.PIPE, text=True)
    server_peak = PeakMemory(holder.pid)
    ready = holder.stdout.readline().split()
    if not ready or ready[0] != "ready":
        holder.kill()
        raise RuntimeError(f"the server process did not start: {ready}")
    seconds, rss, status, _ = run(folder, script)
    holder.stdin.close()
    holder.wait()
    return seconds, rss, status, server_peak.stop(), float(ready[1])


def _env(folder: Path) -> dict:
    env = {**os.environ, "DATA_DIR": str(folder)}
    env.pop("MONGODB_URI", None)
    env.pop("MONGODB_DB", None)
    return env


def prepared(keep: Path | None, tmp: Path, users: int, purchases: int, direction: str) -> Path:
    """A folder holding a freshly built database (from DIR/<direction>-<users> when --keep)."""
    folder = tmp / "data"
    built = keep / f"{direction}-{users}-{purchases}" if keep else folder
    if not (built / "purchases.sqlite").exists():
        started = time.perf_counter()
        build(built, users, purchases, direction)
        if direction == "clean":  # its rollups, as a migration leaves them
            run(built, "scripts/rebuild_rollups.py")
        print(f"built {users:,} users / {purchases:,} purchases ({direction}) in "
              f"{time.perf_counter() - started:.0f} s", flush=True)
    if built != folder:
        shutil.copytree(built, folder, ignore=shutil.ignore_patterns("embedded.lock"))
    return folder


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="20000:60000,100000:300000", help="users:purchases, comma-separated")
    parser.add_argument("--only", choices=("purchases", "arrays", "check"), help="one step only (check: the checker on consistent data)")
    parser.add_argument("--keep", type=Path, help="build each database once into this folder and reuse it")
    parser.add_argument("--split", action="store_true", help="also measure each step joined to a server in another process")
    args = parser.parse_args(argv)
    sizes = [tuple(int(n) for n in size.split(":")) for size in args.sizes.split(",")]
    rows, split_rows = [], []

    def measure(folder, users, purchases, label, script, copy_from=None):
        seconds, rss, status, timing = run(folder, script)
        rows.append((users, purchases, label, seconds, rss, status))
        print(f"  {label}: {seconds:.0f} s, {rss:.0f} MB (script and engine, one process), exit {status}. {timing}",
              flush=True)
        if args.split and copy_from is not None:
            again = folder.parent / "split"
            shutil.rmtree(again, ignore_errors=True)
            shutil.copytree(copy_from, again, ignore=shutil.ignore_patterns("embedded.lock"))
            seconds, rss, status, server_rss, opening = run_split(again, script)
            split_rows.append((users, purchases, label, seconds, rss, server_rss, opening, status))
            print(f"  {label}, joined: script {seconds:.0f} s, {rss:.0f} MB; server process {server_rss:.0f} MB "
                  f"(opening the file {opening:.0f} s), exit {status}", flush=True)
            shutil.rmtree(again, ignore_errors=True)

    for users, purchases in sizes:
        for direction, script in (("purchases", "scripts/migrate_purchases.py"),
                                  ("arrays", "scripts/implement_hybrid_purchases.py"), ("check", None)):
            if args.only and direction != args.only:
                continue
            if direction == "check":
                direction, script = "clean", "scripts/test_hybrid_system.py"
            with tempfile.TemporaryDirectory() as tmp:
                folder = prepared(args.keep, Path(tmp), users, purchases, direction)
                pristine = None
                if args.split:  # the same starting point for the joined run
                    pristine = Path(tmp) / "pristine"
                    shutil.copytree(folder, pristine, ignore=shutil.ignore_patterns("embedded.lock"))
                label = Path(script).name + (" (consistent data)" if direction == "clean" else "")
                measure(folder, users, purchases, label, script, pristine)
                if direction == "purchases":
                    measure(folder, users, purchases, "test_hybrid_system.py", "scripts/test_hybrid_system.py")
    print("\nAs a user runs them: the script owns the embedded server, in its own process;")
    print("peak RSS is the script and the engine together, the engine's opening of the file included.")
    print(f"\n{'users':>8} {'purchases':>9}  {'step':<40} {'time':>8} {'peak RSS':>9} {'exit':>4}")
    for users, purchases, step, seconds, rss, status in rows:
        print(f"{users:>8,} {purchases:>9,}  {step:<40} {seconds:>7.0f}s {rss:>7.0f}MB {status:>4}")
    _ratios(rows, lambda row: (row[0], row[3], row[4]))
    if split_rows:
        print("\nJoined to a server that another process owns (as beside a live app): the script's own")
        print("time and peak RSS; the server process's peak RSS (opening the file included) and opening time.")
        print(f"\n{'users':>8} {'purchases':>9}  {'step':<40} {'time':>8} {'script':>8} {'server':>8} {'opening':>8}")
        for users, purchases, step, seconds, rss, server_rss, opening, status in split_rows:
            print(f"{users:>8,} {purchases:>9,}  {step:<40} {seconds:>7.0f}s {rss:>6.0f}MB {server_rss:>6.0f}MB "
                  f"{opening:>7.0f}s" + (f" exit {status}" if status else ""))
        _ratios(split_rows, lambda row: (row[0], row[3], row[4]), "script alone")
        _ratios(split_rows, lambda row: (row[0], row[6], row[5]), "server process (time: opening)")
    print(f"\n(this process: {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MB)")
    return 0


def _ratios(rows, pick, what: str = "") -> None:
    """Memory and time from the smallest size to the largest, per step."""
    by_step = {}
    for row in rows:
        by_step.setdefault(row[2], []).append(pick(row))
    for step, found in by_step.items():
        if len(found) > 1:
            print(f"{step}{', ' + what if what else ''}: memory {found[-1][2] / found[0][2]:.2f}x, "
                  f"time {found[-1][1] / found[0][1]:.2f}x from {found[0][0]:,} to {found[-1][0]:,} users")


if __name__ == "__main__":
    sys.exit(main())
