"""Rebuilding the rollups from `purchases` and `revoked_purchases`, and comparing them.

After a migration or a bulk import the rollups are rebuilt; the consistency checker compares
them with a fresh aggregation of the purchases.

A rebuild never touches the rollups in use: it fills a new rollup set aside
(`core.analytics.rollups`) and switches to it with one update of the data version
document, made only if no purchase changed since it read them. Readers and writers go on
with the set in use meanwhile, so a rebuild killed at any moment leaves complete, exact
rollups behind; what it half wrote is dropped by the next rebuild. Rebuilds take turns
through a lease on the same document, renewed as the rebuild works: one whose process died
holds it at most LEASE_SECONDS.
"""

import contextlib
import time
from datetime import UTC, datetime

from bson import ObjectId
from pymongo import ASCENDING, UpdateOne
from pymongo.database import Database

from core.analytics.cohorts import CohortBuilder
from core.analytics.periods import buckets, floor, step
from core.analytics.rollups import (
    ROLLUP_FORMAT,
    SET_SEPARATOR,
    RollupBuilder,
    active_set,
    compute_rollups,
    counter_differences,
    rollup_counters,
    rollups_outdated,
    set_collection,
    set_collections,
)
from core.changes import VERSION_ID, read_version
from core.errors import PurchaseError
from core.storage.db import bulk_insert, bulk_write, read_all
from core.storage.documents import utc
from core.storage.lease import Held, Lease
from core.storage.retry import retry_when_busy
from core.storage.schema import COHORT_COLLECTIONS, DATA_VERSION, PURCHASES, REVOKED, ROLLUP_COLLECTIONS

REBUILD_ATTEMPTS = 5
LEASE_SECONDS = 15.0
RENEW_SECONDS = 3.0
BATCH = 1000
PAGE = 50_000  # purchases read at once
_FIELDS = {"user": 1, "purchasedAt": 1, "amount": 1, "paymentMethod": 1, "course": 1, "test": 1}
_REVOKED_FIELDS = {**_FIELDS, "revokedAt": 1}
# what the version document's older releases used for an in-place rebuild: cleared at each switch
_OLD_FLAGS = {"rebuilding": "", "rebuildingUntil": ""}


class RebuildRunning(PurchaseError):
    """Another rebuild holds the lease and is alive."""


def rebuild_rollups(db: Database, progress=None, *, wait: float = LEASE_SECONDS + RENEW_SECONDS) -> int:
    """Replace the rollups with figures computed from `purchases` and `revoked_purchases`.

    Waits up to `wait` seconds for another rebuild's lease (a dead one's runs out within
    LEASE_SECONDS), then raises RebuildRunning. A purchase committed while it reads makes
    it start over, at most REBUILD_ATTEMPTS times, then PurchaseError; the rollups in use
    stay as they were. `progress(written, None)` is called as documents are written.
    Returns how many documents the new rollups have.
    """
    db = utc(db)

    def build(lease: Held) -> int:
        for _ in range(REBUILD_ATTEMPTS):
            version = read_version(db)["version"]
            builder, written = RollupBuilder(), _SetWriter(db, lease.token, lease, progress)
            cohorts = CohortBuilder()  # a buyer's cohorts need all their purchases: written at the end
            for month in _months(db):
                for document in _renewing(lease, _month_of(db, PURCHASES, _FIELDS, "purchasedAt", month)):
                    builder.add_sale(document)
                    cohorts.add_sale(document)
                for document in _renewing(lease, _month_of(db, REVOKED, _REVOKED_FIELDS, "revokedAt", month)):
                    builder.add_revocation(document)
                written.add(builder.take())
            written.add_whole(cohorts.documents())
            if _switch(db, lease.token, version):
                return len(written.ids)
            _drop_set(db, lease.token)  # purchases changed meanwhile: start over
        raise PurchaseError(f"purchases kept changing during {REBUILD_ATTEMPTS} rebuilds of the rollups; try again")

    return _holding_lease(db, wait, build)


def load_rollups(db: Database, purchases: list[dict], revoked: list[dict]) -> int:
    """Make the rollups those of freshly bulk-loaded documents (all the database has); return how many."""

    def load(lease: Held) -> int:
        written = _SetWriter(db, lease.token, lease)
        written.add(compute_rollups(purchases, revoked))
        cohorts = CohortBuilder()
        for purchase in purchases:
            cohorts.add_sale(purchase)
        written.add_whole(cohorts.documents())
        _switch(db, lease.token, None)
        return len(written.ids)

    return _holding_lease(utc(db), LEASE_SECONDS + RENEW_SECONDS, load)


