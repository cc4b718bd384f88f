"""The doors a security review tried, measured against the production server as `make run`
starts it (gunicorn.conf.py: nginx in front; `--no-proxy` for gunicorn alone). Three tables:

1. Sign-in throttle: 100 wrong passwords sent at once for one account, then 100 for 100
   accounts from one address: how many were checked (401), refused (429), failed (5xx).
2. Request bodies: anonymous 100 MB sign-ins and a viewer's 200 MB JSON, declared and then
   sent: the answer, how long it took, the web worker's memory before, at most, after.
3. Slow clients: many connections that send their headers, or their body, a byte a second
   (reconnecting when the server drops one), while an ordinary `GET /login` is timed four
   times a second from a fresh connection.

    .venv/bin/python scripts/bench_doors.py [--headers 1000] [--bodies 150] [--seconds 20] [--no-proxy]
"""

import argparse
import asyncio
import socket
import statistics
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import psutil
import requests

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

ORDINARY_EVERY = 0.25  # s between two ordinary requests
ORDINARY_TIMEOUT = 15.0


@dataclass
class Attack:
    """Connections kept open and fed a byte a second until `stop` is set."""

    host: str
    port: int
    headers: int
    bodies: int
    stop: threading.Event = field(default_factory=threading.Event)
    open_now: int = 0
    opened: int = 0
    dropped: int = 0

    def run(self) -> None:
        asyncio.run(self._all())

    async def _all(self) -> None:
        tasks = [self._slow(f"GET /login HTTP/1.1\r\nHost: {self.host}\r\nX-Slow: ") for _ in range(self.headers)]
        body_start = (f"POST /login HTTP/1.1\r\nHost: {self.host}\r\nContent-Type: application/x-www-form-urlencoded"
                      "\r\nContent-Length: 100000\r\n\r\nemail=")
        tasks += [self._slow(body_start) for _ in range(self.bodies)]
        await asyncio.gather(*tasks)

    async def _slow(self, start: str) -> None:
        while not self.stop.is_set():
            try:
                reader, writer = await asyncio.open_connection(self.host, self.port)
            except OSError:
                await asyncio.sleep(0.5)
                continue
            self.opened += 1
            self.open_now += 1
            try:
                writer.write(start.encode())
                await writer.drain()
                while not self.stop.is_set() and not reader.at_eof():
                    await asyncio.sleep(1)
                    writer.write(b"a")
                    await writer.drain()
            except OSError:
                pass
            finally:
                self.open_now -= 1
                if not self.stop.is_set():
                    self.dropped += 1
                writer.close()


def time_ordinary_requests(base: str, seconds: float) -> list[float | None]:
    """Seconds each ordinary GET /login took, None for one that failed or timed out."""
    times, end = [], time.monotonic() + seconds
    while time.monotonic() < end:
        started = time.monotonic()
        try:
            ok = requests.get(base + "/login", timeout=ORDINARY_TIMEOUT, headers={"Connection": "close"}).status_code == 200
        except requests.RequestException:
            ok = False
        times.append(time.monotonic() - started if ok else None)
        time.sleep(max(0.0, ORDINARY_EVERY - (time.monotonic() - started)))
    return times


def under_attack(base: str, headers: int, bodies: int, seconds: float, settle: float = 3.0) -> dict:
    """Hold `headers` + `bodies` slow connections on `base` and time ordinary requests meanwhile."""
    host, port = base.removeprefix("http://").rsplit(":", 1)
    attack = Attack(host, int(port), headers, bodies)
    thread = threading.Thread(target=attack.run, daemon=True)
    thread.start()
    time.sleep(settle if headers or bodies else 0)  # the connections open before timing starts
    try:
        times = time_ordinary_requests(base, seconds)
        held = attack.open_now
    finally:
        attack.stop.set()
        thread.join(timeout=30)
    answered = sorted(t for t in times if t is not None)
    return {"requests": len(times), "failed": len(times) - len(answered), "held": held, "dropped": attack.dropped,
            "p50": statistics.median(answered) if answered else None,
            "p95": answered[int(0.95 * (len(answered) - 1))] if answered else None,
            "max": answered[-1] if answered else None, "over_1s": sum(t > 1 for t in answered)}


def throttle_rows(base: str, accounts_db) -> list[tuple]:
    """(case, checked, refused, server errors, seconds) for 100 concurrent wrong passwords."""
    from dashboard import accounts

    accounts.create_account(accounts_db, "target@example.com", "viewer", "the right password 1")
    rows = []
    for case, emails in (("100 at once, one account", ["target@example.com"] * 100),
                         ("100 at once, 100 accounts, one address", [f"guess{n}@example.com" for n in range(100)])):
        started = time.monotonic()
        with ThreadPoolExecutor(100) as pool:
            codes = list(pool.map(lambda email: _sign_in(base, email, "a wrong password"), emails))
        rows.append((case, codes.count(401), codes.count(429), sum(c >= 500 for c in codes),
                     time.monotonic() - started))
    return rows


def web_worker(gunicorn_master) -> psutil.Process:
    """gunicorn's web worker: the master's child that is neither the database nor nginx."""
    children = psutil.Process(gunicorn_master.pid).children()
    workers = [p for p in children if "gunicorn" in " ".join(p.cmdline()) and "database" not in p.cmdline()]
    assert len(workers) == 1, [p.cmdline() for p in children]
    return workers[0]


