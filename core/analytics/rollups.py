"""Pre-aggregated purchase figures, kept exact by the transactions that change purchases.

Buckets per month, ISO week, day and hour that saw activity, `_id` "<level>|<period>", so
every update is a point write, a time range is an `_id` range, and the number of documents
grows with time, not with sales. Each bucket has two parts in two collections
(`core.storage.schema.stats_collection`), so that a query reads only small documents:

    sales part:    {_id: "<level>|<period>", level, period,
                    sales: {<kind>: {<method>: {count, revenueMilli, comped}}}}
    details part:  one document per kind and payment method that the bucket saw,
                   {_id: "<level>|<period>|<kind>|<method>", level, period,
                    itemsByMethod: {<kind>: {<method>: {<item>: {count, revenueMilli}}}},
                    revoked:       {<kind>: {<method>: {count, revenueMilli}}}}

The details are split by kind and method because the embedded engine copies and re-encodes
a whole document on each update (a month's details in one document, 480 counters, cost 39 ms
an update; a fortieth of it, a few): a grant writes small documents only. A bucket's
documents still form one `_id` range ("<level>|<period>" sorts before its details' ids, and
ids of one level have one length up to the period), so every range read is unchanged, and
an item's total is the sum over its methods.

Money is kept in integer thousandths of the major unit (`revenueMilli`), exact for every
currency's minor unit (0, 2 or 3 decimals): any sequence of grants and revocations leaves
every figure exact, where sums of floats drift (1e15 granted and revoked left 240.0 where
239.97 was due). Purchases keep `amount` a number, as the original design has it. A
counter is a 64-bit integer: up to 9.2e15 of the major unit per bucket. Rollups written by
a release that summed floats (`revenue`) are rebuilt once
(`core.operations.rebuild.ensure_rollups_current`).

The four collections, with the two of the cohorts (core.analytics.cohorts), form a *rollup
set*. The data version document names the one in use (`rollupSet`, absent: the plain
names above); writers read it inside their transaction, and
a rebuild fills a new set aside and switches to it with one update of that document, so
that readers always find a complete set (`core.operations.rebuild`).

Each change also notes in the data version document which moment's buckets it changed
(`touched`, the last TOUCHED_KEPT changes), so that a reader holding the rollups of an
earlier version reads again only those buckets (`core.analytics.rollup_cache`).

Sales and items count active purchases by purchasedAt; revocations count by revokedAt.
Weeks keep the sales part only: they serve weekly series, and everything else is read
from months, days and hours, which nest.

Rebuilding them from the purchases is an operation: `core.operations.rebuild`.
"""

import math
from datetime import datetime
from decimal import ROUND_HALF_EVEN, Decimal
from urllib.parse import unquote

from bson import ObjectId
from pymongo import UpdateOne
from pymongo.database import Database

from core.analytics.periods import ROLLUP_LEVELS, floor
from core.changes import VERSION_ID
from core.storage.retry import retry_when_busy
from core.storage.schema import DATA_VERSION, ROLLUP_COLLECTIONS, kind_of, stats_collection

COUNTER_FIELDS = ("sales", "items", "itemsByMethod", "revoked")
MILLI = 1000
# 4: cohorts and retention (core.analytics.cohorts); 3: details split by kind and method; 2: money
# in integer thousandths; 1 (no mark): sums of floats
ROLLUP_FORMAT = 4
# an amount's thousandths must fit a 64-bit counter many times over; settings cap amounts below this
LARGEST_AMOUNT = 1e15
# the changes recorded in the data version document's `touched`: a reader whose rollups are
# older than that many changes reads them whole
TOUCHED_KEPT = 32
SET_SEPARATOR = "__"  # "purchase_stats__<set>": no plain name is a prefix of another set's names


def money_units(amount) -> int:
    """An amount in integer thousandths, from its shortest decimal form (29.99 -> 29990)."""
    return int((Decimal(repr(amount)) * MILLI).to_integral_value(ROUND_HALF_EVEN))


def from_units(units: int) -> float:
    """Integer thousandths back to an amount: the float nearest the exact decimal."""
    return float(Decimal(units) / MILLI) + 0.0


def set_collection(base: str, rollup_set: str = "") -> str:
    """The name in `rollup_set` of a plain rollup collection name ("" is the plain names)."""
    return f"{base}{SET_SEPARATOR}{rollup_set}" if rollup_set else base


def set_collections(rollup_set: str = "") -> tuple[str, ...]:
    return tuple(set_collection(base, rollup_set) for base in ROLLUP_COLLECTIONS)


def active_set(state: dict) -> str:
    """The rollup set a data version document names."""
    return state.get("rollupSet") or ""


def active_collections(db: Database) -> tuple[str, ...]:
    """The names of the rollup collections in use now (for the checker and tests)."""
    doc = retry_when_busy(lambda: db[DATA_VERSION].find_one({"_id": VERSION_ID}, {"rollupSet": 1}))
    return set_collections(active_set(doc or {}))


