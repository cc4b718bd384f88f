"""The bulk grant page in headless Chromium: upload, preview with flags, apply, progress, reload."""

import pytest
from selenium.webdriver.common.by import By

from core.storage.schema import COURSES, USERS
from dashboard.pages import bulk as bulk_page
from tests.browser.test_live_page import wait_until

pytestmark = pytest.mark.browser


def grid_statuses(page, grid_id: str) -> dict:
    """Row number -> status, as the grid shows them."""
    return page.driver.execute_script(
        "const out = {};"
        "document.querySelectorAll('#' + arguments[0] + ' .ag-center-cols-container .ag-row').forEach(r => {"
        " const row = r.querySelector('[col-id=row]'), status = r.querySelector('[col-id=status]');"
        " if (row && status) out[row.textContent.trim()] = status.textContent.trim(); });"
        "return out;", grid_id)


def test_upload_preview_apply_progress_and_reload(live, page, tmp_path):
    courses = list(live.db[COURSES].find({}, {"_id": 1}))
    # the demo data depends on the time of day: a customer may own every course already
    users = [u for u in live.db[USERS].find({}, {"email": 1, "purchasedCourses": 1})
             if len(u["purchasedCourses"]) < len(courses)][:3]
    lines = ["email,courseId,amount,paymentMethod,note"]
    for user in users:
        course = next(c for c in courses if c["_id"] not in user["purchasedCourses"])
        lines.append(f"{user['email']},{course['_id']},0,admin_grant,browser test")
    lines += [f"nobody@example.com,{courses[0]['_id']},0,admin_grant,", f"{users[0]['email']},{courses[0]['_id']},ten,paypal,"]
    upload = tmp_path / "grants.csv"
    upload.write_text("\n".join(lines) + "\n")

    page.driver.get(page.server_url + bulk_page.PATH)
    page.wait_for_element(f"#{bulk_page.UPLOAD} input[type=file]", timeout=10).send_keys(str(upload))
    wait_until(lambda: len(grid_statuses(page, bulk_page.PREVIEW_GRID)) == 5, 10, "preview shows five rows")
    assert grid_statuses(page, bulk_page.PREVIEW_GRID) == {"2": "ready", "3": "ready", "4": "ready",
                                                           "5": "problem", "6": "problem"}
    assert "3 ready to grant" in page.find_element(f"#{bulk_page.PREVIEW_COUNTS}").text
    assert "unknown user nobody@example.com" in page.find_element(f"#{bulk_page.PREVIEW_GRID}").text

    apply = page.find_element(f"#{bulk_page.APPLY}")
    assert apply.text == "Grant 3 rows"
    apply.click()
    wait_until(lambda: "?job=" in page.driver.current_url, 5, "the URL names the job")
    wait_until(lambda: page.find_element(f"#{bulk_page.JOB_STATUS}").text.startswith("Done at"), 20, "job done")
    assert page.find_element(f"#{bulk_page.PROGRESS} .bulk-bar-label").text == "100%"
    expected = {"2": "granted", "3": "granted", "4": "granted", "5": "skipped", "6": "skipped"}
    wait_until(lambda: grid_statuses(page, bulk_page.RESULTS_GRID) == expected, 5, "results shown")

    page.driver.refresh()
    wait_until(lambda: page.find_element(f"#{bulk_page.JOB_STATUS}").text.startswith("Done at"), 10,
               "the job is shown again after a reload")
    wait_until(lambda: grid_statuses(page, bulk_page.RESULTS_GRID) == expected, 5, "results shown after a reload")
    assert "3 granted" in page.find_element(f"#{bulk_page.JOB_COUNTS}").text
    assert page.find_element(f"#{bulk_page.APPLY}").is_displayed() is False
    assert page.get_logs() == []
    assert page.driver.find_elements(By.LINK_TEXT, "grants.csv")  # listed under recent jobs


def test_a_file_too_big_is_named_and_the_same_file_chosen_again_is_read_again(live, page, tmp_path):
    page.driver.get(page.server_url + bulk_page.PATH)
    chooser = page.wait_for_element(f"#{bulk_page.UPLOAD} input[type=file]", timeout=10)
    big = tmp_path / "campaign.csv"
    with big.open("w") as out:  # over the limit the browser sends (twice the 5 MB the server reads)
        out.write("email,item,amount,paymentMethod\n")
        out.write("someone@example.com,Some Course,0,admin_grant\n" * 250_000)
    chooser.send_keys(str(big))
    wait_until(lambda: "“campaign.csv” has" in page.find_element(f"#{bulk_page.UPLOAD_NOTE}").text, 5, "too big, said")
    assert "at most 5 MB" in page.find_element(f"#{bulk_page.UPLOAD_NOTE}").text

    user = live.db[USERS].find_one({}, {"email": 1})
    small = tmp_path / "grants.csv"
    small.write_text(f"email,item,amount,paymentMethod\n{user['email']},No Such Course,0,admin_grant\n")
    page.find_element(f"#{bulk_page.UPLOAD} input[type=file]").send_keys(str(small))
    wait_until(lambda: grid_statuses(page, bulk_page.PREVIEW_GRID) == {"2": "problem"}, 10, "first preview")
    assert page.find_element(f"#{bulk_page.UPLOAD_NOTE}").text == ""

    course = live.db[COURSES].find_one({}, {"title": 1})
    small.write_text(f"email,item,amount,paymentMethod\n{user['email']},{course['title']},0,admin_grant\n"
                     f"{user['email']},No Such Course,0,admin_grant\n")  # fixed in a spreadsheet, saved
    page.find_element(f"#{bulk_page.UPLOAD} input[type=file]").send_keys(str(small))
    wait_until(lambda: len(grid_statuses(page, bulk_page.PREVIEW_GRID)) == 2, 10, "the same file, read again")