def _sign_in(base: str, email: str, password: str) -> int:
    return requests.post(base + "/login", data={"email": email, "password": password}, allow_redirects=False,
                         timeout=60).status_code


def body_rows(base: str, worker: psutil.Process, viewer_cookie: str) -> list[tuple]:
    """(case, answer, seconds to answer, worker RSS before / peak / after in MB)."""
    rows = []
    for case, path, size, cookie, times in (("anonymous POST /login, 100 MB, four at once", "/login", 100 << 20, "", 4),
                                            ("viewer's JSON to a callback, 200 MB", "/_dash-update-component",
                                             200 << 20, viewer_cookie, 1)):
        before, started = worker.memory_info().rss, time.monotonic()
        peak = _PeakMemory(worker)
        with ThreadPoolExecutor(times) as pool:
            answers = list(pool.map(lambda _: _post_body(base, path, size, cookie), range(times)))  # noqa: B023 - used at once
        elapsed = time.monotonic() - started
        time.sleep(1)
        rows.append((case, ", ".join(sorted(set(answers))), elapsed, before >> 20, max(peak.stop(), before) >> 20,
                     worker.memory_info().rss >> 20))
    return rows


def _post_body(base: str, path: str, size: int, cookie: str) -> str:
    """POST a body of `size` bytes to `path`, all of it unless the server hangs up; its status line."""
    host, port = base.removeprefix("http://").rsplit(":", 1)
    with socket.create_connection((host, int(port)), timeout=60) as raw:
        raw.sendall((f"POST {path} HTTP/1.1\r\nHost: {host}:{port}\r\nContent-Length: {size}\r\n"
                     f"Content-Type: application/json\r\nCookie: session={cookie}\r\n\r\n").encode())
        chunk, sent = b"x" * (1 << 20), 0
        try:
            while sent < size:
                raw.sendall(chunk)
                sent += len(chunk)
        except OSError:
            pass
        try:
            return raw.recv(200).decode(errors="replace").split("\r\n")[0]
        except OSError as error:
            return f"connection closed ({type(error).__name__})"


class _PeakMemory(threading.Thread):
    """The highest resident memory of a process, sampled every 50 ms until stop()."""

    def __init__(self, process: psutil.Process):
        super().__init__(daemon=True)
        self.process, self.peak, self._stopped = process, 0, threading.Event()
        self.start()

    def run(self) -> None:
        while not self._stopped.is_set():
            self.peak = max(self.peak, self.process.memory_info().rss)
            time.sleep(0.05)

    def stop(self) -> int:
        self._stopped.set()
        self.join()
        return self.peak


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--headers", type=int, default=1000, help="connections sending headers slowly")
    parser.add_argument("--bodies", type=int, default=150, help="connections sending a body slowly")
    parser.add_argument("--seconds", type=float, default=20.0, help="ordinary requests timed per row")
    parser.add_argument("--no-proxy", action="store_true", help="gunicorn alone (WEB_PROXY=0), as before nginx")
    args = parser.parse_args(argv)
    from core import open_database
    from dashboard import accounts
    from tests.conftest import production_server

    rows = (("no attack", 0, 0), (f"{args.headers:,} slow headers", args.headers, 0),
            (f"{args.bodies:,} slow bodies", 0, args.bodies),
            (f"{args.headers:,} slow headers + {args.bodies:,} slow bodies", args.headers, args.bodies))
    env = {"WEB_PROXY": "0"} if args.no_proxy else {}
    with (tempfile.TemporaryDirectory() as folder, production_server(Path(folder) / "data", **env) as (process, base),
          open_database(data_dir=Path(folder) / "data") as joined):
        accounts.create_account(joined.db, "viewer@example.com", "viewer", "the right password 1")
        viewer = requests.Session()  # signed in before the throttle's rows use up this address's sign-ins
        viewer.post(base + "/login", data={"email": "viewer@example.com", "password": "the right password 1"},
                    timeout=30)
        print(f"`make run` ({'gunicorn alone' if args.no_proxy else 'nginx in front of gunicorn'}), default limits\n")
        print("| sign-in attempts | password checked (401) | refused (429) | server errors | seconds |")
        print("|---|---:|---:|---:|---:|")
        for case, checked, refused, errors, seconds in throttle_rows(base, joined.db):
            print(f"| {case} | {checked} | {refused} | {errors} | {seconds:.1f} |", flush=True)
        worker = web_worker(process)
        print("\n| request body | answer | seconds | web worker MB before / peak / after |")
        print("|---|---|---:|---|")
        for case, answer, seconds, before, peak, after in body_rows(base, worker, viewer.cookies.get("session", "")):
            print(f"| {case} | {answer} | {seconds:.2f} | {before} / {peak} / {after} |", flush=True)
        print(f"\nordinary GET /login every {ORDINARY_EVERY} s for {args.seconds:g} s per row\n")
        print("| slow connections | held at the end | ordinary requests | p50 | p95 | max | over 1 s | failed |")
        print("|---|---:|---:|---:|---:|---:|---:|---:|")
        for name, headers, bodies in rows:
            found = under_attack(base, headers, bodies, args.seconds)

            def ms(value):
                return "-" if value is None else f"{value * 1000:,.0f} ms"

            print(f"| {name} | {found['held']:,} | {found['requests']} | {ms(found['p50'])} | {ms(found['p95'])} | "
                  f"{ms(found['max'])} | {found['over_1s']} | {found['failed']} |", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
