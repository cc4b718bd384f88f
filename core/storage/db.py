"""What core asks of the database behind any pymongo client: which one it is (a cache key,
whether it is the embedded engine), its indexes, and bulk loads and full reads.

Opening one (a MongoDB URI, or the embedded server) is not core's work: `database` does it
and hands core a pymongo `Database`.
"""

import re
import threading
import uuid
from datetime import datetime

from bson import Binary, Decimal128, Int64, MaxKey, MinKey, ObjectId, Regex, Timestamp
from pymongo import ASCENDING, DESCENDING
from pymongo.database import Database

from core.storage.retry import retry_when_busy
from core.storage.schema import AUDIT, KINDS, PURCHASES, REVOKED

# A faster path for bulk loads into a server of this process, by its (host, port): the
# embedded server registers its in-process client here (its insert_many skips the
# per-document scan the wire path costs). `run(coroutine_function)` runs
# `coroutine_function(client)` on that client and returns its result.
_IN_PROCESS: dict[tuple[str, int], object] = {}
_IN_PROCESS_LOCK = threading.Lock()


def register_in_process(address: tuple[str, int], run) -> None:
    """Bulk loads to the server at `address` go through `run` (see _IN_PROCESS) from now on."""
    with _IN_PROCESS_LOCK:
        _IN_PROCESS[address] = run


def unregister_in_process(address: tuple[str, int]) -> None:
    with _IN_PROCESS_LOCK:
        _IN_PROCESS.pop(address, None)


def deployment(db: Database) -> tuple:
    """Which database a handle names, for cache keys: its servers' addresses and its name.

    Unlike `client.address`, this never waits for a server, so a cache lookup still answers
    while the database is down.
    """
    return (frozenset(db.client.topology_description.server_descriptions()), db.name)


def is_embedded(db: Database) -> bool:
    """True when the server is mongoeco, whose unique secondary indexes scan on every write."""
    hello = retry_when_busy(lambda: db.client.admin.command("hello"))
    return hello.get("gitVersion") == "mongoeco"


def ensure_indexes(db: Database) -> None:
    """Create the indexes the queries need; idempotent, cheap when they exist."""
    retry_when_busy(lambda: _create_indexes(db, unique_guards=not is_embedded(db)))


def _create_indexes(db: Database, *, unique_guards: bool) -> None:
    db[PURCHASES].create_index([("user", ASCENDING), ("purchasedAt", DESCENDING)])
    db[PURCHASES].create_index([("purchasedAt", ASCENDING)])
    db[REVOKED].create_index([("user", ASCENDING), ("purchasedAt", DESCENDING)])
    db[REVOKED].create_index([("revokedAt", ASCENDING)])
    db[AUDIT].create_index([("at", DESCENDING)])
    db[AUDIT].create_index([("user", ASCENDING), ("at", DESCENDING)])
    if unique_guards:
        # A second guard behind the per-user write conflict. mongoeco checks a unique
        # secondary index by scanning the collection on every write, so not there.
        for item in KINDS:
            db[PURCHASES].create_index(
                [("user", ASCENDING), (item, ASCENDING)],
                unique=True,
                partialFilterExpression={item: {"$exists": True}},
                name=f"user_{item}_unique",
            )


def bulk_insert(db: Database, collection: str, documents: list[dict], *, skip_existing: bool = False) -> int:
    """Insert many documents at once, outside any transaction; return how many were inserted.

    With `skip_existing`, documents whose `_id` is already there are left out instead of
    failing the batch: a re-run after a crash inserts only what is missing. On an embedded
    server of this process, mongoeco's in-process insert_many; elsewhere pymongo's
    insert_many. The caller keeps the data consistent.
    """
    if not documents:
        return 0

    try:
        _bulk(db, collection, "insert_many", documents, ordered=not skip_existing)
        return len(documents)
    except Exception as error:  # noqa: BLE001 - pymongo's and mongoeco's BulkWriteError
        errors = (getattr(error, "details", None) or {}).get("writeErrors") or [{}]
        if not skip_existing or any(e.get("code") != DUPLICATE_KEY for e in errors):
            raise
        return len(documents) - len(errors)


def bulk_write(db: Database, collection: str, requests: list) -> int:
    """Apply many pymongo write models (UpdateOne, DeleteOne, ...) at once, unordered,
    outside any transaction, by the same path as bulk_insert; return how many."""
    if requests:
        _bulk(db, collection, "bulk_write", requests, ordered=False)
    return len(requests)


DUPLICATE_KEY = 11000

# $type names in MongoDB's order for comparing and sorting values of different types (an
# _id is never an array): the order in which read_all meets them
_ID_TYPES = (("minKey",), ("null",), ("double", "int", "long", "decimal"), ("string", "symbol"), ("object",),
             ("binData",), ("objectId",), ("bool",), ("date",), ("timestamp",), ("regex",), ("maxKey",))


def read_all(db: Database, collection: str, projection: dict | None = None, *, after=None, page: int = 10_000):
    """Every document of a collection (with `_id` greater than `after`), in `_id` order, read
    `page` at a time: `_id` greater than the last one read, sorted, limited (a `projection`
    keeps `_id`).

    One query for them all would not stream on the embedded engine: its wire server computes
    a whole answer before the first batch (300,000 purchases held at once, 240 MB). MongoDB
    compares values of one type only, so when a type runs out the read goes on with the
    types that sort after it; mongoeco compares across types and finds nothing more there.
    """
    query = {} if after is None else {"_id": {"$gt": after}}
    while True:
        docs = retry_when_busy(lambda q=query: list(db[collection].find(q, projection).sort("_id", 1).limit(page)))
        yield from docs
        if len(docs) == page:
            query = {"_id": {"$gt": docs[-1]["_id"]}}
            continue
        if "$gt" not in query.get("_id", {}):
            return  # {} or the types after one: nothing is left
        last = docs[-1]["_id"] if docs else query["_id"]["$gt"]
        later = [name for group in _ID_TYPES[_type_rank(last) + 1 :] for name in group]
        if not later:
            return
        query = {"_id": {"$type": later}}


_PYTHON_TYPES = ((bool, "bool"), (type(None), "null"), ((int, float, Int64, Decimal128), "double"), (str, "string"),
                 (dict, "object"), ((bytes, Binary, uuid.UUID), "binData"), (ObjectId, "objectId"), (datetime, "date"),
                 (Timestamp, "timestamp"), ((Regex, re.Pattern), "regex"), (MinKey, "minKey"), (MaxKey, "maxKey"))


def _type_rank(value) -> int:
    """The place of a value's type in _ID_TYPES (bool before int: it is one in Python)."""
    name = next((name for kinds, name in _PYTHON_TYPES if isinstance(value, kinds)), "maxKey")
    return next(rank for rank, group in enumerate(_ID_TYPES) if name in group)


def _bulk(db: Database, collection: str, method: str, *args, **kwargs):
    """`collection.method(*args, **kwargs)` on the in-process client of a local embedded server, else pymongo's."""
    run_in_process = _IN_PROCESS.get(db.client.address)
    if run_in_process is None:
        return retry_when_busy(lambda: getattr(db[collection], method)(*args, **kwargs))
    name = db.name

    async def run(client):
        return await getattr(client[name][collection], method)(*args, **kwargs)

    return retry_when_busy(lambda: run_in_process(run))
