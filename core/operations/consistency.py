"""Checking that the two places a purchase lives agree, and repairing what can be repaired.

`purchases` is the source of truth: a repair makes each user's arrays equal the set of
that user's purchases, each change audited in its own transaction as the migrations audit
theirs. Rollups are rebuilt from the purchases. Problems a repair cannot decide (a purchase of
a user or item that does not exist, two purchases of one item) are reported and left alone.
"""

import random
from collections import defaultdict
from datetime import UTC, datetime

from bson import ObjectId
from pymongo.database import Database

from core.analytics.cohorts import CohortBuilder, cohort_differences
from core.analytics.periods import ROLLUP_LEVELS, buckets, floor, step
from core.analytics.rollups import (
    IncrementSink,
    active_set,
    bucket_id,
    bucket_parts,
    details_suffix,
    part_of,
    rollup_counters,
    rollup_targets,
    set_collections,
    well_formed,
)
from core.audit import check_source, fix_entry, record_changes
from core.changes import read_version
from core.operations.joined import users_with_purchases
from core.storage.db import read_all
from core.storage.documents import utc
from core.storage.retry import retry_when_busy
from core.storage.schema import (
    KINDS,
    PURCHASES,
    REVOKED,
    ROLLUP_COLLECTIONS,
    USERS,
    catalog,
    stats_collection,
    user_array,
)
from core.storage.transactions import run_in_transaction

PROBLEMS = {
    "array_entry_without_purchase": "id in a user's array with no purchase behind it",
    "purchase_missing_from_array": "purchase whose id is missing from the user's array",
    "purchase_of_unknown_user": "purchase pointing at a user that does not exist",
    "purchase_of_unknown_item": "purchase pointing at a course or test that does not exist",
    "array_entry_of_unknown_item": "user array entry pointing at a course or test that does not exist",
    "array_not_a_list": "user array field that is neither an array nor missing",
    "array_entry_not_an_object_id": "user array entry that is not an ObjectId (a string id, or not an id)",
    "duplicate_array_entries": "user array holding one id more than once",
    "purchase_without_single_item": "purchase with both or neither of course and test",
    "purchase_id_not_an_object_id": "purchase whose user, course or test is not an ObjectId",
    "purchase_with_bad_fields": "purchase without a datetime purchasedAt, a numeric amount or a paymentMethod",
    "duplicate_purchases": "more than one purchase of one item by one user",
    "rollup_mismatch": "rollup counter that differs from a fresh aggregation of purchases",
}
REPAIRABLE = {"array_entry_without_purchase", "purchase_missing_from_array", "array_not_a_list"}
REPAIR_ACTOR = "repair_arrays"  # who repaired, in the audit log, when a caller does not say
_PURCHASE_FIELDS = {"user": 1, "course": 1, "test": 1, "purchasedAt": 1, "amount": 1, "paymentMethod": 1}


def check_consistency(db: Database) -> dict[str, list[dict]]:
    """Return every problem found, by kind (keys of PROBLEMS); empty lists when all is well.

    Reads users and purchases once each, merged in user order, a chunk of users at a time
    (core.operations.joined), so memory stays flat as they grow; besides a chunk, only the
    catalog's ids and one number per rollup bucket are held (see RollupSums), and the counters
    of the cohort documents (core.analytics.cohorts), which grow with periods, not sales.
    """
    db = utc(db)
    found = {name: [] for name in PROBLEMS}
    items = {kind: _ids(db, catalog(kind)) for kind in KINDS}
    sales = RollupSums()  # the rollups of this same pass, for the rollup check
    cohorts = CohortBuilder()  # and the cohorts, a buyer at a time
    stray = {"user": {"$not": {"$type": "objectId"}}}
    for purchase in retry_when_busy(lambda: list(db[PURCHASES].find(stray, _PURCHASE_FIELDS))):
        _check_purchase(purchase, items, found)
        sales.add_sale(purchase)
    arrays = {user_array(kind): 1 for kind in KINDS}
    # whole purchases: small documents, which the embedded engine sends faster than it projects them
    for user, purchases in users_with_purchases(db, user_fields=arrays):
        owned = defaultdict(list)  # (kind, item) -> purchase ids
        cohorts.add_buyer(purchases)
        for purchase in purchases:
            sales.add_sale(purchase)
            kind = _check_purchase(purchase, items, found)
            if kind is not None:
                owned[(kind, purchase[kind])].append(purchase["_id"])
        if user is None:
            found["purchase_of_unknown_user"].extend({"purchase": p["_id"], "user": p["user"]} for p in purchases)
            continue
        _check_user(user, owned, items, found)
    found["rollup_mismatch"] = rollup_mismatches(db, sales) + cohort_differences(db, cohorts)
    return found


