"""A user's purchase history: active and revoked purchases, newest first, with item titles."""

import base64
import binascii
from datetime import UTC, datetime

import bson
from bson import ObjectId
from bson.errors import BSONError
from pymongo.database import Database

from core.errors import UserNotFoundError, ValidationError
from core.storage.documents import utc
from core.storage.retry import retry_when_busy
from core.storage.schema import KINDS, PURCHASES, REVOKED, USERS, catalog, kind_of
from core.validation import date_range, kind_option, known_options, to_object_id

DEFAULT_LIMIT = 50
EARLIEST = datetime.min.replace(tzinfo=UTC)
MAX_LIMIT = 500
OPTION_NAMES = {"kind", "startDate", "endDate", "limit", "skip", "includeRevoked"}
PAGE_OPTION_NAMES = (OPTION_NAMES - {"skip"}) | {"cursor"}


def get_purchase_history(db: Database, user_id, options=None) -> list[dict]:
    """Return the user's purchases, newest first; each has `status`, `kind` and `title`."""
    db = utc(db)
    user = to_object_id(user_id, "user_id")
    opts = parse_history_options(options)
    entries = _entries(db, user, opts)
    page = entries[opts["skip"] : opts["skip"] + opts["limit"]]
    _add_titles(db, page)
    return page


def get_purchase_history_page(db: Database, user_id, options=None) -> dict:
    """One page of the history, newest first: {"purchases": [...], "nextCursor": str or None}.

    Options as get_purchase_history's, with `cursor` (the `nextCursor` of the page before)
    in place of `skip`: a page starts after the last entry of the one before, so purchases
    made meanwhile do not shift what comes next.
    """
    db = utc(db)
    user = to_object_id(user_id, "user_id")
    options = known_options(options, PAGE_OPTION_NAMES, "history options")
    after = _decode_cursor(options.get("cursor"), user)
    opts = parse_history_options({k: v for k, v in options.items() if k != "cursor"})
    entries = _entries(db, user, opts)
    if after is not None:
        entries = [e for e in entries if _position(e) < after]
    page = entries[: opts["limit"]]
    _add_titles(db, page)
    more = len(entries) > opts["limit"]
    return {"purchases": page, "nextCursor": _encode_cursor(_position(page[-1]), user) if more else None}


def _entries(db: Database, user, opts: dict) -> list[dict]:
    """Every entry of the user that the options want, newest first."""
    if retry_when_busy(lambda: db[USERS].find_one({"_id": user}, {"_id": 1})) is None:
        raise UserNotFoundError(f"no user with id {user}")
    # A user holds at most one active purchase per catalog item: all of theirs is a small
    # read by one indexed field, filtered here (core.storage.documents).
    sources = [(PURCHASES, "active")] + ([(REVOKED, "revoked")] if opts["includeRevoked"] else [])
    entries = []
    for collection, status in sources:
        docs = retry_when_busy(lambda c=collection: list(db[c].find({"user": user})))
        entries += [{**doc, "status": status, "kind": kind_of(doc)} for doc in docs if _wanted(doc, opts)]
    entries.sort(key=_position, reverse=True)
    return entries


def _position(entry: dict) -> tuple:
    return entry.get("purchasedAt") or EARLIEST, entry["_id"]


def _encode_cursor(position: tuple, user: ObjectId) -> str:
    doc = {"at": position[0], "id": position[1], "user": user}
    return base64.urlsafe_b64encode(bson.encode(doc)).decode().rstrip("=")


def _decode_cursor(cursor, user: ObjectId) -> tuple | None:
    """The position a cursor of this user's history names; a ValidationError for anything else."""
    if cursor is None:
        return None
    try:
        if not isinstance(cursor, str) or len(cursor) > 200:
            raise ValueError
        doc = bson.decode(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)),
                          codec_options=bson.CodecOptions(tz_aware=True, tzinfo=UTC))
        if set(doc) != {"at", "id", "user"} or not isinstance(doc["at"], datetime) or \
                not isinstance(doc["id"], ObjectId) or doc["user"] != user:
            raise ValueError
    except (ValueError, BSONError, binascii.Error, OverflowError):
        raise ValidationError(f"cursor is not one this history gave, got {cursor!r:.80}", field="cursor") from None
    return doc["at"], doc["id"]


def _wanted(doc: dict, opts: dict) -> bool:
    moment = doc.get("purchasedAt") or EARLIEST  # a legacy purchase without a date sorts last
    return (
        (opts["kind"] is None or opts["kind"] in doc)
        and (opts["startDate"] is None or moment >= opts["startDate"])
        and (opts["endDate"] is None or moment < opts["endDate"])
    )


def parse_history_options(options) -> dict:
    """Validate history options and fill in defaults; dates become UTC datetimes."""
    options = known_options(options, OPTION_NAMES, "history options")
    kind = kind_option(options)
    start, end = date_range(options)
    include_revoked = options.get("includeRevoked", True)
    if not isinstance(include_revoked, bool):
        raise ValidationError(f"includeRevoked must be True or False, got {include_revoked!r}", field="includeRevoked")
    return {
        "kind": kind,
        "startDate": start,
        "endDate": end,
        "limit": _count(options.get("limit", DEFAULT_LIMIT), "limit", 1, MAX_LIMIT),
        "skip": _count(options.get("skip", 0), "skip", 0, None),
        "includeRevoked": include_revoked,
    }


def _count(value, name: str, low: int, high: int | None) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < low or (high is not None and value > high):
        bound = f"between {low} and {high}" if high is not None else f">= {low}"
        raise ValidationError(f"{name} must be an integer {bound}, got {value!r}", field=name)
    return value


def _add_titles(db: Database, entries: list[dict]) -> None:
    for kind in KINDS:
        ids = list({e[kind] for e in entries if kind in e})
        if not ids:
            continue
        titles = {
            doc["_id"]: doc.get("title")
            for doc in retry_when_busy(lambda k=kind, i=ids: list(db[catalog(k)].find({"_id": {"$in": i}}, {"title": 1})))
        }
        for entry in entries:
            if kind in entry:
                entry["title"] = titles.get(entry[kind]) or f"(deleted {kind} {entry[kind]})"
