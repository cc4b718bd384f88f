"""Domain errors of the purchase system: the only errors callers are expected to show."""


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