def _holding_lease(db: Database, wait: float, work) -> int:
    """Run `work(lease)`, which fills the set `lease.token` and switches to it, under the lease.

    Only the lease holder writes a set, switches or drops sets: no set being built is
    dropped, and a rebuild that stalled past its lease can no longer switch.
    """
    lease = _lease(db).claim(str(ObjectId()), upsert=True, wait=wait)
    if lease is None:
        raise RebuildRunning("another rebuild of the rollups is running; try again when it ends")
    try:
        _drop_other_sets(db, keep=active_set(read_version(db)))  # what killed rebuilds left
        written = work(lease)
    except BaseException:
        _drop_set(db, lease.token, quietly=True)
        with contextlib.suppress(Exception):  # a failure is being raised; the lease runs out anyway
            lease.release()
        raise
    try:
        _drop_other_sets(db, keep=lease.token)  # the set just left; readers still on it read again
    finally:
        lease.release()
    return written


def ensure_rollups_current(db: Database, *, wait: float = 30.0) -> bool:
    """Rebuild rollups that an older release wrote (sums of floats, or an in-place rebuild
    that died); True when it rebuilt. One point read when they are current.

    For the app's start; readers call it too when they find such rollups. While another
    process rebuilds them it waits, up to `wait` seconds, then raises PurchaseError.
    """
    db = utc(db)
    give_up_at = time.monotonic() + wait
    while rollups_outdated(read_version(db)):
        try:
            rebuild_rollups(db, wait=0)
            return True
        except RebuildRunning:
            if time.monotonic() > give_up_at:
                raise PurchaseError("the rollups are being rebuilt and it is taking long; try again in a minute") from None
            time.sleep(0.5)
    return False


class _SetWriter:
    """Writes the rollups of a rebuild in parts, a month at a time (_months): a bucket's first
    part is inserted, a later part (a week across two months) adds to its counters. Memory
    then holds a month's buckets (all the rollups of 300,000 purchases were 170 MB of Python
    objects: they grow with hours x items that saw a sale), and the buckets written so far
    are `_id`s only."""

    def __init__(self, db: Database, rollup_set: str, lease: Held, progress=None):
        self.db, self.rollup_set, self.lease, self.progress = db, rollup_set, lease, progress
        self.ids: set[tuple[str, str]] = set()

    def add(self, docs: dict[str, list[dict]]) -> None:
        for base, found in docs.items():
            name = set_collection(base, self.rollup_set)
            new = [doc for doc in found if (base, doc["_id"]) not in self.ids]
            more = [UpdateOne({"_id": doc["_id"]}, {"$inc": counters})
                    for doc in found if (base, doc["_id"]) in self.ids and (counters := rollup_counters(doc))]
            for start in range(0, len(new), BATCH):
                bulk_insert(self.db, name, new[start : start + BATCH])
                _renew(self.lease)
            for start in range(0, len(more), BATCH):
                bulk_write(self.db, name, more[start : start + BATCH])
                _renew(self.lease)
            self.ids.update((base, doc["_id"]) for doc in new)
        if self.progress is not None:
            self.progress(len(self.ids), None)  # how many there will be is known at the end only

    def add_whole(self, docs: dict[str, list[dict]]) -> None:
        """Documents complete at once, each written once as an insert (the cohorts: a buyer's
        need all their purchases, so they are known when every month was read)."""
        for base, found in docs.items():
            name = set_collection(base, self.rollup_set)
            for start in range(0, len(found), BATCH):
                bulk_insert(self.db, name, found[start : start + BATCH])
                _renew(self.lease)
            self.ids.update((base, doc["_id"]) for doc in found)
        if self.progress is not None:
            self.progress(len(self.ids), None)


def _switch(db: Database, token: str, version: int | None) -> bool:
    """Make the set `token` the one in use, if this rebuild still holds the lease and the data
    version is still `version` (None: any); True when it did.

    One update of one document: a reader or a writer sees the old set or the new one. The
    data version moves, so pollers read the figures again.
    """
    match = {"_id": VERSION_ID, "rebuild.token": token}
    if version is not None:
        match["version"] = version if version else {"$in": [0, None]}  # 0: no change counted yet
    done = retry_when_busy(
        lambda: db[DATA_VERSION].find_one_and_update(
            match,
            {"$inc": {"version": 1}, "$unset": _OLD_FLAGS,
             "$set": {"rollupSet": token, "rollupFormat": ROLLUP_FORMAT, "updatedAt": _now()}},
        )
    )
    return done is not None


def _drop_set(db: Database, rollup_set: str, *, quietly: bool = False) -> None:
    """Drop a set that a failed rebuild wrote; never the set in use (a switch whose answer was lost)."""
    try:
        if active_set(read_version(db)) == rollup_set:
            return
        for name in (*set_collections(rollup_set), *(set_collection(base, rollup_set) for base in COHORT_COLLECTIONS)):
            retry_when_busy(lambda n=name: db.drop_collection(n))
    except Exception:  # noqa: BLE001 - cleaning up after a failure that is being raised
        if not quietly:
            raise


