"""How every page writes what it shows: local times, money, payment methods, revocation
reasons, and the ids of a card's parts. The one place where a UTC datetime becomes a time
in the dashboard's zone."""

from datetime import date, datetime
from zoneinfo import ZoneInfo

METHOD_LABELS = {"credit_card": "Credit card", "paypal": "PayPal", "stripe": "Stripe",
                 "bank_transfer": "Bank transfer", "admin_grant": "Admin grant"}
# a revocation's reason as people read it; the API writes "granted_by_mistake", the page "granted by mistake"
REASON_LABELS = {"refund": "Refund", "chargeback": "Chargeback", "granted by mistake": "Granted by mistake",
                 "granted_by_mistake": "Granted by mistake", "other": "Other"}


def local_time(moment: datetime, tz: ZoneInfo, pattern: str = "%H:%M:%S") -> str:
    """`moment` in the dashboard's time zone, written with `pattern`."""
    return moment.astimezone(tz).strftime(pattern)


def today_in(tz: ZoneInfo, now: datetime) -> date:
    """The date it is at `now` in the dashboard's time zone."""
    return now.astimezone(tz).date()


def money_text(amount: float, currency: str) -> str:
    """Money for display: cents, thousands separators, the currency; never "-0.00"."""
    amount = 0.0 if abs(amount) < 0.005 else amount
    return f"{amount:,.2f} {currency}"


def change_money_text(amount: float, currency: str, revoked: bool) -> str:
    """The money of a purchase or of its revocation, the same everywhere: a revocation takes
    the money back, so it carries a minus sign ("−19.95 USD")."""
    shown = money_text(amount, currency)
    return f"\u2212{shown}" if revoked and abs(amount) >= 0.005 else shown


def cut(text: str, limit: int) -> str:
    """`text` in at most `limit` characters: cut short with an ellipsis when longer."""
    return text if len(text) <= limit else text[:limit - 1] + "…"


def method_label(method: str) -> str:
    """A payment method in words ("Bank transfer")."""
    return METHOD_LABELS.get(method, method.replace("_", " ").capitalize())


def reason_label(reason) -> str:
    """A revocation's reason in words ("Refund"); "" for none."""
    if not reason:
        return ""
    return REASON_LABELS.get(reason, str(reason).replace("_", " ").capitalize())


# A card (a key figure) is a section whose id names it; its parts' ids follow from that id.

def value(card: str) -> str:
    """The id of a card's figure."""
    return f"{card}-value"


def note(card: str) -> str:
    """The id of the line under a card's figure."""
    return f"{card}-note"


def trend(card: str) -> str:
    """The id of a card's trend bars."""
    return f"{card}-trend"
