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
import contextlib
import itertools
import json
import os
import platform
import random
import shutil
import sqlite3
import statistics
import sys
import time
from collections import Counter
from datetime import UTC, datetime
from importlib.metadata import version
from pathlib import Path

import psutil
import requests
from bson import ObjectId
from tqdm import tqdm

from app import create_app
from core import (
    NotPurchasedError,
    create_purchase,
    ensure_indexes,
    get_purchase_history,
    has_purchased,
    open_database,
    remove_purchase,
)
from core.operations import bulk
from core.operations.demo import build_demo, load_demo
from core.storage import mongoeco_corrections
from core.storage.db import bulk_insert
from core.storage.documents import utc
from core.storage.schema import AUDIT, COURSES, PURCHASES, REVOKED, TESTS, USERS
from dashboard import shell
from dashboard.accounts import create_account, get_account
from dashboard.pages import customers, grant, live
from database.opening import DEFAULT_DB_NAME, SQLITE_NAME, _open_embedded
from scripts.bench_api import Server
from scripts.bench_core import timed
from scripts.bench_dashboard import timed_poll
from scripts.dash_client import callback_body, callback_key

ITEMS = 80
CHUNK = 1000
CORRECTIONS_PREFIX = "purchases_"  # of every table, trigger and index the engine's corrections add to the file
SAMPLE_USERS = 3000  # user ids kept in built.json: the bench draws its users from them
BUILT = "built.json"
ADMIN_EMAIL, ADMIN_PASSWORD = "bench-scale@example.com", "bench scale password 123"
START_TIMEOUT = 1800.0


# ---------------------------------------------------------------- building a database

class CachedWeights(random.Random):
    """random.Random whose `choices(population, weights)` keeps the cumulative weights of a long
    weights list between calls: the standard one sums them again on every call, O(users) a
    purchase. Same answers for the same seed (choices with weights is choices with their sums)."""

    def __init__(self, seed):
        super().__init__(seed)
        self._weights, self._cumulative = None, None

    def choices(self, population, weights=None, *, cum_weights=None, k=1):
        if weights is not None and cum_weights is None and len(weights) > 1000:
            if weights is not self._weights:
                self._weights, self._cumulative = weights, list(itertools.accumulate(weights))
            return super().choices(population, cum_weights=self._cumulative, k=k)
        return super().choices(population, weights, cum_weights=cum_weights, k=k)


def audit_entries(purchases: list[dict], names: dict, titles: dict, rng: random.Random):
    """One grant entry per purchase, as core.audit.record_change writes it (its `_id` made at the change)."""
    for purchase in purchases:
        kind = "course" if "course" in purchase else "test"
        at = purchase["purchasedAt"]
        yield {
            "_id": ObjectId(int(at.timestamp()).to_bytes(4, "big") + rng.randbytes(8)),
            "at": at, "action": "grant", "source": "script", "actor": purchase.get("actor"),
            "user": purchase["user"], "userName": names.get(purchase["user"]), "kind": kind, "item": purchase[kind],
            "title": titles.get(purchase[kind]), "purchase": purchase["_id"], "amount": purchase["amount"],
            "currency": purchase.get("currency"), "paymentMethod": purchase["paymentMethod"],
            "idempotencyKey": purchase.get("idempotencyKey"), "discountCode": purchase.get("discountCode"),
            "reason": None, "note": None,
        }


