"""Browser tests: the real app on a real embedded server, in headless Chromium (dash_duo)."""

import shutil
import socket
import threading

import pytest
from dash.testing.browser import Browser
from werkzeug.serving import make_server

from app import create_app
from core import open_database
from core.operations import seed_demo
from dashboard import accounts, shell
from database import EmbeddedServer
from scripts.chrome import chrome_options, sign_in

REFRESH_MS = 1000
DEFAULT_SIZE = (1440, 900)
PASSWORD = "correct horse battery staple"


def pytest_setup_options():
    """Chromium flags for dash_duo (see tests/browser/chrome.py)."""
    return chrome_options()


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


DB_NAME = "browser"


def seeded_folder(folder) -> None:
    """A data folder with the demo shop and its two accounts, closed cleanly (its index
    entries kept): each test copies it rather than seeding its own (4 s a test)."""
    with open_database(data_dir=str(folder), db_name=DB_NAME) as opened:
        seed_demo(opened.db, users=120, items=20, purchases=900, seed=7)
        for role in ("admin", "viewer"):
            accounts.create_account(opened.db, f"{role}@example.com", role, PASSWORD, f"{role.title()} Tester")


class LiveApp:
    """The dashboard on its own embedded server, which a test may stop and restart."""

    def __init__(self, data_dir, template):
        shutil.copytree(template, data_dir, dirs_exist_ok=True)
        self.opened = open_database(data_dir=str(data_dir), db_name=DB_NAME)
        self.db = self.opened.db
        self.server = create_app({
            "MONGODB_URI": self.opened.uri, "MONGODB_DB": self.db.name, "SEED_DEMO": "0",
            "REFRESH_MS": str(REFRESH_MS), "DATA_DIR": str(data_dir), "HEALTH_CHECK_SECONDS": "0",
        })
        self._replacement = None

    def stop_database(self):
        self.opened.server.stop()

    def restart_database(self):
        """A new server process-thread on the same file and port, as after a restart."""
        host, port = self.opened.server.address
        self._replacement = EmbeddedServer(self.opened.server.sqlite_path, host=host, port=port,
                                           credentials=self.opened.server.credentials)
        self._replacement.start()

    def close(self):
        self.server.extensions["purchase_database"].close()
        if self._replacement is not None:
            self._replacement.stop()
        self.opened.close()


@pytest.fixture(scope="session")
def seeded_template(tmp_path_factory):
    folder = tmp_path_factory.mktemp("seeded") / "data"
    seeded_folder(folder)
    return folder


@pytest.fixture
def live(tmp_path, seeded_template):
    app = LiveApp(tmp_path / "data", seeded_template)
    yield app
    app.close()


@pytest.fixture(scope="session")
def session_browser(request, tmp_path_factory):
    """One Chromium per worker, which every test gets clean (a new one costs 1 to 3 s a test)."""
    with Browser(browser="chrome", headless=True, options=[chrome_options()],
                 download_path=str(tmp_path_factory.mktemp("download"))) as browser:
        yield browser


@pytest.fixture
def dash_br(session_browser):
    """dash[testing]'s browser, as fresh as a new one: one window at the default size, no
    cookies, no page (each test's server has a port, so an origin, of its own), no old logs."""
    driver = session_browser.driver
    yield session_browser
    for handle in driver.window_handles[1:]:
        driver.switch_to.window(handle)
        driver.close()
    driver.switch_to.window(driver.window_handles[0])
    driver.get("about:blank")
    driver.execute_cdp_cmd("Network.clearBrowserCookies", {})
    driver.set_window_size(*DEFAULT_SIZE)
    session_browser.reset_log_timestamp()
    session_browser._window_idx = 0


@pytest.fixture
def page(live, dash_br):
    """dash[testing]'s browser on the app, served by a werkzeug server of our own.

    dash_duo's runner stops its server by killing every thread started after it, which
    takes the database driver's and the embedded engine's threads with it.
    """
    http = make_server("127.0.0.1", free_port(), live.server, threaded=True)
    thread = threading.Thread(target=http.serve_forever, daemon=True)
    thread.start()
    base = f"http://127.0.0.1:{http.server_port}"
    sign_in(dash_br.driver, base, "admin@example.com", PASSWORD)
    dash_br.server_url = base
    # signed in and the app drawn (its navigation), not the live page's charts: most tests go
    # elsewhere at once, and the live page's own tests wait for its charts themselves
    dash_br.wait_for_element(f"#{shell.NAV} a", timeout=15)
    yield dash_br
    http.shutdown()
    thread.join(timeout=5)
