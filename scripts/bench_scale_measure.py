"""What scripts/bench_scale.py measures at one size: opens, core calls, the app's pages and
callbacks (Flask's test client signed in as an admin), and `make run` to its first page."""

import contextlib
import json
import random
import statistics
import time
from collections import Counter
from pathlib import Path

import requests
from bson import ObjectId

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
from core.storage.schema import user_array
from dashboard import shell
from dashboard.accounts import create_account, get_account
from dashboard.pages import customers, grant, live
from database.opening import DEFAULT_DB_NAME
from scripts.bench_clients import percentile
from scripts.bench_core import timed
from scripts.bench_dashboard import timed_poll
from scripts.bench_scale_data import Pairs, note, write_record
from scripts.bench_server import Server
from scripts.dash_client import callback_body, callback_key

ADMIN_EMAIL, ADMIN_PASSWORD = "bench-scale@example.com", "bench scale password 123"
START_TIMEOUT = 1800.0


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
        owned = user.get(user_array("course")) or []
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
