"""Rebuilding the rollups from `purchases` and `revoked_purchases`, and comparing them.

After a migration or a bulk import the rollups are rebuilt; the consistency checker compares
them with a fresh aggregation of the purchases.
"""

import time
from datetime import UTC, datetime, timedelta

from pymongo import ReturnDocument
from pymongo.database import Database
from pymongo.errors import DuplicateKeyError

from core.analytics.rollups import ROLLUP_FORMAT, RollupBuilder, compute_rollups, rollup_counters
from core.changes import VERSION_ID, read_version
from core.errors import PurchaseError
from core.storage.db import bulk_insert
from core.storage.documents import utc
from core.storage.retry import retry_when_busy
from core.storage.schema import DATA_VERSION, PURCHASES, REVOKED, ROLLUP_COLLECTIONS

REBUILD_ATTEMPTS = 5
# A rebuild holds a lease, renewed as it writes; a reader that finds the flag set with the
# lease run out knows the rebuild died (its process killed) and rebuilds itself.
LEASE_SECONDS = 15.0
RENEW_SECONDS = 3.0
_FIELDS = {"purchasedAt": 1, "amount": 1, "paymentMethod": 1, "course": 1, "test": 1}


def _write_rollups(db: Database, docs: dict[str, list[dict]], progress=None) -> int:
    """Bulk-insert rollup documents into their collections; return how many."""
    total, written = sum(len(d) for d in docs.values()), 0
    for name, found in docs.items():
        for start in range(0, len(found), 500):
            written += bulk_insert(db, name, found[start : start + 500])
            if progress is not None:
                progress(written, total)
    return total


def load_rollups(db: Database, purchases: list[dict], revoked: list[dict]) -> int:
    """Bulk-write the rollups of freshly bulk-loaded documents into empty rollups."""
    written = _write_rollups(db, compute_rollups(purchases, revoked))
    retry_when_busy(
        lambda: db[DATA_VERSION].update_one(
            {"_id": VERSION_ID},
            {"$inc": {"version": 1}, "$set": {"updatedAt": _now(), "rollupFormat": ROLLUP_FORMAT}},
            upsert=True,
        )
    )
    return written


def rebuild_rollups(db: Database, progress=None) -> int:
    """Replace the rollups with figures computed from `purchases` and `revoked_purchases`.

    Readers wait while `rebuilding` is set and its lease (`rebuildingUntil`) runs; a rebuild
    killed halfway leaves the lease to run out, and the next reader or rebuild starts over,
    so the read side is never left unusable. A purchase committed during the rebuild
    changes the data version, and the rebuild starts over (at most REBUILD_ATTEMPTS times).
    `progress(written, total)` is called as documents are written. Returns how many.
    """
    db = utc(db)
    version = _claim(db)
    lease = _Lease(db)
    try:
        for _ in range(REBUILD_ATTEMPTS):
            purchases = lease.renewing(_stream(db, PURCHASES, _FIELDS))
            revoked = lease.renewing(_stream(db, REVOKED, {**_FIELDS, "revokedAt": 1}))
            docs = compute_rollups(purchases, revoked)
            for name in ROLLUP_COLLECTIONS:
                retry_when_busy(lambda n=name: db[n].delete_many({}))

            def written_so_far(written, total):
                lease.renew()
                if progress is not None:
                    progress(written, total)

            written = _write_rollups(db, docs, written_so_far)
            done = retry_when_busy(
                lambda v=version: db[DATA_VERSION].find_one_and_update(
                    {"_id": VERSION_ID, "version": v},
                    {"$inc": {"version": 1}, "$set": {"rebuilding": False, "updatedAt": _now(),
                                                      "rollupFormat": ROLLUP_FORMAT},
                     "$unset": {"rebuildingUntil": ""}},
                )
            )
            if done is not None:
                return written
            version = read_version(db)["version"]
        raise PurchaseError(f"purchases kept changing during {REBUILD_ATTEMPTS} rebuilds of the rollups; try again")
    except BaseException:
        retry_when_busy(lambda: db[DATA_VERSION].update_one(
            {"_id": VERSION_ID}, {"$set": {"rebuilding": False}, "$unset": {"rebuildingUntil": ""}}))
        raise