def _check_purchase(purchase: dict, items: dict, found: dict) -> str | None:
    """Record a purchase's own problems; return its kind when it names one item by ObjectId."""
    kinds = [kind for kind in KINDS if kind in purchase]
    if len(kinds) != 1:
        found["purchase_without_single_item"].append({"purchase": purchase["_id"]})
        return None
    kind = kinds[0]
    if not all(isinstance(purchase.get(name), ObjectId) for name in ("user", kind)):
        found["purchase_id_not_an_object_id"].append({"purchase": purchase["_id"]})
        return None
    if not well_formed(purchase):
        found["purchase_with_bad_fields"].append({"purchase": purchase["_id"]})
    if purchase[kind] not in items[kind]:
        found["purchase_of_unknown_item"].append({"purchase": purchase["_id"], kind: purchase[kind]})
    return kind


def _check_user(user: dict, owned: dict, items: dict, found: dict) -> None:
    uid, listed = user["_id"], set()
    for kind in KINDS:
        entries = user.get(user_array(kind), [])  # a missing array is an empty one; null is not (writes fail on it)
        if not isinstance(entries, list):
            found["array_not_a_list"].append({"user": uid, "array": user_array(kind)})
            continue
        seen = set()
        for item in entries:
            if not isinstance(item, ObjectId):
                # as text: the entry may be anything (a dict with "$" keys cannot be stored in a report)
                found["array_entry_not_an_object_id"].append({"user": uid, "array": user_array(kind),
                                                              "entry": repr(item)[:100]})
                continue
            if item in seen:
                found["duplicate_array_entries"].append({"user": uid, kind: item})
                continue
            seen.add(item)
            listed.add((kind, item))
            if item not in items[kind]:
                found["array_entry_of_unknown_item"].append({"user": uid, kind: item})
            if (kind, item) not in owned:
                found["array_entry_without_purchase"].append({"user": uid, kind: item})
    for (kind, item), purchase_ids in owned.items():
        if (kind, item) not in listed:
            found["purchase_missing_from_array"].extend({"purchase": p, "user": uid, kind: item} for p in purchase_ids)
        if len(purchase_ids) > 1:
            found["duplicate_purchases"].append({"user": uid, kind: item, "purchases": purchase_ids})


def repair_arrays(db: Database, problems: dict[str, list[dict]], *, actor: str | None = REPAIR_ACTOR,
                  source: str = "script") -> list[str]:
    """Make the arrays of every user named in a repairable problem equal their purchases.

    Each user is repaired in its own transaction from a fresh read, so a purchase made
    since the check is kept; the same transaction writes the audit entries of its changes
    (an entry removed: revoke, added: grant, an array rewritten: fix; `source` and `actor`
    as given, the note starting "repair:"). Returns one line per change.
    """
    db, source = utc(db), check_source(source)
    users = sorted({p["user"] for name in REPAIRABLE for p in problems.get(name, [])})
    changes = []
    for user in users:
        changes += run_in_transaction(db, lambda session, u=user: _repair_user(db, session, u, actor, source))
    return changes


def _repair_user(db: Database, session, user, actor: str | None, source: str) -> list[str]:
    doc = db[USERS].find_one({"_id": user}, session=session)
    if doc is None:
        return []
    purchases = list(db[PURCHASES].find({"user": user}, _REPAIR_FIELDS, session=session))
    update, changes, audited = {}, [], []  # audited: (action, kind, item, purchase, note)
    for kind in KINDS:
        array = user_array(kind)
        stored = doc.get(array)
        current = stored if isinstance(stored, list) else []
        bought = {}
        for p in purchases:
            if kind in p:
                bought.setdefault(p[kind], p)
        kept = [item for item in current if _among(item, bought)]
        wanted = list(dict.fromkeys(kept))
        wanted += sorted(set(bought) - set(wanted))
        if wanted != stored and (wanted or array in doc):
            update[array] = wanted
            if array in doc and not isinstance(stored, list):
                changes.append(f"user {user}: {array} was {stored!r}"[:200] + ", now a list")
                audited.append(("fix", kind, None, None, f"repair: {array} was {stored!r}"[:200] + ", now a list"))
            removed = [i for i in current if not _among(i, bought)]
            added = [i for i in bought if i not in current]
            changes += [f"user {user}: removed {kind} {i} from {array}" for i in removed]
            changes += [f"user {user}: added {kind} {i} to {array}" for i in added]
            audited += [("revoke", kind, i, None, f"repair: removed from {array}: no purchase of this {kind}")
                        for i in removed]
            audited += [("grant", kind, i, bought[i], f"repair: added to {array}: purchase {bought[i]['_id']}")
                        for i in added]
            if len(kept) > len(set(kept)):
                audited.append(("fix", kind, None, None, f"repair: {array} held an id more than once; each kept once"))
    if update:
        db[USERS].update_one({"_id": user}, {"$set": update}, session=session)
        entries = [fix_entry(doc, kind, note, at=datetime.now(UTC), actor=actor, source=source)
                   | {"action": action, "item": item if isinstance(item, ObjectId) or item is None else repr(item)[:100],
                      "title": _title(db, session, kind, item), **_paid(purchase)}
                   for action, kind, item, purchase, note in audited]
        record_changes(db, session, entries)
    return changes


