"""Storage: opening the database, the embedded server, transactions, retry, names.

- `db`: `open_database` (a MongoDB URI, or the embedded mongoeco server under a data
  folder), `ensure_indexes`, `bulk_insert` (the one bulk-load path), `is_embedded`,
  `deployment` (a cache key naming the database without contacting it).
- `engine_queue`: the embedded server's fair line and transaction lifetime.
- `embedded`: mongoeco's wire server on loopback, in a thread.
- `transactions`: `run_in_transaction`, the one way core writes.
- `retry`: bounded retry of the embedded engine's "busy" refusals.
- `documents`: UTC-aware reads, inserts in one command a collection; the engine's work-arounds, explained.
- `schema`: collection and field names, exactly as the seed has them.
"""

from core.storage import schema
from core.storage.db import OpenDatabase, bulk_insert, deployment, ensure_indexes, is_embedded, open_database
from core.storage.documents import utc
from core.storage.embedded import EmbeddedServer
from core.storage.retry import retry_when_busy
from core.storage.transactions import run_in_transaction

__all__ = [
    "EmbeddedServer",
    "OpenDatabase",
    "bulk_insert",
    "deployment",
    "ensure_indexes",
    "is_embedded",
    "open_database",
    "retry_when_busy",
    "run_in_transaction",
    "schema",
    "utc",
]
