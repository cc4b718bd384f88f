"""Benchmark the course platform's API over real HTTP against the same core calls in-process.

Starts gunicorn (gunicorn.conf.py, "app:create_app()") as `make run` does, on an embedded
database in its own process, seeded with demo data in a temporary DATA_DIR, with one API key
of the write scope made before the server starts. Then, at each number of concurrent clients
(one thread and one kept-alive requests.Session each, all in this process):
  1. ownership checks, GET /api/v1/users/{user}/ownership?course={course}, back to back for
     --seconds (half of them on courses the user owns);
  2. the same check in-process, core.has_purchased, through a client joined to the same
     embedded server (over loopback, as the web worker's), back to back for --seconds;
  3. purchases, POST /api/v1/purchases (a new Idempotency-Key each), against
     core.create_purchase in-process doing the same work (an idempotency key, an actor, source
     "api"), on items the user does not own yet, --writes of each a row, in parts of four
     purchases a client (at most half a row) in the order HTTP, in-process, in-process, HTTP,
     HTTP... (drift touches both alike); after each part the script waits until the engine
     answers a read again.
With --paced R, also ownership checks over HTTP at R requests a second in all (an open loop:
latency counted from each request's planned time). Prints Markdown tables and the targets.
Server, database and these client threads share the machine's CPUs.
Usage: python scripts/bench_api.py [--purchases 20000] [--seconds 10] [--clients 1,8,32] [--writes 64]
       [--paced R] [--rate-limit "1000000 per second"] [--quick]
"""

import argparse
import contextlib
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections import Counter
from pathlib import Path

import psutil
import pymongo
import requests

from api.keys import create_key
from core import create_purchase, has_purchased, open_database
from core.operations import seed_demo
from core.storage.schema import COURSES, TESTS, USERS
from scripts.chrome import free_port

ROOT = Path(__file__).resolve().parent.parent
KEY_NAME = "bench-api"
OWNERSHIP = "/api/v1/users/{user}/ownership"
PURCHASES = "/api/v1/purchases"
REQUEST_TIMEOUT = 30.0  # the server bounds a request's database calls at DB_TIMEOUT (10 s)
SETTLE_LIMIT = 120.0  # an engine held by a transaction whose client gave up is freed at 60 s
AGED_OUT = "aborting a transaction open for more than"  # database.engine_queue's warning
TARGET_OWNERSHIP_P99_MS = 10.0
TARGET_RATIO = 1.3


class Stop(Exception):
    """SIGTERM: unwind as Ctrl-C does, so that everything is cleaned up."""


def stop_on_sigterm(_signum, _frame):
    raise Stop("SIGTERM")


