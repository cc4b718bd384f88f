"""Every page, and the states that show more of it, checked by axe-core in headless Chromium.

axe-core is pinned in package-lock.json (`npm ci`, run by `make test`); the test reads
node_modules/axe-core/axe.min.js and runs it in the page with execute_script, so the site's
Content-Security-Policy does not apply to it and nothing is served that the app would not.
Any violation of WCAG 2.0/2.1 A and AA or of axe's best practices fails, listed in full.
"""

import json
import threading
from dataclasses import dataclass
from pathlib import Path

import pytest
from selenium.webdriver.common.by import By
from werkzeug.serving import make_server

from api.keys import create_key
from core import create_purchase, remove_purchase
from core.storage.schema import COURSES, USERS
from dashboard.pages import bulk, customers, grant
from dashboard.pages import live as live_page
from scripts.chrome import free_port, sign_in, sign_out, start_chrome
from tests.browser.conftest import PASSWORD, LiveApp
from tests.browser.test_live_page import wait_until

pytestmark = pytest.mark.browser
AXE = Path(__file__).resolve().parents[2] / "node_modules" / "axe-core" / "axe.min.js"
TAGS = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa", "best-practice"]
# Selectors axe leaves out: only third-party internals we cannot change, each with its reason.
EXCLUDE: list[list[str]] = []
RUN_AXE = """
const done = arguments[arguments.length - 1];
axe.run({exclude: arguments[0]}, {runOnly: {type: 'tag', values: arguments[1]}, resultTypes: ['violations']})
  .then(result => done(JSON.stringify(result.violations.map(v => ({
      id: v.id, impact: v.impact, help: v.help,
      nodes: v.nodes.map(n => ({target: n.target, html: n.html, summary: n.failureSummary}))})))))
  .catch(error => done(JSON.stringify({error: String(error)})));
"""


@dataclass
class Site:
    """One app, one server and one browser for the whole module; the account it is signed in as."""

    base: str
    driver: object
    live: LiveApp
    role: str | None = None

    def as_role(self, role: str | None) -> None:
        if role == self.role:
            return
        sign_out(self.driver, self.base)
        if role:
            sign_in(self.driver, self.base, f"{role}@example.com", PASSWORD)
            wait_until(lambda: "/login" not in self.driver.current_url, 10, f"signed in as {role}")
        self.role = role

    def open(self, path: str) -> None:
        self.driver.get(self.base + path)

    def css(self, selector: str) -> list:
        return self.driver.find_elements(By.CSS_SELECTOR, selector)

    def text(self, selector: str) -> str:
        found = self.css(selector)
        return found[0].text if found else ""


@pytest.fixture(scope="module")
def site(tmp_path_factory, seeded_template):
    """The dashboard on a copy of the demo folder, and a headless Chromium signed out."""
    if not AXE.exists():
        pytest.fail(f"{AXE} is missing: run `npm ci` (make test does)")
    live = LiveApp(tmp_path_factory.mktemp("a11y") / "data", seeded_template)
    _something_in_every_list(live.db)
    http = make_server("127.0.0.1", free_port(), live.server, threaded=True)
    thread = threading.Thread(target=http.serve_forever, daemon=True)
    thread.start()
    driver = start_chrome()
    driver.set_script_timeout(30)
    try:
        yield Site(f"http://127.0.0.1:{http.server_port}", driver, live)
    finally:
        driver.quit()
        http.shutdown()
        thread.join(timeout=5)
        live.close()


def _something_in_every_list(db) -> None:
    """A grant and a revocation (audit rows, feed rows, both kinds of timeline row) and an API
    key (a row with its Revoke button): every list draws rows, not its empty note."""
    user = db[USERS].find_one({"purchasedCourses.0": {"$exists": True}}, sort=[("_id", 1)])
    courses = [c["_id"] for c in db[COURSES].find({"_id": {"$nin": user["purchasedCourses"]}}, {"_id": 1}).limit(2)]
    for course in courses:
        create_purchase(db, user["_id"], course, None,
                        {"amount": 0, "paymentMethod": "admin_grant", "actor": "admin@example.com"},
                        source="admin", note="accessibility test")
    remove_purchase(db, user["_id"], courses[1], actor="admin@example.com", reason="refund", source="admin")
    create_key(db, "course-platform", "read", created_by="admin@example.com")


