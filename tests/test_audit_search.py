"""The audit log found by words of a name or parts of an email: core's `users` and `actors`
filters and its count, and the page's Actor and Customer fields and count line."""

import json

import pytest
from bson import ObjectId
from pymongo.errors import ExecutionTimeout

from api import keys
from core import UserNotFoundError, ValidationError, create_purchase
from core import audit as core_audit
from core.audit import actors_matching, count_audit_log, get_audit_log, users_matching
from core.customers import customers_containing
from core.storage.schema import COURSES, USERS
from dashboard import accounts
from dashboard.pages import audit
from tests.conftest import PASSWORD
from tests.test_app import route
from tests.test_audit_page import load, rows_of

ACTORS = {"guido": "ann@example.com", "barbara": "api:shop", "grace": "stripe", "ken": "ann@example.com"}


def add_people(db) -> dict:
    """Four customers, each granted a course (amounts 1 to 4, oldest first) by the actor ACTORS names."""
    users = {name: ObjectId() for name in ACTORS}
    db[USERS].insert_many([
        {"_id": users["guido"], "name": "Guido  Liskov", "email": "Guido.Liskov@Example.com"},
        {"_id": users["barbara"], "name": "Barbara van Rossum", "email": "barbara@mail.example.org"},
        {"_id": users["grace"], "name": "Grace (.*) Hopper", "email": "grace@example.com"},
        {"_id": users["ken"], "name": "Ken Thompson", "email": "ken@bell-labs.com"},
    ])
    db[USERS].update_many({}, {"$set": {"purchasedCourses": [], "purchasedTests": []}})
    course = ObjectId()
    db[COURSES].insert_one({"_id": course, "title": "Compilers", "price": 4.0})
    for amount, (name, actor) in enumerate(ACTORS.items(), start=1):
        create_purchase(db, users[name], course, None, {"amount": amount, "paymentMethod": "paypal", "actor": actor},
                        source="admin")
    return users


@pytest.fixture
def people(db):
    return add_people(db)


def amounts(entries: list[dict]) -> list:
    return [entry["amount"] for entry in entries]


@pytest.mark.parametrize("batch", [1, 2, 200])  # one query a user (mongoeco), small batches, one `$in` (MongoDB)
def test_users_lists_the_entries_of_any_of_them_newest_first(db, people, monkeypatch, batch):
    monkeypatch.setattr(core_audit, "_user_batch", lambda db: batch)
    three = [people["guido"], people["grace"], str(people["ken"])]
    assert amounts(get_audit_log(db, {"users": three})) == [4, 3, 1]
    assert amounts(get_audit_log(db, {"users": three, "skip": 1, "limit": 1})) == [3]
    assert amounts(get_audit_log(db, {"users": three, "actors": ["ann@example.com"]})) == [4, 1]
    assert get_audit_log(db, {"users": three, "action": "revoke"}) == []
    assert count_audit_log(db, {"users": three}) == 3
    assert count_audit_log(db, {"users": three}, cap=1) == 2  # cap + 1: "more than 1"
    assert get_audit_log(db, {"users": []}) == [] and count_audit_log(db, {"users": []}) == 0


def test_actors_lists_the_entries_of_any_of_them(db, people):
    assert amounts(get_audit_log(db, {"actors": ["ann@example.com", "stripe"]})) == [4, 3, 1]
    assert count_audit_log(db, {"actors": ["api:shop"]}) == 1
    assert get_audit_log(db, {"actors": []}) == []


def test_the_count_stops_past_its_cap(db, people):
    assert count_audit_log(db) == 4  # the whole log: the collection's count
    assert count_audit_log(db, {}, cap=2) == 3
    assert count_audit_log(db, {"source": "admin"}) == 4
    assert count_audit_log(db, {"source": "admin", "limit": 1}, cap=3) == 4  # limit and skip do not count
    assert count_audit_log(db, {"source": "api"}) == 0


@pytest.mark.parametrize(("filters", "message"), [
    ({"users": "abc"}, "users must be a list"),
    ({"users": ["nope"]}, "users must be an ObjectId"),
    ({"users": [str(ObjectId())] * 201}, "at most 200"),
    ({"user": str(ObjectId()), "users": []}, "give user or users, not both"),
    ({"actors": [1]}, "actors must hold strings"),
    ({"actors": ["\ud800"]}, "actors must be valid Unicode"),
    ({"actor": "ann", "actors": ["ann"]}, "give actor or actors, not both"),
])
def test_bad_lists_are_refused(db, filters, message):
    for call in (get_audit_log, count_audit_log):
        with pytest.raises(ValidationError, match=message):
            call(db, filters)


def test_a_customer_filter_matches_words_of_the_name_and_parts_of_the_email_literally(db, people):
    def found(text):
        return {name for name, user in people.items() if user in users_matching(db, text)[0]}

    assert found("liskov") == {"guido"}
    assert found("LISKOV guido") == {"guido"}  # each word, in any order and case
    assert found("van ross") == {"barbara"}
    assert found("example.com") == {"guido", "grace"}
    assert found("mail.EXAMPLE") == {"barbara"}
    assert found(".*") == found("(") == {"grace"}  # the characters themselves, never a pattern
    assert found(str(people["ken"])) == {"ken"}
    for text in ("[", "x+", "example.com liskov ken"):
        with pytest.raises(UserNotFoundError, match="No customer's name or email contains"):
            users_matching(db, text)
    gone = ObjectId()
    assert users_matching(db, str(gone)) == ([gone], f"No user has the id {gone} now; showing what was recorded for it.")


