"""Start the purchase dashboard: `python app.py`, or gunicorn with `app:create_app()`."""

import logging
import sys
import time

from flask import Flask

from core.operations import is_empty, seed_demo
from dashboard import init_dashboard
from dashboard.context import DashboardContext
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
    server = Flask(__name__)
    server.config.update(settings.values)
    server.extensions["settings"] = settings
    server.extensions["purchase_database"] = opened
    server.extensions["dash"] = init_dashboard(server, DashboardContext(opened.db, settings, opened.description))
    return server


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
