"""The flows with the keyboard alone, in headless Chromium: Tab, Enter, arrows and typing, no click.

Each step also checks that the element with the focus shows it (an outline), since a person
who cannot see where the keyboard is cannot use it either.
"""

import json
import time

import pytest
from selenium.webdriver.common.action_chains import ActionChains
from selenium.webdriver.common.keys import Keys

from core import has_purchased
from core.storage.schema import COURSES, PURCHASES, USERS
from dashboard.pages import bulk, customers, grant
from dashboard.pages import live as live_page
from scripts.chrome import sign_out
from tests.browser.conftest import PASSWORD
from tests.browser.test_live_page import text, wait_until

pytestmark = pytest.mark.browser
MOST_TABS = 40  # more than every tab stop of any page

# What shows where the focus is: an outline on the element or on the box drawn around it
# (Dash's inputs and date pickers outline their container); for a pill, a radio drawn as its
# label, the label's.
FOCUS_SHOWN = """
const el = document.activeElement;
if (!el || el === document.body) return 'nothing has the focus';
const ringed = e => { const s = getComputedStyle(e);
  return (s.outlineStyle !== 'none' && parseFloat(s.outlineWidth) >= 1) || s.boxShadow !== 'none'; };
if (el.matches('.pills input')) return ringed(el.closest('label').querySelector('.pill')) ? '' : 'no ring on a pill';
for (let e = el, up = 0; e && up < 3; e = e.parentElement, up++) { if (ringed(e)) return ''; }
return 'no outline on ' + el.outerHTML.slice(0, 160);
"""

def active(page):
    return page.driver.switch_to.active_element


def press(page, *keys) -> None:
    """Keys sent to whatever has the focus, as a person types them."""
    ActionChains(page.driver).send_keys(*keys).perform()


def type_as_a_person(page, text: str) -> None:
    """One key at a time, a few hundredths of a second apart. Dash 4's debounced dcc.Input
    loses its timer when a whole word arrives between two renders (as WebDriver sends it)
    and puts back an older value mid-word; no hand types that fast."""
    keys = ActionChains(page.driver)
    for key in text:
        keys.send_keys(key).pause(0.03)
    keys.perform()


def active_is(page, selector: str) -> bool:
    return page.driver.execute_script("return !!document.activeElement && document.activeElement.matches(arguments[0])",
                                      selector)


def tab_to(page, selector: str) -> None:
    """Press Tab until the focus is on `selector`, checking at each stop that the focus shows."""
    for _ in range(MOST_TABS):
        if active_is(page, selector):
            return
        press(page, Keys.TAB)
        time.sleep(0.05)
        problem = page.driver.execute_script(FOCUS_SHOWN)
        assert not problem, problem
    raise AssertionError(f"Tab never reached {selector}")


def type_in_dropdown(page, dropdown: str, wanted: str) -> None:
    """Tab to a searchable dropdown and type: the first key opens it on its search box, which
    takes the rest; wait until the list shows `wanted`."""
    tab_to(page, f"#{dropdown}")
    press(page, wanted[0])
    wait_until(lambda: active_is(page, ".dash-dropdown-search"), 15, "the search box has the focus")
    press(page, wanted[1:])
    wait_until(lambda: wanted in page.find_element(".dash-dropdown-options").text, 10, f"{wanted!r} listed")


def test_sign_in_and_find_a_customer_with_the_keyboard(live, page):
    user = live.db[USERS].find_one({"purchasedCourses.0": {"$exists": True}})
    sign_out(page.driver, page.server_url)
    page.driver.get(page.server_url + "/login")
    page.wait_for_element("#email")
    assert active_is(page, "#email")  # the form starts where one types
    press(page, "admin@example.com", Keys.TAB, PASSWORD, Keys.ENTER)
    page.wait_for_element(".panel .js-plotly-plot", timeout=10)

    page.driver.get(page.server_url + customers.PATH)
    page.wait_for_element(f"#{customers.SEARCH}")
    tab_to(page, f"#{customers.SEARCH}")
    type_as_a_person(page, user["email"])
    link = f"#{customers.RESULTS} a[href='/customers/{user['_id']}']"
    page.wait_for_element(link, timeout=10)
    press(page, Keys.ENTER)  # the first match
    wait_until(lambda: text(page, customers.NAME) == user["name"], 10, "the customer's page")


