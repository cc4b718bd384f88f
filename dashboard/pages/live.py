"""The live revenue page: its ids, layout and callbacks. Callbacks read inputs, call the data
layer, and hand rows to the pure builders in dashboard/figures.py."""

import contextvars
import json
import logging
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime

import pymongo
from dash import Input, Output, State, ctx, dcc, html, no_update
from dash.exceptions import PreventUpdate
from plotly.io.json import to_json_plotly
from pymongo.errors import PyMongoError

from core import PurchaseError, get_data_version
from dashboard import data, figures, shell, spreadsheet
from dashboard.callback_requests import mapping
from dashboard.context import DashboardContext, current_context
from dashboard.display import local_time, method_label, money_text, note, today_in, trend, value
from dashboard.filters import (
    EARLIEST,
    GRANULARITIES,
    KINDS,
    NOT_MIGRATED,
    PRESETS,
    View,
    describe,
    from_controls,
    parse_query,
    same_query,
    shown_dates,
    to_query,
)
from dashboard.messages import TOO_SLOW, UNREACHABLE, failure, outage
from dashboard.shared import RenderCache, SharedReading

PATH = "/"
TITLE = "Live revenue"
NAV = "Live revenue"
ROLE = "viewer"

# ids
URL = "live-url"  # the page's own view of the URL: its query string holds the filters
UPDATED = "live-updated"  # "last sale 06:17", with each render
CHECKED = "live-checked"  # when the server last answered a tick: every tick, even with nothing new
CHECKED_TEXT = "live-checked-text"  # "checked just now", kept by the browser between ticks
PAUSE = "live-pause"
EXPORT = "live-export"
DOWNLOAD = "live-download"
MESSAGE = "live-message"
BODY = "live-body"
PRESET = "live-preset"
DATES = "live-dates"
DATES_BOX = "live-dates-box"
KIND = "live-kind"
METHOD = "live-method"
GRANULARITY = "live-granularity"
REVENUE_TODAY = "live-revenue-today"
PURCHASES_TODAY = "live-purchases-today"
REVENUE_24H = "live-revenue-24h"
PURCHASES_24H = "live-purchases-24h"
AOV = "live-aov"
BUYERS = "live-buyers"
REVOKED = "live-revoked"
KPI_CARDS = (REVENUE_TODAY, PURCHASES_TODAY, REVENUE_24H, PURCHASES_24H, AOV, BUYERS, REVOKED)
SPARK_CARDS = (REVENUE_TODAY, PURCHASES_TODAY, REVENUE_24H, PURCHASES_24H, AOV)
REVENUE_CHART = "live-revenue-chart"
KIND_CHART = "live-kind-chart"
TOP_COURSES = "live-top-courses"
TOP_TESTS = "live-top-tests"
METHODS_CHART = "live-methods-chart"
BUYERS_CHART = "live-buyers-chart"
COMPED_CHART = "live-comped-chart"
RANGE_LABEL = "live-range-label"
DATES_START, DATES_END = "live-dates-start", "live-dates-end"  # the date picker's two inputs
CHARTS = (REVENUE_CHART, KIND_CHART, TOP_COURSES, TOP_TESTS, METHODS_CHART, BUYERS_CHART, COMPED_CHART)
FEED = "live-feed"
INTERVAL = "live-interval"
BUYERS_INTERVAL = "live-buyers-interval"
STATE = "live-state"
BUYERS_STATE = "live-buyers-state"


log = logging.getLogger(__name__)
RENDER_PARTS = 6  # threads that read the parts of renders at once (three per render, two renders)
GRAPH_CONFIG = {"displayModeBar": False}
# A poll must end well within its interval, even with the database gone: Dash ignores the
# reply to a request that a newer tick has overtaken, and a page whose every reply is
# overtaken never updates again.
POLL_SHARE = 0.5
BUYERS_POLL_MS = 5000
# how long one read of the data version serves every tab of the process: a sale reaches the
# screen up to this much later, and a hundred tabs cost five reads a second, not a hundred
VERSION_FRESH = 0.2
# the charts the main poll draws; the buyers chart has its own poll
ROLLUP_CHARTS = tuple(chart for chart in CHARTS if chart != BUYERS_CHART)
EXPORT_TIMEOUT = 10.0

