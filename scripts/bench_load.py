"""Load benchmark of the live page: many tabs polling the production server while sales come in.

Starts gunicorn (gunicorn.conf.py) on an embedded database seeded with demo data, signs in
one session per simulated tab, and replays the page's own poll request (built from the
app's /_dash-dependencies) from N tabs, each with its own session and state, once a
second, while this script commits one sale a second through core.create_purchase (it
joins the app's embedded server). Then the stampede: N fresh tabs open at the same
instant. Real HTTP over loopback; prints Markdown tables.
Usage: python scripts/bench_load.py [--tabs 10,50,100,200] [--seconds 60] [--purchases 20000]
       [--workers N] [--threads N] [--quick]
"""

import argparse
import os
import random
import sys
import tempfile
import threading
import time
from collections import Counter

import requests

from core import AlreadyPurchasedError, create_purchase, get_data_version, open_database
from core.operations import seed_demo
from core.storage.schema import COURSES, USERS
from dashboard import shell
from dashboard.accounts import create_account
from dashboard.pages import live
from scripts.bench_clients import errors_text, percentile
from scripts.bench_server import Server

EMAIL, PASSWORD = "load@example.com", "load test password 123"
TICK = 1.0
REQUEST_TIMEOUT = 10.0
STAMPEDE_LIMIT = 30.0


def sign_in(base: str) -> requests.Session:
    session = requests.Session()
    reply = session.post(base + "/login", data={"email": EMAIL, "password": PASSWORD}, allow_redirects=False, timeout=30)
    if reply.status_code != 302:
        raise RuntimeError(f"sign-in failed: HTTP {reply.status_code}")
    return session


def poll_spec(base: str, session: requests.Session) -> dict:
    """The live page's poll callback, as the app describes it to the browser."""
    for spec in session.get(base + "/_dash-dependencies", timeout=30).json():
        if f"{live.STATE}.data" in spec["output"] and f"{live.FEED}.children" in spec["output"]:
            return spec
    raise LookupError("no poll callback in /_dash-dependencies")


def poll_body(spec: dict, state: dict) -> dict:
    """What the browser posts for one tick of the poll, with this tab's state."""
    values = {f"{live.INTERVAL}.n_intervals": 1, f"{live.URL}.search": "?range=30d", f"{live.STATE}.data": state}

    def props(entries):
        return [{**entry, "value": values.get(f"{entry['id']}.{entry['property']}")} for entry in entries]

    outputs = [dict(zip(("id", "property"), o.rsplit(".", 1), strict=True)) for o in spec["output"].strip(".").split("...")]
    return {"output": spec["output"], "outputs": outputs, "inputs": props(spec["inputs"]),
            "state": props(spec["state"]), "changedPropIds": [f"{live.INTERVAL}.n_intervals"]}


class Tab:
    """One open live page: its own session and state, polling once a second."""

    def __init__(self, base: str, session: requests.Session, spec: dict):
        self.url, self.session, self.spec = base + "/_dash-update-component", session, spec
        self.state: dict = {}
        self.seen: list[tuple[float, int]] = []  # (when, version shown) for every reply that set one
        self.idle: list[float] = []  # latencies of 204 replies
        self.latencies: list[float] = []
        self.banners = 0
        self.error_kinds: Counter = Counter()  # what each error was: an exception's name or the HTTP status

    def poll(self) -> None:
        started = time.perf_counter()
        try:
            reply = self.session.post(self.url, json=poll_body(self.spec, self.state), timeout=REQUEST_TIMEOUT)
        except requests.RequestException as error:
            self.error_kinds[type(error).__name__] += 1
            return
        took = time.perf_counter() - started
        self.latencies.append(took)
        # nothing new: 204, or (since the page says "checked just now") only the check's stamp
        if reply.status_code == 204 or (reply.status_code == 200 and live.STATE not in reply.json()["response"]):
            self.idle.append(took)
        elif reply.status_code == 200:
            response = reply.json()["response"]
            if response.get(shell.BANNER, {}).get("children"):
                self.banners += 1
            self.state = response.get(live.STATE, {}).get("data", self.state)
            if "version" in self.state:
                self.seen.append((time.monotonic(), self.state["version"]))
        else:
            self.error_kinds[f"HTTP {reply.status_code}"] += 1

    def run(self, stop: threading.Event, delay: float) -> None:
        stop.wait(delay)
        next_tick = time.monotonic()
        while not stop.is_set():
            self.poll()
            next_tick += TICK
            stop.wait(max(0.0, next_tick - time.monotonic()))


