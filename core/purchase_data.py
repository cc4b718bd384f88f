"""Validating the caller's purchase fields before anything is written."""

import math
from datetime import UTC, datetime

from core.config import CoreSettings
from core.errors import ValidationError

OPTIONAL_STRINGS = ("idempotencyKey", "discountCode", "actor")
ALLOWED_FIELDS = {"amount", "paymentMethod", "purchasedAt", "currency", "metadata", *OPTIONAL_STRINGS}
MAX_STRING = 200


def utc_millis(moment: datetime) -> datetime:
    """Return `moment` in UTC at millisecond precision, as MongoDB stores it; naive means UTC."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    moment = moment.astimezone(UTC)
    return moment.replace(microsecond=moment.microsecond // 1000 * 1000)


def validate_purchase_data(purchase_data, settings: CoreSettings, now: datetime) -> dict:
    """Return the document fields for a purchase, or raise ValidationError naming the bad one."""
    if purchase_data is None:
        purchase_data = {}
    if not isinstance(purchase_data, dict):
        raise ValidationError(f"purchase_data must be a dict, got {type(purchase_data).__name__}")
    unknown = sorted(set(purchase_data) - ALLOWED_FIELDS)
    if unknown:
        raise ValidationError(f"unknown purchase_data fields {unknown}; allowed: {sorted(ALLOWED_FIELDS)}")
    fields = {
        "purchasedAt": _purchased_at(purchase_data.get("purchasedAt"), now),
        "amount": _amount(purchase_data.get("amount")),
        "paymentMethod": _payment_method(purchase_data.get("paymentMethod"), settings),
        "currency": _currency(purchase_data.get("currency", settings.currency)),
    }
    for name in OPTIONAL_STRINGS:
        if purchase_data.get(name) is not None:
            fields[name] = _short_string(purchase_data[name], name)
    if purchase_data.get("metadata") is not None:
        if not isinstance(purchase_data["metadata"], dict):
            raise ValidationError(f"metadata must be a dict, got {purchase_data['metadata']!r}")
        fields["metadata"] = purchase_data["metadata"]
    return fields


def _amount(value):
    if value is None:
        raise ValidationError("amount is required")
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValidationError(f"amount must be a number, got {value!r}")
    if not math.isfinite(value) or value < 0:
        raise ValidationError(f"amount must be a finite number >= 0, got {value!r}")
    return value


def _payment_method(value, settings: CoreSettings) -> str:
    if not isinstance(value, str) or not value.strip():
        raise ValidationError(f"paymentMethod is required and must be a non-empty string, got {value!r}")
    if value not in settings.payment_methods:
        raise ValidationError(f"paymentMethod {value!r} is not allowed; allowed: {sorted(settings.payment_methods)}")
    return value


def _purchased_at(value, now: datetime) -> datetime:
    if value is None:
        return utc_millis(now)
    if not isinstance(value, datetime):
        raise ValidationError(f"purchasedAt must be a datetime, got {value!r}")
    return utc_millis(value)


def _currency(value) -> str:
    if not isinstance(value, str) or len(value) != 3 or not value.isalpha() or not value.isupper():
        raise ValidationError(f"currency must be a 3-letter upper-case code such as 'USD', got {value!r}")
    return value


def _short_string(value, name: str) -> str:
    if not isinstance(value, str) or not value.strip() or len(value) > MAX_STRING:
        raise ValidationError(f"{name} must be a non-empty string of at most {MAX_STRING} characters, got {value!r}")
    return value
