"""The one way core/ writes: a function run inside a single MongoDB transaction."""

import time

import pymongo
from pymongo.database import Database
from pymongo.read_concern import ReadConcern
from pymongo.write_concern import WriteConcern

from core.storage.retry import bound, retry_when_busy

# The `comment` of a transaction's first command when the transaction only reads: the
# embedded server's line serves such snapshots ahead of the writers (core.storage.
# engine_queue); on MongoDB it is only a comment, in the logs.
READ_ONLY_COMMENT = "read-only snapshot"
ABORT_MARGIN = 1.0  # seconds of a transaction's bound kept for its abort (a quarter at most)


def run_in_transaction(db: Database, work, *, timeout: float | None = None):
    """Run `work(session)` in one transaction and return its result, within `timeout` seconds
    (None: `retry.bound()`, the caller's pymongo.timeout or 10 s; pymongo's with_transaction
    alone would retry for 120 s).

    Everything `work` writes commits together or not at all. pymongo's
    `with_transaction` retries transient conflicts; `retry_when_busy` adds the
    embedded engine's "another transaction is open" refusal, and turns a database that
    is down or too slow into DatabaseUnavailableError.
    """

    timeout = bound() if timeout is None else timeout
    # The transaction's own commands end `margin` before the bound, so that the abort that
    # follows a failure still has time to reach the server: sent after the bound, pymongo
    # drops it, and the embedded engine stays held by the open transaction until it is
    # aborted for its age (60 s), every other caller waiting.
    margin = min(ABORT_MARGIN, timeout / 4)
    work_ends = time.monotonic() + timeout - margin

    def bounded(session):
        with pymongo.timeout(max(work_ends - time.monotonic(), 0.001)):
            return work(session)

    def attempt():
        with db.client.start_session() as session:
            return session.with_transaction(
                bounded,
                read_concern=ReadConcern("snapshot"),
                write_concern=WriteConcern("majority"),
            )

    with pymongo.timeout(timeout):
        return retry_when_busy(attempt, deadline=timeout)
