"""The customers pages over HTTP: search, one customer's data, and revoking, against the real database."""

import json
import time
from datetime import UTC, datetime, timedelta

import pytest
from bson import ObjectId

from core import create_purchase, get_audit_log, has_purchased, remove_purchase
from core.customers import MISS_REFRESH_SECONDS
from core.storage.schema import COURSES, REVOKED, TESTS, USERS
from dashboard.pages import customers
from scripts.dash_client import callback_body, callback_key
from tests.conftest import signed_in, snapshot
from tests.test_app import route


@pytest.fixture
def shop(app):
    """Three customers, two courses and a test; Grace owns a course bought a day ago and a test granted now."""
    db = app.extensions["purchase_database"].db
    grace, alan, ada = ObjectId(), ObjectId(), ObjectId()
    course, other_course, test = ObjectId(), ObjectId(), ObjectId()
    db[USERS].insert_many([
        {"_id": grace, "name": "Grace Brewster Hopper", "email": "grace.hopper@example.com",
         "purchasedCourses": [], "purchasedTests": []},
        {"_id": alan, "name": "Alan Turing", "email": "alan@example.com", "purchasedCourses": [], "purchasedTests": []},
        {"_id": ada, "name": "Ada Lovelace", "email": "countess@example.org", "purchasedCourses": [],
         "purchasedTests": []},
    ])
    db[COURSES].insert_many([{"_id": course, "title": "COBOL in Practice", "price": 49.99},
                             {"_id": other_course, "title": "Compilers", "price": 30}])
    db[TESTS].insert_one({"_id": test, "title": "Logic Quiz", "price": 5})
    create_purchase(db, grace, course, None, {"amount": 49.99, "paymentMethod": "paypal",
                                              "purchasedAt": datetime.now(UTC) - timedelta(days=1)})
    create_purchase(db, grace, None, test, {"amount": 0, "paymentMethod": "admin_grant", "actor": "ann@example.com"},
                    source="admin", note="speaker")
    # a search that finds nothing reads newcomers, at most every MISS_REFRESH_SECONDS
    time.sleep(MISS_REFRESH_SECONDS)
    return {"db": db, "grace": grace, "alan": alan, "ada": ada, "course": course, "other_course": other_course,
            "test": test}


def post(client, app, output: str, values: dict, changed: list[str]):
    dash_app = app.extensions["dash"]
    return client.post("/_dash-update-component",
                       json=callback_body(dash_app, callback_key(dash_app, output), values, changed))


def response(reply) -> dict:
    assert reply.status_code == 200, reply.data
    return reply.get_json()["response"]


def search(client, app, text: str) -> str:
    reply = post(client, app, f"{customers.RESULTS}.children", {f"{customers.SEARCH}.value": text},
                 [f"{customers.SEARCH}.value"])
    return json.dumps(response(reply)[customers.RESULTS]["children"])


def refresh(client, app, user, state=None):
    values = {f"{customers.INTERVAL}.n_intervals": 1, f"{customers.CHANGED}.data": None,
              f"{customers.CUSTOMER}.data": str(user), f"{customers.STATE}.data": state or {}}
    return post(client, app, f"{customers.GRID}.rowData", values, [f"{customers.INTERVAL}.n_intervals"])


def press(client, app, button: str, user, item=None, reason=None, note=None, reviewed=None):
    """Press a button of the revoke panel, the panel open for `item` ("course:<id>")."""
    values = {f"{customers.CUSTOMER}.data": str(user), f"{customers.TARGET}.data": {"item": item} if item else None,
              f"{customers.REASON}.value": reason, f"{customers.NOTE}.value": note,
              f"{customers.REVIEWED}.data": reviewed, f"{button}.n_clicks": 1}
    return post(client, app, f"{customers.RESULT}.children", values, [f"{button}.n_clicks"])


def test_search_finds_people_by_email_name_and_id(viewer_client, app, shop):
    def found(text):
        return {name for name in ("Grace Brewster Hopper", "Alan Turing", "Ada Lovelace") if name in search(
            viewer_client, app, text)}

    assert found("grace.h") == {"Grace Brewster Hopper"}  # email prefix
    assert found("GRACE.HOPPER@example.com") == {"Grace Brewster Hopper"}  # a whole email, any case
    assert found("brew") == {"Grace Brewster Hopper"}  # any word of the name
    assert found("al") == {"Alan Turing"}
    assert found("countess@") == {"Ada Lovelace"}
    assert found(str(shop["ada"])) == {"Ada Lovelace"}  # an id
    assert found("a") == set() and "at least 2 characters" in search(viewer_client, app, "a")
    assert "No customer matches" in search(viewer_client, app, "zzz")
    results = search(viewer_client, app, "hopper")
    assert f"/customers/{shop['grace']}" in results and "2 owned" in results


