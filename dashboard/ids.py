"""Component ids, prefixed by page, so callbacks and tests never retype a string."""

OVERVIEW_DATABASE = "overview-database"
OVERVIEW_USERS = "overview-users"
OVERVIEW_PURCHASES = "overview-purchases"
OVERVIEW_REVENUE = "overview-revenue"
OVERVIEW_UPDATED = "overview-updated"
OVERVIEW_ERROR = "overview-error"
OVERVIEW_INTERVAL = "overview-interval"