# What the main poll draws, by name: every reply names the outputs it sets.
FIGURE_OUTPUTS = {
    **{f"{card}.value": Output(value(card), "children") for card in KPI_CARDS if card != BUYERS},
    **{f"{card}.note": Output(note(card), "children") for card in KPI_CARDS if card != BUYERS},
    **{f"{card}.noteClass": Output(note(card), "className") for card in KPI_CARDS if card != BUYERS},
    **{f"{card}.trend": Output(trend(card), "children") for card in SPARK_CARDS},
    **{chart: Output(chart, "figure") for chart in ROLLUP_CHARTS},
    "feed": Output(FEED, "children"),
    "updated": Output(UPDATED, "children"),
    "range": Output(RANGE_LABEL, "children"),
}
STATUS_OUTPUTS = {
    "banner": Output(shell.BANNER, "children", allow_duplicate=True),
    "bannerClass": Output(shell.BANNER, "className", allow_duplicate=True),
    "bodyClass": Output(BODY, "className"),
    "message": Output(MESSAGE, "children"),
    "messageClass": Output(MESSAGE, "className"),
    "state": Output(STATE, "data"),
    "checked": Output(CHECKED, "data"),
}
POLL_OUTPUTS = {**FIGURE_OUTPUTS, **STATUS_OUTPUTS}


def reply(**values) -> dict:
    """A poll's reply: the named outputs given, every other one left as it is."""
    unknown = set(values) - set(POLL_OUTPUTS)
    if unknown:
        raise KeyError(f"not outputs of the poll: {sorted(unknown)}")
    return {name: values.get(name, no_update) for name in POLL_OUTPUTS}


def layout(path: str = PATH) -> html.Div:
    """The page; filters arrive from the URL through the sync callback."""
    context = current_context()
    return html.Div(className="live", children=[
        dcc.Location(id=URL, refresh=False),
        html.Div(className="topbar", children=[
            html.H1(TITLE),
            html.Div(className="actions", children=[
                html.Span(className="updated", role="status", children=[
                    html.Span("checking…", id=CHECKED_TEXT), " · ", html.Span("…", id=UPDATED)]),
                dcc.Store(id=CHECKED),
                html.Button("Pause", id=PAUSE, className="button live", n_clicks=0),
                html.Button("Export CSV", id=EXPORT, className="button", n_clicks=0),
                dcc.Download(id=DOWNLOAD),
            ]),
        ]),
        html.Div(id=MESSAGE, className="message hidden"),
        _filters(context.payment_methods),
        html.Div(id=BODY, className="body", children=[
            html.H2("Key figures", className="visually-hidden"),
            html.Section(className="kpis", children=[
                _kpi("Revenue today", REVENUE_TODAY, sparkline=True),
                _kpi("Purchases today", PURCHASES_TODAY, sparkline=True),
                _kpi("Revenue 24 h", REVENUE_24H, sparkline=True),
                _kpi("Purchases 24 h", PURCHASES_24H, sparkline=True),
                _kpi("Average order value", AOV, sparkline=True),
                _kpi("Unique buyers", BUYERS),
                _kpi("Revoked", REVOKED),
            ]),
            html.H2(["Range: ", html.Span(id=RANGE_LABEL)], className="range"),
            html.Div(className="grid", children=[
                _chart("Revenue over time", REVENUE_CHART, wide=True),
                _chart("Courses and tests", KIND_CHART),
                _chart("Payment methods", METHODS_CHART),
                _chart("Top courses", TOP_COURSES),
                _chart("Top tests", TOP_TESTS),
                _chart("New and repeat buyers", BUYERS_CHART),
                _chart("Paid and free grants", COMPED_CHART),
                html.Section(className="panel wide", children=[
                    html.H3("Latest purchases and revocations"),
                    html.Div(id=FEED, className="feed"),
                ]),
            ]),
        ]),
        dcc.Interval(id=INTERVAL, interval=context.settings.refresh_ms),
        dcc.Interval(id=BUYERS_INTERVAL, interval=BUYERS_POLL_MS),
        dcc.Store(id=STATE, data={}),
        dcc.Store(id=BUYERS_STATE, data={}),
    ])