class Server:
    """gunicorn with the app on `data_dir`, as `make run` starts it (the embedded database in
    its own process, started by gunicorn.conf.py)."""

    def __init__(self, data_dir: str, rate_limit: str):
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.log_path = Path(data_dir) / "gunicorn.log"
        self.log = open(self.log_path, "a")  # noqa: SIM115 - kept open for the process; O_APPEND, shared with it
        env = {**os.environ, "DATA_DIR": data_dir, "PORT": str(self.port), "HOST": "127.0.0.1", "SEED_DEMO": "0",
               "HEALTH_CHECK_SECONDS": "0", "API_RATE_LIMIT": rate_limit}
        for name in ("MONGODB_URI", "MONGODB_DB", "WEB_WORKERS", "WEB_THREADS"):
            env.pop(name, None)
        # a session of its own: Ctrl-C reaches this script alone, which then stops the server in order
        command = [sys.executable, "-m", "gunicorn", "-c", "gunicorn.conf.py", "app:create_app()"]
        self.process = subprocess.Popen(command, cwd=ROOT, env=env, stdout=self.log, stderr=subprocess.STDOUT,
                                        start_new_session=True)
        self.children: dict[int, psutil.Process] = {}

    def wait_ready(self, timeout: float = 600) -> None:
        give_up = time.monotonic() + timeout
        while time.monotonic() < give_up:
            self._note_children()
            if self.process.poll() is not None:
                raise RuntimeError(f"gunicorn exited:\n{self.tail()}")
            try:
                if requests.get(self.base + "/login", timeout=2).status_code == 200:
                    self._note_children()
                    return
            except requests.RequestException:
                pass
            time.sleep(0.5)
        raise TimeoutError(f"gunicorn not ready in {timeout} s:\n{self.tail()}")

    def _note_children(self) -> None:
        """Remember the worker's and the database's processes, to stop them whatever happens."""
        with contextlib.suppress(psutil.Error):
            for child in psutil.Process(self.process.pid).children(recursive=True):
                self.children.setdefault(child.pid, child)

    def cpu_seconds(self) -> dict:
        """CPU seconds used so far: by gunicorn and its worker, by the database's process, by this script."""
        used = {"web": 0.0, "database": 0.0}
        with contextlib.suppress(psutil.Error):
            master = psutil.Process(self.process.pid)
            for process in [master, *master.children(recursive=True)]:
                with contextlib.suppress(psutil.Error):
                    used["database" if "database" in process.cmdline() else "web"] += sum(process.cpu_times()[:2])
        used["clients"] = sum(psutil.Process().cpu_times()[:2])
        return used

    def aged_out(self) -> int:
        """Transactions the embedded server has aborted so far for being open too long (client gone)."""
        return self.log_path.read_text(errors="replace").count(AGED_OUT)

    def tail(self, lines: int = 30) -> str:
        return "".join(self.log_path.read_text(errors="replace").splitlines(keepends=True)[-lines:])

    def stop(self, grace: float = 45) -> None:
        """SIGTERM to gunicorn (it stops the worker, then the database); whatever is left after
        `grace` seconds is killed. After an interruption the grace is short: a transaction left
        open by a client thread holds the database process's exit until the engine aborts it
        for age (60 s), and the data is thrown away anyway."""
        self._note_children()
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=grace)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        for child in self.children.values():
            with contextlib.suppress(psutil.Error):
                if child.is_running():
                    child.terminate()
                    try:
                        child.wait(timeout=min(grace, 15))
                    except psutil.TimeoutExpired:
                        child.kill()
        self.log.close()


# --- results ------------------------------------------------------------------------------


def percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * q))]


class Result:
    """Calls made, latencies of those that succeeded, errors by kind, wall time and CPU seconds;
    parts of one row add up."""

    def __init__(self, latencies=(), count=0, wall=0.0, errors=None, cpu=None, blocked=0.0, aged=0):
        self.latencies, self.count, self.wall = list(latencies), count, wall
        self.errors, self.cpu = errors or Counter(), cpu or {}
        self.blocked, self.aged = blocked, aged  # after it: seconds the engine answered no read; age aborts

    def __add__(self, other: "Result") -> "Result":
        cpu = {k: self.cpu.get(k, 0.0) + other.cpu.get(k, 0.0) for k in {*self.cpu, *other.cpu}}
        return Result(self.latencies + other.latencies, self.count + other.count, self.wall + other.wall,
                      self.errors + other.errors, cpu, self.blocked + other.blocked, self.aged + other.aged)

    @property
    def rate(self) -> float:
        """Calls that succeeded, per second."""
        return len(self.latencies) / self.wall if self.wall else float("nan")

    def p(self, q: float) -> float:
        return percentile(self.latencies, q) * 1000

    def cpu_percent(self, part: str) -> float:
        return self.cpu.get(part, 0.0) / self.wall * 100 if self.wall else float("nan")


def errors_text(errors: Counter) -> str:
    """How many calls failed, and how: "0", or "3 (HTTP 503 unavailable 2, ReadTimeout 1)"."""
    total = sum(errors.values())
    return f"{total} ({', '.join(f'{kind} {n}' for kind, n in errors.most_common())})" if total else "0"


def http_error(reply: requests.Response) -> str:
    """An HTTP error by its status and the problem's type (RFC 9457), as the API answers it."""
    try:
        kind = str(reply.json().get("type", "")).rsplit("/", 1)[-1]
    except ValueError:
        kind = ""
    return f"HTTP {reply.status_code} {kind}".strip()


