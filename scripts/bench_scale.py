"""Benchmark how the embedded default scales: each operation at 5,000 to 300,000 purchases.

At each size, a database kept in FOLDER/<size>/ (a DATA_DIR), built once and reused by later
runs (FOLDER/<size>/built.json marks a finished build): purchases = size, users = size // 3,
80 courses and tests, an audit log of one grant per purchase (as core/audit.py writes it),
rollups and the activity feed as the demo loader makes them (core.operations.demo's
build_demo and load_demo, bulk-loaded in-process). It is left as another program would leave
it: without the app's indexes and without what the engine's corrections keep in the file (the
marker of a clean close, their triggers and one-time tables: as plain mongoeco writes it), and
every run puts it back in that state (drops the app's indexes, takes those out) before measuring:
  - first open (indexes built): open_database + ensure_indexes, in s; later opens after a
    clean close, in s;
  - core, on the bench's own connection: create_purchase on unowned (user, course) pairs and
    remove_purchase of them (the data keeps its size), has_purchased, get_purchase_history;
  - the app (create_app on the same DATA_DIR, joined to the bench's embedded server, Flask's
    test client signed in as an admin, callbacks posted to /_dash-update-component as the
    browser posts them): a customer's profile opened (the router, then the page's refresh),
    the grant form's confirm, a bulk grant of a CSV (core.operations.bulk: preview, then the
    job run in this thread; rows a second), a sign-in (POST /login), the live page's poll
    after a sale (as scripts/bench_dashboard.py);
  - `make run`: gunicorn -c gunicorn.conf.py "app:create_app()" on the folder, from start to
    GET /login answering 200, in s; then SIGTERM.
Prints one Markdown table: medians (and p95 rows), a column per size, the ratio to the first
size in parentheses. Progress goes to stderr; results are also kept in FOLDER/results.json.
Usage: python scripts/bench_scale.py FOLDER [--sizes 5000 20000 100000 300000] [--repeat 20]
       [--bulk-rows 50] [--bulk-files 3] [--opens 2]
"""

import argparse
import json
import os
import platform
import random
import sys
import time
from datetime import UTC, datetime
from importlib.metadata import version
from pathlib import Path

import psutil

from core.storage.schema import COURSES
from scripts.bench_scale_data import Pairs, database_for, sampled_users
from scripts.bench_scale_measure import Results, measure_app, measure_core, measure_make_run, measure_opens


def busy_cpu() -> tuple[float, float]:
    """CPU seconds used so far: by the whole machine, by this process and its children (waited for)."""
    machine = psutil.cpu_times()
    own = psutil.Process().cpu_times()
    return (sum(machine) - machine.idle - getattr(machine, "iowait", 0.0),
            own.user + own.system + own.children_user + own.children_system)


def bench_size(folder: Path, size: int, args) -> Results:
    results = Results(size)
    started, (machine_before, own_before) = time.perf_counter(), busy_cpu()
    data_dir, record = database_for(folder, size)
    results.value("build", record["buildSeconds"], "s")
    rng = random.Random(size)
    opened = measure_opens(data_dir, results, record, args.opens)
    try:
        db = opened.db
        users = sampled_users(db, record)
        courses = [c["_id"] for c in db[COURSES].find({}, {"_id": 1})]
        pairs = Pairs(users, courses, rng)
        measure_core(db, users, courses, pairs, rng, results, args.repeat)
        measure_app(data_dir, db, users, pairs, rng, results, args.repeat, args.bulk_rows, args.bulk_files)
    finally:
        opened.close()
    measure_make_run(data_dir, results)
    machine, own = busy_cpu()
    other = (machine - machine_before) - (own - own_before)
    results.value("other_cpu", max(0.0, other) / (time.perf_counter() - started) * 100, "% of a core")
    return results


# ---------------------------------------------------------------- the table

