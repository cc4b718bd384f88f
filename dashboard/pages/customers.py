"""Customers: find one by email, name or id as you type; see what they own, what they paid,
every purchase and revocation, and whether their arrays and purchases agree. Admins grant
from here and revoke an owned item with a reason, after a confirmation.

/customers is the search (its text kept in `?q=`), /customers/<id> one customer. The
customer page redraws when the data version moves (one point read per tick otherwise), so a
grant or a revocation made anywhere shows within REFRESH_MS.
"""

import logging
from collections import defaultdict
from dataclasses import dataclass
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import dash_ag_grid as dag
import pymongo
from bson import ObjectId
from dash import ALL, Input, Output, State, ctx, dcc, html, no_update
from dash.exceptions import PreventUpdate
from flask_login import current_user
from pymongo.database import Database
from pymongo.errors import PyMongoError

from core import (
    ItemNotFoundError,
    NotPurchasedError,
    PurchaseError,
    UserNotFoundError,
    ValidationError,
    get_audit_log,
    get_data_version,
    get_purchase_history,
    remove_purchase,
)
from core.catalog import get_item, parse_item_ref
from core.customers import find_customers, get_customer
from dashboard.accounts import STAFF_NAMES
from dashboard.auth import require_admin
from dashboard.callback_requests import mapping
from dashboard.callback_requests import text as as_text
from dashboard.context import DashboardContext, current_context
from dashboard.display import local_time, method_label, money_text, reason_label
from dashboard.grids import data_grid
from dashboard.messages import failure, shown
from dashboard.query import query_arg

PATH = "/customers"
TITLE = "Customers"
NAV = "Customers"
ROLE = "viewer"

# the search
SEARCH = "customers-search"
RESULTS = "customers-results"
GO = "customers-go"  # the search page's URL: its ?q= holds the search; Enter opens the first result
SEARCH_URL = GO  # one Location only: a second one pushed its stale URL back over Enter's navigation
SEARCH_KEPT = "customers-search-kept"  # written in the browser only: the search put into the URL
# one customer (read by every signed-in account)
CUSTOMER = "customers-customer"
NAME = "customers-name"
IDENTITY = "customers-identity"
BODY = "customers-body"
MISSING = "customers-missing"
UPDATED = "customers-updated"
MESSAGE = "customers-message"
TOTAL = "customers-total"
TOTAL_NOTE = "customers-total-note"
OWNED_COUNT = "customers-owned-count"
BADGE = "customers-badge"
BADGE_NOTE = "customers-badge-note"
OWNED = "customers-owned"
PROBLEMS = "customers-problems"
GRID = "customers-timeline"
TIMELINE_NOTE = "customers-timeline-note"
INTERVAL = "customers-interval"
STATE = "customers-state"
CHANGED = "customers-changed"  # a revocation here: redraw at once, not at the next tick
# revoking (admins only: every output a write callback has starts with "admin-")
REVOKE = "admin-customers-revoke"  # the type of each owned item's button: {"type": REVOKE, "item": ref}
PANEL = "admin-customers-revoke-panel"
PANEL_TITLE = "admin-customers-revoke-title"
TARGET = "admin-customers-target"
FORM = "admin-customers-revoke-form"
REASON = "admin-customers-reason"
NOTE = "admin-customers-note"
REVIEW = "customers-review"
CANCEL = "customers-cancel"
CONFIRM_BOX = "admin-customers-confirm-box"
CONFIRM_TEXT = "admin-customers-confirm-text"
CONFIRM = "customers-confirm"
BACK = "customers-back"
REVIEWED = "admin-customers-reviewed"
RESULT = "admin-customers-result"
SCROLL = "admin-customers-scroll"  # written in the browser only: brings the opened panel into view
FIELDS = ("item", "reason", "note")
PANEL_FIELDS = {"item": "item", "reason": "reason", "note": "note"}  # core's names -> the panel's fields


def error_id(field: str) -> str:
    return f"admin-customers-{field}-error"


REASONS = {"refund": "Refund", "chargeback": "Chargeback", "granted by mistake": "Granted by mistake",
           "other": "Other (say why in the note)"}
