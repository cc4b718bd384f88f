"""Cohorts and retention: buyers by the month (or ISO week) of their first purchase, what each
cohort bought in every period since, and whether buyers come back.

The view lives in the query string (a shared link shows the same cohorts); the figures follow
each sale like the live page: every tick reads the data version, and reads the figures again
only when it moved (core keeps them exact in the transaction of every change).
"""

import logging
from dataclasses import asdict, dataclass
from datetime import UTC, date, datetime, timedelta

import pymongo
from dash import Input, Output, State, ctx, dcc, html, no_update
from dash.exceptions import PreventUpdate

from core import ValidationError, cohort_figures, get_data_version, retention_figures
from core.storage import utc
from core.storage.schema import KINDS
from dashboard import spreadsheet
from dashboard.callback_requests import mapping
from dashboard.cohort_tables import METRICS, cohort_csv, cohort_rows, heatmap, retention_cards
from dashboard.context import DashboardContext, current_context
from dashboard.display import local_time, method_label
from dashboard.grids import data_grid
from dashboard.messages import failure
from dashboard.query import is_date, query_args, query_string

PATH = "/insights"
TITLE = "Cohorts and retention"
NAV = "Insights"
ROLE = "viewer"

# ids
URL = "insights-url"
PERIOD = "insights-period"
KIND = "insights-kind"
METHOD = "insights-method"
PAID = "insights-paid"
DATES = "insights-dates"
METRIC = "insights-metric"
UPDATED = "insights-updated"
EXPORT = "insights-export"
DOWNLOAD = "insights-download"
MESSAGE = "insights-message"
CARDS = "insights-cards"
HEATMAP = "insights-heatmap"
GRID = "insights-grid"
INTERVAL = "insights-interval"
STATE = "insights-state"

PERIODS = {"month": "Months", "week": "ISO weeks"}
PAID_CHOICES = {"": "Paid and free", "paid": "Paid only", "free": "Free grants only"}
EARLIEST = date(2000, 1, 1)
POLL_TIMEOUT = 4.0
log = logging.getLogger(__name__)


@dataclass(frozen=True)
class InsightsView:
    """The page's choices as the URL holds them; "" means the default."""

    period: str = "month"
    kind: str = ""
    method: str = ""
    paid: str = ""
    start: str = ""  # YYYY-MM-DD: the first cohort's period holds it
    end: str = ""  # YYYY-MM-DD, included
    metric: str = "share"


QUERY_KEYS = {"period": "period", "kind": "kind", "method": "method", "paid": "paid", "start": "from", "end": "to",
              "metric": "metric"}


def parse_query(search) -> InsightsView:
    """The view a query string names; unknown choices fall back to the defaults, dates are checked later."""
    args = query_args(search)
    chosen = {name: args.get(key, "").strip()[:60] for name, key in QUERY_KEYS.items()}
    return InsightsView(
        period=chosen["period"] if chosen["period"] in PERIODS else "month",
        kind=chosen["kind"] if chosen["kind"] in KINDS else "",
        method=chosen["method"], paid=chosen["paid"] if chosen["paid"] in PAID_CHOICES else "",
        start=chosen["start"], end=chosen["end"], metric=chosen["metric"] if chosen["metric"] in METRICS else "share")


def to_query(view: InsightsView) -> str:
    defaults = InsightsView()
    return query_string({key: getattr(view, name) for name, key in QUERY_KEYS.items()
                         if getattr(view, name) != getattr(defaults, name)})


def core_options(view: InsightsView, methods) -> dict:
    """core.cohort_figures' options for a view; ValidationError, in the page's words, for a bad one."""
    options = {"period": view.period}
    if view.kind:
        options["kind"] = view.kind
    if view.method:
        if view.method not in methods:
            raise ValidationError(f"Payment method: “{view.method[:40]}” is not one this shop takes.",
                                  field="paymentMethod")
        options["paymentMethod"] = view.method
    if view.paid:
        options["paid"] = view.paid == "paid"
    start, end = _day(view.start, "start"), _day(view.end, "end")
    if start and end and end < start:
        raise ValidationError(f"Dates: the range ends ({end}) before it starts ({start}).", field="endDate")
    if start:
        options["startDate"] = datetime(start.year, start.month, start.day, tzinfo=UTC)
    if end:  # the end day whole: core's end is exclusive
        options["endDate"] = datetime(end.year, end.month, end.day, tzinfo=UTC) + timedelta(days=1)
    return options


