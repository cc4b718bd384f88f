"""The steps both migrations take on `purchases`: read the catalog, normalise every purchase
document, and remove a purchase recorded twice.

A fix is made only when it is certain (an id stored as a 24-hex string, an amount stored as
"29.99", a date stored as an ISO string or epoch milliseconds, a null item field beside the
real one, the very same purchase stored twice); anything else is reported and left alone.
"""

from datetime import datetime

from pymongo import DeleteOne, UpdateOne
from pymongo.database import Database

from core.operations import legacy
from core.operations.joined import users_with_purchases
from core.operations.legacy import Unfixable
from core.operations.migration import Batch, Run
from core.storage.db import read_all
from core.storage.retry import retry_when_busy
from core.storage.schema import KINDS, PURCHASES, catalog

ITEM_DATE_FIELDS = ("createdAt", "created_at", "publishedAt")
PAGE = 50_000  # purchases read at once when normalising them


def load_catalog(db: Database) -> dict[str, dict]:
    """{kind: {item id: {"title", "price", "createdAt"}}}: the catalog is small beside users and purchases."""
    found = {}
    for kind in KINDS:
        found[kind] = {}
        for doc in retry_when_busy(lambda k=kind: list(db[catalog(k)].find({}, {"title": 1, "price": 1, **dict.fromkeys(ITEM_DATE_FIELDS, 1)}))):
            try:
                found[kind][legacy.object_id(doc["_id"])] = doc
            except Unfixable:
                continue
    return found


def normalise_purchases(run: Run, items: dict, now: datetime, progress=None) -> None:
    """Phase "purchases": every purchase document in this system's format, where a fix is certain."""
    go, after = run.start("purchases")
    if not go:
        return
    work = ((purchase["_id"], lambda batch, p=purchase: _normalise(run, batch, p, items, now))
            for purchase in read_all(run.db, PURCHASES, after=after, page=PAGE))
    _in_batches(run, work, progress)


def _normalise(run: Run, batch: Batch, purchase: dict, items: dict, now: datetime) -> None:
    pid, fixes, unset = purchase["_id"], {}, []
    for kind in KINDS:
        if kind in purchase and purchase[kind] is None:
            unset.append(kind)
    kinds = [kind for kind in KINDS if purchase.get(kind) is not None]
    if len(kinds) != 1:
        run.summary.problem("purchase_without_single_item", f"purchase {pid}")
        return
    kind = kinds[0]
    for name in ("user", kind):
        try:
            value = legacy.object_id(purchase.get(name))
        except Unfixable as error:
            run.summary.problem("purchase_with_unreadable_id", f"purchase {pid}: {name} {error}")
            return
        if value != purchase.get(name) or type(value) is not type(purchase.get(name)):
            fixes[name] = value
    item = fixes.get(kind, purchase[kind])
    if item not in items[kind]:
        run.summary.problem("purchase_of_unknown_item", f"purchase {pid}: {kind} {item}")
    try:
        amount = legacy.amount(purchase.get("amount"))
        if type(amount) is not type(purchase.get("amount")) or amount != purchase.get("amount"):
            fixes["amount"] = amount
    except Unfixable as error:
        run.summary.problem("purchase_with_unreadable_amount", f"purchase {pid}: {error}")
    try:
        moment = legacy.moment(purchase.get("purchasedAt"), now)
        if not isinstance(purchase.get("purchasedAt"), datetime):
            fixes["purchasedAt"] = moment
    except Unfixable as error:
        run.summary.problem("purchase_with_unreadable_date", f"purchase {pid}: purchasedAt {error}")
    if not isinstance(purchase.get("paymentMethod"), str) or not purchase["paymentMethod"]:
        run.summary.problem("purchase_without_payment_method", f"purchase {pid}")
    if not fixes and not unset:
        return
    note = "; ".join([f"{name}: {purchase.get(name)!r} -> {value!r}" for name, value in fixes.items()]
                     + [f"{name}: null removed" for name in unset])
    fixed = {**purchase, **fixes}
    batch.audit.append(run.audit("fix", user=fixed.get("user"), kind=kind, item=item, purchase=fixed,
                                 note=f"purchase {pid} normalised: {note}"))
    update = {"$set": fixes} if fixes else {}
    if unset:
        update["$unset"] = dict.fromkeys(unset, "")
    batch.update(PURCHASES, UpdateOne({"_id": pid}, update))
    run.summary.changed("purchases_normalised", f"purchase {pid}: {note}")