# --- the demo data: who owns what -------------------------------------------------------


def catalog(db) -> dict:
    """Users with what they own; courses and tests with their prices."""
    users = list(db[USERS].find({}, {"purchasedCourses": 1, "purchasedTests": 1}))
    items = {kind: [(doc["_id"], doc.get("price", 19.99)) for doc in db[name].find({}, {"price": 1})]
             for kind, name in (("course", COURSES), ("test", TESTS))}
    return {"users": users, "items": items}


def unowned_items(data: dict, rng: random.Random, count: int) -> list[tuple]:
    """(user, kind, item, price) the user does not own, each pair once, a different user each as
    far as there are users; courses and tests alike."""
    users = list(data["users"])
    taken: set[tuple] = set()
    picks = []
    while len(picks) < count:
        rng.shuffle(users)
        before = len(picks)
        for user in users:
            if len(picks) == count:
                break
            kind = rng.choice(("course", "test"))
            owned = set(user.get("purchasedCourses" if kind == "course" else "purchasedTests") or [])
            free = [(item, price) for item, price in data["items"][kind]
                    if item not in owned and (user["_id"], item) not in taken]
            if free:
                item, price = rng.choice(free)
                taken.add((user["_id"], item))
                picks.append((str(user["_id"]), kind, str(item), price))
        if len(picks) == before:
            raise RuntimeError("not enough unowned items for the purchases asked for")
    return picks


def ownership_checks(data: dict, rng: random.Random, sold: list[tuple], count: int = 4096) -> list[tuple]:
    """(user, course, owned) to ask about: half courses the user owns, half any course; never a
    pair this script will sell (its answer would change)."""
    courses = [c for c, _ in data["items"]["course"]]
    buyers = [u for u in data["users"] if u.get("purchasedCourses")]
    changing = {(user, item) for user, _, item, _ in sold}
    checks = []
    while len(checks) < count:
        if len(checks) % 2 == 0 and buyers:
            user = rng.choice(buyers)
            course = rng.choice(user["purchasedCourses"])
        else:
            user = rng.choice(data["users"])
            course = rng.choice(courses)
        if (str(user["_id"]), str(course)) not in changing:
            checks.append((str(user["_id"]), str(course), course in (user.get("purchasedCourses") or [])))
    return checks


# --- the measurements ---------------------------------------------------------------------


def session_for(secret: str) -> requests.Session:
    session = requests.Session()
    session.headers["Authorization"] = f"Bearer {secret}"
    return session


def run_clients(server: Server, n: int, prepare, call, *, seconds: float | None = None, work: list | None = None,
                interval: float | None = None) -> Result:
    """`n` threads; each runs `prepare(i)` once (untimed), then, from the same instant, `call(state, item)`
    in a loop, for `seconds` or until `work` (shared) runs out; `item` is the next piece of work, else
    the thread's random.Random. `call` returns None or the kind of error. With `interval`, each
    thread calls once every `interval` s (the threads evenly offset), and a call's latency counts
    from its planned time, so a late start counts against it."""
    stop = threading.Event()
    ready, go = threading.Barrier(n + 1), threading.Barrier(n + 1)
    lock = threading.Lock()
    result = Result()
    queue = list(reversed(work)) if work is not None else None
    origin = [0.0]

    def client(i: int):
        latencies, failed, count = [], Counter(), 0
        try:
            state, broken = prepare(i), False
        except Exception as exc:  # noqa: BLE001 - counted, and the other threads still start together
            state, broken = None, True
            failed[f"{type(exc).__name__} (connecting)"] += 1
        rng = random.Random(i)
        ready.wait()
        go.wait()
        planned = origin[0] + (interval * i / n if interval else 0.0)
        while not broken and not stop.is_set():
            if queue is not None:
                with lock:
                    if not queue:
                        break
                    item = queue.pop()
            else:
                item = rng
            if interval:
                if stop.wait(max(0.0, planned - time.perf_counter())):
                    break
                started = planned
                planned += interval
            else:
                started = time.perf_counter()
            try:
                error = call(state, item)
            except Exception as exc:  # noqa: BLE001 - every failure is counted by its kind
                error = type(exc).__name__
            count += 1
            if error is None:
                latencies.append(time.perf_counter() - started)
            else:
                failed[error] += 1
        with lock:
            result.latencies.extend(latencies)
            result.errors.update(failed)
            result.count += count
        if hasattr(state, "close"):
            state.close()

    threads = [threading.Thread(target=client, args=(i,), daemon=True) for i in range(n)]
    for thread in threads:
        thread.start()
    ready.wait()  # every thread prepared
    cpu_before = server.cpu_seconds()
    origin[0] = time.perf_counter() + 0.01
    go.wait()
    try:
        if seconds is not None:
            stop.wait(seconds)
            stop.set()
        for thread in threads:
            while thread.is_alive():  # a join that Ctrl-C can interrupt
                thread.join(timeout=0.5)
    finally:
        stop.set()
    result.wall = time.perf_counter() - origin[0]
    cpu_after = server.cpu_seconds()
    result.cpu = {part: cpu_after[part] - cpu_before[part] for part in cpu_after}
    return result


