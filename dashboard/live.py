"""The live revenue page: layout and callbacks. Callbacks read inputs, call the data layer,
and hand rows to the pure builders in dashboard/figures.py."""

import logging
from datetime import UTC, datetime

import pymongo
from dash import Input, Output, State, ctx, dcc, html, no_update
from dash.exceptions import PreventUpdate
from pymongo.errors import ConnectionFailure, PyMongoError

from core.errors import PurchaseError
from core.periods import floor
from core.rollups import get_data_version
from dashboard import data, figures, ids
from dashboard.filters import GRANULARITIES, KINDS, PRESETS, View, describe, from_controls, parse_query, to_query

log = logging.getLogger(__name__)
GRAPH_CONFIG = {"displayModeBar": False}
# A poll must end well within its interval, even with the database gone: Dash ignores the
# reply to a request that a newer tick has overtaken, and a page whose every reply is
# overtaken never updates again.
POLL_SHARE = 0.5
BUYERS_POLL_MS = 5000
# the charts the main poll draws; the buyers chart has its own poll
ROLLUP_CHARTS = tuple(chart for chart in ids.CHARTS if chart != ids.LIVE_BUYERS_CHART)
EXPORT_TIMEOUT = 10.0


def layout(settings) -> html.Div:
    """The page; filters arrive from the URL through the sync callback."""
    return html.Div(className="page", children=[
        dcc.Location(id=ids.LIVE_URL, refresh=False),
        html.Header(className="topbar", children=[
            html.Div([html.H1("Live revenue"),
                      html.P(["Database: ", html.Code(settings.description, id=ids.LIVE_DATABASE)], className="muted")]),
            html.Div(className="actions", children=[
                html.Span("Loading…", id=ids.LIVE_UPDATED, className="updated"),
                html.Button("Pause", id=ids.LIVE_PAUSE, className="button live", n_clicks=0),
                html.Button("Export CSV", id=ids.LIVE_EXPORT, className="button", n_clicks=0),
                dcc.Download(id=ids.LIVE_DOWNLOAD),
            ]),
        ]),
        html.Div(id=ids.LIVE_BANNER, className="banner hidden", role="alert"),
        html.Div(id=ids.LIVE_MESSAGE, className="message hidden"),
        _filters(settings),
        html.Div(id=ids.LIVE_BODY, className="body", children=[
            html.Section(className="kpis", children=[
                _kpi("Revenue today", ids.LIVE_REVENUE_TODAY, sparkline=True),
                _kpi("Purchases today", ids.LIVE_PURCHASES_TODAY, sparkline=True),
                _kpi("Revenue 24 h", ids.LIVE_REVENUE_24H, sparkline=True),
                _kpi("Purchases 24 h", ids.LIVE_PURCHASES_24H, sparkline=True),
                _kpi("Average order value", ids.LIVE_AOV, sparkline=True),
                _kpi("Unique buyers", ids.LIVE_BUYERS),
                _kpi("Revoked", ids.LIVE_REVOKED),
            ]),
            html.H2(["Range: ", html.Span(id=ids.LIVE_RANGE_LABEL)], className="range"),
            html.Div(className="grid", children=[
                _chart("Revenue over time", ids.LIVE_REVENUE_CHART, wide=True),
                _chart("Courses and tests", ids.LIVE_KIND_CHART),
                _chart("Payment methods", ids.LIVE_METHODS_CHART),
                _chart("Top courses", ids.LIVE_TOP_COURSES),
                _chart("Top tests", ids.LIVE_TOP_TESTS),
                _chart("New and repeat buyers", ids.LIVE_BUYERS_CHART),
                _chart("Paid and free grants", ids.LIVE_COMPED_CHART),
                html.Section(className="panel wide", children=[
                    html.H3("Latest purchases and revocations"),
                    html.Div(id=ids.LIVE_FEED, className="feed"),
                ]),
            ]),
        ]),
        dcc.Interval(id=ids.LIVE_INTERVAL, interval=settings.refresh_ms),
        dcc.Interval(id=ids.LIVE_BUYERS_INTERVAL, interval=BUYERS_POLL_MS),
        dcc.Store(id=ids.LIVE_STATE, data={}),
        dcc.Store(id=ids.LIVE_BUYERS_STATE, data={}),
    ])


