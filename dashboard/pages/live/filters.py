"""The view's filters: what the URL says, what the controls show, what core/ is asked."""

from dataclasses import dataclass, replace
from datetime import UTC, date, datetime, timedelta

from core.storage.schema import KINDS as ITEM_KINDS
from core.validation import EARLIEST_DATE
from dashboard.query import query_args, query_string

PRESETS = {"today": "Today", "7d": "7 days", "30d": "30 days", "90d": "90 days", "custom": "Custom"}
PRESET_DAYS = {"today": 1, "7d": 7, "30d": 30, "90d": 90}
# the kind filter's choices: every kind of item (core's table of kinds), or all of them
KINDS = {"": " and ".join(kind.plural for kind in ITEM_KINDS.values()).capitalize(),
         **{kind.name: kind.plural for kind in ITEM_KINDS.values()}}
GRANULARITIES = {"": "Auto", "hour": "Hour", "day": "Day", "week": "Week", "month": "Month"}
DEFAULT_PRESET = "30d"
EARLIEST = EARLIEST_DATE.date()  # core answers no date before it
# the longest range (days) each granularity serves, as core allows (core.analytics.queries.MAX_SPAN)
FINEST_SPAN_DAYS = {"hour": 31, "day": 3660}
# the payment-method filter's one exclusion: purchases a migration created from user arrays
# (paymentMethod "migrated") are history, not sales of the period
NOT_MIGRATED = "-migrated"


@dataclass(frozen=True)
class View:
    """One dashboard view; empty strings mean "all" or "automatic"."""

    preset: str = DEFAULT_PRESET
    start: date | None = None  # custom range only, inclusive
    end: date | None = None
    kind: str = ""
    method: str = ""
    granularity: str = ""


def parse_query(search: str | None, methods) -> View:
    """Read a view from a URL query string; anything unknown or out of range falls back to the
    default (a custom range outside 2000-01-01 to tomorrow, or ending before it starts), and a
    granularity too fine for the range to automatic."""
    args = query_args(search)
    view = View(
        preset=args.get("range") if args.get("range") in PRESETS else DEFAULT_PRESET,
        kind=args.get("kind") if args.get("kind") in KINDS else "",
        method=args.get("method") if args.get("method") in methods or args.get("method") == NOT_MIGRATED else "",
        granularity=args.get("granularity") if args.get("granularity") in GRANULARITIES else "",
    )
    if view.preset == "custom":
        start, end = _date(args.get("start")), _date(args.get("end"))
        if not custom_range_allowed(start, end):
            return _fitted(replace(view, preset=DEFAULT_PRESET))
        view = replace(view, start=start, end=end)
    return _fitted(view)


def to_query(view: View) -> str:
    """The URL query string for a view, without defaults, so shared links stay short."""
    args = {"range": view.preset}
    if view.preset == "custom":
        args |= {"start": view.start.isoformat(), "end": view.end.isoformat()}
    return query_string(args | {"kind": view.kind, "method": view.method, "granularity": view.granularity})


def same_query(one: str, other: str) -> bool:
    """True when two query strings hold the same arguments, in any order."""
    return query_args(one) == query_args(other)


def from_controls(preset, start, end, kind, method, granularity) -> View:
    """A view from the filter controls' values (dates arrive as ISO strings). "Custom" chosen
    before any date is picked comes back with no dates, for the caller to fill in."""
    view = View(preset=preset or DEFAULT_PRESET, kind=kind or "", method=method or "", granularity=granularity or "")
    if view.preset == "custom":
        start, end = _date(start), _date(end)
        if start is None or end is None:
            return view
        if not custom_range_allowed(start, end):
            return _fitted(replace(view, preset=DEFAULT_PRESET))
        view = replace(view, start=start, end=end)
    return _fitted(view)


def custom_range_allowed(start: date | None, end: date | None) -> bool:
    """True for a custom range that core answers: from 2000-01-01 to tomorrow, in order."""
    latest = datetime.now(UTC).date() + timedelta(days=1)
    return start is not None and end is not None and EARLIEST <= start <= end <= latest


def shown_dates(view: View, today: date) -> tuple[date, date]:
    """The first and last day a view shows (a preset ends today, in the dashboard's time zone)."""
    if view.preset == "custom":
        return view.start, view.end
    return today - timedelta(days=PRESET_DAYS[view.preset] - 1), today


def span_days(view: View) -> int:
    """How many days the view's range covers."""
    return (view.end - view.start).days + 1 if view.preset == "custom" else PRESET_DAYS[view.preset]


def _fitted(view: View) -> View:
    """The view with a granularity too fine for its range (hours past 31 days, days past ten
    years: more points than a chart shows) made automatic."""
    if view.granularity in FINEST_SPAN_DAYS and span_days(view) > FINEST_SPAN_DAYS[view.granularity]:
        return replace(view, granularity="")
    return view


def analytics_filters(view: View, today: date) -> dict:
    """The filters for core.get_purchase_analytics; presets end open, so new sales count."""
    if view.preset == "custom":
        filters = {"startDate": view.start.isoformat(), "endDate": view.end.isoformat()}
    else:
        filters = {"startDate": (today - timedelta(days=PRESET_DAYS[view.preset] - 1)).isoformat()}
    if view.kind:
        filters["kind"] = view.kind
    if view.method == NOT_MIGRATED:
        filters["excludePaymentMethod"] = view.method[1:]
    elif view.method:
        filters["paymentMethod"] = view.method
    if view.granularity:
        filters["granularity"] = view.granularity
    return filters


def describe(view: View) -> str:
    """A short human description of the range, for headings and exports."""
    if view.preset == "custom":
        return f"{view.start.isoformat()} to {view.end.isoformat()}"
    return {"today": "Today"}.get(view.preset, f"Last {PRESET_DAYS[view.preset]} days")


def _date(value) -> date | None:
    try:
        return date.fromisoformat(str(value)[:10]) if value else None
    except ValueError:
        return None