def _filters(payment_methods) -> html.Section:
    methods = [{"label": "All payment methods", "value": ""},
               {"label": "All but migrated records", "value": NOT_MIGRATED}] + [
        {"label": method_label(m), "value": m} for m in sorted(payment_methods)]
    # every control is named for screen readers (a legend or a label, visually hidden: the
    # choices say what they are); the pills are native radios, moved between with the arrow keys
    return html.Section(className="filters", **{"aria-label": "Filters"}, children=[
        html.Fieldset(className="pills-group", children=[
            html.Legend("Range", className="visually-hidden"),
            dcc.RadioItems(id=PRESET, className="pills", inputClassName="pill-input", labelClassName="pill",
                           options=[{"label": v, "value": k} for k, v in PRESETS.items()], value="30d", inline=True),
        ]),
        html.Div(id=DATES_BOX, className="hidden", children=[
            dcc.DatePickerRange(id=DATES, display_format="YYYY-MM-DD", minimum_nights=0, clearable=False,
                                min_date_allowed=EARLIEST.isoformat(), start_date_placeholder_text="Start date",
                                start_date_id=DATES_START, end_date_id=DATES_END,
                                end_date_placeholder_text="End date"),
        ]),
        html.Label("Kind", htmlFor=KIND, className="visually-hidden"),
        dcc.Dropdown(id=KIND, className="select", clearable=False, searchable=False, value="",
                     options=[{"label": v, "value": k} for k, v in KINDS.items()]),
        html.Label("Payment method", htmlFor=METHOD, className="visually-hidden"),
        dcc.Dropdown(id=METHOD, className="select", clearable=False, searchable=False, value="",
                     options=methods),
        html.Fieldset(className="pills-group", children=[
            html.Legend("Granularity", className="visually-hidden"),
            dcc.RadioItems(id=GRANULARITY, className="pills", inputClassName="pill-input", labelClassName="pill",
                           options=[{"label": v, "value": k} for k, v in GRANULARITIES.items()], value="",
                           inline=True),
        ]),
    ])


def _kpi(label: str, card: str, sparkline: bool = False) -> html.Section:
    children = [html.H3(label), html.P("…", id=value(card), className="value"),
                html.P("", id=note(card), className="note")]
    if sparkline:
        # plain bars in CSS: five more Plotly graphs would double the page's drawing time
        children.append(html.Div(id=trend(card), className="spark", **{"aria-hidden": "true"}))
    return html.Section(id=card, className="card", children=children)


def _chart(title: str, chart_id: str, wide: bool = False) -> html.Section:
    return html.Section(className="panel wide" if wide else "panel", children=[
        html.H3(title),
        dcc.Graph(id=chart_id, config=GRAPH_CONFIG, figure=figures.empty_figure(figures.LOADING_MESSAGE)),
    ])


