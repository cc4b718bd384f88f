"""The live revenue page at /: key figures, charts and the latest purchases of a view (range,
kind, payment method, granularity, kept in the URL's query string), redrawn for every open tab
when the data version moves.

layout.py draws it, callbacks.py wires it; filters.py reads the view (URL, controls, core's
filters); data.py reads through core; render.py draws one render of a view for every tab.
Every element id is in ids.py, and here: `live.STATE`, `live.value(live.AOV)`.
"""

from dashboard.pages.live.callbacks import VERSION_FRESH, register
from dashboard.pages.live.ids import *  # noqa: F403 - every element id of the page, as live.STATE
from dashboard.pages.live.ids import NAV, PATH, ROLE, TITLE
from dashboard.pages.live.layout import layout

__all__ = ["NAV", "PATH", "ROLE", "TITLE", "VERSION_FRESH", "layout", "register"]
