"""The cohorts and retention page over HTTP (its callbacks as the browser posts them, against
the real database), and its builders."""

import csv
import io
from datetime import UTC, datetime

import pytest
from bson import ObjectId

from core import create_purchase, remove_purchase
from core.storage.schema import COURSES, TESTS, USERS
from dashboard import cohort_tables
from dashboard.pages import insights
from scripts.dash_client import callback_body, callback_key

MARCH, APRIL = datetime(2026, 3, 10, 12, tzinfo=UTC), datetime(2026, 4, 2, 9, tzinfo=UTC)


@pytest.fixture
def shop(app):
    """Two March buyers, one of whom comes back in April; a paid course and a free test."""
    db = app.extensions["purchase_database"].db
    ada, alan, course, test = ObjectId(), ObjectId(), ObjectId(), ObjectId()
    db[USERS].insert_many([{"_id": u, "name": n, "purchasedCourses": [], "purchasedTests": []}
                           for u, n in ((ada, "Ada"), (alan, "Alan"))])
    db[COURSES].insert_one({"_id": course, "title": "Compilers", "price": 49.0})
    db[TESTS].insert_one({"_id": test, "title": "Logic quiz", "price": 5.0})
    create_purchase(db, ada, course, None, {"amount": 49.5, "paymentMethod": "paypal", "purchasedAt": MARCH})
    create_purchase(db, alan, course, None, {"amount": 10, "paymentMethod": "stripe", "purchasedAt": MARCH})
    create_purchase(db, ada, None, test, {"amount": 0, "paymentMethod": "admin_grant", "purchasedAt": APRIL})
    return {"db": db, "ada": ada, "alan": alan, "course": course, "test": test}


def load(client, app, search: str = "", state: dict | None = None):
    dash_app = app.extensions["dash"]
    key = callback_key(dash_app, f"{insights.HEATMAP}.children")
    values = {f"{insights.INTERVAL}.n_intervals": 1, f"{insights.URL}.search": search,
              f"{insights.STATE}.data": state or {}}
    reply = client.post("/_dash-update-component",
                        json=callback_body(dash_app, key, values, [f"{insights.URL}.search"]))
    assert reply.status_code == 200, reply.data
    return reply.get_json()["response"]


def texts(component) -> list[str]:
    """Every text inside a rendered component, in order."""
    if isinstance(component, str):
        return [component]
    if isinstance(component, list):
        return [t for part in component for t in texts(part)]
    if isinstance(component, dict):  # as the browser receives it
        return texts(component.get("props", {}).get("children") or [])
    return texts(getattr(component, "children", None) or [])  # as a builder returns it


SPRING = "?from=2026-03-01&to=2026-04-30"


def test_the_cohorts_of_a_range_with_shares_revenue_and_retention(viewer_client, app, shop):
    response = load(viewer_client, app, SPRING)
    rows = response[insights.GRID]["rowData"]
    assert [(r["cohort"], r["offset"], r["buyers"], r["share"], r["revenue"]) for r in rows] == [
        ("2026-03", 0, 2, 1.0, 59.5), ("2026-03", 1, 1, 0.5, 0.0)]
    heat = texts(response[insights.HEATMAP]["children"])
    assert "2026-03" in heat and "100.0%" in heat and "50.0%" in heat
    cards = texts(response[insights.CARDS]["children"])
    assert cards[cards.index("Repeat buyers") + 1] == "50.0%" and cards[cards.index("Buyers") + 1] == "2"
    assert cards[cards.index("Days to a second purchase") + 1] == "22"


def test_filters_choose_the_purchases_that_count_and_a_sale_shows_at_the_next_tick(viewer_client, app, shop):
    paid = load(viewer_client, app, SPRING + "&paid=paid")
    assert [(r["offset"], r["buyers"]) for r in paid[insights.GRID]["rowData"]] == [(0, 2)]  # April's was free
    state = paid[insights.STATE]["data"]
    same = load(viewer_client, app, SPRING + "&paid=paid", state)
    assert insights.GRID not in same  # nothing changed: no new figures sent
    remove_purchase(shop["db"], shop["alan"], shop["course"], reason="refund")
    after = load(viewer_client, app, SPRING + "&paid=paid", state)
    assert [(r["offset"], r["buyers"], r["revenue"]) for r in after[insights.GRID]["rowData"]] == [(0, 1, 49.5)]


