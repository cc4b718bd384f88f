"""The audit log page over HTTP: its callbacks as the browser posts them, against the real database."""

import csv
import io
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from bson import ObjectId

from core import create_purchase, get_audit_log, remove_purchase
from core.storage.schema import COURSES, TESTS, USERS
from dashboard.pages import audit
from scripts.dash_client import callback_body, callback_key


@pytest.fixture
def shop(app):
    """A user with an email, a course and a test; a grant and a revoke by two admins, a test bought by API."""
    db = app.extensions["purchase_database"].db
    user, other, course, test = ObjectId(), ObjectId(), ObjectId(), ObjectId()
    db[USERS].insert_many([
        {"_id": user, "name": "Ada [the] Lovelace", "email": "ada@example.com", "purchasedCourses": [],
         "purchasedTests": []},
        {"_id": other, "name": "Alan Turing", "email": "alan@example.com", "purchasedCourses": [], "purchasedTests": []},
    ])
    db[COURSES].insert_one({"_id": course, "title": "Compilers", "price": 49.0})
    db[TESTS].insert_one({"_id": test, "title": "Logic quiz", "price": 5.0})
    create_purchase(db, user, course, None, {"amount": 0, "paymentMethod": "admin_grant", "actor": "ann@example.com",
                                             "idempotencyKey": "form-1"}, source="admin", note="speaker")
    remove_purchase(db, user, course, actor="bob@example.com", reason="granted by mistake", source="admin")
    create_purchase(db, other, None, test, {"amount": 5, "paymentMethod": "paypal"})
    return {"db": db, "user": user, "other": other, "course": course, "test": test}


def load(client, app, search: str = "", state: dict | None = None):
    """One tick of the page's table callback for the URL's query string."""
    dash_app = app.extensions["dash"]
    key = callback_key(dash_app, f"{audit.GRID}.rowData")
    values = {f"{audit.INTERVAL}.n_intervals": 1, f"{audit.URL}.search": search, f"{audit.STATE}.data": state or {}}
    return client.post("/_dash-update-component",
                       json=callback_body(dash_app, key, values, [f"{audit.URL}.search"]))


def rows_of(reply) -> tuple[list[dict], dict]:
    assert reply.status_code == 200, reply.data
    response = reply.get_json()["response"]
    return response[audit.GRID]["rowData"], response


def test_rows_come_newest_first_with_who_why_and_which_key(admin_client, app, shop):
    rows, response = rows_of(load(admin_client, app))
    assert [(r["action"], r["source"], r["actor"]) for r in rows] == [
        ("grant", "api", "—"), ("revoke", "admin", "bob@example.com"), ("grant", "admin", "ann@example.com")]
    test_grant, revoke, grant = rows
    assert (revoke["reason"], grant["note"], grant["idempotencyKey"], grant["method"]) == (
        "Granted by mistake", "speaker", "form-1", "Admin grant")
    assert grant["user"] == rf"[Ada \[the\] Lovelace](/customers/{shop['user']})"  # a name cannot forge a link
    assert (grant["userId"], grant["item"], grant["kind"], grant["amount"], grant["currency"]) == (
        str(shop["user"]), "Compilers", "course", 0, "USD")
    assert (test_grant["item"], test_grant["kind"], test_grant["amount"]) == ("Logic quiz", "test", 5)
    assert revoke["amount"] <= 0  # a revocation takes the money back: "−5.00 USD", as in the feed and timeline
    assert response[audit.COUNT]["children"] == "3 entries match, newest first."
    assert response[audit.MESSAGE]["className"] == "message hidden"


def test_times_are_shown_in_the_configured_time_zone():
    entry = {"_id": ObjectId(), "at": datetime(2025, 3, 1, 23, 30, tzinfo=UTC), "action": "grant", "source": "admin",
             "user": ObjectId(), "kind": "course", "amount": 1.5, "paymentMethod": "paypal"}
    [row] = audit.audit_rows([entry], ZoneInfo("Europe/Berlin"), "EUR")
    assert (row["time"], row["item"], row["actor"], row["currency"]) == (
        "2025-03-02 00:30:00", "(deleted course)", "—", "EUR")


@pytest.mark.parametrize(("search", "expected"), [
    ("?actor=ann%40example.com", [("grant", "ann@example.com")]),
    ("?actor=%20ANN%40Example.com", [("grant", "ann@example.com")]),  # emails, as at sign-in, in any case
    ("?action=revoke", [("revoke", "bob@example.com")]),
    ("?user=ada%40example.com", [("revoke", "bob@example.com"), ("grant", "ann@example.com")]),
    ("?source=api", [("grant", "—")]),
    ("?source=bulk", []),
    ("?user=lovelace", [("revoke", "bob@example.com"), ("grant", "ann@example.com")]),  # a customer's name
    ("?user=TURING", [("grant", "—")]),
    ("?user=lan%40example", [("grant", "—")]),  # a part of a customer's email
])
def test_filters_narrow_the_rows(admin_client, app, shop, search, expected):
    rows, _ = rows_of(load(admin_client, app, search))
    assert [(r["action"], r["actor"]) for r in rows] == expected


