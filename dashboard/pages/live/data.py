"""The live page's data layer: a view's figures, key figures, feed and export read through core/;
ObjectIds and UTC datetimes become display strings here (dashboard.display writes them)."""

import io
import logging
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from pymongo.database import Database
from pymongo.errors import InvalidOperation

from core import CoreSettings, buyer_figures, get_recent_activity, purchase_figures
from core.customers import warm_customer_index
from dashboard import spreadsheet
from dashboard.display import change_money_text, local_time, method_label, today_in
from dashboard.pages.live.filters import NOT_MIGRATED, View, analytics_filters, describe

FEED_ROWS = 15
log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Kpis:
    revenue_today: float
    purchases_today: int
    revenue_24h: float
    purchases_24h: int
    revenue_prev_24h: float
    purchases_prev_24h: int
    hourly_revenue: list[float]  # the last 24 hours, oldest first
    hourly_purchases: list[int]


def view_figures(db: Database, view: View, tz: ZoneInfo, now: datetime) -> dict:
    """All rollup figures of the view (no buyer figures)."""
    return purchase_figures(db, analytics_filters(view, today_in(tz, now)))


def view_buyers(db: Database, view: View, tz: ZoneInfo, now: datetime, settings: CoreSettings | None = None) -> dict:
    return buyer_figures(db, analytics_filters(view, today_in(tz, now)), settings=settings)


def warm_up(db: Database, tz: ZoneInfo, settings: CoreSettings | None = None) -> None:
    """Read the default view once, so the first visitor finds caches warm (buyers: ~1.5 s at 20,000)."""
    now = datetime.now(UTC)
    try:
        view_figures(db, View(), tz, now)
        kpis(db, View(), tz, now)
        view_buyers(db, View(), tz, now, settings)
        warm_customer_index(db)
    except InvalidOperation:  # the client was closed: the app is ending (a command-line run)
        log.debug("warm-up stopped: the database connection is closed")
    except Exception:  # noqa: BLE001 - an optimisation only; the page reads again anyway
        log.warning("warming up the default view failed", exc_info=True)


METHOD_AND_KIND = ("kind", "paymentMethod", "excludePaymentMethod")


def _method_shown(view: View, method: str) -> bool:
    if view.method == NOT_MIGRATED:
        return method != NOT_MIGRATED[1:]
    return not view.method or method == view.method


def kpis(db: Database, view: View, tz: ZoneInfo, now: datetime) -> Kpis:
    """Today, the last 24 hours and the 24 before, from 48 hourly rollups (kind and method apply)."""
    start = now.astimezone(UTC).replace(minute=0, second=0, microsecond=0) - timedelta(hours=47)
    filters = {"startDate": start, "granularity": "hour"}
    filters |= {k: v for k, v in analytics_filters(view, today_in(tz, now)).items() if k in METHOD_AND_KIND}
    rows = purchase_figures(db, filters, details=False)["revenueByPeriod"][-48:]
    midnight = datetime.combine(today_in(tz, now), datetime.min.time(), tzinfo=tz).astimezone(UTC)
    today = [r for r in rows if r["period"] >= midnight]
    last, before = rows[-24:], rows[:-24]
    return Kpis(
        revenue_today=sum(r["revenue"] for r in today),
        purchases_today=sum(r["count"] for r in today),
        revenue_24h=sum(r["revenue"] for r in last),
        purchases_24h=sum(r["count"] for r in last),
        revenue_prev_24h=sum(r["revenue"] for r in before),
        purchases_prev_24h=sum(r["count"] for r in before),
        hourly_revenue=[r["revenue"] for r in last],
        hourly_purchases=[r["count"] for r in last],
    )


DAY = "24\u00a0h"  # a no-break space


def change_text(now: float, before: float) -> tuple[str, str]:
    """("+12% vs previous 24 h", css classes) for a KPI's change; "24 h" never split by a line break."""
    if before == 0:
        return (f"new vs previous {DAY}" if now else f"no change vs previous {DAY}", "note")
    change = (now - before) / before * 100
    if abs(change) < 0.5:
        return f"no change vs previous {DAY}", "note"
    return f"{change:+.0f}% vs previous {DAY}", "note up" if change > 0 else "note down"


