"""Purchase analytics answered from rollups, exact as of the data version they were read at."""

import time
from dataclasses import dataclass
from datetime import UTC, datetime

from bson import ObjectId
from pymongo.database import Database

from core.analytics.buyers import BuyerCache
from core.analytics.filters import MAX_SPAN, Filters, parse_analytics_filters
from core.analytics.periods import (
    NESTED_LEVELS,
    buckets,
    cover,
    default_granularity,
    floor,
    levels_for,
    step,
)
from core.analytics.rollup_cache import RollupCache
from core.analytics.rollups import (
    active_set,
    bucket_id,
    from_units,
    key,
    money_units,
    rollups_outdated,
    set_collection,
    unkey,
    well_formed,
)
from core.changes import VERSION_ID, read_version
from core.errors import PurchaseError, ValidationError
from core.settings import CoreSettings
from core.storage.caches import caches_of, every_database_caches
from core.storage.documents import utc
from core.storage.retry import retry_when_busy
from core.storage.schema import DATA_VERSION, KINDS, PURCHASES, REVOKED, catalog, kind_of, stats_collection
from core.storage.transactions import READ_ONLY_COMMENT, run_in_transaction
from core.validation import core_settings, shown

OPTIMISTIC_READS = 2
# after reads that kept moving, the next ones go straight to the snapshot transaction for
# this long: under continuous writes the plain tries only add their time to every render
CONTENDED_SECONDS = 5.0
REBUILD_WAIT_SECONDS = 30.0  # for rollups of an older release that another process is rebuilding


@dataclass
class _Contention:
    until: float = 0.0  # reads go straight to the snapshot transaction until then


def _rollups(db: Database) -> RollupCache:
    """The rollup documents this process holds of `db` (one of the database's caches)."""
    return caches_of(db).slot("rollups", RollupCache)


@dataclass
class Snapshot:
    """What was read, all at one data version."""

    version: int
    as_of: datetime
    start: datetime | None
    granularity: str
    series: list[dict]  # rollups at the chart's granularity or finer: `sales`
    details: list[dict]  # rollups at the coarsest levels that fit: items, revoked
    raw_sales: list[dict]  # purchases in slivers shorter than an hour at the range's edges
    raw_revoked: list[dict]


def get_purchase_analytics(db: Database, filters=None, *, settings: CoreSettings | None = None) -> dict:
    """Revenue, purchases, popular items, payment methods and buyers inside the filters.

    `settings.buyers_max_age` bounds how old the cached buyer figures may be.
    """
    core_settings(settings)  # refused before anything is read
    result = purchase_figures(db, filters)
    buyers = buyer_figures(db, filters, result["dataVersion"], settings=settings)
    result["uniqueBuyers"] = buyers["uniqueBuyers"]
    result["buyers"] = {k: v for k, v in buyers.items() if k != "uniqueBuyers"}
    return result


def forget_held_rollups() -> None:
    """Drop the rollup documents this process holds: its next reads take whole ranges (benchmarks)."""
    for caches in every_database_caches():
        held = caches.held("rollups")
        if held is not None:
            held.clear()


def purchase_figures(db: Database, filters=None, *, details: bool = True) -> dict:
    """Every figure but the buyer ones: rollups only, exact as of `asOf`.

    With details=False only the time series and totals are read: no items, no revocations.
    """
    if not isinstance(details, bool):
        raise ValidationError(f"details must be True or False, got {shown(details)}")
    db = utc(db)
    f = parse_analytics_filters(filters)
    snap = read_snapshot(db, f, details=details)
    titles = {kind: _titles(db, kind) for kind in KINDS if details and f.kind in (None, kind)}
    return summarize(snap, f, titles)


def buyer_figures(db: Database, filters=None, version: int | None = None, *, settings: CoreSettings | None = None) -> dict:
    """uniqueBuyers, newBuyers, repeatBuyers, purchasesPerBuyer and their own `asOf`.

    Cached per filters: reused while the data version is unchanged, and for up to
    BUYERS_MAX_AGE seconds after it changed.
    """
    max_age = core_settings(settings).buyers_max_age
    if version is not None and (type(version) is not int or not 0 <= version < 2**63):
        raise ValidationError(f"version must be a data version (a whole number from 0), got {shown(version)}")
    db = utc(db)
    f = parse_analytics_filters(filters)
    version = read_version(db)["version"] if version is None else version
    buyers = caches_of(db).slot("buyers", BuyerCache)
    return buyers.figures(db, (f.start, f.end, f.kind, f.payment_method, f.exclude_method), version, max_age)


