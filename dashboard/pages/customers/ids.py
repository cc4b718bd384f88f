"""The customers page's name, route and element ids, shared by its search, profile and revoke
modules (and by the tests and scripts that drive the page, as `customers.SEARCH`)."""

PATH = "/customers"
TITLE = "Customers"
NAV = "Customers"
ROLE = "viewer"

# the search
SEARCH = "customers-search"
RESULTS = "customers-results"
GO = "customers-go"  # the search page's URL: its ?q= holds the search; Enter opens the first result
SEARCH_URL = GO  # one Location only: a second one pushed its stale URL back over Enter's navigation
SEARCH_KEPT = "customers-search-kept"  # written in the browser only: the search put into the URL
# one customer (read by every signed-in account)
CUSTOMER = "customers-customer"
NAME = "customers-name"
IDENTITY = "customers-identity"
BODY = "customers-body"
MISSING = "customers-missing"
UPDATED = "customers-updated"
MESSAGE = "customers-message"
TOTAL = "customers-total"
TOTAL_NOTE = "customers-total-note"
OWNED_COUNT = "customers-owned-count"
BADGE = "customers-badge"
BADGE_NOTE = "customers-badge-note"
OWNED = "customers-owned"
PROBLEMS = "customers-problems"
GRID = "customers-timeline"
TIMELINE_NOTE = "customers-timeline-note"
TIMELINE_LIST = "customers-timeline-list"  # the same rows as a list, on a phone
INTERVAL = "customers-interval"
STATE = "customers-state"
CHANGED = "customers-changed"  # a revocation here: redraw at once, not at the next tick
# revoking (admins only: every output a write callback has starts with "admin-")
REVOKE = "admin-customers-revoke"  # the type of each owned item's button: {"type": REVOKE, "item": ref}
PANEL = "admin-customers-revoke-panel"
PANEL_TITLE = "admin-customers-revoke-title"
TARGET = "admin-customers-target"
FORM = "admin-customers-revoke-form"
REASON = "admin-customers-reason"
NOTE = "admin-customers-note"
REVIEW = "customers-review"
CANCEL = "customers-cancel"
CONFIRM_BOX = "admin-customers-confirm-box"
CONFIRM_TEXT = "admin-customers-confirm-text"
CONFIRM = "customers-confirm"
BACK = "customers-back"
REVIEWED = "admin-customers-reviewed"
RESULT = "admin-customers-result"
SCROLL = "admin-customers-scroll"  # written in the browser only: brings the opened panel into view


def error_id(field: str) -> str:
    """The id of a revoke panel field's error line."""
    return f"admin-customers-{field}-error"
