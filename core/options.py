"""Checks shared by the functions that take an options dict (history, analytics)."""

from core.errors import ValidationError
from core.periods import parse_date
from core.schema import KINDS


def known_options(options, allowed: set[str], what: str) -> dict:
    """The options as a dict; refuse anything but a dict of allowed names."""
    options = options or {}
    if not isinstance(options, dict):
        raise ValidationError(f"{what} must be a dict, got {type(options).__name__}")
    unknown = sorted(set(options) - allowed)
    if unknown:
        raise ValidationError(f"unknown {what} {unknown}; allowed: {sorted(allowed)}")
    return options


def date_range(options: dict) -> tuple:
    """(start, exclusive end) from `startDate` and `endDate`, each None when not given."""
    start = parse_date(options.get("startDate"), "startDate")
    end = parse_date(options.get("endDate"), "endDate", end=True)
    if start and end and end <= start:
        raise ValidationError(f"endDate {options['endDate']!r} is before startDate {options['startDate']!r}")
    return start, end


def kind_option(options: dict) -> str | None:
    kind = options.get("kind")
    if kind is not None and kind not in KINDS:
        raise ValidationError(f"kind must be 'course' or 'test', got {kind!r}")
    return kind
