"""The one validation layer: every caller-supplied value is checked here before anything is
written or queried, and refused with a ValidationError that names the field and the value."""

import math
import re
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal

from bson import ObjectId
from bson.errors import InvalidId

from core.errors import ValidationError
from core.settings import DEFAULT_SETTINGS, FREE_METHOD, CoreSettings
from core.storage.schema import KINDS

OPTIONAL_STRINGS = ("idempotencyKey", "discountCode", "actor")
ALLOWED_FIELDS = {"amount", "paymentMethod", "purchasedAt", "currency", "metadata", *OPTIONAL_STRINGS}
MAX_STRING = 200
MAX_METADATA_DEPTH = 8
MAX_METADATA_BYTES = 16_384
# ISO 4217 currencies whose minor unit is not the cent; every other has two decimals
MINOR_UNITS = {"JPY": 0, "KRW": 0, "VND": 0, "CLP": 0, "ISK": 0, "UGX": 0, "XAF": 0, "XOF": 0, "PYG": 0,
               "BHD": 3, "KWD": 3, "OMR": 3, "JOD": 3, "TND": 3, "LYD": 3, "IQD": 3}
EARLIEST_DATE = datetime(2000, 1, 1, tzinfo=UTC)  # no purchase or query before this
SHOWN = 160  # characters of a refused value an error message quotes


def shown(value) -> str:
    """The value as a message quotes it: its repr, cut short when long."""
    quoted = repr(value)
    return quoted if len(quoted) <= SHOWN else f"{quoted[:SHOWN]}... ({len(quoted):,} characters)"


def text(value: str, name: str) -> str:
    """`value` when MongoDB can store it: UTF-8 has no lone surrogates ('\\ud800')."""
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        field = "metadata" if name.startswith(("metadata", "a key in")) else name
        raise ValidationError(f"{name} must be valid Unicode text (no lone surrogates), got {shown(value)}",
                              field=field) from None
    return value


def core_settings(settings) -> CoreSettings:
    """The settings given, or the defaults for None."""
    if settings is None:
        return DEFAULT_SETTINGS
    if not isinstance(settings, CoreSettings):
        raise ValidationError(f"settings must be a CoreSettings, got {type(settings).__name__}", field="settings")
    return settings


# ids


def to_object_id(value, name: str) -> ObjectId:
    """Return `value` as an ObjectId; accept an ObjectId or a 24-hex string."""
    if isinstance(value, ObjectId):
        return value
    if isinstance(value, str):
        try:
            return ObjectId(value.strip())
        except InvalidId:
            pass
    raise ValidationError(f"{name} must be an ObjectId or a 24-character hex string, got {shown(value)}", field=name)


def item_kind(course_id, test_id) -> tuple[str, ObjectId]:
    """Return ("course", id) or ("test", id); exactly one of the two must be given."""
    if (course_id is None) == (test_id is None):
        raise ValidationError("give exactly one of course_id and test_id, "
                              f"got course_id={shown(course_id)}, test_id={shown(test_id)}", field="course_id")
    if course_id is not None:
        return "course", to_object_id(course_id, "course_id")
    return "test", to_object_id(test_id, "test_id")


# dates


