"""Validation of ids and purchase fields, without a database."""

import math
from datetime import UTC, datetime, timedelta, timezone

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
