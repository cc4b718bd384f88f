"""The dashboard's data layer: reads through core/, returns display-ready values."""

from dataclasses import dataclass

from pymongo.database import Database

from core.retry import retry_when_busy
from core.schema import PURCHASES, USERS


@dataclass(frozen=True)
class Totals:
    users: int
    purchases: int
    revenue: float


def database_totals(db: Database) -> Totals:
    """Count users and purchases and sum revenue over active purchases."""
    rows = retry_when_busy(
        lambda: list(db[PURCHASES].aggregate([{"$group": {"_id": None, "revenue": {"$sum": "$amount"}, "n": {"$sum": 1}}}]))
    )
    revenue, purchases = (rows[0]["revenue"], rows[0]["n"]) if rows else (0.0, 0)
    users = retry_when_busy(lambda: db[USERS].estimated_document_count())
    return Totals(users=users, purchases=purchases, revenue=revenue)


def money(amount: float, currency: str) -> str:
    """Format an amount with its currency, rounded to cents for display only."""
    return f"{amount:,.2f} {currency}"