def axe_violations(driver) -> list[dict]:
    """What axe-core finds in the page as it is drawn now."""
    if not driver.execute_script("return typeof window.axe !== 'undefined'"):
        driver.execute_script(AXE.read_text())
    found = json.loads(driver.execute_async_script(RUN_AXE, EXCLUDE, TAGS))
    if isinstance(found, dict):
        raise AssertionError(f"axe-core failed: {found['error']}")
    return found


def report(violations: list[dict]) -> str:
    lines = []
    for violation in violations:
        lines.append(f"{violation['id']} ({violation['impact']}): {violation['help']}")
        for node in violation["nodes"]:
            lines.append(f"    {' '.join(map(str, node['target']))}")
            lines.append(f"        {node['html'][:240]}")
            lines += [f"        {line}" for line in (node["summary"] or "").splitlines()[1:3]]
    return "\n".join(lines)


def drawn(site: Site, selector: str, timeout: float = 10) -> None:
    wait_until(lambda: any(e.is_displayed() for e in site.css(selector)), timeout, f"{selector} drawn")


def not_loading(site: Site, selector: str, timeout: float = 10) -> None:
    wait_until(lambda: site.text(selector).strip() not in ("", "…", "Loading…"), timeout, f"{selector} loaded")


def choose(site: Site, dropdown: str, wanted: str) -> None:
    """Open a dropdown, type part of an option, click the option that contains it; the menu closes."""
    site.css(f"#{dropdown}")[0].click()
    drawn(site, ".dash-dropdown-options")
    site.driver.switch_to.active_element.send_keys(wanted)
    option = f"//*[contains(@class, 'dash-dropdown-option') and contains(., {json.dumps(wanted)})]"
    wait_until(lambda: site.driver.find_elements(By.XPATH, option), 5, f"an option with {wanted!r}")
    site.driver.find_element(By.XPATH, option).click()
    if site.css(".dash-dropdown-options"):
        site.css("main h1")[0].click()


def customer_id(site: Site) -> str:
    return str(site.live.db[USERS].find_one({"purchasedCourses.0": {"$exists": True}}, sort=[("_id", 1)])["_id"])


# ---------------------------------------------------------------- the pages and their states

def sign_in_page(site):
    site.open("/login")
    drawn(site, "#login-submit")


def sign_in_refused(site):
    site.open("/login")
    drawn(site, "#login-submit")
    site.css("#email")[0].send_keys("nobody@example.com")
    site.css("#password")[0].send_keys("not the password")
    site.css("#login-submit")[0].click()
    drawn(site, "#login-error")


def sign_out_page(site):
    site.open("/logout")
    drawn(site, "#logout-submit")


def live_revenue(site):
    site.open(live_page.PATH)
    drawn(site, ".panel .js-plotly-plot")
    not_loading(site, f"#{live_page.value(live_page.REVENUE_TODAY)}")
    drawn(site, f"#{live_page.FEED} tbody tr")


def live_custom_dates(site):
    live_revenue(site)
    site.driver.find_element(By.XPATH, f"//*[@id='{live_page.PRESET}']//label[contains(., 'Custom')]").click()
    drawn(site, f"#{live_page.DATES_START}")


def customer_search(site):
    site.open(customers.PATH)
    drawn(site, f"#{customers.SEARCH}")
    site.css(f"#{customers.SEARCH}")[0].send_keys("a")
    site.css(f"#{customers.SEARCH}")[0].send_keys("n")
    drawn(site, f"#{customers.RESULTS} a")


def customer_page(site):
    site.open(f"{customers.PATH}/{customer_id(site)}")
    not_loading(site, f"#{customers.NAME}")
    drawn(site, f"#{customers.GRID} .ag-row")


def customer_revoke_panel(site):
    customer_page(site)
    drawn(site, "button[title^='Revoke ']")
    site.css("button[title^='Revoke ']")[0].click()
    drawn(site, f"#{customers.PANEL}")


