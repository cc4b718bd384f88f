"""Validation of ids and purchase fields, without a database."""

import math
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal

import pytest
from bson import ObjectId

from core.errors import ValidationError
from core.settings import DEFAULT_PAYMENT_METHODS, CoreSettings
from core.validation import item_kind, to_object_id, utc_millis, validate_purchase_data

NOW = datetime(2026, 1, 2, 3, 4, 5, 678901, tzinfo=UTC)
SETTINGS = CoreSettings()


def test_ids_accept_objectid_and_hex_and_reject_the_rest():
    oid = ObjectId()
    assert to_object_id(oid, "x") is oid
    assert to_object_id(str(oid), "x") == oid
    for bad in ("nope", "", 123, None, "0" * 23):
        with pytest.raises(ValidationError, match="x must be"):
            to_object_id(bad, "x")


def test_exactly_one_item():
    oid = ObjectId()
    assert item_kind(oid, None) == ("course", oid)
    assert item_kind(None, str(oid)) == ("test", oid)
    for course, test in ((None, None), (oid, oid)):
        with pytest.raises(ValidationError, match="exactly one"):
            item_kind(course, test)


def test_defaults_and_fields():
    fields = validate_purchase_data({"amount": 29.99, "paymentMethod": "paypal"}, SETTINGS, NOW)
    assert fields == {
        "purchasedAt": datetime(2026, 1, 2, 3, 4, 5, 678000, tzinfo=UTC),
        "amount": 29.99,
        "paymentMethod": "paypal",
        "currency": "USD",
    }
    full = validate_purchase_data(
        {
            "amount": 0,
            "paymentMethod": "admin_grant",
            "purchasedAt": datetime(2025, 1, 1, 12, tzinfo=timezone(timedelta(hours=2))),
            "currency": "EUR",
            "idempotencyKey": "evt_1",
            "discountCode": "SAVE10",
            "metadata": {"campaign": "spring"},
            "actor": "admin@example.com",
        },
        SETTINGS,
        NOW,
    )
    assert full["purchasedAt"] == datetime(2025, 1, 1, 10, tzinfo=UTC)
    assert full["idempotencyKey"] == "evt_1" and full["metadata"] == {"campaign": "spring"}


def test_amounts_at_the_limits_are_kept():
    fields = validate_purchase_data({"amount": 1_000_000, "paymentMethod": "paypal"}, SETTINGS, NOW)
    assert fields["amount"] == 1_000_000
    assert validate_purchase_data({"amount": 0.1, "paymentMethod": "paypal"}, SETTINGS, NOW)["amount"] == 0.1
    assert validate_purchase_data({"amount": 1200, "paymentMethod": "paypal", "currency": "JPY"}, SETTINGS, NOW)


