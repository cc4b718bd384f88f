"""The audit log: one entry per change to purchases, written by the change's own transaction.

No change exists without its entry and no entry without its change. Entries are never
updated or removed. `_id` is an ObjectId made at the change, so ids sort by time.
"""

from datetime import datetime

from bson import ObjectId
from pymongo import DESCENDING
from pymongo.database import Database

from core.customers import customers_containing
from core.errors import UserNotFoundError, ValidationError
from core.storage.caches import caches_of
from core.storage.db import is_embedded
from core.storage.documents import ID_BATCH, insert_all, insert_new, utc
from core.storage.retry import retry_when_busy
from core.storage.schema import AUDIT, USERS, kind_of
from core.validation import date_range, known_options, shown, text, to_object_id

SOURCES = ("admin", "bulk", "api", "webhook", "migration", "script")
ACTIONS = ("grant", "revoke", "fix")  # fix: a record corrected without a change of access (migrations)
FILTER_NAMES = {"actor", "user", "actors", "users", "item", "source", "action", "startDate", "endDate", "limit", "skip"}
DEFAULT_LIMIT = 100
MAX_LIMIT = 10_000
MAX_SKIP = 2**31 - 1  # what every server takes as a skip (mongoeco refuses 2**63 - 1)
MAX_MATCHED = 200  # actors or users a filter may list (one `$in` batch on MongoDB)
COUNT_CAP = 10_000  # count_audit_log's default: "10,000+" past it


def check_source(source) -> str:
    if source not in SOURCES:
        raise ValidationError(f"source must be one of {list(SOURCES)}, got {shown(source)}", field="source")
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
    `startDate`, `endDate` (as analytics), `limit` (100, at most 10,000) and `skip`; `actors`
    and `users`: lists (at most MAX_MATCHED) an entry's actor or user is one of."""
    db = utc(db)
    f = known_options(filters, FILTER_NAMES, "audit filters")
    queries = _queries(db, f)
    limit, skip = _count(f.get("limit", DEFAULT_LIMIT), "limit", 1, MAX_LIMIT), _count(f.get("skip", 0), "skip", 0, MAX_SKIP)
    if len(queries) == 1:
        return retry_when_busy(lambda: list(db[AUDIT].find(queries[0]).sort("at", DESCENDING).skip(skip).limit(limit)))
    found = []  # each batch's newest skip + limit, merged
    for query in queries:
        found += retry_when_busy(lambda q=query: list(db[AUDIT].find(q).sort("at", DESCENDING)
                                                       .limit(min(skip + limit, MAX_SKIP))))
    found.sort(key=lambda entry: (entry["at"], entry["_id"]), reverse=True)
    return found[skip : skip + limit]


def count_audit_log(db: Database, filters=None, cap: int = COUNT_CAP) -> int:
    """How many entries get_audit_log's filters match, `limit` and `skip` aside, counted no
    further than `cap` + 1 (more than `cap` answers cap + 1)."""
    db = utc(db)
    f = known_options(filters, FILTER_NAMES, "audit filters")
    queries, cap = _queries(db, f), _count(cap, "cap", 1, MAX_SKIP - 1)
    if queries == [{}]:  # the whole log: the collection's own count, not a read of every entry
        return min(retry_when_busy(lambda: db[AUDIT].estimated_document_count()), cap + 1)
    total = 0
    for query in queries:
        total += retry_when_busy(lambda q=query, left=cap + 1 - total: db[AUDIT].count_documents(q, limit=left))
        if total > cap:
            break
    return total