def register(app, context: DashboardContext) -> None:
    """Wire the page's callbacks to the context's database."""
    db, methods, currency = context.db, context.payment_methods, context.currency
    tz, core_settings = context.settings.timezone, context.settings.core
    poll_timeout = context.settings.refresh_ms / 1000 * POLL_SHARE
    buyers_timeout = BUYERS_POLL_MS / 1000 * POLL_SHARE

    @app.callback(
        output={
            "search": Output(URL, "search"),
            "preset": Output(PRESET, "value"),
            "start": Output(DATES, "start_date"),
            "end": Output(DATES, "end_date"),
            "kind": Output(KIND, "value"),
            "method": Output(METHOD, "value"),
            "granularity": Output(GRANULARITY, "value"),
            "datesClass": Output(DATES_BOX, "className"),
            "latest": Output(DATES, "max_date_allowed"),
        },
        inputs={
            "search": Input(URL, "search"),
            "preset": Input(PRESET, "value"),
            "start": Input(DATES, "start_date"),
            "end": Input(DATES, "end_date"),
            "kind": Input(KIND, "value"),
            "method": Input(METHOD, "value"),
            "granularity": Input(GRANULARITY, "value"),
        },
    )
    def sync_url(search, preset, start, end, kind, method, granularity):
        """The URL and the controls say the same thing; whichever changed wins."""
        from_url = ctx.triggered_id in (None, URL)
        today = today_in(tz, datetime.now(UTC))
        if from_url:
            view = parse_query(search, methods)
        else:
            if ctx.triggered_id == DATES and (not start or not end):
                raise PreventUpdate  # halfway through picking a range: wait for its other end
            view = from_controls(preset, start, end, kind, method, granularity)
            if view.preset == "custom" and view.start is None:
                # "Custom" chosen: start from the range the page was showing
                shown = parse_query(search, methods)
                first, last = shown_dates(shown, today)
                view = from_controls("custom", first.isoformat(), last.isoformat(), kind, method, granularity)
        query = to_query(view)
        # a URL that arrived stays as it is, unless what it asked for could not be shown (a
        # custom range out of bounds, hours for 90 days): then it says what the page shows
        kept = from_url and (not search or same_query(search, query))
        # dates are sent back only when they differ: setting them again while a person picks
        # the range's end sends the picker back to its start
        first = view.start.isoformat() if view.start else None
        last = view.end.isoformat() if view.end else None
        return {
            "search": no_update if kept or query == search else query,
            "preset": view.preset,
            "start": first if first and first != (start or "")[:10] else no_update,
            "end": last if last and last != (end or "")[:10] else no_update,
            "kind": view.kind,
            "method": view.method,
            "granularity": view.granularity,
            "datesClass": "dates" if view.preset == "custom" else "hidden",
            "latest": today.isoformat(),
        }

    # shared by every tab this process serves: one version read at a time, one render per change
    versions = SharedReading(lambda: get_data_version(db), fresh=VERSION_FRESH, timeout=poll_timeout,
                             is_outage=lambda error: outage(error) == UNREACHABLE)
    renders = RenderCache()
    parts = ThreadPoolExecutor(max_workers=RENDER_PARTS, thread_name_prefix="render-part")
    app.server.extensions["live_renders"] = renders
    # this app's threads end with its database; another app in the process has its own
    app.server.extensions["purchase_database"].on_close.extend(
        [versions.close, renders.close, lambda: parts.shutdown(wait=False, cancel_futures=True)])

    @app.callback(
        output=POLL_OUTPUTS,
        inputs={"tick": Input(INTERVAL, "n_intervals"), "search": Input(URL, "search")},
        state={"state": State(STATE, "data")},
        prevent_initial_call="initial_duplicate",
    )
    def poll(tick, search, state):
        """Each tick: the shared data version; figures only when it changed, rendered once for all tabs."""
        state = mapping(state)
        view = parse_query(search, methods)
        now = datetime.now(UTC)
        key = f"{to_query(view)}|{now:%Y-%m-%dT%H}"
        try:
            version = versions.get(poll_timeout)
            if _tab_shows(state, key, version):
                return reply(checked=_stamp())
            version, rendered = renders.get(key, version, lambda: Rendered(*render(context, view, now, parts)), poll_timeout)
            if _tab_shows(state, key, version):
                return reply(checked=_stamp())  # the only render ready is one this tab has (or an older one)
        except PreventUpdate:
            raise
        except TimeoutError:
            raise PreventUpdate from None  # slow is not down: the render goes on, a later tick takes it
        except PyMongoError as error:  # core's DatabaseUnavailableError too: told apart by type
            down = outage(error)
            if down != UNREACHABLE:
                # slow is not down: keep the figures, the next tick tries again
                if down != TOO_SLOW:
                    log.exception("poll failed")
                raise PreventUpdate from None
            if state.get("downSince"):
                raise PreventUpdate from None  # the banner is up already
            since = local_time(now, tz)
            return reply(banner=f"Database unreachable since {since}, retrying", bannerClass="banner",
                         bodyClass="body stale", state={**state, "downSince": since})
        except Exception as error:  # noqa: BLE001 - messages.failure logs what is not core's
            said = failure(error, log, failed="Could not update the figures; see the server log.")
            # core's refusal of this view is final for it; anything else, the next tick tries again
            return reply(banner="", bannerClass="banner hidden", bodyClass="body", message=said.text,
                         messageClass="message", state={**state, "key": key} if said.refused else state)
        seen = state.get("seen", 0)
        return reply(**rendered.outputs, feed=rendered.feed_table(seen), banner="", bannerClass="banner hidden",
                     bodyClass="body", message="", messageClass="message hidden", checked=_stamp(),
                     state={"version": version, "key": key, "seen": max([seen, *(row["version"] for row in rendered.feed)])})

    @app.callback(
        output={
            "value": Output(value(BUYERS), "children"),
            "note": Output(note(BUYERS), "children"),
            "chart": Output(BUYERS_CHART, "figure"),
            "state": Output(BUYERS_STATE, "data"),
        },
        inputs={"tick": Input(BUYERS_INTERVAL, "n_intervals"), "search": Input(URL, "search")},
        state={"state": State(BUYERS_STATE, "data")},
    )
    def poll_buyers(tick, search, state):
        """Buyer figures need a pipeline; core caches it, so most ticks send nothing."""
        view = parse_query(search, methods)
        try:
            with pymongo.timeout(buyers_timeout):
                buyers = data.view_buyers(db, view, tz, datetime.now(UTC), core_settings)
        except (PyMongoError, PurchaseError):
            raise PreventUpdate from None
        stamp = f"{to_query(view)}|{buyers['asOf'].isoformat()}"
        if mapping(state).get("stamp") == stamp:
            raise PreventUpdate
        return {
            "value": f"{buyers['uniqueBuyers']:,}",
            "note": f"{buyers['repeatBuyers']:,} repeat · as of {local_time(buyers['asOf'], tz)}",
            "chart": figures.buyers_figure(buyers),
            "state": {"stamp": stamp},
        }

    # "checked just now", "checked 40 s ago": measured by the browser's own clock from the last
    # answer's arrival, so a server that stopped answering shows its age; "paused" when paused
    app.clientside_callback(
        """function(checked, tick, paused) {
            const by = (window.dash_clientside.callback_context.triggered || []).map(t => t.prop_id);
            if (by.includes('CHECKED_ID.data')) { window.liveCheckedAt = Date.now(); }
            if (paused) { return 'paused'; }
            if (!window.liveCheckedAt) { return 'checking…'; }
            const s = Math.round((Date.now() - window.liveCheckedAt) / 1000);
            return s < 5 ? 'checked just now' : s < 120 ? 'checked ' + s + ' s ago'
                : 'checked ' + Math.floor(s / 60) + ' min ago';
        }""".replace("CHECKED_ID", CHECKED),
        Output(CHECKED_TEXT, "children"),
        Input(CHECKED, "data"), Input(INTERVAL, "n_intervals"), Input(INTERVAL, "disabled"),
    )

    @app.callback(
        Output(INTERVAL, "disabled"),
        Output(PAUSE, "children"),
        Output(PAUSE, "className"),
        Input(PAUSE, "n_clicks"),
    )
    def pause(clicks):
        paused = bool(clicks) and clicks % 2 == 1
        return paused, ("Resume" if paused else "Pause"), ("button paused" if paused else "button live")

    @app.callback(
        Output(DOWNLOAD, "data"),
        Output(MESSAGE, "children", allow_duplicate=True),
        Output(MESSAGE, "className", allow_duplicate=True),
        Input(EXPORT, "n_clicks"),
        State(URL, "search"),
        prevent_initial_call=True,
    )
    def export(_, search):
        view = parse_query(search, methods)
        now = datetime.now(UTC)
        try:
            with pymongo.timeout(EXPORT_TIMEOUT):
                content = data.export_csv(
                    view, data.view_figures(db, view, tz, now), data.view_buyers(db, view, tz, now, core_settings),
                    data.kpis(db, view, tz, now), currency, tz)
        except Exception as error:  # noqa: BLE001 - messages.failure logs what is not core's
            said = failure(error, log, failed="see the server log.",
                           unanswered="the database did not answer in time; try again.")
            return no_update, f"Could not export: {said.text}", "message"
        name = f"purchases-{to_query(view)[1:].replace('&', '_').replace('=', '-')}-{now:%Y%m%d-%H%M%S}.csv"
        return spreadsheet.download(content, name), no_update, no_update


