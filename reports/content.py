"""What a report says: the figures of a view for a period, read once through
`core.get_purchase_analytics`, and written as key figures, tables and a CSV.

The view gives the kind and payment method (the live page's filters); the period replaces
the page's range, and the chart's buckets follow the period: hours for a day, days up to a
quarter, weeks beyond.
"""

import io
from dataclasses import dataclass
from datetime import datetime, timedelta

from pymongo.database import Database

from core import CoreSettings, get_purchase_analytics
from dashboard import spreadsheet
from dashboard.display import local_time, method_label, money_text
from dashboard.pages.live.data import write_figures
from dashboard.pages.live.filters import analytics_filters, parse_query
from reports.schedule import Period

TOP_ROWS = 5  # best sellers listed in the mail (the CSV has core's ten)
MILLISECOND = timedelta(milliseconds=1)


@dataclass(frozen=True)
class Report:
    """One report, ready to be written: whose, for whom, which view and period, its figures."""

    name: str
    recipients: tuple[str, ...]
    view: str  # the live page's query string (kind, method)
    period: Period
    figures: dict  # get_purchase_analytics for the view and the period
    currency: str
    tz: object  # ZoneInfo


def granularity(period: Period) -> str:
    return "hour" if period.days <= 2 else "day" if period.days <= 92 else "week"


def period_filters(view: str, period: Period, payment_methods) -> dict:
    """core's filters for the view's kind and method over exactly the period (a datetime end is
    taken as the last millisecond in, so the period's end is passed less one)."""
    filters = analytics_filters(parse_query(view, payment_methods), period.first)
    filters = {k: v for k, v in filters.items() if k in ("kind", "paymentMethod", "excludePaymentMethod")}
    return {**filters, "startDate": period.start, "endDate": period.end - MILLISECOND,
            "granularity": granularity(period)}


def read_report(db: Database, name: str, recipients, view: str, period: Period, core: CoreSettings, tz) -> Report:
    """The figures of `view` over `period`, as the live page's core call gives them."""
    figures = get_purchase_analytics(db, period_filters(view, period, core.payment_methods), settings=core)
    return Report(name, tuple(recipients), view, period, figures, core.currency, tz)


def key_figures(report: Report) -> list[tuple[str, str, str]]:
    """(label, figure, note) of each card, as the live page's cards write them."""
    f, currency = report.figures, report.currency
    paid = f["totalPurchases"] - f["comped"]["count"]
    buyers = f["buyers"]
    return [
        ("Revenue", money_text(f["totalRevenue"], currency), _count(f["totalPurchases"], "purchase")),
        ("Purchases", f"{f['totalPurchases']:,}",
         f"{_count(f['coursePurchases'], 'course')}, {_count(f['testPurchases'], 'test')}"),
        ("Average order value", money_text(f["averageOrderValue"], currency),
         f"{paid:,} paid, {f['comped']['count']:,} free"),
        ("Unique buyers", f"{f['uniqueBuyers']:,}",
         f"{buyers['newBuyers']:,} with one purchase, {buyers['repeatBuyers']:,} repeat"),
        ("Revoked", f"{f['revoked']['count']:,}", money_text(f["revoked"]["revenue"], currency) + " refunded or removed"),
    ]


def _count(number: int, thing: str) -> str:
    return f"{number:,} {thing}{'' if number == 1 else 's'}"


def tables(report: Report) -> list[tuple[str, list[tuple[str, str, str]]]]:
    """(heading, rows of label, count, revenue): courses and tests, best sellers, payment methods."""
    f, currency = report.figures, report.currency
    kinds = [("Courses", f"{f['coursePurchases']:,}", money_text(f["courseRevenue"], currency)),
             ("Tests", f"{f['testPurchases']:,}", money_text(f["testRevenue"], currency))]

    def rows(key):
        return [(r["title"], f"{r['count']:,}", money_text(r["revenue"], currency)) for r in f[key][:TOP_ROWS]]

    methods = [(method_label(r["paymentMethod"]), f"{r['count']:,}", money_text(r["revenue"], currency))
               for r in f["paymentMethods"]]
    return [("Courses and tests", kinds), ("Top courses", rows("popularCourses")), ("Top tests", rows("popularTests")),
            ("Payment methods", methods)]


def chart_rows(report: Report) -> list[dict]:
    """The revenue series with each bucket's start in local time (the chart writes times as given)."""
    return [{**row, "period": row["period"].astimezone(report.tz).replace(tzinfo=None)}
            for row in report.figures["revenueByPeriod"]]


def csv_text(report: Report, view_words: str) -> str:
    """The report's figures as CSV (the live page's export's columns), with the byte-order mark."""
    f, tz = report.figures, report.tz
    out = io.StringIO()
    w = spreadsheet.Writer(out)
    w.writerow(["section", "label", "count", f"revenue ({report.currency})"])
    w.writerow(["report", report.name, "", ""])
    w.writerow(["view", view_words, "", ""])
    w.writerow(["period", f"{report.period.first.isoformat()} to {report.period.last.isoformat()} ({tz.key})", "", ""])
    w.writerow(["as of", local_time(f["asOf"], tz, "%Y-%m-%d %H:%M:%S %Z"), "", ""])
    write_figures(w, f, {"uniqueBuyers": f["uniqueBuyers"], **f["buyers"]}, tz)
    return spreadsheet.BYTE_ORDER_MARK + out.getvalue()


def as_of_text(report: Report) -> str:
    moment: datetime = report.figures["asOf"]
    return local_time(moment, report.tz, "%Y-%m-%d %H:%M %Z")
