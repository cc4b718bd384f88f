"""The API keys page in headless Chromium: make a key, see it once, revoke it after a confirmation."""

import urllib.error
import urllib.request

import pytest
from bson import ObjectId
from selenium.webdriver.common.action_chains import ActionChains
from selenium.webdriver.common.by import By

from api.keys import KEYS, digest
from dashboard.pages import api_keys
from tests.browser.test_live_page import text, wait_until

pytestmark = pytest.mark.browser


def api_status(base: str, secret: str) -> int:
    """What the running app's API answers this key for an unknown user: 404 opens, 401 refuses."""
    call = urllib.request.Request(f"{base}/api/v1/users/{ObjectId()}/entitlements",
                                  headers={"Authorization": f"Bearer {secret}"})
    try:
        with urllib.request.urlopen(call, timeout=10) as reply:
            return reply.status
    except urllib.error.HTTPError as error:
        return error.code


def classes(page, selector: str) -> list[str]:
    return page.find_element(selector).get_attribute("class").split()


def rows(page, name: str) -> list:
    """The table row of the key `name` (found by id: a name may hold a dot, which CSS reads as a class)."""
    return page.driver.find_elements(By.ID, f"apikeys-row-{name}")


def revoke_button(page, name: str):
    return rows(page, name)[0].find_element(By.TAG_NAME, "button")


def open_page(page) -> None:
    page.driver.get(page.server_url + api_keys.PATH)
    wait_until(lambda: text(page, api_keys.SUMMARY) != "Loading…" or "No keys yet" in text(page, api_keys.TABLE),
               10, "the table's first poll")


def make_key(page, name: str) -> str:
    """Fill the form, double-click Create key (as people do), and read the key from the box that shows it once."""
    page.find_element(f"#{api_keys.NAME}").send_keys(name)
    page.driver.find_element(By.XPATH, f"//*[@id='{api_keys.SCOPE}']//label[contains(., 'Write')]").click()
    ActionChains(page.driver).double_click(page.find_element(f"#{api_keys.CREATE}")).perform()
    wait_until(lambda: "hidden" not in classes(page, f"#{api_keys.CREATED_BOX}"), 10, "the new key's box")
    # the second click must not replace the reply that holds the key with "exists already"
    wait_until(lambda: page.find_element(f"#{api_keys.CREATE}").is_enabled(), 10, "the request done")
    assert text(page, api_keys.CREATE_ERROR) == "" and "hidden" not in classes(page, f"#{api_keys.CREATED_BOX}")
    return text(page, api_keys.SECRET)


def test_an_admin_makes_a_key_sees_it_once_and_revokes_it(live, page):
    open_page(page)
    intro = page.driver.find_element(By.CSS_SELECTOR, ".apikeys-intro a")
    assert intro.get_attribute("href") == page.server_url + "/api/v1/docs"

    secret = make_key(page, "course-platform")
    box = text(page, api_keys.CREATED_BOX)
    assert "Copy this key now: it will not be shown again" in box and secret.startswith("pur_")
    assert f'Bearer {secret}" {page.server_url}/api/v1/users/' in text(page, api_keys.CURL)
    stored = live.db[KEYS].find_one({"_id": "course-platform"})
    assert (stored["hash"], stored["scope"], stored["createdBy"]) == (digest(secret), "write", "admin@example.com")
    assert page.find_element(f"#{api_keys.NAME}").get_attribute("value") == ""  # the form emptied
    wait_until(lambda: rows(page, "course-platform"), 5, "the key in the table")
    row = rows(page, "course-platform")[0].text
    assert stored["prefix"] + "…" in row and "Active" in row and secret not in row
    assert api_status(page.server_url, secret) == 404  # the key opens the API; the user is unknown

    # hidden once saved: the secret is nowhere on the page any more
    page.find_element(f"#{api_keys.DISMISS}").click()
    wait_until(lambda: "hidden" in classes(page, f"#{api_keys.CREATED_BOX}"), 5, "the box hidden")
    wait_until(lambda: secret not in page.driver.page_source, 5, "the secret gone from the page")

    # revoke: a confirmation that names the key first, then the table says revoked
    revoke_button(page, "course-platform").click()
    page.wait_for_contains_text(f"#{api_keys.CONFIRM_TEXT}", "course-platform")
    assert "Every program using it will be refused within seconds" in text(page, api_keys.CONFIRM_TEXT)
    assert live.db[KEYS].find_one({"_id": "course-platform"})["revokedAt"] is None  # nothing yet
    page.find_element(f"#{api_keys.CONFIRM}").click()
    page.wait_for_contains_text(f"#{api_keys.REVOKE_RESULT}", "Revoked")
    wait_until(lambda: "revoked" in rows(page, "course-platform")[0].get_attribute("class").split(), 5,
               "the row revoked")
    row = rows(page, "course-platform")[0]
    assert "Revoked" in row.text and "Admin Tester (admin@example.com)" in row.text
    assert not row.find_elements(By.TAG_NAME, "button")
    assert "hidden" in classes(page, f"#{api_keys.CONFIRM_BOX}")
    wait_until(lambda: api_status(page.server_url, secret) == 401, 15, "the API refuses the revoked key")
    assert page.get_logs() == []


def test_on_a_phone_nothing_overflows_and_every_button_is_reachable(live, page):
    name = "a-rather-long-name-for-a-phone-screen.production-2025"
    page.driver.set_window_size(390, 844)
    open_page(page)
    make_key(page, name)

    def fits() -> bool:
        return page.driver.execute_script(
            "return document.documentElement.scrollWidth <= window.innerWidth &&"
            " [...document.querySelectorAll('.apikeys *')].every(e => e.getBoundingClientRect().right <= window.innerWidth + 1);")

    wait_until(lambda: rows(page, name), 5, "the key in the table")
    assert fits(), "something is wider than the phone with the key shown"
    revoke_button(page, name).click()  # selenium refuses a click on what a person could not reach
    page.wait_for_contains_text(f"#{api_keys.CONFIRM_TEXT}", name)
    assert fits(), "something is wider than the phone with the confirmation open"
    page.find_element(f"#{api_keys.CONFIRM}").click()
    page.wait_for_contains_text(f"#{api_keys.REVOKE_RESULT}", "Revoked")
    wait_until(lambda: not rows(page, name)[0].find_elements(By.TAG_NAME, "button"), 5, "the row revoked")
    assert page.get_logs() == []