def _filters(settings) -> html.Section:
    methods = [{"label": "All payment methods", "value": ""}] + [
        {"label": figures.method_label(m), "value": m} for m in sorted(settings.payment_methods)]
    return html.Section(className="filters", children=[
        dcc.RadioItems(id=ids.LIVE_PRESET, className="pills", inputClassName="pill-input", labelClassName="pill",
                       options=[{"label": v, "value": k} for k, v in PRESETS.items()], value="30d", inline=True),
        html.Div(id=ids.LIVE_DATES_BOX, className="hidden", children=[
            dcc.DatePickerRange(id=ids.LIVE_DATES, display_format="YYYY-MM-DD", minimum_nights=0, clearable=False),
        ]),
        dcc.Dropdown(id=ids.LIVE_KIND, className="select", clearable=False, searchable=False, value="",
                     options=[{"label": v, "value": k} for k, v in KINDS.items()]),
        dcc.Dropdown(id=ids.LIVE_METHOD, className="select", clearable=False, searchable=False, value="",
                     options=methods),
        dcc.RadioItems(id=ids.LIVE_GRANULARITY, className="pills", inputClassName="pill-input", labelClassName="pill",
                       options=[{"label": v, "value": k} for k, v in GRANULARITIES.items()], value="", inline=True),
    ])


def _kpi(label: str, card: str, sparkline: bool = False) -> html.Section:
    children = [html.H3(label), html.P("…", id=ids.value(card), className="value"),
                html.P("", id=ids.note(card), className="note")]
    if sparkline:
        # plain bars in CSS: five more Plotly graphs would double the page's drawing time
        children.append(html.Div(id=ids.trend(card), className="spark", **{"aria-hidden": "true"}))
    return html.Section(id=card, className="card", children=children)


def _chart(title: str, chart_id: str, wide: bool = False) -> html.Section:
    return html.Section(className="panel wide" if wide else "panel", children=[
        html.H3(title),
        dcc.Graph(id=chart_id, config=GRAPH_CONFIG, figure=figures.empty_figure(figures.LOADING_MESSAGE)),
    ])