def rebuild_is_dead(state: dict) -> bool:
    """True when the data version says a rebuild runs but its lease ran out: its process died."""
    until = state.get("rebuildingUntil")
    return bool(state.get("rebuilding")) and (until is None or until < _now())


def ensure_rollups_current(db: Database) -> bool:
    """Rebuild rollups that an older release wrote (sums of floats), or that a rebuild
    killed halfway left; True when it rebuilt. Cheap when they are current: one point read."""
    db = utc(db)
    state = read_version(db)
    if state.get("rollupFormat") == ROLLUP_FORMAT and not rebuild_is_dead(state):
        return False
    if state.get("rebuilding") and not rebuild_is_dead(state):
        return False  # another process is rebuilding them now
    has_rollups = any(retry_when_busy(lambda n=name: db[n].find_one({}, {"_id": 1})) for name in ROLLUP_COLLECTIONS)
    if not has_rollups and not state.get("rebuilding"):
        retry_when_busy(lambda: db[DATA_VERSION].update_one(
            {"_id": VERSION_ID}, {"$set": {"rollupFormat": ROLLUP_FORMAT}, "$setOnInsert": {"version": 0}},
            upsert=True))
        return False
    rebuild_rollups(db)
    return True


def _claim(db: Database) -> int:
    """Set `rebuilding` with a fresh lease unless a live rebuild holds one; return the new version."""
    now = _now()
    free = {"$or": [{"rebuilding": {"$ne": True}}, {"rebuildingUntil": {"$exists": False}},
                    {"rebuildingUntil": {"$lt": now}}]}
    try:
        marked = retry_when_busy(
            lambda: db[DATA_VERSION].find_one_and_update(
                {"_id": VERSION_ID, **free},
                {"$inc": {"version": 1},
                 "$set": {"rebuilding": True, "rebuildingUntil": now + timedelta(seconds=LEASE_SECONDS), "updatedAt": now}},
                upsert=True,
                return_document=ReturnDocument.AFTER,
            )
        )
    except DuplicateKeyError:
        marked = None  # the document exists and a live rebuild holds it
    if marked is None:
        raise PurchaseError("another rebuild of the rollups is running; try again when it ends")
    return marked["version"]


class _Lease:
    """Renews the rebuild's lease at most every RENEW_SECONDS."""

    def __init__(self, db: Database):
        self.db, self.renewed = db, time.monotonic()

    def renew(self) -> None:
        if time.monotonic() - self.renewed < RENEW_SECONDS:
            return
        self.renewed = time.monotonic()
        until = _now() + timedelta(seconds=LEASE_SECONDS)
        retry_when_busy(lambda: self.db[DATA_VERSION].update_one(
            {"_id": VERSION_ID, "rebuilding": True}, {"$set": {"rebuildingUntil": until}}))

    def renewing(self, documents):
        """`documents`, renewing the lease as they are read (300,000 purchases take ~45 s)."""
        for count, document in enumerate(documents):
            if count % 1000 == 0:
                self.renew()
            yield document


def _stream(db: Database, collection: str, fields: dict):
    """Every document of a collection, read in batches: memory holds the rollups, not the purchases."""
    return db[collection].find({}, fields).batch_size(1000)


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
    stored = {
        (name, d["_id"]): rollup_counters(d)
        for name in ROLLUP_COLLECTIONS
        for d in retry_when_busy(lambda n=name: list(db[n].find()))
    }
    differences = []
    for bucket in sorted(set(expected) | set(stored)):
        want, have = expected.get(bucket, {}), stored.get(bucket, {})
        for path in sorted(set(want) | set(have)):
            if want.get(path, 0) != have.get(path, 0):
                differences.append({"collection": bucket[0], "bucket": bucket[1], "counter": path,
                                    "expected": want.get(path, 0), "stored": have.get(path, 0)})
    return differences


def _now() -> datetime:
    return datetime.now(UTC)
