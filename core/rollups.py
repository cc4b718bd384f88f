"""Pre-aggregated purchase figures, kept exact by the transactions that change purchases.

Buckets per month, ISO week, day and hour that saw activity, `_id` "<level>|<period>", so
every update is a point write, a time range is an `_id` range, and the number of documents
grows with time, not with sales. Each bucket has two parts in two collections
(`core.schema.stats_collection`), so that a query reads only small documents:

    sales part:    {level, period, sales: {<kind>: {<method>: {count, revenue, comped}}}}
    details part:  {level, period,
                    items:         {<kind>: {<item>: {count, revenue}}},
                    itemsByMethod: {<kind>: {<method>: {<item>: {count, revenue}}}},
                    revoked:       {<kind>: {<method>: {count, revenue}}}}

Sales and items count active purchases by purchasedAt; revocations count by revokedAt.
Weeks keep the sales part only: they serve weekly series, and everything else is read
from months, days and hours, which nest.

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
from core.schema import DATA_VERSION, PURCHASES, REVOKED, ROLLUP_COLLECTIONS, kind_of, stats_collection

VERSION_ID = "purchases"
COUNTER_FIELDS = ("sales", "items", "itemsByMethod", "revoked")
REBUILD_ATTEMPTS = 5


def key(name: str) -> str:
    """A payment method or id as a field name: no dots or leading dollars."""
    return name.replace("%", "%25").replace(".", "%2E").replace("$", "%24")


def unkey(field: str) -> str:
    return unquote(field)


def bucket_id(level: str, period: datetime) -> str:
    """"day|2025-01-31T00": ids sort by time within a level, so a time range is an _id range."""
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


def part_of(path: str) -> str:
    return "sales" if path.startswith("sales.") else "details"


def split_increments(level: str, inc: dict) -> dict[str, dict]:
    """{collection: $inc} for one level; weeks keep the sales part only."""
    out = {}
    for path, value in inc.items():
        part = part_of(path)
        if level != "week" or part == "sales":
            out.setdefault(stats_collection(level, part), {})[path] = value
    return out


def _increment(db: Database, session, moment: datetime, inc: dict) -> None:
    for level in ROLLUP_LEVELS:
        period = floor(moment, level)
        for collection, part_inc in split_increments(level, inc).items():
            db[collection].update_one(
                {"_id": bucket_id(level, period)},
                {"$inc": part_inc, "$setOnInsert": {"level": level, "period": period}},
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


def compute_rollups(purchases, revoked) -> dict[str, list[dict]]:
    """Rollup documents by collection for these purchases and revocations, built in memory.

    Documents that are not well formed are left out.
    """
    docs = {name: {} for name in ROLLUP_COLLECTIONS}

    def add(moment, inc):
        for level in ROLLUP_LEVELS:
            period = floor(moment, level)
            for collection, part_inc in split_increments(level, inc).items():
                doc_id = bucket_id(level, period)
                doc = docs[collection].setdefault(doc_id, {"_id": doc_id, "level": level, "period": period})
                for path, value in part_inc.items():
                    _add_path(doc, path, value)

    for purchase in purchases:
        if well_formed(purchase):
            add(purchase["purchasedAt"], sale_increments(purchase, 1))
    for record in revoked:
        if well_formed(record, "revokedAt"):
            add(record["revokedAt"], revocation_increments(record))
    return {name: sorted(found.values(), key=lambda d: d["_id"]) for name, found in docs.items()}


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
                lambda: db[DATA_VERSION].find_one_and_update(
                    {"_id": VERSION_ID, "version": version},
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