def _day(value: str, name: str) -> date | None:
    if not value:
        return None
    try:
        day = date.fromisoformat(value)
    except ValueError:
        raise ValidationError(f"Dates: the {name} date “{value[:40]}” is not a date like 2025-03-01.",
                              field=f"{name}Date") from None
    if day < EARLIEST:
        raise ValidationError(f"Dates: the {name} date is before {EARLIEST:%Y-%m-%d}, the earliest there is.",
                              field=f"{name}Date")
    return day


def layout(path: str = PATH) -> html.Div:
    context = current_context()
    grid = data_grid(GRID, _columns(context.currency), empty="No buyers in these cohorts.", class_name="insights-grid")
    return html.Div(className="insights", children=[
        dcc.Location(id=URL, refresh=False),
        html.Div(className="topbar", children=[
            html.H1(TITLE),
            html.Div(className="actions", children=[
                html.Span("Loading…", id=UPDATED, className="updated", role="status"),
                html.Button("Export CSV", id=EXPORT, className="button", n_clicks=0),
                dcc.Download(id=DOWNLOAD),
            ]),
        ]),
        _filters(context),
        html.Div(id=MESSAGE, className="message hidden", role="alert"),
        html.H2("Retention", className="visually-hidden"),
        html.Section(id=CARDS, className="kpis insights-cards", children=[]),
        html.H2("Cohorts", className="insights-heading"),
        html.P("A buyer's cohort is the period of their first purchase that was not revoked, among the purchases "
               "the filters keep. Periods are UTC calendar months or ISO weeks.", className="muted"),
        dcc.Loading(html.Div(id=HEATMAP), type="dot", delay_show=400),
        html.H2("Cohorts by period", className="insights-heading"),
        grid,
        dcc.Interval(id=INTERVAL, interval=context.settings.refresh_ms),
        dcc.Store(id=STATE, data={}),
    ])


def _filters(context: DashboardContext) -> html.Section:
    methods = [{"label": "All payment methods", "value": ""}] + [
        {"label": method_label(m), "value": m} for m in sorted(context.payment_methods)]
    kinds = [{"label": "Courses and tests", "value": ""}] + [{"label": k.plural, "value": k.name} for k in KINDS.values()]
    return html.Section(className="filters insights-filters", **{"aria-label": "Filters"}, children=[
        _field("Cohorts by", dcc.RadioItems(id=PERIOD, options=[{"label": v, "value": k} for k, v in PERIODS.items()],
                                            value="month", inline=True, className="segmented")),
        _field("Kind", dcc.Dropdown(id=KIND, options=kinds, value="", clearable=False, searchable=False,
                                    className="select")),
        _field("Payment method", dcc.Dropdown(id=METHOD, options=methods, value="", clearable=False,
                                              searchable=False, className="select")),
        _field("Paid or free", dcc.Dropdown(id=PAID, options=[{"label": v, "value": k} for k, v in PAID_CHOICES.items()],
                                            value="", clearable=False, searchable=False, className="select")),
        _field("First purchases", dcc.DatePickerRange(id=DATES, display_format="YYYY-MM-DD", minimum_nights=0,
                                                      clearable=True, start_date_placeholder_text="12 months ago",
                                                      end_date_placeholder_text="today",
                                                      min_date_allowed=EARLIEST.isoformat(), className="dates")),
        _field("Heatmap shows", dcc.RadioItems(id=METRIC, options=[{"label": v, "value": k} for k, v in METRICS.items()],
                                               value="share", inline=True, className="segmented")),
    ])


def _field(label: str, control) -> html.Label:
    return html.Label(className="insights-field", children=[html.Span(label, className="insights-label"), control])


def _columns(currency: str) -> list[dict]:
    money = f"params.value == null ? '' : d3.format(',.2f')(params.value) + ' {currency}'"
    return [
        {"field": "cohort", "headerName": "Cohort", "minWidth": 110},
        {"field": "size", "headerName": "Cohort buyers", "type": "rightAligned", "filter": "agNumberColumnFilter"},
        {"field": "offset", "headerName": "Period", "type": "rightAligned", "filter": "agNumberColumnFilter"},
        {"field": "buyers", "headerName": "Buyers", "type": "rightAligned", "filter": "agNumberColumnFilter"},
        {"field": "share", "headerName": "Share", "type": "rightAligned", "filter": "agNumberColumnFilter",
         "valueFormatter": {"function": "d3.format('.1%')(params.value)"}},
        {"field": "revenue", "headerName": "Revenue", "type": "rightAligned", "filter": "agNumberColumnFilter",
         "valueFormatter": {"function": money}, "minWidth": 130},
        {"field": "perBuyer", "headerName": "Revenue per buyer, so far", "type": "rightAligned",
         "filter": "agNumberColumnFilter", "valueFormatter": {"function": money}, "minWidth": 170},
    ]