def users_matching(db: Database, text: str) -> tuple[list[ObjectId], str]:
    """The users a customer filter's text names: an id's (with a note when no user has it now),
    else those whose name or email holds each of its words (customers_containing), at most MAX_MATCHED."""
    if ObjectId.is_valid(text):
        user = ObjectId(text)
        found = retry_when_busy(lambda: utc(db)[USERS].find_one({"_id": user}, {"_id": 1}))
        # entries outlive their user: still show what was recorded for a deleted one
        return [user], "" if found else f"No user has the id {text} now; showing what was recorded for it."
    users = customers_containing(db, text, MAX_MATCHED + 1)
    if not users:
        raise UserNotFoundError(f"No customer's name or email contains “{text}”.")
    if len(users) > MAX_MATCHED:
        raise ValidationError(f"Customer: more than {MAX_MATCHED} customers match “{text}”; type more of a name "
                              "or an email, or a user id.", field="users")
    return users, ""


def actors_matching(text: str, known: dict[str, str]) -> list[str]:
    """The actors of `known` (actor -> what else names it, such as a staff member's name) whose
    actor or name holds each word of `text`, in any case, taken literally; and `text` itself, for
    an actor recorded under any other name (an email in lower case, as staff sign in)."""
    words = text.casefold().split()
    found = {actor for actor, name in known.items() if all(word in f"{actor} {name}".casefold() for word in words)}
    found.add(text.strip().lower() if "@" in text else text.strip())
    if len(found) > MAX_MATCHED:
        raise ValidationError(f"Actor: more than {MAX_MATCHED} accounts match “{text}”; type more of it.",
                              field="actors")
    return sorted(found)


def _queries(db: Database, f: dict) -> list[dict]:
    """The query of the filters; with `users`, one for each batch of them (none for no users)."""
    query = _query(f)
    if f.get("actors") is not None:
        query["actor"] = {"$in": _listed(f, "actors", lambda actor: text(_string(actor, "actors"), "actors"))}
    if f.get("users") is None:
        return [query]
    users, batch = _listed(f, "users", lambda user: to_object_id(user, "users")), _user_batch(db)
    return [{**query, "user": users[start] if batch == 1 else {"$in": users[start : start + batch]}}
            for start in range(0, len(users), batch)]


def _listed(f: dict, name: str, check) -> list:
    single = name[:-1]  # actor, user
    if f.get(single) is not None:
        raise ValidationError(f"give {single} or {name}, not both", field=name)
    if not isinstance(f[name], list | tuple) or len(f[name]) > MAX_MATCHED:
        raise ValidationError(f"{name} must be a list of at most {MAX_MATCHED}, got {shown(f[name])}", field=name)
    return sorted({check(value) for value in f[name]})


def _string(value, name: str) -> str:
    if not isinstance(value, str):
        raise ValidationError(f"{name} must hold strings, got {shown(value)}", field=name)
    return value


def _user_batch(db: Database) -> int:
    """Users one query asks for. mongoeco answers a `$in` on an indexed field with a scan of the
    collection (1.7 s at 300,000 entries, even for one id) and an equality from the index
    (8 ms), so there each user gets a query of its own; MongoDB takes ID_BATCH in one `$in`."""
    return 1 if caches_of(db).slot("embedded engine", lambda: is_embedded(db)) else ID_BATCH


def _query(f: dict) -> dict:
    query = {}
    if f.get("actor") is not None:
        if not isinstance(f["actor"], str):
            raise ValidationError(f"actor must be a string, got {shown(f['actor'])}", field="actor")
        query["actor"] = f["actor"]
    if f.get("user") is not None:
        query["user"] = to_object_id(f["user"], "user")
    if f.get("item") is not None:
        query["item"] = to_object_id(f["item"], "item")
    if f.get("source") is not None:
        query["source"] = check_source(f["source"])
    if f.get("action") is not None:
        if f["action"] not in ACTIONS:
            raise ValidationError(f"action must be one of {list(ACTIONS)}, got {shown(f['action'])}", field="action")
        query["action"] = f["action"]
    start, end = date_range(f)
    if start or end:
        query["at"] = {**({"$gte": start} if start else {}), **({"$lt": end} if end else {})}
    return query


def _count(value, name: str, low: int, high: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise ValidationError(f"{name} must be an integer between {low} and {high:,}, got {shown(value)}",
                              field=name)
    return value
