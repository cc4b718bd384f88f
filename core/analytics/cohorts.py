"""Cohorts: buyers grouped by the period of their first purchase, and what they bought in each
period since; kept exact by the transaction of every grant and revocation, as the rollups are.

A buyer's cohort is the UTC calendar month or ISO week (from Monday) of their first purchase
that is not revoked, among the purchases a choice of filters keeps: kind ("*" or a kind),
payment method ("*" or one) and paid ("*"; "paid": an amount other than 0; "free": amount 0).
Every choice is kept, so a purchase counts in eight of them; `<choice>` below is
"<kind>|<method>|<paid>", `<method>` "*" or the method percent-encoded (no ".", "|" or "$").
Two collections of the rollup set (core.analytics.rollups) hold the figures:

    cohort_cells      {_id: "<period>|<cohort's first day>|<offset>",
                       n: {"<choice>|b": buyers of the cohort who bought in that period,
                           "<choice>|r": revenue of their purchases then, in thousandths}}
    cohort_retention  {_id: "buyers",             n: {<choice>: buyers}}
                      {_id: "last|<day>",         n: {<choice>: buyers whose last purchase is that day}}
                      {_id: "gap|d|<days>",       n: {<choice>: buyers whose second purchase came that
                                                      many whole days (24 h, rounded down) after the first}}
                      {_id: "gap|b|<days // 32>", n: the same, 32 days to a document}

Days are YYYY-MM-DD, offsets and gaps zero-padded: the cells of a period type sort by cohort, so
a range of cohorts is one `_id` range (12 monthly cohorts: at most 78 documents), and the
retention documents sort by day (core.analytics.retention reads them).

What a grant costs decided the shape. The embedded engine spends about 3 ms of CPU on each
document a transaction updates, and little more for a few dozen counters in one flat map
(`n`), where nested maps and top-level fields cost more: so a cell holds every choice of its
period, and a sale at the present writes four documents (its month's cell, its week's, the
days of the buyer's last purchase before and after), more when it is a buyer's first or second
purchase under some choice.

A change reads the purchases of each buyer it touches (one read by `user`, an index), computes
what that buyer adds to every document before and after it (`buyer_counters`, from the buyer's
purchases alone) and `$inc`s the difference: the revocation of a first purchase moves the
buyer to the cohort of their next one. `CohortBuilder` computes the same documents for a
rebuild (core.operations.rebuild) and for the checker (core.operations.consistency).

Purchases count as in the rollups (`well_formed`), when their `user` is an ObjectId.
"""

from collections import defaultdict
from datetime import UTC, date, datetime, timedelta
from urllib.parse import quote

from bson import ObjectId
from pymongo import UpdateOne
from pymongo.database import Database

from core.analytics.periods import ceil
from core.analytics.rollups import (
    active_set,
    counter_differences,
    from_units,
    money_units,
    rollups_outdated,
    set_collection,
    well_formed,
)
from core.changes import VERSION_ID, read_version
from core.errors import PurchaseError, ValidationError
from core.storage.db import read_all
from core.storage.documents import utc
from core.storage.retry import retry_when_busy
from core.storage.schema import (
    COHORT_CELLS,
    COHORT_COLLECTIONS,
    COHORT_RETENTION,
    DATA_VERSION,
    KINDS,
    PURCHASES,
    kind_of,
)
from core.storage.transactions import READ_ONLY_COMMENT, run_in_transaction
from core.validation import cohort_options

ALL = "*"
PERIODS = ("month", "week")
DAY = timedelta(days=1)
GAP_BIN = 32  # days of gaps to a "gap|b|" document
DEFAULT_MONTHS = 12  # the range of cohorts when none is given: the last 12 months
MAX_COHORTS = 120  # in one call: the cells read grow with the square of the number of cohorts
OPTIMISTIC_READS = 2
REBUILD_WAIT_SECONDS = 30.0  # for rollups of an older release that another process is rebuilding
FIELDS = {"user": 1, "purchasedAt": 1, "amount": 1, "paymentMethod": 1, **{kind: 1 for kind in KINDS}}
PAGE = 1000  # stored documents per read, for the checker


def method_name(method: str | None) -> str:
    """A payment method as ids and field names hold it: percent-encoded, "*" for every method."""
    return ALL if method is None else quote(method, safe="").replace(".", "%2E")


