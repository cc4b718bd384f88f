"""The audit log and health pages in headless Chromium, signed in as an admin."""

import re
import time

import pytest
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys

from core import create_purchase
from core.storage.schema import COURSES, USERS
from dashboard import health as checks
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


def test_the_status_goes_from_checking_to_checked_and_a_repair_runs_from_the_page(live, page, monkeypatch):
    check = checks.check_consistency

    def slow_check(db):  # long enough for the page to see the check running
        time.sleep(1.5)
        return check(db)

    monkeypatch.setattr(checks, "check_consistency", slow_check)
    page.driver.get(page.server_url + health.PATH)
    wait_until(lambda: text(page, health.STATUS) == "Not checked yet.", 10, "the health page polled")
    page.find_element(f"#{health.RUN}").click()
    wait_until(lambda: text(page, health.STATUS).startswith("Checking… (started "), 5, "the check is running")
    wait_until(lambda: text(page, health.STATUS).startswith("Checked at "), 30, "the check ended")
    assert re.fullmatch(r"Checked at \d\d:\d\d:\d\d \(took [\d.,]+ s\)\.", text(page, health.STATUS))
    assert not page.find_element(f"#{health.REPAIR}").is_displayed()  # nothing to repair

    user = live.db[USERS].find_one({"purchasedCourses.0": {"$exists": True}}, {"name": 1, "purchasedCourses": 1})
    live.db[USERS].update_one({"_id": user["_id"]}, {"$set": {"purchasedCourses": []}})
    page.find_element(f"#{health.RUN}").click()
    wait_until(lambda: page.find_element(f"#{health.REPAIR}").is_displayed(), 30, "a repair is offered")
    link = page.find_element("#health-problem-purchase_missing_from_array a.health-customer")
    assert link.text == user["name"] and link.get_attribute("href").endswith(f"/customers/{user['_id']}")

    page.find_element(f"#{health.REPAIR}").click()
    wait_until(lambda: "added to the customer's array" in text(page, health.REPAIR_BOX), 5, "the review")
    page.find_element(f"#{health.REPAIR_CONFIRM}").click()
    wait_until(lambda: text(page, health.STATUS).startswith("Repairing, then checking… (started "), 5,
               "the repair is running")
    wait_until(lambda: text(page, health.STATUS).startswith("Repaired by admin@example.com and checked at "), 45,
               "the repair ended")
    assert text(page, health.value(health.CONSISTENCY)) == "Consistent"
    repaired = live.db[USERS].find_one({"_id": user["_id"]})["purchasedCourses"]
    assert sorted(repaired) == sorted(user["purchasedCourses"])  # a repair appends in id order
    assert not page.find_element(f"#{health.REPAIR_BOX}").is_displayed()
    assert page.get_logs() == []


def _text_of(page, selector: str) -> str:
    found = page.driver.find_elements(By.CSS_SELECTOR, selector)
    return found[0].text if found else ""


def test_the_audit_log_counts_what_matches_and_says_so_once(live, page):
    page.driver.get(page.server_url + audit.PATH)
    wait_until(lambda: text(page, audit.COUNT) == "No entries match.", 10, "the empty log's count")
    assert page.find_element("body").text.count("No entries match.") == 1  # not again inside the table

    first = live.db[USERS].find_one({}, {"name": 1, "purchasedCourses": 1})
    other = live.db[USERS].find_one({"name": {"$ne": first["name"]}}, {"name": 1, "purchasedCourses": 1})
    for user in (first, other):
        course = live.db[COURSES].find_one({"_id": {"$nin": user["purchasedCourses"]}})
        create_purchase(live.db, user["_id"], course["_id"], None,
                        {"amount": 0, "paymentMethod": "admin_grant", "actor": "admin@example.com"}, source="admin")
    wait_until(lambda: text(page, audit.COUNT) == "2 entries match, newest first.", 10, "the count of two grants")

    page.find_element(f"#{audit.ACTOR}").send_keys("tester ADMIN", Keys.ENTER)  # the staff name, any order
    wait_until(lambda: "actor=tester+ADMIN" in page.driver.current_url, 5, "the actor filter went into the URL")
    given, *rest = first["name"].split()
    page.find_element(f"#{audit.USER}").send_keys(" ".join([*rest, given]).upper(), Keys.ENTER)  # surname first
    wait_until(lambda: text(page, audit.COUNT) == "1 entry matches.", 10, "the count of the customer's grant")
    assert first["name"] in _text_of(page, f"#{audit.GRID} .ag-center-cols-container .ag-row[row-index='0']")
    page.find_element(f"#{audit.USER}").send_keys(" (.*", Keys.ENTER)
    wait_until(lambda: "No customer's name or email contains" in text(page, audit.MESSAGE), 10,
               "a pattern is taken literally, and matches nobody")
    assert text(page, audit.COUNT) == "" and page.find_element("body").text.count("No entries match.") == 0
    assert page.get_logs() == []
