"""A page's state in its URL's query string (`?range=7d&kind=course`): read and written here
only, so every page reads a query string the same way."""

from datetime import date
from urllib.parse import parse_qs, urlencode

from dashboard.callback_requests import text


def query_args(search) -> dict[str, str]:
    """A query string's arguments (with or without its "?"), the last value of each name;
    anything that is not a string reads as no arguments."""
    return {name: values[-1] for name, values in parse_qs(text(search).lstrip("?")).items()}


def query_arg(search, name: str) -> str:
    """One argument of a query string, "" when it has none."""
    return query_args(search).get(name, "")


def query_string(args: dict) -> str:
    """The query string of `args` without its empty ones ("?a=1&b=2"), "" when none is left."""
    kept = {name: value for name, value in args.items() if value}
    return "?" + urlencode(kept) if kept else ""


def is_date(value) -> bool:
    """True for a day as a URL holds it: YYYY-MM-DD."""
    try:
        return bool(date.fromisoformat(value))
    except (TypeError, ValueError):
        return False
