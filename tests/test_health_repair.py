"""The repair on the health page: admins only, reviewed then confirmed, one at a time, audited;
and the audit entries core's repair_arrays writes, from the page or the command line."""

import threading

import pytest
from bson import ObjectId

from core import ValidationError, create_purchase, get_audit_log
from core.analytics.rollups import active_collections
from core.operations import check_consistency, repair_arrays
from core.storage.schema import USERS
from dashboard import health
from dashboard.pages import health as page
from scripts.dash_client import callback_body, callback_key
from tests.conftest import owned, signed_in, snapshot
from tests.test_health import CARD, break_an_array, database, finished, poll, status_of


@pytest.fixture
def broken(app):
    """One user owning a course by purchase, and a second course pushed into the array without one."""
    return break_an_array(database(app))


def press(client, app, button: str, reviewed: dict | None = None):
    """A button of the repair (Repair…, Repair now, Cancel), as the browser posts it."""
    dash_app = app.extensions["dash"]
    key = callback_key(dash_app, f"{page.REPAIR_BOX}.className")
    values = {f"{button}.n_clicks": 1, f"{page.REPAIR_REVIEW}.data": reviewed or {}}
    return client.post("/_dash-update-component", json=callback_body(dash_app, key, values, [f"{button}.n_clicks"]))


def answered(reply) -> dict:
    assert reply.status_code == 200, reply.data
    return reply.get_json()["response"]


def checked(db) -> dict:
    """Run a check here, as the button would in the background; its result."""
    return health.run_claimed(db, health.claim(db, "manual", "someone@example.com"))


def test_an_admin_reviews_confirms_and_the_repair_is_audited_then_checked(app, broken):
    db = database(app)
    admin = signed_in(app, "admin", "ann@example.com")
    stats = active_collections(db)[0]
    db[stats].update_one({"level": "day"}, {"$inc": {"sales.course.paypal.count": 1}})  # a rollup counter off
    first = checked(db)
    assert health.repairable(first) == {"array_entry_without_purchase": 1, "rollup_mismatch": first["total"] - 1}

    review = answered(press(admin, app, page.REPAIR))
    assert review[page.REPAIR_BOX]["className"] == page.BOX  # shown
    text = str(review[page.REPAIR_TEXT]["children"])
    assert "1" in text and "id in a user's array with no purchase behind it: removed from the customer's array" in text
    assert "every rollup rebuilt from the purchases" in text
    assert review[page.REPAIR_REVIEW]["data"] == {"last": str(first["_id"])}
    assert db[health.RESULTS].count_documents({}) == 1  # a review writes nothing

    confirmed = answered(press(admin, app, page.REPAIR_CONFIRM, review[page.REPAIR_REVIEW]["data"]))
    assert confirmed[page.REPAIR_BOX]["className"].endswith(" hidden")
    assert confirmed[page.REPAIR_ANSWER]["data"]["notice"] is None
    after = finished(db, after=first["_id"])
    assert after["trigger"] == "repair" and after["requestedBy"] == "ann@example.com"
    assert after["status"] == "done" and after["total"] == 0
    assert after["repair"]["found"] == health.repairable(first) and after["repair"]["changes"] == 1
    assert after["repair"]["users"] == 1 and after["repair"]["rollupDocuments"] > 0
    assert owned(db, broken["user"], "course") == [broken["bought"]]
    [entry] = get_audit_log(db, {"user": broken["user"], "action": "revoke"})
    assert (entry["source"], entry["actor"], entry["item"], entry["title"]) == (
        "admin", "ann@example.com", broken["pushed"], "Pushed")
    assert entry["note"] == "repair: removed from purchasedCourses: no purchase of this course"

    shown = poll(admin, app)
    assert status_of(shown).startswith("Repaired by ann@example.com and checked at ")
    assert status_of(shown).endswith(" s): 1 array entry changed for 1 customer; the rollups rebuilt from purchases.")
    assert shown[page.REPAIR]["className"] == "button hidden" and shown[page.value(page.CONSISTENCY)]["children"] \
        == "Consistent"
    # the same confirmation again (a double click, a resent request): nothing left to repair, nothing run
    again = answered(press(admin, app, page.REPAIR_CONFIRM, review[page.REPAIR_REVIEW]["data"]))
    assert again[page.REPAIR_ANSWER]["data"]["notice"].startswith("Nothing to repair")
    assert db[health.RESULTS].count_documents({}) == 2


def test_viewers_cannot_review_or_run_a_repair(app, viewer_client, client, broken):
    db = database(app)
    first = checked(db)
    before = snapshot(db)
    for button in (page.REPAIR, page.REPAIR_CONFIRM):
        assert press(viewer_client, app, button, {"last": str(first["_id"])}).status_code == 403
        assert press(client, app, button, {"last": str(first["_id"])}).status_code == 401
    assert snapshot(db) == before
    assert owned(db, broken["user"], "course") == [broken["bought"], broken["pushed"]]