def in_parallel(pool: ThreadPoolExecutor, *calls):
    """Each call's result, the calls run at once on `pool`; each keeps the caller's time limit (pymongo.timeout)."""
    futures = [pool.submit(contextvars.copy_context().run, call) for call in calls]
    return [future.result() for future in futures]


def _tab_shows(state: dict, key: str, version) -> bool:
    """True when the tab shows this view at this version or a newer one, and no outage banner."""
    shown = state.get("version")
    return shown is not None and version <= shown and key == state.get("key") and not state.get("downSince")


def render(context: DashboardContext, view: View, now: datetime, parts: ThreadPoolExecutor) -> tuple[dict, list[dict]]:
    """The figure outputs of a poll that found new data, by name, and the feed rows."""
    db, currency, tz = context.db, context.currency, context.settings.timezone
    # three independent groups of reads at once: on the embedded engine each read may wait
    # behind a sale in the database's line, and reads sent together wait together
    figs, k, feed = in_parallel(parts, lambda: data.view_figures(db, view, tz, now), lambda: data.kpis(db, view, tz, now),
                                lambda: data.feed_rows(db, view, tz, currency))
    money = money_parts
    paid = figs["totalPurchases"] - figs["comped"]["count"]
    aov_series = [r["revenue"] / r["count"] if r["count"] else 0 for r in figs["revenueByPeriod"]]
    cards = {
        REVENUE_TODAY: (money(k.revenue_today, currency), "since midnight", "note"),
        PURCHASES_TODAY: (f"{k.purchases_today:,}", "since midnight", "note"),
        REVENUE_24H: (money(k.revenue_24h, currency), *data.change_text(k.revenue_24h, k.revenue_prev_24h)),
        PURCHASES_24H: (f"{k.purchases_24h:,}", *data.change_text(k.purchases_24h, k.purchases_prev_24h)),
        AOV: (money(figs["averageOrderValue"], currency), f"{paid:,} paid, {figs['comped']['count']:,} free", "note"),
        REVOKED: (f"{figs['revoked']['count']:,}",
                  money_text(figs["revoked"]["revenue"], currency) + " refunded or removed", "note"),
    }
    trends = {
        REVENUE_TODAY: _running(k.hourly_revenue, now, tz),
        PURCHASES_TODAY: _running(k.hourly_purchases, now, tz),
        REVENUE_24H: k.hourly_revenue,
        PURCHASES_24H: k.hourly_purchases,
        AOV: aov_series,
    }
    outputs = {
        **{f"{card}.value": shown for card, (shown, _, _) in cards.items()},
        **{f"{card}.note": text for card, (_, text, _) in cards.items()},
        **{f"{card}.noteClass": css for card, (_, _, css) in cards.items()},
        **{f"{card}.trend": _spark(values) for card, values in trends.items()},
        REVENUE_CHART: figures.revenue_figure(figs["revenueByPeriod"], figs["granularity"], currency),
        KIND_CHART: figures.kind_figure(figs, currency),
        METHODS_CHART: figures.payment_figure(figs["paymentMethods"], currency),
        TOP_COURSES: figures.top_items_figure(figs["popularCourses"], currency),
        TOP_TESTS: figures.top_items_figure(figs["popularTests"], currency, figures.TEAL),
        COMPED_CHART: figures.comped_figure(figs),
        "updated": last_sale_text(feed, now, tz),
        "range": f"{describe(view)} · by {figs['granularity']}",
    }
    return outputs, feed


