"""How core reads and writes documents, and the embedded engine's work-arounds, explained once.

- **Datetimes come back aware, in UTC**, whatever client the caller brought: `utc(db)` is the
  same database seen with `tz_aware=True, tzinfo=UTC`. pymongo's default client is naive;
  every public core function reads through `utc(db)`, so core answers the same either way.
- **An insert is an upsert on a fresh `_id`** (`insert_new`): unmodified mongoeco 4.11 scanned
  the whole collection on `insert_one` (its unique-index check), less so on an upsert by `_id`.
  The embedded server corrects both (core.storage.mongoeco_corrections); the upsert stays, as
  it costs the same on MongoDB and keeps core right on an uncorrected engine too.
- **Read by `_id` or by one indexed field, then finish in Python**: mongoeco scans the
  collection for a filter on two fields or a sorted `$in` on `_id` (an unsorted one is
  corrected: core.storage.mongoeco_corrections). A user holds few
  purchases, so `find({"user": u})` and a filter here is cheap on both engines.
- **Bulk loads go through `core.storage.db.bulk_insert`**: over the wire mongoeco turns
  `insert_many` into single inserts; in-process it is fast.
- **Busy refusals are retried in one place** (`core.storage.retry`): mongoeco runs one
  transaction at a time and refuses every other operation meanwhile.
"""

from datetime import UTC

from pymongo import UpdateOne
from pymongo.database import Database

ID_BATCH = 200  # ids in one `$in`: MongoDB limits a command to 16 MB, mongoeco an expression's depth


def utc(db: Database) -> Database:
    """`db` with datetimes decoded as aware UTC datetimes, whatever the client's options."""
    options = db.codec_options
    if options.tz_aware and options.tzinfo is UTC:
        return db
    return db.with_options(codec_options=options.with_options(tz_aware=True, tzinfo=UTC))


def insert_new(db: Database, collection: str, document: dict, session) -> None:
    """Insert a document with a fresh `_id` (as an upsert: see the module's notes)."""
    insert_all(db, collection, [document], session)


def insert_all(db: Database, collection: str, documents: list[dict], session) -> None:
    """Insert documents with fresh `_id`s, in one command (as upserts: see the module's notes);
    an `_id` already there is refused and nothing of the command is kept by the transaction."""
    result = db[collection].bulk_write(
        [UpdateOne({"_id": doc["_id"]}, {"$setOnInsert": {k: v for k, v in doc.items() if k != "_id"}}, upsert=True)
         for doc in documents],
        ordered=True,
        session=session,
    )
    if result.upserted_count != len(documents):
        new = set(result.upserted_ids.values())
        taken = next(doc["_id"] for doc in documents if doc["_id"] not in new)
        raise RuntimeError(f"{collection} already holds a document with _id {taken!r}")
