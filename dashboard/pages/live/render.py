"""One render of the live page's figures for a view: its reads at once, the cards, charts and
feed drawn by the pure builders (dashboard/figures.py), kept in the JSON form Dash sends so every
tab that shows the view at that data version shares it."""

import contextvars
import json
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime

from dash import html
from plotly.io.json import to_json_plotly

from dashboard import figures
from dashboard.context import DashboardContext
from dashboard.display import local_time, money_text
from dashboard.pages.live import data
from dashboard.pages.live.filters import View, describe
from dashboard.pages.live.ids import (
    AOV,
    COMPED_CHART,
    KIND_CHART,
    METHODS_CHART,
    PURCHASES_24H,
    PURCHASES_TODAY,
    REVENUE_24H,
    REVENUE_CHART,
    REVENUE_TODAY,
    REVOKED,
    TOP_COURSES,
    TOP_TESTS,
)


def in_parallel(pool: ThreadPoolExecutor, *calls):
    """Each call's result, the calls run at once on `pool`; each keeps the caller's time limit (pymongo.timeout)."""
    futures = [pool.submit(contextvars.copy_context().run, call) for call in calls]
    return [future.result() for future in futures]


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