def ownership_http(server: Server, secret: str, checks: list[tuple], n: int, seconds: float,
                   rate: float | None = None) -> Result:
    url = server.base + OWNERSHIP

    def prepare(_i):
        session = session_for(secret)
        user, course, _ = checks[0]
        session.get(url.format(user=user), params={"course": course}, timeout=REQUEST_TIMEOUT)  # opens the connection
        return session

    def call(session, rng):
        user, course, owned = rng.choice(checks)
        reply = session.get(url.format(user=user), params={"course": course}, timeout=REQUEST_TIMEOUT)
        if reply.status_code != 200:
            return http_error(reply)
        return None if reply.json().get("owned") is owned else "wrong answer"

    return run_clients(server, n, prepare, call, seconds=seconds, interval=n / rate if rate else None)


def ownership_in_process(server: Server, db, checks: list[tuple], n: int, seconds: float) -> Result:
    def call(_state, rng):
        user, course, owned = rng.choice(checks)
        return None if has_purchased(db, user, course) is owned else "wrong answer"

    return run_clients(server, n, lambda _i: None, call, seconds=seconds)


def purchase_body(pick: tuple) -> dict:
    user, kind, item, price = pick
    return {"user_id": user, f"{kind}_id": item, "amount": price, "currency": "USD", "payment_method": "credit_card"}


def purchases_http(server: Server, secret: str, picks: list[tuple], n: int) -> Result:
    url = server.base + PURCHASES

    def prepare(i):
        session = session_for(secret)
        user, kind, item, _ = picks[i % len(picks)]  # opens the connection with a cheap read
        session.get(server.base + OWNERSHIP.format(user=user), params={kind: item}, timeout=REQUEST_TIMEOUT)
        return session

    def call(session, pick):
        reply = session.post(url, json=purchase_body(pick), headers={"Idempotency-Key": uuid.uuid4().hex},
                             timeout=REQUEST_TIMEOUT)
        return None if reply.status_code == 201 else http_error(reply)

    return run_clients(server, n, prepare, call, work=picks)


def purchases_in_process(server: Server, db, picks: list[tuple], n: int) -> Result:
    """What the route does, called directly: the same fields, an idempotency key, an actor, source api."""

    def call(_state, pick):
        user, kind, item, price = pick
        data = {"amount": price, "currency": "USD", "paymentMethod": "credit_card",
                "idempotencyKey": uuid.uuid4().hex, "actor": f"api:{KEY_NAME}"}
        create_purchase(db, user, item if kind == "course" else None, item if kind == "test" else None, data,
                        source="api")
        return None

    return run_clients(server, n, lambda _i: None, call, work=picks)