def test_the_customer_page_shows_owned_items_total_timeline_and_agreement(admin_client, app, shop):
    db, grace = shop["db"], shop["grace"]
    remove_purchase(db, grace, None, shop["test"], actor="bob@example.com", reason="refund", source="admin",
                    note="asked by mail")
    create_purchase(db, grace, shop["other_course"], None, {"amount": 30, "paymentMethod": "stripe"})
    page = response(refresh(admin_client, app, grace))
    assert page[customers.NAME]["children"] == "Grace Brewster Hopper"
    assert "grace.hopper@example.com" in json.dumps(page[customers.IDENTITY]["children"])
    assert page[customers.TOTAL]["children"] == "79.99 USD"  # active purchases only: the free test was revoked
    assert page[customers.OWNED_COUNT]["children"] == "2 courses · 0 tests"
    owned = json.dumps(page[customers.OWNED]["children"])
    assert "COBOL in Practice" in owned and "Compilers" in owned and "Logic Quiz" not in owned
    assert owned.count(customers.REVOKE) == 2  # an admin gets a Revoke button per owned item
    rows = page[customers.GRID]["rowData"]
    assert [(r["event"], r["item"]) for r in rows] == [
        ("Purchase", "Compilers"), ("Revocation", "Logic Quiz"), ("Purchase", "Logic Quiz"),
        ("Purchase", "COBOL in Practice")]
    revocation, grant = rows[1], rows[2]
    assert (revocation["who"], revocation["why"], revocation["note"], revocation["source"]) == (
        "bob@example.com", "Refund", "asked by mail", "admin")
    assert revocation["amount"] == -rows[2]["amount"] if rows[2]["amount"] else revocation["amount"] <= 0
    assert (grant["who"], grant["note"], grant["method"], grant["amount"]) == ("ann@example.com", "speaker",
                                                                                "Admin grant", 0)
    assert page[customers.BADGE]["children"] == "Consistent" and "ok" in page[customers.BADGE]["className"]

    # the array loses an item its purchase still holds, and lists one nobody bought
    db[USERS].update_one({"_id": grace}, {"$pull": {"purchasedCourses": shop["course"]},
                                          "$push": {"purchasedTests": shop["test"]}})
    page = response(refresh(admin_client, app, grace))
    assert page[customers.BADGE]["children"] == "2 problems" and "bad" in page[customers.BADGE]["className"]
    problems = json.dumps(page[customers.PROBLEMS]["children"])
    assert "Logic Quiz (test): in the user's array, but no purchase behind it" in problems
    assert "COBOL in Practice (course): purchased, but missing from the user's array" in problems


def test_the_refresh_sends_nothing_until_the_data_version_moves(viewer_client, app, shop):
    first = response(refresh(viewer_client, app, shop["grace"]))
    state = first[customers.STATE]["data"]
    assert customers.REVOKE not in json.dumps(first[customers.OWNED]["children"])  # viewers get no Revoke buttons
    assert refresh(viewer_client, app, shop["grace"], state).status_code == 204
    create_purchase(shop["db"], shop["grace"], shop["other_course"], None, {"amount": 30, "paymentMethod": "stripe"})
    again = response(refresh(viewer_client, app, shop["grace"], state))
    assert "Compilers" in json.dumps(again[customers.OWNED]["children"])


def test_an_unknown_or_malformed_id_says_no_such_customer(viewer_client, app, shop):
    page = response(refresh(viewer_client, app, ObjectId()))
    assert page[customers.BODY]["className"] == "hidden"
    assert "No such customer" in json.dumps(page[customers.MISSING]["children"])
    assert "No such customer" in json.dumps(route(viewer_client, app, "/customers/not-an-id"))
    assert "No such customer" in json.dumps(route(viewer_client, app, f"/customers/{ObjectId()}"))


def test_only_admins_get_the_grant_link_and_the_revoke_panel(viewer_client, admin_client, app, shop):
    path = f"/customers/{shop['grace']}"
    as_admin, as_viewer = json.dumps(route(admin_client, app, path)), json.dumps(route(viewer_client, app, path))
    assert f"/grant?user={shop['grace']}" in as_admin and customers.PANEL in as_admin
    assert "/grant?user=" not in as_viewer and customers.PANEL not in as_viewer