def sell_every_second(db, stop: threading.Event, sales: list, rng: random.Random) -> None:
    users = [u["_id"] for u in db[USERS].find({}, {"_id": 1})]
    courses = [c["_id"] for c in db[COURSES].find({}, {"_id": 1})]
    next_sale = time.monotonic()
    while not stop.is_set():
        try:
            create_purchase(db, rng.choice(users), rng.choice(courses), None,
                            {"amount": 19.99, "paymentMethod": "credit_card"})
            sales.append((time.monotonic(), get_data_version(db)))
        except AlreadyPurchasedError:
            continue
        next_sale += TICK
        stop.wait(max(0.0, next_sale - time.monotonic()))


def commit_to_screen(tabs: list[Tab], sales: list, until: float) -> list[float]:
    """For every sale and tab: from the commit to the tab's first reply that carries it."""
    delays = []
    for committed, version in sales:
        if committed > until:
            continue
        for tab in tabs:
            shown = next((when for when, v in tab.seen if v >= version and when >= committed), None)
            if shown is not None:
                delays.append(shown - committed)
            else:
                delays.append(float("inf"))  # never shown: counts against the percentiles
    return delays


def errors(tabs: list[Tab]) -> str:
    """How many polls failed, and how: "0", or "2 (ReadTimeout 1, HTTP 500 1)"."""
    return errors_text(sum((t.error_kinds for t in tabs), Counter()))


def steady(server: Server, db, spec: dict, n: int, seconds: float) -> dict:
    tabs = [Tab(server.base, sign_in(server.base), spec) for _ in range(n)]
    stop, sales = threading.Event(), []
    threads = [threading.Thread(target=t.run, args=(stop, random.uniform(0, TICK)), daemon=True) for t in tabs]
    seller = threading.Thread(target=sell_every_second, args=(db, stop, sales, random.Random(n)), daemon=True)
    cpu_before, started = server.cpu_seconds(), time.monotonic()
    for thread in threads:
        thread.start()
    time.sleep(2 * TICK)  # every tab has drawn the page once before the first sale
    seller.start()
    time.sleep(seconds)
    stop.set()
    for thread in [*threads, seller]:
        thread.join(timeout=REQUEST_TIMEOUT + 5)
    wall, cpu_after = time.monotonic() - started, server.cpu_seconds()
    cpu = {part: (cpu_after[part] - cpu_before[part]) / wall * 100 for part in cpu_after}
    delays = commit_to_screen(tabs, sales, time.monotonic() - 3 * TICK)
    idle = [x for t in tabs for x in t.idle]
    return {
        "tabs": n, "polls": sum(len(t.latencies) for t in tabs), "sales": len(sales),
        "idle50": percentile(idle, 0.5), "idle95": percentile(idle, 0.95),
        "c50": percentile(delays, 0.5), "c95": percentile(delays, 0.95), "cmax": max(delays, default=float("nan")),
        "banners": sum(t.banners for t in tabs), "errors": errors(tabs), "cpu": cpu,
    }


