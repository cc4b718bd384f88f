"""The dashboard's pure parts: URL filters, figure builders, KPI text, CSV export."""

import csv
import io
from datetime import UTC, date, datetime
from zoneinfo import ZoneInfo

from bson import ObjectId

from dashboard import figures
from dashboard.display import change_money_text, local_time, money_text, reason_label
from dashboard.pages.live.data import Kpis, change_text, export_csv
from dashboard.pages.live.filters import View, analytics_filters, describe, from_controls, parse_query, to_query

METHODS = {"credit_card", "paypal"}
TODAY = date(2025, 3, 10)


def test_url_round_trip_and_defaults():
    view = View(preset="custom", start=date(2025, 1, 1), end=date(2025, 1, 31), kind="test", method="paypal",
                granularity="week")
    assert parse_query(to_query(view), METHODS) == view
    assert parse_query("", METHODS) == View()
    assert to_query(View()) == "?range=30d"
    # nonsense falls back to defaults instead of an error page
    assert parse_query("?range=forever&kind=ebook&method=cash&granularity=year", METHODS) == View()
    assert parse_query("?range=custom&start=2025-02-10&end=2025-02-01", METHODS) == View()
    # what core would refuse: before 2000, after tomorrow, hours for 90 days, days for 20 years
    assert parse_query("?range=custom&start=1999-12-31&end=2000-01-02", METHODS) == View()
    assert parse_query("?range=custom&start=2025-01-01&end=9999-12-30", METHODS) == View()
    assert parse_query("?range=90d&granularity=hour", METHODS) == View(preset="90d")
    assert parse_query("?range=30d&granularity=hour", METHODS) == View(granularity="hour")
    assert parse_query("?range=custom&start=2001-01-01&end=2020-12-31&granularity=day", METHODS) == View(
        preset="custom", start=date(2001, 1, 1), end=date(2020, 12, 31))


def test_controls_and_core_filters():
    assert from_controls("7d", None, None, "course", "", "") == View(preset="7d", kind="course")
    assert from_controls("custom", "2025-01-05T00:00:00", "2025-01-06", "", "", "day").start == date(2025, 1, 5)
    assert from_controls("custom", None, None, "", "", "") == View(preset="custom")  # dates for the caller to fill
    assert from_controls("90d", None, None, "", "", "hour") == View(preset="90d")
    assert analytics_filters(View(preset="7d", method="paypal"), TODAY) == {
        "startDate": "2025-03-04", "paymentMethod": "paypal"}
    assert analytics_filters(View(preset="today"), TODAY) == {"startDate": "2025-03-10"}
    custom = View(preset="custom", start=date(2025, 1, 1), end=date(2025, 1, 31), granularity="week")
    assert analytics_filters(custom, TODAY) == {"startDate": "2025-01-01", "endDate": "2025-01-31", "granularity": "week"}
    assert describe(View(preset="90d")) == "Last 90 days" and describe(custom) == "2025-01-01 to 2025-01-31"


def test_money_and_change_text():
    assert money_text(1234.5, "EUR") == "1,234.50 EUR"
    assert money_text(-1e-12, "USD") == "0.00 USD"
    assert change_text(110, 100) == ("+10% vs previous 24\u00a0h", "note up")
    assert change_text(50, 100) == ("-50% vs previous 24\u00a0h", "note down")
    assert change_text(5, 0) == ("new vs previous 24\u00a0h", "note")
    assert local_time(datetime(2025, 1, 1, 12, tzinfo=UTC), ZoneInfo("Europe/Madrid")) == "13:00:00"


def test_empty_data_says_so_instead_of_a_bare_axis():
    rows = [{"period": datetime(2025, 1, d, tzinfo=UTC), "revenue": 0.0, "count": 0} for d in (1, 2)]
    for fig in (figures.revenue_figure(rows, "day", "USD"), figures.top_items_figure([], "USD"),
                figures.payment_figure([], "USD"), figures.buyers_figure({"newBuyers": 0, "repeatBuyers": 0})):
        assert fig["layout"]["annotations"][0]["text"] == figures.EMPTY_MESSAGE
        assert fig["layout"]["meta"]["state"] == "empty" and not fig["data"]


def test_figures_carry_the_rows():
    rows = [{"period": datetime(2025, 1, d, tzinfo=UTC), "revenue": 10.0 * d, "count": d} for d in (1, 2, 3)]
    revenue = figures.revenue_figure(rows, "day", "USD")
    assert revenue["data"][0]["y"] == [10.0, 20.0, 30.0] and revenue["data"][0]["customdata"] == [1, 2, 3]
    assert revenue["data"][0]["x"][0] == "2025-01-01T00:00:00+00:00"
    top = figures.top_items_figure([{"title": "A", "count": 5, "revenue": 50.0}, {"title": "B", "count": 2,
                                                                                 "revenue": 9.0}], "USD")
    assert top["data"][0]["y"] == ["B", "A"]  # best on top
    pay = figures.payment_figure([{"paymentMethod": "credit_card", "count": 3, "revenue": 30.0}], "USD")
    assert pay["data"][0]["labels"] == ["Credit card"] and pay["data"][0]["customdata"] == ["30.00 USD"]
    comped = figures.comped_figure({"totalPurchases": 10, "comped": {"count": 4}})
    assert comped["data"][0]["values"] == [6, 4]
    assert figures.spark_heights([0, 5, 10]) == [0, 50, 100] and figures.spark_heights([0, 0]) == [0, 0]


