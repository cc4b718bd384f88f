"""An admin's whole round in headless Chromium: find, grant, check everywhere, revoke, audit; a viewer's limits."""

import pytest
from selenium.webdriver.common.by import By

from core import has_purchased
from core.storage.schema import COURSES, PURCHASES, USERS
from dashboard import accounts
from dashboard.pages import audit, customers, grant
from dashboard.pages import live as live_page
from scripts.chrome import sign_in, sign_out
from tests.browser.conftest import PASSWORD
from tests.browser.test_live_page import DEADLINE, text, wait_until
from tests.conftest import snapshot

pytestmark = pytest.mark.browser
FIRST_ROW = ".ag-center-cols-container .ag-row[row-index='0']"


def row_text(page, grid: str) -> str:
    found = page.driver.find_elements(By.CSS_SELECTOR, f"#{grid} {FIRST_ROW}")
    return found[0].text if found else ""


def choose(page, dropdown: str, wanted: str) -> None:
    """Open a dropdown, type part of an option, click the option that contains it."""
    page.find_element(f"#{dropdown}").click()
    page.wait_for_element(".dash-dropdown-options", timeout=5)
    page.driver.switch_to.active_element.send_keys(wanted)  # the menu's search box has the focus

    def option():
        found = page.driver.find_elements(By.CSS_SELECTOR, ".dash-dropdown-options .dash-dropdown-option")
        return next((o for o in found if wanted in o.text), None)

    wait_until(lambda: option() is not None, 3, f"an option with {wanted!r}")
    option().click()
    if page.driver.find_elements(By.CSS_SELECTOR, ".dash-dropdown-options"):
        page.find_element("main h1").click()  # the menu closes when a person clicks elsewhere


def feed_top(page) -> str:
    rows = page.driver.find_elements(By.CSS_SELECTOR, f"#{live_page.FEED} tbody tr")
    return rows[0].text if rows else ""


