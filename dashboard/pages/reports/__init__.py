"""Scheduled reports (/reports, admins): the subscriptions with their next send, last send and
status (a failure with its error); add, edit or delete one; "Send now"; "Download" gives the
email as a .eml file, with or without SMTP. The reports themselves are the `reports` package's.

ids.py names every element; layout.py draws the page; table.py the list (pure); callbacks.py wires it.
"""

from dashboard.pages.reports.callbacks import register
from dashboard.pages.reports.ids import NAV, PATH, ROLE, TITLE
from dashboard.pages.reports.layout import layout

__all__ = ["NAV", "PATH", "ROLE", "TITLE", "layout", "register"]
