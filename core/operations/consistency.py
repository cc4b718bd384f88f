"""Checking that the two places a purchase lives agree, and repairing what can be repaired.

`purchases` is the source of truth: a repair makes each user's arrays equal the set of
that user's purchases. Rollups are rebuilt from the purchases. Problems a repair cannot decide (a purchase of
a user or item that does not exist, two purchases of one item) are reported and left alone.
"""

from collections import defaultdict

from pymongo.database import Database

from core.analytics.rollups import well_formed
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
    "purchase_without_single_item": "purchase with both or neither of course and test",
    "purchase_with_bad_fields": "purchase without a datetime purchasedAt, a numeric amount or a paymentMethod",
    "duplicate_purchases": "more than one purchase of one item by one user",
    "rollup_mismatch": "rollup counter that differs from a fresh aggregation of purchases",
}
REPAIRABLE = {"array_entry_without_purchase", "purchase_missing_from_array"}


def check_consistency(db: Database) -> dict[str, list[dict]]:
    """Return every problem found, by kind (keys of PROBLEMS); empty lists when all is well."""
    db = utc(db)
    found = {name: [] for name in PROBLEMS}
    items = {kind: _ids(db, catalog(kind)) for kind in KINDS}
    owned_by_purchases = defaultdict(list)  # (user, kind, item) -> purchase ids
    for purchase in _all(db, PURCHASES, {"user": 1, "course": 1, "test": 1, "purchasedAt": 1, "amount": 1, "paymentMethod": 1}):
        kinds = [kind for kind in KINDS if kind in purchase]
        if len(kinds) != 1:
            found["purchase_without_single_item"].append({"purchase": purchase["_id"]})
            continue
        if not well_formed(purchase):
            found["purchase_with_bad_fields"].append({"purchase": purchase["_id"]})
        kind = kinds[0]
        owned_by_purchases[(purchase.get("user"), kind, purchase[kind])].append(purchase["_id"])
        if purchase[kind] not in items[kind]:
            found["purchase_of_unknown_item"].append({"purchase": purchase["_id"], kind: purchase[kind]})
    arrays, users = {}, set()
    for user in _all(db, USERS, {array: 1 for array in (user_array(k) for k in KINDS)}):
        users.add(user["_id"])
        for kind in KINDS:
            for item in user.get(user_array(kind)) or []:
                arrays[(user["_id"], kind, item)] = True
                if item not in items[kind]:
                    found["array_entry_of_unknown_item"].append({"user": user["_id"], kind: item})
                if (user["_id"], kind, item) not in owned_by_purchases:
                    found["array_entry_without_purchase"].append({"user": user["_id"], kind: item})
    for (user, kind, item), purchase_ids in owned_by_purchases.items():
        if user not in users:
            found["purchase_of_unknown_user"].extend({"purchase": p, "user": user} for p in purchase_ids)
        elif (user, kind, item) not in arrays:
            found["purchase_missing_from_array"].extend({"purchase": p, "user": user, kind: item} for p in purchase_ids)
        if len(purchase_ids) > 1:
            found["duplicate_purchases"].append({"user": user, kind: item, "purchases": purchase_ids})
    found["rollup_mismatch"] = rollup_differences(db)
    return found


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


