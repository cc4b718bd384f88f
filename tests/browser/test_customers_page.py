"""The customers pages in headless Chromium: an admin finds and revokes; a viewer watches a grant arrive."""

import time
from urllib.parse import parse_qs, urlparse

import pytest
from selenium.webdriver.common.by import By

from core import create_purchase
from core.storage.schema import COURSES, USERS
from dashboard.pages import customers
from dashboard.pages.customers import profile
from scripts.chrome import sign_in, sign_out
from tests.browser.conftest import PASSWORD
from tests.browser.test_live_page import text, wait_until

pytestmark = pytest.mark.browser
TIMELINE_FIRST_ROW = f"#{customers.GRID} .ag-center-cols-container .ag-row[row-index='0']"


def test_an_admin_finds_a_customer_by_typing_and_revokes_an_item_with_a_reason(live, page):
    user = live.db[USERS].find_one({"purchasedCourses.0": {"$exists": True}})
    page.driver.get(page.server_url + customers.PATH)
    page.find_element(f"#{customers.SEARCH}").send_keys(user["email"][:-4])
    link = f"#{customers.RESULTS} a[href='/customers/{user['_id']}']"
    # the type-ahead index is built in the background at start: on a loaded machine the first
    # search can take longer than a warm one (a fresh-clone run under load missed 5 s)
    page.wait_for_element(link, timeout=15).click()
    wait_until(lambda: text(page, customers.NAME) == user["name"], 5, "the customer page drew")

    course = live.db[COURSES].find_one({"_id": user["purchasedCourses"][0]})
    page.find_element(f"button[title='Revoke {course['title']}']").click()
    page.wait_for_text_to_equal(f"#{customers.PANEL_TITLE}", f"Revoke {course['title']}")
    page.driver.find_element(By.XPATH, f"//*[@id='{customers.REASON}']//label[contains(., 'Refund')]").click()
    page.find_element(f"#{customers.NOTE}").send_keys("duplicate charge")
    page.find_element(f"#{customers.REVIEW}").click()
    page.wait_for_contains_text(f"#{customers.CONFIRM_TEXT}", course["title"])
    assert user["name"] in text(page, customers.CONFIRM_TEXT)
    page.find_element(f"#{customers.CONFIRM}").click()

    page.wait_for_contains_text(f"#{customers.RESULT}", "Revoked")
    wait_until(lambda: "Revocation" in _text_of(page, TIMELINE_FIRST_ROW), 5, "the revocation tops the timeline")
    row = _text_of(page, TIMELINE_FIRST_ROW)
    assert course["title"] in row and "admin@example.com" in row and "Refund" in row and "duplicate charge" in row
    assert course["title"] not in text(page, customers.OWNED)
    assert course["_id"] not in live.db[USERS].find_one({"_id": user["_id"]})["purchasedCourses"]
    assert page.get_logs() == []


def test_a_viewer_sees_no_controls_and_a_grant_made_elsewhere_within_the_interval(live, page):
    sign_out(page.driver, page.server_url)
    sign_in(page.driver, page.server_url, "viewer@example.com", PASSWORD)
    user = live.db[USERS].find_one({}, {"name": 1, "purchasedCourses": 1})
    course = live.db[COURSES].find_one({"_id": {"$nin": user["purchasedCourses"]}})
    page.driver.get(f"{page.server_url}/customers/{user['_id']}")
    wait_until(lambda: text(page, customers.NAME) == user["name"], 5, "the customer page drew")
    wait_until(lambda: text(page, customers.BADGE) != "…", 5, "the consistency badge drew")  # its own read
    assert text(page, customers.BADGE) == "Consistent"
    assert not page.driver.find_elements(By.CSS_SELECTOR, ".customers-revoke-button, .customers-grant")

    create_purchase(live.db, user["_id"], course["_id"], None, {"amount": 12, "paymentMethod": "paypal"})
    wait_until(lambda: course["title"] in text(page, customers.OWNED), profile.REFRESH_MS / 1000 + 1,
               "the grant shows within the refresh interval")
    assert course["title"] in _text_of(page, TIMELINE_FIRST_ROW)
    assert page.get_logs() == []  # no refused (403) callback on a viewer's page

    # on a phone the timeline is a list: the same events, nothing to scroll sideways
    page.driver.set_window_size(390, 844)
    first_event = f"#{customers.TIMELINE_LIST} li:first-child"
    wait_until(lambda: page.driver.find_element(By.CSS_SELECTOR, first_event).is_displayed(), 5, "the list shows")
    assert course["title"] in _text_of(page, first_event) and "12.00 USD" in _text_of(page, first_event)
    assert not page.driver.find_element(By.ID, customers.GRID).is_displayed()
    assert page.driver.execute_script(
        "return document.documentElement.scrollWidth - document.documentElement.clientWidth") <= 0


def _text_of(page, selector: str) -> str:
    found = page.driver.find_elements(By.CSS_SELECTOR, selector)
    return found[0].text if found else ""


def test_the_search_lives_in_the_url_through_a_reload_a_shared_link_and_back(live, page):
    user = live.db[USERS].find_one({"name": {"$regex": " "}})
    first, *rest = user["name"].split()
    surname_first = " ".join([*rest, first])  # "van Rossum Guido" finds "Guido van Rossum"
    link = f"#{customers.RESULTS} a[href='/customers/{user['_id']}']"
    page.driver.get(page.server_url + customers.PATH)
    entries = page.driver.execute_script("return window.history.length")
    box = page.find_element(f"#{customers.SEARCH}")
    for part in (surname_first[:3], surname_first[3:]):  # two pauses: still one history entry
        box.send_keys(part)
        time.sleep(0.5)
    page.wait_for_element(link, timeout=15)
    wait_until(lambda: _query(page) == surname_first, 5, "the search went into the URL")
    assert page.driver.execute_script("return window.history.length") == entries

    page.driver.refresh()
    page.wait_for_element(link, timeout=15)
    assert page.find_element(f"#{customers.SEARCH}").get_attribute("value") == surname_first
    page.find_element(link).click()
    wait_until(lambda: text(page, customers.NAME) == user["name"], 5, "the customer page drew")
    page.driver.back()
    page.wait_for_element(link, timeout=15)
    assert page.find_element(f"#{customers.SEARCH}").get_attribute("value") == surname_first
    assert _query(page) == surname_first

    domain = user["email"].split("@")[1]
    page.driver.get(f"{page.server_url}{customers.PATH}?q=%40{domain}")  # a shared link: everyone at the domain
    page.wait_for_contains_text(f"#{customers.RESULTS}", "The first 20 matches", timeout=15)
    assert page.find_element(f"#{customers.SEARCH}").get_attribute("value") == f"@{domain}"
    assert page.get_logs() == []


def _query(page) -> str:
    return parse_qs(urlparse(page.driver.current_url).query).get("q", [""])[-1]
