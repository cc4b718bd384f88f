"""Moved: the live page's data layer is dashboard/pages/live/data.py, the display helpers are in
dashboard/display.py. These names stay here only for the modules outside the pages that still
import them from here (dashboard/__init__.py: warm_up; api/analytics.py: today_in, kpis); once
they import from the new homes, this module goes."""

from dashboard.display import today_in  # noqa: F401
from dashboard.pages.live.data import kpis, warm_up  # noqa: F401
