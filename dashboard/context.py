"""What every page and callback works with: the database, the settings, the database line.

One context per app, kept in `server.extensions["dashboard"]`. Callbacks get it when they are
registered; layouts (called per request) find it through Flask's `current_app`, because
several apps may live in one process (tests) and Dash's page registry is global.
"""

from dataclasses import dataclass

from flask import current_app
from pymongo.database import Database

from settings import Settings

EXTENSION = "dashboard"


@dataclass(frozen=True)
class DashboardContext:
    db: Database
    settings: Settings
    description: str  # which database and where, for admins (the health page)
    database_uri: str  # how another client reaches the same server (with its credentials)

    @property
    def engine(self) -> str:
        """Which kind of database, without its address: what every signed-in page shows."""
        return "Embedded mongoeco" if self.description.startswith("embedded") else "MongoDB"

    @property
    def currency(self) -> str:
        return self.settings.core.currency

    @property
    def payment_methods(self) -> frozenset[str]:
        return self.settings.core.payment_methods


def current_context() -> DashboardContext:
    """The context of the app serving this request."""
    return current_app.extensions[EXTENSION]
