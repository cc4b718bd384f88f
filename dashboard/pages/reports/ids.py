"""Every element id of the reports page. Those a writing callback outputs to start with "admin-"
(the server refuses them to viewers); row buttons are pattern ids {"type": ..., "id": subscription}."""

PATH = "/reports"
TITLE = "Scheduled reports"
NAV = "Reports"
ROLE = "admin"

# the form
FORM = "admin-reports-form"
FORM_TITLE = "admin-reports-form-title"
NAME = "admin-reports-name"
RECIPIENTS = "admin-reports-recipients"
VIEW = "admin-reports-view"
FREQUENCY = "admin-reports-frequency"
AT = "admin-reports-at"
WEEKDAY = "admin-reports-weekday"
WEEKDAY_FIELD = "admin-reports-weekday-field"
DAY = "admin-reports-day"
DAY_FIELD = "admin-reports-day-field"
SAVE = "reports-save"
CANCEL = "reports-cancel"
EDITING = "admin-reports-editing"  # the id of the subscription being edited; None: a new one
FIELDS = ("name", "recipients", "view", "frequency", "at", "weekday", "day")


def error(field: str) -> str:
    """The id of a form field's error line."""
    return f"admin-reports-{field}-error"


FORM_RESULT = "admin-reports-form-result"
PERIOD_NOTE = "admin-reports-period-note"  # which period each send reports, for the chosen frequency

# the list
TABLE = "reports-table"
SUMMARY = "reports-summary"
MESSAGE = "reports-message"
INTERVAL = "reports-interval"
STATE = "reports-state"
CHANGED = "admin-reports-changed"  # a new value after every write: the list redraws
RESULT = "admin-reports-result"  # what Send now, Download or Delete did
BUSY = "admin-reports-busy"
DOWNLOAD = "admin-reports-download"
EDIT = "reports-edit"  # the row buttons' types
SEND = "reports-send"
GET = "reports-get"
DELETE = "reports-delete"

# deleting, confirmed
CONFIRM_BOX = "admin-reports-confirm-box"
CONFIRM_TEXT = "admin-reports-confirm-text"
CONFIRM = "reports-confirm"
BACK = "reports-back"
TARGET = "admin-reports-target"
SCROLL = "reports-scroll"
