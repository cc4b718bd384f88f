"""The seed's `migratePurchases`: from the purchase history, every user's arrays.

`purchases` is the truth: each user's `purchasedCourses` / `purchasedTests` become the set of
items they hold a purchase of (their current order kept, new ones appended by date). An
entry with no purchase behind it is removed (audited as a revocation), a purchase missing
from the array is added (audited as a grant), duplicates, ids stored as strings and arrays
that are null or not arrays are rewritten (audited as fixes).
"""

from datetime import UTC, datetime

from pymongo.database import Database

from core.operations import legacy
from core.operations.legacy_purchases import each_user, load_catalog, normalise_purchases, single_item
from core.operations.migration import BATCH, Batch, Run, unchanged_since_read
from core.storage.schema import KINDS, USERS, user_array

NAME = "migrate_purchases"
PHASES = ("purchases", "users", "done")


def migrate_purchases(db: Database, *, dry_run: bool = False, progress=None, log=None, batch: int = BATCH) -> Run:
    """Run (or resume) the migration; return the run, whose `summary` says what it did."""
    run = Run(db, NAME, PHASES, dry_run=dry_run, log=log, batch=batch)
    now = datetime.now(UTC)
    items = load_catalog(run.db)
    normalise_purchases(run, items, now, progress and (lambda n: progress("purchases", n)))
    fields = {"name": 1, **{user_array(kind): 1 for kind in KINDS}}
    each_user(run, fields, lambda batch, user, purchases: _user_arrays(run, batch, user, purchases, items),
              progress and (lambda n: progress("users", n)))
    return run


def _user_arrays(run: Run, batch: Batch, user: dict, purchases: list[dict], items: dict) -> None:
    uid, update = user["_id"], {}
    touched = False
    for kind in KINDS:
        array = user_array(kind)
        mine = sorted((p for p in purchases if single_item(p) == kind), key=lambda p: _when(p))
        bought = {p[kind]: p for p in mine}
        stored = user.get(array)
        try:
            current, junk = legacy.id_list(stored)
        except legacy.Unfixable:
            current, junk = [], [stored]
        wanted = [item for item in current if item in bought] + [item for item in bought if item not in current]
        if wanted == stored:
            continue
        if stored is None and not wanted:  # missing or null, nothing bought: an empty list, as writes need
            update[array] = []
            touched = True
            run.summary.changed("arrays_created_empty", f"user {uid} {array}")
            continue
        update[array] = wanted
        touched = True
        for item in wanted:
            if item not in current:
                purchase = bought[item]
                batch.audit.append(run.audit("grant", user=uid, kind=kind, item=item, purchase=purchase,
                                             user_name=user.get("name"), title=_title(items, kind, item),
                                             note=f"added to {array}: purchase {purchase['_id']}"))
                run.summary.changed("array_entries_added", f"user {uid} {array} + {item}")
        for item in current:
            if item not in bought:
                batch.audit.append(run.audit("revoke", user=uid, kind=kind, item=item, user_name=user.get("name"),
                                             title=_title(items, kind, item),
                                             note=f"removed from {array}: no purchase of this {kind}"))
                run.summary.changed("array_entries_removed", f"user {uid} {array} - {item}")
        cleaned = _cleaning(stored, current, junk)
        if cleaned:
            batch.audit.append(run.audit("fix", user=uid, kind=kind, item=None, user_name=user.get("name"),
                                         note=f"{array} rewritten: {cleaned}"))
            run.summary.changed("arrays_normalised", f"user {uid} {array}: {cleaned}")
    if touched:
        batch.update(USERS, unchanged_since_read(user, update))
        run.summary.changed("users_touched", f"user {uid}")


def _cleaning(stored, current: list, junk: list) -> str:
    """What rewriting the array fixes besides adding and removing items, in words; "" for nothing."""
    if stored is None:
        return ""  # a missing array is only filled: its grants are audited one by one
    if not isinstance(stored, list):
        return f"was not an array: {stored!r}"[:200]
    said = []
    if len(stored) - len(junk) > len(current):
        said.append(f"{len(stored) - len(junk) - len(current)} duplicate(s) removed")
    strings = sum(1 for entry in stored if isinstance(entry, str) and entry not in junk)
    if strings:
        said.append(f"{strings} id(s) stored as strings converted")
    if junk:
        said.append(f"entries that are not ids dropped: {junk!r}"[:200])
    return ", ".join(said)


def _when(purchase: dict):
    moment = purchase.get("purchasedAt")
    return (0, moment) if isinstance(moment, datetime) else (1, str(purchase["_id"]))


def _title(items: dict, kind: str, item) -> str | None:
    return (items[kind].get(item) or {}).get("title")
