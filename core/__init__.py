"""The hybrid purchase system: ownership arrays on users, history in `purchases`.

Its public API is this module; `core.storage` and `core.operations` are documented
sub-packages for scripts and the app. Every function takes a pymongo `Database` first,
from any client (tz-aware or not); those that need settings take `settings=CoreSettings`.

Layers, lowest first: `storage` (database, transactions, retry, names), `validation`,
`changes` (data version, activity feed), `audit` (the audit log), `analytics` (rollups,
queries), `purchases` (commands, history), `operations` (consistency, rebuild, demo, bulk).
Beside them, for admin forms: `catalog` (courses and tests) and `customers` (lookups and
the type-ahead index).
"""

from core.analytics.cohorts import cohort_figures
from core.analytics.queries import buyer_figures, get_purchase_analytics, purchase_figures
from core.analytics.retention import retention_figures
from core.audit import SOURCES, get_audit_log
from core.changes import FEED_SIZE, get_data_version, get_recent_activity
from core.customers import get_customer, owned_items
from core.errors import (
    AlreadyPurchasedError,
    DatabaseUnavailableError,
    IdempotencyConflictError,
    ItemNotFoundError,
    NotPurchasedError,
    PurchaseError,
    UserNotFoundError,
    ValidationError,
)
from core.items import ItemRef
from core.purchases.commands import (
    GrantRequest,
    Outcome,
    create_purchase,
    get_owned_items,
    has_purchased,
    purchase_item,
    purchase_items,
    remove_purchase,
    revoke_item,
)
from core.purchases.history import get_purchase_history, get_purchase_history_page
from core.settings import DEFAULT_SETTINGS, CoreSettings
from core.storage import bulk_insert, ensure_indexes

__all__ = [
    "DEFAULT_SETTINGS",
    "FEED_SIZE",
    "SOURCES",
    "AlreadyPurchasedError",
    "CoreSettings",
    "DatabaseUnavailableError",
    "GrantRequest",
    "IdempotencyConflictError",
    "ItemRef",
    "ItemNotFoundError",
    "NotPurchasedError",
    "Outcome",
    "PurchaseError",
    "UserNotFoundError",
    "ValidationError",
    "buyer_figures",
    "cohort_figures",
    "bulk_insert",
    "create_purchase",
    "ensure_indexes",
    "get_audit_log",
    "get_customer",
    "get_data_version",
    "get_owned_items",
    "get_purchase_analytics",
    "get_purchase_history",
    "get_purchase_history_page",
    "get_recent_activity",
    "has_purchased",
    "owned_items",
    "purchase_figures",
    "purchase_item",
    "purchase_items",
    "remove_purchase",
    "retention_figures",
    "revoke_item",
]


def __getattr__(name: str):
    # `core.open_database(data_dir=..., uri=...)` and `core.OpenDatabase`: the contract other
    # programs call, which opening moved to the `database` package; resolved on first use, so
    # that core itself never imports the embedded server
    if name in ("open_database", "OpenDatabase"):
        import database

        return getattr(database, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
