"""The Staff page in headless Chromium: add an account and see its password once, change a role
after a confirmation, be refused removing the last admin; nothing wider than a phone."""

import pytest
from selenium.webdriver.common.by import By

from dashboard import accounts
from dashboard.pages import staff
from tests.browser.test_live_page import text, wait_until

pytestmark = pytest.mark.browser


def row(page, email: str):
    """The account's line (found by id: an email holds dots, which CSS reads as classes)."""
    return page.driver.find_element(By.ID, f"staff-row-{email}")


def button(page, email: str, label: str):
    return page.driver.find_element(By.CSS_SELECTOR, f"button[aria-label='{label} {email}']")


def hidden(page, element_id: str) -> bool:
    return "hidden" in page.find_element(f"#{element_id}").get_attribute("class").split()


def fits(page) -> bool:
    return page.driver.execute_script(
        "return document.documentElement.scrollWidth <= window.innerWidth &&"
        " [...document.querySelectorAll('.staff *')].every(e => e.getBoundingClientRect().right <= window.innerWidth + 1);")


def test_an_admin_adds_an_account_changes_a_role_and_cannot_remove_the_last_admin(live, page):
    page.driver.set_window_size(390, 844)
    page.driver.get(page.server_url + staff.PATH)
    wait_until(lambda: row(page, "viewer@example.com"), 10, "the accounts listed")
    assert "(you)" in row(page, "admin@example.com").text and fits(page)

    # add an account: reviewed, confirmed, its password shown once
    page.find_element(f"#{staff.EMAIL}").send_keys("nina@example.com")
    page.find_element(f"#{staff.NAME}").send_keys("Nina New")
    page.find_element(f"#{staff.REVIEW}").click()
    page.wait_for_contains_text(f"#{staff.CONFIRM_TEXT}", "Nina New")
    assert accounts.get_account(live.db, "nina@example.com") is None and fits(page)
    page.find_element(f"#{staff.CONFIRM}").click()
    wait_until(lambda: not hidden(page, staff.CREATED_BOX), 10, "the new password's box")
    password = text(page, staff.PASSWORD)
    assert accounts.verify(live.db, "nina@example.com", password).role == "viewer"
    wait_until(lambda: row(page, "nina@example.com"), 5, "the new account listed")
    assert page.find_element(f"#{staff.EMAIL}").get_attribute("value") == "" and fits(page)
    page.find_element(f"#{staff.DISMISS}").click()
    wait_until(lambda: password not in page.driver.page_source, 5, "the password gone from the page")

    # the only admin cannot make itself a viewer: said at once, nothing to confirm
    button(page, "admin@example.com", "Make viewer").click()
    page.wait_for_contains_text(f"#{staff.RESULT}", "is the last enabled admin")
    assert hidden(page, staff.CONFIRM_BOX)

    # another admin, after a confirmation; then the change is listed with who made it
    button(page, "viewer@example.com", "Make admin").click()
    page.wait_for_contains_text(f"#{staff.CONFIRM_TEXT}", "an admin?")
    assert accounts.get_account(live.db, "viewer@example.com").role == "viewer" and fits(page)
    page.find_element(f"#{staff.CONFIRM}").click()
    page.wait_for_contains_text(f"#{staff.RESULT}", "viewer@example.com is now an admin.")
    assert accounts.get_account(live.db, "viewer@example.com").role == "admin"
    wait_until(lambda: "Admin · Enabled" in row(page, "viewer@example.com").text, 5, "the line redrawn")
    page.wait_for_contains_text(f"#{staff.HISTORY}", "Made viewer@example.com an admin by Admin Tester")
    # now one's own demotion is allowed, with a warning first
    button(page, "admin@example.com", "Make viewer").click()
    page.wait_for_contains_text(f"#{staff.CONFIRM_TEXT}", "This is your own account")
    page.find_element(f"#{staff.BACK}").click()
    wait_until(lambda: hidden(page, staff.CONFIRM_BOX), 5, "the confirmation closed")
    assert accounts.get_account(live.db, "admin@example.com").role == "admin"
    assert page.get_logs() == []
