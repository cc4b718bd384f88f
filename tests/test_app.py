"""The app factory: settings, demo seeding on first start, the shell and its pages, the poll."""

import csv
import io
import json
import os
import time
from datetime import UTC, datetime, timedelta

import pytest
from bson import ObjectId

from app import create_app
from core import create_purchase, get_data_version
from core.operations import rollup_differences, seed_demo
from core.storage import retry
from core.storage.schema import COURSES, PURCHASES, USERS
from dashboard import shell
from dashboard.pages import live
from scripts.dash_client import callback_body, callback_key
from tests.conftest import signed_in

embedded_only = pytest.mark.skipif(bool(os.environ.get("MONGODB_URI")), reason="seeds only the embedded database")


@embedded_only
def test_prepare_db_seeds_demo_data_with_rollups_once_and_the_app_serves_it(tmp_path):
    server = create_app({"DATA_DIR": str(tmp_path), "MONGODB_DB": "apptest", "MONGODB_URI": ""})
    try:
        db = server.extensions["purchase_database"].db
        assert db[USERS].count_documents({}) == 0  # building the app only wires it
        prepared = server.test_cli_runner().invoke(args=["prepare-db"])
        assert prepared.exit_code == 0 and "Database ready" in prepared.output, prepared.output
        assert "admin@example.com  password: " in prepared.output  # the demo accounts, shown once
        assert db[USERS].count_documents({}) == 600 and db[PURCHASES].count_documents({}) == 5000
        assert rollup_differences(db) == [] and get_data_version(db) > 0
        client = signed_in(server, "viewer")
        assert client.get("/").status_code == 200
        shell_layout = json.dumps(client.get("/_dash-layout").get_json())
        assert f'"{shell.CONTENT}"' in shell_layout and "Embedded mongoeco" in shell_layout  # names its engine
        assert str(tmp_path) not in shell_layout and "127.0.0.1" not in shell_layout  # not where it is
        page = json.dumps(route(client, server, "/"))
        for component in (live.REVENUE_CHART, live.FEED, live.INTERVAL, live.value(live.AOV)):
            assert f'"{component}"' in page
    finally:
        server.extensions["purchase_database"].close()
    # a second start finds the data and does not seed again
    again = create_app({"DATA_DIR": str(tmp_path), "MONGODB_DB": "apptest", "MONGODB_URI": ""})
    try:
        prepared = again.test_cli_runner().invoke(args=["prepare-db"])
        assert prepared.exit_code == 0 and "password" not in prepared.output, prepared.output
        assert again.extensions["purchase_database"].db[PURCHASES].count_documents({}) == 5000
    finally:
        again.extensions["purchase_database"].close()


def test_seeding_can_be_turned_off(app):
    assert app.extensions["purchase_database"].db[USERS].count_documents({}) == 0


def test_a_setting_given_to_create_app_reaches_a_purchase(tmp_path):
    server = create_app({"DATA_DIR": str(tmp_path), "MONGODB_URI": os.environ.get("MONGODB_URI", ""),
                         "MONGODB_DB": f"settings_{ObjectId()}", "SEED_DEMO": "0",
                         "PAYMENT_METHODS": "voucher", "CURRENCY": "EUR", "DB_TIMEOUT": "2.5"})
    try:
        db, settings = server.extensions["purchase_database"].db, server.extensions["settings"]
        user, course = ObjectId(), ObjectId()
        db[USERS].insert_one({"_id": user, "name": "Ada", "purchasedCourses": [], "purchasedTests": []})
        db[COURSES].insert_one({"_id": course, "title": "Course"})
        purchase = create_purchase(db, user, course, None, {"amount": 5, "paymentMethod": "voucher"},
                                   settings=settings.core)
        assert db[PURCHASES].find_one({"_id": purchase["_id"]})["currency"] == "EUR"
        assert server.config["CURRENCY"] == "EUR"
        methods = json.dumps(route(signed_in(server, "viewer"), server, "/"))
        assert '"voucher"' in methods and '"paypal"' not in methods  # the page offers what core accepts
        with server.test_request_context("/"):
            server.preprocess_request()
            assert 2.0 < retry.bound() <= 2.5  # a request's database calls end within DB_TIMEOUT
            server.do_teardown_request()
        assert retry.bound() == retry.DEADLINE_SECONDS
    finally:
        server.extensions["purchase_database"].close()


def test_settings_are_checked_when_the_app_is_built(tmp_path):
    with pytest.raises(ValueError, match="REFRESH_MS"):
        create_app({"DATA_DIR": str(tmp_path), "REFRESH_MS": "soon"})
    with pytest.raises(ValueError, match="TIMEZONE"):
        create_app({"DATA_DIR": str(tmp_path), "TIMEZONE": "Mars/Olympus"})
    for bad in ("soon", "0", "nan", "1e9"):
        with pytest.raises(ValueError, match="DB_TIMEOUT"):
            create_app({"DATA_DIR": str(tmp_path), "DB_TIMEOUT": bad})