def money_parts(amount: float, currency: str) -> list:
    """Money for a KPI card: the figure, then the currency in smaller type (a six-figure
    amount still fits a card at laptop widths); its text is money_text's."""
    number, unit = money_text(amount, currency).rsplit(" ", 1)
    return [number, html.Span(f" {unit}", className="unit")]


def last_sale_text(feed: list[dict], now: datetime, tz) -> str:
    """When the newest sale the view shows happened: "last sale 06:17" (with the day when not today)."""
    sale = next((row["at"] for row in feed if row["event"] == "Purchase"), None)
    if sale is None:
        return "no recent sale"
    same_day = sale.astimezone(tz).date() == now.astimezone(tz).date()
    return f"last sale {local_time(sale, tz, '%H:%M' if same_day else '%b %d %H:%M')}"


def _stamp() -> int:
    """A value that differs at each answer, so the browser notes the moment it arrived."""
    return time.monotonic_ns()


def _spark(values: list) -> list:
    return [html.Span(style={"height": f"{max(height, 2)}%"}) for height in figures.spark_heights(values)]


def _running(hourly: list, now: datetime, tz) -> list:
    """Today's hours only, for the "today" cards' trend."""
    hours_today = now.astimezone(tz).hour + 1
    return hourly[-hours_today:]


