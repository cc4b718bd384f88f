"""The Dash app, mounted on the project's Flask server: a shell and its pages."""

import threading
from pathlib import Path

from dash import Dash
from flask import send_from_directory

from caches import app_caches
from dashboard import auth, shell
from dashboard.callback_requests import init_callback_checks
from dashboard.context import EXTENSION, DashboardContext
from dashboard.pages import page_for, page_modules
from dashboard.pages.live import data as live_data

ASSETS = Path(__file__).resolve().parent.parent / "assets"
PLOTLY_BUNDLE = "plotly-basic.min.js"  # in assets/vendor; see _serve_plotly


def init_dashboard(server, context: DashboardContext) -> Dash:
    """Create the Dash app on `server`: the shell, every page's callbacks, a cache warm-up at
    the first request."""
    server.extensions[EXTENSION] = context
    pages = page_modules()
    auth.init_auth(server, context, admin_paths=lambda path: _admin_only(pages, path))
    # Our own router (dashboard.shell) rather than Dash pages: Dash pages re-runs a page's
    # layout on every change of the query string, which would blank the live page's charts
    # whenever a filter changes, and its page registry is global to the process.
    app = Dash(__name__, server=server, title="Purchases", assets_folder=str(ASSETS), update_title=None,
               suppress_callback_exceptions=True, assets_ignore=rf"^{PLOTLY_BUNDLE.replace('.', '[.]')}$")
    _serve_plotly(server)
    app.index_string = app.index_string.replace("<html>", '<html lang="en">', 1)  # screen readers pick the voice
    app.layout = shell.layout(pages)
    shell.register(app, context, pages)
    for page in pages:
        page.register(app, context)
    init_callback_checks(server, app)
    app_caches(server).inline_script_hashes = tuple(app.csp_hashes())  # for the Content-Security-Policy (auth)
    _warm_up_when_serving(server, context)
    return app


def _serve_plotly(server) -> None:
    """dcc.Graph fetches plotly.js from this address when a page first draws a chart, so pages
    without one never load it and a page's first paint never waits for it; the basic bundle
    (bar, pie, scatter: all the charts draw) answers, a quarter of the full one's size. Not
    immutable: the address stays the same when the pinned plotly changes."""
    server.add_url_rule(
        "/_dash-component-suites/plotly/package_data/plotly.min.js", "plotly_bundle",
        lambda: send_from_directory(ASSETS / "vendor", PLOTLY_BUNDLE, mimetype="text/javascript", max_age=3600))


def _warm_up_when_serving(server, context: DashboardContext) -> None:
    """Warm the caches in the background at the first request (a sign-in page, usually), not
    when the app is built: a command-line run (`flask create-user`) builds it too, and closed
    the database under a warm-up that was still reading."""
    started = threading.Event()
    lock = threading.Lock()

    @server.before_request
    def start_warm_up():
        if started.is_set():
            return
        with lock:
            if not started.is_set():
                started.set()
                threading.Thread(target=live_data.warm_up, name="warm-up", daemon=True,
                                 args=(context.db, context.settings.timezone, context.settings.core)).start()


def _admin_only(pages: list, path: str) -> bool:
    page = page_for(pages, path)
    return page is not None and page.ROLE == "admin"