def deep(levels: int) -> dict:
    value = {}
    for _ in range(levels):
        value = {"k": value}
    return value


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"paymentMethod": "paypal"}, "amount is required"),
        ({"amount": -1, "paymentMethod": "paypal"}, "finite number >= 0"),
        ({"amount": math.nan, "paymentMethod": "paypal"}, "finite number >= 0"),
        ({"amount": math.inf, "paymentMethod": "paypal"}, "finite number >= 0"),
        ({"amount": True, "paymentMethod": "paypal"}, "must be a number"),
        ({"amount": "9.99", "paymentMethod": "paypal"}, "must be a number"),
        ({"amount": 1}, "paymentMethod is required"),
        ({"amount": 1, "paymentMethod": " "}, "paymentMethod is required"),
        ({"amount": 1, "paymentMethod": "bitcoin"}, "'bitcoin' is not allowed"),
        ({"amount": 1, "paymentMethod": "paypal", "currency": "usd"}, "currency must be"),
        ({"amount": 1, "paymentMethod": "paypal", "purchasedAt": "2025-01-01"}, "purchasedAt must be a datetime"),
        ({"amount": 1, "paymentMethod": "paypal", "metadata": "x"}, "metadata must be a dict"),
        ({"amount": 1, "paymentMethod": "paypal", "idempotencyKey": ""}, "idempotencyKey must be"),
        ({"amount": 1, "paymentMethod": "paypal", "user": "x"}, "unknown purchase_data fields \\['user'\\]"),
        ("amount=1", "purchase_data must be a dict"),
        # what escaped as the wrong error, or was stored and broke things later (issue 10)
        ({"amount": 2**63, "paymentMethod": "paypal"}, "amount must be at most 1,000,000 USD"),
        ({"amount": 1.7e308, "paymentMethod": "paypal"}, "amount must be at most"),
        ({"amount": 29.999, "paymentMethod": "paypal"}, "amount in USD has at most 2 decimals"),
        ({"amount": 1.5, "paymentMethod": "paypal", "currency": "JPY"}, "amount in JPY has at most 0 decimals"),
        ({"amount": 1, "paymentMethod": "paypal", "currency": "ÄÖÜ"}, "currency must be"),
        ({"amount": 1, "paymentMethod": "\x00"}, "is not allowed"),
        ({"amount": 1, "paymentMethod": "paypal", "purchasedAt": datetime(9999, 12, 31, 23, tzinfo=timezone(timedelta(hours=-5)))},
         "outside the calendar"),
        ({"amount": 1, "paymentMethod": "paypal", "purchasedAt": datetime(9999, 12, 31, tzinfo=UTC)},
         "purchasedAt must be between 2000-01-01 and a day from now"),
        ({"amount": 1, "paymentMethod": "paypal", "purchasedAt": datetime(751, 1, 12, tzinfo=UTC)},
         "purchasedAt must be between"),
        ({"amount": 1, "paymentMethod": "paypal", "metadata": {"$where": "1"}}, "metadata keys must be"),
        ({"amount": 1, "paymentMethod": "paypal", "metadata": {"a.b": 1}}, "metadata keys must be"),
        ({"amount": 1, "paymentMethod": "paypal", "metadata": {1: "x"}}, "metadata keys must be"),
        ({"amount": 1, "paymentMethod": "paypal", "metadata": {"k": {1, 2}}}, "JSON-like"),
        ({"amount": 1, "paymentMethod": "paypal", "metadata": {"k": Decimal("1.5")}}, "JSON-like"),
        ({"amount": 1, "paymentMethod": "paypal", "metadata": {"k": math.nan}}, "must be finite"),
        ({"amount": 1, "paymentMethod": "paypal", "metadata": {"k": 2**64}}, "fit in 64 bits"),
        ({"amount": 1, "paymentMethod": "paypal", "metadata": {"k": "x" * 17_000_000}}, "at most 16384"),
        ({"amount": 1, "paymentMethod": "paypal", "metadata": deep(5000)}, "nests deeper than 8"),
        ({1: 1, "amount": 1}, "names must be strings"),
    ],
)
def test_bad_fields_name_the_problem(data, message):
    with pytest.raises(ValidationError, match=message):
        validate_purchase_data(data, SETTINGS, NOW)


def test_payment_methods_and_currency_are_parsed_from_setting_strings():
    settings = CoreSettings.from_mapping({"PAYMENT_METHODS": "voucher, credit_card", "CURRENCY": "eur"})
    assert settings.payment_methods == {"voucher", "credit_card"}
    assert settings.currency == "EUR"
    assert CoreSettings.from_mapping({}).payment_methods == set(DEFAULT_PAYMENT_METHODS)
    with pytest.raises(ValueError, match="CURRENCY"):
        CoreSettings.from_mapping({"CURRENCY": "euro"})


def test_utc_millis_treats_naive_as_utc():
    assert utc_millis(datetime(2025, 5, 1, 8, 0, 0, 999999)) == datetime(2025, 5, 1, 8, 0, 0, 999000, tzinfo=UTC)
