"""The reports page over HTTP, its callbacks posted as the browser posts them: add with errors in
words (nothing written), edit, delete; Download without SMTP; Send now through a real SMTP
server; a failure shown with its error; viewers refused."""

import base64
import email
import email.policy
import json
import uuid

import pytest

from app import create_app
from dashboard.pages.reports import ids
from reports import ledger, subscriptions
from reports.service import reporter_of
from scripts.dash_client import callback_body, callback_key
from tests.conftest import signed_in, snapshot
from tests.mail_server import MailServer, attachment

PNG = b"\x89PNG\r\n\x1a\n stand-in"
GOOD = {"name": "Weekly sales", "recipients": "ann@example.com\nbob@example.com", "view": "http://x/?range=7d&kind=test",
        "frequency": "weekly", "at": "7:30", "weekday": 2, "day": 1}


def db_of(app):
    return app.extensions["purchase_database"].db


def post(client, app, output: str, values: dict, changed: str, pressed: dict | None = None):
    """The callback that writes `output`; `pressed`: a row's button {"type", "id"} (the pattern inputs)."""
    dash_app = app.extensions["dash"]
    body = callback_body(dash_app, callback_key(dash_app, output), values, [changed])
    for n, entry in enumerate(body["inputs"]):
        if entry["id"].startswith("{"):  # a pattern input: the buttons drawn, as a list
            kind = json.loads(entry["id"])["type"]
            body["inputs"][n] = [{"id": pressed, "property": "n_clicks", "value": 1}] if (
                pressed and pressed["type"] == kind) else []
    if pressed:
        body["changedPropIds"] = [json.dumps({"id": pressed["id"], "type": pressed["type"]},
                                             separators=(",", ":")) + ".n_clicks"]
    reply = client.post("/_dash-update-component", json=body)
    assert reply.status_code == 200, reply.data
    return reply.get_json()["response"]


def save(client, app, form: dict, editing=None):
    values = {f"{ids.SAVE}.n_clicks": 1, f"{ids.EDITING}.data": editing,
              **{f"{control}.value": form.get(name) for name, control in (
                  ("name", ids.NAME), ("recipients", ids.RECIPIENTS), ("view", ids.VIEW),
                  ("frequency", ids.FREQUENCY), ("at", ids.AT), ("weekday", ids.WEEKDAY), ("day", ids.DAY))}}
    return post(client, app, f"{ids.NAME}.value", values, f"{ids.SAVE}.n_clicks")


def act(client, app, kind: str, subscription_id: str, target=None):
    return post(client, app, f"{ids.RESULT}.children", {f"{ids.TARGET}.data": target}, "",
                pressed={"type": kind, "id": subscription_id})


def listed(client, app) -> str:
    reply = post(client, app, f"{ids.TABLE}.children", {f"{ids.INTERVAL}.n_intervals": 1, f"{ids.STATE}.data": {}},
                 f"{ids.INTERVAL}.n_intervals")
    return json.dumps(reply[ids.TABLE]["children"])


def test_a_form_with_mistakes_says_each_in_words_and_writes_nothing(app):
    admin = signed_in(app, "admin")
    before = snapshot(db_of(app))
    bad = {"name": " ", "recipients": "ann@example.com, bob@", "view": "/customers?q=x", "frequency": "monthly",
           "at": "25:00", "day": 31}
    reply = save(admin, app, bad)
    errors = {field: reply[ids.error(field)]["children"] for field in ids.FIELDS}
    assert errors == {"name": "Enter a name.", "recipients": "'bob@' is not an email address (name@example.com).",
                      "view": "That is not the live page's address: copy it from the live page (its path is /).",
                      "frequency": "", "at": "Enter a time of day as HH:MM, from 00:00 to 23:59.", "weekday": "",
                      "day": "Enter a day of the month from 1 to 28 (a day every month has)."}
    reply = save(admin, app, {**GOOD, "view": "/?kind=ebook&method=cash"})
    assert reply[ids.error("view")]["children"] == "The address's kind 'ebook' is neither course nor test."
    assert snapshot(db_of(app)) == before