def paid_name(paid: bool | None) -> str:
    return ALL if paid is None else "paid" if paid else "free"


def day_text(moment) -> str:
    """"2025-01-31": four digits of year whatever the year (strftime gives "999")."""
    return f"{moment.year:04d}-{moment.month:02d}-{moment.day:02d}"


def period_index(moment, period: str) -> int:
    """The number of the month or ISO week that holds `moment` (UTC), counted from year 1."""
    if period == "month":
        return moment.year * 12 + moment.month - 1
    return (moment.toordinal() - 1) // 7  # 0001-01-01 is a Monday


def period_start(index: int, period: str) -> datetime:
    day = date(index // 12, index % 12 + 1, 1) if period == "month" else date.fromordinal(index * 7 + 1)
    return datetime(day.year, day.month, day.day, tzinfo=UTC)


def sale_of(purchase: dict) -> tuple | None:
    """(purchasedAt in UTC, amount in thousandths, kind, method name) of a purchase that counts, else None."""
    if not isinstance(purchase.get("user"), ObjectId) or not well_formed(purchase):
        return None
    moment = purchase["purchasedAt"]
    moment = moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)
    return moment, money_units(purchase["amount"]), kind_of(purchase), method_name(purchase["paymentMethod"])


def buyer_counters(sales: list[tuple]) -> dict[tuple[str, str, str], int]:
    """{(collection, _id, field path): value}: what one buyer's sales (`sale_of`) add to the documents."""
    chosen = defaultdict(list)  # (kind, method, paid) -> [(moment, units)]
    for moment, units, kind, method in sales:
        paid = "paid" if units else "free"
        for k in (ALL, kind):
            for m in (ALL, method):
                for q in (ALL, paid):
                    chosen[(k, m, q)].append((moment, units))
    out = defaultdict(int)
    for (kind, method, paid), theirs in chosen.items():
        theirs.sort(key=lambda sale: sale[0])  # ties change nothing: every figure reads times only
        first, choice = theirs[0][0], f"n.{kind}|{method}|{paid}"
        for period in PERIODS:
            cohort = period_index(first, period)
            prefix, seen = f"{period}|{day_text(period_start(cohort, period))}|", set()
            for moment, units in theirs:
                offset = period_index(moment, period) - cohort
                cell = f"{prefix}{offset:05d}"
                if offset not in seen:
                    seen.add(offset)
                    out[(COHORT_CELLS, cell, f"{choice}|b")] += 1
                if units:
                    out[(COHORT_CELLS, cell, f"{choice}|r")] += units
        out[(COHORT_RETENTION, "buyers", choice)] += 1
        out[(COHORT_RETENTION, f"last|{day_text(theirs[-1][0])}", choice)] += 1
        if len(theirs) > 1:
            gap = (theirs[1][0] - first) // DAY
            out[(COHORT_RETENTION, f"gap|d|{gap:07d}", choice)] += 1
            out[(COHORT_RETENTION, f"gap|b|{gap // GAP_BIN:06d}", choice)] += 1
    return out


def choice_of(chosen: dict) -> str:
    """The counters' name for validated options (validation.cohort_options)."""
    return f"{chosen['kind'] or ALL}|{method_name(chosen['paymentMethod'])}|{paid_name(chosen['paid'])}"


def _counters(purchases) -> dict[tuple[str, str, str], int]:
    return buyer_counters([sale for purchase in purchases if (sale := sale_of(purchase)) is not None])


# the write side: called by core.analytics.rollups in each change's transaction


