"""The health check: who may start it, what it finds and what the page says of it, how the schedule
shares one run among processes. The repair from the page: tests/test_health_repair.py."""

import threading
import time
from datetime import UTC, datetime, timedelta

import pytest
from bson import ObjectId

from core import create_purchase
from core.operations import check_consistency, repair_arrays
from core.storage import is_embedded
from core.storage.schema import COURSES, USERS
from dashboard import health
from dashboard.pages import health as page
from scripts.dash_client import callback_body, callback_key
from tests.conftest import snapshot

CARD = {"amount": 5, "paymentMethod": "paypal"}


def database(app):
    return app.extensions["purchase_database"].db


def press_run(client, app):
    """The "Run check now" button's callback, as the browser posts it."""
    dash_app = app.extensions["dash"]
    key = callback_key(dash_app, f"{page.RUN_ANSWER}.data")
    body = callback_body(dash_app, key, {f"{page.RUN}.n_clicks": 1}, [f"{page.RUN}.n_clicks"])
    return client.post("/_dash-update-component", json=body)


def poll_reply(client, app, state: dict | None = None, said: tuple[str, dict] | None = None):
    """One tick of the page's poll; with `said` (a store's id and data), the poll a button's answer fires."""
    dash_app = app.extensions["dash"]
    key = callback_key(dash_app, f"{page.STATE}.data")
    values = {f"{page.INTERVAL}.n_intervals": 1, f"{page.STATE}.data": state or {}}
    changed = [f"{page.INTERVAL}.n_intervals"]
    if said is not None:
        values[f"{said[0]}.data"], changed = said[1], [f"{said[0]}.data"]
    return client.post("/_dash-update-component", json=callback_body(dash_app, key, values, changed))


def poll(client, app, state: dict | None = None, said: tuple[str, dict] | None = None) -> dict:
    reply = poll_reply(client, app, state, said)
    assert reply.status_code == 200, reply.data
    return reply.get_json()["response"]


def status_of(shown: dict) -> str:
    return shown[page.STATUS]["children"]


def finished(db, after=None, timeout: float = 20) -> dict:
    """The last finished check, once one newer than `after` is there."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        last = health.status(db)["last"]
        if last is not None and last["_id"] != after:
            return last
        time.sleep(0.05)
    raise AssertionError(f"no check finished within {timeout} s")


@pytest.fixture
def broken(app):
    """One user owning a course by purchase, and a second course pushed into the array without one."""
    return break_an_array(database(app))


def break_an_array(db) -> dict:
    """The `broken` fixture's data: {"user", "bought", "pushed"}."""
    user, bought, pushed = ObjectId(), ObjectId(), ObjectId()
    db[USERS].insert_one({"_id": user, "name": "Ada", "email": "ada@example.com", "purchasedCourses": [],
                          "purchasedTests": []})
    db[COURSES].insert_many([{"_id": bought, "title": "Bought"}, {"_id": pushed, "title": "Pushed"}])
    create_purchase(db, user, bought, None, CARD)
    db[USERS].update_one({"_id": user}, {"$push": {"purchasedCourses": pushed}})
    return {"user": user, "bought": bought, "pushed": pushed}


def test_viewers_and_strangers_cannot_start_a_check(app, client, viewer_client):
    db = database(app)
    before = snapshot(db)
    assert press_run(client, app).status_code == 401
    assert press_run(viewer_client, app).status_code == 403
    assert poll_reply(viewer_client, app).status_code == 403  # the page's reads are for admins too
    time.sleep(0.3)  # a check started by mistake would have written by now
    after = snapshot(db)
    assert after == before and health.RESULTS not in after and health.STATE not in after