def _drop_other_sets(db: Database, keep: str) -> None:
    """Drop every rollup collection outside the set `keep`: earlier sets, and what killed
    rebuilds half wrote. Only the lease holder (or a bulk load) calls this, so no set
    being built is dropped; readers still on the old set see the version move and read again."""
    names = retry_when_busy(db.list_collection_names)
    for name in names:
        base, _, rollup_set = name.partition(SET_SEPARATOR)
        if base in ROLLUP_COLLECTIONS + COHORT_COLLECTIONS and rollup_set != keep:
            retry_when_busy(lambda n=name: db.drop_collection(n))


def _lease(db: Database) -> Lease:
    """The right to rebuild, held in the version document (`rebuild: {token, until}`); the
    token also names the set being built."""
    return Lease(db, DATA_VERSION, VERSION_ID, seconds=LEASE_SECONDS, token="rebuild.token", until="rebuild.until")


def _renew(lease: Held) -> None:
    """Extend the lease, at most every RENEW_SECONDS; PurchaseError when another rebuild took
    it over (this one stalled)."""
    if not lease.renew(every=RENEW_SECONDS):
        raise PurchaseError("this rebuild stalled longer than its lease and another took over")


def _renewing(lease: Held, documents):
    """`documents`, renewing the lease as they are read (300,000 purchases take ~45 s)."""
    for count, document in enumerate(documents):
        if count % BATCH == 0:
            _renew(lease)
        yield document


def _months(db: Database):
    """The start of each UTC month that holds a purchase date or a revocation date.

    A rebuild reads by time (the `purchasedAt` and `revokedAt` indexes) and writes each month
    when it is whole, so every bucket but a week across two months is written once, as an
    insert: read in `_id` order, purchases whose ids do not follow their dates (an import, a
    migration) left nearly every bucket in parts, each part an update (at 300,000 purchases
    over three months, 18 minutes). Documents without a date there count in no rollup and
    are not read."""
    month = _first_date(db, datetime.min.replace(tzinfo=UTC))
    while month is not None:
        month = floor(month, "month")
        yield month
        month = _first_date(db, step(month, "month"))  # months without any are skipped


def _month_of(db: Database, collection: str, fields: dict, field: str, month: datetime):
    """The documents whose `field` lies in `month`: in one query, or a day to a query when
    the month holds more than PAGE (the embedded engine's wire server holds a query's whole
    answer)."""
    following = step(month, "month")
    found = _between(db, collection, fields, field, month, following, limit=PAGE + 1)
    if len(found) <= PAGE:
        return found
    return (doc for day in buckets(month, following, "day")
            for doc in _between(db, collection, fields, field, day, step(day, "day")))


def _first_date(db: Database, since: datetime) -> datetime | None:
    """The first purchase date or revocation date from `since` on, by their indexes."""
    found = [doc[field] for collection, field in ((PURCHASES, "purchasedAt"), (REVOKED, "revokedAt"))
             for doc in [retry_when_busy(lambda c=collection, f=field: db[c].find_one(
                 {f: {"$gte": since}}, {f: 1}, sort=[(f, ASCENDING)]))] if doc is not None]
    return min(found, default=None)


def _between(db: Database, collection: str, fields: dict, field: str, low: datetime, high: datetime, *,
             limit: int = 0) -> list[dict]:
    return retry_when_busy(lambda: list(db[collection].find({field: {"$gte": low, "$lt": high}}, fields,
                                                            limit=limit)))


def _stream(db: Database, collection: str, fields: dict):
    """Every document of a collection, PAGE at a time: one query for them all would be held
    whole by the embedded engine's wire server (240 MB at 300,000 purchases)."""
    return read_all(db, collection, fields, page=PAGE)


def rollup_differences(db: Database, sales: RollupBuilder | None = None) -> list[dict]:
    """Buckets whose stored counters differ from a fresh aggregation over the purchases; exact.

    `sales`: the rollups of every purchase, built by a caller that read them all already
    (the checker), so that they are not read twice."""
    db = utc(db)
    if sales is None:
        sales = RollupBuilder()
        for purchase in _stream(db, PURCHASES, _FIELDS):
            sales.add_sale(purchase)
    for record in _stream(db, REVOKED, {**_FIELDS, "revokedAt": 1}):
        sales.add_revocation(record)
    expected = {(name, d["_id"]): rollup_counters(d) for name, docs in sales.documents().items() for d in docs}
    rollup_set = active_set(read_version(db))
    stored = {
        (base, d["_id"]): rollup_counters(d)
        for base, name in zip(ROLLUP_COLLECTIONS, set_collections(rollup_set), strict=True)
        for d in retry_when_busy(lambda n=name: list(db[n].find()))
    }
    return counter_differences(expected, stored)


def _now() -> datetime:
    return datetime.now(UTC)