MIN_SEARCH = 2
MAX_QUERY = 254  # characters of a search, as core.customers reads them
SHOWN = 20  # search results listed; one more is asked for, to say there are more
REFRESH_MS = 2500
POLL_TIMEOUT = 2.0
HISTORY_LIMIT = 500  # core's maximum
AUDIT_LIMIT = 2000  # the notes of this customer's changes
NOTE_MAX = 200  # core's limit for a note
TIME_FORMAT = "%Y-%m-%d %H:%M:%S"
DASH = "—"
HINT = "Type at least 2 characters of an email, its domain, words of a name, or a whole user id."
log = logging.getLogger(__name__)


# ---------------------------------------------------------------- reading a customer

@dataclass(frozen=True)
class Customer:
    """Everything the customer page shows, read at one moment."""

    user: dict
    history: list[dict]  # purchases and revocations, newest purchase first
    active: list[dict]  # every active purchase
    notes: dict  # (purchase id, "grant" | "revoke") -> the audit entry
    titles: dict  # (kind, item id) -> title


def read_customer(db: Database, user_id) -> Customer:
    """The customer, their history, their audit entries and the titles of what they own."""
    user = get_customer(db, user_id)
    history = get_purchase_history(db, user["_id"], {"limit": HISTORY_LIMIT})
    active = [p for p in history if p["status"] == "active"]
    if len(history) == HISTORY_LIMIT:  # a long history may hide older active purchases
        active = get_purchase_history(db, user["_id"], {"limit": HISTORY_LIMIT, "includeRevoked": False})
    entries = get_audit_log(db, {"user": user["_id"], "limit": AUDIT_LIMIT})
    notes = {(e["purchase"], e["action"]): e for e in reversed(entries)}
    titles = {item_key(p): p.get("title") or DASH for p in history + active}
    for kind, item in array_items(user):
        if (kind, item) not in titles:
            titles[(kind, item)] = item_title(db, kind, item)
    return Customer(user, history, active, notes, titles)


def array_items(user: dict) -> list[tuple[str, ObjectId]]:
    """(kind, id) of every entry of the user's ownership arrays, courses first."""
    return [(kind, item) for kind, array in (("course", "purchasedCourses"), ("test", "purchasedTests"))
            for item in (user.get(array) if isinstance(user.get(array), list) else [])]


def _shown_value(value) -> str:
    return "null" if value is None else f"a {type(value).__name__}"


def item_key(purchase: dict) -> tuple[str, ObjectId | None]:
    """(kind, item id) of a purchase."""
    return purchase["kind"], purchase.get(purchase["kind"])


def item_title(db: Database, kind: str, item) -> str:
    try:
        return get_item(db, kind, item)["title"]
    except (ItemNotFoundError, ValidationError):
        return f"(unknown {kind} {item})"


# ---------------------------------------------------------------- pure builders

