"""The filters of the analytics queries (`get_purchase_analytics` and its parts), checked."""

from dataclasses import dataclass
from datetime import datetime, timedelta

from core.analytics.periods import GRANULARITIES
from core.errors import ValidationError
from core.validation import date_range, kind_option, known_options

FILTER_NAMES = {"startDate", "endDate", "kind", "paymentMethod", "excludePaymentMethod", "granularity", "top"}
# a series has at most a few thousand points: hours for a month, days for ten years
MAX_SPAN = {"hour": timedelta(days=31), "day": timedelta(days=3660)}


@dataclass(frozen=True)
class Filters:
    start: datetime | None
    end: datetime | None  # exclusive
    kind: str | None
    payment_method: str | None
    granularity: str | None
    top: int
    exclude_method: str | None = None  # e.g. "migrated": figures without what a migration created


def parse_analytics_filters(filters) -> Filters:
    """Validate analytics filters; dates become UTC datetimes, the end exclusive."""
    filters = known_options(filters, FILTER_NAMES, "analytics filters")
    start, end = date_range(filters)
    kind = kind_option(filters)
    method, exclude = _method(filters, "paymentMethod"), _method(filters, "excludePaymentMethod")
    granularity = filters.get("granularity")
    if granularity is not None and granularity not in GRANULARITIES:
        raise ValidationError(f"granularity must be one of {list(GRANULARITIES)}, got {granularity!r}")
    top = filters.get("top", 10)
    if isinstance(top, bool) or not isinstance(top, int) or not 1 <= top <= 100:
        raise ValidationError(f"top must be an integer between 1 and 100, got {top!r}")
    return Filters(start, end, kind, method, granularity, top, None if method else exclude)


def _method(filters: dict, name: str) -> str | None:
    method = filters.get(name)
    if method is not None and (not isinstance(method, str) or not method or len(method) > 200):
        raise ValidationError(f"{name} must be a non-empty string, got {method!r}"[:300])
    return method
