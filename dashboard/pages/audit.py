"""The audit log page: every change to purchases, newest first, filterable, exportable.

Filters live in the query string (a view can be shared); the table refreshes when the data version moves.
"""

import io
import logging
import re
from dataclasses import asdict, dataclass
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pymongo
from dash import Input, Output, State, ctx, dcc, html, no_update
from dash.exceptions import PreventUpdate
from pymongo.database import Database
from pymongo.errors import PyMongoError

from api.keys import list_keys
from api.webhooks import ACTOR as WEBHOOK_ACTOR
from core import ItemRef, PurchaseError, ValidationError, get_audit_log, get_data_version
from core.audit import ACTIONS, COUNT_CAP, MAX_LIMIT, SOURCES, actors_matching, count_audit_log, users_matching
from core.catalog import item_ref, list_items
from core.storage import retry_when_busy, utc
from core.validation import EARLIEST_DATE
from dashboard import spreadsheet
from dashboard.accounts import ACCOUNTS, STAFF_NAMES
from dashboard.auth import require_admin
from dashboard.callback_requests import mapping
from dashboard.context import DashboardContext, current_context
from dashboard.display import local_time, method_label, reason_label
from dashboard.grids import data_grid
from dashboard.messages import failure
from dashboard.query import is_date, query_args, query_string

PATH = "/audit"
TITLE = "Audit log"
NAV = "Audit log"
ROLE = "admin"

# ids
URL = "audit-url"  # the page's own view of the URL: its query string holds the filters
ACTOR = "audit-actor"
USER = "audit-user"
ITEM = "audit-item"
SOURCE = "audit-source"
ACTION = "audit-action"
DATES = "audit-dates"
CLEAR = "audit-clear"
UPDATED = "audit-updated"
EXPORT = "audit-export"
DOWNLOAD = "audit-download"
EXPORT_NOTE = "audit-export-note"
MESSAGE = "audit-message"
COUNT = "audit-count"
GRID = "audit-grid"
INTERVAL = "audit-interval"
STATE = "audit-state"

REFRESH_MS = 5000
SHOWN = 1000  # rows sent to the grid; the export takes up to MAX_LIMIT
POLL_TIMEOUT = 4.0
EXPORT_TIMEOUT = 20.0
DASH = "—"
EARLIEST = EARLIEST_DATE.date()  # core answers no date before it
log = logging.getLogger(__name__)


@dataclass(frozen=True)
class AuditView:
    """The filters as the URL holds them; empty strings mean "any"."""

    actor: str = ""  # words of a staff name or email, an API key's name, or any actor in full
    user: str = ""  # a user id, or words of a customer's name or email
    item: str = ""  # an item_ref: "course:<id>" or "test:<id>"
    source: str = ""
    action: str = ""
    start: str = ""  # YYYY-MM-DD, in the dashboard's time zone
    end: str = ""


def parse_query(search: str | None) -> AuditView:
    """The view a query string names; values are checked later, so a bad one gets a message."""
    args = query_args(search)
    return AuditView(**{name: args.get(key, "").strip()[:200] for name, key in QUERY_KEYS.items()})


def to_query(view: AuditView) -> str:
    """The query string of a view, without empty filters."""
    return query_string({key: getattr(view, name) for name, key in QUERY_KEYS.items()})


QUERY_KEYS = {"actor": "actor", "user": "user", "item": "item", "source": "source", "action": "action",
              "start": "from", "end": "to"}


def core_filters(db: Database, view: AuditView, tz: ZoneInfo) -> tuple[dict, str]:
    """core.get_audit_log's filters for a view, and a note about them; PurchaseError when one is bad."""
    filters, note = {}, ""
    if view.actor:
        filters["actors"] = actors_matching(view.actor, known_actors(db))
    if view.user:
        filters["users"], note = users_matching(db, view.user)
    if view.item:
        try:
            filters["item"] = ItemRef.parse(view.item).id
        except ValidationError as error:
            raise ValidationError(f"Item: {error}", field="item") from None
    if view.source:
        filters["source"] = view.source
    if view.action:
        filters["action"] = view.action
    start, end = _day(view.start, "start"), _day(view.end, "end")
    if start and end and end < start:
        raise ValidationError(f"the range ends ({end}) before it starts ({start})", field="end")
    if start:
        filters["startDate"] = datetime.combine(start, time.min, tzinfo=tz)
    if end:  # core adds a millisecond to a datetime end: this ends at the next local midnight
        filters["endDate"] = datetime.combine(end + timedelta(days=1), time.min, tzinfo=tz) - timedelta(milliseconds=1)
    return filters, note