def test_csv_export_has_every_section():
    item = ObjectId()
    figs = {
        "asOf": datetime(2025, 3, 10, 9, tzinfo=UTC), "totalPurchases": 3, "totalRevenue": 59.97,
        "averageOrderValue": 19.99, "coursePurchases": 2, "courseRevenue": 49.98, "testPurchases": 1,
        "testRevenue": 9.99, "comped": {"count": 0}, "revoked": {"count": 1, "revenue": 5.0}, "granularity": "day",
        "revenueByPeriod": [{"period": datetime(2025, 3, 10, tzinfo=UTC), "count": 3, "revenue": 59.97}],
        "popularCourses": [{"id": item, "title": "Python", "count": 2, "revenue": 49.98}], "popularTests": [],
        "paymentMethods": [{"paymentMethod": "paypal", "count": 3, "revenue": 59.97}],
    }
    buyers = {"uniqueBuyers": 2, "newBuyers": 1, "repeatBuyers": 1}
    kpis = Kpis(59.97, 3, 59.97, 3, 0.0, 0, [0.0] * 24, [0] * 24)
    rows = list(csv.reader(io.StringIO(export_csv(View(preset="7d"), figs, buyers, kpis, "USD", ZoneInfo("UTC")))))
    assert rows[0] == ["section", "label", "count", "revenue (USD)"]
    assert ["total", "all purchases", "3", "59.97"] in rows
    assert ["top course", "Python", "2", "49.98"] in rows
    assert ["payment method", "PayPal", "3", "59.97"] in rows
    assert ["revenue by day", "2025-03-10 00:00", "3", "59.97"] in rows
    assert ["buyers", "repeat buyers", "1", ""] in rows and ["total", "revoked", "1", "5.00"] in rows


def test_exports_keep_text_that_starts_like_a_formula_as_text():
    from dashboard import spreadsheet
    from dashboard.pages import bulk as bulk_page

    assert [spreadsheet.cell(v) for v in ("=1+1", "+A1", "-cmd", "@SUM(A1)", "\tx", "-12.50", "+3", "plain", 7)] == [
        "'=1+1", "'+A1", "'-cmd", "'@SUM(A1)", "'\tx", "-12.50", "+3", "plain", 7]
    # a formula after what a spreadsheet may split a cell on (OWASP): as text too
    for text in ("x;=1+1", "x,+A1", "x\t-cmd", "x\r@SUM(A1)", "x\n=1", "x; =1"):
        assert spreadsheet.cell(text) == "'" + text, text
    for text in ("ok - fine", "ann@example.com", "Course 1+1", "a;b"):
        assert spreadsheet.cell(text) == text, text
    out = io.StringIO()
    spreadsheet.Writer(out).writerow(["x;=1+1", 12.5, "a"])
    assert out.getvalue() == '"\'x;=1+1",12.5,"a"\r\n'  # every text quoted: no separator splits it
    row = {"row": 2, "user": "=HYPERLINK(\"http://x\")", "item": "c", "amount": "-5", "paymentMethod": "paypal",
           "note": "=1+1 formula note", "status": "failed", "message": "bad"}
    written = bulk_page.results_csv([row])
    assert "'=1+1 formula note" in written and "'=HYPERLINK" in written and ',"-5",' in written


def test_chart_labels_show_markup_as_text():
    rows = [{"title": '<a href="https://evil.example">Click</a> & <b>more</b>', "count": 3, "revenue": 30.0}]
    figure = figures.top_items_figure(rows, "USD")
    label = figure["data"][0]["y"][0]
    assert "<" not in label and ">" not in label and label.startswith("&lt;a href=")
    pie = figures.payment_figure([{"paymentMethod": "<img src=x>", "count": 1, "revenue": 1.0}], "USD")
    assert "<" not in pie["data"][0]["labels"][0]


def test_a_revocation_has_one_sign_and_its_reason_a_label_everywhere():

    assert change_money_text(19.95, "USD", True) == "\u221219.95 USD"
    assert change_money_text(19.95, "USD", False) == "19.95 USD"
    assert change_money_text(0, "USD", True) == "0.00 USD"  # nothing taken back: no sign
    assert [reason_label(r) for r in ("refund", "other", "granted_by_mistake", "granted by mistake", None)] == [
        "Refund", "Other", "Granted by mistake", "Granted by mistake", ""]
