"""Errors say what a screen needs by their type and `field`: a database outage is unreachable or
too slow by the driver error's type, never its text; a refused value names its argument."""

import pytest
from pymongo.errors import (
    AutoReconnect,
    ConnectionFailure,
    ExecutionTimeout,
    NetworkTimeout,
    OperationFailure,
    ServerSelectionTimeoutError,
    WaitQueueTimeoutError,
)

from core import ValidationError, get_audit_log
from core.errors import (
    DatabaseTooSlowError,
    DatabaseUnavailableError,
    DatabaseUnreachableError,
    unavailable_type,
)
from core.settings import DEFAULT_SETTINGS
from core.storage import retry
from core.validation import known_options, validate_purchase_data

UNREACHABLE = [ServerSelectionTimeoutError("timed out"), AutoReconnect("connection closed"),
               ConnectionFailure("whatever it says")]
TOO_SLOW = [NetworkTimeout("refused"), ExecutionTimeout("Connection refused"), WaitQueueTimeoutError("reset")]


@pytest.mark.parametrize("error", UNREACHABLE, ids=lambda e: type(e).__name__)
def test_a_server_that_cannot_be_reached_is_unreachable_whatever_its_message_says(error):
    assert unavailable_type(error) is DatabaseUnreachableError
    assert isinstance(retry.unavailable(error), DatabaseUnreachableError)


@pytest.mark.parametrize("error", TOO_SLOW, ids=lambda e: type(e).__name__)
def test_a_time_limit_that_passed_is_too_slow_whatever_its_message_says(error):
    assert unavailable_type(error) is DatabaseTooSlowError
    assert isinstance(retry.unavailable(error), DatabaseTooSlowError)


def test_errors_that_are_not_about_reaching_the_database_are_neither():
    assert unavailable_type(OperationFailure("connection refused", code=2)) is None
    assert unavailable_type(ValueError("timed out")) is None
    assert unavailable_type(DatabaseTooSlowError("x")) is DatabaseTooSlowError  # ours stay what they are
    # a commit whose outcome is unknown says so, and is still sorted by its type
    labels = {"errorLabels": ["UnknownTransactionCommitResult"]}
    said = retry.unavailable(OperationFailure("shutting down", code=91, details=labels))
    assert type(said) is DatabaseUnavailableError and "may or may not" in str(said)
    assert type(retry.unavailable(OperationFailure("time limit", code=50, details=labels))) is DatabaseTooSlowError


def test_a_database_that_stays_busy_is_too_slow():
    def busy():
        raise OperationFailure("database is locked")

    with pytest.raises(DatabaseTooSlowError, match="stayed busy"):
        retry.retry_when_busy(busy, deadline=0.05)


@pytest.mark.parametrize(("call", "field"), [
    (lambda: validate_purchase_data([], DEFAULT_SETTINGS, None), "purchase_data"),
    (lambda: validate_purchase_data({"amount": 1, "colour": "red"}, DEFAULT_SETTINGS, None), "colour"),
    (lambda: known_options({"limit": 1, "size": 2}, {"limit"}, "history options"), "size"),
    (lambda: known_options([("limit", 1)], {"limit"}, "history options"), "history options"),
], ids=["purchase data", "unknown field", "unknown option", "options"])
def test_refused_values_name_their_field(call, field):
    with pytest.raises(ValidationError) as raised:
        call()
    assert raised.value.field == field


@pytest.mark.parametrize(("filters", "field"), [({"source": "fax"}, "source"), ({"action": "lend"}, "action"),
                                                ({"actor": 5}, "actor"), ({"limit": 0}, "limit")])
def test_audit_filters_name_their_field(db, filters, field):
    with pytest.raises(ValidationError) as raised:
        get_audit_log(db, filters)
    assert raised.value.field == field