def register(app, context: DashboardContext) -> None:
    db, tz, currency, methods = utc(context.db), context.settings.timezone, context.currency, context.payment_methods
    controls = {"period": Input(PERIOD, "value"), "kind": Input(KIND, "value"), "method": Input(METHOD, "value"),
                "paid": Input(PAID, "value"), "start": Input(DATES, "start_date"), "end": Input(DATES, "end_date"),
                "metric": Input(METRIC, "value")}

    @app.callback(
        output={"search": Output(URL, "search"), **{name: Output(i.component_id, i.component_property)
                                                    for name, i in controls.items()}},
        inputs={"search": Input(URL, "search"), **controls},
    )
    def sync_url(search, **values):
        """The URL and the controls say the same thing; whichever changed wins."""
        from_url = ctx.triggered_id in (None, URL)
        if from_url:
            view = parse_query(search)
        else:
            if bool(values["start"]) != bool(values["end"]):
                raise PreventUpdate  # half a range: wait for its other end
            view = InsightsView(**{name: (v or "").strip() if isinstance(v, str) else "" for name, v in values.items()})
            view = parse_query(to_query(view))  # what a URL would say: unknown choices fall back alike
        shown = asdict(view)
        for name in ("start", "end"):  # a bad date stays in the URL (and gets a message), not in the picker
            shown[name] = shown[name] if is_date(shown[name]) else None
        query = to_query(view)
        return {"search": no_update if from_url or query == (search or "") else query, **shown}

    @app.callback(
        output={"cards": Output(CARDS, "children"), "heatmap": Output(HEATMAP, "children"),
                "rows": Output(GRID, "rowData"), "message": Output(MESSAGE, "children"),
                "messageClass": Output(MESSAGE, "className"), "updated": Output(UPDATED, "children"),
                "state": Output(STATE, "data")},
        inputs={"tick": Input(INTERVAL, "n_intervals"), "search": Input(URL, "search")},
        state={"state": State(STATE, "data")},
    )
    def load(tick, search, state):
        """The figures of the URL's view; each tick only a point read unless the data changed."""
        state, search, now = mapping(state), search or "", datetime.now(UTC)
        view = parse_query(search)
        try:
            with pymongo.timeout(POLL_TIMEOUT):
                version = get_data_version(db)
                if state.get("version") == version and state.get("search") == search:
                    return _reply(no_update, no_update, no_update, no_update, no_update, now, tz, state)
                options = core_options(view, methods)
                figures = cohort_figures(db, options)
                retention = retention_figures(db, {k: v for k, v in options.items()
                                                   if k in ("kind", "paymentMethod", "paid")})
        except Exception as error:  # noqa: BLE001 - messages.failure logs what is not core's
            said = failure(error, log, failed="Could not read the cohorts; see the server log.")
            if said.refused:  # the view is wrong: nothing to show until it changes
                return _reply([], "", [], said.text, "message", now, tz, {"search": search})
            return _reply(no_update, no_update, no_update, said.text, "message", now, tz, state)
        return _reply(retention_cards(retention), heatmap(figures, view.metric, currency, now), cohort_rows(figures), "",
                      "message hidden", now, tz, {"version": version, "search": search})

    @app.callback(Output(DOWNLOAD, "data"), Input(EXPORT, "n_clicks"), State(URL, "search"), prevent_initial_call=True)
    def export(_, search):
        view = parse_query(search)
        try:
            with pymongo.timeout(POLL_TIMEOUT * 3):
                figures = cohort_figures(db, core_options(view, methods))
        except Exception:  # noqa: BLE001 - the page's message line already says what is wrong with the view
            log.exception("cohort export failed")
            raise PreventUpdate from None
        return spreadsheet.download(cohort_csv(figures), f"cohorts-{view.period}-{datetime.now(UTC):%Y%m%d-%H%M%S}.csv")


def _reply(cards, heat, rows, message, message_class, now, tz, state) -> dict:
    return {"cards": cards, "heatmap": heat, "rows": rows, "message": message, "messageClass": message_class,
            "updated": f"Checked {local_time(now, tz)}", "state": state}

