"""Reading the values an older deployment may have stored, and deciding whether a fix is certain.

Each function returns the value in this system's format, or raises `Unfixable` with what
is wrong when no certain fix exists (the migrations then report the document and leave it).
"""

import math
import re
from datetime import UTC, datetime, timedelta
from decimal import Decimal, InvalidOperation

from bson import Decimal128, ObjectId

_HEX_ID = re.compile(r"^[0-9a-fA-F]{24}$")
_NUMBER = re.compile(r"^\s*\d+(\.\d+)?\s*$")
EARLIEST = datetime(2000, 1, 1, tzinfo=UTC)  # as core.validation: no purchase before this


class Unfixable(ValueError):
    """A stored value with no certain reading."""


def object_id(value) -> ObjectId:
    """An id as an ObjectId: ObjectIds as they are, 24-hex strings converted."""
    if isinstance(value, ObjectId):
        return value
    if isinstance(value, str) and _HEX_ID.match(value.strip()):
        return ObjectId(value.strip())
    if isinstance(value, dict) and set(value) == {"$oid"}:  # extended JSON left in by an export
        return object_id(value["$oid"])
    raise Unfixable(f"not an id: {value!r}")


def amount(value):
    """An amount as a number: numbers as they are, numeric strings ("29.99") and Decimal128 converted."""
    if isinstance(value, bool):
        raise Unfixable(f"not an amount: {value!r}")
    if isinstance(value, int):
        if value < 0:
            raise Unfixable(f"negative amount: {value!r}")
        return value
    if isinstance(value, float):
        if not math.isfinite(value) or value < 0:
            raise Unfixable(f"not a finite amount >= 0: {value!r}")
        return value
    if isinstance(value, Decimal128):
        value = str(value.to_decimal())
    if isinstance(value, str) and _NUMBER.match(value):
        try:
            number = Decimal(value.strip())
        except InvalidOperation:
            raise Unfixable(f"not an amount: {value!r}") from None
        return int(number) if number == number.to_integral_value() and "." not in value else float(number)
    if value is None:
        raise Unfixable("no amount")
    raise Unfixable(f"not an amount: {value!r}")


def moment(value, now: datetime) -> datetime:
    """A date as an aware UTC datetime at millisecond precision.

    Datetimes (naive ones are UTC, as BSON stores them), ISO 8601 strings and epoch
    milliseconds are read; anything before 2000 or more than a day after `now` is refused,
    so that seconds mistaken for milliseconds (1970) are never taken as a date.
    """
    if isinstance(value, datetime):
        found = value if value.tzinfo else value.replace(tzinfo=UTC)
    elif isinstance(value, str) and value.strip():
        try:
            found = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
        except ValueError:
            raise Unfixable(f"not a date: {value!r}") from None
        found = found if found.tzinfo else found.replace(tzinfo=UTC)
    elif isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value):
        try:
            found = datetime(1970, 1, 1, tzinfo=UTC) + timedelta(milliseconds=value)
        except OverflowError:
            raise Unfixable(f"not a date in epoch milliseconds: {value!r}") from None
    elif value is None:
        raise Unfixable("no date")
    else:
        raise Unfixable(f"not a date: {value!r}")
    found = found.astimezone(UTC)
    if not EARLIEST <= found <= now + timedelta(days=1):
        raise Unfixable(f"date outside {EARLIEST:%Y-%m-%d} to a day from now: {value!r}")
    return found.replace(microsecond=found.microsecond // 1000 * 1000)


def id_list(value) -> tuple[list[ObjectId], list]:
    """A user's array as a list of distinct ObjectIds in their first order, and the entries that are not ids.

    A missing or null array is empty. Anything else that is not a list raises Unfixable.
    """
    if value is None:
        return [], []
    if not isinstance(value, list):
        raise Unfixable(f"not an array: {value!r}"[:200])
    ids, bad = [], []
    for entry in value:
        try:
            ids.append(object_id(entry))
        except Unfixable:
            bad.append(entry)
    return list(dict.fromkeys(ids)), bad