def test_an_admin_adds_edits_and_deletes_a_subscription(app):
    admin = signed_in(app, "admin", "ann@example.com")
    reply = save(admin, app, GOOD)
    assert reply[ids.FORM_RESULT]["children"].startswith("Saved 'Weekly sales': Wednesdays at 07:30, first email ")
    [saved] = subscriptions.every(db_of(app))
    assert (saved.recipients, saved.view, saved.schedule.weekday) == (("ann@example.com", "bob@example.com"),
                                                                       "?kind=test", 2)
    assert "Weekly sales" in listed(admin, app) and "Tests" in listed(admin, app)
    assert save(admin, app, {**GOOD, "name": "WEEKLY SALES"})[ids.error("name")]["children"] == (
        "A subscription named 'WEEKLY SALES' exists already.")
    filled = post(admin, app, f"{ids.NAME}.value", {}, "", pressed={"type": ids.EDIT, "id": str(saved.id)})
    assert (filled[ids.NAME]["value"], filled[ids.EDITING]["data"], filled[ids.SAVE]["children"]) == (
        "Weekly sales", str(saved.id), "Save changes")
    save(admin, app, {**GOOD, "frequency": "daily", "at": "06:00"}, editing=str(saved.id))
    changed = subscriptions.get(db_of(app), saved.id)
    assert (changed.schedule.frequency, changed.since > saved.since) == ("daily", True)
    asked = act(admin, app, ids.DELETE, str(saved.id))
    assert "Delete 'Weekly sales'?" in asked[ids.CONFIRM_TEXT]["children"] and subscriptions.get(db_of(app), saved.id)
    done = post(admin, app, f"{ids.RESULT}.children", {f"{ids.CONFIRM}.n_clicks": 1, f"{ids.TARGET}.data":
                                                      asked[ids.TARGET]["data"]}, f"{ids.CONFIRM}.n_clicks")
    assert done[ids.RESULT]["children"] == "Deleted 'Weekly sales'." and subscriptions.every(db_of(app)) == []


def test_download_gives_the_email_without_smtp_and_send_now_says_why_it_cannot(app):
    admin = signed_in(app, "admin")
    save(admin, app, GOOD)
    [saved] = subscriptions.every(db_of(app))
    reporter_of(app).chart = lambda report: PNG
    got = act(admin, app, ids.GET, str(saved.id))[ids.DOWNLOAD]["data"]
    assert got["filename"].startswith("weekly-sales-") and got["filename"].endswith(".eml")
    message = email.message_from_bytes(base64.b64decode(got["content"]), policy=email.policy.default)
    assert message["Subject"].startswith("Weekly sales: ") and message["To"] == "ann@example.com, bob@example.com"
    name, data = attachment(message, "text/csv")
    assert name.endswith(".csv") and data.startswith(b"\xef\xbb\xbf")
    said = act(admin, app, ids.SEND, str(saved.id))[ids.RESULT]["children"]
    assert said.startswith("Not sent: SMTP_URL is not set.")


@pytest.fixture
def mail():
    with MailServer() as server:
        yield server


@pytest.fixture
def mailing_app(tmp_path, mail):
    app = create_app({"DATA_DIR": str(tmp_path), "MONGODB_DB": f"app_{uuid.uuid4().hex[:12]}", "SEED_DEMO": "0",
                      "HEALTH_CHECK_SECONDS": "0", "REPORTS_CHECK_SECONDS": "0", "SMTP_URL": mail.url})
    reporter_of(app).chart = lambda report: PNG
    yield app
    app.extensions["purchase_database"].close()


def test_send_now_mails_in_the_background_and_a_refusal_is_shown_with_its_error(mailing_app, mail):
    app = mailing_app
    admin = signed_in(app, "admin")
    save(admin, app, GOOD)
    [saved] = subscriptions.every(db_of(app))
    mail.refusals = ["550 5.1.1 Mailbox unavailable"]
    said = act(admin, app, ids.SEND, str(saved.id))[ids.RESULT]["children"]
    assert said.startswith("Sending 'Weekly sales' (") and "ann@example.com, bob@example.com" in said
    reporter_of(app).wait()
    shown = listed(admin, app)
    assert "Failed" in shown and "550 5.1.1 Mailbox unavailable" in shown and mail.received == []
    act(admin, app, ids.SEND, str(saved.id))
    reporter_of(app).wait()
    assert len(mail.received) == 1 and '"Sent"' in listed(admin, app)
    [record] = db_of(app)[ledger.SENDS].find()
    assert (record["status"], record["attempts"], record["sends"], record["trigger"]) == ("sent", 2, 1, "manual")
    viewer = signed_in(app, "viewer")
    dash_app = app.extensions["dash"]
    body = callback_body(dash_app, callback_key(dash_app, f"{ids.NAME}.value"), {}, [f"{ids.SAVE}.n_clicks"])
    assert viewer.post("/_dash-update-component", json=body).status_code == 403