def utc_millis(moment: datetime) -> datetime:
    """Return `moment` in UTC at millisecond precision, as MongoDB stores it; naive means UTC."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    moment = moment.astimezone(UTC)
    return moment.replace(microsecond=moment.microsecond // 1000 * 1000)


def parse_date(value, name: str, *, end: bool = False) -> datetime | None:
    """Parse a datetime or 'YYYY-MM-DD' into a UTC datetime; None stays None.

    An end is returned as an exclusive bound: the next midnight for a date (so a date-only
    end includes that whole day), the next millisecond (MongoDB's precision) for a datetime.
    """
    if value is None:
        return None
    try:
        if isinstance(value, datetime):
            moment = utc_millis(value)
            return moment + timedelta(milliseconds=1) if end else moment
        if isinstance(value, date):
            day = value
        elif isinstance(value, str):
            try:
                day = date.fromisoformat(value.strip())
            except ValueError:
                raise ValidationError(f"{name} must be a datetime or a 'YYYY-MM-DD' date, got {shown(value)}",
                                      field=name) from None
        else:
            raise ValidationError(f"{name} must be a datetime or a 'YYYY-MM-DD' date, got {shown(value)}", field=name)
        midnight = datetime.combine(day, time.min, tzinfo=UTC)
        return midnight + timedelta(days=1) if end else midnight
    except OverflowError:  # the first or last day of the calendar, moved to UTC or past its end
        raise ValidationError(f"{name} falls outside the calendar (years 1 to 9999) once moved to UTC, "
                              f"got {shown(value)}", field=name) from None


# options dicts (history, analytics)


def known_options(options, allowed: set[str], what: str) -> dict:
    """The options as a dict; refuse anything but a dict of allowed names."""
    options = options or {}
    if not isinstance(options, dict):
        raise ValidationError(f"{what} must be a dict, got {type(options).__name__}", field=what)
    if not all(isinstance(name, str) for name in options):
        raise ValidationError(f"{what} names must be strings, got {shown(list(options))}", field=what)
    unknown = sorted(set(options) - allowed)
    if unknown:
        raise ValidationError(f"unknown {what} {shown(unknown)}; allowed: {sorted(allowed)}", field=unknown[0])
    for name, value in options.items():
        if isinstance(value, str) and "\x00" in text(value, name):  # nothing is stored or looked up by NUL
            raise ValidationError(f"{name} must not contain NUL characters, got {shown(value)}", field=name)
    return options


def date_range(options: dict) -> tuple:
    """(start, exclusive end) from `startDate` and `endDate`, each None when not given.

    Both must fall in the window purchases can have: from EARLIEST_DATE to a day ahead.
    """
    start = parse_date(options.get("startDate"), "startDate")
    end = parse_date(options.get("endDate"), "endDate", end=True)
    latest = datetime.now(UTC) + timedelta(days=2)  # a date-only end of tomorrow ends the day after
    for name, moment in (("startDate", start), ("endDate", end)):
        if moment is not None and not EARLIEST_DATE <= moment <= latest:
            raise ValidationError(f"{name} must be between {EARLIEST_DATE:%Y-%m-%d} and tomorrow, "
                                  f"got {shown(options[name])}", field=name)
    if start and end and end <= start:
        raise ValidationError(f"endDate {shown(options['endDate'])} is before startDate {shown(options['startDate'])}", field="endDate")
    return start, end


def kind_option(options: dict) -> str | None:
    kind = options.get("kind")
    if kind is not None and (not isinstance(kind, str) or kind not in KINDS):
        raise ValidationError(f"kind must be 'course' or 'test', got {shown(kind)}", field="kind")
    return kind


# purchase fields


def validate_purchase_data(purchase_data, settings: CoreSettings, now: datetime) -> dict:
    """Return the document fields for a purchase, or raise ValidationError naming the bad one."""
    if purchase_data is None:
        purchase_data = {}
    if not isinstance(purchase_data, dict):
        raise ValidationError(f"purchase_data must be a dict, got {type(purchase_data).__name__}", field="purchase_data")
    if not all(isinstance(name, str) for name in purchase_data):
        raise ValidationError(f"purchase_data names must be strings, got {shown(list(purchase_data))}",
                              field="purchase_data")
    unknown = sorted(set(purchase_data) - ALLOWED_FIELDS)
    if unknown:
        raise ValidationError(f"unknown purchase_data fields {shown(unknown)}; allowed: {sorted(ALLOWED_FIELDS)}",
                              field=unknown[0])
    currency = _currency(purchase_data.get("currency", settings.currency))
    fields = {
        "purchasedAt": _purchased_at(purchase_data.get("purchasedAt"), now, settings),
        "amount": _amount(purchase_data.get("amount"), currency, settings),
        "paymentMethod": _payment_method(purchase_data.get("paymentMethod"), settings),
        "currency": currency,
    }
    for name in OPTIONAL_STRINGS:
        if purchase_data.get(name) is not None:
            fields[name] = short_string(purchase_data[name], name)
    if purchase_data.get("metadata") is not None:
        fields["metadata"] = _metadata(purchase_data["metadata"])
    return fields


def optional_string(value, name: str) -> str | None:
    """None, or a non-empty string of at most MAX_STRING characters."""
    return None if value is None else short_string(value, name)


def short_string(value, name: str) -> str:
    if not isinstance(value, str) or not value.strip() or len(value) > MAX_STRING:
        raise ValidationError(f"{name} must be a non-empty string of at most {MAX_STRING} characters, got {shown(value)}", field=name)
    return text(value, name)


def _amount(value, currency: str, settings: CoreSettings):
    """A number from 0 to the maximum, with no more decimals than the currency's minor unit."""
    if value is None:
        raise ValidationError("amount is required", field="amount")
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValidationError(f"amount must be a number, got {shown(value)}", field="amount")
    if isinstance(value, float) and not math.isfinite(value) or value < 0:
        raise ValidationError(f"amount must be a finite number >= 0, got {shown(value)}", field="amount")
    if value > settings.max_amount:
        raise ValidationError(f"amount must be at most {settings.max_amount:,.0f} {currency}, got {shown(value)}", field="amount")
    digits = MINOR_UNITS.get(currency, 2)
    # a float's shortest repr is what the caller wrote: 29.99, not 29.989999999999998; and
    # 500.0 has no decimals to speak of (a JSON number read as a float)
    if Decimal(repr(value)).normalize().as_tuple().exponent < -digits:
        raise ValidationError(f"amount in {currency} has at most {digits} decimals, got {shown(value)}", field="amount")
    return value + 0  # -0.0 is 0.0


def _payment_method(value, settings: CoreSettings) -> str:
    if not isinstance(value, str) or not value.strip():
        raise ValidationError(f"paymentMethod is required and must be a non-empty string, got {shown(value)}", field="paymentMethod")
    if value not in settings.payment_methods:
        raise ValidationError(f"paymentMethod {shown(value)} is not allowed; allowed: {sorted(settings.payment_methods)}", field="paymentMethod")
    return value


def _purchased_at(value, now: datetime, settings: CoreSettings) -> datetime:
    if value is None:
        return utc_millis(now)
    if not isinstance(value, datetime):
        raise ValidationError(f"purchasedAt must be a datetime, got {shown(value)}", field="purchasedAt")
    try:
        moment = utc_millis(value)
    except (OverflowError, ValueError):
        raise ValidationError(f"purchasedAt is outside the calendar once moved to UTC, got {shown(value)}",
                              field="purchasedAt") from None
    if not settings.earliest_purchase <= moment <= now + timedelta(days=1):
        raise ValidationError(f"purchasedAt must be between {settings.earliest_purchase:%Y-%m-%d} and a day from "
                              f"now, got {shown(value)}", field="purchasedAt")
    return moment


def _currency(value) -> str:
    if not isinstance(value, str) or len(value) != 3 or not value.isascii() or not value.isalpha() or not value.isupper():
        raise ValidationError(f"currency must be a 3-letter upper-case code such as 'USD', got {shown(value)}", field="currency")
    return value


def _metadata(value) -> dict:
    """JSON-like values MongoDB stores as given: string keys without `$`, `.` or NUL,
    strings, 64-bit integers, finite numbers, booleans, None, lists and dicts; bounded."""
    if not isinstance(value, dict):
        raise ValidationError(f"metadata must be a dict, got {shown(value)}", field="metadata")
    _check_json_like(value, "metadata", 0)
    size = len(repr(value).encode("utf-8", "surrogatepass"))
    if size > MAX_METADATA_BYTES:
        raise ValidationError(f"metadata must be at most {MAX_METADATA_BYTES} bytes, got about {size}", field="metadata")
    return value


def _check_json_like(value, path: str, depth: int) -> None:
    if depth > MAX_METADATA_DEPTH:
        raise ValidationError(f"metadata nests deeper than {MAX_METADATA_DEPTH} levels at {path}", field="metadata")
    if isinstance(value, dict):
        for key, item in value.items():
            if not isinstance(key, str) or not key or key.startswith("$") or "." in key or "\x00" in key:
                raise ValidationError(f"metadata keys must be non-empty strings without '$' at the start, '.' or "
                                      f"NUL, got {shown(key)} in {path}", field="metadata")
            text(key, f"a key in {path}")
            _check_json_like(item, f"{path}.{key}", depth + 1)
    elif isinstance(value, list):
        for index, item in enumerate(value):
            _check_json_like(item, f"{path}[{index}]", depth + 1)
    elif isinstance(value, bool) or value is None:
        return
    elif isinstance(value, int):
        if not -(2**63) <= value < 2**63:
            raise ValidationError(f"metadata integers must fit in 64 bits, got {shown(value)} at {path}", field="metadata")
    elif isinstance(value, float):
        if not math.isfinite(value):
            raise ValidationError(f"metadata numbers must be finite, got {shown(value)} at {path}", field="metadata")
    elif isinstance(value, str):
        if len(value) > MAX_METADATA_BYTES:
            raise ValidationError(f"metadata strings must be at most {MAX_METADATA_BYTES} characters at {path}", field="metadata")
        text(value, path)
    else:
        raise ValidationError(f"metadata values must be JSON-like (str, number, bool, None, list, dict), "
                              f"got {type(value).__name__} at {path}", field="metadata")


# an amount as staff write it: digits with commas between thousands or none, and decimals
# after a point; "1,299.50", "1299.5", "12", ".5" (no sign, exponent, currency or "inf")
AMOUNT_TEXT = re.compile(r"(\d{1,3}(,\d{3})+|\d+)(\.\d+)?|\.\d+", re.ASCII)


def read_amount(text) -> Decimal | None:
    """The amount a person wrote on the Grant page or in a bulk file, or None when it is not one."""
    text = str(text or "").strip()
    return Decimal(text.replace(",", "")) if AMOUNT_TEXT.fullmatch(text) else None


def payment_problems(amount, method: str, settings: CoreSettings) -> list[str]:
    """What a grant by staff (the Grant page, a bulk file's row) refuses in an amount and a
    payment method, in their words: what create_purchase refuses (the largest amount, the
    currency's decimals), a free method with a price, and a price of 0 with a paid method."""
    currency, digits = settings.currency, MINOR_UNITS.get(settings.currency, 2)
    exact = Decimal(str(amount))
    if exact > Decimal(str(settings.max_amount)):
        return [f"the amount is more than the largest allowed, {settings.max_amount:,.{digits}f} {currency}"]
    if exact.normalize().as_tuple().exponent < -digits:
        return [f"{currency} amounts have at most {digits} decimals" if digits else
                f"{currency} amounts are whole numbers"]
    if method not in settings.payment_methods:
        return [f"payment method {method} is not allowed (allowed: {', '.join(sorted(settings.payment_methods))})"]
    try:
        validate_purchase_data({"amount": float(exact), "paymentMethod": method}, settings, datetime.now(UTC))
    except ValidationError as error:  # anything the checks above do not know of yet
        return [str(error)]
    if method == FREE_METHOD and exact != 0:
        return [f"{FREE_METHOD} is free access: its amount must be 0"]
    if method != FREE_METHOD and exact == 0:
        return [f"an amount of 0 is free access: give paymentMethod {FREE_METHOD}"]
    return []


# cohorts and retention (core.analytics.cohorts, core.analytics.retention)

COHORT_PERIODS = ("month", "week")


def cohort_options(options, *, dates: bool = True) -> dict:
    """The options of cohort_figures (dates=True) or retention_figures (dates=False), checked:
    {"period", "start", "end" (exclusive), "kind", "paymentMethod", "paid"}, None where not given
    ("period" is "month" then).

    `paid` True keeps purchases with an amount, False the free ones (amount 0), None both.
    """
    names = {"kind", "paymentMethod", "paid"} | ({"period", "startDate", "endDate"} if dates else set())
    options = known_options(options, names, "cohort options" if dates else "retention options")
    period = options.get("period")
    if period is None:
        period = "month"
    if not isinstance(period, str) or period not in COHORT_PERIODS:
        raise ValidationError(f"period must be 'month' or 'week', got {shown(period)}", field="period")
    method = options.get("paymentMethod")
    paid = options.get("paid")
    if paid is not None and not isinstance(paid, bool):
        raise ValidationError(f"paid must be True (purchases with an amount), False (free ones) or None (both), "
                              f"got {shown(paid)}", field="paid")
    start, end = date_range(options)
    return {"period": period, "start": start, "end": end, "kind": kind_option(options),
            "paymentMethod": None if method is None else short_string(method, "paymentMethod"), "paid": paid}
