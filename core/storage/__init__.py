"""Storage: what core asks of the database behind any pymongo client; transactions, retry, names.

- `db`: `ensure_indexes`, `bulk_insert` and `bulk_write` (the one bulk-load path),
  `read_all`, `is_embedded`, `deployment` (a cache key naming the database without contacting it).
- `transactions`: `run_in_transaction`, the one way core writes.
- `retry`: bounded retry of the embedded engine's "busy" refusals.
- `documents`: UTC-aware reads, inserts in one command a collection; the engine's work-arounds, explained.
- `schema`: collection and field names, exactly as the seed has them, and the table of kinds of item.

Opening a database (a URI, or the embedded server) is the `database` package's work
(`database.open_database`).
"""

from core.storage import schema
from core.storage.db import bulk_insert, deployment, ensure_indexes, is_embedded
from core.storage.documents import utc
from core.storage.retry import retry_when_busy
from core.storage.transactions import run_in_transaction

__all__ = [
    "bulk_insert",
    "deployment",
    "ensure_indexes",
    "is_embedded",
    "retry_when_busy",
    "run_in_transaction",
    "schema",
    "utc",
]