def test_a_customer_filter_matching_too_many_customers_asks_for_more(db, people, monkeypatch):
    monkeypatch.setattr(core_audit, "MAX_MATCHED", 1)
    with pytest.raises(ValidationError, match="more than 1 customers match “example”; type more"):
        users_matching(db, "example")
    assert customers_containing(db, "example", 2) and len(customers_containing(db, "EXAMPLE", 10)) == 3


def test_an_actor_filter_matches_staff_names_and_parts_of_emails_and_keys():
    known = {"admin@example.com": "Demo Admin", "ann@example.com": "Ann Lee", "api:shop": "", "stripe": ""}
    assert actors_matching("admin", known) == ["admin", "admin@example.com"]  # the text itself, as recorded
    assert actors_matching("Demo Admin", known) == ["Demo Admin", "admin@example.com"]
    assert actors_matching("admin DEMO", known) == ["admin DEMO", "admin@example.com"]
    assert actors_matching("lee", known) == ["ann@example.com", "lee"]
    assert actors_matching("API:", known) == ["API:", "api:shop"]
    assert actors_matching(" Ann@Example.COM ", known) == ["ann@example.com"]  # staff sign in in any case
    assert actors_matching(".*", known) == [".*"]  # no pattern: only an actor of that very name


# ---------------------------------------------------------------- the page


@pytest.fixture
def page_people(app):
    db = app.extensions["purchase_database"].db
    accounts.create_account(db, "ann@example.com", "admin", PASSWORD, "Ann Admin")
    keys.create_key(db, "shop", "write")
    return add_people(db)


def shown(client, app, search: str) -> tuple[list[int], dict]:
    rows, response = rows_of(load(client, app, search))
    return [row["amount"] for row in rows], response


@pytest.mark.parametrize(("search", "expected"), [
    ("?actor=Ann%20Admin", [4, 1]),  # a staff member's name
    ("?actor=admin%20ann", [4, 1]),  # its words in any order
    ("?actor=ANN%40", [4, 1]),  # a part of their email
    ("?actor=strip", [3]),  # the payment webhook
    ("?actor=shop", [2]),  # an API key
    ("?actor=.*", []),
    ("?user=Liskov%20Guido", [1]),
    ("?user=example.com", [3, 1]),
    ("?user=example&actor=ann", [1]),
    ("?user=(", [3]),
])
def test_the_page_filters_by_words_of_names_and_parts_of_emails(admin_client, app, page_people, search, expected):
    found, response = shown(admin_client, app, search)
    assert found == expected
    assert response[audit.MESSAGE]["className"] == "message hidden"


def test_the_count_line_says_how_many_entries_match(admin_client, app, page_people, monkeypatch):
    assert shown(admin_client, app, "")[1][audit.COUNT]["children"] == "4 entries match, newest first."
    assert shown(admin_client, app, "?actor=stripe")[1][audit.COUNT]["children"] == "1 entry matches."
    assert shown(admin_client, app, "?action=revoke")[1][audit.COUNT]["children"] == "No entries match."
    monkeypatch.setattr(audit, "SHOWN", 2)
    found, response = shown(admin_client, app, "?user=example")
    assert found == [3, 2] and response[audit.COUNT]["children"] == (
        "3 entries match; the newest 2 are shown. Narrow the filters to see older ones, or export (up to 10,000).")
    monkeypatch.setattr(audit, "COUNT_CAP", 2)
    assert shown(admin_client, app, "")[1][audit.COUNT]["children"].startswith("2+ entries match; the newest 2")


def test_a_count_past_the_cap_is_not_made_again_and_a_slow_one_says_more_than(admin_client, app, page_people,
                                                                              monkeypatch):
    monkeypatch.setattr(audit, "SHOWN", 2)
    monkeypatch.setattr(audit, "COUNT_CAP", 2)
    _, response = shown(admin_client, app, "?source=admin")
    assert response[audit.COUNT]["children"].startswith("2+ entries match")
    state = response[audit.STATE]["data"]

    def too_slow(*args):
        raise ExecutionTimeout("operation exceeded time limit")

    monkeypatch.setattr(audit, "count_audit_log", too_slow)
    add_people(app.extensions["purchase_database"].db)  # the data version moves: the table is read again
    _, again = rows_of(load(admin_client, app, "?source=admin", state))
    assert again[audit.COUNT]["children"].startswith("2+ entries match")  # entries are never removed
    found, response = shown(admin_client, app, "?action=grant")  # another view: counted, too slowly
    assert len(found) == 2 and response[audit.COUNT]["children"].startswith("More than 2 entries match; the newest 2")


def test_too_many_customers_or_an_unknown_one_get_a_message_and_no_rows(admin_client, app, page_people, monkeypatch):
    found, response = shown(admin_client, app, "?user=nobody")
    assert found == [] and response[audit.COUNT]["children"] == ""  # the message says it; the count line does not
    assert response[audit.MESSAGE]["children"] == "No customer's name or email contains “nobody”."
    monkeypatch.setattr(core_audit, "MAX_MATCHED", 2)
    found, response = shown(admin_client, app, "?user=example")
    assert found == [] and "Customer: more than 2 customers match “example”" in response[audit.MESSAGE]["children"]


def test_no_entries_match_is_said_once_by_the_count_line_not_again_by_the_table(admin_client, app):
    grid = json.dumps(route(admin_client, app, audit.PATH))
    assert '"suppressNoRowsOverlay": true' in grid