def test_revoke_opens_the_panel_for_the_pressed_item(admin_client, app, shop):
    dash_app = app.extensions["dash"]
    key = callback_key(dash_app, f"{customers.RESULT}.children")
    ref = f"course:{shop['course']}"
    body = callback_body(dash_app, key, {f"{customers.CUSTOMER}.data": str(shop["grace"])}, [])
    pressed = {"type": customers.REVOKE, "item": ref}
    body["inputs"][0] = [{"id": pressed, "property": "n_clicks", "value": 1}]
    body["changedPropIds"] = [json.dumps(pressed, separators=(",", ":"), sort_keys=True) + ".n_clicks"]
    opened = response(admin_client.post("/_dash-update-component", json=body))
    assert opened[customers.TARGET]["data"] == {"item": ref}
    assert opened[customers.PANEL_TITLE]["children"] == "Revoke COBOL in Practice"
    assert "hidden" not in opened[customers.PANEL]["className"]


def test_review_then_confirm_revokes_with_the_admin_reason_and_note(app, shop):
    admin = signed_in(app, "admin", "ann@example.com")
    grace, item = shop["grace"], f"course:{shop['course']}"
    before = snapshot(shop["db"])
    reviewed = response(press(admin, app, customers.REVIEW, grace, item, "granted by mistake", "wrong account"))
    text = json.dumps(reviewed[customers.CONFIRM_TEXT]["children"])
    assert "COBOL in Practice" in text and "Grace Brewster Hopper (grace.hopper@example.com)" in text
    assert "Granted by mistake: wrong account" in text
    assert snapshot(shop["db"]) == before  # a review writes nothing
    stamp = reviewed[customers.REVIEWED]["data"]
    done = response(press(admin, app, customers.CONFIRM, grace, item, "granted by mistake", "wrong account", stamp))
    assert "Revoked" in json.dumps(done[customers.RESULT]["children"]) and done[customers.CHANGED]["data"]
    assert not has_purchased(shop["db"], grace, shop["course"])
    entry = get_audit_log(shop["db"], {"action": "revoke"})[0]
    assert (entry["actor"], entry["source"], entry["reason"], entry["note"]) == (
        "ann@example.com", "admin", "granted by mistake", "wrong account")
    # a double click's second press: already done by this admin since the review, so not an error
    again = response(press(admin, app, customers.CONFIRM, grace, item, "granted by mistake", "wrong account", stamp))
    assert "Revoked" in json.dumps(again[customers.RESULT]["children"])
    assert shop["db"][REVOKED].count_documents({}) == 1
    page = response(refresh(admin, app, grace))
    assert page[customers.GRID]["rowData"][0]["event"] == "Revocation"
    assert "COBOL in Practice" not in json.dumps(page[customers.OWNED]["children"])


@pytest.mark.parametrize(("reason", "note", "field", "message"), [
    (None, "", "reason", "Choose a reason"),
    ("other", "   ", "note", "required when the reason is “Other”"),
    ("refund", "x" * 201, "note", "Keep the note to 200 characters"),
])
def test_a_missing_reason_or_note_is_shown_next_to_its_field_and_writes_nothing(admin_client, app, shop, reason,
                                                                                note, field, message):
    before = snapshot(shop["db"])
    for button in (customers.REVIEW, customers.CONFIRM):
        reply = response(press(admin_client, app, button, shop["grace"], f"course:{shop['course']}", reason, note))
        assert message in reply[customers.error_id(field)]["children"]
    assert snapshot(shop["db"]) == before


def test_an_item_revoked_elsewhere_is_not_owned_any_more_and_nothing_is_written(admin_client, app, shop):
    db, grace, item = shop["db"], shop["grace"], f"course:{shop['course']}"
    reviewed = response(press(admin_client, app, customers.REVIEW, grace, item, "refund"))
    remove_purchase(db, grace, shop["course"], actor="someone@example.com", reason="chargeback")
    before = snapshot(db)
    reply = response(press(admin_client, app, customers.CONFIRM, grace, item, "refund", None,
                           reviewed[customers.REVIEWED]["data"]))
    assert "Not owned any more" in reply[customers.error_id("item")]["children"]
    assert snapshot(db) == before
    again = response(press(admin_client, app, customers.REVIEW, grace, item, "refund"))
    assert "Not owned any more" in again[customers.error_id("item")]["children"]


def test_viewers_and_strangers_cannot_revoke(viewer_client, client, app, shop):
    before = snapshot(shop["db"])
    args = (shop["grace"], f"course:{shop['course']}", "refund")
    assert press(client, app, customers.CONFIRM, *args).status_code == 401
    assert press(viewer_client, app, customers.CONFIRM, *args).status_code == 403
    assert press(viewer_client, app, customers.REVIEW, *args).status_code == 403
    assert snapshot(shop["db"]) == before
    assert has_purchased(shop["db"], shop["grace"], shop["course"])