class Rendered:
    """One render of a view, shared by every tab: its outputs already in the JSON form Dash
    sends, so a tab's reply costs a plain encode, not a walk of thousands of components
    (5.6 ms a reply, measured, half of it that walk)."""

    FEED_TABLES = 16  # feed tables kept per render, one per `seen` the tabs arrive with

    def __init__(self, outputs: dict, feed: list[dict]):
        self.outputs, self.feed = plain(outputs), feed
        self._tables: dict = {}

    def feed_table(self, seen: int):
        """The feed with the rows newer than `seen` marked new: most tabs share a `seen`."""
        table = self._tables.get(seen)
        if table is None:
            table = plain(_feed_table(self.feed, seen))
            if len(self._tables) < self.FEED_TABLES:
                self._tables[seen] = table
        return table


def plain(value):
    """Components and figures as the dicts and lists of their JSON form."""
    return json.loads(to_json_plotly(value))


def _feed_table(rows: list[dict], seen: int):
    if not rows:
        return html.P("No purchases yet.", className="muted")
    head = html.Thead(html.Tr([html.Th(h) for h in ("Time", "Event", "User", "Item", "Amount", "Method")]))
    body = html.Tbody([
        html.Tr(className=("new " if seen and row["version"] > seen else "") + row["event"].lower(), children=[
            html.Td(row["time"]), html.Td(row["event"]), html.Td(row["user"]), html.Td(row["item"]),
            html.Td(row["amount"], className="num"), html.Td(row["method"]),
        ])
        for row in rows
    ])
    return html.Table([head, body], className="table")
