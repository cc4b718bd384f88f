"""The one way core/ writes: a function run inside a single MongoDB transaction."""

import pymongo
from pymongo.database import Database
from pymongo.read_concern import ReadConcern
from pymongo.write_concern import WriteConcern

from core.storage.retry import bound, retry_when_busy

# The `comment` of a transaction's first command when the transaction only reads: the
# embedded server's line serves such snapshots ahead of the writers (core.storage.
# engine_queue); on MongoDB it is only a comment, in the logs.
READ_ONLY_COMMENT = "read-only snapshot"


def run_in_transaction(db: Database, work, *, timeout: float | None = None):
    """Run `work(session)` in one transaction and return its result, within `timeout` seconds
    (None: `retry.bound()`, the caller's pymongo.timeout or 10 s; pymongo's with_transaction
    alone would retry for 120 s).

    Everything `work` writes commits together or not at all. pymongo's
    `with_transaction` retries transient conflicts; `retry_when_busy` adds the
    embedded engine's "another transaction is open" refusal, and turns a database that
    is down or too slow into DatabaseUnavailableError.
    """

    def attempt():
        with db.client.start_session() as session:
            return session.with_transaction(
                work,
                read_concern=ReadConcern("snapshot"),
                write_concern=WriteConcern("majority"),
            )

    timeout = bound() if timeout is None else timeout
    with pymongo.timeout(timeout):
        return retry_when_busy(attempt, deadline=timeout)