def read_snapshot(db: Database, f: Filters, *, details: bool = True) -> Snapshot:
    """Read rollups (and raw slivers shorter than an hour), all at one data version, which
    the snapshot carries: at least the version a caller read before.

    A plain read is kept when the data version did not move while it ran (always, when
    purchases are not changing). After OPTIMISTIC_READS that saw it move (continuous
    writes: sixteen writers) the read runs inside one snapshot transaction, which sees one
    version by construction, and so do the reads of the next CONTENDED_SECONDS: on mongoeco
    it waits for the transaction in progress (read-only snapshots have their own line,
    database.engine_queue), on MongoDB it takes no locks. Rollups that an older release wrote are rebuilt first
    (core.operations.rebuild.ensure_rollups_current).
    """
    contention = caches_of(db).slot("contention", _Contention)
    for _ in range(OPTIMISTIC_READS if time.monotonic() >= contention.until else 0):
        before = read_version(db)
        if rollups_outdated(before):
            _rebuild_outdated(db)
            continue
        reader = _Reader(db)
        snap = reader.snapshot(before, f, details)
        after = read_version(db, {"version": 1, "rollupSet": 1})
        if (after["version"], active_set(after)) == (before["version"], active_set(before)):
            _rollups(db).commit(reader.ranges, snap.version)
            return snap
    contention.until = time.monotonic() + CONTENDED_SECONDS
    reader, snap = run_in_transaction(db, lambda session: _in_transaction(db, session, f, details))
    _rollups(db).commit(reader.ranges, snap.version)
    return snap


def _in_transaction(db: Database, session, f: Filters, details: bool) -> tuple["_Reader", Snapshot]:
    state = db[DATA_VERSION].find_one({"_id": VERSION_ID}, session=session, comment=READ_ONLY_COMMENT) or {}
    if rollups_outdated(state):
        raise PurchaseError("the rollups are being rebuilt; try again in a minute")
    reader = _Reader(db, session)
    return reader, reader.snapshot({"version": 0, **state}, f, details)


def _rebuild_outdated(db: Database) -> None:
    # the rebuild is an operation over the whole database (core.operations), above this layer
    from core.operations.rebuild import ensure_rollups_current

    ensure_rollups_current(db, wait=REBUILD_WAIT_SECONDS)


