"""Component ids, prefixed by page, so callbacks and tests never retype a string."""

LIVE_URL = "live-url"
LIVE_DATABASE = "live-database"
LIVE_UPDATED = "live-updated"
LIVE_PAUSE = "live-pause"
LIVE_EXPORT = "live-export"
LIVE_DOWNLOAD = "live-download"
LIVE_BANNER = "live-banner"
LIVE_MESSAGE = "live-message"
LIVE_BODY = "live-body"

LIVE_PRESET = "live-preset"
LIVE_DATES = "live-dates"
LIVE_DATES_BOX = "live-dates-box"
LIVE_KIND = "live-kind"
LIVE_METHOD = "live-method"
LIVE_GRANULARITY = "live-granularity"

LIVE_REVENUE_TODAY = "live-revenue-today"
LIVE_PURCHASES_TODAY = "live-purchases-today"
LIVE_REVENUE_24H = "live-revenue-24h"
LIVE_PURCHASES_24H = "live-purchases-24h"
LIVE_AOV = "live-aov"
LIVE_BUYERS = "live-buyers"
LIVE_REVOKED = "live-revoked"
KPI_CARDS = (LIVE_REVENUE_TODAY, LIVE_PURCHASES_TODAY, LIVE_REVENUE_24H, LIVE_PURCHASES_24H, LIVE_AOV, LIVE_BUYERS,
             LIVE_REVOKED)

LIVE_REVENUE_CHART = "live-revenue-chart"
LIVE_KIND_CHART = "live-kind-chart"
LIVE_TOP_COURSES = "live-top-courses"
LIVE_TOP_TESTS = "live-top-tests"
LIVE_METHODS_CHART = "live-methods-chart"
LIVE_BUYERS_CHART = "live-buyers-chart"
LIVE_COMPED_CHART = "live-comped-chart"
LIVE_RANGE_LABEL = "live-range-label"
CHARTS = (LIVE_REVENUE_CHART, LIVE_KIND_CHART, LIVE_TOP_COURSES, LIVE_TOP_TESTS, LIVE_METHODS_CHART,
          LIVE_BUYERS_CHART, LIVE_COMPED_CHART)

LIVE_FEED = "live-feed"
LIVE_INTERVAL = "live-interval"
LIVE_BUYERS_INTERVAL = "live-buyers-interval"
LIVE_STATE = "live-state"
LIVE_BUYERS_STATE = "live-buyers-state"


def value(card: str) -> str:
    return f"{card}-value"


def note(card: str) -> str:
    return f"{card}-note"


def trend(card: str) -> str:
    return f"{card}-trend"