def rollups_outdated(state: dict) -> bool:
    """True when a data version document says the rollups need a rebuild before they are read.

    Every write of this release marks the document with ROLLUP_FORMAT, so a document with
    changes counted and no mark was written by a release that summed floats; `rebuilding`
    is the flag of a release that rebuilt in place (the rollups may be half empty). This
    release never sets it.
    """
    older = state.get("version", 0) > 0 and state.get("rollupFormat") != ROLLUP_FORMAT
    return older or state.get("rebuilding") is True


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
    kind, method, units = kind_of(purchase), key(purchase["paymentMethod"]), money_units(purchase["amount"])
    item = str(purchase[kind])
    inc = {
        f"sales.{kind}.{method}.count": sign,
        f"sales.{kind}.{method}.revenueMilli": sign * units,
        f"itemsByMethod.{kind}.{method}.{item}.count": sign,
        f"itemsByMethod.{kind}.{method}.{item}.revenueMilli": sign * units,
    }
    if units == 0:
        inc[f"sales.{kind}.{method}.comped"] = sign
    return inc


def revocation_increments(revoked: dict) -> dict:
    kind, method = kind_of(revoked), key(revoked["paymentMethod"])
    return {f"revoked.{kind}.{method}.count": 1, f"revoked.{kind}.{method}.revenueMilli": money_units(revoked["amount"])}


def record_sale(db: Database, session, state: dict, purchase: dict, sign: int) -> datetime:
    """Add (sign 1) or take away (sign -1) a purchase in its hour, day, week and month buckets
    of the rollup set `state` names (`writing_set`), and in its buyer's cohorts; return the
    moment whose buckets changed."""
    _increment(db, session, state, [(purchase["purchasedAt"], sale_increments(purchase, sign))])
    _record_buyers(db, session, state, [purchase], sign)
    return purchase["purchasedAt"]


def record_sales(db: Database, session, state: dict, purchases: list[dict]) -> list[datetime]:
    """record_sale of many new purchases, each bucket written once; their moments."""
    _increment(db, session, state, [(p["purchasedAt"], sale_increments(p, 1)) for p in purchases])
    _record_buyers(db, session, state, purchases, 1)
    return [p["purchasedAt"] for p in purchases]


def _record_buyers(db: Database, session, state: dict, purchases: list[dict], sign: int) -> None:
    # cohorts are computed from each buyer's purchases, above these buckets: imported here
    from core.analytics.cohorts import record_buyers

    record_buyers(db, session, state, purchases, sign)


def record_revocation(db: Database, session, state: dict, revoked: dict) -> datetime:
    _increment(db, session, state, [(revoked["revokedAt"], revocation_increments(revoked))])
    return revoked["revokedAt"]


def part_of(path: str) -> str:
    return "sales" if path.startswith("sales.") else "details"


def details_suffix(path: str) -> str:
    """"|<kind>|<method>": what a details counter adds to its bucket's `_id`
    ("itemsByMethod.<kind>.<method>.<item>.count", "revoked.<kind>.<method>.count")."""
    _, kind, method, _ = path.split(".", 3)
    return f"|{kind}|{method}"


def bucket_parts(level: str) -> tuple[str, ...]:
    """The parts a level keeps: weeks keep the sales part only (weekly series), everything
    else is read from months, days and hours, which nest."""
    return ("sales",) if level == "week" else ("sales", "details")


def rollup_targets(level: str, moment: datetime, inc: dict) -> dict[tuple[str, str], dict]:
    """{(collection, document _id): $inc} of one level's bucket holding `moment`."""
    bucket, out = touched_id(level, moment), {}
    for path, value in inc.items():
        part = part_of(path)
        if part in bucket_parts(level):
            doc_id = bucket if part == "sales" else bucket + details_suffix(path)
            out.setdefault((stats_collection(level, part), doc_id), {})[path] = value
    return out


def writing_set(db: Database, session) -> dict:
    """The data version document as the writer's transaction sees it ({} before the first
    change): the rollup set to keep exact (`rollupSet`), `version` and `epoch`.

    The writer then bumps the version in the same transaction (core.changes.bump_version,
    with `touched_update`). A rebuild's switch updates the same document: on MongoDB a
    transaction that read the set before the switch fails with a write conflict when it bumps
    the data version, and runs again; mongoeco runs one transaction at a time.
    """
    found = db[DATA_VERSION].find_one({"_id": VERSION_ID}, {"rollupSet": 1, "version": 1, "epoch": 1},
                                      session=session)
    return found or {}


def _increment(db: Database, session, state: dict, changes: list[tuple[datetime, dict]]) -> None:
    """The increments of the changes (moment, $inc), each document written once, one bulk
    write per collection (one round trip each)."""
    rollup_set = active_set(state)
    targets: dict[tuple[str, str], dict] = {}
    for moment, inc in changes:
        for level in ROLLUP_LEVELS:
            for (collection, doc_id), part_inc in rollup_targets(level, moment, inc).items():
                target = targets.setdefault((collection, doc_id), {"level": level, "period": floor(moment, level),
                                                                   "inc": {}})
                for path, value in part_inc.items():
                    target["inc"][path] = target["inc"].get(path, 0) + value
    by_collection: dict[str, list] = {}
    for (collection, doc_id), target in targets.items():
        by_collection.setdefault(collection, []).append(UpdateOne(
            {"_id": doc_id},
            {"$inc": target["inc"], "$setOnInsert": {"level": target["level"], "period": target["period"]}},
            upsert=True,
        ))
    for collection, requests in by_collection.items():
        db[set_collection(collection, rollup_set)].bulk_write(requests, ordered=True, session=session)


