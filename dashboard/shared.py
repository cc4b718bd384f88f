"""Work shared by every open tab of a process: one version read, one render per change.

A team keeps the live page open in many tabs, each polling every second. Per tab, a poll
costs a version read shared with every other tab, and a cache lookup; the figures of a
view are drawn once per data version and sent to every tab that asks. Nothing here is
needed for correctness: a miss only costs time, and each process keeps its own copy,
keyed by the data version every process reads from the database. Each app has its own
(one SharedReading and one RenderCache, each with its own threads): several apps in one
process (tests) never wait for each other's work, and `close()` ends an app's threads.
"""

import contextlib
import threading
import time
from collections import OrderedDict
from concurrent.futures import Future, ThreadPoolExecutor

import pymongo

# renders: two threads, so one slow view does not hold up the others
RENDER_THREADS = 2
RENDER_TIMEOUT = 30.0  # a render's own bound, apart from the polls that wait for it: slow under load is still worth finishing
CACHE_SIZE = 32  # views; each holds one rendered reply (a few hundred kB at most)


class SharedReading:
    """A value read from the database at most once per `fresh` seconds, for every caller.

    The read runs on its own thread. The caller that starts it waits for it, up to `wait`;
    callers that arrive while it runs get the last value read (at most one read's time
    older than `fresh`) instead of waiting in the database's line behind a sale. A failed
    read is shared for `backoff` seconds: while the database is down, the polls of every
    tab cost one attempt per `backoff`, not one each. A read that fails without being an
    outage (`is_outage` says which; a slow answer is not one) leaves the last value standing.
    While the last read failed, a caller waits for the next one, up to `wait`; when that is
    not back in time the answer is the last failure: down stays down until a read says
    otherwise (a read of a stopped server takes its whole time limit to fail, as long as a
    poll may wait for it).
    """

    def __init__(self, read, *, fresh: float = 0.2, backoff: float = 1.0, timeout: float = 0.5,
                 is_outage=lambda error: True):
        self._read, self._fresh, self._backoff, self._timeout = read, fresh, backoff, timeout
        self._is_outage = is_outage
        self._lock = threading.Lock()
        self._done: Future | None = None  # the last finished read
        self._done_at = 0.0
        self._flight: Future | None = None
        # its own thread: never queued behind a render, nor behind another app's reads
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="shared-read")

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)

    def get(self, wait: float):
        """The value, or the shared error; TimeoutError when there is none yet within `wait`."""
        with self._lock:
            done, flight = self._done, self._flight
            stale = done is None or time.monotonic() - self._done_at >= (
                self._backoff if done.exception() else self._fresh)
            started = stale and flight is None
            if started:
                flight = self._flight = self._pool.submit(self._refresh)
        if done is None:
            return flight.result(timeout=wait)  # nothing to show yet: wait for news
        if stale and done.exception():
            try:
                return flight.result(timeout=wait)  # the database was down: wait for news
            except TimeoutError:
                return done.result()  # none in time: still down, as far as anyone knows
        if started:
            # the caller that asks for the new read waits for it (one tab alone sees a sale in
            # the same tick); if it is slow, the last value
            with contextlib.suppress(Exception):  # too slow, or failed: the next callers get that news
                return flight.result(timeout=wait)
        return done.result()

    def _refresh(self):
        outcome = Future()
        try:
            with pymongo.timeout(self._timeout):
                outcome.set_result(self._read())
        except BaseException as error:  # noqa: BLE001 - kept for every caller, then raised to the first
            outcome.set_exception(error)
        with self._lock:
            previous = self._done
            if outcome.exception() and not self._is_outage(outcome.exception()) and previous is not None and \
                    not previous.exception():
                self._flight = None  # slow, not down: the last value stands, the next caller reads again
            else:
                self._done, self._done_at, self._flight = outcome, time.monotonic(), None
        return outcome.result()


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
        self._pool = ThreadPoolExecutor(max_workers=RENDER_THREADS, thread_name_prefix="render")

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)

    def get(self, key: str, version, render, wait: float) -> tuple:
        """(version rendered, reply): `render()` for `key` at `version`, or the view's last render
        when that is not ready in time; TimeoutError when there is none yet.

        The request that starts a render waits up to `wait` s for it (one tab alone sees a sale
        in the same tick); the others, arriving while it runs, take the last render at once
        and the new one on their next tick, so a hundred tabs do not all hold a thread waiting.
        """
        with self._lock:
            entry = self._entries.get(key)
            if entry is not None and entry[0] == version:
                self._entries.move_to_end(key)
                return entry
            flight = self._flights.get(key)
            if flight is None:
                flight = self._flights[key] = self._pool.submit(self._render, key, version, render)
            elif entry is not None:
                wait = 0
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
