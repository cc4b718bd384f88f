"""Headless Chromium from Debian's packages, started the way this machine allows; a free port."""

import shutil
import socket

from selenium import webdriver
from selenium.webdriver.chrome.service import Service

FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
         "--disable-background-networking", "--disable-component-update", "--no-first-run")


def chrome_options(width: int = 1440, height: int = 900) -> webdriver.ChromeOptions:
    options = webdriver.ChromeOptions()
    for flag in FLAGS:
        options.add_argument(flag)
    options.add_argument(f"--window-size={width},{height}")
    binary = shutil.which("chromium") or shutil.which("chromium-browser")
    if binary:
        options.binary_location = binary
    return options


def start_chrome(width: int = 1440, height: int = 900) -> webdriver.Chrome:
    """A new headless Chromium driven by chromedriver from PATH."""
    return webdriver.Chrome(service=Service(shutil.which("chromedriver")), options=chrome_options(width, height))


def free_port() -> int:
    """A TCP port on loopback that nothing listens on right now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def sign_in(driver, base: str, email: str, password: str) -> None:
    """Sign in through the form at `base`/login, as a person does."""
    from selenium.webdriver.common.by import By

    driver.get(base.rstrip("/") + "/login")
    driver.find_element(By.ID, "email").send_keys(email)
    driver.find_element(By.ID, "password").send_keys(password)
    driver.find_element(By.ID, "login-submit").click()


def sign_out(driver, base: str) -> None:
    """Sign out through /logout's button, as a person does, and wait for the sign-in form."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions
    from selenium.webdriver.support.wait import WebDriverWait

    driver.get(base.rstrip("/") + "/logout")
    buttons = driver.find_elements(By.ID, "logout-submit")
    if buttons:
        buttons[0].click()
        WebDriverWait(driver, 10).until(expected_conditions.presence_of_element_located((By.ID, "login-submit")))
