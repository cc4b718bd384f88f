"""Slow clients against the production server: do ordinary requests still get answers?

Starts the app as `make run` does (gunicorn.conf.py: nginx in front; `--no-proxy` for
gunicorn alone), opens many connections that send their headers, or their body, a byte a
second (reconnecting when the server drops one), and meanwhile times an ordinary
`GET /login` four times a second from a fresh connection. Prints one table.

    .venv/bin/python scripts/bench_slow_clients.py [--headers 1000] [--bodies 150] [--seconds 20] [--no-proxy]
"""

import argparse
import asyncio
import statistics
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

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


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--headers", type=int, default=1000, help="connections sending headers slowly")
    parser.add_argument("--bodies", type=int, default=150, help="connections sending a body slowly")
    parser.add_argument("--seconds", type=float, default=20.0, help="ordinary requests timed per row")
    parser.add_argument("--no-proxy", action="store_true", help="gunicorn alone (WEB_PROXY=0), as before nginx")
    args = parser.parse_args(argv)
    from tests.conftest import production_server

    rows = (("no attack", 0, 0), (f"{args.headers:,} slow headers", args.headers, 0),
            (f"{args.bodies:,} slow bodies", 0, args.bodies),
            (f"{args.headers:,} slow headers + {args.bodies:,} slow bodies", args.headers, args.bodies))
    env = {"WEB_PROXY": "0"} if args.no_proxy else {}
    with tempfile.TemporaryDirectory() as folder, production_server(Path(folder) / "data", **env) as (_, base):
        print(f"`make run` ({'gunicorn alone' if args.no_proxy else 'nginx in front of gunicorn'}), "
              f"ordinary GET /login every {ORDINARY_EVERY} s for {args.seconds:g} s per row\n")
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