def test_grant_with_the_keyboard(live, page):
    user = live.db[USERS].find_one({"purchasedCourses.0": {"$exists": True}})
    course = live.db[COURSES].find_one({"_id": {"$nin": user["purchasedCourses"]}})
    page.driver.get(page.server_url + grant.PATH)
    page.wait_for_element(f"#{grant.REVIEW}")

    # the customer: Tab to the dropdown and type; it opens on its search box; Enter takes the match
    type_in_dropdown(page, grant.USER, user["email"])
    press(page, Keys.ENTER)
    wait_until(lambda: user["name"] in text(page, grant.USER), 15, "the customer chosen")
    wait_until(lambda: active_is(page, f"#{grant.USER}"), 15, "the focus back on the customer field")

    # the course: the same, by its title
    type_in_dropdown(page, grant.ITEM, course["title"])
    press(page, Keys.ENTER)
    wait_until(lambda: course["title"] in text(page, grant.ITEM), 15, "the course chosen")

    # complimentary is chosen already; a note, then Review and Confirm
    tab_to(page, f"#{grant.NOTE}")
    press(page, "granted with the keyboard")
    tab_to(page, f"#{grant.REVIEW}")
    press(page, Keys.ENTER)
    page.wait_for_contains_text(f"#{grant.CONFIRM_TEXT}", course["title"])
    assert "granted with the keyboard" in text(page, grant.CONFIRM_TEXT)
    # while reviewed, the form takes no focus: what is confirmed is what was reviewed
    tab_to(page, f"#{grant.CONFIRM}")
    for _ in range(MOST_TABS):
        press(page, Keys.SHIFT, Keys.TAB)
        assert not page.driver.execute_script("return arguments[0].contains(document.activeElement)",
                                              page.find_element(f"#{grant.FORM}")), "the focus went into the form"
        if active_is(page, "#shell-signout"):
            break
    tab_to(page, f"#{grant.CONFIRM}")
    press(page, Keys.ENTER)
    page.wait_for_contains_text(f"#{grant.RESULT}", "Granted")
    assert has_purchased(live.db, user["_id"], course["_id"])
    assert live.db[PURCHASES].count_documents({"user": user["_id"], "course": course["_id"]}) == 1


def test_live_filters_with_the_keyboard(live, page):
    page.driver.get(page.server_url + live_page.PATH)
    page.wait_for_element(".panel .js-plotly-plot", timeout=10)

    # the range pills are one radio group: Tab lands on the chosen one, arrows move the choice
    tab_to(page, f"#{live_page.PRESET} input:checked")
    press(page, Keys.ARROW_RIGHT)
    wait_until(lambda: "range=90d" in page.driver.current_url, 15, "90 days chosen")
    press(page, Keys.ARROW_RIGHT)
    wait_until(lambda: "range=custom" in page.driver.current_url, 15, "Custom chosen")
    page.wait_for_element(f"#{live_page.DATES_START}")

    # the kind: Enter opens the list on the chosen option, Down and Enter take the next one
    tab_to(page, f"#{live_page.KIND}")
    press(page, Keys.ENTER)
    wait_until(lambda: active_is(page, ".dash-dropdown-options input"), 15, "the focus in the open list")
    press(page, Keys.ARROW_DOWN)
    press(page, Keys.ENTER)
    wait_until(lambda: "kind=course" in page.driver.current_url, 15, "courses only")

    # the granularity pills: Tab past the payment method to them; Left from Auto wraps to Month
    tab_to(page, f"#{live_page.GRANULARITY} input:checked")
    press(page, Keys.ARROW_LEFT)
    wait_until(lambda: "granularity=month" in page.driver.current_url, 15, "months chosen")
    assert page.get_logs() == []


def test_revoke_with_the_keyboard(live, page):
    user = live.db[USERS].find_one({"purchasedCourses.0": {"$exists": True}})
    course = live.db[COURSES].find_one({"_id": user["purchasedCourses"][0]})
    page.driver.get(f"{page.server_url}{customers.PATH}/{user['_id']}")
    wait_until(lambda: course["title"] in text(page, customers.OWNED), 10, "owned on the customer page")

    tab_to(page, f"button[title={json.dumps('Revoke ' + course['title'])}]")
    press(page, Keys.ENTER)
    page.wait_for_text_to_equal(f"#{customers.PANEL_TITLE}", f"Revoke {course['title']}")
    # no reason chosen: Tab lands on the first one, Down moves the choice to the next
    tab_to(page, f"#{customers.REASON} input")
    press(page, Keys.SPACE, Keys.ARROW_DOWN)
    wait_until(lambda: active_is(page, f"#{customers.REASON} input:checked[value=chargeback]"), 15, "chargeback chosen")
    tab_to(page, f"#{customers.REVIEW}")
    press(page, Keys.ENTER)
    page.wait_for_contains_text(f"#{customers.CONFIRM_TEXT}", course["title"])
    tab_to(page, f"#{customers.CONFIRM}")
    press(page, Keys.ENTER)
    page.wait_for_contains_text(f"#{customers.RESULT}", "Revoked")
    assert not has_purchased(live.db, user["_id"], course["_id"])


def test_bulk_grant_with_the_keyboard(live, page, tmp_path):
    user = live.db[USERS].find_one({}, sort=[("_id", 1)])
    course = live.db[COURSES].find_one({"_id": {"$nin": user["purchasedCourses"]}})
    upload = tmp_path / "grants.csv"
    upload.write_text(f"email,courseId,amount,paymentMethod,note\n{user['email']},{course['_id']},0,admin_grant,keys\n")
    page.driver.get(page.server_url + bulk.PATH)
    page.wait_for_element(f"#{bulk.UPLOAD}")

    # the drop zone's file input takes the focus, the zone shows it (Enter or Space opens the
    # file chooser, which the test cannot drive); the file goes in as the chooser gives it
    tab_to(page, f"#{bulk.UPLOAD} input[type=file]")
    active(page).send_keys(str(upload))
    page.wait_for_text_to_equal(f"#{bulk.APPLY}", "Grant 1 row", timeout=10)
    tab_to(page, f"#{bulk.APPLY}")
    press(page, Keys.ENTER)
    wait_until(lambda: text(page, bulk.JOB_STATUS).startswith("Done at"), 20, "the job done")
    assert has_purchased(live.db, user["_id"], course["_id"])