def test_a_bad_view_is_said_in_words_and_shows_nothing(viewer_client, app, shop):
    for search, words in (("?from=2026-13-01", "is not a date like"), ("?from=1999-01-01", "before 2000-01-01"),
                          ("?from=2026-04-01&to=2026-03-01", "ends (2026-03-01) before it starts"),
                          ("?method=bitcoin", "is not one this shop takes")):
        response = load(viewer_client, app, search)
        assert words in response[insights.MESSAGE]["children"] and response[insights.GRID]["rowData"] == []


def test_the_url_keeps_the_view_and_unknown_choices_fall_back():
    view = insights.parse_query("?period=week&kind=test&paid=free&metric=revenue&from=2026-01-05")
    assert (view.period, view.kind, view.paid, view.metric, view.start) == ("week", "test", "free", "revenue",
                                                                            "2026-01-05")
    assert insights.parse_query(insights.to_query(view)) == view
    odd = insights.parse_query("?period=year&kind=ebook&paid=maybe&metric=x")
    assert odd == insights.InsightsView() and insights.to_query(odd) == ""


def test_csv_export_has_every_cell_and_reads_back(viewer_client, app, shop):
    dash_app = app.extensions["dash"]
    key = callback_key(dash_app, f"{insights.DOWNLOAD}.data")
    body = callback_body(dash_app, key, {f"{insights.EXPORT}.n_clicks": 1, f"{insights.URL}.search": SPRING},
                         [f"{insights.EXPORT}.n_clicks"])
    reply = viewer_client.post("/_dash-update-component", json=body)
    assert reply.status_code == 200, reply.data
    content = reply.get_json()["response"][insights.DOWNLOAD]["data"]["content"]
    rows = list(csv.DictReader(io.StringIO(content.encode("utf-8").decode("utf-8-sig"))))
    assert [(r["cohort"], r["period"], r["buyers"], r["revenue"], r["cumulative_revenue_per_buyer"]) for r in rows] == [
        ("2026-03", "0", "2", "59.50", "29.75"), ("2026-03", "1", "1", "0.00", "29.75")]


def test_the_revenue_heatmap_carries_the_cumulative_figure_through_quiet_periods():
    cohort = datetime(2026, 1, 5, tzinfo=UTC)
    figures = {"period": "week", "cohorts": [{"cohort": cohort, "buyers": 4, "periods": [
        {"offset": 0, "buyers": 4, "revenue": 40.0}, {"offset": 2, "buyers": 1, "revenue": 20.0}]}]}
    cells = texts(cohort_tables.heatmap(figures, "revenue", "EUR"))
    assert cells[cells.index("2026-W02"):] == ["2026-W02", "4", "10.00 EUR", "10.00 EUR", "15.00 EUR"]
    shares = texts(cohort_tables.heatmap(figures, "share", "EUR"))
    assert shares[shares.index("2026-W02"):] == ["2026-W02", "4", "100.0%", "0.0%", "25.0%"]
    # on the cohort's second Tuesday its third week has not begun: blank, not 0
    early = texts(cohort_tables.heatmap(figures, "share", "EUR", now=datetime(2026, 1, 13, tzinfo=UTC)))
    assert early[early.index("2026-W02"):] == ["2026-W02", "4", "100.0%", "0.0%"]


def test_every_shade_of_the_heatmap_keeps_its_text_readable():
    # WCAG AA for normal text, at every strength a cell can have (Lighthouse found 2.5:1 to 4.3:1)
    from dashboard.cohort_tables import _cell, contrast

    for step in range(101):
        style = _cell("12.5%", step / 100).style
        shade = tuple(int(style["backgroundColor"][i:i + 2], 16) for i in (1, 3, 5))
        assert contrast(shade, style["color"]) >= 4.5, (step, style)
    assert contrast((255, 255, 255), "#000000") == 21.0
