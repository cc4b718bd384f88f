"""Checking that the two places a purchase lives agree, and repairing what can be repaired.

`purchases` is the source of truth: a repair makes each user's arrays equal the set of
that user's purchases. Rollups are rebuilt from the purchases. Problems a repair cannot decide (a purchase of
a user or item that does not exist, two purchases of one item) are reported and left alone.
"""

from collections import defaultdict

from bson import ObjectId
from pymongo.database import Database

from core.analytics.rollups import RollupBuilder, well_formed
from core.operations.joined import users_with_purchases
from core.operations.rebuild import rollup_differences
from core.storage.documents import utc
from core.storage.retry import retry_when_busy
from core.storage.schema import KINDS, PURCHASES, USERS, catalog, user_array
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
REPAIRABLE = {"array_entry_without_purchase", "purchase_missing_from_array"}
_PURCHASE_FIELDS = {"user": 1, "course": 1, "test": 1, "purchasedAt": 1, "amount": 1, "paymentMethod": 1}


def check_consistency(db: Database) -> dict[str, list[dict]]:
    """Return every problem found, by kind (keys of PROBLEMS); empty lists when all is well.

    Reads users and purchases once each, merged in user order (core.operations.joined), so
    memory stays flat as they grow; only the catalog's ids are held.
    """
    db = utc(db)
    found = {name: [] for name in PROBLEMS}
    items = {kind: _ids(db, catalog(kind)) for kind in KINDS}
    sales = RollupBuilder()  # the rollups of this same pass, for the rollup check
    stray = {"user": {"$not": {"$type": "objectId"}}}
    for purchase in retry_when_busy(lambda: list(db[PURCHASES].find(stray, _PURCHASE_FIELDS))):
        _check_purchase(purchase, items, found)
        sales.add_sale(purchase)
    arrays = {user_array(kind): 1 for kind in KINDS}
    for user, purchases in users_with_purchases(db, user_fields=arrays, purchase_fields=_PURCHASE_FIELDS):
        owned = defaultdict(list)  # (kind, item) -> purchase ids
        for purchase in purchases:
            sales.add_sale(purchase)
            kind = _check_purchase(purchase, items, found)
            if kind is not None:
                owned[(kind, purchase[kind])].append(purchase["_id"])
        if user is None:
            found["purchase_of_unknown_user"].extend({"purchase": p["_id"], "user": p["user"]} for p in purchases)
            continue
        _check_user(user, owned, items, found)
    found["rollup_mismatch"] = rollup_differences(db, sales)
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
        entries = user.get(user_array(kind))
        if entries is None:
            entries = []
        elif not isinstance(entries, list):
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


def repair_arrays(db: Database, problems: dict[str, list[dict]]) -> list[str]:
    """Make the arrays of every user named in a repairable problem equal their purchases.

    Each user is repaired in its own transaction from a fresh read, so a purchase made
    since the check is kept. Returns one line per change.
    """
    db = utc(db)
    users = sorted({p["user"] for name in REPAIRABLE for p in problems.get(name, [])})
    changes = []
    for user in users:
        changes += run_in_transaction(db, lambda session, u=user: _repair_user(db, session, u))
    return changes


def _repair_user(db: Database, session, user) -> list[str]:
    doc = db[USERS].find_one({"_id": user}, session=session)
    if doc is None:
        return []
    purchases = list(db[PURCHASES].find({"user": user}, {"course": 1, "test": 1}, session=session))
    update, changes = {}, []
    for kind in KINDS:
        array = user_array(kind)
        current = doc.get(array) or []
        bought = {p[kind] for p in purchases if kind in p}
        wanted = list(dict.fromkeys(item for item in current if item in bought))
        wanted += sorted(bought - set(wanted))
        if wanted != current:
            update[array] = wanted
            changes += [f"user {user}: removed {kind} {i} from {array}" for i in current if i not in bought]
            changes += [f"user {user}: added {kind} {i} to {array}" for i in bought if i not in current]
    if update:
        db[USERS].update_one({"_id": user}, {"$set": update}, session=session)
    return changes


def _ids(db: Database, collection: str) -> set:
    return {doc["_id"] for doc in _all(db, collection, {"_id": 1})}


def _all(db: Database, collection: str, projection: dict) -> list[dict]:
    return retry_when_busy(lambda: list(db[collection].find({}, projection)))


