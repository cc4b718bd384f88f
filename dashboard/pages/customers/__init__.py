"""Customers: find one by email, name or id as you type; see what they own, what they paid,
every purchase and revocation, and whether their arrays and purchases agree. Admins grant
from here and revoke an owned item with a reason, after a confirmation.

/customers is the search (search.py, its text kept in `?q=`), /customers/<id> one customer
(profile.py, drawn from customer.py's builders), with the revoke panel for admins (revoke.py).
Every element id is in ids.py, and here: `customers.SEARCH`.
"""

from bson import ObjectId
from flask_login import current_user

from dashboard.context import DashboardContext
from dashboard.pages.customers import profile, revoke, search
from dashboard.pages.customers.ids import *  # noqa: F403 - every element id of the page, as customers.SEARCH
from dashboard.pages.customers.ids import NAV, PATH, ROLE, TITLE
from dashboard.pages.customers.search import search_results

__all__ = ["NAV", "PATH", "ROLE", "TITLE", "layout", "register", "search_results"]


def layout(path: str = PATH):
    """The search at /customers, one customer at /customers/<id>."""
    ident = (path or PATH).rstrip("/").removeprefix(PATH).strip("/")
    if not ident:
        return search.layout()
    if not ObjectId.is_valid(ident):
        return profile.missing_layout(ident)
    return profile.layout(ident, current_user.is_authenticated and current_user.is_admin)


def register(app, context: DashboardContext) -> None:
    """Wire the search's, the profile's and the revoke panel's callbacks to the context's database."""
    search.register(app, context.db)
    profile.register(app, context.db, context.settings.timezone, context.currency)
    revoke.register(app, context.db)
