"""Start the purchase dashboard: `python app.py`, or gunicorn with `app:create_app()`."""

import logging
import sys
import time

from flask import Flask

from core.operations import is_empty, seed_demo
from dashboard import accounts, cli, init_dashboard
from dashboard.context import DashboardContext
from dashboard.health import start_health_checks
from settings import load_settings

log = logging.getLogger("app")


def create_app(config=None) -> Flask:
    """Build the Flask server with the dashboard on it.

    Settings: defaults, then the environment, then `config` (keys as the environment's).
    """
    settings = load_settings(config)
    opened = settings.open_database()
    if settings.seed_demo and opened.server is not None and is_empty(opened.db):
        started = time.perf_counter()
        counts = seed_demo(opened.db)
        log.info("seeded demo data %s in %.1f s", counts, time.perf_counter() - started)
        create_demo_accounts(opened.db)
    server = Flask(__name__)
    server.config.update(settings.values)
    server.extensions["settings"] = settings
    server.extensions["purchase_database"] = opened
    context = DashboardContext(opened.db, settings, opened.description, opened.uri)
    server.extensions["dash"] = init_dashboard(server, context)
    if settings.health_check_seconds:
        opened.on_close.append(start_health_checks(context, settings.health_check_seconds).stop)
    cli.register(server)
    return server


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
    server = create_app()
    settings = server.extensions["settings"]
    print(f"Dashboard on http://{settings.host}:{settings.port}/  ({server.extensions['purchase_database'].description})",
          flush=True)
    server.run(host=settings.host, port=settings.port, debug=False, threaded=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
