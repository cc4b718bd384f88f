"""The live page's name, route and element ids, shared by its modules (and by the tests and
scripts that drive the page, as `live.STATE`). A card's parts have ids made from the card's
(dashboard.display: `value(card)`, `note(card)`, `trend(card)`)."""

from dashboard.display import note, trend, value  # noqa: F401 - the card part ids, as live.value(card)

PATH = "/"
TITLE = "Live revenue"
NAV = "Live revenue"
ROLE = "viewer"

URL = "live-url"  # the page's own view of the URL: its query string holds the filters
UPDATED = "live-updated"  # "last sale 06:17", with each render
CHECKED = "live-checked"  # when the server last answered a tick: every tick, even with nothing new
CHECKED_TEXT = "live-checked-text"  # "checked just now", kept by the browser between ticks
PAUSE = "live-pause"
EXPORT = "live-export"
DOWNLOAD = "live-download"
MESSAGE = "live-message"
BODY = "live-body"
PRESET = "live-preset"
DATES = "live-dates"
DATES_BOX = "live-dates-box"
KIND = "live-kind"
METHOD = "live-method"
GRANULARITY = "live-granularity"
REVENUE_TODAY = "live-revenue-today"
PURCHASES_TODAY = "live-purchases-today"
REVENUE_24H = "live-revenue-24h"
PURCHASES_24H = "live-purchases-24h"
AOV = "live-aov"
BUYERS = "live-buyers"
REVOKED = "live-revoked"
KPI_CARDS = (REVENUE_TODAY, PURCHASES_TODAY, REVENUE_24H, PURCHASES_24H, AOV, BUYERS, REVOKED)
SPARK_CARDS = (REVENUE_TODAY, PURCHASES_TODAY, REVENUE_24H, PURCHASES_24H, AOV)
REVENUE_CHART = "live-revenue-chart"
KIND_CHART = "live-kind-chart"
TOP_COURSES = "live-top-courses"
TOP_TESTS = "live-top-tests"
METHODS_CHART = "live-methods-chart"
BUYERS_CHART = "live-buyers-chart"
COMPED_CHART = "live-comped-chart"
RANGE_LABEL = "live-range-label"
DATES_START, DATES_END = "live-dates-start", "live-dates-end"  # the date picker's two inputs
CHARTS = (REVENUE_CHART, KIND_CHART, TOP_COURSES, TOP_TESTS, METHODS_CHART, BUYERS_CHART, COMPED_CHART)
# the charts the main poll draws; the buyers chart has its own poll
ROLLUP_CHARTS = tuple(chart for chart in CHARTS if chart != BUYERS_CHART)
FEED = "live-feed"
INTERVAL = "live-interval"
BUYERS_INTERVAL = "live-buyers-interval"
STATE = "live-state"
BUYERS_STATE = "live-buyers-state"
