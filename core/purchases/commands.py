"""The hybrid purchase system: every purchase in the user's array and in `purchases`, together."""

from dataclasses import dataclass
from datetime import UTC, datetime

from bson import ObjectId
from pymongo.database import Database

from core.analytics.rollups import (
    next_version,
    record_revocation,
    record_sale,
    touched_update,
    writing_set,
)
from core.audit import check_source, record_change
from core.changes import record_activity
from core.errors import (
    AlreadyPurchasedError,
    IdempotencyConflictError,
    ItemNotFoundError,
    NotPurchasedError,
    UserNotFoundError,
)
from core.settings import CoreSettings
from core.storage.documents import insert_new, utc
from core.storage.retry import retry_when_busy
from core.storage.schema import IDEMPOTENCY, KINDS, PURCHASES, REVOKED, USERS, catalog, kind_of, user_array
from core.storage.transactions import run_in_transaction
from core.validation import (
    core_settings,
    item_kind,
    optional_string,
    to_object_id,
    utc_millis,
    validate_purchase_data,
)


@dataclass(frozen=True)
class Outcome:
    """What a grant or a revocation did: its document, and whether an earlier call with the same
    idempotency key had done it already (then nothing was written)."""

    document: dict
    replayed: bool = False


def create_purchase(
    db: Database, user_id, course_id=None, test_id=None, purchase_data=None, *,
    settings: CoreSettings | None = None, source: str = "api", note: str | None = None,
) -> dict:
    """Record that a user bought a course or a test, in both places, in one transaction.

    The same transaction writes the audit entry (`source`: admin, bulk, api, webhook,
    migration or script; `purchase_data["actor"]`: who; `note`: why). `settings` says which
    payment methods are allowed and the default currency. A repeat with the same
    `idempotencyKey` and the same parameters returns the original purchase and writes
    nothing; the same key with other parameters raises IdempotencyConflictError (a
    ValidationError), and the replay of a purchase since revoked raises NotPurchasedError
    saying so.
    """
    done = purchase_item(db, user_id, course_id, test_id, purchase_data, settings=settings, source=source, note=note)
    revoked = done.document
    if "revokedAt" in revoked:
        raise NotPurchasedError(
            f"idempotencyKey {revoked.get('idempotencyKey')!r} granted purchase {revoked['_id']}, which was revoked on "
            f"{revoked['revokedAt']:%Y-%m-%d %H:%M} UTC ({revoked.get('reason') or 'no reason given'}); "
            "use a new key to grant it again"
        )
    return done.document


def purchase_item(
    db: Database, user_id, course_id=None, test_id=None, purchase_data=None, *,
    settings: CoreSettings | None = None, source: str = "api", note: str | None = None,
    fingerprint: str | None = None,
) -> Outcome:
    """create_purchase, saying whether it was a replay; a replay of a purchase revoked since
    returns the revoked purchase (with `revokedAt`) instead of raising.

    `fingerprint` (with an idempotencyKey) stands for the whole request as its caller saw it,
    such as a hash of an HTTP body: a replay whose fingerprint differs is a conflict, whatever
    the fields say.
    """
    db = utc(db)
    user = to_object_id(user_id, "user_id")
    kind, item = item_kind(course_id, test_id)
    fields = validate_purchase_data(purchase_data, core_settings(settings), datetime.now(UTC))
    source, note = check_source(source), optional_string(note, "note")
    fingerprint = optional_string(fingerprint, "fingerprint")
    purchase = {"_id": ObjectId(), "user": user, kind: item, **fields}
    key = fields.get("idempotencyKey")

    def work(session):
        if key is not None:
            original = _replay(db, session, key, purchase, fingerprint,
                               explicit_date="purchasedAt" in (purchase_data or {}))
            if original is not None:
                return Outcome(original, replayed=True)
        buyer = _user(db, session, user, kind)
        product = db[catalog(kind)].find_one({"_id": item}, {"title": 1}, session=session)
        if product is None:
            raise ItemNotFoundError(f"no {kind} with id {item} in {catalog(kind)!r}")
        if item in _owned(buyer, kind):
            raise AlreadyPurchasedError(f"user {user} already owns {kind} {item}")
        insert_new(db, PURCHASES, purchase, session)
        db[USERS].update_one({"_id": user}, {"$addToSet": {user_array(kind): item}}, session=session)
        if key is not None:
            record = {"_id": key, "purchase": purchase["_id"], "user": user, kind: item, "fingerprint": fingerprint}
            insert_new(db, IDEMPOTENCY, record, session)
        state = writing_set(db, session)
        moment = record_sale(db, session, state, purchase, 1)
        record_activity(db, session, "purchase", purchase, purchase["purchasedAt"], buyer, product,
                        also=touched_update(state, [moment]), expect=next_version(state))
        record_change(db, session, "grant", purchase, at=datetime.now(UTC), actor=fields.get("actor"), source=source,
                      user=buyer, item=product, note=note)
        return Outcome(purchase)

    return run_in_transaction(db, work)


