"""The Dash app, mounted on the project's Flask server."""

import logging
from datetime import UTC, datetime
from pathlib import Path

from dash import Dash, Input, Output, dcc, html, no_update

from dashboard import ids
from dashboard.data import database_totals, money

log = logging.getLogger(__name__)
ASSETS = Path(__file__).resolve().parent.parent / "assets"


def init_dashboard(server, db, *, description: str, currency: str, refresh_ms: int) -> Dash:
    """Create the Dash app on `server`, reading from `db`."""
    app = Dash(__name__, server=server, title="Purchases", assets_folder=str(ASSETS))
    app.layout = html.Main(
        className="page",
        children=[
            html.H1("Purchases"),
            html.P(["Database: ", html.Code(description, id=ids.OVERVIEW_DATABASE)], className="muted"),
            html.Div(
                className="cards",
                children=[
                    _card("Users", ids.OVERVIEW_USERS),
                    _card("Purchases", ids.OVERVIEW_PURCHASES),
                    _card("Revenue", ids.OVERVIEW_REVENUE),
                ],
            ),
            html.P(id=ids.OVERVIEW_UPDATED, className="muted"),
            html.P(id=ids.OVERVIEW_ERROR, className="error"),
            dcc.Interval(id=ids.OVERVIEW_INTERVAL, interval=refresh_ms),
        ],
    )

    @app.callback(
        Output(ids.OVERVIEW_USERS, "children"),
        Output(ids.OVERVIEW_PURCHASES, "children"),
        Output(ids.OVERVIEW_REVENUE, "children"),
        Output(ids.OVERVIEW_UPDATED, "children"),
        Output(ids.OVERVIEW_ERROR, "children"),
        Input(ids.OVERVIEW_INTERVAL, "n_intervals"),
    )
    def refresh(_):
        stamp = datetime.now(UTC).strftime("%H:%M:%S")
        try:
            totals = database_totals(db)
        except Exception:  # noqa: BLE001 - logged in full; the page gets a short, honest line
            log.exception("reading totals failed")
            return no_update, no_update, no_update, no_update, f"Database unreachable at {stamp} UTC, retrying"
        return f"{totals.users:,}", f"{totals.purchases:,}", money(totals.revenue, currency), f"Updated {stamp} UTC", ""

    return app


def _card(label: str, value_id: str):
    return html.Section(className="card", children=[html.H2(label), html.P("…", id=value_id, className="value")])