def test_an_unknown_path_shows_not_found(viewer_client, app):
    assert "Page not found" in json.dumps(route(viewer_client, app, "/nowhere"))


def route(client, app, path: str) -> dict:
    """What the shell's router puts on the page for `path`."""
    dash_app = app.extensions["dash"]
    key = callback_key(dash_app, f"{shell.CONTENT}.children")
    body = callback_body(dash_app, key, {f"{shell.URL}.pathname": path}, [f"{shell.URL}.pathname"])
    reply = client.post("/_dash-update-component", json=body)
    assert reply.status_code == 200, reply.data
    return reply.get_json()["response"][shell.CONTENT]["children"]


def poll(client, app, state: dict, search: str = "?range=30d"):
    """One tick of the live page's main poll, as the browser sends it."""
    dash_app = app.extensions["dash"]
    key = callback_key(dash_app, f"{live.STATE}.data", f"{live.FEED}.children")
    values = {f"{live.INTERVAL}.n_intervals": 1, f"{live.URL}.search": search, f"{live.STATE}.data": state}
    return client.post("/_dash-update-component", json=callback_body(dash_app, key, values,
                                                                     [f"{live.INTERVAL}.n_intervals"]))


def poll_until(send, done, seconds: float = 2.0):
    """Poll once a tenth of a second, as a tab does every second, until `done(reply)`: the
    version read every tab shares is refreshed in the background, at most every 0.2 s."""
    give_up = time.monotonic() + seconds
    while True:
        reply = send()
        if done(reply) or time.monotonic() > give_up:
            return reply
        time.sleep(0.1)


def test_poll_draws_once_then_answers_only_its_stamp_until_something_changes(viewer_client, app):
    client = viewer_client
    db = app.extensions["purchase_database"].db
    seed_demo(db, users=30, items=8, purchases=100, seed=1)
    first = poll(client, app, {})
    assert first.status_code == 200
    response = first.get_json()["response"]
    state = response[live.STATE]["data"]
    assert state["version"] == get_data_version(db)
    assert response[shell.BANNER]["className"] == "banner hidden"
    assert json.dumps(response[live.FEED]["children"]).count('"Tr"') == 16  # header and 15 rows
    idle = poll(client, app, state)  # nothing changed: only the stamp of the check ("checked just now")
    assert idle.status_code == 200 and set(idle.get_json()["response"]) == {live.CHECKED}
    user = db[USERS].find_one()
    course = db[COURSES].find_one({"_id": {"$nin": user["purchasedCourses"]}})
    create_purchase(db, user["_id"], course["_id"], None, {"amount": 12.5, "paymentMethod": "paypal"})
    changed = poll_until(lambda: poll(client, app, state), lambda reply: live.STATE in reply.get_json()["response"])
    assert changed.get_json()["response"][live.STATE]["data"]["version"] == state["version"] + 1


@embedded_only
def test_poll_shows_the_outage_banner_when_the_database_is_gone_and_keeps_the_figures(viewer_client, app):
    client = viewer_client
    first = poll(client, app, {})
    state = first.get_json()["response"][live.STATE]["data"]
    app.extensions["purchase_database"].server.stop()
    # this app's polls give up after 5 s (REFRESH_MS 10000): a read of a stopped server fails then
    down = poll_until(lambda: poll(client, app, state),
                      lambda reply: reply.status_code == 200 and shell.BANNER in reply.get_json()["response"], seconds=12)
    response = down.get_json()["response"]
    assert "Database unreachable since" in response[shell.BANNER]["children"]
    assert response[live.BODY]["className"] == "body stale"
    assert live.REVENUE_CHART not in response  # the last figures stay on screen
    assert response[live.STATE]["data"]["downSince"]


def test_a_view_of_eight_thousand_years_falls_back_to_the_default_at_once(viewer_client, app):
    reply = poll(viewer_client, app, {}, "?range=custom&start=2000-01-01&end=9999-12-30&granularity=day")
    response = reply.get_json()["response"]
    assert response[live.RANGE_LABEL]["children"] == "Last 30 days · by day"
    assert response[shell.BANNER]["className"] == "banner hidden"


def sync_url(client, app, changed: str, **values):
    """The live page's filter callback, as the browser calls it when one control changed."""
    reply = sync_reply(client, app, changed, **values)
    assert reply.status_code == 200, reply.data[:300]
    return reply.get_json()["response"]


def sync_reply(client, app, changed: str, **values):
    dash_app = app.extensions["dash"]
    key = callback_key(dash_app, f"{live.URL}.search", f"{live.PRESET}.value")
    ids = {"search": f"{live.URL}.search", "preset": f"{live.PRESET}.value", "start": f"{live.DATES}.start_date",
           "end": f"{live.DATES}.end_date", "kind": f"{live.KIND}.value", "method": f"{live.METHOD}.value",
           "granularity": f"{live.GRANULARITY}.value"}
    body = callback_body(dash_app, key, {ids[k]: v for k, v in values.items()}, [ids[changed]])
    return client.post("/_dash-update-component", json=body)


