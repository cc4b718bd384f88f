"""Moved: the live page's view (URL query, controls, core filters) is dashboard/pages/live/filters.py.
This name stays only for api/analytics.py, which still imports it from here; then it goes."""

from dashboard.pages.live.filters import *  # noqa: F403