class _Reader:
    """The reads of one snapshot, in one rollup set; inside a transaction when `session` is given.

    Rollup ranges come through the process's RollupCache: read whole, or only the buckets
    changed since the version it holds; `ranges` says what to keep once the snapshot is found good.
    """

    def __init__(self, db: Database, session=None):
        self.db, self.session = db, session
        self.ranges: list = []

    def find(self, collection: str, query: dict, projection: dict | None = None, *, limit: int = 0) -> list[dict]:
        if self.session is not None:  # a failure ends the transaction, which is run again whole
            return list(self.db[collection].find(query, projection, session=self.session, limit=limit))
        return retry_when_busy(lambda: list(self.db[collection].find(query, projection, limit=limit)))

    def snapshot(self, state: dict, f: Filters, details: bool) -> Snapshot:
        start = f.start or self._earliest_period(state)
        now = datetime.now(UTC)
        granularity = f.granularity or default_granularity((f.end or now) - (start or now))
        if granularity in MAX_SPAN and start and (f.end or now) - start > MAX_SPAN[granularity]:
            raise ValidationError(f"granularity {granularity!r} is for ranges up to {MAX_SPAN[granularity].days} days")
        series, detail_docs, raw_sales, raw_revoked = [], [], [], []
        if start is not None:
            series_pieces = cover(start, f.end, levels_for(granularity))
            series = self._rollups(state, series_pieces, "sales", _sales_projection(f))
            if details:
                detail_docs = self._rollups(state, cover(start, f.end, NESTED_LEVELS), "details", _detail_projection(f))
            for _, low, high in (p for p in series_pieces if p[0] == "raw"):
                raw_sales += self._between(PURCHASES, "purchasedAt", low, high)
                raw_revoked += self._between(REVOKED, "revokedAt", low, high)
        return Snapshot(state["version"], datetime.now(UTC), start, granularity, series, detail_docs, raw_sales,
                        raw_revoked)

    def _rollups(self, state: dict, pieces, part: str, projection: dict) -> list[dict]:
        """Rollup documents of each piece, by a range of `_id`s (which sort by time within a level).

        A range on `_id` is the primary index on MongoDB; on the embedded engine it also avoids
        the scan that a filter on other fields costs after each write.
        """
        docs = []
        for level, low, high in pieces:
            if level != "raw":
                high_id = bucket_id(level, high) if high else f"{level}|~"
                docs += self._range(state, stats_collection(level, part), level, bucket_id(level, low), high_id,
                                    projection, split=part == "details")
        return docs

    def _range(self, state: dict, base: str, level: str, low: str, high: str, projection: dict, *,
               split: bool = False) -> list[dict]:
        """The documents of one level's `_id` range [low, high) in the snapshot's rollup set;
        `split`: a bucket's part is several documents, "<bucket>|..." (the details)."""
        collection = set_collection(base, active_set(state))
        plan = _rollups(self.db).plan(self.db.name, state, collection, level, low, high, projection)
        self.ranges.append(plan)
        if plan.stale is None:
            return plan.finish(self.find(collection, {"_id": {"$gte": low, "$lt": high}}, projection))
        if split:
            return plan.finish([doc for i in plan.stale
                                for doc in self.find(collection, {"_id": {"$gte": i, "$lt": f"{i}|~"}}, projection)])
        # one by one: the embedded engine answers a point read with a limit in ~1 ms, one without in ~5
        return plan.finish([doc for i in plan.stale for doc in self.find(collection, {"_id": i}, projection, limit=1)])

    def _earliest_period(self, state: dict) -> datetime | None:
        found = [
            doc["period"]
            for part in ("sales", "details")
            for doc in self._range(state, stats_collection("month", part), "month", "month|", "month|~", {"period": 1},
                                   split=part == "details")
        ]
        return min(found, default=None)

    def _between(self, collection: str, field: str, low: datetime, high: datetime | None) -> list[dict]:
        return self.find(collection, {field: {"$gte": low, **({"$lt": high} if high else {})}})


def _kinds(f: Filters) -> list[str]:
    return [f.kind] if f.kind else list(KINDS)


def _sales_projection(f: Filters) -> dict:
    return {"period": 1, **{f"sales.{kind}": 1 for kind in _kinds(f)}}


def _detail_projection(f: Filters) -> dict:
    if f.payment_method:
        items = {f"itemsByMethod.{kind}.{key(f.payment_method)}": 1 for kind in _kinds(f)}
    else:  # an item's total is the sum over its methods (core.analytics.rollups)
        items = {f"itemsByMethod.{kind}": 1 for kind in _kinds(f)}
    return {**items, **{f"revoked.{kind}": 1 for kind in _kinds(f)}}


def summarize(snap: Snapshot, f: Filters, titles: dict) -> dict:
    """Every rollup-based figure, from what `read_snapshot` read; pure."""
    sales, items, revoked = _records(snap, f)
    total_count = sum(r[3] for r in sales)
    total_revenue = money(sum(r[4] for r in sales))
    by_kind = {kind: [r for r in sales if r[1] == kind] for kind in KINDS}
    return {
        "totalPurchases": total_count,
        "totalRevenue": total_revenue,
        "averageOrderValue": total_revenue / total_count if total_count else 0.0,
        "coursePurchases": sum(r[3] for r in by_kind["course"]),
        "testPurchases": sum(r[3] for r in by_kind["test"]),
        "courseRevenue": money(sum(r[4] for r in by_kind["course"])),
        "testRevenue": money(sum(r[4] for r in by_kind["test"])),
        "revenueByPeriod": _series(sales, snap, f),
        "popularCourses": _popular(items, "course", titles, f.top),
        "popularTests": _popular(items, "test", titles, f.top),
        "paymentMethods": _methods(sales),
        "revoked": {"count": sum(r[2] for r in revoked), "revenue": money(sum(r[3] for r in revoked))},
        "comped": {"count": sum(r[5] for r in sales)},
        "granularity": snap.granularity,
        "startDate": snap.start,
        "endDate": f.end,
        "dataVersion": snap.version,
        "asOf": snap.as_of,
    }


