"""The live revenue page's layout: the filters, the key figure cards, the charts and the feed,
drawn empty; the callbacks (callbacks.py) fill them in."""

from dash import dcc, html

from dashboard import figures
from dashboard.context import current_context
from dashboard.display import method_label, note, trend, value
from dashboard.pages.live import ids
from dashboard.pages.live.filters import EARLIEST, GRANULARITIES, KINDS, NOT_MIGRATED, PRESETS

GRAPH_CONFIG = {"displayModeBar": False}
BUYERS_POLL_MS = 5000


def layout(path: str = ids.PATH) -> html.Div:
    """The page; filters arrive from the URL through the sync callback."""
    context = current_context()
    return html.Div(className="live", children=[
        dcc.Location(id=ids.URL, refresh=False),
        html.Div(className="topbar", children=[
            html.H1(ids.TITLE),
            html.Div(className="actions", children=[
                html.Span(className="updated", role="status", children=[
                    html.Span("checking…", id=ids.CHECKED_TEXT), " · ", html.Span("…", id=ids.UPDATED)]),
                dcc.Store(id=ids.CHECKED),
                html.Button("Pause", id=ids.PAUSE, className="button live", n_clicks=0),
                html.Button("Export CSV", id=ids.EXPORT, className="button", n_clicks=0),
                dcc.Download(id=ids.DOWNLOAD),
            ]),
        ]),
        html.Div(id=ids.MESSAGE, className="message hidden"),
        _filters(context.payment_methods),
        html.Div(id=ids.BODY, className="body", children=[
            html.H2("Key figures", className="visually-hidden"),
            html.Section(className="kpis", children=[
                _kpi("Revenue today", ids.REVENUE_TODAY, sparkline=True),
                _kpi("Purchases today", ids.PURCHASES_TODAY, sparkline=True),
                _kpi("Revenue 24 h", ids.REVENUE_24H, sparkline=True),
                _kpi("Purchases 24 h", ids.PURCHASES_24H, sparkline=True),
                _kpi("Average order value", ids.AOV, sparkline=True),
                _kpi("Unique buyers", ids.BUYERS),
                _kpi("Revoked", ids.REVOKED),
            ]),
            html.H2(["Range: ", html.Span(id=ids.RANGE_LABEL)], className="range"),
            html.Div(className="grid", children=[
                _chart("Revenue over time", ids.REVENUE_CHART, wide=True),
                _chart("Courses and tests", ids.KIND_CHART),
                _chart("Payment methods", ids.METHODS_CHART),
                _chart("Top courses", ids.TOP_COURSES),
                _chart("Top tests", ids.TOP_TESTS),
                _chart("New and repeat buyers", ids.BUYERS_CHART),
                _chart("Paid and free grants", ids.COMPED_CHART),
                html.Section(className="panel wide", children=[
                    html.H3("Latest purchases and revocations"),
                    html.Div(id=ids.FEED, className="feed"),
                ]),
            ]),
        ]),
        dcc.Interval(id=ids.INTERVAL, interval=context.settings.refresh_ms),
        dcc.Interval(id=ids.BUYERS_INTERVAL, interval=BUYERS_POLL_MS),
        dcc.Store(id=ids.STATE, data={}),
        dcc.Store(id=ids.BUYERS_STATE, data={}),
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
            dcc.RadioItems(id=ids.PRESET, className="pills", inputClassName="pill-input", labelClassName="pill",
                           options=[{"label": v, "value": k} for k, v in PRESETS.items()], value="30d", inline=True),
        ]),
        html.Div(id=ids.DATES_BOX, className="hidden", children=[
            dcc.DatePickerRange(id=ids.DATES, display_format="YYYY-MM-DD", minimum_nights=0, clearable=False,
                                min_date_allowed=EARLIEST.isoformat(), start_date_placeholder_text="Start date",
                                start_date_id=ids.DATES_START, end_date_id=ids.DATES_END,
                                end_date_placeholder_text="End date"),
        ]),
        html.Label("Kind", htmlFor=ids.KIND, className="visually-hidden"),
        dcc.Dropdown(id=ids.KIND, className="select", clearable=False, searchable=False, value="",
                     options=[{"label": v, "value": k} for k, v in KINDS.items()]),
        html.Label("Payment method", htmlFor=ids.METHOD, className="visually-hidden"),
        dcc.Dropdown(id=ids.METHOD, className="select", clearable=False, searchable=False, value="",
                     options=methods),
        html.Fieldset(className="pills-group", children=[
            html.Legend("Granularity", className="visually-hidden"),
            dcc.RadioItems(id=ids.GRANULARITY, className="pills", inputClassName="pill-input", labelClassName="pill",
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