def register(app, db, settings) -> None:
    """Wire the page's callbacks to `db`."""
    methods = settings.payment_methods
    currency, tz = settings.currency, settings.tz
    poll_timeout = settings.refresh_ms / 1000 * POLL_SHARE
    buyers_timeout = BUYERS_POLL_MS / 1000 * POLL_SHARE

    @app.callback(
        Output(ids.LIVE_URL, "search"),
        Output(ids.LIVE_PRESET, "value"),
        Output(ids.LIVE_DATES, "start_date"),
        Output(ids.LIVE_DATES, "end_date"),
        Output(ids.LIVE_KIND, "value"),
        Output(ids.LIVE_METHOD, "value"),
        Output(ids.LIVE_GRANULARITY, "value"),
        Output(ids.LIVE_DATES_BOX, "className"),
        Input(ids.LIVE_URL, "search"),
        Input(ids.LIVE_PRESET, "value"),
        Input(ids.LIVE_DATES, "start_date"),
        Input(ids.LIVE_DATES, "end_date"),
        Input(ids.LIVE_KIND, "value"),
        Input(ids.LIVE_METHOD, "value"),
        Input(ids.LIVE_GRANULARITY, "value"),
    )
    def sync_url(search, preset, start, end, kind, method, granularity):
        """The URL and the controls say the same thing; whichever changed wins."""
        if ctx.triggered_id in (None, ids.LIVE_URL):
            view = parse_query(search, methods)
        else:
            view = from_controls(preset, start, end, kind, method, granularity)
            if view.preset == "custom" and view.start is None:
                today = data.today_in(tz, datetime.now(UTC)).isoformat()
                view = from_controls("custom", start or today, end or today, kind, method, granularity)
        query = to_query(view)
        # a URL that arrived stays as it is; only a change of the controls writes one
        from_url = ctx.triggered_id in (None, ids.LIVE_URL)
        return (
            no_update if from_url or query == search else query,
            view.preset,
            view.start.isoformat() if view.start else no_update,
            view.end.isoformat() if view.end else no_update,
            view.kind,
            view.method,
            view.granularity,
            "dates" if view.preset == "custom" else "hidden",
        )

    chart_outputs = [Output(chart, "figure") for chart in ROLLUP_CHARTS]
    kpi_outputs = []
    for card in ids.KPI_CARDS:
        if card != ids.LIVE_BUYERS:
            kpi_outputs += [Output(ids.value(card), "children"), Output(ids.note(card), "children"),
                            Output(ids.note(card), "className")]
    spark_outputs = [Output(ids.trend(c), "children") for c in
                     (ids.LIVE_REVENUE_TODAY, ids.LIVE_PURCHASES_TODAY, ids.LIVE_REVENUE_24H, ids.LIVE_PURCHASES_24H,
                      ids.LIVE_AOV)]
    status_outputs = [Output(ids.LIVE_BANNER, "children"), Output(ids.LIVE_BANNER, "className"),
                      Output(ids.LIVE_BODY, "className"), Output(ids.LIVE_MESSAGE, "children"),
                      Output(ids.LIVE_MESSAGE, "className")]
    data_outputs = [*kpi_outputs, *spark_outputs, *chart_outputs, Output(ids.LIVE_FEED, "children"),
                    Output(ids.LIVE_UPDATED, "children"), Output(ids.LIVE_RANGE_LABEL, "children")]

    @app.callback(
        *data_outputs, *status_outputs, Output(ids.LIVE_STATE, "data"),
        Input(ids.LIVE_INTERVAL, "n_intervals"),
        Input(ids.LIVE_URL, "search"),
        State(ids.LIVE_STATE, "data"),
    )
    def poll(_, search, state):
        """Each tick: one point read of the data version; figures only when something changed."""
        state = state or {}
        view = parse_query(search, methods)
        now = datetime.now(UTC)
        key = f"{to_query(view)}|{floor(now, 'hour').isoformat()}"
        keep = [no_update] * len(data_outputs)
        try:
            with pymongo.timeout(poll_timeout):
                version = get_data_version(db)
                if version == state.get("version") and key == state.get("key") and not state.get("downSince"):
                    raise PreventUpdate
                values = _render(db, view, now, state.get("seen", 0), settings)
        except PreventUpdate:
            raise
        except (ConnectionFailure, PyMongoError) as error:
            if not isinstance(error, ConnectionFailure) and "timed out" not in str(error).lower():
                log.exception("poll failed")
            since = state.get("downSince") or data.local_time(now, tz)
            banner = f"Database unreachable since {since}, retrying"
            return [*keep, banner, "banner", "body stale", no_update, no_update, {**state, "downSince": since}]
        except PurchaseError as error:
            return [*keep, "", "banner hidden", "body", str(error), "message", {**state, "key": key}]
        except Exception:  # noqa: BLE001 - logged with its traceback; the page gets one honest line
            log.exception("poll failed")
            return [*keep, "", "banner hidden", "body", "Could not update the figures; see the server log.",
                    "message", state]
        seen = max([state.get("seen", 0), *(row["version"] for row in values["feed_rows"])])
        new_state = {"version": version, "key": key, "seen": seen}
        return [*values["outputs"], "", "banner hidden", "body", "", "message hidden", new_state]

    @app.callback(
        Output(ids.value(ids.LIVE_BUYERS), "children"),
        Output(ids.note(ids.LIVE_BUYERS), "children"),
        Output(ids.LIVE_BUYERS_CHART, "figure"),
        Output(ids.LIVE_BUYERS_STATE, "data"),
        Input(ids.LIVE_BUYERS_INTERVAL, "n_intervals"),
        Input(ids.LIVE_URL, "search"),
        State(ids.LIVE_BUYERS_STATE, "data"),
    )
    def poll_buyers(_, search, state):
        """Buyer figures need a pipeline; core caches it, so most ticks send nothing."""
        view = parse_query(search, methods)
        try:
            with pymongo.timeout(buyers_timeout):
                buyers = data.view_buyers(db, view, tz, datetime.now(UTC))
        except (PyMongoError, PurchaseError):
            raise PreventUpdate from None
        stamp = f"{to_query(view)}|{buyers['asOf'].isoformat()}"
        if (state or {}).get("stamp") == stamp:
            raise PreventUpdate
        note = f"{buyers['repeatBuyers']:,} repeat · as of {data.local_time(buyers['asOf'], tz)}"
        return f"{buyers['uniqueBuyers']:,}", note, figures.buyers_figure(buyers), {"stamp": stamp}

    @app.callback(
        Output(ids.LIVE_INTERVAL, "disabled"),
        Output(ids.LIVE_PAUSE, "children"),
        Output(ids.LIVE_PAUSE, "className"),
        Input(ids.LIVE_PAUSE, "n_clicks"),
    )
    def pause(clicks):
        paused = bool(clicks) and clicks % 2 == 1
        return paused, ("Resume" if paused else "Pause"), ("button paused" if paused else "button live")

    @app.callback(
        Output(ids.LIVE_DOWNLOAD, "data"),
        Input(ids.LIVE_EXPORT, "n_clicks"),
        State(ids.LIVE_URL, "search"),
        prevent_initial_call=True,
    )
    def export(_, search):
        view = parse_query(search, methods)
        now = datetime.now(UTC)
        with pymongo.timeout(EXPORT_TIMEOUT):
            content = data.export_csv(view, data.view_figures(db, view, tz, now), data.view_buyers(db, view, tz, now),
                                      data.kpis(db, view, tz, now), currency, tz)
        name = f"purchases-{to_query(view)[1:].replace('&', '_').replace('=', '-')}-{now:%Y%m%d-%H%M%S}.csv"
        return dcc.send_string(content, name)


