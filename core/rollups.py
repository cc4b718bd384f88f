"""Pre-aggregated purchase figures, kept exact by the transactions that change purchases.

One `purchase_stats` document per month, ISO week, day and hour that saw activity, `_id`
"<level>|<period>", so every update is a point write and the number of documents grows
with time, not with sales:

    {level, period,
     sales:         {<kind>: {<method>: {count, revenue, comped}}},    # active, by purchasedAt
     items:         {<kind>: {<item>: {count, revenue}}},              # active, by purchasedAt
     itemsByMethod: {<kind>: {<method>: {<item>: {count, revenue}}}},  # the same, by method
     revoked:       {<kind>: {<method>: {count, revenue}}}}            # by revokedAt

Week buckets hold `sales` only: weeks serve the weekly time series, and everything
else is read from months, days and hours, which nest.

Readers project the subtree they need: the engine's cost is per value read.

`data_version` holds a counter that every change bumps in the same transaction, so a
poller learns whether anything changed from one point read.
"""

from datetime import UTC, datetime
from urllib.parse import unquote

from pymongo import ReturnDocument
from pymongo.database import Database

from core.db import bulk_insert
from core.errors import PurchaseError
from core.periods import ROLLUP_LEVELS, floor
from core.retry import retry_when_busy
from core.schema import DATA_VERSION, PURCHASES, REVOKED, STATS, kind_of

VERSION_ID = "purchases"
COUNTER_FIELDS = ("sales", "items", "itemsByMethod", "revoked")
REBUILD_ATTEMPTS = 5


def key(name: str) -> str:
    """A payment method or id as a field name: no dots or leading dollars."""
    return name.replace("%", "%25").replace(".", "%2E").replace("$", "%24")


def unkey(field: str) -> str:
    return unquote(field)


def bucket_id(level: str, period: datetime) -> str:
    return f"{level}|{period.strftime('%Y-%m-%dT%H')}"


def sale_increments(purchase: dict, sign: int) -> dict:
    """The $inc of one active purchase (sign 1) or of its removal (sign -1)."""
    kind, method, amount = kind_of(purchase), key(purchase["paymentMethod"]), purchase["amount"]
    item = str(purchase[kind])
    inc = {
        f"sales.{kind}.{method}.count": sign,
        f"sales.{kind}.{method}.revenue": sign * amount,
        f"items.{kind}.{item}.count": sign,
        f"items.{kind}.{item}.revenue": sign * amount,
        f"itemsByMethod.{kind}.{method}.{item}.count": sign,
        f"itemsByMethod.{kind}.{method}.{item}.revenue": sign * amount,
    }
    if amount == 0:
        inc[f"sales.{kind}.{method}.comped"] = sign
    return inc


def revocation_increments(revoked: dict) -> dict:
    kind, method = kind_of(revoked), key(revoked["paymentMethod"])
    return {f"revoked.{kind}.{method}.count": 1, f"revoked.{kind}.{method}.revenue": revoked["amount"]}


def record_sale(db: Database, session, purchase: dict, sign: int) -> None:
    """Add (sign 1) or take away (sign -1) a purchase in its hour, day, week and month buckets."""
    _increment(db, session, purchase["purchasedAt"], sale_increments(purchase, sign))


def record_revocation(db: Database, session, revoked: dict) -> None:
    _increment(db, session, revoked["revokedAt"], revocation_increments(revoked))


def bump_version(db: Database, session) -> int:
    """Tell pollers that purchases changed, in the same transaction; return the new version."""
    doc = db[DATA_VERSION].find_one_and_update(
        {"_id": VERSION_ID},
        {"$inc": {"version": 1}, "$set": {"updatedAt": _now()}},
        upsert=True,
        return_document=ReturnDocument.AFTER,
        session=session,
    )
    return doc["version"]


def read_version(db: Database) -> dict:
    """The data version document: one point read; version 0 before the first change."""
    doc = retry_when_busy(lambda: db[DATA_VERSION].find_one({"_id": VERSION_ID}))
    return doc or {"_id": VERSION_ID, "version": 0, "rebuilding": False}


def get_data_version(db: Database) -> int:
    """A number that changes whenever purchases change: one point read for pollers."""
    return read_version(db)["version"]


def level_increments(level: str, inc: dict) -> dict:
    """Week buckets serve only time series: they keep sales and nothing else."""
    return {path: value for path, value in inc.items() if path.startswith("sales.")} if level == "week" else inc


def _increment(db: Database, session, moment: datetime, inc: dict) -> None:
    for level in ROLLUP_LEVELS:
        level_inc = level_increments(level, inc)
        if not level_inc:
            continue
        period = floor(moment, level)
        db[STATS].update_one(
            {"_id": bucket_id(level, period)},
            {"$inc": level_inc, "$setOnInsert": {"level": level, "period": period}},
            upsert=True,
            session=session,
        )