def _records(snap: Snapshot, f: Filters):
    """Flatten rollups and raw documents into filtered tuples.

    sales: (period, kind, method, count, revenue, comped); items: (kind, item, count,
    revenue); revoked: (kind, method, count, revenue).
    """
    sales, items, revoked = [], [], []

    def wanted(kind, method):
        return f.kind in (None, kind) and f.payment_method in (None, method) and method != f.exclude_method

    for doc in snap.series:
        for kind, by_method in doc.get("sales", {}).items():
            for field, c in by_method.items():
                if wanted(kind, unkey(field)):
                    sales.append((doc["period"], kind, unkey(field), c.get("count", 0), c.get("revenueMilli", 0), c.get("comped", 0)))
    for doc in snap.details:
        for kind, by_method in doc.get("itemsByMethod", {}).items():
            for field, by_item in by_method.items():
                if not wanted(kind, unkey(field)):
                    continue
                items += [(kind, item, c.get("count", 0), c.get("revenueMilli", 0)) for item, c in by_item.items()]
        for kind, by_method in doc.get("revoked", {}).items():
            for field, c in by_method.items():
                if wanted(kind, unkey(field)):
                    revoked.append((kind, unkey(field), c.get("count", 0), c.get("revenueMilli", 0)))
    for p in snap.raw_sales:
        kind = kind_of(p)
        if well_formed(p) and wanted(kind, p["paymentMethod"]):
            units = money_units(p["amount"])
            sales.append((p["purchasedAt"], kind, p["paymentMethod"], 1, units, int(units == 0)))
            items.append((kind, str(p[kind]), 1, units))
    for r in snap.raw_revoked:
        kind = kind_of(r)
        if well_formed(r, "revokedAt") and wanted(kind, r["paymentMethod"]):
            revoked.append((kind, r["paymentMethod"], 1, money_units(r["amount"])))
    return sales, items, revoked


def _series(sales, snap: Snapshot, f: Filters) -> list[dict]:
    """Revenue and count per bucket, ascending, with empty buckets inside the range as zeros."""
    unit = snap.granularity
    totals = {}
    for period, _, _, count, revenue, _ in sales:
        bucket = floor(period, unit)
        c, r = totals.get(bucket, (0, 0))
        totals[bucket] = (c + count, r + revenue)
    busy = [bucket for bucket, (count, _) in totals.items() if count]
    # an open start begins at the first bucket with sales, not at the month it falls in
    start = f.start or (min(busy) if busy else None)
    if start is None:
        return []
    end = f.end or max([snap.as_of, *(step(b, unit) for b in busy)])
    return [
        {"period": bucket, "revenue": money(totals.get(bucket, (0, 0))[1]), "count": totals.get(bucket, (0, 0))[0]}
        for bucket in buckets(start, end, unit)
    ]


def _popular(items, kind: str, titles: dict, top: int) -> list[dict]:
    totals = {}
    for item_kind, item, count, revenue in items:
        if item_kind == kind:
            c, r = totals.get(item, (0, 0))
            totals[item] = (c + count, r + revenue)
    names = titles.get(kind, {})
    rows = [
        {"id": _oid(item), "title": names.get(item) or f"(deleted {kind} {item})", "count": c, "revenue": money(r)}
        for item, (c, r) in totals.items()
        if c > 0
    ]
    rows.sort(key=lambda row: (-row["count"], -row["revenue"], row["title"]))
    return rows[:top]


def _methods(sales) -> list[dict]:
    totals = {}
    for _, _, method, count, revenue, _ in sales:
        c, r = totals.get(method, (0, 0))
        totals[method] = (c + count, r + revenue)
    rows = [{"paymentMethod": m, "count": c, "revenue": money(r)} for m, (c, r) in totals.items() if c > 0]
    rows.sort(key=lambda row: (-row["count"], -row["revenue"], row["paymentMethod"]))
    return rows


def money(units: int) -> float:
    """A sum of integer thousandths as an amount: exact, never float noise or -0.0."""
    return from_units(units)


def _titles(db: Database, kind: str) -> dict[str, str]:
    docs = retry_when_busy(lambda: list(db[catalog(kind)].find({}, {"title": 1})))
    return {str(doc["_id"]): doc.get("title") for doc in docs}


def _oid(item: str):
    return ObjectId(item) if ObjectId.is_valid(item) else item
