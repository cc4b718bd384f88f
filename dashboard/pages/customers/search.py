"""The customer search at /customers: customers found as you type by email, its domain, words of a
name or an id; the search kept in the URL (`?q=`), Enter opening the first match."""

import logging

from dash import Input, Output, State, dcc, html
from dash.exceptions import PreventUpdate
from pymongo.database import Database

from core import UserNotFoundError
from core.customers import find_customers, get_customer, owned_items
from dashboard.callback_requests import text as as_text
from dashboard.messages import failure
from dashboard.pages.customers.ids import GO, PATH, RESULTS, SEARCH, SEARCH_KEPT, SEARCH_URL, TITLE
from dashboard.query import query_arg

MIN_SEARCH = 2
MAX_QUERY = 254  # characters of a search, as core.customers reads them
SHOWN = 20  # search results listed; one more is asked for, to say there are more
HINT = "Type at least 2 characters of an email, its domain, words of a name, or a whole user id."
log = logging.getLogger(__name__)

# The browser puts the search into the URL as it settles, replacing the page's history entry
# (one for the search page, not one a keystroke): a reload, a shared link and "back" from a
# customer reproduce it. URLSearchParams writes a space as "+", as query_text reads it.
KEEP_IN_URL = ("function(text) { const path = window.location.pathname.replace(/\\/+$/, '');"
               " if (path !== '" + PATH + "') { return window.dash_clientside.no_update; }"
               " const q = (text || '').split(/\\s+/).filter(Boolean).join(' ');"
               " const search = q ? '?' + new URLSearchParams({q: q}).toString() : '';"
               " if (window.location.search !== search) { window.history.replaceState(window.history.state, '',"
               " window.location.pathname + search); } return search; }")


OPEN_FIRST = ("function(n) { const first = document.querySelector('#" + RESULTS + " a[href^=\"" + PATH + "/\"]');"
              " if (first) { first.click(); } return window.dash_clientside.no_update; }")


def search_results(db: Database, text: str) -> tuple[list[dict], bool]:
    """Up to SHOWN customers matching `text`, each with how many items they own; and whether there are more."""
    found = find_customers(db, text, limit=SHOWN + 1)
    people = []
    for doc in found[:SHOWN]:
        try:
            user = get_customer(db, doc["_id"])  # a point read: the index holds names and emails only
        except UserNotFoundError:
            continue  # removed since the index last saw it
        people.append({"id": str(user["_id"]), "name": user.get("name") or "(no name)",
                       "email": user.get("email") or "no email", "owned": len(owned_items(user))})
    return people, len(found) > SHOWN


def query_text(search: str | None) -> str:
    """The search a query string holds (`?q=...`), its spaces collapsed."""
    return " ".join(query_arg(search, "q").split())[:MAX_QUERY]


def results_view(text: str, people: list[dict], more: bool):
    """The matches as links to their pages, with how many there are."""
    if not people:
        return html.P(["No customer matches ", html.Strong(text), "."], className="muted customers-hint")
    items = [html.Li(dcc.Link(href=f"{PATH}/{p['id']}", className="customers-result", children=[
        html.Span(p["name"], className="customers-result-name"),
        html.Span(p["email"], className="customers-result-email"),
        html.Span(f"{p['owned']} owned", className="customers-result-owned"),
        html.Code(p["id"], className="customers-result-id"),
    ])) for p in people]
    note = (f"The first {SHOWN} matches; type more to narrow them." if more
            else f"{len(people)} match{'' if len(people) == 1 else 'es'}.")
    return [html.P(note, className="muted customers-hint"), html.Ul(items, className="customers-results")]


def layout() -> html.Div:
    """The search page."""
    return html.Div(className="customers", children=[
        dcc.Location(id=GO, refresh="callback-nav"),
        html.Span(id=SEARCH_KEPT, className="hidden"),
        html.Div(className="topbar", children=[html.H1(TITLE)]),
        html.P("Find a customer by email, email domain, the words of their name in any order, or id. "
               "Enter opens the first match.", className="muted"),
        html.Section(className="panel customers-search", children=[
            html.Label("Search customers", htmlFor=SEARCH, className="customers-label"),
            dcc.Input(id=SEARCH, type="search", debounce=0.2, autoFocus=True, autoComplete="off",
                      maxLength=MAX_QUERY, placeholder="ada@, Lovelace Ada, example.com, or an id",
                      className="customers-input"),
        ]),
        html.Div(id=RESULTS, role="status", className="customers-found",
                 children=html.P(HINT, className="muted customers-hint")),
    ])


def register(app, db: Database) -> None:
    """The search's callbacks: the URL fills the box, the box searches and goes into the URL, Enter opens."""

    @app.callback(Output(SEARCH, "value"), Input(SEARCH_URL, "search"), State(SEARCH, "value"))
    def search_from_url(search, typed):
        """A URL's ?q= (opened, reloaded, or back at) fills the search box, which then searches."""
        wanted = query_text(search)
        if wanted == " ".join(as_text(typed).split()):
            raise PreventUpdate  # the box says it already (perhaps with a space still being typed)
        return wanted

    app.clientside_callback(KEEP_IN_URL, Output(SEARCH_KEPT, "children"), Input(SEARCH, "value"),
                            prevent_initial_call=True)

    @app.callback(Output(RESULTS, "children"), Input(SEARCH, "value"))
    def search(text):
        """Type-ahead: the customers each word of the text starts a word of their email, its domain or
        their name, or whose id it is."""
        text = " ".join(as_text(text).split())
        if len(text) < MIN_SEARCH:
            return html.P(HINT, className="muted customers-hint")
        try:
            people, more = search_results(db, text)
        except Exception as error:  # noqa: BLE001 - messages.failure logs what is not core's
            said = failure(error, log, failed="The search failed; see the server log.",
                           unanswered="The database did not answer; type again in a moment.")
            return html.P(said.text, className="message")
        return results_view(text, people, more)

    # Enter in the search box opens the first match, as a click on it would (a server-side
    # navigation lost to the search's own URL, kept by the browser with replaceState)
    app.clientside_callback(OPEN_FIRST, Output(SEARCH_KEPT, "title"), Input(SEARCH, "n_submit"),
                            prevent_initial_call=True)