def test_an_admin_grants_and_revokes_and_every_view_agrees(live, page):
    user = live.db[USERS].find_one({"purchasedCourses.0": {"$exists": True}})
    course = live.db[COURSES].find_one({"_id": {"$nin": user["purchasedCourses"]}})
    # find the customer by typing part of the email
    page.driver.get(page.server_url + customers.PATH)
    page.find_element(f"#{customers.SEARCH}").send_keys(user["email"][:8])
    page.wait_for_element(f"#{customers.RESULTS} a[href='/customers/{user['_id']}']", timeout=5).click()
    wait_until(lambda: text(page, customers.NAME) == user["name"], 5, "the customer page")
    page.driver.find_element(By.PARTIAL_LINK_TEXT, "Grant access").click()

    # the grant form opens for this customer; a bad amount is refused next to its field
    wait_until(lambda: user["name"] in text(page, grant.USER), 5, "the customer preselected")
    choose(page, grant.ITEM, course["title"])
    assert course["title"] in text(page, grant.ITEM)
    page.driver.find_element(By.XPATH, f"//*[@id='{grant.MODE}']//label[contains(., 'payment taken elsewhere')]").click()
    page.find_element(f"#{grant.AMOUNT}").send_keys("12.345")
    before = snapshot(live.db)
    page.find_element(f"#{grant.REVIEW}").click()
    page.wait_for_contains_text(f"#{grant.error_id('amount')}", "at most 2 decimals")
    assert snapshot(live.db) == before

    # a free grant: review names customer, item and amount; confirm grants once
    page.driver.find_element(By.XPATH, f"//*[@id='{grant.MODE}']//label[contains(., 'Complimentary')]").click()
    page.find_element(f"#{grant.REVIEW}").click()
    page.wait_for_contains_text(f"#{grant.CONFIRM_TEXT}", course["title"])
    assert user["name"] in text(page, grant.CONFIRM_TEXT) and "free" in text(page, grant.CONFIRM_TEXT)
    page.find_element(f"#{grant.CONFIRM}").click()
    page.wait_for_contains_text(f"#{grant.RESULT}", "Granted")
    assert has_purchased(live.db, user["_id"], course["_id"])
    assert live.db[PURCHASES].count_documents({"user": user["_id"], "course": course["_id"]}) == 1

    # the customer page and the live page's feed agree
    page.driver.get(f"{page.server_url}/customers/{user['_id']}")
    wait_until(lambda: course["title"] in text(page, customers.OWNED), 5, "owned on the customer page")
    assert text(page, customers.BADGE) == "Consistent"
    page.driver.get(page.server_url + "/")
    wait_until(lambda: course["title"] in feed_top(page), DEADLINE + 4, "the grant tops the live feed")
    assert "Admin grant" in feed_top(page) and user["name"] in feed_top(page)

    # revoke it with a reason
    page.driver.get(f"{page.server_url}/customers/{user['_id']}")
    wait_until(lambda: course["title"] in text(page, customers.OWNED), 5, "owned")
    page.find_element(f"button[title='Revoke {course['title']}']").click()
    page.find_element(f"#{customers.REVIEW}").click()  # no reason yet: refused
    wait_until(lambda: "reason" in page.driver.find_element(By.CSS_SELECTOR, f"#{customers.PANEL}").text.lower(), 3,
               "a reason is required")
    assert has_purchased(live.db, user["_id"], course["_id"])
    page.driver.find_element(By.XPATH, f"//*[@id='{customers.REASON}']//label[contains(., 'Granted by mistake')]").click()
    page.find_element(f"#{customers.REVIEW}").click()
    page.wait_for_contains_text(f"#{customers.CONFIRM_TEXT}", course["title"])
    page.find_element(f"#{customers.CONFIRM}").click()
    page.wait_for_contains_text(f"#{customers.RESULT}", "Revoked")
    assert not has_purchased(live.db, user["_id"], course["_id"])
    wait_until(lambda: "Revocation" in row_text(page, customers.GRID), 5, "the revocation tops the timeline")
    assert "Admin Tester" in row_text(page, customers.GRID) and "Granted by mistake" in row_text(page, customers.GRID)

    # the audit log shows both, newest first, with the admin's name
    page.driver.get(page.server_url + audit.PATH)
    wait_until(lambda: "revoke" in row_text(page, audit.GRID), 8, "the audit log")
    first = row_text(page, audit.GRID)
    assert "Admin Tester (admin@example.com)" in first and course["title"] in first
    second = page.driver.find_element(By.CSS_SELECTOR, f"#{audit.GRID} .ag-center-cols-container .ag-row[row-index='1']")
    assert "grant" in second.text and "Admin Tester" in second.text
    assert page.get_logs() == []


def test_a_viewer_sees_no_admin_navigation_is_told_admins_only_and_signs_out(live, page):
    sign_out(page.driver, page.server_url)
    sign_in(page.driver, page.server_url, "viewer@example.com", PASSWORD)
    page.wait_for_element(".panel .js-plotly-plot", timeout=10)
    nav = page.find_element("#shell-nav").text
    assert "Live revenue" in nav and "Customers" in nav
    assert "Grant" not in nav and "Audit" not in nav and "Health" not in nav and "Bulk" not in nav
    for path in (grant.PATH, audit.PATH, "/bulk", "/health", "/staff", "/api-keys"):
        page.driver.get(page.server_url + path)
        wait_until(lambda: "Admins only" in page.find_element("main").text, 5, f"{path} says admins only")
        assert page.driver.current_url == page.server_url + path  # where the person asked to go
        assert not page.driver.find_elements(By.ID, grant.REVIEW)  # nothing of the page itself
    page.find_element("#shell-signout").click()
    wait_until(lambda: "/login" in page.driver.current_url, 5, "signed out")
    page.driver.get(page.server_url + "/customers")
    wait_until(lambda: "/login" in page.driver.current_url, 5, "signed out for good")


def test_a_tab_whose_account_is_disabled_says_so_and_goes_to_sign_in(live, page):
    sign_out(page.driver, page.server_url)
    sign_in(page.driver, page.server_url, "viewer@example.com", PASSWORD)
    page.wait_for_element(".panel .js-plotly-plot", timeout=10)

    accounts.disable_account(live.db, "viewer@example.com")

    wait_until(lambda: "You are signed out" in page.find_element("body").text, 15, "the tab says it is signed out")
    assert "account was disabled" in page.find_element("#signed-out").text
    wait_until(lambda: "/login" in page.driver.current_url, 10, "sent to sign in")
