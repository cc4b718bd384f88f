"""The audit log and health pages in headless Chromium, signed in as an admin."""

import pytest
from selenium.webdriver.common.by import By

from core import create_purchase
from core.storage.schema import COURSES, USERS
from dashboard.pages import audit, health
from tests.browser.test_live_page import text, wait_until

pytestmark = pytest.mark.browser


def test_the_audit_log_shows_a_grant_and_the_health_page_runs_a_check(live, page):
    user = live.db[USERS].find_one({}, {"name": 1, "purchasedCourses": 1})
    course = live.db[COURSES].find_one({"_id": {"$nin": user["purchasedCourses"]}}, {"title": 1})
    create_purchase(live.db, user["_id"], course["_id"], None,
                    {"amount": 0, "paymentMethod": "admin_grant", "actor": "admin@example.com"},
                    source="admin", note="browser test")

    page.driver.get(page.server_url + audit.PATH)
    first_row = f"#{audit.GRID} .ag-center-cols-container .ag-row[row-index='0']"
    wait_until(lambda: course["title"] in _text_of(page, first_row), 10, "the grant is the newest entry")
    row = _text_of(page, first_row)
    assert user["name"] in row and "admin@example.com" in row and "grant" in row
    link = page.find_element(f"{first_row} a")
    assert link.get_attribute("href").endswith(f"/customers/{user['_id']}")

    page.driver.get(page.server_url + health.PATH)
    wait_until(lambda: text(page, health.value(health.REACH)) == "Reachable", 10, "the health page polled")
    page.find_element(f"#{health.RUN}").click()
    wait_until(lambda: text(page, health.value(health.CONSISTENCY)) == "Consistent", 15, "the check's result")
    assert text(page, health.value(health.ROLLUPS)) == "Agree"
    assert "run by admin@example.com" in text(page, health.note(health.LAST))
    assert "ok" in page.find_element(f"#{health.CONSISTENCY}").get_attribute("class").split()
    assert page.get_logs() == []


def _text_of(page, selector: str) -> str:
    found = page.driver.find_elements(By.CSS_SELECTOR, selector)
    return found[0].text if found else ""
