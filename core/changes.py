"""What changed and when: the data version, and the feed of the latest purchases and revocations.

`data_version` holds a counter that every change bumps in its own transaction, so a poller
learns whether anything changed from one point read. The feed is a ring of FEED_SIZE
documents: each change writes the slot `data version % FEED_SIZE` in the same transaction,
so the feed is a point write that never grows, and reading it is one small query, where
sorting `purchases` by time would scan the collection on the embedded engine.
"""

from datetime import UTC, datetime

from pymongo import ReplaceOne, ReturnDocument
from pymongo.database import Database

from core.errors import ValidationError
from core.storage.db import bulk_insert
from core.storage.documents import utc
from core.storage.retry import retry_when_busy
from core.storage.schema import ACTIVITY, DATA_VERSION, kind_of

VERSION_ID = "purchases"
FEED_SIZE = 50


def bump_version(db: Database, session, also: dict | None = None, *, expect: int | None = None, by: int = 1) -> int:
    """Tell pollers that purchases changed, in the same transaction; return the new version
    (`by` changes: the version moves by that many).

    `also`: more update operators for the same document in the same write (the rollups' notes,
    core.analytics.rollups.touched_update). `expect`: the version the transaction computed from
    its own earlier read of the document; inside a transaction it cannot differ (a write in
    between makes this one conflict on MongoDB, and mongoeco runs one transaction at a time),
    so a difference is a bug, refused rather than recorded.
    """
    update = {"$inc": {"version": by}, "$set": {"updatedAt": datetime.now(UTC)}}
    for operator, fields in (also or {}).items():
        update[operator] = {**update.get(operator, {}), **fields}
    doc = db[DATA_VERSION].find_one_and_update(
        {"_id": VERSION_ID},
        update,
        projection={"version": 1},
        upsert=True,
        return_document=ReturnDocument.AFTER,
        session=session,
    )
    if expect is not None and doc["version"] != expect + by - 1:
        raise RuntimeError(f"the data version moved inside a transaction: {expect + by - 1} expected, "
                           f"{doc['version']} found")
    return doc["version"]


def read_version(db: Database, fields: dict | None = None) -> dict:
    """The data version document (only `fields`, when given): one point read; version 0
    before the first change."""
    doc = retry_when_busy(lambda: utc(db)[DATA_VERSION].find_one({"_id": VERSION_ID}, fields))
    return {"version": 0, "rebuilding": False, **(doc or {"_id": VERSION_ID})}


def get_data_version(db: Database) -> int:
    """A number that changes whenever purchases change: one point read for pollers."""
    return read_version(db, {"version": 1})["version"]



def record_activity(db: Database, session, event: str, purchase: dict, at: datetime, user: dict, item: dict | None,
                    *, also: dict | None = None, expect: int | None = None) -> int:
    """Bump the data version (with `also`, `expect`: bump_version) and write this change into
    its feed slot; return the version."""
    return record_activities(db, session, [(event, purchase, at, user, item)], also=also, expect=expect)


def record_activities(db: Database, session, changes: list[tuple], *, also: dict | None = None,
                      expect: int | None = None) -> int:
    """record_activity of many changes ((event, purchase, at, user, item), in order), each its
    own version, in one bump; the feed keeps the last FEED_SIZE. Return the last version."""
    last = bump_version(db, session, also, expect=expect, by=len(changes))
    first = last - len(changes) + 1
    slots = [ReplaceOne({"_id": version % FEED_SIZE}, _feed_entry(version, *change), upsert=True)
             for version, change in enumerate(changes, start=first) if version > last - FEED_SIZE]
    db[ACTIVITY].bulk_write(slots, ordered=True, session=session)
    return last


def _feed_entry(version: int, event: str, purchase: dict, at: datetime, user: dict, item: dict | None) -> dict:
    kind = kind_of(purchase)
    return {
        "version": version,
        "event": event,
        "at": at,
        "purchase": purchase["_id"],
        "user": purchase["user"],
        "userName": user.get("name"),
        "kind": kind,
        "item": purchase[kind],
        "title": (item or {}).get("title"),
        "amount": purchase["amount"],
        "currency": purchase.get("currency"),
        "paymentMethod": purchase["paymentMethod"],
    }


def get_recent_activity(db: Database, limit: int = 20) -> list[dict]:
    """The latest purchases and revocations, newest first (at most FEED_SIZE)."""
    if isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= FEED_SIZE:
        raise ValidationError(f"limit must be an integer between 1 and {FEED_SIZE}, got {limit!r}")
    entries = retry_when_busy(lambda: list(utc(db)[ACTIVITY].find({}, {"_id": 0})))
    entries.sort(key=lambda e: e["version"], reverse=True)
    return entries[:limit]


def load_activity(db: Database, purchases: list[dict], users: dict, titles: dict) -> int:
    """Fill the feed with the newest of freshly bulk-loaded purchases; return how many.

    `users` maps user id to name, `titles` item id to title.
    """
    newest = sorted(purchases, key=lambda p: p["purchasedAt"])[-FEED_SIZE:]
    start = retry_when_busy(lambda: db[DATA_VERSION].find_one({"_id": VERSION_ID})) or {"version": 0}
    entries = []
    for offset, purchase in enumerate(newest, start=start["version"] + 1):
        kind = kind_of(purchase)
        entries.append({
            "_id": offset % FEED_SIZE, "version": offset, "event": "purchase", "at": purchase["purchasedAt"],
            "purchase": purchase["_id"], "user": purchase["user"], "userName": users.get(purchase["user"]),
            "kind": kind, "item": purchase[kind], "title": titles.get(purchase[kind]),
            "amount": purchase["amount"], "currency": purchase.get("currency"), "paymentMethod": purchase["paymentMethod"],
        })
    retry_when_busy(lambda: db[ACTIVITY].delete_many({}))
    bulk_insert(db, ACTIVITY, entries)
    retry_when_busy(lambda: db[DATA_VERSION].update_one(
        {"_id": VERSION_ID}, {"$set": {"version": start["version"] + len(entries)}}, upsert=True))
    return len(entries)