def test_a_confirmation_of_an_older_check_shows_the_review_again(admin_client, app, broken):
    db = database(app)
    old = checked(db)
    newer = checked(db)
    shown = answered(press(admin_client, app, page.REPAIR_CONFIRM, {"last": str(old["_id"])}))
    assert shown[page.REPAIR_REVIEW]["data"] == {"last": str(newer["_id"])}
    assert "A check ran since your review" in str(shown[page.REPAIR_TEXT]["children"])
    assert db[health.RESULTS].count_documents({}) == 2 and health.status(db)["running"] is None
    for junk in ({"last": "not an id"}, {"last": {"$gt": ""}}, {}):  # what no review step sends: reviewed again
        assert page.REPAIR_REVIEW in answered(press(admin_client, app, page.REPAIR_CONFIRM, junk))
    assert answered(press(admin_client, app, page.REPAIR_CANCEL))[page.REPAIR_BOX]["className"].endswith(" hidden")
    assert db[health.RESULTS].count_documents({}) == 2


def test_no_repair_starts_while_a_check_runs_and_two_confirmations_run_one(admin_client, app, broken):
    db = database(app)
    last = checked(db)
    ticket = health.claim(db, "manual", "bob@example.com")  # a check in another worker
    shown = answered(press(admin_client, app, page.REPAIR_CONFIRM, {"last": str(last["_id"])}))
    assert shown[page.REPAIR_ANSWER]["data"]["notice"].startswith("A check or repair is running")
    health.run_claimed(db, ticket)
    last = health.status(db)["last"]

    barrier, won = threading.Barrier(4), []

    def confirm():
        barrier.wait()
        won.append(health.start_repair(db, "ann@example.com", last["_id"]))

    threads = [threading.Thread(target=confirm) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert len(won) == 4 and sum(ticket is not None for ticket in won) == 1
    repaired = finished(db, after=last["_id"])
    assert repaired["trigger"] == "repair" and repaired["repair"]["changes"] == 1
    assert db[health.RESULTS].count_documents({"trigger": "repair"}) == 1
    assert len(get_audit_log(db, {"user": broken["user"]})) == 2  # the purchase's grant, the repair's revoke


def test_repair_arrays_audits_each_change_in_its_transaction(db, catalog):
    user, other = catalog["user"], catalog["other_user"]
    c0, c1 = catalog["courses"]
    t0, _ = catalog["tests"]
    create_purchase(db, user, c0, None, CARD)
    create_purchase(db, other, None, t0, CARD)
    db[USERS].update_one({"_id": user}, {"$set": {"purchasedCourses": [c0, c1, c0], "purchasedTests": "junk"}})
    db[USERS].update_one({"_id": other}, {"$set": {"purchasedTests": []}})
    before = len(get_audit_log(db))
    changes = repair_arrays(db, check_consistency(db))  # as the command line calls it
    assert sorted(changes) == sorted([f"user {user}: purchasedTests was 'junk', now a list",
                                      f"user {user}: removed course {c1} from purchasedCourses",
                                      f"user {other}: added test {t0} to purchasedTests"])
    entries = get_audit_log(db)[: len(get_audit_log(db)) - before]
    assert {e["source"] for e in entries} == {"script"} and {e["actor"] for e in entries} == {"repair_arrays"}
    seen = {(e["user"], e["action"], e["kind"], e["item"], e["title"], e["note"]) for e in entries}
    grant = next(e for e in entries if e["action"] == "grant")
    assert (grant["purchase"], grant["amount"], grant["paymentMethod"]) == (
        db["purchases"].find_one({"user": other})["_id"], 5, "paypal")
    assert seen == {
        (user, "fix", "test", None, None, "repair: purchasedTests was 'junk', now a list"),
        (user, "revoke", "course", c1, "Course 1", "repair: removed from purchasedCourses: no purchase of this course"),
        (user, "fix", "course", None, None, "repair: purchasedCourses held an id more than once; each kept once"),
        (other, "grant", "test", t0, "Test 0", f"repair: added to purchasedTests: purchase {grant['purchase']}"),
    }
    assert owned(db, user, "course") == [c0] and owned(db, user, "test") == []
    assert repair_arrays(db, check_consistency(db), actor="x", source="admin") == []  # nothing left: nothing written
    assert len(get_audit_log(db)) == before + 4
    with pytest.raises(ValidationError, match="source must be one of"):
        repair_arrays(db, {"array_not_a_list": [{"user": ObjectId()}]}, source="nobody")


def test_a_repair_that_fails_says_so_and_gives_the_lease_back(app, broken, monkeypatch):
    db = database(app)
    last = checked(db)

    def fails(*args, **kwargs):
        raise RuntimeError("disk full")

    monkeypatch.setattr(health, "repair_arrays", fails)
    result = health.run_claimed(db, health.claim(db, "repair", "ann@example.com", last_run=last["_id"]))
    assert result["status"] == "failed" and result["repair"] == {"found": {"array_entry_without_purchase": 1}}
    status = health.status(db)
    assert status["running"] is None and status["last"]["_id"] == result["_id"]
    text, failed = health.status_text(status, app.extensions["dashboard"].settings.timezone, result["finishedAt"])
    assert failed and text.startswith("Repair failed at ") and "RuntimeError: disk full" in text
    assert text.endswith("It stopped while repairing arrays: the audit log lists each change it made.")
    assert health.repairable(status["last"]) == {}  # no repair offered on a failed run: check again first
    assert health.claim(db, "repair", "x", last_run=last["_id"]) is None  # another run is the last now
