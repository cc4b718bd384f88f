"""The latest purchases and revocations, for a live feed: a ring of FEED_SIZE documents.

Each change writes the slot `data version % FEED_SIZE` in its own transaction, so the feed
is a point write that never grows, and reading it is one small query, where sorting
`purchases` by time would scan the collection on the embedded engine.
"""

from datetime import datetime

from pymongo.database import Database

from core.db import bulk_insert
from core.retry import retry_when_busy
from core.rollups import VERSION_ID, bump_version
from core.schema import ACTIVITY, DATA_VERSION, kind_of

FEED_SIZE = 50


def record_activity(db: Database, session, event: str, purchase: dict, at: datetime, user: dict, item: dict | None) -> int:
    """Bump the data version and write this change into its feed slot; return the version."""
    version = bump_version(db, session)
    kind = kind_of(purchase)
    entry = {
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
    db[ACTIVITY].replace_one({"_id": version % FEED_SIZE}, entry, upsert=True, session=session)
    return version


def get_recent_activity(db: Database, limit: int = 20) -> list[dict]:
    """The latest purchases and revocations, newest first (at most FEED_SIZE)."""
    entries = retry_when_busy(lambda: list(db[ACTIVITY].find({}, {"_id": 0})))
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