def record_buyers(db: Database, session, state: dict, changed: list[dict], sign: int) -> None:
    """Bring the cohort documents of the rollup set `state` names up to date with `changed`
    purchases added (sign 1; written before or after this call) or taken away (sign -1)."""
    theirs = defaultdict(list)
    for purchase in changed:
        if isinstance(purchase.get("user"), ObjectId):
            theirs[purchase["user"]].append(purchase)
    change = defaultdict(int)
    for user, mine in theirs.items():
        ids = {purchase["_id"] for purchase in mine}
        # whole documents: the embedded engine sends small ones faster than it projects them
        kept = [p for p in db[PURCHASES].find({"user": user}, session=session) if p["_id"] not in ids]
        before, after = (kept, kept + mine) if sign > 0 else (kept + mine, kept)
        for path, value in _counters(after).items():
            change[path] += value
        for path, value in _counters(before).items():
            change[path] -= value
    increments = defaultdict(dict)
    for (base, doc_id, field), value in change.items():
        if value:
            increments[(base, doc_id)][field] = value
    requests = defaultdict(list)
    for (base, doc_id), inc in increments.items():
        requests[base].append(UpdateOne({"_id": doc_id}, {"$inc": inc}, upsert=True))
    for base, writes in requests.items():
        db[set_collection(base, active_set(state))].bulk_write(writes, ordered=True, session=session)


class CohortBuilder:
    """The cohort documents of many purchases, computed in memory: `add_buyer` with all of a
    buyer's purchases at once, or `add_sale` with one purchase at a time, in any order (kept by
    buyer, a tuple each, until the figures are asked for)."""

    def __init__(self):
        self._sales: dict[ObjectId, list[tuple]] = defaultdict(list)
        self._counters: dict[tuple[str, str, str], int] = defaultdict(int)

    def add_sale(self, purchase: dict) -> None:
        sale = sale_of(purchase)
        if sale is not None:
            self._sales[purchase["user"]].append(sale)

    def add_buyer(self, purchases: list[dict]) -> None:
        self._add(_counters(purchases))

    def _add(self, counters: dict) -> None:
        for path, value in counters.items():
            self._counters[path] += value

    def counters(self) -> dict[tuple[str, str], dict[str, int]]:
        """{(collection, _id): {field path: value}}, zeros left out."""
        for sales in self._sales.values():
            self._add(buyer_counters(sales))
        self._sales.clear()
        out = defaultdict(dict)
        for (base, doc_id, field), value in self._counters.items():
            if value:
                out[(base, doc_id)][field] = value
        return out

    def documents(self) -> dict[str, list[dict]]:
        """The documents by collection, as a rebuild writes them."""
        docs = {base: [] for base in COHORT_COLLECTIONS}
        for (base, doc_id), fields in sorted(self.counters().items()):
            doc = {"_id": doc_id}
            for path, value in fields.items():
                *parents, leaf = path.split(".")
                node = doc
                for part in parents:
                    node = node.setdefault(part, {})
                node[leaf] = value
            docs[base].append(doc)
        return docs


def flat(doc: dict) -> dict[str, object]:
    """A stored document's counters, {field path: value}, zeros left out."""
    out = {}

    def walk(prefix: str, node: dict) -> None:
        for name, value in node.items():
            if isinstance(value, dict):
                walk(f"{prefix}{name}.", value)
            elif value != 0:
                out[prefix + name] = value

    walk("", {name: value for name, value in doc.items() if name != "_id"})
    return out


def cohort_differences(db: Database, expected: CohortBuilder | None = None) -> list[dict]:
    """Cohort counters that differ from a fresh computation over the purchases, as
    core.operations.rebuild.rollup_differences reports rollups; `expected`: built by a caller
    that read every purchase already (the checker)."""
    db = utc(db)
    if expected is None:
        expected = CohortBuilder()
        for purchase in read_all(db, PURCHASES, FIELDS):
            expected.add_sale(purchase)
    want = expected.counters()
    rollup_set = active_set(read_version(db))
    have = {(base, doc["_id"]): flat(doc) for base in COHORT_COLLECTIONS
            for doc in read_all(db, set_collection(base, rollup_set), page=PAGE)}
    return counter_differences(want, have)


# the read side


