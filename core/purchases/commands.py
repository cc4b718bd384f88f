"""The hybrid purchase system: every purchase in the user's array and in `purchases`, together."""

from datetime import UTC, datetime

from bson import ObjectId
from pymongo.database import Database

from core.analytics.rollups import record_revocation, record_sale
from core.audit import check_source, record_change
from core.changes import record_activity
from core.errors import (
    AlreadyPurchasedError,
    ItemNotFoundError,
    NotPurchasedError,
    UserNotFoundError,
    ValidationError,
)
from core.settings import CoreSettings
from core.storage.documents import insert_new, utc
from core.storage.retry import retry_when_busy
from core.storage.schema import IDEMPOTENCY, PURCHASES, REVOKED, USERS, catalog, kind_of, user_array
from core.storage.transactions import run_in_transaction
from core.validation import (
    core_settings,
    item_kind,
    optional_string,
    to_object_id,
    utc_millis,
    validate_purchase_data,
)


def create_purchase(
    db: Database, user_id, course_id=None, test_id=None, purchase_data=None, *,
    settings: CoreSettings | None = None, source: str = "api", note: str | None = None,
) -> dict:
    """Record that a user bought a course or a test, in both places, in one transaction.

    The same transaction writes the audit entry (`source`: admin, bulk, api, migration or
    script; `purchase_data["actor"]`: who; `note`: why). `settings` says which payment
    methods are allowed and the default currency. A repeat with the same `idempotencyKey`
    and the same parameters returns the original purchase and writes nothing; the same key
    with other parameters raises ValidationError, and the replay of a purchase since revoked
    raises NotPurchasedError saying so.
    """
    db = utc(db)
    user = to_object_id(user_id, "user_id")
    kind, item = item_kind(course_id, test_id)
    fields = validate_purchase_data(purchase_data, core_settings(settings), datetime.now(UTC))
    source, note = check_source(source), optional_string(note, "note")
    purchase = {"_id": ObjectId(), "user": user, kind: item, **fields}
    key = fields.get("idempotencyKey")

    def work(session):
        if key is not None:
            original = _replay(db, session, key, purchase, explicit_date="purchasedAt" in (purchase_data or {}))
            if original is not None:
                return original
        buyer = _user(db, session, user, kind)
        product = db[catalog(kind)].find_one({"_id": item}, {"title": 1}, session=session)
        if product is None:
            raise ItemNotFoundError(f"no {kind} with id {item} in {catalog(kind)!r}")
        if item in _owned(buyer, kind):
            raise AlreadyPurchasedError(f"user {user} already owns {kind} {item}")
        insert_new(db, PURCHASES, purchase, session)
        db[USERS].update_one({"_id": user}, {"$addToSet": {user_array(kind): item}}, session=session)
        if key is not None:
            record = {"_id": key, "purchase": purchase["_id"], "user": user, kind: item}
            insert_new(db, IDEMPOTENCY, record, session)
        record_sale(db, session, purchase, 1)
        record_activity(db, session, "purchase", purchase, purchase["purchasedAt"], buyer, product)
        record_change(db, session, "grant", purchase, at=datetime.now(UTC), actor=fields.get("actor"), source=source,
                      user=buyer, item=product, note=note)
        return purchase

    return run_in_transaction(db, work)


def remove_purchase(db: Database, user_id, course_id=None, test_id=None, *, actor=None, reason=None,
                    source: str = "api", note: str | None = None) -> dict:
    """Take an item away from a user in both places; keep the purchase in `revoked_purchases`.

    The same transaction writes the audit entry (`actor`, `reason`, `source`, `note`).
    """
    db = utc(db)
    user = to_object_id(user_id, "user_id")
    kind, item = item_kind(course_id, test_id)
    actor, reason = optional_string(actor, "actor"), optional_string(reason, "reason")
    source, note = check_source(source), optional_string(note, "note")
    revoked_at = utc_millis(datetime.now(UTC))

    def work(session):
        buyer = _user(db, session, user, kind)
        owned = _owned(buyer, kind)
        # by user alone, then the item here (core.storage.documents)
        mine = db[PURCHASES].find({"user": user}, session=session)
        found = sorted((p for p in mine if p.get(kind) == item), key=lambda p: p["purchasedAt"])
        if not found:
            hint = " (the user's array still lists it: run scripts/test_hybrid_system.py --repair)" if item in owned else ""
            raise NotPurchasedError(f"user {user} has no purchase of {kind} {item}{hint}")
        purchase = found[-1]
        if len(found) == 1:
            db[USERS].update_one({"_id": user}, {"$pull": {user_array(kind): item}}, session=session)
        db[PURCHASES].delete_one({"_id": purchase["_id"]}, session=session)
        revoked = {**purchase, "revokedAt": revoked_at, "revokedBy": actor, "reason": reason}
        insert_new(db, REVOKED, revoked, session)
        record_sale(db, session, purchase, -1)
        record_revocation(db, session, revoked)
        product = db[catalog(kind)].find_one({"_id": item}, {"title": 1}, session=session)
        record_activity(db, session, "revocation", purchase, revoked_at, buyer, product)
        record_change(db, session, "revoke", purchase, at=revoked_at, actor=actor, source=source, user=buyer,
                      item=product, reason=reason, note=note)
        return revoked

    return run_in_transaction(db, work)


def has_purchased(db: Database, user_id, course_id=None, test_id=None) -> bool:
    """True when the user's array holds the item: one point read of the user document."""
    db = utc(db)
    user = to_object_id(user_id, "user_id")
    kind, item = item_kind(course_id, test_id)
    array = user_array(kind)
    doc = retry_when_busy(lambda: db[USERS].find_one({"_id": user}, {array: 1}))
    if doc is None:
        raise UserNotFoundError(f"no user with id {user}")
    return item in (doc.get(array) or [])


def _user(db: Database, session, user: ObjectId, kind: str) -> dict:
    doc = db[USERS].find_one({"_id": user}, {user_array(kind): 1, "name": 1}, session=session)
    if doc is None:
        raise UserNotFoundError(f"no user with id {user}")
    return doc


def _owned(user: dict, kind: str) -> list:
    items = user.get(user_array(kind))
    return items if isinstance(items, list) else []


def _replay(db: Database, session, key: str, purchase: dict, *, explicit_date: bool):
    """The purchase a key was first used for, or None for a new key.

    Stripe's rule: a key stands for one request. The same key with another user, item,
    amount, method, currency or (when given) date is an error, not a replay.
    """
    record = db[IDEMPOTENCY].find_one({"_id": key}, session=session)
    if record is None:
        return None
    original = db[PURCHASES].find_one({"_id": record["purchase"]}, session=session)
    revoked = None if original is not None else db[REVOKED].find_one({"_id": record["purchase"]}, session=session)
    first = original or revoked or record
    compared = ["user", kind_of(purchase), "amount", "paymentMethod", "currency"] + (["purchasedAt"] if explicit_date else [])
    differing = [name for name in compared if name in first and first.get(name) != purchase.get(name)]
    if kind_of(purchase) not in first or differing:
        raise ValidationError(
            f"idempotencyKey {key!r} was already used for another purchase "
            f"(differs in {', '.join(differing) or 'item'}); use a new key for a new purchase"
        )
    if revoked is not None:
        raise NotPurchasedError(
            f"idempotencyKey {key!r} granted purchase {revoked['_id']}, which was revoked on "
            f"{revoked['revokedAt']:%Y-%m-%d %H:%M} UTC ({revoked.get('reason') or 'no reason given'}); "
            "use a new key to grant it again"
        )
    return original