def test_filters_by_user_id_item_and_dates(admin_client, app, shop):
    rows, _ = rows_of(load(admin_client, app, f"?user={shop['other']}"))
    assert [r["item"] for r in rows] == ["Logic quiz"]
    rows, _ = rows_of(load(admin_client, app, f"?item=course:{shop['course']}&action=grant"))
    assert [(r["item"], r["action"]) for r in rows] == [("Compilers", "grant")]
    today = datetime.now(UTC).date()
    rows, _ = rows_of(load(admin_client, app, f"?from={today - timedelta(days=1)}&to={today + timedelta(days=1)}"))
    assert len(rows) == 3
    rows, response = rows_of(load(admin_client, app, f"?to={today - timedelta(days=2)}"))
    assert rows == [] and response[audit.COUNT]["children"] == "No entries match."


@pytest.mark.parametrize(("search", "message"), [
    ("?user=nobody%40example.com", "No customer's name or email contains “nobody@example.com”."),
    ("?user=.*", "No customer's name or email contains “.*”."),  # taken literally, never as a pattern
    ("?user=(", "No customer's name or email contains “(”."),
    ("?from=2025-13-01", "Dates: the start date “2025-13-01” is not a date like 2025-03-01."),
    ("?from=1999-01-01", "Dates: the start date is before 2000-01-01, the earliest there is."),
    ("?from=2025-03-02&to=2025-03-01", "the range ends (2025-03-01) before it starts (2025-03-02)"),
    ("?item=course:nope", "Item: "),
    ("?source=cron", "source must be one of"),
])
def test_bad_filters_show_a_message_and_no_rows(admin_client, app, shop, search, message):
    rows, response = rows_of(load(admin_client, app, search))
    assert rows == []
    assert message in response[audit.MESSAGE]["children"]
    assert response[audit.MESSAGE]["className"] == "message"


def test_an_unknown_user_id_still_shows_what_was_recorded_for_it(admin_client, app, shop):
    db = shop["db"]
    rows, response = rows_of(load(admin_client, app, f"?user={ObjectId()}"))
    assert rows == [] and "No user has the id" in response[audit.MESSAGE]["children"]
    db[USERS].delete_one({"_id": shop["other"]})  # entries outlive their user
    rows, response = rows_of(load(admin_client, app, f"?user={shop['other']}"))
    assert [r["item"] for r in rows] == ["Logic quiz"] and "No user has the id" in response[audit.MESSAGE]["children"]


def test_the_table_refreshes_only_when_the_data_version_moves(admin_client, app, shop):
    rows, response = rows_of(load(admin_client, app))
    state = response[audit.STATE]["data"]
    assert load(admin_client, app, "", state).status_code == 204  # nothing changed: nothing sent
    assert load(admin_client, app, "?action=grant", state).status_code == 200  # other filters: new rows
    create_purchase(shop["db"], shop["other"], shop["course"], None, {"amount": 49, "paymentMethod": "paypal",
                                                                      "actor": "cy@example.com"}, source="admin")
    fresh, _ = rows_of(load(admin_client, app, "", state))
    assert len(fresh) == len(rows) + 1 and fresh[0]["actor"] == "cy@example.com"


def test_only_admins_may_read_the_log(viewer_client, client, app, shop):
    assert load(viewer_client, app).status_code == 403
    assert load(client, app).status_code == 401


def export(client, app, search: str = ""):
    dash_app = app.extensions["dash"]
    key = callback_key(dash_app, f"{audit.DOWNLOAD}.data")
    body = callback_body(dash_app, key, {f"{audit.EXPORT}.n_clicks": 1, f"{audit.URL}.search": search},
                         [f"{audit.EXPORT}.n_clicks"])
    reply = client.post("/_dash-update-component", json=body)
    assert reply.status_code == 200, reply.data
    response = reply.get_json()["response"]
    download = response.get(audit.DOWNLOAD, {}).get("data")
    if download:
        assert download["content"].startswith("\ufeff")  # the byte-order mark Excel needs for UTF-8
    return (list(csv.DictReader(io.StringIO(download["content"].removeprefix("\ufeff")))) if download else None,
            response[audit.EXPORT_NOTE]["children"])


def test_export_writes_the_filtered_entries_as_csv(admin_client, app, shop):
    rows, note = export(admin_client, app, "?user=ada%40example.com")
    assert note == "Exported 2 entries."
    assert [(r["action"], r["actor"], r["reason"], r["idempotency_key"]) for r in rows] == [
        ("revoke", "bob@example.com", "granted by mistake", "form-1"), ("grant", "ann@example.com", "", "form-1")]
    grant = rows[1]
    assert (grant["user_id"], grant["user_name"], grant["item_title"], grant["amount"], grant["currency"]) == (
        str(shop["user"]), "Ada [the] Lovelace", "Compilers", "0.00", "USD")
    assert datetime.fromisoformat(grant["time"]).tzinfo is not None
    rows, note = export(admin_client, app, "?from=bad")
    assert rows is None and note.startswith("Nothing exported: Dates:")


def test_export_says_when_it_was_capped(admin_client, app, shop, monkeypatch):
    monkeypatch.setattr(audit, "MAX_LIMIT", 2)  # the cap is core's 10,000; three entries show it as well
    rows, note = export(admin_client, app)
    assert len(rows) == 2 and "newest 2 entries only" in note
    rows, note = export(admin_client, app, "?action=grant&source=admin")
    assert len(rows) == 1 and note == "Exported 1 entry."
    assert len(get_audit_log(shop["db"])) == 3


def test_the_query_string_round_trips():
    view = audit.AuditView(actor="ann@example.com", user="ada@example.com", item=f"course:{ObjectId()}",
                           source="bulk", action="grant", start="2025-03-01", end="2025-03-31")
    assert audit.parse_query(audit.to_query(view)) == view
    assert audit.to_query(audit.AuditView()) == ""
