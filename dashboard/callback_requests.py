"""What a Dash callback request may carry, checked before Dash runs the callback.

Dash hands a callback whatever JSON the request holds; a dict where a page's code expects
text made it fail with a 500. Here every request names a server callback of this app, and
each input and state value has the shape its property can have in a browser (a count is a
whole number, a URL part or a date is text, a value is text, a number or a list of them);
anything else is a 400 and the callback does not run. Values of the right shape but wrong
meaning are the callbacks' own business (they answer with a message or no update).
"""

import math

from flask import jsonify, request

CALLBACK_PATH = "/_dash-update-component"
COUNTS = frozenset({"n_clicks", "n_intervals", "n_submit", "n_blur"})
TEXTS = frozenset({"search", "pathname", "hash", "href", "start_date", "end_date", "date", "contents", "filename",
                   "search_value", "className"})


def init_callback_checks(server, dash_app) -> None:
    """Refuse malformed callback requests to `dash_app` with a 400 (after the sign-in guard)."""

    @server.before_request
    def check_callback_request():
        if request.path != CALLBACK_PATH or request.method != "POST":
            return None
        problem = callback_problem(request.get_json(silent=True), dash_app.callback_map)
        return (jsonify(error=problem), 400) if problem else None


def callback_problem(body, callback_map: dict) -> str | None:
    """What is wrong with a callback request body, or None."""
    if not isinstance(body, dict):
        return "a callback request is a JSON object"
    output = body.get("output")
    if not isinstance(output, str) or not callable(callback_map.get(output, {}).get("callback")):
        return "no such callback"
    for part in ("inputs", "state"):
        items = body.get(part, [])
        if not isinstance(items, list):
            return f"{part} must be a list"
        for item in _flatten(items):
            if not isinstance(item, dict) or not isinstance(item.get("property"), str):
                return f"each of {part} names a property"
            if not fits(item["property"], item.get("value")):
                return f"{item['property']} cannot be {type(item.get('value')).__name__}"
    return None


def fits(prop: str, value) -> bool:
    """Whether `value` has a shape the property `prop` can have in a browser."""
    if value is None:
        return True
    if prop in COUNTS:
        return isinstance(value, int) and not isinstance(value, bool) and value >= 0
    if prop in TEXTS:
        return isinstance(value, str)
    if prop == "value":
        return _scalar(value) or (isinstance(value, list) and all(_scalar(v) for v in value))
    return True  # stores' data and grids' rows: their callbacks check them


def text(value) -> str:
    """A text input's value as text: "" for nothing or for what no browser sends there."""
    return value if isinstance(value, str) else ""


def mapping(value) -> dict:
    """A store's data as the dict its page keeps there: {} for anything else."""
    return value if isinstance(value, dict) else {}


def _scalar(value) -> bool:
    if isinstance(value, float):
        return math.isfinite(value)
    return isinstance(value, str | int | bool)


def _flatten(items: list):
    """Pattern-matching inputs (ALL) arrive as lists of items."""
    for item in items:
        if isinstance(item, list):
            yield from _flatten(item)
        else:
            yield item
