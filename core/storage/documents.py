"""How core reads and writes documents, and the embedded engine's work-arounds, explained once.

- **Datetimes come back aware, in UTC**, whatever client the caller brought: `utc(db)` is the
  same database seen with `tz_aware=True, tzinfo=UTC`. pymongo's default client is naive;
  every public core function reads through `utc(db)`, so core answers the same either way.
- **Inserts are `insert_many`, one command for all of a transaction's documents of a
  collection** (`insert_all`): unmodified mongoeco 4.11 scanned the whole collection on each
  insert (its unique-index check); the embedded server corrects that
  (database.corrections), and an insert then costs a quarter less than the
  upsert on a fresh `_id` core used before (2.8 against 3.8 ms a document in a transaction).
- **Read by `_id` or by one indexed field, then finish in Python**: mongoeco scans the
  collection for a filter on two fields or a sorted `$in` on `_id` (an unsorted one is
  corrected: database.corrections). A user holds few
  purchases, so `find({"user": u})` and a filter here is cheap on both engines.
- **Bulk loads go through `core.storage.db.bulk_insert`**: over the wire mongoeco turns
  `insert_many` into single inserts; in-process it is fast.
- **Busy refusals are retried in one place** (`core.storage.retry`): mongoeco runs one
  transaction at a time and refuses every other operation meanwhile.
"""

from datetime import UTC

from pymongo.database import Database
from pymongo.errors import BulkWriteError

DUPLICATE_KEY = 11000
ID_BATCH = 200  # ids in one `$in`: MongoDB limits a command to 16 MB, mongoeco an expression's depth


def utc(db: Database) -> Database:
    """`db` with datetimes decoded as aware UTC datetimes, whatever the client's options."""
    options = db.codec_options
    if options.tz_aware and options.tzinfo is UTC:
        return db
    return db.with_options(codec_options=options.with_options(tz_aware=True, tzinfo=UTC))


def insert_new(db: Database, collection: str, document: dict, session) -> None:
    """Insert a document with a fresh `_id`."""
    insert_all(db, collection, [document], session)


def insert_all(db: Database, collection: str, documents: list[dict], session) -> None:
    """Insert documents with fresh `_id`s in one command; an `_id` already there is refused
    (RuntimeError) and the transaction keeps nothing of the command."""
    try:
        db[collection].insert_many(documents, ordered=True, session=session)
    except BulkWriteError as error:
        duplicates = [e for e in error.details.get("writeErrors", []) if e.get("code") == DUPLICATE_KEY]
        if not duplicates:
            raise
        taken = documents[duplicates[0]["index"]]["_id"]
        raise RuntimeError(f"{collection} already holds a document with _id {taken!r}") from error
