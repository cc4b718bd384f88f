"""Concurrent HTTP clients of the API for scripts/bench_api.py: the API's paths, one thread and one
kept-alive requests.Session a client, and what their calls measured (Result)."""

import random
import threading
import time
from collections import Counter

import requests

from scripts.bench_server import Server

OWNERSHIP = "/api/v1/users/{user}/ownership"
PURCHASES = "/api/v1/purchases"
REQUEST_TIMEOUT = 30.0  # the server bounds a request's database calls at DB_TIMEOUT (10 s)


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
