"""A lease in one document: which process may do a job now, decided by the database.

A lease is held by a token until a deadline, both kept in one document. `Lease.claim` takes
it with one compare-and-set (`find_one_and_update`) that matches only while nobody holds it
(never taken, given back, or past its deadline) and the document meets the job's own
conditions (a slot that is due, say): of processes claiming at once, exactly one wins.
`Held.renew` moves the deadline on and `Held.release` gives the lease back, each only while
the token is still there: a holder that stalled and was taken over changes nothing. A
process that dies holding a lease loses it at the deadline. Deadlines are written and
compared in the claiming process's clock, and stored at BSON's millisecond precision.

The health check's schedule (dashboard.health) and bulk grant jobs (core.operations.bulk.job)
hold one; the rollup rebuild's lease (`rebuild: {token, until}` in the data version
document) has this layout too: `Lease(..., token="rebuild.token", until="rebuild.until")`.
"""

import logging
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from pymongo import ReturnDocument
from pymongo.database import Database
from pymongo.errors import DuplicateKeyError

from core.storage.documents import utc
from core.storage.retry import retry_when_busy

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)  # the deadline of a lease given back: long past
POLL_SECONDS = 0.25  # how often a claim that may wait tries again
log = logging.getLogger(__name__)


class Lease:
    """Where a lease lives: document `key` of `collection`.

    `token` is the path of the holder's token inside a holder record ("holder.name"): a claim
    writes that record whole (the token and the claim's `holder` fields), so nothing of an
    earlier holder is left in it. `until` is the path of the deadline, inside the record or
    beside it. A claim or a renewal holds the lease `seconds`. A release removes the record,
    or with `keep_holder` leaves it as a note of who ran last, its deadline passed.
    """

    def __init__(self, db: Database, collection: str, key: Any, *, seconds: float,
                 token: str = "lease.token", until: str = "lease.until", keep_holder: bool = False):
        record, _, name = token.rpartition(".")
        inside = until.removeprefix(f"{record}.") if until.startswith(f"{record}.") else None
        if not record or "." in (inside or ""):
            raise ValueError(f"the token must sit in a holder record ('holder.token'), got {token!r}")
        self.collection, self.key, self.seconds = utc(db)[collection], key, seconds
        self.token, self.until, self.record, self.keep_holder = token, until, record, keep_holder
        self._name, self._until_inside = name, inside

    def free(self, now: datetime) -> dict:
        """The filter of a lease nobody holds at `now`: never taken, given back, or run out."""
        return {"$or": [{self.until: None}, {self.until: {"$lt": now}}]}

    def claim(self, token: Any, *, holder: dict | None = None, when: dict | None = None,
              fields: dict | None = None, over: Any = None, upsert: bool = False, wait: float = 0.0,
              now: datetime | None = None) -> "Held | None":
        """Take the lease for `token` if nobody holds it and the document matches `when`; None if not.

        `holder`: more fields of the holder record (who, since when); `fields`: more to set in
        the same update. `over`: a token the caller knows to be dead, taken over though its
        deadline has not passed. `upsert`: create the document when there is none. `wait`: try
        again every POLL_SECONDS for up to that many seconds.
        """
        give_up_at = time.monotonic() + wait
        while (held := self._take(token, holder or {}, when or {}, fields or {}, over, upsert, now)) is None:
            if time.monotonic() >= give_up_at:
                return None
            time.sleep(POLL_SECONDS)
        return held

    def _take(self, token: Any, holder: dict, when: dict, fields: dict, over: Any, upsert: bool,
              now: datetime | None) -> "Held | None":
        now = now or datetime.now(UTC)
        free = self.free(now)
        if over is not None:
            free["$or"].append({self.token: over})
        query = {**when, "_id": self.key, "$and": [*when.get("$and", ()), free]}
        record = {self._name: token, **holder}
        update = {**fields, self.record: record}
        deadline = now + timedelta(seconds=self.seconds)
        if self._until_inside:
            record[self._until_inside] = deadline
        else:
            update[self.until] = deadline
        try:
            document = retry_when_busy(lambda: self.collection.find_one_and_update(
                query, {"$set": update}, upsert=upsert, return_document=ReturnDocument.AFTER))
        except DuplicateKeyError:  # upsert: the document is there and the lease is held
            return None
        return None if document is None else Held(self, token, document)

    def held(self, token: Any) -> "Held":
        """The holding of `token`, claimed earlier (by another thread, or a caller that kept the token)."""
        return Held(self, token)

    def holder(self, document: dict | None, now: datetime | None = None) -> dict | None:
        """The holder record in `document` (as read) while its deadline has not passed at `now`; else None."""
        deadline = _at(document, self.until)
        if not isinstance(deadline, datetime):
            return None
        if deadline.tzinfo is None:  # read through a client that does not decode aware datetimes
            deadline = deadline.replace(tzinfo=UTC)
        return _at(document, self.record) if deadline >= (now or datetime.now(UTC)) else None


