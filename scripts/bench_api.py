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
import random
import shutil
import signal
import sys
import tempfile
import time
import uuid

import pymongo

from api.keys import create_key
from core import create_purchase, has_purchased, open_database
from core.operations import seed_demo
from core.storage.schema import KINDS, USERS, user_array
from scripts.bench_api_report import print_tables
from scripts.bench_clients import OWNERSHIP, PURCHASES, REQUEST_TIMEOUT, Result, http_error, run_clients, session_for
from scripts.bench_server import Server, stop_on_sigterm

KEY_NAME = "bench-api"
SETTLE_LIMIT = 120.0  # an engine held by a transaction whose client gave up is freed at 60 s


# --- the demo data: who owns what -------------------------------------------------------


def catalog(db) -> dict:
    """Users with what they own; courses and tests with their prices."""
    users = list(db[USERS].find({}, {spec.array: 1 for spec in KINDS.values()}))
    items = {kind: [(doc["_id"], doc.get("price", 19.99)) for doc in db[spec.catalog].find({}, {"price": 1})]
             for kind, spec in KINDS.items()}
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
            kind = rng.choice(tuple(KINDS))
            owned = set(user.get(user_array(kind)) or [])
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
    array = user_array("course")
    buyers = [u for u in data["users"] if u.get(array)]
    changing = {(user, item) for user, _, item, _ in sold}
    checks = []
    while len(checks) < count:
        if len(checks) % 2 == 0 and buyers:
            user = rng.choice(buyers)
            course = rng.choice(user[array])
        else:
            user = rng.choice(data["users"])
            course = rng.choice(courses)
        if (str(user["_id"]), str(course)) not in changing:
            checks.append((str(user["_id"]), str(course), course in (user.get(array) or [])))
    return checks


# --- the measurements ---------------------------------------------------------------------


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
