"""The cohorts and retention page in headless Chromium, at 1440x900 and 390x844."""

from datetime import UTC, datetime

import pytest

from core import create_purchase, retention_figures
from core.storage.schema import COURSES, USERS
from dashboard.pages import insights
from tests.browser.test_live_page import wait_until

pytestmark = pytest.mark.browser


def card_value(page, title: str) -> str:
    return page.driver.execute_script(
        "const card = [...document.querySelectorAll('#' + arguments[0] + ' .card')]"
        "  .find(c => c.querySelector('h2').textContent === arguments[1]);"
        "return card ? card.querySelector('.value').textContent : null;", insights.CARDS, title)


def test_cohorts_show_follow_a_first_sale_and_fit_a_phone(live, page):
    page.driver.set_window_size(1440, 900)
    page.driver.get(page.server_url + insights.PATH)
    buyers = retention_figures(live.db)["buyers"]
    wait_until(lambda: card_value(page, "Buyers") == f"{buyers:,}", 10, "the retention cards")
    month = f"{datetime.now(UTC):%Y-%m}"
    rows = page.driver.execute_script(
        "return [...document.querySelectorAll('table.heatmap tbody th')].map(th => th.textContent)")
    assert rows and rows == sorted(rows)

    newcomer = live.db[USERS].insert_one({"name": "New Buyer", "purchasedCourses": [], "purchasedTests": []})
    course = live.db[COURSES].find_one({}, {"_id": 1})["_id"]
    create_purchase(live.db, newcomer.inserted_id, course, None, {"amount": 12.5, "paymentMethod": "paypal"})
    wait_until(lambda: card_value(page, "Buyers") == f"{buyers + 1:,}", 10, "a first sale shows without a reload")
    assert month in page.driver.execute_script(
        "return [...document.querySelectorAll('table.heatmap tbody th')].map(th => th.textContent)")

    page.find_element(f"#{insights.PERIOD} input[value='week']").click()
    wait_until(lambda: "period=week" in page.driver.current_url, 5, "the choice goes into the URL")
    wait_until(lambda: "-W" in page.find_element("table.heatmap tbody th").text, 10, "weekly cohorts")

    page.driver.set_window_size(390, 844)
    wait_until(lambda: page.driver.execute_script("return window.innerWidth") <= 390, 5, "the phone size")
    overflow = page.driver.execute_script(
        "return document.documentElement.scrollWidth - document.documentElement.clientWidth")
    assert overflow <= 0  # the page never scrolls sideways; the wide heatmap scrolls in its own box
    box = page.find_element(".heatmap-scroll")
    assert box.get_attribute("tabindex") == "0" and box.get_attribute("role") == "region"
    assert page.get_logs() == []


def test_a_shared_link_opens_its_own_view(live, page):
    start = live.db["purchases"].find_one({}, sort=[("purchasedAt", 1)])["purchasedAt"]
    search = f"?kind=course&from={start:%Y-%m}-01&metric=revenue"
    page.driver.get(page.server_url + insights.PATH + search)
    wait_until(lambda: page.find_element(f"#{insights.UPDATED}").text.startswith("Checked"), 10, "the figures")
    assert page.find_element("table.heatmap caption").text == "Revenue per buyer, cumulative"
    assert page.driver.execute_script("return window.location.search") == search  # a shared link stays as sent
    assert page.find_element("table.heatmap tbody th").text == f"{start:%Y-%m}"  # the oldest cohort first
    assert page.find_element(f"#{insights.KIND}").text.startswith("Courses")
