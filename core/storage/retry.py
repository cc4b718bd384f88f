"""Every database call of core/ ends within a bound, and fails with one error when it must.

`retry_when_busy` retries, jittered, what the database refused because it was busy: mongoeco
refuses every other operation while a transaction is open (with an error not labelled
transient, so pymongo does not retry it). The embedded server's fair line
(core.storage.engine_queue) makes such refusals rare (the in-process bulk path still meets
them); MongoDB never sends them, so on a replica set this code never waits for that. It
also retries what MongoDB calls passing (a primary stepping down, a host unreachable for a
moment, an error labelled transient) once pymongo's own single retry of a read has failed
too. A database that cannot be reached, or does not answer in time, surfaces as
DatabaseUnavailableError: DatabaseUnreachableError or DatabaseTooSlowError by the driver
error's type.

The bound is the caller's: what remains of a `pymongo.timeout(...)` in force around the
call (the app sets one per request from DB_TIMEOUT), else DEADLINE_SECONDS.
"""

import random
import time

from pymongo import _csot  # the deadline of pymongo.timeout; pymongo has no public reader
from pymongo.errors import ConnectionFailure, ExecutionTimeout, OperationFailure, PyMongoError

from core.errors import DatabaseTooSlowError, DatabaseUnavailableError, unavailable_type

# mongoeco's refusal while another session's transaction is open, and SQLite's own
# "database is locked" when its busy timeout runs out under load
BUSY_MESSAGES = ("active transaction bound to another session", "database is locked")
# the retryable reads and writes specifications' codes (pymongo's helpers_shared); those
# of a primary that is not one any more arrive as NotPrimaryError, a ConnectionFailure
TRANSIENT_CODES = frozenset({6, 7, 89, 91, 134, 189, 262, 9001, 10107, 11600, 11602, 13435, 13436})
TRANSIENT_LABELS = ("TransientTransactionError", "RetryableWriteError")
UNKNOWN_COMMIT = "UnknownTransactionCommitResult"
DEADLINE_SECONDS = 10.0
FIRST_DELAY = 0.002
MAX_DELAY = 0.1


def is_busy(error: Exception) -> bool:
    """True when the engine refused because another session holds a transaction."""
    return any(message in str(error) for message in BUSY_MESSAGES)


def is_transient(error: Exception) -> bool:
    """True for a server error that says trying again may work, and that nothing was committed."""
    if not isinstance(error, OperationFailure) or error.has_error_label(UNKNOWN_COMMIT):
        return False
    return error.code in TRANSIENT_CODES or any(error.has_error_label(label) for label in TRANSIENT_LABELS)


def bound() -> float:
    """Seconds a database call may still take: the rest of the caller's `pymongo.timeout`,
    else DEADLINE_SECONDS."""
    remaining = _csot.remaining()
    return DEADLINE_SECONDS if remaining is None else max(remaining, 0.0)


def retry_when_busy(operation, *, deadline: float | None = None):
    """Call `operation()` until it does not fail with a busy or transient error, for at most
    `deadline` s (None: `bound()`).

    Raises DatabaseUnavailableError when the database stays busy that long, cannot be
    reached (DatabaseUnreachableError), does not answer within the operation's time limit
    (DatabaseTooSlowError), or cannot say whether a transaction committed (it is never run
    again then).
    """
    deadline = bound() if deadline is None else deadline
    give_up_at = time.monotonic() + deadline
    delay = FIRST_DELAY
    while True:
        try:
            return operation()
        except DatabaseUnavailableError:
            raise
        except (ConnectionFailure, ExecutionTimeout) as error:
            raise unavailable(error) from error
        except Exception as error:  # noqa: BLE001 - pymongo's and mongoeco's own error types
            if isinstance(error, PyMongoError) and error.has_error_label(UNKNOWN_COMMIT):
                raise unavailable(error) from error
            if not is_busy(error) and not is_transient(error):
                raise
            if time.monotonic() >= give_up_at:
                raise DatabaseTooSlowError(
                    f"The database stayed busy for {deadline:g} s ({error}); try again in a moment") from error
        time.sleep(random.uniform(0, delay))
        delay = min(MAX_DELAY, delay * 2)


def unavailable(error: Exception) -> DatabaseUnavailableError:
    """The driver's error as ours, its message kept: DatabaseUnreachableError or
    DatabaseTooSlowError as its type says (core.errors.unavailable_type), never its text."""
    kind = unavailable_type(error) or DatabaseUnavailableError
    if isinstance(error, PyMongoError) and error.has_error_label(UNKNOWN_COMMIT):
        return kind(
            f"The database did not confirm the change ({error}): it may or may not have been saved. "
            "Retrying it with the same idempotencyKey is safe")
    return kind(f"The database did not answer: {error}. Check that it is running, then try again")
