"""One customer's page at /customers/<id>: what they own, what they paid, every purchase and
revocation, and whether their arrays and purchases agree. It redraws when the data version moves
(one point read per tick otherwise), so a grant or a revocation made anywhere shows within
REFRESH_MS; the builders of what it shows are in customer.py, the revoke panel in revoke.py."""

import logging
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import dash_ag_grid as dag
import pymongo
from bson import ObjectId
from dash import Input, Output, State, dcc, html, no_update
from dash.exceptions import PreventUpdate
from flask_login import current_user
from pymongo.database import Database
from pymongo.errors import PyMongoError

from core import PurchaseError, UserNotFoundError, ValidationError, get_data_version
from core.customers import get_customer
from core.storage.schema import KINDS
from dashboard.accounts import STAFF_NAMES
from dashboard.callback_requests import mapping
from dashboard.context import current_context
from dashboard.display import change_money_text, local_time
from dashboard.grids import data_grid
from dashboard.messages import failure
from dashboard.pages.customers import revoke
from dashboard.pages.customers.customer import (
    HISTORY_LIMIT,
    Customer,
    badge,
    consistency_problems,
    owned_count_text,
    owned_rows,
    read_customer,
    timeline_rows,
    total_text,
)
from dashboard.pages.customers.ids import (
    BADGE,
    BADGE_NOTE,
    BODY,
    CHANGED,
    CUSTOMER,
    GRID,
    IDENTITY,
    INTERVAL,
    MESSAGE,
    MISSING,
    NAME,
    OWNED,
    OWNED_COUNT,
    PATH,
    PROBLEMS,
    REVOKE,
    STATE,
    TIMELINE_LIST,
    TIMELINE_NOTE,
    TOTAL,
    TOTAL_NOTE,
    UPDATED,
)

REFRESH_MS = 2500
PHONE_EVENTS = 100  # the phone's list of the timeline; a wider screen pages through every row
POLL_TIMEOUT = 2.0
log = logging.getLogger(__name__)


def missing_layout(ident: str) -> html.Div:
    """What /customers/<id> shows when no user has the id."""
    return html.Div(className="customers", children=[
        html.Section(className="panel customers-missing", children=[
            html.H1("No such customer"),
            html.P(["No user has the id ", html.Code(ident), "." if ObjectId.is_valid(ident)
                    else ": a user id is 24 hexadecimal characters."]),
            dcc.Link("Search customers", href=PATH, className="button"),
        ]),
    ])


def layout(ident: str, admin: bool) -> html.Div:
    """The customer's page, drawn empty: the refresh fills it. Admins get the revoke panel."""
    context = current_context()
    try:  # one point read, so the heading (and the tab's title) name the customer at once
        with pymongo.timeout(POLL_TIMEOUT):
            name = get_customer(context.db, ident).get("name") or "(no name)"
    except UserNotFoundError:
        return missing_layout(ident)
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
            *([revoke.panel_layout()] if admin else []),
            html.Section(className="panel customers-timeline-panel", children=[
                html.H2("Timeline"),
                html.P("Purchases and revocations, newest first.", id=TIMELINE_NOTE, className="muted"),
                _timeline_grid(context.settings.timezone),
                html.Ol(id=TIMELINE_LIST, className="customers-events", **{"aria-label": "Timeline"}),
            ]),
        ]),
    ])


def _card(title: str, value_id: str, note_id: str | None) -> html.Section:
    return html.Section(className="card customers-card", children=[
        html.H3(title), html.P("…", id=value_id, className="value"),
        *([html.P("", id=note_id, className="note")] if note_id else []),
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


def owned_view(rows: list[dict], admin: bool):
    """The owned courses and tests, a group per kind; admins get a Revoke button on each."""
    if not rows:
        return html.P("Owns no courses or tests.", className="muted")
    groups = []
    for kind in KINDS.values():
        mine = [row for row in rows if row["kind"] == kind.name]
        if mine:
            groups.append(html.H3(f"{kind.plural} ({len(mine)})"))
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


def timeline_list(rows: list[dict]) -> list[html.Li]:
    """The timeline for a phone, where the grid's ten columns would scroll sideways: each event
    as lines (time, event and amount; the item; who, method and source; why and note)."""
    events = []
    for row in rows[:PHONE_EVENTS]:
        revoked = row["event"] == "Revocation"
        amount = "" if row["amount"] is None else change_money_text(abs(row["amount"]), row["currency"], revoked)
        why = " · ".join(part for part in (row["why"], row["note"]) if part)
        events.append(html.Li(className="customers-event customers-revocation" if revoked else "customers-event", children=[
            html.P(className="customers-event-head", children=[
                html.Span(row["time"], className="customers-event-time"), html.Strong(row["event"]),
                html.Span(amount, className="customers-event-amount"),
            ]),
            html.P(f"{row['item']} ({row['kind']})", className="customers-event-item"),
            html.P(" · ".join(part for part in (row["who"], row["method"], row["source"]) if part), className="muted"),
            *([html.P(why, className="muted")] if why else []),
        ]))
    if len(rows) > PHONE_EVENTS:
        events.append(html.Li(f"The newest {PHONE_EVENTS} of {len(rows)}; a wider screen shows every one.",
                              className="muted"))
    return events


def problems_view(problems: list[str]):
    """Where the arrays and the purchases disagree, when they do."""
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
    rows = timeline_rows(customer, tz, currency, staff)
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
        "rows": rows,
        "events": timeline_list(rows),
        "timelineNote": (f"The newest {HISTORY_LIMIT} purchases and their revocations; the audit log has older ones."
                         if more else "Purchases and revocations, newest first."),
    }


def register(app, db: Database, tz: ZoneInfo, currency: str) -> None:
    """The refresh: the customer redrawn when the data version moves, or at once after a revocation here."""
    outputs = {
        "name": Output(NAME, "children"), "identity": Output(IDENTITY, "children"),
        "total": Output(TOTAL, "children"), "totalNote": Output(TOTAL_NOTE, "children"),
        "ownedCount": Output(OWNED_COUNT, "children"), "badge": Output(BADGE, "children"),
        "badgeClass": Output(BADGE, "className"), "badgeNote": Output(BADGE_NOTE, "children"),
        "owned": Output(OWNED, "children"), "problems": Output(PROBLEMS, "children"),
        "rows": Output(GRID, "rowData"), "events": Output(TIMELINE_LIST, "children"), "timelineNote": Output(TIMELINE_NOTE, "children"),
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
            return {**reply, "body": "hidden", "missingClass": "", "missing": missing_layout(str(user)),
                    "state": {"version": version, "user": user}}
        except Exception as error:  # noqa: BLE001 - messages.failure logs what is not core's
            said = failure(error, log, failed="Could not read this customer; see the server log.")
            # no version kept: the next answer redraws, and so clears this message
            return {**reply, "message": said.text, "messageClass": "message", "state": {"user": user}}
        admin = current_user.is_authenticated and current_user.is_admin
        staff = lambda actor: STAFF_NAMES.label(db, actor)  # noqa: E731 - the timeline's names for staff
        return {**customer_outputs(customer, admin, tz, currency, staff), "body": "", "missing": [],
                "missingClass": "hidden", "message": "", "messageClass": "message hidden",
                "updated": f"Updated {local_time(now, tz)}", "state": {"version": version, "user": user}}
