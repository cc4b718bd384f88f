"""One customer read at one moment, and the pure builders of what their page shows: owned items,
where their arrays and purchases disagree, the total spent, the timeline. Rows and text in,
no Dash components, no database (but for `read_customer` and `item_title`)."""

from collections import defaultdict
from dataclasses import dataclass
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

from bson import ObjectId
from pymongo.database import Database

from core import ItemNotFoundError, ItemRef, ValidationError, get_audit_log, get_purchase_history
from core.catalog import get_item
from core.customers import get_customer, owned_items
from core.storage.schema import KINDS
from dashboard.display import local_time, method_label, money_text, reason_label

HISTORY_LIMIT = 500  # core's maximum
AUDIT_LIMIT = 2000  # the notes of this customer's changes
TIME_FORMAT = "%Y-%m-%d %H:%M:%S"
DASH = "—"


@dataclass(frozen=True)
class Customer:
    """Everything the customer page shows, read at one moment."""

    user: dict
    history: list[dict]  # purchases and revocations, newest purchase first
    active: list[dict]  # every active purchase
    notes: dict  # (purchase id, "grant" | "revoke") -> the audit entry
    titles: dict[ItemRef, str]  # every item they own or bought -> its title


def read_customer(db: Database, user_id) -> Customer:
    """The customer, their history, their audit entries and the titles of what they own."""
    user = get_customer(db, user_id)
    history = get_purchase_history(db, user["_id"], {"limit": HISTORY_LIMIT})
    active = [p for p in history if p["status"] == "active"]
    if len(history) == HISTORY_LIMIT:  # a long history may hide older active purchases
        active = get_purchase_history(db, user["_id"], {"limit": HISTORY_LIMIT, "includeRevoked": False})
    entries = get_audit_log(db, {"user": user["_id"], "limit": AUDIT_LIMIT})
    notes = {(e["purchase"], e["action"]): e for e in reversed(entries)}
    titles = {ItemRef.of(p): p.get("title") or DASH for p in history + active}
    for item in owned_items(user):
        if item not in titles:
            titles[item] = item_title(db, item)
    return Customer(user, history, active, notes, titles)


def item_title(db: Database, item: ItemRef) -> str:
    """The item's title, or what it is when the catalog does not have it."""
    try:
        return get_item(db, item.kind, item.id)["title"]
    except (ItemNotFoundError, ValidationError):
        return f"(unknown {item.kind} {item.id})"


def owned_rows(customer: Customer, tz: ZoneInfo, currency: str) -> list[dict]:
    """One row per entry of the user's arrays, with the active purchase behind it (if any)."""
    bought = {ItemRef.of(p): p for p in customer.active}
    rows = []
    for item in sorted(owned_items(customer.user), key=lambda item: customer.titles[item].casefold()):
        purchase = bought.get(item)
        rows.append({
            "ref": str(item), "kind": item.kind, "title": customer.titles[item],
            "detail": _purchase_detail(purchase, tz, currency) if purchase else "no purchase behind it",
            "purchased": purchase is not None,
        })
    return rows


def _purchase_detail(purchase: dict, tz: ZoneInfo, currency: str) -> str:
    when = local_time(purchase["purchasedAt"], tz, "%Y-%m-%d") if purchase.get("purchasedAt") else "undated"
    paid = money_text(purchase.get("amount") or 0, purchase.get("currency") or currency)
    return f"since {when} · {paid} · {method_label(purchase.get('paymentMethod') or '?')}"


def consistency_problems(customer: Customer) -> list[str]:
    """Where the user's arrays and their active purchases disagree, one sentence each."""
    user = customer.user
    broken = [f"{kind.array} is {_shown_value(user[kind.array])}, not a list: the next grant or revocation "
              "rebuilds it from the purchases" for kind in KINDS.values()
              if kind.array in user and not isinstance(user[kind.array], list)]
    if broken:
        return broken
    in_arrays = set(owned_items(user))
    bought = {ItemRef.of(p) for p in customer.active}
    problems = [f"{value!r} ({kind.name}): in the user's array, but not an item id" for kind in KINDS.values()
                for value in user.get(kind.array) or [] if not isinstance(value, ObjectId)]
    problems += [f"{customer.titles[item]} ({item.kind}): in the user's array, but no purchase behind it"
                 for item in owned_items(user) if item not in bought]
    problems += [f"{p.get('title') or DASH} ({p['kind']}): purchased, but missing from the user's array"
                 for p in customer.active if ItemRef.of(p) not in in_arrays]
    return problems


def _shown_value(value) -> str:
    return "null" if value is None else f"a {type(value).__name__}"


def badge(problems: list[str]) -> tuple[str, str, str]:
    """The consistency badge: text, css class, note."""
    if not problems:
        return "Consistent", "customers-badge ok", "Ownership arrays and active purchases agree."
    count = len(problems)
    return (f"{count} problem{'' if count == 1 else 's'}", "customers-badge bad",
            "Purchases are the source of truth: scripts/test_hybrid_system.py --repair makes the arrays match.")


def total_text(active: list[dict], currency: str) -> str:
    """The sum of the active purchases' amounts, per currency."""
    sums = defaultdict(float)
    for purchase in active:
        sums[purchase.get("currency") or currency] += purchase.get("amount") or 0
    if not sums:
        return money_text(0, currency)
    return " + ".join(money_text(amount, code) for code, amount in sorted(sums.items()))


def owned_count_text(rows: list[dict]) -> str:
    """How many items of each kind the owned rows hold: "2 courses · 1 test"."""
    return " · ".join(_count(sum(row["kind"] == kind for row in rows), kind) for kind in KINDS)


def _count(number: int, word: str) -> str:
    return f"{number} {word}{'' if number == 1 else 's'}"


def timeline_rows(customer: Customer, tz: ZoneInfo, currency: str, staff=lambda actor: actor) -> list[dict]:
    """Purchases and revocations as grid rows, newest first."""
    events = []
    for purchase in customer.history:
        events.append((purchase.get("purchasedAt"), 0, _event_row(purchase, "grant", customer.notes, tz, currency, staff)))
        if purchase["status"] == "revoked":
            events.append((purchase.get("revokedAt"), 1, _event_row(purchase, "revoke", customer.notes, tz, currency, staff)))
    earliest = datetime.min.replace(tzinfo=UTC)
    events.sort(key=lambda event: (event[0] or earliest, event[1]), reverse=True)
    return [row for _, _, row in events]


def _event_row(purchase: dict, action: str, notes: dict, tz: ZoneInfo, currency: str, staff) -> dict:
    entry = notes.get((purchase["_id"], action)) or {}
    revoked = action == "revoke"
    moment = purchase.get("revokedAt" if revoked else "purchasedAt")
    who = purchase.get("revokedBy") if revoked else purchase.get("actor")
    return {
        "id": f"{purchase['_id']}-{action}",
        "time": local_time(moment, tz, TIME_FORMAT) if moment else DASH,
        "event": "Revocation" if revoked else "Purchase",
        "item": purchase.get("title") or DASH,
        "kind": purchase["kind"],
        "amount": None if purchase.get("amount") is None else (  # a revocation takes the money back
            -purchase["amount"] if revoked else purchase["amount"]),
        "currency": purchase.get("currency") or currency,
        "method": method_label(purchase.get("paymentMethod") or "?"),
        "who": staff(who or entry.get("actor")) or DASH,
        "source": entry.get("source") or "",
        "why": reason_label(purchase.get("reason")) if revoked else "",
        "note": entry.get("note") or "",
    }
