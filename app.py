"""Start the purchase dashboard: `python app.py` (development), or gunicorn with `app:create_app()`.

`create_app` only wires the parts together; the database's own work (demo data, rollups of
an older release) is `flask --app app prepare-db` (commands.py), which `make run`, `python
app.py` and `python app.py database` (the embedded database alone; gunicorn.conf.py runs it) do first.
"""

import logging
import os
import signal
import sys
import threading

import pymongo
from flask import Flask, request
from flask_openapi3 import OpenAPI
from werkzeug.middleware.proxy_fix import ProxyFix

import api
import api.cli
import caches
import commands
import reports.cli
from commands import prepare_database
from core.storage.caches import caches_of, forget_caches
from dashboard import cli, init_dashboard
from dashboard.context import DashboardContext
from dashboard.health import start_health_checks
from reports.scheduler import start_reports
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
    server.extensions[caches.EXTENSION] = caches.AppCaches(database=caches_of(opened.db))
    opened.on_close.append(lambda: forget_caches(opened.db))  # run last: the app's threads end first
    bound_database_calls(server, settings.db_timeout)
    context = DashboardContext(opened.db, settings, opened.description, opened.uri)
    server.extensions["dash"] = init_dashboard(server, context)
    api.init_api(server, context)
    if settings.health_check_seconds:
        opened.on_close.append(start_health_checks(context, settings.health_check_seconds).stop)
    opened.on_close.append(start_reports(server, context).stop)  # REPORTS_CHECK_SECONDS=0: no thread
    cli.register(server)
    api.cli.register(server)
    commands.register(server)
    reports.cli.register(server)
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


def main() -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    if sys.argv[1:] == ["database"]:
        return serve_database()
    server = create_app()
    settings = server.extensions["settings"]
    prepare_database(settings, server.extensions["purchase_database"])
    print(f"Dashboard on http://{settings.host}:{settings.port}/  ({server.extensions['purchase_database'].description})",
          flush=True)
    server.run(host=settings.host, port=settings.port, debug=False, threaded=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