def _render(db, view: View, now: datetime, seen: int, settings) -> dict:
    """Every output of a poll that found new data, in `data_outputs` order."""
    currency, tz = settings.currency, settings.tz
    figs = data.view_figures(db, view, tz, now)
    k = data.kpis(db, view, tz, now)
    feed = data.feed_rows(db, view, tz, currency)
    money = figures.money_text
    delta_revenue = data.change_text(k.revenue_24h, k.revenue_prev_24h)
    delta_count = data.change_text(k.purchases_24h, k.purchases_prev_24h)
    paid = figs["totalPurchases"] - figs["comped"]["count"]
    aov_series = [r["revenue"] / r["count"] if r["count"] else 0 for r in figs["revenueByPeriod"]]
    kpi_values = [
        money(k.revenue_today, currency), "since midnight", "note",
        f"{k.purchases_today:,}", "since midnight", "note",
        money(k.revenue_24h, currency), *delta_revenue,
        f"{k.purchases_24h:,}", *delta_count,
        money(figs["averageOrderValue"], currency), f"{paid:,} paid, {figs['comped']['count']:,} free", "note",
        f"{figs['revoked']['count']:,}", money(figs["revoked"]["revenue"], currency) + " refunded or removed", "note",
    ]
    sparks = [_spark(_running(k.hourly_revenue, now, tz)), _spark(_running(k.hourly_purchases, now, tz)),
              _spark(k.hourly_revenue), _spark(k.hourly_purchases), _spark(aov_series)]
    charts = {
        ids.LIVE_REVENUE_CHART: figures.revenue_figure(figs["revenueByPeriod"], figs["granularity"], currency),
        ids.LIVE_KIND_CHART: figures.kind_figure(figs, currency),
        ids.LIVE_METHODS_CHART: figures.payment_figure(figs["paymentMethods"], currency),
        ids.LIVE_TOP_COURSES: figures.top_items_figure(figs["popularCourses"], currency),
        ids.LIVE_TOP_TESTS: figures.top_items_figure(figs["popularTests"], currency, figures.TEAL),
        ids.LIVE_COMPED_CHART: figures.comped_figure(figs),
    }
    chart_values = [charts[chart] for chart in ROLLUP_CHARTS]
    updated = f"Updated {data.local_time(figs['asOf'], tz)}"
    label = f"{describe(view)} · by {figs['granularity']}"
    return {"outputs": [*kpi_values, *sparks, *chart_values, _feed_table(feed, seen), updated, label], "feed_rows": feed}


def _spark(values: list) -> list:
    return [html.Span(style={"height": f"{max(height, 2)}%"}) for height in figures.spark_heights(values)]


def _running(hourly: list, now: datetime, tz) -> list:
    """Today's hours only, for the "today" cards' trend."""
    hours_today = now.astimezone(tz).hour + 1
    return hourly[-hours_today:]


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
