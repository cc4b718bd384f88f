"""Domain errors of the purchase system: the only errors callers are expected to show."""

from pymongo.errors import ConnectionFailure, PyMongoError, ServerSelectionTimeoutError


class PurchaseError(Exception):
    """Base of every error the purchase system raises on purpose."""


class ValidationError(PurchaseError, ValueError):
    """An argument was malformed or out of range; nothing was written.

    `field` names the argument (`amount`, `user_id`, `startDate`, ...) when one is to blame,
    so a form or an API can point at it without reading the message.
    """

    def __init__(self, message: str = "", *, field: str | None = None):
        super().__init__(message)
        self.field = field


class IdempotencyConflictError(ValidationError):
    """An idempotency key already stands for another request (other parameters, or a grant
    where this is a revocation); nothing was written. Use a new key for a new request."""


class UserNotFoundError(PurchaseError, LookupError):
    """The user id names no document in `users`."""


class ItemNotFoundError(PurchaseError, LookupError):
    """The course or test id names no document in the catalog."""


class AlreadyPurchasedError(PurchaseError):
    """The user already owns the item."""


class NotPurchasedError(PurchaseError):
    """The user does not own the item."""


class DatabaseUnavailableError(PurchaseError, ConnectionFailure):
    """The database could not be reached, or stayed busy, within the time allowed.

    Also a pymongo ConnectionFailure carrying the driver's own message, so code that catches
    the driver's errors catches it too. Its two kinds say which it was, by type:
    DatabaseUnreachableError and DatabaseTooSlowError (`unavailable_type` sorts a driver's
    error the same way). A change that failed this way may or may not have committed:
    retrying it with the same idempotencyKey is safe.
    """


class DatabaseUnreachableError(DatabaseUnavailableError):
    """No server answered at all: the connection was refused, reset or closed, or none could be
    selected. Showing stale figures with an outage banner is right; waiting longer is not."""


class DatabaseTooSlowError(DatabaseUnavailableError):
    """The database is there but a time limit passed first: the caller's, the operation's, or
    that of waiting for it to stop being busy. Trying again in a moment is right."""


def unavailable_type(error: BaseException) -> type[DatabaseUnavailableError] | None:
    """Which of our database errors `error` stands for, by its type alone (never its text):
    DatabaseUnreachableError for a server that cannot be reached (pymongo's
    ServerSelectionTimeoutError, AutoReconnect and other ConnectionFailures), DatabaseTooSlowError
    for a time limit that passed (NetworkTimeout, ExecutionTimeout, any error whose `timeout` is
    true), our own error's type as it is, and None for anything that is not about reaching the
    database."""
    if isinstance(error, DatabaseUnavailableError):
        return type(error)
    if isinstance(error, ServerSelectionTimeoutError):  # its `timeout` is true too: no server was found in time
        return DatabaseUnreachableError
    if isinstance(error, PyMongoError) and error.timeout:
        return DatabaseTooSlowError
    if isinstance(error, ConnectionFailure):
        return DatabaseUnreachableError
    return None