def test_a_check_reports_a_broken_array_then_none_after_repair(admin_client, app, broken):
    db = database(app)
    reply = press_run(admin_client, app)
    assert reply.status_code == 200
    assert reply.get_json()["response"][page.RUN_ANSWER]["data"]["notice"] is None  # the status line says it
    first = finished(db)
    assert first["status"] == "done" and first["trigger"] == "manual" and first["requestedBy"].startswith("admin-")
    assert {name: n for name, n in first["counts"].items() if n} == {"array_entry_without_purchase": 1}
    assert first["examples"]["array_entry_without_purchase"] == [{"user": broken["user"], "course": broken["pushed"]}]
    assert first["durationSeconds"] >= 0 and first["finishedAt"] >= first["startedAt"]

    shown = poll(admin_client, app)
    assert shown[page.value(page.CONSISTENCY)]["children"] == "1 problem"
    assert "1 repairable: press “Repair…”" in shown[page.note(page.CONSISTENCY)]["children"]
    assert shown[page.REPAIR]["className"] == "button"  # shown: there is something to repair
    assert shown[page.CONSISTENCY]["className"].endswith(" bad")
    assert shown[page.value(page.ROLLUPS)]["children"] == "Agree"
    assert "array_entry_without_purchase" in str(shown[page.PROBLEMS_PANEL]["children"])

    repair_arrays(db, check_consistency(db))
    press_run(admin_client, app)
    second = finished(db, after=first["_id"])
    assert second["status"] == "done" and second["total"] == 0
    shown = poll(admin_client, app, shown[page.STATE]["data"])
    assert shown[page.value(page.CONSISTENCY)]["children"] == "Consistent"
    assert shown[page.CONSISTENCY]["className"].endswith(" ok")
    assert shown[page.REPAIR]["className"] == "button hidden"


def test_the_status_line_says_checking_then_when_the_check_ended(admin_client, app, broken):
    db = database(app)
    shown = poll(admin_client, app)
    assert status_of(shown) == "Not checked yet."
    start = datetime.now(UTC)
    ticket = health.claim(db, "manual", "bob@example.com", process="other-worker:7", now=start)
    clock = start.astimezone(app.extensions["dashboard"].settings.timezone).strftime("%H:%M:%S")
    # the check runs in another worker: this one says so, from the database, and so does a reload
    shown = poll(admin_client, app, shown[page.STATE]["data"])
    assert status_of(shown) == f"Checking… (started {clock})"
    assert status_of(poll(admin_client, app)) == f"Checking… (started {clock})"
    assert shown[page.REPAIR]["className"] == "button hidden"  # nothing repaired while a check runs
    # a press meanwhile starts nothing; the status line says so until the state moves
    said = press_run(admin_client, app).get_json()["response"][page.RUN_ANSWER]["data"]
    told = poll(admin_client, app, shown[page.STATE]["data"], said=(page.RUN_ANSWER, said))
    assert status_of(told) == f"Checking… (started {clock}) · One was running already: no second check was started."
    assert page.STATUS not in poll(admin_client, app, told[page.STATE]["data"])  # nothing moved: left as it is

    result = health.run_claimed(db, ticket)
    ended = result["finishedAt"].astimezone(app.extensions["dashboard"].settings.timezone).strftime("%H:%M:%S")
    took = health._seconds(result["durationSeconds"])
    for state in (told[page.STATE]["data"], {}):  # the open page, and a reload
        shown = poll(admin_client, app, state)
        assert status_of(shown) == f"Checked at {ended} (took {took} s).", state
        assert shown[page.STATUS]["className"] == "message note"
    assert "Checking" not in str(shown)


def test_examples_name_the_customer_with_a_link_and_the_item_by_title(admin_client, app, broken):
    db = database(app)
    health.run_claimed(db, health.claim(db, "manual", "a@example.com"))
    panel = poll(admin_client, app)[page.PROBLEMS_PANEL]["children"]
    row = next(r for r in find_all(panel, "Tr") if r["props"].get("id") == "health-problem-array_entry_without_purchase")
    [link] = find_all(row, "Link")
    assert link["props"]["href"] == f"/customers/{broken['user']}" and link["props"]["children"] == "Ada"
    text = str(row)
    assert "ada@example.com" in text and "course “Pushed”" in text
    assert f"user={broken['user']}; course={broken['pushed']}" in text  # the raw ids, as secondary text

    # a user or item that does not exist is named as such, without a link
    ghost = ObjectId()
    db[USERS].update_one({"_id": broken["user"]}, {"$push": {"purchasedCourses": ghost}})
    db[USERS].delete_one({"_id": broken["user"]})
    names = health.example_names(db, {"examples": {"x": [{"user": broken["user"], "course": ghost}]}})
    view = str(page.example_view({"user": broken["user"], "course": ghost}, names))
    assert "no such customer" in view and "course not in the catalog" in view and "/customers/" not in view
    assert "no such" not in str(page.example_view({"bucket": "day|2025"}, names))