def cohort_figures(db: Database, options=None) -> dict:
    """Cohorts by the month or ISO week of their buyers' first purchase, and what they bought since.

    `options`: `period` ("month", the default, or "week"); `startDate`, `endDate` (a datetime
    or "YYYY-MM-DD", the end's whole day included): the cohorts whose period overlaps the
    range, whole (default: those of the last 12 months, the current one included); `kind`,
    `paymentMethod` and `paid` (True: purchases with an amount; False: free ones, amount 0)
    choose the purchases that count, the first one included. Returns {"period", "cohorts":
    [{"cohort": the period's UTC start, "buyers", "periods": [{"offset", "buyers", "revenue"}]}]},
    by cohort, offset 0 first; revenue exact to the currency's minor unit. Cohorts and periods
    without a buyer are left out. Bad options raise ValidationError.
    """
    chosen = cohort_options(options)
    period, choice = chosen["period"], choice_of(chosen)
    first, end = cohort_range(chosen, datetime.now(UTC))
    high = f"{period}|" + (day_text(ceil(end, "day")) if end is not None else "~")
    wanted = {f"n.{choice}|b": 1, f"n.{choice}|r": 1}
    docs = read_at_one_version(utc(db), lambda find: find(COHORT_CELLS, id_range(f"{period}|{day_text(first)}", high),
                                                          wanted))
    cohorts: dict[str, list[dict]] = {}
    for doc in docs:
        counters = doc.get("n") or {}
        if counters.get(f"{choice}|b", 0) > 0:
            _, cohort, offset = doc["_id"].split("|")
            cohorts.setdefault(cohort, []).append({"offset": int(offset), "buyers": counters[f"{choice}|b"],
                                                   "revenue": from_units(counters.get(f"{choice}|r", 0))})
    rows = []
    for cohort, periods in sorted(cohorts.items()):
        periods.sort(key=lambda row: row["offset"])
        size = periods[0]["buyers"] if periods[0]["offset"] == 0 else 0
        rows.append({"cohort": datetime.fromisoformat(cohort).replace(tzinfo=UTC), "buyers": size, "periods": periods})
    return {"period": period, "cohorts": rows}


def cohort_range(chosen: dict, now: datetime) -> tuple[datetime, datetime | None]:
    """The start of the first cohort the options ask for and the range's exclusive end (None:
    open); more than MAX_COHORTS is refused."""
    period, start, end = chosen["period"], chosen["start"], chosen["end"]
    last = period_index(end - timedelta(milliseconds=1) if end is not None else now, period)
    if start is None:
        month = period_index(end - timedelta(milliseconds=1) if end is not None else now, "month")
        start = period_start(month - DEFAULT_MONTHS + 1, "month")
    first = period_index(start, period)
    if last - first + 1 > MAX_COHORTS:
        raise ValidationError(f"the range holds {last - first + 1} {period}ly cohorts; at most {MAX_COHORTS} can be "
                              "read at once: choose a later startDate or an earlier endDate", field="startDate")
    return period_start(first, period), end


def id_range(low: str, high: str) -> dict:
    return {"_id": {"$gte": low, "$lt": high}}


def read_at_one_version(db: Database, read):
    """`read(find)`, where `find(collection, query, projection)` reads that collection of the
    rollup set in use; every read of it at one data version. A plain read is kept when the
    version did not move while it ran; after OPTIMISTIC_READS that saw it move, one snapshot
    transaction reads (as core.analytics.queries.read_snapshot)."""
    for _ in range(OPTIMISTIC_READS):
        before = read_version(db)
        if rollups_outdated(before):
            _rebuild_outdated(db)
            continue
        result = read(_finder(db, active_set(before)))
        after = read_version(db, {"version": 1, "rollupSet": 1})
        if (after["version"], active_set(after)) == (before["version"], active_set(before)):
            return result
    return run_in_transaction(db, lambda session: _in_transaction(db, session, read))


def _in_transaction(db: Database, session, read):
    state = db[DATA_VERSION].find_one({"_id": VERSION_ID}, session=session, comment=READ_ONLY_COMMENT) or {}
    if rollups_outdated(state):
        raise PurchaseError("the rollups are being rebuilt; try again in a minute")
    return read(_finder(db, active_set(state), session))


def _finder(db: Database, rollup_set: str, session=None):
    def find(base: str, query: dict, projection: dict | None = None) -> list[dict]:
        collection = db[set_collection(base, rollup_set)]
        if session is not None:  # a failure ends the transaction, which is run again whole
            return list(collection.find(query, projection, session=session))
        return retry_when_busy(lambda: list(collection.find(query, projection)))

    return find


def _rebuild_outdated(db: Database) -> None:
    # the rebuild is an operation over the whole database (core.operations), above this layer
    from core.operations.rebuild import ensure_rollups_current

    ensure_rollups_current(db, wait=REBUILD_WAIT_SECONDS)