def test_choosing_custom_starts_from_the_range_shown_and_future_days_cannot_be_picked(viewer_client, app):
    response = sync_url(viewer_client, app, "preset", search="?range=30d", preset="custom", start=None, end=None,
                        kind="", method="", granularity="")
    today = datetime.now(UTC).date()  # the test app's TIMEZONE is UTC
    first = (today - timedelta(days=29)).isoformat()
    assert response[live.PRESET]["value"] == "custom"
    assert response[live.DATES_BOX]["className"] == "dates"
    assert response[live.URL]["search"] == f"?range=custom&start={first}&end={today}"
    assert response[live.DATES]["max_date_allowed"] == today.isoformat()


def test_a_range_picked_halfway_changes_nothing_until_its_end_is_picked(viewer_client, app):
    search = "?range=custom&start=2026-11-01&end=2026-11-20"
    halfway = sync_reply(viewer_client, app, "start", search=search, preset="custom", start="2026-11-03", end=None,
                         kind="", method="", granularity="")
    assert halfway.status_code == 204  # no update at all
    done = sync_url(viewer_client, app, "end", search=search, preset="custom", start="2026-11-03", end="2026-11-05",
                    kind="", method="", granularity="")
    assert done[live.URL]["search"] == "?range=custom&start=2026-11-03&end=2026-11-05"
    assert live.DATES not in done or set(done[live.DATES]) == {"max_date_allowed"}  # the picker is left as it is


def test_hours_for_ninety_days_become_automatic_and_the_url_says_so(viewer_client, app):
    response = sync_url(viewer_client, app, "granularity", search="?range=90d", preset="90d", start=None, end=None,
                        kind="", method="", granularity="hour")
    assert response[live.GRANULARITY]["value"] == ""
    assert live.URL not in response  # the URL stays "?range=90d"
    arrived = sync_url(viewer_client, app, "search", search="?range=90d&granularity=hour", preset="30d", start=None,
                       end=None, kind="", method="", granularity="")
    assert arrived[live.URL]["search"] == "?range=90d"  # a shared link that asked for it is corrected
    assert arrived[live.GRANULARITY]["value"] == ""


def test_the_caches_warm_up_at_the_first_request_not_when_the_app_is_built(tmp_path, monkeypatch):
    """A command-line run (`flask create-user`) builds the app and closes the database: a
    warm-up started then was still reading it and printed a traceback."""
    from dashboard.pages.live import data

    calls = []
    monkeypatch.setattr(data, "warm_up", lambda *args: calls.append(args))
    server = create_app({"DATA_DIR": str(tmp_path), "MONGODB_URI": os.environ.get("MONGODB_URI", ""),
                         "MONGODB_DB": f"warm_{ObjectId()}", "SEED_DEMO": "0"})
    try:
        time.sleep(0.5)
        assert calls == []
        server.test_client().get("/login")
        server.test_client().get("/login")
        poll_until(lambda: len(calls), lambda n: n == 1)
        time.sleep(0.2)
        assert len(calls) == 1  # once per app
    finally:
        opened = server.extensions["purchase_database"]
        if os.environ.get("MONGODB_URI"):
            opened.client.drop_database(opened.db.name)
        opened.close()


def test_a_csv_export_starts_with_the_byte_order_mark_and_reads_back_in_python(viewer_client, app):
    db = app.extensions["purchase_database"].db
    user, course = ObjectId(), ObjectId()
    db[USERS].insert_one({"_id": user, "name": "Zoë Ðorđević", "email": "zoe@example.com", "purchasedCourses": []})
    db[COURSES].insert_one({"_id": course, "title": "Éléments de Géométrie — 幾何", "price": 10})
    create_purchase(db, user, course, None, {"amount": 10, "paymentMethod": "stripe"})
    dash_app = app.extensions["dash"]
    key = callback_key(dash_app, f"{live.DOWNLOAD}.data", f"{live.MESSAGE}.children")
    body = callback_body(dash_app, key, {f"{live.EXPORT}.n_clicks": 1, f"{live.URL}.search": "?range=7d"},
                         [f"{live.EXPORT}.n_clicks"])
    reply = viewer_client.post("/_dash-update-component", json=body)
    assert reply.status_code == 200, reply.data[:300]
    download = reply.get_json()["response"][live.DOWNLOAD]["data"]
    assert download["content"].startswith("\ufeff") and download["type"] == "text/csv"
    rows = list(csv.reader(io.StringIO(download["content"].encode().decode("utf-8-sig"))))
    assert rows[0][0] != "" and not rows[0][0].startswith("\ufeff")
    assert any("Éléments de Géométrie — 幾何" in cell for row in rows for cell in row)