def feed_rows(db: Database, view: View, tz: ZoneInfo, currency: str) -> list[dict]:
    """The latest purchases and revocations that match the view's kind and method."""
    rows = []
    for entry in get_recent_activity(db, limit=50):
        if (view.kind and entry["kind"] != view.kind) or not _method_shown(view, entry["paymentMethod"]):
            continue
        revoked = entry["event"] == "revocation"
        rows.append({
            "version": entry["version"],
            "at": entry["at"],
            "time": local_time(entry["at"], tz, "%b %d %H:%M:%S"),
            "event": "Revoked" if revoked else "Purchase",
            "user": entry.get("userName") or str(entry["user"]),
            "item": entry.get("title") or f"(deleted {entry['kind']})",
            "amount": change_money_text(entry["amount"], entry.get("currency") or currency, revoked),
            "method": method_label(entry["paymentMethod"]),
        })
        if len(rows) == FEED_ROWS:
            break
    return rows


def export_csv(view: View, figures: dict, buyers: dict | None, k: Kpis, currency: str, tz: ZoneInfo) -> str:
    """The current view's figures as CSV: one section per table, money to the cent."""
    out = io.StringIO()
    w = spreadsheet.Writer(out)
    w.writerow(["section", "label", "count", f"revenue ({currency})"])
    w.writerow(["view", describe(view) + _view_suffix(view), "", ""])
    w.writerow(["as of", local_time(figures["asOf"], tz, "%Y-%m-%d %H:%M:%S %Z"), "", ""])
    w.writerow(["kpi", "today", k.purchases_today, f"{k.revenue_today:.2f}"])
    w.writerow(["kpi", "last 24 h", k.purchases_24h, f"{k.revenue_24h:.2f}"])
    w.writerow(["kpi", "previous 24 h", k.purchases_prev_24h, f"{k.revenue_prev_24h:.2f}"])
    write_figures(w, figures, buyers, tz)
    return out.getvalue()


def write_figures(w: spreadsheet.Writer, figures: dict, buyers: dict | None, tz: ZoneInfo) -> None:
    """The rows of core.get_purchase_analytics' figures, as the live page's CSV has them (and a
    report's attachment): totals, buyers (when given), the series, top items, payment methods."""
    w.writerow(["total", "all purchases", figures["totalPurchases"], f"{figures['totalRevenue']:.2f}"])
    w.writerow(["total", "average order value", "", f"{figures['averageOrderValue']:.2f}"])
    w.writerow(["total", "courses", figures["coursePurchases"], f"{figures['courseRevenue']:.2f}"])
    w.writerow(["total", "tests", figures["testPurchases"], f"{figures['testRevenue']:.2f}"])
    w.writerow(["total", "free grants", figures["comped"]["count"], "0.00"])
    w.writerow(["total", "revoked", figures["revoked"]["count"], f"{figures['revoked']['revenue']:.2f}"])
    if buyers is not None:
        w.writerow(["buyers", "unique buyers", buyers["uniqueBuyers"], ""])
        w.writerow(["buyers", "one purchase", buyers["newBuyers"], ""])
        w.writerow(["buyers", "repeat buyers", buyers["repeatBuyers"], ""])
    for row in figures["revenueByPeriod"]:
        w.writerow([f"revenue by {figures['granularity']}", local_time(row["period"], tz, "%Y-%m-%d %H:%M"),
                    row["count"], f"{row['revenue']:.2f}"])
    for name, key in (("top course", "popularCourses"), ("top test", "popularTests")):
        for row in figures[key]:
            w.writerow([name, row["title"], row["count"], f"{row['revenue']:.2f}"])
    for row in figures["paymentMethods"]:
        w.writerow(["payment method", method_label(row["paymentMethod"]), row["count"], f"{row['revenue']:.2f}"])


def _view_suffix(view: View) -> str:
    parts = [p for p in (view.kind and f"{view.kind}s", view.method and method_label(view.method)) if p]
    return f" ({', '.join(parts)})" if parts else ""
