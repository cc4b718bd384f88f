"""Buyer figures: the one part of analytics that needs a pipeline over `purchases`.

Distinct buyers cannot be summed from rollups, so this runs a `$group` by user over the
filtered range (using the index on purchasedAt). A poller must not pay for it every
second: results are cached per filters and reused while the data version is unchanged,
or for up to `max_age` seconds after it changed. Each result carries its own `asOf`.
"""

import threading
import time
from collections import Counter, OrderedDict
from concurrent.futures import Future
from datetime import UTC, datetime

from pymongo.database import Database

from core.storage.db import deployment
from core.storage.retry import retry_when_busy
from core.storage.schema import PURCHASES

CACHE_SIZE = 128


def match_stage(start, end, kind, payment_method, exclude_method=None) -> dict:
    """$match for active purchases inside the filters; `end` is exclusive."""
    query = {}
    window = {**({"$gte": start} if start else {}), **({"$lt": end} if end else {})}
    if window:
        query["purchasedAt"] = window
    if kind:
        query[kind] = {"$exists": True}
    if payment_method:
        query["paymentMethod"] = payment_method
    elif exclude_method:
        query["paymentMethod"] = {"$ne": exclude_method}
    return {"$match": query}


def group_by_user_stage() -> dict:
    return {"$group": {"_id": "$user", "purchases": {"$sum": 1}}}


def buyers_pipeline(start, end, kind, payment_method, exclude_method=None) -> list[dict]:
    return [match_stage(start, end, kind, payment_method, exclude_method), group_by_user_stage()]


def summarize_buyers(purchases_per_user: list[int]) -> dict:
    """uniqueBuyers, and buyers split into new (one purchase in the range) and repeat (more)."""
    histogram = Counter(purchases_per_user)
    repeat = sum(n for k, n in histogram.items() if k > 1)
    return {
        "uniqueBuyers": len(purchases_per_user),
        "newBuyers": histogram.get(1, 0),
        "repeatBuyers": repeat,
        "purchasesPerBuyer": [{"purchases": k, "buyers": histogram[k]} for k in sorted(histogram)],
    }


class BuyerCache:
    """Results by (database, filters), each with the data version it was computed at."""

    def __init__(self, size: int = CACHE_SIZE):
        self._entries: OrderedDict = OrderedDict()
        self._flights: dict = {}  # cache key -> Future of the run in progress
        self._lock = threading.Lock()
        self._size = size

    def figures(self, db: Database, filters: tuple, version: int, max_age: float) -> dict:
        """Cached figures if still valid, else a fresh run of the pipeline, shared by concurrent callers.

        One caller runs it; the others get the previous figures meanwhile, or wait for the
        run when there are none yet.
        """
        cache_key = (deployment(db), filters)
        with self._lock:
            entry = self._entries.get(cache_key)
            if entry is not None:
                computed_version, computed_at, result = entry
                if computed_version == version or time.monotonic() - computed_at < max_age:
                    return result
            flight = self._flights.get(cache_key)
            leader = flight is None
            if leader:
                flight = self._flights[cache_key] = Future()
        if not leader:
            if entry is not None:
                return entry[2]  # the last figures while the run in progress finishes: nobody queues
            return flight.result()  # bounded by the leader's own time limit
        try:
            result = compute_buyers(db, *filters)
        except BaseException as error:
            with self._lock:
                self._flights.pop(cache_key, None)
            flight.set_exception(error)
            raise
        with self._lock:
            self._flights.pop(cache_key, None)
            self._entries[cache_key] = (version, time.monotonic(), result)
            self._entries.move_to_end(cache_key)
            while len(self._entries) > self._size:
                self._entries.popitem(last=False)
        flight.set_result(result)
        return result


def compute_buyers(db: Database, start, end, kind, payment_method, exclude_method=None) -> dict:
    """Run the buyer pipeline now; the result's `asOf` is when it ran."""
    as_of = datetime.now(UTC)
    pipeline = buyers_pipeline(start, end, kind, payment_method, exclude_method)
    rows = retry_when_busy(lambda: list(db[PURCHASES].aggregate(pipeline)))
    return {**summarize_buyers([row["purchases"] for row in rows]), "asOf": as_of}