def owned_rows(customer: Customer, tz: ZoneInfo, currency: str) -> list[dict]:
    """One row per entry of the user's arrays, with the active purchase behind it (if any)."""
    bought = {item_key(p): p for p in customer.active}
    rows = []
    for kind, item in sorted(array_items(customer.user), key=lambda key: customer.titles[key].casefold()):
        purchase = bought.get((kind, item))
        rows.append({
            "ref": f"{kind}:{item}", "kind": kind, "title": customer.titles[(kind, item)],
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
    broken = [f"{array} is {_shown_value(customer.user[array])}, not a list: the next grant or revocation "
              "rebuilds it from the purchases" for array in ("purchasedCourses", "purchasedTests")
              if array in customer.user and not isinstance(customer.user[array], list)]
    if broken:
        return broken
    in_arrays = set(array_items(customer.user))
    bought = {item_key(p) for p in customer.active}
    problems = [f"{customer.titles[key]} ({key[0]}): in the user's array, but no purchase behind it"
                for key in array_items(customer.user) if key not in bought]
    problems += [f"{p.get('title') or DASH} ({p['kind']}): purchased, but missing from the user's array"
                 for p in customer.active if item_key(p) not in in_arrays]
    return problems


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


def owned_count_text(rows: list[dict]) -> str:
    courses = sum(row["kind"] == "course" for row in rows)
    tests = len(rows) - courses
    return f"{courses} course{'' if courses == 1 else 's'} · {tests} test{'' if tests == 1 else 's'}"


# ---------------------------------------------------------------- the search

def search_results(db: Database, text: str) -> tuple[list[dict], bool]:
    """Up to SHOWN customers matching `text`, each with how many items they own; and whether there are more."""
    found = find_customers(db, text, limit=SHOWN + 1)
    people = []
    for doc in found[:SHOWN]:
        try:
            user = get_customer(db, doc["_id"])  # a point read: the index holds names and emails only
        except UserNotFoundError:
            continue  # removed since the index last saw it
        people.append({"id": str(user["_id"]), "name": user.get("name") or "(no name)",
                       "email": user.get("email") or "no email", "owned": len(array_items(user))})
    return people, len(found) > SHOWN


def query_text(search: str | None) -> str:
    """The search a query string holds (`?q=...`), its spaces collapsed."""
    return " ".join(query_arg(search, "q").split())[:MAX_QUERY]


# The browser puts the search into the URL as it settles, replacing the page's history entry
# (one for the search page, not one a keystroke): a reload, a shared link and "back" from a
# customer reproduce it. URLSearchParams writes a space as "+", as query_text reads it.
KEEP_IN_URL = ("function(text) { const path = window.location.pathname.replace(/\\/+$/, '');"
               " if (path !== '" + PATH + "') { return window.dash_clientside.no_update; }"
               " const q = (text || '').split(/\\s+/).filter(Boolean).join(' ');"
               " const search = q ? '?' + new URLSearchParams({q: q}).toString() : '';"
               " if (window.location.search !== search) { window.history.replaceState(window.history.state, '',"
               " window.location.pathname + search); } return search; }")


OPEN_FIRST = ("function(n) { const first = document.querySelector('#" + RESULTS + " a[href^=\"" + PATH + "/\"]');"
              " if (first) { first.click(); } return window.dash_clientside.no_update; }")


def results_view(text: str, people: list[dict], more: bool):
    if not people:
        return html.P(["No customer matches ", html.Strong(text), "."], className="muted customers-hint")
    items = [html.Li(dcc.Link(href=f"{PATH}/{p['id']}", className="customers-result", children=[
        html.Span(p["name"], className="customers-result-name"),
        html.Span(p["email"], className="customers-result-email"),
        html.Span(f"{p['owned']} owned", className="customers-result-owned"),
        html.Code(p["id"], className="customers-result-id"),
    ])) for p in people]
    note = (f"The first {SHOWN} matches; type more to narrow them." if more
            else f"{len(people)} match{'' if len(people) == 1 else 'es'}.")
    return [html.P(note, className="muted customers-hint"), html.Ul(items, className="customers-results")]


# ---------------------------------------------------------------- layouts

def layout(path: str = PATH) -> html.Div:
    """The search at /customers, one customer at /customers/<id>."""
    ident = (path or PATH).rstrip("/").removeprefix(PATH).strip("/")
    if not ident:
        return _search_layout()
    if not ObjectId.is_valid(ident):
        return _missing_layout(ident)
    return _customer_layout(ident, current_user.is_authenticated and current_user.is_admin)


def _search_layout() -> html.Div:
    return html.Div(className="customers", children=[
        dcc.Location(id=GO, refresh="callback-nav"),
        html.Span(id=SEARCH_KEPT, className="hidden"),
        html.Div(className="topbar", children=[html.H1(TITLE)]),
        html.P("Find a customer by email, email domain, the words of their name in any order, or id. "
               "Enter opens the first match.", className="muted"),
        html.Section(className="panel customers-search", children=[
            html.Label("Search customers", htmlFor=SEARCH, className="customers-label"),
            dcc.Input(id=SEARCH, type="search", debounce=0.2, autoFocus=True, autoComplete="off",
                      maxLength=MAX_QUERY, placeholder="ada@, Lovelace Ada, example.com, or an id",
                      className="customers-input"),
        ]),
        html.Div(id=RESULTS, role="status", className="customers-found",
                 children=html.P(HINT, className="muted customers-hint")),
    ])


def _missing_layout(ident: str) -> html.Div:
    return html.Div(className="customers", children=[
        html.Section(className="panel customers-missing", children=[
            html.H1("No such customer"),
            html.P(["No user has the id ", html.Code(ident), "." if ObjectId.is_valid(ident)
                    else ": a user id is 24 hexadecimal characters."]),
            dcc.Link("Search customers", href=PATH, className="button"),
        ]),
    ])


def _customer_layout(ident: str, admin: bool) -> html.Div:
    context = current_context()
    try:  # one point read, so the heading (and the tab's title) name the customer at once
        with pymongo.timeout(POLL_TIMEOUT):
            name = get_customer(context.db, ident).get("name") or "(no name)"
    except UserNotFoundError:
        return _missing_layout(ident)
    except (PurchaseError, PyMongoError):
        name = "Customer"  # the refresh says what is wrong
    actions = [html.Span("Loading…", id=UPDATED, className="updated")]
    if admin:
        actions.append(dcc.Link("Grant access", href=f"/grant?user={ident}", className="button primary customers-grant"))
    return html.Div(className="customers customer", children=[
        dcc.Store(id=CUSTOMER, data=ident),
        dcc.Store(id=STATE, data={}),
        dcc.Store(id=CHANGED, data=None),
        dcc.Interval(id=INTERVAL, interval=REFRESH_MS),
        html.P(dcc.Link("← Customers", href=PATH), className="customers-back"),
        html.Div(id=MISSING, className="hidden"),
        html.Div(id=BODY, children=[
            html.Div(className="topbar", children=[html.H1(name, id=NAME),
                                                   html.Div(className="actions", children=actions)]),
            html.P(id=IDENTITY, className="muted customers-identity", children=html.Code(ident)),
            html.Div(id=MESSAGE, className="message hidden", role="alert"),
            html.Section(className="customers-cards", **{"aria-labelledby": "customers-summary"}, children=[
                html.H2("Summary", id="customers-summary", className="visually-hidden"),
                _card("Total spent", TOTAL, TOTAL_NOTE),
                _card("Owns", OWNED_COUNT, None),
                html.Section(className="card customers-card", children=[
                    html.H3("Arrays and purchases"),
                    html.P("…", id=BADGE, className="customers-badge"),
                    html.P("", id=BADGE_NOTE, className="note"),
                ]),
            ]),
            html.Section(className="panel customers-owned-panel", children=[
                html.H2("Owned courses and tests"),
                html.Div(id=OWNED, children=html.P("Loading…", className="muted")),
                html.Div(id=PROBLEMS),
            ]),
            *([_revoke_panel()] if admin else []),
            html.Section(className="panel customers-timeline-panel", children=[
                html.H2("Timeline"),
                html.P("Purchases and revocations, newest first.", id=TIMELINE_NOTE, className="muted"),
                _timeline_grid(context.settings.timezone),
            ]),
        ]),
    ])


def _card(title: str, value_id: str, note_id: str | None) -> html.Section:
    return html.Section(className="card customers-card", children=[
        html.H3(title), html.P("…", id=value_id, className="value"),
        *([html.P("", id=note_id, className="note")] if note_id else []),
    ])


def _revoke_panel() -> html.Div:
    return html.Div(children=[
        dcc.Store(id=TARGET, data=None),
        dcc.Store(id=REVIEWED, data=None),
        html.Section(id=PANEL, className="panel customers-revoke hidden", children=[
            html.H2(id=PANEL_TITLE, children="Revoke"),
            html.P(id=error_id("item"), className="customers-error"),
            html.Div(id=FORM, className="customers-form", children=[
                _field("Reason", "reason", dcc.RadioItems(
                    id=REASON, className="customers-choices", value=None,
                    options=[{"label": label, "value": value} for value, label in REASONS.items()])),
                _field("Note (required for “Other”)", "note", dcc.Textarea(
                    id=NOTE, maxLength=NOTE_MAX, value="", placeholder="What happened, for the audit log")),
                html.Div(className="actions", children=[
                    html.Button("Review revocation", id=REVIEW, className="button primary", n_clicks=0),
                    html.Button("Cancel", id=CANCEL, className="button", n_clicks=0),
                ]),
            ]),
            html.Div(id=CONFIRM_BOX, className="customers-confirm hidden", children=[
                html.H3("Confirm the revocation"),
                html.P(id=CONFIRM_TEXT),
                html.Div(className="actions", children=[
                    html.Button("Confirm revocation", id=CONFIRM, className="button primary danger", n_clicks=0),
                    html.Button("Back", id=BACK, className="button", n_clicks=0),
                ]),
            ]),
        ]),
        html.Div(id=RESULT, role="status"),
        html.Span(id=SCROLL, className="hidden"),
    ])


def _field(label: str, name: str, control) -> html.Div:
    return html.Div(className="customers-field", children=[
        html.Label(label, htmlFor=control.id), control, html.P(id=error_id(name), className="customers-error"),
    ])


def _timeline_grid(tz: ZoneInfo) -> dag.AgGrid:
    amount = "params.value == null ? '' : d3.format(',.2f')(params.value) + ' ' + params.data.currency"
    columns = [
        {"field": "time", "headerName": f"Time ({tz.key})", "minWidth": 170},
        {"field": "event", "headerName": "Event", "width": 115},
        {"field": "item", "headerName": "Item", "minWidth": 220, "flex": 2},
        {"field": "kind", "headerName": "Kind", "width": 85},
        {"field": "amount", "headerName": "Amount", "type": "rightAligned", "filter": "agNumberColumnFilter",
         "valueFormatter": {"function": amount}, "width": 120},
        {"field": "method", "headerName": "Method", "headerTooltip": "Payment method", "width": 125},
        {"field": "who", "headerName": "Who", "minWidth": 170, "flex": 1},
        {"field": "source", "headerName": "Source", "width": 95},
        {"field": "why", "headerName": "Why", "minWidth": 110, "flex": 1},
        {"field": "note", "headerName": "Note", "minWidth": 120, "flex": 1},
    ]
    return data_grid(GRID, columns, empty="No purchases yet.", class_name="customers-grid",
                     row_classes={"customers-revocation": "params.data.event === 'Revocation'"})


# ---------------------------------------------------------------- drawing a customer

def owned_view(rows: list[dict], admin: bool):
    """The owned courses and tests; admins get a Revoke button on each."""
    if not rows:
        return html.P("Owns no courses or tests.", className="muted")
    groups = []
    for kind, heading in (("course", "Courses"), ("test", "Tests")):
        mine = [row for row in rows if row["kind"] == kind]
        if mine:
            groups.append(html.H3(f"{heading} ({len(mine)})"))
            groups.append(html.Ul(className="customers-owned", children=[_owned_item(row, admin) for row in mine]))
    return groups


def _owned_item(row: dict, admin: bool) -> html.Li:
    children = [html.Div(className="customers-owned-text", children=[
        html.Span(row["title"], className="customers-owned-title"),
        html.Span(row["detail"], className="muted" if row["purchased"] else "customers-owned-bad"),
    ])]
    if admin:
        children.append(html.Button("Revoke", id={"type": REVOKE, "item": row["ref"]}, n_clicks=0,
                                    title=f"Revoke {row['title']}", className="button customers-revoke-button"))
    return html.Li(children, className="customers-owned-item")


def problems_view(problems: list[str]):
    if not problems:
        return []
    return html.Div(className="customers-problems", children=[
        html.H3("Where they disagree"), html.Ul([html.Li(problem) for problem in problems]),
    ])


def customer_outputs(customer: Customer, admin: bool, tz: ZoneInfo, currency: str, staff=lambda actor: actor) -> dict:
    """Every output of a redraw, by name."""
    user = customer.user
    owned = owned_rows(customer, tz, currency)
    problems = consistency_problems(customer)
    badge_text, badge_class, badge_note = badge(problems)
    revoked = sum(p["status"] == "revoked" for p in customer.history)
    more = len(customer.history) == HISTORY_LIMIT
    return {
        "name": user.get("name") or "(no name)",
        "identity": [user.get("email") or "no email", " · ", html.Code(str(user["_id"]))],
        "total": total_text(customer.active, currency),
        "totalNote": f"{len(customer.active)} active purchase{'' if len(customer.active) == 1 else 's'}"
                     f" · {revoked} revoked",
        "ownedCount": owned_count_text(owned),
        "badge": badge_text, "badgeClass": badge_class, "badgeNote": badge_note,
        "owned": owned_view(owned, admin),
        "problems": problems_view(problems),
        "rows": timeline_rows(customer, tz, currency, staff),
        "timelineNote": (f"The newest {HISTORY_LIMIT} purchases and their revocations; the audit log has older ones."
                         if more else "Purchases and revocations, newest first."),
    }


# ---------------------------------------------------------------- revoking

def read_revoke(target, reason, note) -> tuple[dict, dict]:
    """The revocation the panel asks for, and the problems with it, by field; nothing is read."""
    errors, request = {}, {"note": as_text(note).strip() or None}
    try:
        request["kind"], request["item"] = parse_item_ref(target.get("item") if isinstance(target, dict) else None)
    except ValidationError:
        errors["item"] = "Choose the item to revoke: press Revoke next to it."
    if reason not in REASONS:
        errors["reason"] = "Choose a reason."
    request["reason"] = reason
    if reason == "other" and not request["note"]:
        errors["note"] = "Say why in the note: it is required when the reason is “Other”."
    elif request["note"] and len(request["note"]) > NOTE_MAX:
        errors["note"] = f"Keep the note to {NOTE_MAX} characters."
    return request, errors


def not_owned(db: Database, user_id, request: dict) -> str:
    """"Not owned any more" when the user's array no longer lists the item (one point read), else ""."""
    user = get_customer(db, user_id)
    array = "purchasedCourses" if request["kind"] == "course" else "purchasedTests"
    if request["item"] in (user.get(array) or []):
        return ""
    return (f"Not owned any more: {user.get('name') or 'this customer'} no longer has this {request['kind']} "
            "(someone may have just revoked it). The list below is up to date.")


def describe(db: Database, user_id, request: dict):
    """What the confirmation step says: which item, from whom, and why."""
    user = get_customer(db, user_id)
    who = f"{user.get('name') or '(no name)'} ({user.get('email') or 'no email'})"
    title = item_title(db, request["kind"], request["item"])
    why = REASONS[request["reason"]].split(" (")[0] + (f": {request['note']}" if request["note"] else "")
    return ["Revoke the ", request["kind"], " ", html.Strong(title), " from ", html.Strong(who), "? Reason: ",
            html.Strong(why), ". They lose access at once; the purchase stays in the timeline as revoked."]


def revoke(db: Database, user_id, request: dict, actor: str) -> dict:
    """The one write: core's remove_purchase, by the signed-in admin."""
    ids = (request["item"], None) if request["kind"] == "course" else (None, request["item"])
    return remove_purchase(db, user_id, *ids, actor=actor, reason=request["reason"], note=request["note"],
                           source="admin")


def revoked_by_since(db: Database, user_id, request: dict, actor: str, reviewed) -> dict | None:
    """This admin's revocation of the item since the confirmation was shown: a double click's first press."""
    try:
        since = datetime.fromisoformat(reviewed)
    except (TypeError, ValueError):
        return None
    entries = get_audit_log(db, {"user": user_id, "item": request["item"], "action": "revoke", "actor": actor,
                                 "startDate": since, "limit": 1})
    return entries[0] if entries else None


def revoked_view(title: str, kind: str, name: str) -> html.Div:
    return html.Div(className="panel customers-success", children=[
        html.H2("Revoked"),
        html.P([f"{name} no longer has the {kind} ", html.Strong(title),
                ". The revocation is in the timeline below and in the audit log."]),
    ])


EDITING = {"form": "customers-form", "confirmBox": "customers-confirm hidden"}
CLOSED = {**EDITING, "panel": "panel customers-revoke hidden", "target": None, "reviewed": None}


def panel_step(db: Database, trigger, user, target, reason, note, reviewed_at, actor: str) -> dict:
    """What one press in the revoke panel changes, by output name."""
    if isinstance(trigger, dict):
        return _opened(db, trigger["item"])
    if trigger == CANCEL:
        return CLOSED
    if trigger == BACK:
        return EDITING
    request, errors = read_revoke(target, reason, note)
    if errors:
        return {**_errors(errors), **EDITING}
    if trigger == REVIEW:
        return _reviewed(db, user, request)
    return _confirmed(db, user, request, actor, reviewed_at)


def _confirmed(db: Database, user, request: dict, actor: str, reviewed_at) -> dict:
    """Revoke; a double click's second press finds this admin's own revocation and says it is done."""
    try:
        changed = str(revoke(db, user, request, actor)["_id"])
    except NotPurchasedError as error:
        mine = revoked_by_since(db, user, request, actor, reviewed_at)
        if mine is None:
            return {**_errors({"item": not_owned(db, user, request) or str(error)}), **EDITING}
        changed = str(mine["purchase"])
    return {**CLOSED, **_errors({}), "result": _done(db, user, request), "changed": changed}


def _failed(error: PurchaseError) -> dict:
    said = shown(error, PANEL_FIELDS)
    return {**_errors({said.field: said.text} if said.field else {}), **EDITING,
            "result": "" if said.field else html.P(said.text, className="message")}


def _errors(errors: dict) -> dict:
    return {field: errors.get(field, "") for field in FIELDS}


def _opened(db: Database, ref: str) -> dict:
    """The panel, open and empty, for the item `ref`."""
    kind, item = parse_item_ref(ref)
    return {**_errors({}), "panel": "panel customers-revoke", "title": f"Revoke {item_title(db, kind, item)}",
            "target": {"item": ref}, "reasonChoice": None, "noteText": "", "form": "customers-form",
            "confirmBox": "customers-confirm hidden", "reviewed": None, "result": ""}


def _reviewed(db: Database, user, request: dict) -> dict:
    """The confirmation step, unless the item is no longer owned."""
    gone = not_owned(db, user, request)
    if gone:
        return {**_errors({"item": gone}), **EDITING}
    return {**_errors({}), "form": "customers-form locked", "confirmBox": "customers-confirm",
            "confirmText": describe(db, user, request), "reviewed": datetime.now(UTC).isoformat(), "result": ""}


def _done(db: Database, user, request: dict) -> html.Div:
    name = get_customer(db, user).get("name") or "The customer"
    return revoked_view(item_title(db, request["kind"], request["item"]), request["kind"], name)


# ---------------------------------------------------------------- callbacks

def register(app, context: DashboardContext) -> None:
    """Wire the page's callbacks to the context's database."""
    db, tz, currency = context.db, context.settings.timezone, context.currency

    @app.callback(Output(SEARCH, "value"), Input(SEARCH_URL, "search"), State(SEARCH, "value"))
    def search_from_url(search, typed):
        """A URL's ?q= (opened, reloaded, or back at) fills the search box, which then searches."""
        wanted = query_text(search)
        if wanted == " ".join(as_text(typed).split()):
            raise PreventUpdate  # the box says it already (perhaps with a space still being typed)
        return wanted

    app.clientside_callback(KEEP_IN_URL, Output(SEARCH_KEPT, "children"), Input(SEARCH, "value"),
                            prevent_initial_call=True)

    @app.callback(Output(RESULTS, "children"), Input(SEARCH, "value"))
    def search(text):
        """Type-ahead: the customers each word of the text starts a word of their email, its domain or
        their name, or whose id it is."""
        text = " ".join(as_text(text).split())
        if len(text) < MIN_SEARCH:
            return html.P(HINT, className="muted customers-hint")
        try:
            people, more = search_results(db, text)
        except Exception as error:  # noqa: BLE001 - messages.failure logs what is not core's
            said = failure(error, log, failed="The search failed; see the server log.",
                           unanswered="The database did not answer; type again in a moment.")
            return html.P(said.text, className="message")
        return results_view(text, people, more)

    # Enter in the search box opens the first match, as a click on it would (a server-side
    # navigation lost to the search's own URL, kept by the browser with replaceState)
    app.clientside_callback(OPEN_FIRST, Output(SEARCH_KEPT, "title"), Input(SEARCH, "n_submit"),
                            prevent_initial_call=True)

    _register_refresh(app, db, tz, currency)
    _register_revoke(app, db)


def _register_refresh(app, db: Database, tz: ZoneInfo, currency: str) -> None:
    outputs = {
        "name": Output(NAME, "children"), "identity": Output(IDENTITY, "children"),
        "total": Output(TOTAL, "children"), "totalNote": Output(TOTAL_NOTE, "children"),
        "ownedCount": Output(OWNED_COUNT, "children"), "badge": Output(BADGE, "children"),
        "badgeClass": Output(BADGE, "className"), "badgeNote": Output(BADGE_NOTE, "children"),
        "owned": Output(OWNED, "children"), "problems": Output(PROBLEMS, "children"),
        "rows": Output(GRID, "rowData"), "timelineNote": Output(TIMELINE_NOTE, "children"),
        "body": Output(BODY, "className"), "missing": Output(MISSING, "children"),
        "missingClass": Output(MISSING, "className"), "message": Output(MESSAGE, "children"),
        "messageClass": Output(MESSAGE, "className"), "updated": Output(UPDATED, "children"),
        "state": Output(STATE, "data"),
    }

    @app.callback(output=outputs,
                  inputs={"tick": Input(INTERVAL, "n_intervals"), "changed": Input(CHANGED, "data")},
                  state={"user": State(CUSTOMER, "data"), "state": State(STATE, "data")})
    def refresh(tick, changed, user, state):
        """Redraw the customer when the data version moved; otherwise one point read and nothing sent."""
        state, reply = mapping(state), {name: no_update for name in outputs}
        now = datetime.now(UTC)
        try:
            with pymongo.timeout(POLL_TIMEOUT):
                version = get_data_version(db)
                if version == state.get("version") and state.get("user") == user:
                    raise PreventUpdate
                customer = read_customer(db, user)
        except PreventUpdate:
            raise
        except (UserNotFoundError, ValidationError):
            return {**reply, "body": "hidden", "missingClass": "", "missing": _missing_layout(str(user)),
                    "state": {"version": version, "user": user}}
        except Exception as error:  # noqa: BLE001 - messages.failure logs what is not core's
            said = failure(error, log, failed="Could not read this customer; see the server log.")
            # no version kept: the next answer redraws, and so clears this message
            return {**reply, "message": said.text, "messageClass": "message", "state": {"user": user}}
        admin = current_user.is_authenticated and current_user.is_admin
        return {**customer_outputs(customer, admin, tz, currency, lambda actor: STAFF_NAMES.label(db, actor)), "body": "", "missing": [], "missingClass": "hidden",
                "message": "", "messageClass": "message hidden",
                "updated": f"Updated {local_time(now, tz)}", "state": {"version": version, "user": user}}


def _register_revoke(app, db: Database) -> None:
    outputs = {
        **{field: Output(error_id(field), "children") for field in FIELDS},
        "panel": Output(PANEL, "className"), "title": Output(PANEL_TITLE, "children"),
        "target": Output(TARGET, "data"), "reasonChoice": Output(REASON, "value"), "noteText": Output(NOTE, "value"),
        "form": Output(FORM, "className"), "confirmBox": Output(CONFIRM_BOX, "className"),
        "confirmText": Output(CONFIRM_TEXT, "children"), "reviewed": Output(REVIEWED, "data"),
        "result": Output(RESULT, "children"), "changed": Output(CHANGED, "data"),
    }
    app.clientside_callback(
        "function(css) { const panel = document.getElementById('" + PANEL + "');"
        " if (css && !css.includes('hidden') && panel) { panel.scrollIntoView({block: 'nearest'}); }"
        " return window.dash_clientside.no_update; }",
        Output(SCROLL, "children"),
        Input(PANEL, "className"),
        prevent_initial_call=True,
    )

    @app.callback(
        output=outputs,
        inputs={"pressed": Input({"type": REVOKE, "item": ALL}, "n_clicks"), "review": Input(REVIEW, "n_clicks"),
                "confirm": Input(CONFIRM, "n_clicks"), "back": Input(BACK, "n_clicks"),
                "cancel": Input(CANCEL, "n_clicks")},
        state={"user": State(CUSTOMER, "data"), "target": State(TARGET, "data"), "reason": State(REASON, "value"),
               "note": State(NOTE, "value"), "reviewed_at": State(REVIEWED, "data")},
        prevent_initial_call=True,
    )
    def revoke_panel(pressed, review, confirm, back, cancel, user, target, reason, note, reviewed_at):
        """Revoke opens the panel for an item, Review checks it, Confirm revokes, Back edits, Cancel closes."""
        actor = require_admin()
        if not ctx.triggered or not ctx.triggered[0]["value"]:
            raise PreventUpdate  # the owned list was redrawn: its buttons are new, nobody pressed one
        try:
            changes = panel_step(db, ctx.triggered_id, user, target, reason, note, reviewed_at, actor)
        except PurchaseError as error:
            changes = _failed(error)
        except Exception:  # noqa: BLE001 - logged with its traceback; the admin gets one honest line
            log.exception("revocation failed")
            changes = {"result": html.P("The revocation could not be saved; see the server log.", className="message")}
        return {**{name: no_update for name in outputs}, **changes}