def grant_form(site):
    site.open(grant.PATH)
    drawn(site, f"#{grant.REVIEW}")


def grant_chosen(site):
    """The form for a customer with a course chosen and a payment to fill in: clear buttons, every field."""
    user = site.live.db[USERS].find_one({}, sort=[("_id", 1)])
    course = site.live.db[COURSES].find_one({"_id": {"$nin": user.get("purchasedCourses") or []}})
    site.open(f"{grant.PATH}?user={user['_id']}")
    wait_until(lambda: user["name"] in site.text(f"#{grant.USER}"), 10, "the customer preselected")
    choose(site, grant.ITEM, course["title"])
    site.driver.find_element(By.XPATH, f"//*[@id='{grant.MODE}']//label[contains(., 'payment taken elsewhere')]").click()
    drawn(site, f"#{grant.AMOUNT}")
    return course


def grant_review(site):
    course = grant_chosen(site)
    site.driver.find_element(By.XPATH, f"//*[@id='{grant.MODE}']//label[contains(., 'Complimentary')]").click()
    site.css(f"#{grant.REVIEW}")[0].click()
    wait_until(lambda: course["title"] in site.text(f"#{grant.CONFIRM_TEXT}"), 10, "the review step")


def bulk_page(site):
    site.open(bulk.PATH)
    drawn(site, f"#{bulk.UPLOAD}")


def bulk_preview(site):
    user = site.live.db[USERS].find_one({}, sort=[("_id", 1)])
    course = site.live.db[COURSES].find_one({"_id": {"$nin": user.get("purchasedCourses") or []}})
    upload = Path(site.live.opened.server.sqlite_path).parent / "a11y-grants.csv"
    upload.write_text(f"email,courseId,amount,paymentMethod,note\n{user['email']},{course['_id']},0,admin_grant,a11y\n"
                      f"nobody@example.com,{course['_id']},0,admin_grant,\n")
    bulk_page(site)
    site.css(f"#{bulk.UPLOAD} input[type=file]")[0].send_keys(str(upload))
    drawn(site, f"#{bulk.PREVIEW_GRID} .ag-center-cols-container .ag-row")
    wait_until(lambda: len(site.css(f"#{bulk.PREVIEW_GRID} .ag-center-cols-container .ag-row")) == 2, 10,
               "both rows in the preview")


def audit_log(site):
    site.open("/audit")
    drawn(site, "#audit-grid .ag-center-cols-container .ag-row")


def api_keys(site):
    site.open("/api-keys")
    drawn(site, "#apikeys-table tr")


def staff(site):
    site.open("/staff")
    not_loading(site, "#staff-summary")
    drawn(site, "#staff-table li")


def health(site):
    site.open("/health")
    not_loading(site, "#health-status")
    not_loading(site, "#health-engine-value")


def admins_only(site):
    site.open(grant.PATH)
    wait_until(lambda: "Admins only" in site.text("main"), 10, "Admins only")


CASES = [
    (None, sign_in_page),
    (None, sign_in_refused),
    ("admin", live_revenue),
    ("admin", live_custom_dates),
    ("admin", customer_search),
    ("admin", customer_page),
    ("admin", customer_revoke_panel),
    ("admin", grant_form),
    ("admin", grant_chosen),
    ("admin", grant_review),
    ("admin", bulk_page),
    ("admin", bulk_preview),
    ("admin", audit_log),
    ("admin", api_keys),
    ("admin", staff),
    ("admin", health),
    ("viewer", live_revenue),
    ("viewer", customer_page),
    ("viewer", admins_only),
    ("viewer", sign_out_page),
]


@pytest.mark.parametrize(("role", "reach"), CASES, ids=[f"{role or 'signed-out'}-{reach.__name__}" for role, reach in CASES])
def test_no_axe_violations(site, role, reach):
    site.as_role(role)
    reach(site)
    violations = axe_violations(site.driver)
    assert not violations, f"{site.driver.current_url}\n{report(violations)}"