def remove_purchase(db: Database, user_id, course_id=None, test_id=None, *, actor=None, reason=None,
                    source: str = "api", note: str | None = None, idempotency_key: str | None = None) -> dict:
    """Take an item away from a user in both places; keep the purchase in `revoked_purchases`.

    The same transaction writes the audit entry (`actor`, `reason`, `source`, `note`). With an
    `idempotency_key`, a repeat for the same user and item returns the first revocation and
    writes nothing.
    """
    return revoke_item(db, user_id, course_id, test_id, actor=actor, reason=reason, source=source, note=note,
                       idempotency_key=idempotency_key).document


def revoke_item(db: Database, user_id, course_id=None, test_id=None, *, actor=None, reason=None,
                source: str = "api", note: str | None = None, idempotency_key: str | None = None,
                fingerprint: str | None = None) -> Outcome:
    """remove_purchase, saying whether it was a replay of an earlier call with the same key."""
    db = utc(db)
    user = to_object_id(user_id, "user_id")
    kind, item = item_kind(course_id, test_id)
    actor, reason = optional_string(actor, "actor"), optional_string(reason, "reason")
    source, note = check_source(source), optional_string(note, "note")
    key = optional_string(idempotency_key, "idempotency_key")
    fingerprint = optional_string(fingerprint, "fingerprint")
    revoked_at = utc_millis(datetime.now(UTC))

    def work(session):
        if key is not None:
            earlier = _replay_revocation(db, session, key, user, kind, item, fingerprint)
            if earlier is not None:
                return Outcome(earlier, replayed=True)
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
        if key is not None:
            record = {"_id": key, "action": "revoke", "purchase": purchase["_id"], "user": user, kind: item,
                      "fingerprint": fingerprint}
            insert_new(db, IDEMPOTENCY, record, session)
        state = writing_set(db, session)
        moments = [record_sale(db, session, state, purchase, -1), record_revocation(db, session, state, revoked)]
        product = db[catalog(kind)].find_one({"_id": item}, {"title": 1}, session=session)
        record_activity(db, session, "revocation", purchase, revoked_at, buyer, product,
                        also=touched_update(state, moments), expect=next_version(state))
        record_change(db, session, "revoke", purchase, at=revoked_at, actor=actor, source=source, user=buyer,
                      item=product, reason=reason, note=note)
        return Outcome(revoked)

    return run_in_transaction(db, work)


def get_owned_items(db: Database, user_id) -> dict[str, list]:
    """Every item the user owns, by kind ({"course": [ids], "test": [ids]}): one point read."""
    db = utc(db)
    user = to_object_id(user_id, "user_id")
    arrays = {user_array(kind): 1 for kind in KINDS}
    doc = retry_when_busy(lambda: db[USERS].find_one({"_id": user}, arrays))
    if doc is None:
        raise UserNotFoundError(f"no user with id {user}")
    return {kind: list(_owned(doc, kind)) for kind in KINDS}


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


def _replay(db: Database, session, key: str, purchase: dict, fingerprint: str | None, *, explicit_date: bool):
    """The purchase a key was first used for (active, or revoked since), or None for a new key.

    Stripe's rule: a key stands for one request. The same key with another user, item,
    amount, method, currency or (when given) date, another fingerprint, or for a revocation,
    is an error, not a replay.
    """
    record = db[IDEMPOTENCY].find_one({"_id": key}, session=session)
    if record is None:
        return None
    if record.get("action") == "revoke":
        raise IdempotencyConflictError(f"idempotencyKey {key!r} was already used for a revocation; use a new key "
                                       "for a new request", field="idempotencyKey")
    _same_request(key, record, fingerprint)
    original = db[PURCHASES].find_one({"_id": record["purchase"]}, session=session)
    revoked = None if original is not None else db[REVOKED].find_one({"_id": record["purchase"]}, session=session)
    first = original or revoked or record
    compared = ["user", kind_of(purchase), "amount", "paymentMethod", "currency"] + (["purchasedAt"] if explicit_date else [])
    differing = [name for name in compared if name in first and first.get(name) != purchase.get(name)]
    if kind_of(purchase) not in first or differing:
        raise IdempotencyConflictError(
            f"idempotencyKey {key!r} was already used for another purchase "
            f"(differs in {', '.join(differing) or 'item'}); use a new key for a new purchase", field="idempotencyKey"
        )
    return original or revoked


def _replay_revocation(db: Database, session, key: str, user: ObjectId, kind: str, item: ObjectId,
                       fingerprint: str | None):
    """The revocation a key was first used for, or None for a new key."""
    record = db[IDEMPOTENCY].find_one({"_id": key}, session=session)
    if record is None:
        return None
    if record.get("action") != "revoke" or record.get("user") != user or record.get(kind) != item:
        raise IdempotencyConflictError(f"idempotency key {key!r} was already used for another request; use a new "
                                       "key for a new request", field="idempotency_key")
    _same_request(key, record, fingerprint)
    return db[REVOKED].find_one({"_id": record["purchase"]}, session=session)


def _same_request(key: str, record: dict, fingerprint: str | None) -> None:
    if fingerprint is not None and record.get("fingerprint") not in (None, fingerprint):
        raise IdempotencyConflictError(f"idempotency key {key!r} was already used for a request with other "
                                       "parameters; use a new key for a new request", field="idempotencyKey")