def known_actors(db: Database) -> dict[str, str]:
    """Who acts on purchases, with what else names them: staff (by email; their names), API keys, the webhook."""
    staff = retry_when_busy(lambda: list(db[ACCOUNTS].find({}, {"name": 1})))
    return {**{doc["_id"]: doc.get("name") or "" for doc in staff}, WEBHOOK_ACTOR: "",
            **{f"api:{key.name}": "" for key in list_keys(db)}}


def _day(value: str, name: str) -> date | None:
    day = is_date(value) and date.fromisoformat(value)
    if value and not day:
        raise ValidationError(f"Dates: the {name} date “{value[:40]}” is not a date like 2025-03-01.", field=name)
    if day and day < EARLIEST:  # core answers nothing before it: said in the page's words
        raise ValidationError(f"Dates: the {name} date is before {EARLIEST:%Y-%m-%d}, the earliest there is.",
                              field=name)
    return day or None


MARKDOWN_SPECIAL = re.compile(r"([\\`*_{}\[\]()#+\-.!<>|])")


def audit_rows(entries: list[dict], tz: ZoneInfo, currency: str, staff=lambda actor: actor) -> list[dict]:
    """Grid rows for audit entries, in the order given."""
    rows = []
    for entry in entries:
        user = str(entry["user"])
        name = entry.get("userName") or "(no name)"
        rows.append({
            "id": str(entry["_id"]),
            "time": local_time(entry["at"], tz, "%Y-%m-%d %H:%M:%S"),
            "action": entry["action"],
            "source": entry["source"],
            "actor": staff(entry.get("actor")) or DASH,
            "user": f"[{_markdown_text(name)}](/customers/{user})",
            "userId": user,
            "item": _item_text(entry),
            "kind": entry["kind"],
            "amount": None if entry.get("amount") is None else (  # a revocation takes the money back
                -entry["amount"] if entry["action"] == "revoke" else entry["amount"]),
            "currency": entry.get("currency") or currency,
            "method": method_label(entry["paymentMethod"]) if entry.get("paymentMethod") else "",
            "reason": reason_label(entry.get("reason")),
            "note": entry.get("note") or "",
            "idempotencyKey": entry.get("idempotencyKey") or "",
        })
    return rows


def _item_text(entry: dict) -> str:
    """The item's title; a migration's fix of a whole array names no item."""
    if "item" in entry and entry["item"] is None:
        return f"(all {entry.get('kind') or 'item'}s)"
    return entry.get("title") or f"(deleted {entry['kind']})"


def _markdown_text(text: str) -> str:
    """`text` with Markdown's special characters escaped, so a name cannot make a link of its own."""
    return MARKDOWN_SPECIAL.sub(r"\\\1", text)


CSV_FIELDS = ("time", "action", "source", "actor", "user_id", "user_name", "kind", "item_id", "item_title", "amount",
              "currency", "payment_method", "discount_code", "reason", "note", "idempotency_key", "purchase_id")


def audit_csv(entries: list[dict], tz: ZoneInfo, currency: str) -> str:
    """The entries as CSV, times in `tz` with their offset, money to the cent."""
    out = io.StringIO()
    writer = spreadsheet.Writer(out)
    writer.writerow(CSV_FIELDS)
    for e in entries:
        writer.writerow([
            e["at"].astimezone(tz).isoformat(timespec="seconds"), e["action"], e["source"], e.get("actor") or "",
            e["user"], e.get("userName") or "", e["kind"], e.get("item") or "", e.get("title") or "",
            "" if e.get("amount") is None else f"{e['amount']:.2f}", e.get("currency") or currency,
            e.get("paymentMethod") or "", e.get("discountCode") or "", e.get("reason") or "",
            e.get("note") or "", e.get("idempotencyKey") or "", e.get("purchase") or "",
        ])
    return out.getvalue()


def count_text(count: int | None, shown: int) -> str:
    """How many entries match (past COUNT_CAP: "10,000+"; None: not counted) and, when not all, which are shown."""
    if count is not None and count <= shown:
        return {0: "No entries match.", 1: "1 entry matches."}.get(count, f"{count:,} entries match, newest first.")
    total = f"More than {shown:,}" if count is None else f"{COUNT_CAP:,}+" if count > COUNT_CAP else f"{count:,}"
    return (f"{total} entries match; the newest {shown:,} are shown. Narrow the filters to see older ones, "
            f"or export (up to {MAX_LIMIT:,}).")


