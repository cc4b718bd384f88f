"""The live revenue page's callbacks: the URL and the filters kept in step, the polls (one render
of a view shared by every tab, the outage banner), pause and export. Callbacks read inputs, call
the data layer (data.py, the view in filters.py) and hand rows to render.py's builders."""

import logging
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime

import pymongo
from dash import Input, Output, State, ctx, no_update
from dash.exceptions import PreventUpdate
from pymongo.errors import PyMongoError

from caches import app_caches
from core import PurchaseError, get_data_version
from dashboard import figures, shell, spreadsheet
from dashboard.callback_requests import mapping
from dashboard.context import DashboardContext
from dashboard.display import local_time, note, today_in, trend, value
from dashboard.messages import TOO_SLOW, UNREACHABLE, failure, outage
from dashboard.pages.live import data
from dashboard.pages.live.filters import from_controls, parse_query, same_query, shown_dates, to_query
from dashboard.pages.live.ids import (
    BODY,
    BUYERS,
    BUYERS_CHART,
    BUYERS_INTERVAL,
    BUYERS_STATE,
    CHECKED,
    CHECKED_TEXT,
    DATES,
    DATES_BOX,
    DOWNLOAD,
    EXPORT,
    FEED,
    GRANULARITY,
    INTERVAL,
    KIND,
    KPI_CARDS,
    MESSAGE,
    METHOD,
    PAUSE,
    PRESET,
    RANGE_LABEL,
    ROLLUP_CHARTS,
    SPARK_CARDS,
    STATE,
    UPDATED,
    URL,
)
from dashboard.pages.live.layout import BUYERS_POLL_MS
from dashboard.pages.live.render import Rendered, render
from dashboard.shared import RenderCache, SharedReading

log = logging.getLogger(__name__)
RENDER_PARTS = 6  # threads that read the parts of renders at once (three per render, two renders)
# A poll must end well within its interval, even with the database gone: Dash ignores the
# reply to a request that a newer tick has overtaken, and a page whose every reply is
# overtaken never updates again.
POLL_SHARE = 0.5
# how long one read of the data version serves every tab of the process: a sale reaches the
# screen up to this much later, and a hundred tabs cost five reads a second, not a hundred
VERSION_FRESH = 0.2
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
    app_caches(app.server).live_renders = renders
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


def _tab_shows(state: dict, key: str, version) -> bool:
    """True when the tab shows this view at this version or a newer one, and no outage banner."""
    shown = state.get("version")
    return shown is not None and version <= shown and key == state.get("key") and not state.get("downSince")


def _stamp() -> int:
    """A value that differs at each answer, so the browser notes the moment it arrived."""
    return time.monotonic_ns()
