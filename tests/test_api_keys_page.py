"""The API keys page over HTTP: its callbacks as the browser posts them, the keys against the real API."""

import json
import time
from zoneinfo import ZoneInfo

import pytest
from bson import ObjectId

from api.keys import KEYS, create_key, digest, list_keys
from app import create_app
from dashboard import shell
from dashboard.pages import api_keys
from scripts.dash_client import callback_body, callback_key
from tests.conftest import signed_in, snapshot

REVOKED_WITHIN = 15.0  # the API's key cache lets a revoked key through for 2 s; a busy machine gets more


def db_of(app):
    return app.extensions["purchase_database"].db


def press(client, app, output: str, trigger: str, values: dict):
    """Post the callback that writes `output`, as the browser does when `trigger` changed."""
    dash_app = app.extensions["dash"]
    body = callback_body(dash_app, callback_key(dash_app, output), values, [trigger])
    return client.post("/_dash-update-component", json=body)


def create(client, app, name, scope="read"):
    return press(client, app, f"{api_keys.CREATED_BOX}.className", f"{api_keys.CREATE}.n_clicks",
                 {f"{api_keys.CREATE}.n_clicks": 1, f"{api_keys.NAME}.value": name, f"{api_keys.SCOPE}.value": scope})


def revoke_step(client, app, trigger: str, target=None, name=None):
    """Press a key's Revoke button (`name`), or Confirm or Back, in the revocation step."""
    pressed = [{"id": {"type": api_keys.REVOKE, "name": name}, "property": "n_clicks", "value": 1}] if name else []
    dash_app = app.extensions["dash"]
    key = callback_key(dash_app, f"{api_keys.CONFIRM_BOX}.className")
    body = callback_body(dash_app, key, {f"{trigger}.n_clicks": 1, f"{api_keys.TARGET}.data": target}, [])
    body["inputs"][0] = pressed  # the pattern-matching Revoke buttons: one list of those drawn
    trigger_id = json.dumps({"name": name, "type": api_keys.REVOKE}, separators=(",", ":")) if name else trigger
    body["changedPropIds"] = [f"{trigger_id}.n_clicks"]
    return client.post("/_dash-update-component", json=body)


def load(client, app, state=None):
    return press(client, app, f"{api_keys.TABLE}.children", f"{api_keys.INTERVAL}.n_intervals",
                 {f"{api_keys.INTERVAL}.n_intervals": 1, f"{api_keys.STATE}.data": state or {}})


def dumps(value) -> str:
    return json.dumps(value, ensure_ascii=False, default=str)


def response(reply) -> dict:
    assert reply.status_code == 200, reply.data
    return reply.get_json()["response"]


def entitlements(app, secret: str, user=None):
    return app.test_client().get(f"/api/v1/users/{user or ObjectId()}/entitlements",
                                 headers={"Authorization": f"Bearer {secret}"})


def test_a_key_is_shown_once_works_against_the_api_and_the_form_empties(app):
    admin = signed_in(app, "admin", "ann@example.com")
    made = response(create(admin, app, "course-platform", "write"))
    secret = made[api_keys.SECRET]["children"]
    assert secret.startswith("pur_") and len(secret) > 40
    # in this reply only, in the key's box and its example command: not in a store, not in the table
    assert [output for output, value in made.items() if secret in dumps(value)] == [api_keys.SECRET, api_keys.CURL]
    assert "hidden" not in made[api_keys.CREATED_BOX]["className"]
    curl = made[api_keys.CURL]["children"]
    assert curl.startswith(f'curl -H "Authorization: Bearer {secret}" http://localhost/api/v1/users/')
    assert curl.endswith("/entitlements")
    assert (made[api_keys.NAME]["value"], made[api_keys.SCOPE]["value"], made[api_keys.CREATE_ERROR]["children"]) == (
        "", "read", "")
    # stored: name, scope, who; the hash, never the secret
    doc = db_of(app)[KEYS].find_one({"_id": "course-platform"})
    assert (doc["scope"], doc["createdBy"], doc["hash"]) == ("write", "ann@example.com", digest(secret))
    assert secret not in dumps(doc)

    # the key opens the API: an unknown user is the API's 404, not a 401
    unknown = entitlements(app, secret)
    assert unknown.status_code == 404 and unknown.get_json()["type"] == "/api/v1/problems/user-not-found"
    user = ObjectId()
    db_of(app)["users"].insert_one({"_id": user, "name": "Ada", "purchasedCourses": [], "purchasedTests": []})
    known = entitlements(app, secret, user)
    assert known.status_code == 200 and known.get_json() == {"courses": [], "tests": []}
    assert entitlements(app, secret[:-1] + ("A" if secret[-1] != "A" else "B")).status_code == 401

    # later renders list the key by its start, never the secret
    table = response(load(admin, app))
    text = dumps(table)
    assert secret not in text
    assert "course-platform" in text and doc["prefix"] + "…" in text
    assert "ann@example.com" in text
    assert table[api_keys.SUMMARY]["children"] == "1 active, 0 revoked. Active keys first."
    # the dismiss button takes the key off the page
    hidden = response(press(admin, app, f"{api_keys.CREATED_BOX}.className", f"{api_keys.DISMISS}.n_clicks",
                            {f"{api_keys.DISMISS}.n_clicks": 1}))
    assert secret not in dumps(hidden) and "hidden" in hidden[api_keys.CREATED_BOX]["className"]


