"""Start the purchase dashboard: `python app.py` (development), or gunicorn with `app:create_app()`.

`python app.py database` serves the embedded database alone; gunicorn.conf.py runs it.
"""

import logging
import os
import signal
import sys
import threading
import time

import pymongo
from flask import Flask, request
from flask_openapi3 import OpenAPI
from werkzeug.middleware.proxy_fix import ProxyFix

import api
import api.cli
from core.operations import is_empty, seed_demo
from core.operations.rebuild import ensure_rollups_current
from dashboard import accounts, cli, init_dashboard
from dashboard.context import DashboardContext
from dashboard.health import start_health_checks
from settings import load_settings

log = logging.getLogger("app")
READY = "Embedded database ready"
BOUND = "purchases.database_bound"  # the request's pymongo.timeout (bound_database_calls)


def create_app(config=None) -> Flask:
    """Build the Flask server with the dashboard on it.

    Settings: defaults, then the environment, then `config` (keys as the environment's).
    """
    settings = load_settings(config)
    opened = settings.open_database()
    prepare_database(settings, opened)
    # flask-openapi3's Flask: the API's routes write its OpenAPI document (api.docs)
    server = OpenAPI(__name__, doc_ui=False)
    server.config.update(settings.values)
    server.config["MAX_CONTENT_LENGTH"] = settings.max_content_length
    server.config["TRUSTED_HOSTS"] = list(settings.trusted_hosts) or None  # Flask answers 400 to any other Host
    if settings.trusted_proxies or settings.local_proxy:
        # the client's address (sign-in limits per address), scheme and host (the origin
        # check) as the proxies in front say; never without proxies, where anyone could say them
        n = settings.trusted_proxies
        server.wsgi_app = ProxyFix(server.wsgi_app, x_for=n + settings.local_proxy, x_proto=n, x_host=n)
    server.extensions["settings"] = settings
    server.extensions["purchase_database"] = opened
    bound_database_calls(server, settings.db_timeout)
    context = DashboardContext(opened.db, settings, opened.description, opened.uri)
    server.extensions["dash"] = init_dashboard(server, context)
    api.init_api(server, context)
    if settings.health_check_seconds:
        opened.on_close.append(start_health_checks(context, settings.health_check_seconds).stop)
    cli.register(server)
    api.cli.register(server)
    return server


def bound_database_calls(server: Flask, seconds: float) -> None:
    """Every database call a request makes ends within `seconds` (DB_TIMEOUT), through
    pymongo's own time limit, which core's retries and transactions take as their bound."""

    @server.before_request
    def start_bound():
        bound = pymongo.timeout(seconds)
        bound.__enter__()
        # on the request itself, not on `g`: a request served while another is (a test's) shares its `g`
        request.environ[BOUND] = bound

    @server.teardown_request
    def end_bound(_error):
        bound = request.environ.pop(BOUND, None)
        if bound is not None:
            bound.__exit__(None, None, None)


def prepare_database(settings, opened) -> None:
    """Demo data on first start; rollups an older release wrote, rebuilt once."""
    prepare_demo(settings, opened)
    started = time.perf_counter()
    if ensure_rollups_current(opened.db):
        log.warning("rebuilt the rollups (older format, or a rebuild that died) in %.1f s", time.perf_counter() - started)


def prepare_demo(settings, opened) -> None:
    """Demo data and accounts in an empty embedded database this process serves (SEED_DEMO)."""
    if settings.seed_demo and opened.server is not None and is_empty(opened.db):
        started = time.perf_counter()
        counts = seed_demo(opened.db)
        log.info("seeded demo data %s in %.1f s", counts, time.perf_counter() - started)
        create_demo_accounts(opened.db)


def serve_database(config=None) -> int:
    """Serve the embedded database from this process for the web workers, until SIGTERM.

    gunicorn.conf.py starts this before the workers, so the engine's work (a grant costs
    hundreds of ms of CPU on a large collection) runs beside the web process, not inside
    its interpreter. Seeds the demo data on first start, then prints READY.
    """
    settings = load_settings(config)
    opened = settings.open_database()
    if opened.server is None:
        print(f"{READY} (already served by another process: {opened.description})", flush=True)
        opened.close()
        return 0
    prepare_database(settings, opened)
    stop = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stop.set())
    print(f"{READY}: {opened.description}", flush=True)  # not its URI: that carries the password
    os.dup2(sys.stderr.fileno(), sys.stdout.fileno())  # nobody reads our stdout from here on
    stop.wait()
    opened.close()
    return 0


def create_demo_accounts(db) -> None:
    """One admin and one viewer for the demo; their passwords are printed this once."""
    lines = []
    for email, role, name in (("admin@example.com", "admin", "Demo Admin"), ("viewer@example.com", "viewer", "Demo Viewer")):
        password = accounts.generate_password()
        try:
            accounts.create_account(db, email, role, password, name)
        except accounts.AccountError:
            continue  # kept from an earlier start
        lines.append(f"  {role:6}  {email}  password: {password}")
    if lines:
        print("Demo accounts (passwords shown once; change them with `flask --app app set-password EMAIL`):",
              *lines, sep="\n", flush=True)


def main() -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    if sys.argv[1:] == ["database"]:
        return serve_database()
    server = create_app()
    settings = server.extensions["settings"]
    print(f"Dashboard on http://{settings.host}:{settings.port}/  ({server.extensions['purchase_database'].description})",
          flush=True)
    server.run(host=settings.host, port=settings.port, debug=False, threaded=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
