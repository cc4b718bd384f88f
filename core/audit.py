"""The audit log: one entry per change to purchases, written by the change's own transaction.

No change exists without its entry and no entry without its change. Entries are never
updated or removed. `_id` is an ObjectId made at the change, so ids sort by time.
"""

from datetime import datetime

from bson import ObjectId
from pymongo import DESCENDING
from pymongo.database import Database

from core.errors import ValidationError
from core.storage.documents import insert_all, insert_new, utc
from core.storage.retry import retry_when_busy
from core.storage.schema import AUDIT, kind_of
from core.validation import date_range, known_options, shown, to_object_id

SOURCES = ("admin", "bulk", "api", "webhook", "migration", "script")
ACTIONS = ("grant", "revoke", "fix")  # fix: a record corrected without a change of access (migrations)
FILTER_NAMES = {"actor", "user", "item", "source", "action", "startDate", "endDate", "limit", "skip"}
DEFAULT_LIMIT = 100
MAX_LIMIT = 10_000
MAX_SKIP = 2**31 - 1  # what every server takes as a skip (mongoeco refuses 2**63 - 1)


def check_source(source) -> str:
    if source not in SOURCES:
        raise ValidationError(f"source must be one of {list(SOURCES)}, got {shown(source)}")
    return source


def record_change(db: Database, session, action: str, purchase: dict, *, at: datetime, actor: str | None,
                  source: str, user: dict, item: dict | None, reason: str | None = None,
                  note: str | None = None) -> dict:
    """Write the entry of one grant or revocation inside its transaction; return it."""
    entry = change_entry(action, purchase, at=at, actor=actor, source=source, user=user, item=item, reason=reason,
                         note=note)
    insert_new(db, AUDIT, entry, session)
    return entry


def record_changes(db: Database, session, entries: list[dict]) -> None:
    """Write the entries (change_entry) of many changes inside their transaction."""
    insert_all(db, AUDIT, entries, session)


def change_entry(action: str, purchase: dict, *, at: datetime, actor: str | None, source: str, user: dict,
                 item: dict | None, reason: str | None = None, note: str | None = None) -> dict:
    """The audit entry of one grant or revocation."""
    kind = kind_of(purchase)
    return {
        "_id": ObjectId(),
        "at": at,
        "action": action,
        "source": source,
        "actor": actor,
        "user": purchase["user"],
        "userName": user.get("name"),
        "kind": kind,
        "item": purchase[kind],
        "title": (item or {}).get("title"),
        "purchase": purchase["_id"],
        "amount": purchase["amount"],
        "currency": purchase.get("currency"),
        "paymentMethod": purchase["paymentMethod"],
        "idempotencyKey": purchase.get("idempotencyKey"),
        "discountCode": purchase.get("discountCode"),
        "reason": reason,
        "note": note,
    }


def fix_entry(user: dict, kind: str, note: str, *, at: datetime, actor: str | None, source: str) -> dict:
    """The audit entry of a record corrected without a change of access (a user's array rebuilt)."""
    return {"_id": ObjectId(), "at": at, "action": "fix", "source": source, "actor": actor, "user": user["_id"],
            "userName": user.get("name"), "kind": kind, "item": None, "title": None, "purchase": None,
            "amount": None, "currency": None, "paymentMethod": None, "reason": None, "note": note}


def get_audit_log(db: Database, filters=None) -> list[dict]:
    """Entries newest first; filters `actor`, `user`, `item` (ids), `source`, `action`,
    `startDate`, `endDate` (as analytics), `limit` (100, at most 10,000) and `skip`."""
    db = utc(db)
    f = known_options(filters, FILTER_NAMES, "audit filters")
    query = _query(f)
    limit, skip = _count(f.get("limit", DEFAULT_LIMIT), "limit", 1, MAX_LIMIT), _count(f.get("skip", 0), "skip", 0, MAX_SKIP)
    return retry_when_busy(lambda: list(db[AUDIT].find(query).sort("at", DESCENDING).skip(skip).limit(limit)))


def _query(f: dict) -> dict:
    query = {}
    if f.get("actor") is not None:
        if not isinstance(f["actor"], str):
            raise ValidationError(f"actor must be a string, got {shown(f['actor'])}")
        query["actor"] = f["actor"]
    if f.get("user") is not None:
        query["user"] = to_object_id(f["user"], "user")
    if f.get("item") is not None:
        query["item"] = to_object_id(f["item"], "item")
    if f.get("source") is not None:
        query["source"] = check_source(f["source"])
    if f.get("action") is not None:
        if f["action"] not in ACTIONS:
            raise ValidationError(f"action must be one of {list(ACTIONS)}, got {shown(f['action'])}")
        query["action"] = f["action"]
    start, end = date_range(f)
    if start or end:
        query["at"] = {**({"$gte": start} if start else {}), **({"$lt": end} if end else {})}
    return query


def _count(value, name: str, low: int, high: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise ValidationError(f"{name} must be an integer between {low} and {high:,}, got {shown(value)}")
    return value