def test_the_table_lists_active_keys_first_with_who_and_when(app):
    db = db_of(app)
    for name in ("b-active", "a-revoked", "c-active"):
        create_key(db, name, "read", created_by="cli")
    admin = signed_in(app, "admin", "ann@example.com")
    revoked = response(revoke_step(admin, app, api_keys.CONFIRM, target="a-revoked"))
    assert "Revoked" in dumps(revoked[api_keys.REVOKE_RESULT])
    table = response(load(admin, app))[api_keys.TABLE]["children"]
    rows = table["props"]["children"][1]["props"]["children"]
    assert [row["props"]["id"] for row in rows] == ["apikeys-row-b-active", "apikeys-row-c-active",
                                                    "apikeys-row-a-revoked"]
    assert [row["props"]["className"] for row in rows] == ["active", "active", "revoked"]
    last = dumps(rows[2])
    assert "by the command line" in last and "Admin Tester (ann@example.com)" in last
    assert '"Revoke"' not in last and '"Revoke"' in dumps(rows[0])


def test_times_are_shown_in_the_configured_time_zone(app):
    key, _ = create_key(db_of(app), "berlin", "read", created_by="x@example.com")
    table = dumps(api_keys.keys_table([key], ZoneInfo("Europe/Berlin")).to_plotly_json())
    assert f"{key.created_at.astimezone(ZoneInfo('Europe/Berlin')):%Y-%m-%d %H:%M}" in table
    assert "Created (Europe/Berlin)" in table


@pytest.mark.parametrize(("name", "message"), [
    ("", "Enter a name for the key."),
    ("   ", "Enter a name for the key."),
    ("has space", "A key name is 1 to 64 letters"),
    ("-leading", "A key name is 1 to 64 letters"),
    ("x" * 65, "A key name is 1 to 64 letters"),
])
def test_a_bad_name_is_said_next_to_the_form_and_writes_nothing(app, name, message):
    admin = signed_in(app, "admin")
    before = snapshot(db_of(app))
    reply = response(create(admin, app, name))
    assert reply[api_keys.CREATE_ERROR]["children"].startswith(message)
    assert api_keys.SECRET not in reply and api_keys.NAME not in reply  # the form keeps what was typed
    assert snapshot(db_of(app)) == before


def test_a_name_already_used_is_refused_and_writes_nothing(app):
    admin = signed_in(app, "admin")
    first = response(create(admin, app, "platform"))
    before = snapshot(db_of(app))
    again = response(create(admin, app, "platform", "write"))
    assert "exists already" in again[api_keys.CREATE_ERROR]["children"]
    assert first[api_keys.SECRET]["children"] not in dumps(again) and api_keys.SECRET not in again
    assert snapshot(db_of(app)) == before
    assert [(k.name, k.scope) for k in list_keys(db_of(app))] == [("platform", "read")]


def test_no_scope_is_refused(app):
    admin = signed_in(app, "admin")
    reply = response(create(admin, app, "platform", None))
    assert reply[api_keys.CREATE_ERROR]["children"] == "Choose a scope."
    assert db_of(app)[KEYS].count_documents({}) == 0


