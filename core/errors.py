"""Domain errors of the purchase system: the only errors callers are expected to show."""

from pymongo.errors import ConnectionFailure


class PurchaseError(Exception):
    """Base of every error the purchase system raises on purpose."""


class ValidationError(PurchaseError, ValueError):
    """An argument was malformed or out of range; nothing was written."""


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