def build(data_dir: Path, size: int) -> dict:
    """Write a database of `size` purchases into `data_dir` without the app's indexes; return its record."""
    shutil.rmtree(data_dir, ignore_errors=True)  # a build that did not finish
    started = time.perf_counter()
    rng = CachedWeights(size)
    documents = build_demo(rng, max(1, size // 3), ITEMS, size, datetime.now(UTC))
    generated = time.perf_counter() - started
    names = {u["_id"]: u["name"] for u in documents[USERS]}
    titles = {i["_id"]: i["title"] for i in documents[COURSES] + documents[TESTS]}
    total = sum(len(documents[name]) for name in (COURSES, TESTS, PURCHASES, USERS)) + size
    opened = _open_embedded(data_dir, DEFAULT_DB_NAME)  # open_database would create the app's indexes
    try:
        db = utc(opened.db)
        with tqdm(total=total, unit="doc", desc=f"{size:,} purchases: loading", file=sys.stderr,
                  mininterval=2) as bar:
            load_demo(db, documents, progress=bar.update)
            entries = audit_entries(documents[PURCHASES], names, titles, rng)
            while chunk := list(itertools.islice(entries, CHUNK)):
                bulk_insert(db, AUDIT, chunk)
                bar.update(len(chunk))
    finally:
        opened.close()
    as_another_program_wrote_it(data_dir)
    record = {"purchases": size, "users": len(documents[USERS]), "items": ITEMS, "audit": size,
              "builtAt": datetime.now(UTC).isoformat(timespec="seconds"), "generateSeconds": round(generated, 1),
              "buildSeconds": round(time.perf_counter() - started, 1), "appIndexes": False,
              "sampleUsers": [str(u["_id"]) for u in rng.sample(documents[USERS], min(SAMPLE_USERS, len(documents[USERS])))]}
    write_record(data_dir, record)
    return record


def write_record(data_dir: Path, record: dict) -> None:
    path = data_dir / BUILT
    path.with_suffix(".tmp").write_text(json.dumps(record, indent=1))
    path.with_suffix(".tmp").replace(path)


def as_another_program_wrote_it(data_dir: Path) -> None:
    """Take out of the SQLite file what database/corrections.py keeps there (the
    marker of a clean close, its triggers, the tables and indexes it fills once a file: every
    name starting CORRECTIONS_PREFIX), as in a file that plain mongoeco wrote: the next open
    finds no index entry known to be current and does the corrections' one-time work itself."""
    if not mongoeco_corrections.MARKER_TABLE.startswith(CORRECTIONS_PREFIX):
        raise RuntimeError(f"database/corrections.py no longer names its tables {CORRECTIONS_PREFIX}*")
    conn = sqlite3.connect(data_dir / SQLITE_NAME, timeout=60)
    try:
        with conn:
            found = conn.execute("SELECT type, name FROM sqlite_master WHERE substr(name, 1, ?) = ?",
                                 (len(CORRECTIONS_PREFIX), CORRECTIONS_PREFIX)).fetchall()
            for kind in ("trigger", "index", "table"):
                for name in sorted(name for found_kind, name in found if found_kind == kind):
                    conn.execute(f'DROP {kind.upper()} IF EXISTS "{name}"')
    finally:
        conn.close()


def as_another_program_left_it(data_dir: Path, record: dict) -> None:
    """Drop the indexes the app made in an earlier run, and what the engine's corrections keep in the file."""
    if record.get("appIndexes", True):
        opened = _open_embedded(data_dir, DEFAULT_DB_NAME)
        try:
            for name in (PURCHASES, REVOKED, AUDIT):
                for index in opened.db[name].index_information():
                    if index != "_id_":
                        opened.db[name].drop_index(index)
        finally:
            opened.close()
        record["appIndexes"] = False
        write_record(data_dir, record)
    as_another_program_wrote_it(data_dir)


def database_for(folder: Path, size: int) -> tuple[Path, dict]:
    data_dir = folder / str(size)
    try:
        record = json.loads((data_dir / BUILT).read_text())
        if record.get("purchases") != size:
            raise ValueError(f"{data_dir / BUILT} is for {record.get('purchases')} purchases")
        note(size, f"reusing the database built {record['builtAt']} in {record['buildSeconds']} s")
        as_another_program_left_it(data_dir, record)
    except (OSError, ValueError, KeyError):
        note(size, f"building {size:,} purchases, {size // 3:,} users, {ITEMS} items, an audit log of {size:,}")
        record = build(data_dir, size)
        note(size, f"built in {record['buildSeconds']} s (documents made in {record['generateSeconds']} s)")
    return data_dir, record


# ---------------------------------------------------------------- measuring

def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * q))]