def layout(path: str = PATH) -> html.Div:
    """The page; the filters arrive from the URL through the sync callback."""
    context = current_context()
    grid = data_grid(GRID, _columns(context.settings.timezone), empty="No entries match.", class_name="audit-grid",
                     row_classes={"audit-revoke": "params.data.action === 'revoke'"})
    grid.dashGridOptions["suppressNoRowsOverlay"] = True  # the count line says "No entries match." already
    return html.Div(className="audit", children=[
        dcc.Location(id=URL, refresh=False),
        html.Div(className="topbar", children=[
            html.H1(TITLE),
            html.Div(className="actions", children=[
                html.Span("Loading…", id=UPDATED, className="updated"),
                html.Button("Export CSV", id=EXPORT, className="button", n_clicks=0),
                dcc.Download(id=DOWNLOAD),
            ]),
        ]),
        html.P(id=EXPORT_NOTE, className="muted export-note"),
        _filters(context),
        html.Div(id=MESSAGE, className="message hidden", role="alert"),
        html.P(id=COUNT, className="muted audit-count"),
        grid,
        dcc.Interval(id=INTERVAL, interval=REFRESH_MS),
        dcc.Store(id=STATE, data={}),
    ])


def _filters(context: DashboardContext) -> html.Section:
    return html.Section(className="filters audit-filters", children=[
        _field("Actor", dcc.Input(id=ACTOR, type="text", debounce=True, placeholder="name or email",
                                  className="audit-input")),
        _field("Customer", dcc.Input(id=USER, type="text", debounce=True, placeholder="name, email or id",
                                     className="audit-input")),
        _field("Item", dcc.Dropdown(id=ITEM, options=_item_options(context.db), placeholder="Any course or test",
                                    className="select audit-item")),
        _field("Source", dcc.Dropdown(id=SOURCE, options=[{"label": s, "value": s} for s in SOURCES],
                                      placeholder="Any source", searchable=False, className="select"), half=True),
        _field("Action", dcc.Dropdown(id=ACTION, options=[{"label": a, "value": a} for a in ACTIONS],
                                      placeholder="Any action", searchable=False, className="select"), half=True),
        _field("Dates", dcc.DatePickerRange(id=DATES, display_format="YYYY-MM-DD", minimum_nights=0, clearable=True,
                                            className="dates", min_date_allowed=EARLIEST.isoformat())),
        html.Button("Clear filters", id=CLEAR, className="button audit-clear", n_clicks=0),
    ])


def _field(label: str, control, half: bool = False) -> html.Label:
    return html.Label(className="audit-field half" if half else "audit-field",
                      children=[html.Span(label, className="audit-label"), control])


def _item_options(db: Database) -> list[dict]:
    try:
        items = list_items(db)
    except (PyMongoError, PurchaseError):
        log.exception("could not list the catalog for the audit filter")
        return []
    return [{"label": f"{item['title']} ({item['kind']})", "value": item_ref(item)} for item in items]


def _columns(tz: ZoneInfo) -> list[dict]:
    # d3 writes "−19.95": a revocation's sign as in the feed; what a person reads first fits at 1440 px
    amount = "params.value == null ? '' : d3.format(',.2f')(params.value) + ' ' + params.data.currency"
    return [
        {"field": "time", "headerName": f"Time ({tz.key})", "minWidth": 150, "flex": 1},
        {"field": "action", "headerName": "Action", "width": 90},
        {"field": "source", "headerName": "Source", "width": 95},
        {"field": "actor", "headerName": "Actor", "minWidth": 140, "flex": 1, "tooltipField": "actor"},
        {"field": "user", "headerName": "Customer", "cellRenderer": "markdown", "minWidth": 140, "flex": 1},
        {"field": "item", "headerName": "Item", "minWidth": 150, "flex": 1, "tooltipField": "item"},
        {"field": "kind", "headerName": "Kind", "width": 80},
        {"field": "amount", "headerName": "Amount", "type": "rightAligned", "filter": "agNumberColumnFilter",
         "valueFormatter": {"function": amount}, "minWidth": 115},
        {"field": "reason", "headerName": "Reason", "minWidth": 110, "tooltipField": "reason"},
        {"field": "note", "headerName": "Note", "minWidth": 140, "flex": 1, "tooltipField": "note"},
        {"field": "method", "headerName": "Payment method", "minWidth": 130},
        {"field": "userId", "headerName": "Customer id", "minWidth": 215, "cellClass": "mono"},
        {"field": "idempotencyKey", "headerName": "Idempotency key", "minWidth": 180, "cellClass": "mono"},
    ]