def stampede(server: Server, db, spec: dict, n: int) -> dict:
    tabs = [Tab(server.base, sign_in(server.base), spec) for _ in range(n)]
    for tab in tabs:
        # a tab that opens connects afresh; 200 sign-ins take longer than the server keeps an
        # idle connection (15 s), and a poll sent on one it closed failed where a browser reconnects
        tab.session.close()
    current = get_data_version(db)
    barrier, took = threading.Barrier(n + 1), [float("inf")] * n

    def open_tab(i: int, tab: Tab):
        barrier.wait()
        opened = time.monotonic()
        while time.monotonic() - opened < STAMPEDE_LIMIT:
            tab.poll()
            if tab.state.get("version", -1) >= current:
                took[i] = time.monotonic() - opened
                return
            time.sleep(TICK)

    threads = [threading.Thread(target=open_tab, args=(i, t), daemon=True) for i, t in enumerate(tabs)]
    for thread in threads:
        thread.start()
    barrier.wait()
    for thread in threads:
        thread.join()
    return {"tabs": n, "p50": percentile(took, 0.5), "p95": percentile(took, 0.95), "max": max(took),
            "banners": sum(t.banners for t in tabs), "errors": errors(tabs)}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tabs", default="10,50,100,200")
    parser.add_argument("--seconds", type=float, default=60)
    parser.add_argument("--purchases", type=int, default=20000)
    parser.add_argument("--workers", default="", help="WEB_WORKERS (default: gunicorn.conf.py's)")
    parser.add_argument("--threads", default="", help="WEB_THREADS (default: gunicorn.conf.py's)")
    parser.add_argument("--quick", action="store_true", help="10 tabs, 10 s, 2,000 purchases: a smoke run")
    args = parser.parse_args(argv)
    if args.quick:
        args.tabs, args.seconds, args.purchases = "10", 10, 2000
    counts = [int(n) for n in args.tabs.split(",")]
    with tempfile.TemporaryDirectory() as data_dir:
        with open_database(data_dir=data_dir) as opened:
            started = time.perf_counter()
            seed_demo(opened.db, users=max(600, args.purchases // 10), purchases=args.purchases, seed=1)
            create_account(opened.db, EMAIL, "viewer", PASSWORD)
            print(f"seeded {args.purchases:,} purchases in {time.perf_counter() - started:.0f} s", flush=True)
        server = Server(data_dir, WEB_WORKERS=args.workers, WEB_THREADS=args.threads,
                        # one sign-in per simulated tab, hundreds from one address within a minute: the
                        # sign-in limits are not what this measures
                        LOGIN_LIMIT_ACCOUNT="10000 per minute", LOGIN_LIMIT_ADDRESS="10000 per minute")
        try:
            server.wait_ready(timeout=120)
            joined = open_database(data_dir=data_dir)
            spec = poll_spec(server.base, sign_in(server.base))
            rows, rushes = [], []
            for n in counts:
                rows.append(steady(server, joined.db, spec, n, args.seconds))
                print(f"{n} tabs: done", flush=True)
                rushes.append(stampede(server, joined.db, spec, n))
                print(f"{n} tabs opening at once: done", flush=True)
            joined.close()
        except BaseException:
            print(server.tail(), file=sys.stderr)
            raise
        finally:
            server.stop(grace=30)
    workers = args.workers or os.environ.get("WEB_WORKERS") or "gunicorn.conf.py default"
    threads = args.threads or os.environ.get("WEB_THREADS") or "gunicorn.conf.py default"
    print(f"\n{args.purchases:,} purchases, embedded server, gunicorn workers: {workers}, threads: {threads}; "
          f"{os.cpu_count()} CPUs shared by server and simulated tabs; {args.seconds:g} s per row, one sale a second\n")
    print("| tabs | polls | sales | idle poll p50 | idle poll p95 | commit-to-screen p50 / p95 / max | banners | errors |"
          " CPU: web / database / simulated tabs |")
    print("|---:|---:|---:|---:|---:|---|---:|---:|---|")
    for r in rows:
        print(f"| {r['tabs']} | {r['polls']:,} | {r['sales']} | {r['idle50'] * 1000:.0f} ms | {r['idle95'] * 1000:.0f} ms | "
              f"{r['c50']:.2f} / {r['c95']:.2f} / {r['cmax']:.2f} s | {r['banners']} | {r['errors']} | "
              f"{r['cpu']['web']:.0f}% / {r['cpu']['database']:.0f}% / {r['cpu']['clients']:.0f}% |")
    print("\n| tabs opening at once | to current figures p50 / p95 / max | banners | errors |")
    print("|---:|---|---:|---:|")
    for r in rushes:
        print(f"| {r['tabs']} | {r['p50']:.2f} / {r['p95']:.2f} / {r['max']:.2f} s | {r['banners']} | {r['errors']} |")
    print("\nCPU in % of one core: gunicorn and its workers / the embedded database's process / this script.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