_REPAIR_FIELDS = {"course": 1, "test": 1, "amount": 1, "currency": 1, "paymentMethod": 1}


def _among(item, bought: dict) -> bool:
    """Whether an array entry is an item bought; an entry that cannot be a key (a list, a document) is not."""
    try:
        return item in bought
    except TypeError:
        return False


def _title(db: Database, session, kind: str, item) -> str | None:
    found = db[catalog(kind)].find_one({"_id": item}, {"title": 1}, session=session) if isinstance(item, ObjectId) else None
    return (found or {}).get("title")


def _paid(purchase: dict | None) -> dict:
    p = purchase or {}
    return {"purchase": p.get("_id"), "amount": p.get("amount"), "currency": p.get("currency"),
            "paymentMethod": p.get("paymentMethod")}


class RollupSums(IncrementSink):
    """What the rollups should hold, one number per bucket: the sum of its counters, each
    weighted by a random 64-bit number drawn for its path.

    Two buckets whose counters differ have different sums, but for a chance of about one in
    2^64 (a nonzero linear form in the weights vanishes on at most a 2^-64 share of them;
    exact integers, nothing wraps around), and a bucket's sum is a few dozen bytes where
    its counters, at 100,000 users, run to thousands of dictionaries: the expected rollups
    of every purchase are kept in memory that grows with the number of buckets, not with
    their contents. Buckets whose sums differ are then compared counter by counter.
    """

    def __init__(self):
        self.sums: dict[tuple[str, str], int] = defaultdict(int)  # (collection, bucket _id) -> sum
        self._buckets: dict[int, list] = {}  # UTC hour -> [(collection, bucket _id, part)]: all levels nest hours

    def _add(self, moment: datetime, inc: dict) -> None:
        parts = defaultdict(int)  # (part, what it adds to the bucket's _id) -> weighted sum
        for path, value in inc.items():
            part = part_of(path)
            parts[(part, "" if part == "sales" else details_suffix(path))] += _weight(path) * value
        for collection, bucket, part in self._buckets_of(moment):
            for (counted, suffix), total in parts.items():
                if counted == part and total:
                    self.sums[(collection, bucket + suffix)] += total

    def _buckets_of(self, moment: datetime) -> list:
        """Where a moment's increments go, as rollup_targets sends them: (collection, bucket, part)."""
        hour = int(moment.timestamp() // 3600)
        found = self._buckets.get(hour)
        if found is None:
            found = self._buckets[hour] = [
                (stats_collection(level, part), bucket_id(level, floor(moment, level)), part)
                for level in ROLLUP_LEVELS
                for part in bucket_parts(level)
            ]
        return found


_WEIGHTS: dict[str, int] = {}
_RANDOM = random.SystemRandom()
PAGE = 100  # rollup documents per read: an hour's details part is kilobytes


def _weight(path: str) -> int:
    weight = _WEIGHTS.get(path)
    if weight is None:
        weight = _WEIGHTS[path] = _RANDOM.getrandbits(64)
    return weight


def weighted_sum(counters: dict[str, int]) -> int:
    return sum(_weight(path) * value for path, value in counters.items())


def rollup_mismatches(db: Database, sales: RollupSums | None = None) -> list[dict]:
    """Rollup counters that differ from a fresh aggregation of the purchases (and revocations);
    the same report as core.operations.rebuild.rollup_differences, in memory that does not
    grow with the rollups' contents.

    `sales`: the sums of every purchase, from a caller that read them all already (the
    checker); revocations are added here. The stored rollups are read a page at a time and
    compared by their sums; the buckets that differ are then aggregated exactly, from the
    purchases and revocations of their time range only (served by the `purchasedAt` and
    `revokedAt` indexes), and compared counter by counter.
    """
    db = utc(db)
    if sales is None:
        sales = RollupSums()
        for purchase in _stream(db, PURCHASES, {}, _ROLLUP_FIELDS):
            sales.add_sale(purchase)
    for record in _stream(db, REVOKED, {}, {**_ROLLUP_FIELDS, "revokedAt": 1}):
        sales.add_revocation(record)
    expected, stored, seen = sales.sums, {}, set()
    rollup_set = active_set(read_version(db))
    for base, name in zip(ROLLUP_COLLECTIONS, set_collections(rollup_set), strict=True):
        for doc in read_all(db, name, page=PAGE):
            bucket, counters = (base, doc["_id"]), rollup_counters(doc)
            seen.add(bucket)
            if weighted_sum(counters) != expected.get(bucket, 0):
                stored[bucket] = counters
    for bucket, total in expected.items():
        if total and bucket not in seen:
            stored[bucket] = {}
    if not stored:
        return []
    wanted = _exact_counters(db, set(stored))
    differences = []
    for bucket in sorted(stored):
        want, have = wanted.get(bucket, {}), stored[bucket]
        for path in sorted(set(want) | set(have)):
            if want.get(path, 0) != have.get(path, 0):
                differences.append({"collection": bucket[0], "bucket": bucket[1], "counter": path,
                                    "expected": want.get(path, 0), "stored": have.get(path, 0)})
    return differences


_ROLLUP_FIELDS = {"purchasedAt": 1, "amount": 1, "paymentMethod": 1, "course": 1, "test": 1}


def _exact_counters(db: Database, wanted: set) -> dict[tuple[str, str], dict[str, int]]:
    """{(collection, bucket _id): {path: value}} aggregated from the purchases and revocations
    in those buckets' time ranges, a day at a time; zeros left out."""
    found = _BucketCounters(wanted)
    for start, end in _time_ranges(bucket for _, bucket in wanted):
        for day in buckets(start, end, "day"):
            moments = {"$gte": day, "$lt": min(step(day, "day"), end)}
            for purchase in _stream(db, PURCHASES, {"purchasedAt": moments}, _ROLLUP_FIELDS):
                found.add_sale(purchase)
            for record in _stream(db, REVOKED, {"revokedAt": moments}, {**_ROLLUP_FIELDS, "revokedAt": 1}):
                found.add_revocation(record)
    return {bucket: {path: value for path, value in counters.items() if value} for bucket, counters in found.counters.items()}


class _BucketCounters(IncrementSink):
    """The counters of the given buckets only, (collection, bucket _id) -> {path: value}."""

    def __init__(self, wanted: set):
        self.counters = {bucket: defaultdict(int) for bucket in wanted}

    def _add(self, moment: datetime, inc: dict) -> None:
        for level in ROLLUP_LEVELS:
            for target, part in rollup_targets(level, moment, inc).items():
                if target in self.counters:
                    for path, value in part.items():
                        self.counters[target][path] += value


def _time_ranges(bucket_ids) -> list[tuple[datetime, datetime]]:
    """The time the buckets cover, as sorted disjoint [start, end) ranges; ids that name no
    bucket ("level|%Y-%m-%dT%H", with or without "|<kind>|<method>") cover nothing."""
    spans = []
    for bucket in set(bucket_ids):
        level, _, period = str(bucket).partition("|")
        period = period.split("|", 1)[0]
        try:
            start = datetime.strptime(period, "%Y-%m-%dT%H").replace(tzinfo=UTC)
            spans.append((start, step(start, level)))
        except ValueError:
            continue
    merged = []
    for start, end in sorted(spans):
        if merged and start <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(merged[-1][1], end))
        else:
            merged.append((start, end))
    return merged


def _stream(db: Database, collection: str, query: dict, fields: dict):
    return db[collection].find(query, fields).batch_size(1000)


def _ids(db: Database, collection: str) -> set:
    return {doc["_id"] for doc in _all(db, collection, {"_id": 1})}


def _all(db: Database, collection: str, projection: dict) -> list[dict]:
    return retry_when_busy(lambda: list(db[collection].find({}, projection)))


