"""The hybrid purchase system: every purchase in the user's array and in `purchases`, together."""

from datetime import UTC, datetime

from bson import ObjectId
from pymongo.database import Database

from core.analytics.rollups import record_revocation, record_sale
from core.changes import record_activity
from core.errors import (
    AlreadyPurchasedError,
    ItemNotFoundError,
    NotPurchasedError,
    UserNotFoundError,
    ValidationError,
)
from core.settings import DEFAULT_SETTINGS, CoreSettings
from core.storage.documents import insert_new, utc
from core.storage.retry import retry_when_busy
from core.storage.schema import IDEMPOTENCY, PURCHASES, REVOKED, USERS, catalog, user_array
from core.storage.transactions import run_in_transaction
from core.validation import item_kind, optional_string, to_object_id, utc_millis, validate_purchase_data


def create_purchase(
    db: Database, user_id, course_id=None, test_id=None, purchase_data=None, *, settings: CoreSettings | None = None
) -> dict:
    """Record that a user bought a course or a test, in both places, in one transaction.

    `settings` says which payment methods are allowed and the default currency. A repeat
    with the same `idempotencyKey` returns the original purchase and writes nothing; the
    same key for another user or item raises ValidationError.
    """
    db = utc(db)
    user = to_object_id(user_id, "user_id")
    kind, item = item_kind(course_id, test_id)
    fields = validate_purchase_data(purchase_data, settings or DEFAULT_SETTINGS, datetime.now(UTC))
    purchase = {"_id": ObjectId(), "user": user, kind: item, **fields}
    key = fields.get("idempotencyKey")

    def work(session):
        if key is not None:
            original = _replay(db, session, key, user, kind, item)
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
        return purchase

    return run_in_transaction(db, work)


def remove_purchase(db: Database, user_id, course_id=None, test_id=None, *, actor=None, reason=None) -> dict:
    """Take an item away from a user in both places; keep the purchase in `revoked_purchases`."""
    db = utc(db)
    user = to_object_id(user_id, "user_id")
    kind, item = item_kind(course_id, test_id)
    actor, reason = optional_string(actor, "actor"), optional_string(reason, "reason")
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


def _replay(db: Database, session, key: str, user: ObjectId, kind: str, item: ObjectId):
    """Return the purchase a key was first used for, or None for a new key."""
    record = db[IDEMPOTENCY].find_one({"_id": key}, session=session)
    if record is None:
        return None
    if record.get("user") != user or record.get(kind) != item:
        raise ValidationError(
            f"idempotencyKey {key!r} was already used for another purchase "
            f"(user {record.get('user')}, {'course' if 'course' in record else 'test'} "
            f"{record.get('course', record.get('test'))})"
        )
    return db[PURCHASES].find_one({"_id": record["purchase"]}, session=session) or db[REVOKED].find_one(
        {"_id": record["purchase"]}, session=session
    )