def find_all(tree, kind: str) -> list[dict]:
    """Every component of type `kind` in a layout as Dash serialises it."""
    found = []
    if isinstance(tree, list):
        for child in tree:
            found += find_all(child, kind)
    elif isinstance(tree, dict):
        if tree.get("type") == kind:
            found.append(tree)
        found += find_all(tree.get("props", {}).get("children"), kind)
    return found


def test_the_page_shows_engine_reachability_and_data_version(admin_client, app, broken):
    shown = poll(admin_client, app)
    assert shown[page.value(page.REACH)]["children"] == "Reachable"
    assert shown[page.note(page.REACH)]["children"].startswith("ping ")
    assert shown[page.value(page.VERSION)]["children"] == "1"
    expected = "Embedded mongoeco" if is_embedded(database(app)) else "MongoDB"
    assert shown[page.value(page.ENGINE)]["children"] == expected
    assert shown[page.value(page.CONSISTENCY)]["children"] == "Not checked yet"
    # nothing moved: the check's cards are left as they are, the live ones refreshed
    again = poll(admin_client, app, shown[page.STATE]["data"])
    assert page.value(page.CONSISTENCY) not in again and page.value(page.REACH) in again


def test_a_second_press_while_a_check_runs_starts_nothing(admin_client, app):
    db = database(app)
    ticket = health.claim(db, "manual", "someone@example.com")  # a check running in another process
    reply = press_run(admin_client, app)
    assert "no second check was started" in reply.get_json()["response"][page.RUN_ANSWER]["data"]["notice"]
    shown = poll(admin_client, app)
    assert shown[page.value(page.LAST)]["children"] == "Running…"
    assert "run by someone@example.com" in shown[page.note(page.LAST)]["children"]
    assert db[health.RESULTS].count_documents({}) == 0
    health.run_claimed(db, ticket)
    assert health.status(db)["running"] is None and health.claim(db, "manual", "x") is not None


def test_a_lease_left_by_a_dead_process_expires(app):
    db = database(app)
    start = datetime.now(UTC)
    assert health.claim(db, "manual", "a", process="dead:1", now=start) is not None
    assert health.claim(db, "manual", "b", now=start + health.LEASE / 2) is None
    assert health.claim(db, "manual", "b", now=start + health.LEASE + timedelta(seconds=1)) is not None


def contend_for_the_slot(db, processes: int) -> dict:
    """`processes` threads try to run the due scheduled check at the same moment: what each got."""
    barrier, results = threading.Barrier(processes), {}

    def contend(name):
        barrier.wait()
        results[name] = health.run_scheduled(db, 3600, process=name)

    threads = [threading.Thread(target=contend, args=(f"process-{i}",)) for i in range(processes)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    return results


def test_concurrent_scheduled_claims_run_the_check_once(app):
    db = database(app)
    health.ensure_state(db, every_seconds=3600, first_delay=0)
    for _ in range(3):
        db[health.STATE].update_one({"_id": health.STATE_ID}, {"$set": {"nextScheduledAt": datetime.now(UTC)}})
        results = contend_for_the_slot(db, 4)
        ran = {name: result for name, result in results.items() if result is not None}
        assert len(results) == 4 and len(ran) == 1, results
        [(winner, result)] = ran.items()
        assert result["process"] == winner and result["trigger"] == "schedule" and result["status"] == "done"
        assert health.run_scheduled(db, 3600, process="late") is None  # the next slot is an hour away
    assert db[health.RESULTS].count_documents({}) == 3


def test_the_scheduler_thread_runs_the_check_when_it_is_due(app):
    db = database(app)
    checks = health.start_health_checks(app.extensions["dashboard"], every_seconds=1, first_delay=0)
    try:
        result = finished(db, timeout=15)
    finally:
        checks.stop()
    assert result["trigger"] == "schedule" and result["process"] == health.process_name()
    assert health.status(db)["everySeconds"] == 1
    with pytest.raises(ValueError, match="every_seconds"):
        health.start_health_checks(app.extensions["dashboard"], every_seconds=0)
