"""The customer search by an email's domain and by the words of a name in any order, and the
search page keeping its text in the URL."""

import json

import pytest
from bson import ObjectId

from core.customers import find_customers
from core.storage.schema import USERS
from dashboard.pages import customers
from dashboard.pages.customers import search as search_page
from tests.test_app import route
from tests.test_customers_page import post, response, search, shop  # noqa: F401 - shop is a fixture


@pytest.fixture
def people(db):
    users = {name: ObjectId() for name in ("guido", "barbara", "grace", "exley", "ken")}
    db[USERS].insert_many([
        {"_id": users["guido"], "name": "Guido Liskov", "email": "Guido.Liskov@Example.com"},
        {"_id": users["barbara"], "name": "Barbara  van Rossum", "email": "barbara@mail.example.org"},
        {"_id": users["grace"], "name": "Grace Hopper", "email": "grace@example.com"},
        {"_id": users["exley"], "name": "Exley Smith", "email": "smith@other.net"},
        {"_id": users["ken"], "name": "Ken Thompson", "email": "ken@bell-labs.com"},
    ])
    return users


def names(db, text: str, limit: int = 10) -> list[str]:
    return [doc["name"] for doc in find_customers(db, text, limit)]


def test_an_email_domain_finds_the_customers_at_it(db, people):
    assert set(names(db, "example.com")) == {"Guido Liskov", "Grace Hopper"}
    assert set(names(db, "@EXAMPLE.com")) == {"Guido Liskov", "Grace Hopper"}
    assert names(db, "example.org") == ["Barbara  van Rossum"]  # a shorter domain a longer one ends with
    assert names(db, "@mail.example") == ["Barbara  van Rossum"]
    assert names(db, "bell-labs") == ["Ken Thompson"]
    assert names(db, "com") == []  # not a bare top level


def test_the_words_of_a_name_match_in_any_order(db, people):
    for text in ("liskov", "Liskov Guido", "guido LISKOV", "lisk gui", "  liskov   guido "):
        assert names(db, text) == ["Guido Liskov"], text
    assert names(db, "rossum van barbara") == ["Barbara  van Rossum"]
    assert names(db, "liskov example.com") == ["Guido Liskov"]  # a name and a domain
    assert names(db, "liskov grace") == [] and names(db, "liskov zz") == []


def test_matches_of_a_name_come_before_customers_who_only_share_a_domain(db, people):
    assert names(db, "ex") == ["Exley Smith", "Barbara  van Rossum", "Grace Hopper", "Guido Liskov"]
    assert names(db, "ex", limit=1) == ["Exley Smith"]


def test_the_page_finds_a_domain_and_a_surname_first(viewer_client, app, shop):  # noqa: F811
    at_domain = search(viewer_client, app, "example.com")
    assert "Grace Brewster Hopper" in at_domain and "Alan Turing" in at_domain and "Ada Lovelace" not in at_domain
    assert "Ada Lovelace" in search(viewer_client, app, "Lovelace Ada")
    assert "Grace Brewster Hopper" in search(viewer_client, app, "hopper grace")


def from_url(client, app, search_text, typed=None):
    """The callback that fills the search box from the URL's query string."""
    return post(client, app, f"{customers.SEARCH}.value",
                {f"{customers.SEARCH_URL}.search": search_text, f"{customers.SEARCH}.value": typed},
                [f"{customers.SEARCH_URL}.search"])


def test_a_url_with_a_search_fills_the_box_which_then_searches(viewer_client, app):
    assert response(from_url(viewer_client, app, "?q=liskov"))[customers.SEARCH]["value"] == "liskov"
    assert response(from_url(viewer_client, app, "?q=Liskov+Guido"))[customers.SEARCH]["value"] == "Liskov Guido"
    assert response(from_url(viewer_client, app, "?q=%40example.com"))[customers.SEARCH]["value"] == "@example.com"
    assert response(from_url(viewer_client, app, "", "ada"))[customers.SEARCH]["value"] == ""  # back at no search
    # the box says it already, perhaps with a space still being typed: left alone
    assert from_url(viewer_client, app, "?q=liskov+guido", "liskov  guido ").status_code == 204
    assert from_url(viewer_client, app, "").status_code == 204


def test_the_search_page_keeps_its_text_in_the_url_not_in_the_session(viewer_client, app):
    page = json.dumps(route(viewer_client, app, customers.PATH))
    assert customers.SEARCH_URL in page and customers.SEARCH_KEPT in page
    assert "persistence" not in page  # the URL is the memory: a session value would fight a shared link
    assert search_page.query_text("?q=a+%20b&x=1") == "a b" and search_page.query_text(None) == ""
    dash_app = app.extensions["dash"]
    kept = [cb for cb in dash_app.callback_map.values() if customers.SEARCH_KEPT in str(cb.get("output"))]
    assert kept and "replaceState" in search_page.KEEP_IN_URL  # a browser test follows it through the history
