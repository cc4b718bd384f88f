"""The one way core/ writes: a function run inside a single MongoDB transaction."""

from pymongo.database import Database
from pymongo.read_concern import ReadConcern
from pymongo.write_concern import WriteConcern

from core.storage.retry import retry_when_busy


def run_in_transaction(db: Database, work):
    """Run `work(session)` in one transaction and return its result.

    Everything `work` writes commits together or not at all. pymongo's
    `with_transaction` retries transient conflicts; `retry_when_busy` adds the
    embedded engine's "another transaction is open" refusal.
    """

    def attempt():
        with db.client.start_session() as session:
            return session.with_transaction(
                work,
                read_concern=ReadConcern("snapshot"),
                write_concern=WriteConcern("majority"),
            )

    return retry_when_busy(attempt)
