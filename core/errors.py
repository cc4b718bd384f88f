"""Domain errors of the purchase system: the only errors callers are expected to show."""

from pymongo.errors import ConnectionFailure


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

    Also a pymongo ConnectionFailure carrying the driver's own message, so code that tells
    an unreachable server (refused, reset) from a slow one keeps working. A change that
    failed this way may or may not have committed: retrying it with the same
    idempotencyKey is safe.
    """
