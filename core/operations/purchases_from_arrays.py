"""The seed's `implementHybridPurchases`: from the users' arrays, the purchases collection.

The arrays are the truth: every item a user's `purchasedCourses` / `purchasedTests` holds
without a purchase behind it gets one, marked `metadata.migrated: true` with the evidence
used: `amount` from the catalog's price (else 0, reported), `paymentMethod` "migrated",
`purchasedAt` the earliest moment the purchase can have happened by what the user and the
item record (the later of their creation dates, else of their ids' timestamps), else the
migration's time. Access never changes here: a purchase missing from its user's array is
reported (migrate_purchases.py adds it), an entry of a deleted item is reported.
"""

from datetime import UTC, datetime

from bson import ObjectId
from pymongo.database import Database

from core.operations import legacy
from core.operations.legacy_purchases import (
    ITEM_DATE_FIELDS,
    each_user,
    load_catalog,
    normalise_purchases,
    single_item,
)
from core.operations.migration import BATCH, Batch, Run, derived_id, unchanged_since_read
from core.settings import DEFAULT_SETTINGS, CoreSettings
from core.storage.schema import KINDS, MIGRATED_METHOD, PURCHASES, USERS, user_array

NAME = "implement_hybrid_purchases"
PHASES = ("purchases", "users", "done")
PAYMENT_METHOD = MIGRATED_METHOD
USER_DATE_FIELDS = ("createdAt", "created_at", "registeredAt", "signupDate")


def implement_hybrid_purchases(db: Database, *, dry_run: bool = False, settings: CoreSettings | None = None,
                               progress=None, log=None, batch: int = BATCH) -> Run:
    """Run (or resume) the migration; return the run, whose `summary` says what it did."""
    settings = settings or DEFAULT_SETTINGS
    run = Run(db, NAME, PHASES, dry_run=dry_run, log=log, batch=batch)
    now = datetime.now(UTC)
    items = load_catalog(run.db)
    normalise_purchases(run, items, now, progress and (lambda n: progress("purchases", n)))
    fields = {"name": 1, **dict.fromkeys(USER_DATE_FIELDS, 1), **{user_array(kind): 1 for kind in KINDS}}
    each_user(run, fields, lambda batch, user, purchases: _user(run, batch, user, purchases, items, now, settings),
              progress and (lambda n: progress("users", n)))
    return run


def _user(run: Run, batch: Batch, user: dict, purchases: list[dict], items: dict, now: datetime,
          settings: CoreSettings) -> None:
    uid, update = user["_id"], {}
    for kind in KINDS:
        array = user_array(kind)
        stored = user.get(array)
        try:
            current, junk = legacy.id_list(stored)
        except legacy.Unfixable:
            run.summary.problem("array_not_a_list", f"user {uid} {array}: {stored!r}"[:200])
            continue
        for entry in junk:
            run.summary.problem("array_entry_not_an_id", f"user {uid} {array}: {entry!r}"[:200])
        if stored is not None and current + junk != stored:
            update[array] = current + junk  # entries that are not ids stay, reported
            batch.audit.append(run.audit("fix", user=uid, kind=kind, item=None, user_name=user.get("name"),
                                         note=f"{array} rewritten: duplicates removed, ids stored as strings converted"))
            run.summary.changed("arrays_normalised", f"user {uid} {array}")
        bought = {p[kind] for p in purchases if single_item(p) == kind}
        for purchase in purchases:
            if single_item(purchase) == kind and purchase[kind] not in current:
                run.summary.problem("purchase_missing_from_array",
                                    f"purchase {purchase['_id']}: user {uid} {kind} {purchase[kind]}")
        for item in current:
            if item in bought:
                continue
            if item not in items[kind]:
                run.summary.problem("array_entry_of_unknown_item", f"user {uid} {array}: {item}")
                continue
            _create(run, batch, user, kind, item, items[kind][item], now, settings)
    if update:
        batch.update(USERS, unchanged_since_read(user, update))
        run.summary.changed("users_touched", f"user {uid}")


def _create(run: Run, batch: Batch, user: dict, kind: str, item: ObjectId, product: dict, now: datetime,
            settings: CoreSettings) -> None:
    try:
        amount, amount_from = legacy.amount(product.get("price")), f"{kind}.price"
    except legacy.Unfixable:
        amount, amount_from = 0, "none"
        run.summary.problem("created_without_price", f"user {user['_id']} {kind} {item}: no usable price, amount 0")
    purchased_at, date_from = _evidence(user, kind, product, now, run.started_at)
    purchase = {
        "_id": derived_id(purchased_at, user["_id"], kind, item),
        "user": user["_id"],
        kind: item,
        "amount": amount,
        "currency": settings.currency,
        "paymentMethod": PAYMENT_METHOD,
        "purchasedAt": purchased_at,
        "metadata": {"migrated": True, "amountFrom": amount_from, "purchasedAtFrom": date_from},
    }
    batch.insert(PURCHASES, purchase)
    batch.audit.append(run.audit("fix", user=user["_id"], kind=kind, item=item, purchase=purchase,
                                 user_name=user.get("name"), title=product.get("title"),
                                 note=f"purchase created from {user_array(kind)} (amount from {amount_from}, "
                                      f"purchasedAt from {date_from})"))
    run.summary.changed("purchases_created", f"purchase {purchase['_id']}: user {user['_id']} {kind} {item}")


def _evidence(user: dict, kind: str, product: dict, now: datetime, started_at: datetime) -> tuple[datetime, str]:
    """The earliest moment the purchase can have happened, and what says so.

    A purchase is not older than its user or its item: the later of their recorded creation
    dates, else of the creation times in their ObjectIds, else the migration's start.
    """
    recorded = [found for found in (_recorded(user, USER_DATE_FIELDS, "user", now),
                                    _recorded(product, ITEM_DATE_FIELDS, kind, now)) if found]
    if recorded:
        return max(recorded)
    stamped = [found for found in (_stamped(user, "user", now), _stamped(product, kind, now)) if found]
    if stamped:
        return max(stamped)
    return started_at, "migration time"


def _recorded(doc: dict, fields: tuple[str, ...], name: str, now: datetime):
    for field in fields:
        try:
            return legacy.moment(doc.get(field), now), f"{name}.{field}"
        except legacy.Unfixable:
            continue
    return None


def _stamped(doc: dict, name: str, now: datetime):
    try:
        return legacy.moment(doc["_id"].generation_time, now), f"{name}._id"
    except (legacy.Unfixable, AttributeError, KeyError):
        return None