def test_revoking_asks_first_then_ends_the_key(app):
    admin = signed_in(app, "admin", "ann@example.com")
    secret = response(create(admin, app, "mobile-app"))[api_keys.SECRET]["children"]
    assert entitlements(app, secret).status_code == 404  # works: the user is unknown, the key is not

    review = response(revoke_step(admin, app, "", name="mobile-app"))
    assert review[api_keys.CONFIRM_BOX]["className"] == "apikeys-confirm"
    assert review[api_keys.TARGET]["data"] == "mobile-app"
    text = dumps(review[api_keys.CONFIRM_TEXT]["children"])
    assert "mobile-app" in text and "Every program using it will be refused within seconds" in text
    assert list_keys(db_of(app))[0].active  # a review writes nothing
    back = response(revoke_step(admin, app, api_keys.BACK, target="mobile-app"))
    assert "hidden" in back[api_keys.CONFIRM_BOX]["className"] and back[api_keys.TARGET]["data"] is None
    assert list_keys(db_of(app))[0].active

    done = response(revoke_step(admin, app, api_keys.CONFIRM, target="mobile-app"))
    assert "is revoked" in dumps(done[api_keys.REVOKE_RESULT]) and "hidden" in done[api_keys.CONFIRM_BOX]["className"]
    assert done[api_keys.CHANGED]["data"]["name"] == "mobile-app"
    [key] = list_keys(db_of(app))
    assert not key.active and key.revoked_by == "ann@example.com"
    # a double click's second press: done, not an error
    again = response(revoke_step(admin, app, api_keys.CONFIRM, target="mobile-app"))
    assert "is revoked" in dumps(again[api_keys.REVOKE_RESULT])

    deadline = time.monotonic() + REVOKED_WITHIN
    while entitlements(app, secret).status_code != 401:
        assert time.monotonic() < deadline, f"the revoked key still opened the API after {REVOKED_WITHIN} s"
        time.sleep(0.1)
    table = dumps(response(load(admin, app)))
    assert "Revoked" in table and "0 active, 1 revoked" in table
    # another admin's revocation of a revoked key says so
    other = response(revoke_step(signed_in(app, "admin"), app, api_keys.CONFIRM, target="mobile-app"))
    assert "was revoked already" in dumps(other[api_keys.REVOKE_RESULT])


def test_a_viewer_can_neither_make_nor_revoke_nor_list_keys(app, viewer_client):
    key, secret = create_key(db_of(app), "existing", "read", created_by="cli")
    before = snapshot(db_of(app))
    assert create(viewer_client, app, "sneaky").status_code == 403
    assert revoke_step(viewer_client, app, api_keys.CONFIRM, target="existing").status_code == 403
    assert load(viewer_client, app).status_code == 403
    assert snapshot(db_of(app)) == before
    assert entitlements(app, secret).status_code == 404
    # the page itself: a viewer loading it gets the app with 403, and its router says "Admins only"
    assert viewer_client.get(api_keys.PATH).status_code == 403
    routed = response(press(viewer_client, app, f"{shell.CONTENT}.children", f"{shell.URL}.pathname",
                            {f"{shell.URL}.pathname": api_keys.PATH}))
    assert "Admins only" in dumps(routed[shell.CONTENT]) and "API keys" not in dumps(routed[shell.NAV])


def test_an_admin_sees_the_page_in_the_navigation(app, admin_client):
    routed = response(press(admin_client, app, f"{shell.CONTENT}.children", f"{shell.URL}.pathname",
                            {f"{shell.URL}.pathname": api_keys.PATH}))
    page = dumps(routed[shell.CONTENT])
    assert api_keys.NAME in page and 'href": "/api/v1/docs"' in page
    nav = [link["props"]["children"] for link in routed[shell.NAV]["children"]]
    assert nav.index("API keys") == nav.index("Reports") + 1
    assert admin_client.get("/api/v1/docs").status_code == 200


def test_the_database_down_is_a_message_not_a_traceback(tmp_path):
    server = create_app({"DATA_DIR": str(tmp_path), "MONGODB_URI": "", "MONGODB_DB": "down", "SEED_DEMO": "0",
                         "HEALTH_CHECK_SECONDS": "0", "DB_TIMEOUT": "2"})
    opened = server.extensions["purchase_database"]
    try:
        admin = signed_in(server, "admin")
        assert opened.server is not None, "an embedded server to stop"
        opened.server.stop()
        started = time.monotonic()
        reply = response(create(admin, server, "during-outage"))
        assert "The database did not answer" in reply[api_keys.CREATE_ERROR]["children"]
        assert api_keys.SECRET not in reply
        listed = response(load(admin, server))
        assert listed[api_keys.MESSAGE]["children"] == "The database did not answer; retrying."
        assert time.monotonic() - started < 30
    finally:
        opened.close()
