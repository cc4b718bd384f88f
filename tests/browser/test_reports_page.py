"""The scheduled reports page in headless Chromium, at 1440x900 and 390x844: an admin adds a
subscription through the form, sees it listed with its schedule, and downloads its email."""

import os
from pathlib import Path

import pytest
from selenium.webdriver.common.by import By

from dashboard.pages.reports import ids as reports
from tests.browser.test_live_page import text, wait_until

pytestmark = pytest.mark.browser


def test_an_admin_adds_a_subscription_sees_it_listed_downloads_it_and_a_phone_fits(live, page, session_browser):
    page.driver.get(page.server_url + reports.PATH)
    page.wait_for_element(f"#{reports.NAME}", timeout=10)
    page.find_element(f"#{reports.SAVE}").click()  # nothing filled in: each field says what it needs
    wait_until(lambda: text(page, reports.error("name")) and text(page, reports.error("recipients")), 5,
               "the missing fields named")

    page.find_element(f"#{reports.NAME}").send_keys("Monday numbers")
    page.find_element(f"#{reports.RECIPIENTS}").send_keys("ann@example.com, bob@example.com")
    page.driver.find_element(By.XPATH, f"//*[@id='{reports.FREQUENCY}']//label[contains(., 'Weekly')]").click()
    page.find_element(f"#{reports.SAVE}").click()
    wait_until(lambda: "Saved 'Monday numbers'" in text(page, reports.FORM_RESULT), 10, "the save confirmed")
    wait_until(lambda: "Monday numbers" in text(page, reports.TABLE), 10, "the subscription listed")
    listed = text(page, reports.TABLE)
    assert "ann@example.com, bob@example.com" in listed and "Mondays at 08:00" in listed
    assert "the 7 days before the send day" in listed and "Nothing sent yet." in listed
    assert live.db["report_subscriptions"].count_documents({"name": "Monday numbers"}) == 1

    # Download gives the email as a file, without SMTP
    folder = session_browser.download_path
    before = set(os.listdir(folder))
    page.driver.find_element(By.CSS_SELECTOR, f"#{reports.TABLE} button[title^='Download the email']").click()
    wait_until(lambda: [f for f in set(os.listdir(folder)) - before if f.endswith(".eml")], 20, "the .eml downloaded")
    (eml,) = [f for f in set(os.listdir(folder)) - before if f.endswith(".eml")]
    assert "Subject:" in Path(folder, eml).read_text(encoding="utf-8", errors="replace")

    page.driver.set_window_size(390, 844)
    wait_until(lambda: page.driver.execute_script(
        "return document.documentElement.scrollWidth - document.documentElement.clientWidth") <= 0, 5,
        "nothing scrolls sideways on a phone")
    assert page.driver.find_element(By.CSS_SELECTOR, f"#{reports.TABLE} button[title^='Download the email']") \
        .is_displayed()
    assert page.get_logs() == []