def next_version(state: dict) -> int:
    """The data version the writer's change makes, from its `writing_set`."""
    return (state.get("version") or 0) + 1


def touched_update(state: dict, moments: list[datetime]) -> dict:
    """The update operators that note in the data version document that the change this
    transaction makes (its version: the one `state` read plus one, as it bumps it once)
    touched the buckets of `moments`: a reader that holds the rollups of an earlier version
    reads again only those (core.analytics.rollup_cache). The first such note gives the
    document its `epoch`, which no other database's shares; a new document is marked with
    this release's ROLLUP_FORMAT."""
    notes = [{"version": next_version(state), "at": moment} for moment in moments]
    update = {"$push": {"touched": {"$each": notes, "$slice": -TOUCHED_KEPT}},
              "$setOnInsert": {"rollupFormat": ROLLUP_FORMAT}}
    if not state.get("epoch"):
        update["$set"] = {"epoch": str(ObjectId())}
    return update


def touched_id(level: str, moment: datetime) -> str:
    """The `_id` of the bucket of `level` that holds `moment`."""
    return bucket_id(level, floor(moment, level))


def well_formed(purchase: dict, time_field: str = "purchasedAt") -> bool:
    """True when a purchase has what rollups need; others are reported by the checker."""
    amount = purchase.get("amount")
    return (
        isinstance(purchase.get(time_field), datetime)
        and isinstance(amount, int | float)
        and not isinstance(amount, bool)
        and (isinstance(amount, int) or math.isfinite(amount))
        and abs(amount) < LARGEST_AMOUNT
        and isinstance(purchase.get("paymentMethod"), str)
        and ("course" in purchase) != ("test" in purchase)
    )


def compute_rollups(purchases, revoked) -> dict[str, list[dict]]:
    """Rollup documents by collection for these purchases and revocations, built in memory.

    Documents that are not well formed are left out.
    """
    builder = RollupBuilder()
    for purchase in purchases:
        builder.add_sale(purchase)
    for record in revoked:
        builder.add_revocation(record)
    return builder.documents()


class IncrementSink:
    """Takes purchases and revocations one at a time as the increments they make to the
    rollups, at the moment they count for; a subclass says what `_add` keeps of them."""

    def add_sale(self, purchase: dict) -> None:
        if well_formed(purchase):
            self._add(purchase["purchasedAt"], sale_increments(purchase, 1))

    def add_revocation(self, record: dict) -> None:
        if well_formed(record, "revokedAt"):
            self._add(record["revokedAt"], revocation_increments(record))

    def _add(self, moment: datetime, inc: dict) -> None:
        raise NotImplementedError


class RollupBuilder(IncrementSink):
    """Rollup documents built one purchase at a time, so that a pass over the purchases made
    for another reason (the checker's) also yields their rollups; memory holds buckets only."""

    def __init__(self):
        self._docs = {name: {} for name in ROLLUP_COLLECTIONS}

    def documents(self) -> dict[str, list[dict]]:
        return {name: sorted(found.values(), key=lambda d: d["_id"]) for name, found in self._docs.items()}

    def take(self) -> dict[str, list[dict]]:
        """The documents built so far; the builder starts again empty."""
        docs = self.documents()
        self._docs = {name: {} for name in ROLLUP_COLLECTIONS}
        return docs

    def _add(self, moment: datetime, inc: dict) -> None:
        for level in ROLLUP_LEVELS:
            for (collection, doc_id), part_inc in rollup_targets(level, moment, inc).items():
                doc = self._docs[collection].setdefault(
                    doc_id, {"_id": doc_id, "level": level, "period": floor(moment, level)})
                for path, value in part_inc.items():
                    _add_path(doc, path, value)


def _add_path(doc: dict, path: str, value) -> None:
    *parents, leaf = path.split(".")
    for part in parents:
        doc = doc.setdefault(part, {})
    doc[leaf] = doc.get(leaf, 0) + value


def rollup_counters(doc: dict) -> dict[str, int]:
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


def counter_differences(expected: dict, stored: dict) -> list[dict]:
    """Every counter that differs between two maps of (collection, _id) -> {counter path: value},
    a missing counter counting as 0: what the consistency reports list."""
    differences = []
    for key in sorted(set(expected) | set(stored), key=lambda k: (k[0], str(k[1]))):
        want, have = expected.get(key, {}), stored.get(key, {})
        for path in sorted(set(want) | set(have)):
            if want.get(path, 0) != have.get(path, 0):
                differences.append({"collection": key[0], "bucket": key[1], "counter": path,
                                    "expected": want.get(path, 0), "stored": have.get(path, 0)})
    return differences