def register(app, context: DashboardContext) -> None:
    """Wire the page's callbacks to the context's database."""
    db, tz, currency = utc(context.db), context.settings.timezone, context.currency
    controls = {"actor": Input(ACTOR, "value"), "user": Input(USER, "value"), "item": Input(ITEM, "value"),
                "source": Input(SOURCE, "value"), "action": Input(ACTION, "value"),
                "start": Input(DATES, "start_date"), "end": Input(DATES, "end_date")}

    @app.callback(
        output={"search": Output(URL, "search"), **{name: Output(i.component_id, i.component_property)
                                                    for name, i in controls.items()}},
        inputs={"search": Input(URL, "search"), "clear": Input(CLEAR, "n_clicks"), **controls},
    )
    def sync_url(search, clear, **values):
        """The URL and the controls say the same thing; whichever changed wins."""
        from_url = ctx.triggered_id in (None, URL)
        if ctx.triggered_id == CLEAR:
            view = AuditView()
        elif from_url:
            view = parse_query(search)
        else:
            view = AuditView(**{name: (v or "").strip() if isinstance(v, str) else "" for name, v in values.items()})
        query = to_query(view)
        shown = asdict(view)
        for name in ("start", "end"):  # a bad date stays in the URL (and gets a message), not in the picker
            shown[name] = shown[name] if is_date(shown[name]) else None
        for name in ("item", "source", "action"):
            shown[name] = shown[name] or None
        # a URL that arrived stays as it is; only a change of the controls writes one
        return {"search": no_update if from_url or query == (search or "") else query, **shown}

    @app.callback(
        output={"rows": Output(GRID, "rowData"), "count": Output(COUNT, "children"),
                "message": Output(MESSAGE, "children"), "messageClass": Output(MESSAGE, "className"),
                "updated": Output(UPDATED, "children"), "state": Output(STATE, "data")},
        inputs={"tick": Input(INTERVAL, "n_intervals"), "search": Input(URL, "search")},
        state={"state": State(STATE, "data")},
    )
    def load(tick, search, state):
        """The entries of the URL's filters; each tick only a point read unless the data changed."""
        require_admin()
        state, search = mapping(state), search or ""
        now, version = datetime.now(UTC), None
        try:
            with pymongo.timeout(POLL_TIMEOUT):
                version = get_data_version(db)
                if state.get("version") == version and state.get("search") == search:
                    raise PreventUpdate
                filters, note = core_filters(db, parse_query(search), tz)
                entries = get_audit_log(db, {**filters, "limit": SHOWN + 1})
                count = len(entries) if len(entries) <= SHOWN else _count(db, filters, state, search)
        except PreventUpdate:
            raise
        except Exception as error:  # noqa: BLE001 - messages.failure logs what is not core's
            said = failure(error, log, failed="Could not read the audit log; see the server log.")
            if said.refused:  # the filters are wrong: no rows until they change
                return _load_reply([], "", said.text, now, tz, {"version": version, "search": search})
            return _load_reply(no_update, no_update, said.text, now, tz, state)
        rows = audit_rows(entries[:SHOWN], tz, currency, lambda actor: STAFF_NAMES.label(db, actor))
        return _load_reply(rows, count_text(count, len(rows)), note, now, tz,
                           {"version": version, "search": search, "count": count}, note_only=True)

    @app.callback(
        Output(DOWNLOAD, "data"),
        Output(EXPORT_NOTE, "children"),
        Input(EXPORT, "n_clicks"),
        State(URL, "search"),
        prevent_initial_call=True,
    )
    def export(_, search):
        """Up to MAX_LIMIT entries of the URL's filters as CSV; says so when there are more."""
        require_admin()
        try:
            with pymongo.timeout(EXPORT_TIMEOUT):
                filters, _ = core_filters(db, parse_query(search), tz)
                entries = get_audit_log(db, {**filters, "limit": MAX_LIMIT})
                capped = len(entries) == MAX_LIMIT and bool(get_audit_log(db, {**filters, "limit": 1,
                                                                                "skip": MAX_LIMIT}))
        except Exception as error:  # noqa: BLE001 - messages.failure logs what is not core's
            said = failure(error, log, failed="something went wrong; see the server log.",
                           unanswered="the database did not answer; try again.")
            return no_update, f"Nothing exported: {said.text}"
        now = datetime.now(UTC)
        note = (f"Exported the newest {MAX_LIMIT:,} entries only; narrow the filters to export older ones."
                if capped else f"Exported {len(entries):,} {'entry' if len(entries) == 1 else 'entries'}.")
        return spreadsheet.download(audit_csv(entries, tz, currency), f"audit-log-{now:%Y%m%d-%H%M%S}.csv"), note


def _count(db: Database, filters: dict, state: dict, search: str) -> int | None:
    """How many entries match, more than SHOWN; None when counting ran out of the poll's time."""
    if state.get("search") == search and (state.get("count") or 0) > COUNT_CAP:
        return state["count"]  # entries are never removed: still past the cap, no need to count again
    try:
        return max(count_audit_log(db, filters, COUNT_CAP), SHOWN + 1)
    except PyMongoError:  # the rows stand; the count line says "more than"
        return None


def _load_reply(rows, count, message: str, now: datetime, tz: ZoneInfo, state: dict, note_only: bool = False) -> dict:
    css = "message note" if note_only else "message"
    return {"rows": rows, "count": count, "message": message, "messageClass": css if message else "message hidden",
            "updated": f"Updated {local_time(now, tz)}", "state": state}