def single_item(purchase: dict) -> str | None:
    """The kind of a purchase that names exactly one item, as an ObjectId; else None."""
    kinds = [kind for kind in KINDS if purchase.get(kind) is not None]
    if len(kinds) != 1:
        return None
    try:
        return kinds[0] if legacy.object_id(purchase[kinds[0]]) == purchase[kinds[0]] else None
    except Unfixable:
        return None


def each_user(run: Run, user_fields: dict, decide, progress=None) -> None:
    """Phase "users": every user beside their purchases (each recorded once), `decide(batch,
    user, purchases)` adding the writes; written and checkpointed every `run.batch` users.
    Purchases of users that do not exist are reported."""
    go, after = run.start("users")
    if not go:
        return

    def work():
        # whole purchases: small documents, which the embedded engine sends faster than it projects them
        for user, purchases in users_with_purchases(run.db, after=after, user_fields=user_fields):
            if user is None:
                for purchase in purchases:
                    run.summary.problem("purchase_of_unknown_user", f"purchase {purchase['_id']}: user {purchase['user']}")
                continue
            yield user["_id"], lambda batch, u=user, p=purchases: decide(batch, u, deduplicate(run, batch, u, p))

    _in_batches(run, work(), progress, last=after)
    run.start("done")


def _in_batches(run: Run, work, progress, last=None) -> None:
    """`do(batch)` for each (key, do) of `work`, the batch written and checkpointed at the last
    key every `run.batch` of them (and at the end); `progress(n)` after each write."""
    batch, count = Batch(), 0
    for key, do in work:
        do(batch)
        count, last = count + 1, key
        if count % run.batch == 0:
            run.write(batch, last)
            batch = Batch()
            if progress:
                progress(run.batch)
    run.write(batch, last)
    if progress:
        progress(count % run.batch)


SAME_PURCHASE = ("amount", "paymentMethod", "purchasedAt", "currency")


def deduplicate(run: Run, batch: Batch, user: dict, purchases: list[dict]) -> list[dict]:
    """The user's purchases with each one recorded twice kept once (the first by `_id`).

    Two purchases of one item that differ in amount, method, date or currency are both
    kept and reported: which one is real is not certain.
    """
    groups = {}
    for purchase in purchases:
        kind = single_item(purchase)
        if kind is not None:
            groups.setdefault((kind, purchase[kind]), []).append(purchase)
    kept = []
    for (kind, item), group in groups.items():
        group.sort(key=lambda p: str(p["_id"]))
        first = group[0]
        if len(group) > 1 and all(_same(first, other) for other in group[1:]):
            for other in group[1:]:
                batch.update(PURCHASES, DeleteOne({"_id": other["_id"]}))
                batch.audit.append(run.audit("fix", user=user["_id"], kind=kind, item=item, purchase=other,
                                             user_name=user.get("name"),
                                             note=f"purchase {other['_id']} removed: the same purchase as {first['_id']}"))
                run.summary.changed("duplicate_purchases_removed", f"purchase {other['_id']} (same as {first['_id']})")
            kept.append(first)
        else:
            if len(group) > 1:
                ids = ", ".join(str(p["_id"]) for p in group)
                run.summary.problem("duplicate_purchases", f"user {user['_id']} {kind} {item}: purchases {ids}")
            kept += group
    return kept


def _same(one: dict, other: dict) -> bool:
    return all(one.get(name) == other.get(name) for name in SAME_PURCHASE)
