"""Work shared by every open tab of a process: one version read, one render per change.

A team keeps the live page open in many tabs, each polling every second. Per tab, a poll
costs a version read shared with every other tab, and a cache lookup; the figures of a
view are drawn once per data version and sent to every tab that asks. Nothing here is
needed for correctness: a miss only costs time, and each process keeps its own copy,
keyed by the data version every process reads from the database.
"""

import threading
import time
from collections import OrderedDict
from concurrent.futures import Future, ThreadPoolExecutor

import pymongo

# renders of every app in the process; two, so one slow view does not hold up the others
_POOL = ThreadPoolExecutor(max_workers=2, thread_name_prefix="render")
RENDER_TIMEOUT = 30.0  # a render's own bound, apart from the polls that wait for it: slow under load is still worth finishing
CACHE_SIZE = 32  # views; each holds one rendered reply (a few hundred kB at most)


class SharedReading:
    """A value read from the database at most once per `fresh` seconds, by one caller at a time.

    Callers that arrive while a read is in flight wait for it instead of reading again.
    A failed read is shared for `backoff` seconds: while the database is down, the polls
    of every tab cost one attempt per `backoff`, not one each.
    """

    def __init__(self, read, *, fresh: float = 0.2, backoff: float = 1.0):
        self._read, self._fresh, self._backoff = read, fresh, backoff
        self._lock = threading.Lock()
        self._done: Future | None = None
        self._done_at = 0.0
        self._flight: Future | None = None

    def get(self, wait: float):
        """The value, or the shared error; TimeoutError when the read in flight takes longer than `wait`."""
        with self._lock:
            done = self._done
            if done is not None:
                age = time.monotonic() - self._done_at
                if age < (self._backoff if done.exception() else self._fresh):
                    return done.result()
            flight, leader = self._flight, self._flight is None
            if leader:
                flight = self._flight = Future()
        if not leader:
            return flight.result(timeout=wait)
        try:
            with pymongo.timeout(wait):
                flight.set_result(self._read())
        except BaseException as error:  # noqa: BLE001 - handed to every waiting caller, then raised
            flight.set_exception(error)
        with self._lock:
            self._done, self._done_at, self._flight = flight, time.monotonic(), None
        return flight.result()


class RenderCache:
    """The reply for a view at a data version, computed once and shared (LRU by view).

    One render per view at a time: requests for a view wait for the render in flight
    instead of starting their own. Renders run on their own threads with their own time
    bound, so a render outlives the poll that started it. When the data changes faster
    than a render takes, a request that cannot wait gets the view's last render (newer
    than what its tab shows, or the tab keeps what it has) while the next one runs:
    the page keeps moving instead of chasing a version it never catches.
    """

    def __init__(self, *, size: int = CACHE_SIZE, timeout: float = RENDER_TIMEOUT):
        self._entries: OrderedDict = OrderedDict()  # view key -> (version, reply)
        self._flights: dict = {}  # view key -> Future of (version, reply)
        self._lock = threading.Lock()
        self._size, self._timeout = size, timeout
        self.renders = 0  # how many renders ran: what the sharing saves is visible in tests

    def get(self, key: str, version, render, wait: float) -> tuple:
        """(version rendered, reply): `render()` for `key` at `version`, or the view's last render
        when that is not ready within `wait` s; TimeoutError when there is none yet."""
        with self._lock:
            entry = self._entries.get(key)
            if entry is not None and entry[0] == version:
                self._entries.move_to_end(key)
                return entry
            flight = self._flights.get(key)
            if flight is None:
                flight = self._flights[key] = _POOL.submit(self._render, key, version, render)
        try:
            return flight.result(timeout=wait)
        except TimeoutError:
            if entry is None:
                raise
            return entry

    def _render(self, key: str, version, render) -> tuple:
        try:
            with pymongo.timeout(self._timeout):
                rendered = (version, render())
            with self._lock:
                self.renders += 1
                self._entries[key] = rendered
                self._entries.move_to_end(key)
                while len(self._entries) > self._size:
                    self._entries.popitem(last=False)
            return rendered
        finally:
            with self._lock:
                self._flights.pop(key, None)
