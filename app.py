"""Start the purchase dashboard: `python app.py`, or gunicorn with `app:create_app()`."""

import logging
import os
import sys
import time
from zoneinfo import ZoneInfo

from flask import Flask

from core import open_database
from core.config import core_settings
from core.demo import is_empty, seed_demo
from dashboard import DashboardSettings, init_dashboard

log = logging.getLogger("app")

DEFAULTS = {"HOST": "127.0.0.1", "PORT": "8050", "SEED_DEMO": "1", "REFRESH_MS": "1000", "TIMEZONE": "UTC"}


def create_app(config=None) -> Flask:
    """Build the Flask server with the dashboard on it; `config` overrides the environment."""
    settings = {**DEFAULTS, **os.environ, **(config or {})}
    opened = open_database(settings)
    if settings["SEED_DEMO"] == "1" and opened.server is not None and is_empty(opened.db):
        started = time.perf_counter()
        counts = seed_demo(opened.db)
        log.info("seeded demo data %s in %.1f s", counts, time.perf_counter() - started)
    server = Flask(__name__)
    server.config.update(settings)
    server.extensions["purchase_database"] = opened
    core = core_settings(settings)
    server.extensions["dash"] = init_dashboard(
        server,
        opened.db,
        DashboardSettings(
            description=opened.description,
            currency=core.currency,
            refresh_ms=int(settings["REFRESH_MS"]),
            tz=ZoneInfo(settings["TIMEZONE"]),
            payment_methods=core.payment_methods,
        ),
    )
    return server


def main() -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    server = create_app()
    host, port = server.config["HOST"], int(server.config["PORT"])
    print(f"Dashboard on http://{host}:{port}/  ({server.extensions['purchase_database'].description})", flush=True)
    server.run(host=host, port=port, debug=False, threaded=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