def settle(db, probe: tuple) -> float:
    """Wait until the engine answers a point read at once again; return how long that took. A
    transaction whose client gave up at its time limit holds the embedded engine until the
    server aborts it for age (60 s), and every later call would wait behind it."""
    started = time.monotonic()
    while time.monotonic() - started < SETTLE_LIMIT:
        asked = time.monotonic()
        with contextlib.suppress(Exception), pymongo.timeout(1.0):
            has_purchased(db, *probe)
            if time.monotonic() - asked < 0.25:
                break
        time.sleep(0.2)
    return time.monotonic() - started


def part_size(writes: int, n: int) -> int:
    """Purchases in one part of a row: four for every client, at most half the row."""
    return max(1, min(writes // 2, 4 * n))


def purchase_part(server: Server, db, probe: tuple, measure, *args) -> Result:
    """One part of a purchase row, `measure(server, *args)`, then the wait for the engine to be free again."""
    aged = server.aged_out()
    result = measure(server, *args)
    result.blocked = settle(db, probe)
    result.aged = server.aged_out() - aged
    return result


def purchase_row(server: Server, db, probe: tuple, secret: str, over_http: list, direct: list, n: int,
                 size: int) -> tuple[Result, Result]:
    """Both sides at `n` clients, in parts of `size`, in the order HTTP, in-process, in-process,
    HTTP, HTTP, ... (ABBA), so that drift in the machine's speed touches both alike."""
    h, p = Result(), Result()
    for i, start in enumerate(range(0, max(len(over_http), len(direct)), size)):
        parts = [(purchases_http, secret, over_http[start : start + size]),
                 (purchases_in_process, db, direct[start : start + size])]
        for measure, target, part in parts if i % 2 == 0 else reversed(parts):
            if part:
                done = purchase_part(server, db, probe, measure, target, part, n)
                if measure is purchases_http:
                    h += done
                else:
                    p += done
    return h, p


# --- the report ---------------------------------------------------------------------------


def ms(value: float) -> str:
    if value != value:  # nan: no call succeeded
        return "-"
    return f"{value:.1f} ms" if value < 100 else f"{value:,.0f} ms"


def longest(r: Result) -> str:
    return ms(max(r.latencies) * 1000) if r.latencies else "-"


def ratio(a: float, b: float) -> float:
    return a / b if b and a == a and b == b else float("nan")


def http_table(rows: dict) -> None:
    print("| clients | requests | requests/s | p50 | p99 | max | errors | CPU: web / database / clients |")
    print("|---:|---:|---:|---:|---:|---:|---|---|")
    for n, r in rows.items():
        print(f"| {n} | {r.count:,} | {r.rate:,.0f}/s | {ms(r.p(0.5))} | {ms(r.p(0.99))} | {longest(r)} | "
              f"{errors_text(r.errors)} | {r.cpu_percent('web'):.0f}% / {r.cpu_percent('database'):.0f}% / "
              f"{r.cpu_percent('clients'):.0f}% |")


def print_tables(args, users: int, seed_seconds: float, http: dict, local: dict, paced: dict, sales: dict) -> None:
    print(f"\n{args.purchases:,} demo purchases ({users:,} users, 40 courses and tests), embedded server in its own "
          f"process; gunicorn as `make run` (1 worker, gthread, 128 threads); API_RATE_LIMIT {args.rate_limit!r}; "
          f"{os.cpu_count()} CPUs shared by gunicorn, the database process and this script's client threads "
          f"(one process, one GIL); demo load {seed_seconds:.0f} s\n")

    print(f"Ownership checks over HTTP (GET {OWNERSHIP}?course=..., keep-alive, back to back, "
          f"{args.seconds:g} s a row):\n")
    http_table(http)

    print(f"\nThe same check in-process (core.has_purchased, a client joined to the same server, back to back; "
          f"{args.seconds:g} s a row):\n")
    print("| threads | calls | calls/s | p50 | p99 | max | errors | CPU: database / this script | HTTP / in-process p50 |")
    print("|---:|---:|---:|---:|---:|---:|---|---|---:|")
    for n, r in local.items():
        print(f"| {n} | {r.count:,} | {r.rate:,.0f}/s | {ms(r.p(0.5))} | {ms(r.p(0.99))} | {longest(r)} | "
              f"{errors_text(r.errors)} | {r.cpu_percent('database'):.0f}% / {r.cpu_percent('clients'):.0f}% | "
              f"{ratio(http[n].p(0.5), r.p(0.5)):.2f}x |")

    if args.paced:
        print(f"\nOwnership checks over HTTP at {args.paced:g} requests/s in all, spread over the clients (open loop: "
              f"latency from each request's planned time; {args.seconds:g} s a row):\n")
        http_table({n: r for n, r in paced.items() if r is not None})
        skipped = [n for n, r in paced.items() if r is None]
        if skipped:
            print(f"\nNot run at {', '.join(map(str, skipped))} client(s): each would have to send a request every "
                  f"{skipped[0] / args.paced * 1000:.0f} ms or more often, under twice the time one takes "
                  f"({ms(http[min(http)].p(0.5))} at {min(http)} client): that measures a client falling behind.")

    print(f"\nPurchases: POST {PURCHASES} (a new Idempotency-Key each) against core.create_purchase in-process "
          f"(the same fields, an idempotency key and an actor), {args.writes} of each a row, items not owned yet; "
          "in parts of four a client (at most half a row), in the order HTTP, in-process, in-process, HTTP, "
          "HTTP...:\n")
    print("| clients | HTTP: purchases/s | p50 | p99 | errors | in-process: purchases/s | p50 | p99 | errors "
          "| HTTP / in-process p50 | engine held after (HTTP / in-process) | aborted at 60 s |")
    print("|---:|---:|---:|---:|---|---:|---:|---:|---|---:|---|---:|")
    for n, (h, p) in sales.items():
        print(f"| {n} | {h.rate:.1f}/s | {ms(h.p(0.5))} | {ms(h.p(0.99))} | {errors_text(h.errors)} | "
              f"{p.rate:.1f}/s | {ms(p.p(0.5))} | {ms(p.p(0.99))} | {errors_text(p.errors)} | "
              f"{ratio(h.p(0.5), p.p(0.5)):.2f}x | {h.blocked:.0f} s / {p.blocked:.0f} s | {h.aged + p.aged} |")

    last = max(http)
    p99 = http[last].p(0.99)
    ratios = [(n, ratio(h.p(0.5), p.p(0.5))) for n, (h, p) in sales.items()]
    met = all(r <= TARGET_RATIO for _, r in ratios if r == r)
    print(f"\nTargets: ownership p99 <= {TARGET_OWNERSHIP_P99_MS:g} ms at {last} clients: {ms(p99)} "
          f"({'met' if p99 <= TARGET_OWNERSHIP_P99_MS else 'NOT met'})"
          + (f"; at {args.paced:g} requests/s from {last} clients: {ms(paced[last].p(0.99))} "
             f"({'met' if paced[last].p(0.99) <= TARGET_OWNERSHIP_P99_MS else 'NOT met'})"
             if paced.get(last) is not None else "")
          + f"; purchase over HTTP within {TARGET_RATIO}x of in-process (medians): "
          + ", ".join(f"{r:.2f}x at {n}" for n, r in ratios) + f" ({'met' if met else 'NOT met'}).")
    print("CPU in % of one core over each row: gunicorn and its worker / the embedded database's process / this "
          "script (its client threads; in-process rows: the core calls). Latencies are as the client threads saw "
          "them, so they include the clients' own share of the CPUs. Errors: HTTP status and problem type, or the "
          "exception; rates, p50 and p99 are of the calls that succeeded. 'Engine held after': how long after a "
          "part the engine answered no read (a transaction whose client gave up at the 10 s bound holds it until aborted "
          "for age at 60 s).")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--purchases", type=int, default=20000, help="demo purchases to seed (default 20000)")
    parser.add_argument("--seconds", type=float, default=10, help="seconds per ownership row (default 10)")
    parser.add_argument("--clients", default="1,8,32", help="concurrent clients per row (default 1,8,32)")
    parser.add_argument("--writes", type=int, default=64, help="purchases per row, each side (default 64)")
    parser.add_argument("--paced", type=float, default=0,
                        help="also ownership checks over HTTP at this many requests/s in all (default: not run)")
    parser.add_argument("--rate-limit", default="1000000 per second",
                        help="API_RATE_LIMIT for the server (default: high enough to measure the server, not the "
                             "limiter; the app's own default is 100 per second per key and process)")
    parser.add_argument("--quick", action="store_true", help="smoke run: 2,000 purchases, 2 s a row, 8 purchases a row")
    args = parser.parse_args(argv)
    if args.quick:
        args.purchases, args.seconds, args.writes = 2000, 2, 8
    counts = [int(n) for n in args.clients.split(",")]
    signal.signal(signal.SIGTERM, stop_on_sigterm)
    rng = random.Random(1)
    data_dir = tempfile.mkdtemp(prefix="bench_api_")
    server = joined = None
    finished = False
    try:
        with open_database(data_dir=data_dir) as opened:
            started = time.perf_counter()
            users = max(600, args.purchases // 10)
            seed_demo(opened.db, users=users, purchases=args.purchases, seed=1)
            seed_seconds = time.perf_counter() - started
            _, secret = create_key(opened.db, KEY_NAME, "write", created_by="bench_api")
            data = catalog(opened.db)
        print(f"seeded {args.purchases:,} purchases in {seed_seconds:.0f} s; starting gunicorn", flush=True)
        warm = 3
        picks = unowned_items(data, rng, 2 * (warm + len(counts) * args.writes))
        checks = ownership_checks(data, rng, picks)
        del data

        server = Server(data_dir, args.rate_limit)
        started = time.perf_counter()
        server.wait_ready()
        print(f"gunicorn ready in {time.perf_counter() - started:.0f} s", flush=True)
        joined = open_database(data_dir=data_dir)
        if joined.server is not None:
            raise RuntimeError("this script serves the database itself: the app's database process is not running")
        probe = checks[0][:2]

        # warm both paths (first requests, the engine's caches); not timed
        ownership_http(server, secret, checks, 1, 1.0)
        ownership_in_process(server, joined.db, checks, 1, 1.0)
        purchases_http(server, secret, picks[:warm], 1)
        purchases_in_process(server, joined.db, picks[warm : 2 * warm], 1)
        picks = picks[2 * warm :]

        http, local, paced = {}, {}, {}
        for n in counts:
            http[n] = ownership_http(server, secret, checks, n, args.seconds)
            print(f"ownership over HTTP, {n} clients: done", flush=True)
            local[n] = ownership_in_process(server, joined.db, checks, n, args.seconds)
            print(f"ownership in-process, {n} threads: done", flush=True)
            if args.paced:
                # a client needs time for its request between two sends, or it only falls behind
                alone = http[min(http)].p(0.5) / 1000
                fits = n / args.paced >= 2 * alone
                paced[n] = ownership_http(server, secret, checks, n, args.seconds, rate=args.paced) if fits else None
                print(f"ownership over HTTP at {args.paced:g}/s, {n} clients: {'done' if fits else 'skipped'}",
                      flush=True)
        sales = {}
        for n in counts:
            mine, picks = picks[: 2 * args.writes], picks[2 * args.writes :]
            sales[n] = purchase_row(server, joined.db, probe, secret, mine[: args.writes], mine[args.writes :], n,
                                    part_size(args.writes, n))
            print(f"purchases over HTTP and in-process, {n} clients: done", flush=True)
        finished = True
        print_tables(args, users, seed_seconds, http, local, paced, sales)
        return 0
    except BaseException:
        if server is not None:
            print(server.tail(), file=sys.stderr)
        raise
    finally:
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        if joined is not None:
            joined.close()  # before the database stops, or this process would take the folder over
        if server is not None:
            server.stop(grace=45 if finished else 5)
        shutil.rmtree(data_dir, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
