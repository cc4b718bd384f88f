"""The Dash app, mounted on the project's Flask server."""

import threading
from dataclasses import dataclass
from pathlib import Path
from zoneinfo import ZoneInfo

from dash import Dash

from dashboard import data, live

ASSETS = Path(__file__).resolve().parent.parent / "assets"


@dataclass(frozen=True)
class DashboardSettings:
    description: str
    currency: str
    refresh_ms: int
    tz: ZoneInfo
    payment_methods: frozenset[str]


def init_dashboard(server, db, settings: DashboardSettings) -> Dash:
    """Create the Dash app on `server`, reading from `db`."""
    app = Dash(__name__, server=server, title="Live revenue", assets_folder=str(ASSETS), update_title=None)
    app.layout = live.layout(settings)
    live.register(app, db, settings)
    threading.Thread(target=data.warm_up, args=(db, settings.tz), name="warm-up", daemon=True).start()
    return app
