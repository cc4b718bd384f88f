"""Rebuilding the rollups from `purchases` and `revoked_purchases`, and comparing them.

After a migration or a bulk import the rollups are rebuilt; the consistency checker compares
them with a fresh aggregation of the purchases.
"""

from datetime import UTC, datetime

from pymongo import ReturnDocument
from pymongo.database import Database

from core.analytics.rollups import compute_rollups, rollup_counters
from core.changes import VERSION_ID, read_version
from core.errors import PurchaseError
from core.storage.db import bulk_insert
from core.storage.documents import utc
from core.storage.retry import retry_when_busy
from core.storage.schema import DATA_VERSION, PURCHASES, REVOKED, ROLLUP_COLLECTIONS

REBUILD_ATTEMPTS = 5


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
            {"_id": VERSION_ID}, {"$inc": {"version": 1}, "$set": {"updatedAt": _now()}}, upsert=True
        )
    )
    return written


def rebuild_rollups(db: Database, progress=None) -> int:
    """Replace the rollups with figures computed from `purchases` and `revoked_purchases`.

    Readers wait while `rebuilding` is set. A purchase committed during the rebuild changes
    the data version, and the rebuild starts over (at most REBUILD_ATTEMPTS times).
    `progress(written, total)` is called as documents are written. Returns how many.
    """
    db = utc(db)
    marked = retry_when_busy(
        lambda: db[DATA_VERSION].find_one_and_update(
            {"_id": VERSION_ID},
            {"$inc": {"version": 1}, "$set": {"rebuilding": True, "updatedAt": _now()}},
            upsert=True,
            return_document=ReturnDocument.AFTER,
        )
    )
    version = marked["version"]
    try:
        for _ in range(REBUILD_ATTEMPTS):
            purchases = retry_when_busy(lambda: list(db[PURCHASES].find({}, _FIELDS)))
            revoked = retry_when_busy(lambda: list(db[REVOKED].find({}, {**_FIELDS, "revokedAt": 1})))
            for name in ROLLUP_COLLECTIONS:
                retry_when_busy(lambda n=name: db[n].delete_many({}))
            written = _write_rollups(db, compute_rollups(purchases, revoked), progress)
            done = retry_when_busy(
                lambda v=version: db[DATA_VERSION].find_one_and_update(
                    {"_id": VERSION_ID, "version": v},
                    {"$inc": {"version": 1}, "$set": {"rebuilding": False, "updatedAt": _now()}},
                )
            )
            if done is not None:
                return written
            version = read_version(db)["version"]
        raise PurchaseError(f"purchases kept changing during {REBUILD_ATTEMPTS} rebuilds of the rollups; try again")
    except BaseException:
        retry_when_busy(lambda: db[DATA_VERSION].update_one({"_id": VERSION_ID}, {"$set": {"rebuilding": False}}))
        raise


_FIELDS = {"purchasedAt": 1, "amount": 1, "paymentMethod": 1, "course": 1, "test": 1}


def rollup_differences(db: Database) -> list[dict]:
    """Buckets whose stored counters differ from a fresh aggregation over the purchases."""
    db = utc(db)
    purchases = retry_when_busy(lambda: list(db[PURCHASES].find({}, _FIELDS)))
    revoked = retry_when_busy(lambda: list(db[REVOKED].find({}, {**_FIELDS, "revokedAt": 1})))
    expected = {
        (name, d["_id"]): rollup_counters(d) for name, docs in compute_rollups(purchases, revoked).items() for d in docs
    }
    stored = {
        (name, d["_id"]): rollup_counters(d)
        for name in ROLLUP_COLLECTIONS
        for d in retry_when_busy(lambda n=name: list(db[n].find()))
    }
    differences = []
    for bucket in sorted(set(expected) | set(stored)):
        want, have = expected.get(bucket, {}), stored.get(bucket, {})
        for path in sorted(set(want) | set(have)):
            if abs(want.get(path, 0) - have.get(path, 0)) > 1e-6:
                differences.append({"collection": bucket[0], "bucket": bucket[1], "counter": path,
                                    "expected": want.get(path, 0), "stored": have.get(path, 0)})
    return differences


def _now() -> datetime:
    return datetime.now(UTC)
