"""The hybrid purchase system: ownership arrays on users, history in `purchases`."""

from core.analytics import get_purchase_analytics
from core.db import OpenDatabase, bulk_insert, ensure_indexes, open_database
from core.errors import (
    AlreadyPurchasedError,
    ItemNotFoundError,
    NotPurchasedError,
    PurchaseError,
    UserNotFoundError,
    ValidationError,
)
from core.history import get_purchase_history
from core.purchases import create_purchase, has_purchased, remove_purchase
from core.rollups import get_data_version

__all__ = [
    "AlreadyPurchasedError",
    "ItemNotFoundError",
    "NotPurchasedError",
    "OpenDatabase",
    "PurchaseError",
    "UserNotFoundError",
    "ValidationError",
    "bulk_insert",
    "create_purchase",
    "ensure_indexes",
    "get_data_version",
    "get_purchase_analytics",
    "get_purchase_history",
    "has_purchased",
    "open_database",
    "remove_purchase",
]