def well_formed(purchase: dict, time_field: str = "purchasedAt") -> bool:
    """True when a purchase has what rollups need; others are reported by the checker."""
    return (
        isinstance(purchase.get(time_field), datetime)
        and isinstance(purchase.get("amount"), int | float)
        and not isinstance(purchase.get("amount"), bool)
        and isinstance(purchase.get("paymentMethod"), str)
        and ("course" in purchase) != ("test" in purchase)
    )


def compute_rollups(purchases, revoked) -> list[dict]:
    """Rollup documents for these purchases and revocations, built in memory.

    Documents that are not well formed are left out.
    """
    docs = {}

    def add(moment, inc):
        for level in ROLLUP_LEVELS:
            period = floor(moment, level)
            level_inc = level_increments(level, inc)
            if not level_inc:
                continue
            doc = docs.setdefault(bucket_id(level, period), {"_id": bucket_id(level, period), "level": level, "period": period})
            for path, value in level_inc.items():
                _add_path(doc, path, value)

    for purchase in purchases:
        if well_formed(purchase):
            add(purchase["purchasedAt"], sale_increments(purchase, 1))
    for record in revoked:
        if well_formed(record, "revokedAt"):
            add(record["revokedAt"], revocation_increments(record))
    return sorted(docs.values(), key=lambda d: d["_id"])


def _add_path(doc: dict, path: str, value) -> None:
    *parents, leaf = path.split(".")
    for part in parents:
        doc = doc.setdefault(part, {})
    doc[leaf] = doc.get(leaf, 0) + value


def rollup_counters(doc: dict) -> dict[str, float]:
    """Flatten a rollup document to {path: value}, dropping zeros, for comparisons."""
    flat = {}

    def walk(prefix, node):
        for name, value in node.items():
            if isinstance(value, dict):
                walk(f"{prefix}{name}.", value)
            elif value:
                flat[prefix + name] = value

    walk("", {k: v for k, v in doc.items() if k in COUNTER_FIELDS})
    return flat


def load_rollups(db: Database, purchases: list[dict], revoked: list[dict]) -> int:
    """Bulk-write the rollups of freshly bulk-loaded documents into empty rollups."""
    docs = compute_rollups(purchases, revoked)
    for start in range(0, len(docs), 500):
        bulk_insert(db, STATS, docs[start : start + 500])
    retry_when_busy(
        lambda: db[DATA_VERSION].update_one(
            {"_id": VERSION_ID}, {"$inc": {"version": 1}, "$set": {"updatedAt": _now()}}, upsert=True
        )
    )
    return len(docs)


def rebuild_rollups(db: Database, progress=None) -> int:
    """Replace `purchase_stats` with figures computed from `purchases` and `revoked_purchases`.

    Readers wait while `rebuilding` is set. A purchase committed during the rebuild changes
    the data version, and the rebuild starts over (at most REBUILD_ATTEMPTS times).
    `progress(written, total)` is called as documents are written. Returns how many.
    """
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
            docs = compute_rollups(purchases, revoked)
            retry_when_busy(lambda: db[STATS].delete_many({}))
            for start in range(0, len(docs), 500):
                bulk_insert(db, STATS, docs[start : start + 500])
                if progress is not None:
                    progress(min(start + 500, len(docs)), len(docs))
            done = retry_when_busy(
                lambda: db[DATA_VERSION].find_one_and_update(
                    {"_id": VERSION_ID, "version": version},
                    {"$inc": {"version": 1}, "$set": {"rebuilding": False, "updatedAt": _now()}},
                )
            )
            if done is not None:
                return len(docs)
            version = read_version(db)["version"]
        raise PurchaseError(f"purchases kept changing during {REBUILD_ATTEMPTS} rebuilds of the rollups; try again")
    except BaseException:
        retry_when_busy(lambda: db[DATA_VERSION].update_one({"_id": VERSION_ID}, {"$set": {"rebuilding": False}}))
        raise


_FIELDS = {"purchasedAt": 1, "amount": 1, "paymentMethod": 1, "course": 1, "test": 1}


def rollup_differences(db: Database) -> list[dict]:
    """Buckets whose stored counters differ from a fresh aggregation over the purchases."""
    purchases = retry_when_busy(lambda: list(db[PURCHASES].find({}, _FIELDS)))
    revoked = retry_when_busy(lambda: list(db[REVOKED].find({}, {**_FIELDS, "revokedAt": 1})))
    expected = {d["_id"]: rollup_counters(d) for d in compute_rollups(purchases, revoked)}
    stored = {d["_id"]: rollup_counters(d) for d in retry_when_busy(lambda: list(db[STATS].find()))}
    differences = []
    for bucket in sorted(set(expected) | set(stored)):
        want, have = expected.get(bucket, {}), stored.get(bucket, {})
        for path in sorted(set(want) | set(have)):
            if abs(want.get(path, 0) - have.get(path, 0)) > 1e-6:
                differences.append({"bucket": bucket, "counter": path, "expected": want.get(path, 0), "stored": have.get(path, 0)})
    return differences


def _now() -> datetime:
    return datetime.now(UTC)