ROWS = [  # key, label, unit, decimals
    ("build", "database build (bulk load; once, reused after)", "s", 1),
    ("first_open", "first open (indexes built)", "s", 2),
    ("later_open", "later opens", "s", 2),
    ("make_run", "`make run` to the first page served", "s", 2),
    ("create", "create_purchase", "ms", 1),
    ("create_p95", "create_purchase p95", "ms", 1),
    ("remove", "remove_purchase", "ms", 1),
    ("remove_p95", "remove_purchase p95", "ms", 1),
    ("has", "has_purchased", "ms", 2),
    ("has_p95", "has_purchased p95", "ms", 2),
    ("history", "get_purchase_history", "ms", 1),
    ("history_p95", "get_purchase_history p95", "ms", 1),
    ("customer_page", "customer page opened (router + refresh callbacks)", "ms", 1),
    ("customer_page_p95", "customer page opened p95", "ms", 1),
    ("customer_refresh", "of which the refresh callback", "ms", 1),
    ("grant_confirm", "grant form's confirm (callback)", "ms", 1),
    ("grant_confirm_p95", "grant form's confirm p95", "ms", 1),
    ("bulk_rate", "bulk grant, preview + job", "rows/s", 1),
    ("bulk_preview", "bulk grant preview of the file", "ms", 1),
    ("sign_in", "sign-in (POST /login)", "ms", 1),
    ("poll_after_sale", "live page's poll after a sale", "ms", 1),
    ("poll_after_sale_p95", "live page's poll after a sale p95", "ms", 1),
    ("other_cpu", "other processes' CPU meanwhile (machine's busy time less the bench's)", "% of a core", 0),
]


def failures(all_results: dict[int, Results]) -> str:
    found = [f"{size:,}: {key} {n}" for size, results in sorted(all_results.items())
             for key, n in sorted(results.failures.items())]
    return ("Calls that did not do their work (timed all the same; see stderr): " + "; ".join(found)) if found else ""


def table(all_results: dict[int, dict], args) -> str:
    sizes = sorted(all_results)
    first = all_results[sizes[0]]
    lines = [f"| operation | unit | {' | '.join(f'{s:,}' for s in sizes)} |", "|---|---|" + "---:|" * len(sizes)]
    for key, label, unit, decimals in ROWS:
        cells = []
        for size in sizes:
            value = all_results[size].get(key)
            if value is None:
                cells.append("")
                continue
            cell = f"{value:,.{decimals}f}"
            if size != sizes[0] and first.get(key) and key != "other_cpu":
                cell += f" ({value / first[key]:.2f}x)"
            cells.append(cell)
        lines.append(f"| {label} | {unit} | {' | '.join(cells)} |")
    return "\n".join(lines)


def header(args) -> str:
    return (f"{datetime.now().astimezone():%Y-%m-%d %H:%M %Z}, {os.cpu_count()} CPUs ({platform.processor() or platform.machine()}),"
            f" Python {platform.python_version()}, mongoeco {version('mongoeco')}, pymongo {version('pymongo')};"
            f" embedded server; medians of {args.repeat} (has_purchased and get_purchase_history {5 * args.repeat},"
            f" sign-in {max(5, args.repeat // 2)}), bulk {args.bulk_files} files of {args.bulk_rows} rows;"
            " ratio to the first size in parentheses (for rows/s, below 1 is slower)")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("folder", type=Path, help="where the databases are kept (FOLDER/<size>/), reused by reruns")
    parser.add_argument("--sizes", type=int, nargs="+", default=[5000, 20000, 100000, 300000])
    parser.add_argument("--repeat", type=int, default=20, help="samples per operation")
    parser.add_argument("--bulk-rows", type=int, default=50)
    parser.add_argument("--bulk-files", type=int, default=3)
    parser.add_argument("--opens", type=int, default=2, help="later opens measured")
    args = parser.parse_args(argv)
    for name in ("MONGODB_URI", "MONGODB_DB"):
        os.environ.pop(name, None)  # the embedded default, here and in gunicorn
    args.folder.mkdir(parents=True, exist_ok=True)
    print(header(args), file=sys.stderr, flush=True)
    all_results = {}
    for size in args.sizes:
        all_results[size] = bench_size(args.folder, size, args)
        saved = args.folder / "results.json"
        kept = json.loads(saved.read_text()) if saved.exists() else {}
        kept[str(size)] = {"at": datetime.now(UTC).isoformat(timespec="seconds"), **all_results[size],
                           "failures": dict(all_results[size].failures)}
        saved.write_text(json.dumps(kept, indent=1))
        print(f"\n{table(all_results, args)}\n{failures(all_results)}\n", file=sys.stderr, flush=True)
    print(header(args) + "\n")
    print(table(all_results, args))
    if failures(all_results):
        print("\n" + failures(all_results))
    return 0


if __name__ == "__main__":
    sys.exit(main())