@dataclass
class Held:
    """A lease held by `token`: what renews and releases it. `document`: as the claim left it."""

    lease: Lease
    token: Any
    document: dict | None = None
    renewed: float = field(default_factory=time.monotonic)  # when this holding last renewed, monotonic

    def renew(self, *, fields: dict | None = None, every: float = 0.0, now: datetime | None = None) -> bool:
        """Move the deadline `seconds` past now and set `fields`, if the token still holds the
        lease (a deadline that passed with nobody taking over is still its own); False if not.
        With `every`, a call within that many seconds of the last renewal writes nothing."""
        if every and time.monotonic() - self.renewed < every:
            return True
        lease, self.renewed = self.lease, time.monotonic()
        update = {**(fields or {}), lease.until: (now or datetime.now(UTC)) + timedelta(seconds=lease.seconds)}
        done = retry_when_busy(lambda: lease.collection.update_one(self._mine(), {"$set": update}))
        return done.matched_count == 1

    def release(self, *, fields: dict | None = None) -> bool:
        """Give the lease back and set `fields`, if the token still holds it; False if not."""
        lease, update = self.lease, {"$set": dict(fields or {})}
        if lease.keep_holder or not lease._until_inside:
            update["$set"][lease.until] = EPOCH  # a date, so that a claim's `$lt` of any release finds it free
        if not lease.keep_holder:
            update["$unset"] = {lease.record: ""}
        if not update["$set"]:
            del update["$set"]
        done = retry_when_busy(lambda: lease.collection.update_one(self._mine(), update))
        return done.matched_count == 1

    @contextmanager
    def renewing(self, every: float | None = None, name: str = "lease") -> Iterator["Held"]:
        """Renew the lease from a thread of its own while the block runs, every `every` s (a
        quarter of the lease's `seconds` by default): for work that cannot stop to renew it."""
        done = threading.Event()
        thread = threading.Thread(target=self._beat, args=(done, every or self.lease.seconds / 4),
                                  name=name, daemon=True)
        thread.start()
        try:
            yield self
        finally:
            done.set()
            thread.join(timeout=5)

    def _beat(self, done: threading.Event, every: float) -> None:
        while not done.wait(every):
            try:
                if not self.renew():
                    log.warning("the lease of %s %r was taken over", self.lease.collection.name, self.lease.key)
                    return
            except Exception:  # noqa: BLE001 - the next beat tries again; the lease covers a few misses
                log.warning("could not renew the lease of %s %r", self.lease.collection.name, self.lease.key,
                            exc_info=True)

    def _mine(self) -> dict:
        return {"_id": self.lease.key, self.lease.token: self.token}


def _at(document: dict | None, path: str) -> Any:
    """The value at a dotted `path` of `document`; None where any step is missing."""
    for step in path.split("."):
        if not isinstance(document, dict):
            return None
        document = document.get(step)
    return document
