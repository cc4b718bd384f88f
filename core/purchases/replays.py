"""Idempotency keys replayed: a key stands for one request (Stripe's rule), so its repeat
returns what the first made, and the same key for anything else is a conflict."""

from bson import ObjectId
from pymongo.database import Database

from core.errors import IdempotencyConflictError
from core.storage.schema import IDEMPOTENCY, PURCHASES, REVOKED, kind_of


def replay(db: Database, session, key: str, record: dict, purchase: dict, fingerprint: str | None, *,
            explicit_date: bool) -> dict:
    """The purchase a key was first used for (active, or revoked since): `record` is the key's.

    Stripe's rule: a key stands for one request. The same key with another user, item,
    amount, method, currency or (when given) date, another fingerprint, or for a revocation,
    is an error, not a replay.
    """
    if record.get("action") == "revoke":
        raise IdempotencyConflictError(f"idempotencyKey {key!r} was already used for a revocation; use a new key "
                                       "for a new request", field="idempotencyKey")
    _same_request(key, record, fingerprint)
    original = db[PURCHASES].find_one({"_id": record["purchase"]}, session=session)
    revoked = None if original is not None else db[REVOKED].find_one({"_id": record["purchase"]}, session=session)
    _same_purchase(key, original or revoked or record, purchase, explicit_date)
    return original or revoked


def repeat_in_batch(grant, first) -> dict:
    """The purchase an earlier request of the same batch made with this key (as replay)."""
    _same_request(grant.key, {"fingerprint": first.fingerprint}, grant.fingerprint)
    _same_purchase(grant.key, first.purchase, grant.purchase, grant.explicit_date)
    return first.purchase


def _same_purchase(key: str, first: dict, purchase: dict, explicit_date: bool) -> None:
    compared = ["user", kind_of(purchase), "amount", "paymentMethod", "currency"] + (["purchasedAt"] if explicit_date else [])
    differing = [name for name in compared if name in first and first.get(name) != purchase.get(name)]
    if kind_of(purchase) not in first or differing:
        raise IdempotencyConflictError(
            f"idempotencyKey {key!r} was already used for another purchase "
            f"(differs in {', '.join(differing) or 'item'}); use a new key for a new purchase", field="idempotencyKey"
        )


def replay_revocation(db: Database, session, key: str, user: ObjectId, kind: str, item: ObjectId,
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
