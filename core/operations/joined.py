"""Every user beside their purchases, streamed in chunks of users: memory does not grow with the data.

Checking or migrating the whole database cannot hold it in memory, and cannot ask for each
user's purchases one query at a time (on the embedded engine a query by user costs a scan).
Nor can it read each collection with one cursor sorted by user: a server answers a sorted
query from an index (MongoDB: `_id`, and `(user, purchasedAt)` for purchases), but the
embedded engine sorts the whole collection, and its wire server computes every answer whole
before the first batch leaves (mongoeco 4.11 keeps the rest of a find's result in memory
for getMore): 300,000 purchases sorted by user cost it minutes and hundreds of MB.

So users are read CHUNK at a time in `_id` order (`_id` greater than the last one read,
sorted, limited), each chunk with the purchases of the same range of `user`, which are
sorted here: two queries per chunk, each served by an index on MongoDB (`_id`; the
`(user, purchasedAt)` prefix), a scan of the collection on the embedded engine (2 to 3 s per
chunk at 100,000 users and 300,000 purchases). Memory holds one chunk, whatever the size
of the data; larger chunks mean fewer scans.
"""

from collections.abc import Iterator
from datetime import datetime

from bson import ObjectId
from pymongo.database import Database

from core.storage.retry import retry_when_busy
from core.storage.schema import PURCHASES, USERS

CHUNK = 20_000  # users per chunk (and their purchases): what one chunk holds in memory
BATCH = 5000  # documents per round trip


def users_with_purchases(db: Database, *, after: ObjectId | None = None, user_fields: dict | None = None,
                         purchase_fields: dict | None = None, chunk: int | None = None) -> Iterator[tuple[dict | None, list[dict]]]:
    """Yield (user, their purchases) for every user after `after` in `_id` order, and
    (None, purchases) for purchases whose user does not exist, in the same order.

    A user's purchases come newest first. Users whose `_id` is not an ObjectId are left
    out, and so are purchases whose `user` is not an ObjectId (the callers report them).
    """
    chunk = chunk or CHUNK
    if purchase_fields is not None:
        purchase_fields = {**purchase_fields, "user": 1}
    low = after  # users and purchases after this id are still to come
    while True:
        query = {"_id": {"$gt": low}} if low is not None else {"_id": {"$type": "objectId"}}
        users = _read(db, USERS, query, user_fields, sort="_id", limit=chunk)
        high = users[-1]["_id"] if len(users) == chunk else None  # None: the last chunk
        purchases = [p for p in _read(db, PURCHASES, _id_range("user", low, high), purchase_fields)
                     if isinstance(p.get("user"), ObjectId)]
        purchases.sort(key=lambda p: _in_type_order(p.get("purchasedAt")), reverse=True)
        purchases.sort(key=lambda p: p["user"])  # stable: newest first within a user
        yield from _merge([user for user in users if isinstance(user["_id"], ObjectId)], purchases)
        if high is None:
            return
        low, users, purchases = high, None, None  # one chunk in memory at a time, not two


def _id_range(field: str, low, high) -> dict:
    """ObjectIds in (low, high]; no bound where None."""
    bounds = {}
    if low is not None:
        bounds["$gt"] = low
    if high is not None:
        bounds["$lte"] = high
    return {field: bounds or {"$type": "objectId"}}


def _read(db: Database, collection: str, query: dict, fields: dict | None, *, sort: str | None = None,
          limit: int = 0) -> list[dict]:
    def read():
        cursor = db[collection].find(query, fields, limit=limit).batch_size(BATCH)
        return list(cursor.sort(sort, 1) if sort else cursor)

    return retry_when_busy(read)


def _in_type_order(moment):
    """A sort key ordering values as MongoDB does across types: missing or null, numbers,
    strings, others, dates (a legacy date stored as a string sorts below a real one)."""
    if moment is None:
        return (0, 0)
    if isinstance(moment, int | float) and not isinstance(moment, bool):
        return (1, moment if moment == moment else float("-inf"))  # NaN first, as MongoDB
    if isinstance(moment, str):
        return (2, moment)
    if isinstance(moment, datetime):
        return (4, moment.timestamp())
    return (3, repr(moment))


def _merge(users: list[dict], purchases: list[dict]) -> Iterator[tuple[dict | None, list[dict]]]:
    """Users (by `_id`) merged with purchases (by `user`): each user with their run of purchases,
    and each run of purchases of a user not in the list on its own, in `_id` order."""
    position = 0
    for user in users:
        while position < len(purchases) and purchases[position]["user"] < user["_id"]:
            orphans, position = _run(purchases, position)
            yield None, orphans
        mine = []
        if position < len(purchases) and purchases[position]["user"] == user["_id"]:
            mine, position = _run(purchases, position)
        yield user, mine
    while position < len(purchases):
        orphans, position = _run(purchases, position)
        yield None, orphans


def _run(purchases: list[dict], start: int) -> tuple[list[dict], int]:
    """The purchases of `purchases[start]`'s user, and where the next user's start."""
    end = start + 1
    while end < len(purchases) and purchases[end]["user"] == purchases[start]["user"]:
        end += 1
    return purchases[start:end], end
