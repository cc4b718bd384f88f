"""The shell around every page: header, navigation, database line, outage banner, and the
router that puts the page for the URL's path into it."""

from dash import Input, Output, dcc, html

from dashboard.context import DashboardContext, current_context

URL = "shell-url"
NAV = "shell-nav"
DATABASE = "shell-database"
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
                html.Nav(id=NAV, className="nav", children=_nav(pages)),
                html.P(["Database: ", html.Code(context.description, id=DATABASE)], className="dbline"),
            ]),
            html.Div(id=BANNER, className="banner hidden", role="alert"),
            html.Main(id=CONTENT),
            html.Div(id=TITLE, className="hidden"),
        ])

    return shell


def _nav(pages: list, current: str = "") -> list:
    return [dcc.Link(page.NAV, href=page.PATH, className="nav-link active" if current == page.PATH else "nav-link")
            for page in pages if page.NAV]


def register(app, context: DashboardContext, pages: list) -> None:
    """The router: the page whose PATH is the URL's path, or a "not found" page."""
    by_path = {page.PATH: page for page in pages}

    @app.callback(Output(CONTENT, "children"), Output(NAV, "children"), Input(URL, "pathname"))
    def route(pathname):
        path = (pathname or "/").rstrip("/") or "/"
        page = by_path.get(path)
        if page is None:
            return html.Section(className="panel notfound", children=[
                html.H1("Page not found"), html.P(["Nothing lives at ", html.Code(pathname), "."]),
                dcc.Link("Go to the live revenue page", href="/"),
            ]), _nav(pages)
        return page.layout(), _nav(pages, path)

    app.clientside_callback(
        "function(children) { const h = document.querySelector('main h1'); "
        "document.title = h ? h.textContent + ' · Purchases' : 'Purchases'; return ''; }",
        Output(TITLE, "children"),
        Input(CONTENT, "children"),
    )
