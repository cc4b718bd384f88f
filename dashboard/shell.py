"""The shell around every page: header, navigation, the signed-in account, database line,
outage banner, and the router that puts the page for the URL's path into it."""

from dash import Input, Output, dcc, html
from flask_login import current_user

from dashboard.context import DashboardContext, current_context
from dashboard.pages import page_for

URL = "shell-url"
NAV = "shell-nav"
DATABASE = "shell-database"
ACCOUNT = "shell-account"
BANNER = "shell-banner"
CONTENT = "shell-content"
TITLE = "shell-title"


def layout(pages: list):
    """The shell's layout function (per request): the page arrives through the router."""

    def shell():
        context = current_context()
        return html.Div(className="page", children=[
            dcc.Location(id=URL, refresh=False),
            html.Header(className="shellbar", children=[
                html.Span("Purchases", className="brand"),
                html.Nav(id=NAV, className="nav", children=_nav(pages), **{"aria-label": "Pages"}),
                html.Div(id=ACCOUNT, className="account", children=_account()),
                html.P(["Database: ", html.Code(context.engine, id=DATABASE)], className="dbline"),
            ]),
            html.Div(id=BANNER, className="banner hidden", role="alert"),
            html.Main(id=CONTENT),
            html.Div(id=TITLE, className="hidden"),
        ])

    return shell


def allowed(page) -> bool:
    """Whether the signed-in account may open `page`."""
    return current_user.is_authenticated and (page.ROLE != "admin" or current_user.is_admin)


def _nav(pages: list, current=None) -> list:
    return [dcc.Link(page.NAV, href=page.PATH, className="nav-link active" if page is current else "nav-link")
            for page in pages if page.NAV and allowed(page)]


def _account() -> list:
    if not current_user.is_authenticated:
        return []
    return [html.Span([current_user.name, html.Span(current_user.role, className="role")], className="who"),
            html.Form(html.Button("Sign out", type="submit", className="signout", id="shell-signout"),
                      method="post", action="/logout", className="signout-form")]


def register(app, context: DashboardContext, pages: list) -> None:
    """The router: the page that serves the URL's path, if the account may see it."""

    @app.callback(Output(CONTENT, "children"), Output(NAV, "children"), Input(URL, "pathname"))
    def route(pathname):
        page = page_for(pages, pathname)
        if page is None:
            return _message("Page not found", ["Nothing lives at ", html.Code(pathname), "."]), _nav(pages)
        if not allowed(page):
            return _message("Admins only", ["This page is for admin accounts; you are signed in as a viewer. "
                                            "Ask an admin if you need it."]), _nav(pages)
        return page.layout(path=pathname), _nav(pages, page)

    app.clientside_callback(
        "function(children) { const h = document.querySelector('main h1'); "
        "document.title = h ? h.textContent + ' · Purchases' : 'Purchases'; return ''; }",
        Output(TITLE, "children"),
        Input(CONTENT, "children"),
    )


def _message(title: str, text: list) -> html.Section:
    return html.Section(className="panel notfound", children=[
        html.H1(title), html.P(text), dcc.Link("Go to the live revenue page", href="/"),
    ])