def note(size: int, text: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {size:,}: {text}", file=sys.stderr, flush=True)


class Results(dict):
    """Measurements of one size by row key; each is reported to stderr as it comes."""

    def __init__(self, size: int):
        super().__init__()
        self.size = size
        self.failures = Counter()  # by row key: calls that did not do their work (timed all the same)

    def failed(self, key: str, text: str) -> None:
        self.failures[key] += 1
        note(self.size, f"{key}: failed: {text[:300]}")

    def times(self, key: str, seconds: list[float], p95: bool = True) -> None:
        self[key] = statistics.median(seconds) * 1000
        if p95:
            self[f"{key}_p95"] = percentile(seconds, 0.95) * 1000
        extra = f", p95 {self[f'{key}_p95']:.1f} ms" if p95 else ""
        note(self.size, f"{key}: median {self[key]:.1f} ms{extra} (n={len(seconds)})")

    def value(self, key: str, value: float, unit: str) -> None:
        self[key] = value
        note(self.size, f"{key}: {value:.2f} {unit}")


class Pairs:
    """(user, course) pairs the user does not own, each handed out once, users from the sample."""

    def __init__(self, users: list[dict], courses: list, rng: random.Random):
        self.users, self.courses, self.rng, self.taken = users, courses, rng, set()

    def take(self, count: int) -> list[tuple]:
        picks = []
        while len(picks) < count:
            user, course = self.rng.choice(self.users), self.rng.choice(self.courses)
            if course in (user.get("purchasedCourses") or []) or (user["_id"], course) in self.taken:
                continue
            self.taken.add((user["_id"], course))
            picks.append((user, course))
        return picks


def sampled_users(db, record: dict) -> list[dict]:
    ids = [ObjectId(i) for i in record["sampleUsers"]]
    fields = {"name": 1, "email": 1, "purchasedCourses": 1, "purchasedTests": 1}
    # in parts: mongoeco refuses an $in of about 1,000 values ("Expression tree is too large")
    return [doc for start in range(0, len(ids), 200)
            for doc in db[USERS].find({"_id": {"$in": ids[start : start + 200]}}, fields)]


def measure_opens(data_dir: Path, results: Results, record: dict, opens: int):
    """First open (the indexes built), then later opens after clean closes; the last one stays open."""
    record["appIndexes"] = True  # from here on, even if this run is cut short
    write_record(data_dir, record)
    started = time.perf_counter()
    opened = open_database(uri="", data_dir=data_dir)
    ensure_indexes(opened.db)
    results.value("first_open", time.perf_counter() - started, "s")
    later = []
    for _ in range(opens):
        opened.close()
        started = time.perf_counter()
        opened = open_database(uri="", data_dir=data_dir)
        ensure_indexes(opened.db)
        later.append(time.perf_counter() - started)
    note(results.size, f"later opens: {', '.join(f'{t:.2f}' for t in later)} s")
    results.value("later_open", statistics.median(later), "s")
    return opened


def measure_core(db, users: list[dict], courses: list, pairs: Pairs, rng: random.Random, results: Results,
                 repeat: int) -> None:
    data = {"amount": 19.99, "paymentMethod": "credit_card"}
    for user, course in pairs.take(3):  # the first writes fill the engine's caches: not timed
        create_purchase(db, user["_id"], course, None, data)
        remove_purchase(db, user["_id"], course)
    picks = pairs.take(repeat)
    results.times("create", timed([lambda p=p: create_purchase(db, p[0]["_id"], p[1], None, data) for p in picks]))
    results.times("remove", timed([lambda p=p: remove_purchase(db, p[0]["_id"], p[1]) for p in picks]))

    checks = []
    for _ in range(5 * repeat):
        user = rng.choice(users)
        owned = user.get("purchasedCourses") or []
        checks.append((user["_id"], rng.choice(owned) if owned and rng.random() < 0.5 else rng.choice(courses)))
    results.times("has", timed([lambda c=c: has_purchased(db, c[0], c[1], None) for c in checks]))
    readers = [rng.choice(users)["_id"] for _ in range(5 * repeat)]
    results.times("history", timed([lambda u=u: get_purchase_history(db, u) for u in readers]))


def take_back(db, granted: list[tuple]) -> None:
    """Remove the purchases the bench made (the data keeps its size); a pair not granted is skipped."""
    for user, course in granted:
        with contextlib.suppress(NotPurchasedError):
            remove_purchase(db, user["_id"], course)


def posted(client, body: dict) -> dict:
    reply = client.post("/_dash-update-component", json=body)
    if reply.status_code != 200:
        raise RuntimeError(f"callback {body['output']}: HTTP {reply.status_code} {reply.get_data(as_text=True)[:300]}")
    return reply.get_json()["response"]


def sign_in(server):
    client = server.test_client()
    reply = client.post("/login", data={"email": ADMIN_EMAIL, "password": ADMIN_PASSWORD})
    if reply.status_code != 302:
        raise RuntimeError(f"sign-in: HTTP {reply.status_code}")
    return client


def measure_app(data_dir: Path, db, users: list[dict], pairs: Pairs, rng: random.Random, results: Results,
                repeat: int, bulk_rows: int, bulk_files: int) -> None:
    server = create_app({"DATA_DIR": str(data_dir), "MONGODB_URI": "", "MONGODB_DB": DEFAULT_DB_NAME, "SEED_DEMO": "0",
                         "HEALTH_CHECK_SECONDS": "0", "TESTING": True,
                         # the cost of a sign-in is measured here, not the throttle that spaces out repeated ones
                         "LOGIN_LIMIT_ACCOUNT": "1000 per minute", "LOGIN_LIMIT_ADDRESS": "1000 per minute"})
    try:
        app_db = server.extensions["purchase_database"].db
        if get_account(app_db, ADMIN_EMAIL) is None:
            create_account(app_db, ADMIN_EMAIL, "admin", ADMIN_PASSWORD, "Bench Scale")
        dash_app = server.extensions["dash"]
        admin = sign_in(server)
        # the live page drawn once (the app warms its caches from its first requests): not timed
        state, give_up = {}, time.monotonic() + 300
        while time.monotonic() < give_up:
            _, state, code = timed_poll(admin, dash_app, state)
            if code == 200:
                break
            time.sleep(0.2)
        time.sleep(3)
        _, state, _ = timed_poll(admin, dash_app, state)

        results.times("sign_in", timed([lambda: sign_in(server)] * max(5, repeat // 2)), p95=False)

        # a customer's profile: the router draws the page for the path, then the page's refresh fills it
        route = callback_key(dash_app, f"{shell.CONTENT}.children")
        refresh = callback_key(dash_app, f"{customers.GRID}.rowData")

        def open_profile(user_id: str, parts: list) -> None:
            started = time.perf_counter()
            page = posted(admin, callback_body(dash_app, route, {f"{shell.URL}.pathname": f"{customers.PATH}/{user_id}"},
                                               [f"{shell.URL}.pathname"]))
            routed = time.perf_counter()
            values = {f"{customers.INTERVAL}.n_intervals": None, f"{customers.CHANGED}.data": None,
                      f"{customers.CUSTOMER}.data": user_id, f"{customers.STATE}.data": {}}
            filled = posted(admin, callback_body(dash_app, refresh, values, []))
            parts.append((routed - started, time.perf_counter() - routed))
            if customers.CUSTOMER not in json.dumps(page) or customers.GRID not in filled:
                results.failed("customer_page", f"{user_id} not drawn: {json.dumps(filled.get(customers.MESSAGE))}")

        open_profile(str(users[0]["_id"]), [])  # not timed
        parts = []
        for user in rng.sample(users, min(repeat, len(users))):
            open_profile(str(user["_id"]), parts)
        results.times("customer_page", [a + b for a, b in parts])
        results.times("customer_refresh", [b for _, b in parts], p95=False)

        # the grant form's Confirm: the callback that writes the purchase
        submit = callback_key(dash_app, f"{grant.RESULT}.children")

        def confirm(user: dict, course) -> None:
            values = {f"{grant.USER}.value": str(user["_id"]), f"{grant.ITEM}.value": f"course:{course}",
                      f"{grant.MODE}.value": grant.COMPLIMENTARY, f"{grant.AMOUNT}.value": None,
                      f"{grant.METHOD}.value": None, f"{grant.DISCOUNT}.value": None, f"{grant.NOTE}.value": "bench",
                      f"{grant.KEY}.data": ObjectId().binary.hex(), f"{grant.CONFIRM}.n_clicks": 1}
            reply = posted(admin, callback_body(dash_app, submit, values, [f"{grant.CONFIRM}.n_clicks"]))
            if "Granted" not in json.dumps(reply.get(grant.RESULT, {}).get("children")):
                results.failed("grant_confirm", json.dumps(reply))

        granted = pairs.take(repeat + 1)
        confirm(*granted[0])  # not timed
        results.times("grant_confirm", timed([lambda p=p: confirm(*p) for p in granted[1:]]))
        take_back(db, granted)

        # a bulk grant: the preview checks every row, then the job grants them one by one
        settings = server.extensions["settings"].core
        rates, previews, bulk_granted = [], [], []
        for number in range(bulk_files):
            picks = pairs.take(bulk_rows)
            lines = ["email,courseId,amount,paymentMethod,note"]
            lines += [f"{user['email']},{course},19.99,credit_card,bench {number} {time.time()}" for user, course in picks]
            content = ("\n".join(lines) + "\n").encode()
            started = time.perf_counter()
            found = bulk.preview(app_db, content, settings)
            previewed = time.perf_counter()
            if found.counts[bulk.READY] != bulk_rows:
                results.failed("bulk_rate", f"preview {found.counts}, {[r.problem for r in found.rows if r.problem][:3]}")
            token = bulk.claim_job(app_db, found, actor=ADMIN_EMAIL, file_name=f"bench-{number}.csv")
            counts = bulk.run_job(app_db, found, token, actor=ADMIN_EMAIL, settings=settings)
            done = time.perf_counter()
            if counts.get(bulk.GRANTED) != bulk_rows:
                results.failed("bulk_rate", f"job {counts}")
            rates.append(bulk_rows / (done - started))
            previews.append(previewed - started)
            bulk_granted += picks
        results.value("bulk_rate", statistics.median(rates), "rows/s")
        results.times("bulk_preview", previews, p95=False)
        take_back(db, bulk_granted)

        # the live page's poll after a sale (the poll only)
        sales = pairs.take(repeat)
        polls = []
        for user, course in sales:
            create_purchase(db, user["_id"], course, None, {"amount": 10, "paymentMethod": "stripe"})
            time.sleep(live.VERSION_FRESH)  # the version every tab shares is due for a read
            seconds, state, code = timed_poll(admin, dash_app, state)
            polls.append(seconds)
            if code != 200:  # 204: the render was not ready within the poll's share of the interval
                results.failed("poll_after_sale", f"HTTP {code} in {seconds * 1000:.0f} ms")
                for _ in range(100):  # untimed: the page catches up before the next sale
                    time.sleep(0.1)
                    _, state, code = timed_poll(admin, dash_app, state)
                    if code == 200:
                        break
        results.times("poll_after_sale", polls)
        take_back(db, sales)
    finally:
        server.extensions["purchase_database"].close()


def measure_make_run(data_dir: Path, results: Results) -> None:
    """gunicorn as `make run` starts it, on this folder: seconds to the first GET /login answered 200."""
    started = time.perf_counter()
    server = Server(str(data_dir), "100 per second")
    try:
        while True:
            if server.process.poll() is not None:
                raise RuntimeError(f"gunicorn exited:\n{server.tail()}")
            with contextlib.suppress(requests.RequestException):
                if requests.get(server.base + "/login", timeout=2).status_code == 200:
                    break
            if time.perf_counter() - started > START_TIMEOUT:
                raise TimeoutError(f"gunicorn not ready in {START_TIMEOUT} s:\n{server.tail()}")
            time.sleep(0.05)
        results.value("make_run", time.perf_counter() - started, "s")
    finally:
        server._note_children()
        server.stop()


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
