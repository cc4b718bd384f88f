"""What a page shows for an error comes from its type and `field` (dashboard.messages), never its
text; the query-string helper every page reads its URL with."""

import logging

import pytest
from pymongo.errors import (
    AutoReconnect,
    ExecutionTimeout,
    NetworkTimeout,
    OperationFailure,
    ServerSelectionTimeoutError,
)

from core import AlreadyPurchasedError, ItemNotFoundError, NotPurchasedError, UserNotFoundError, ValidationError
from core.errors import DatabaseTooSlowError, DatabaseUnavailableError, DatabaseUnreachableError
from dashboard import messages
from dashboard.display import cut
from dashboard.messages import RETRYING, TOO_SLOW, UNAVAILABLE, UNREACHABLE, failure, outage, shown
from dashboard.pages import grant
from dashboard.pages.customers import revoke
from dashboard.query import query_arg, query_args, query_string

log = logging.getLogger("tests.messages")


def test_slow_is_not_down_by_type_whatever_the_message_says():
    assert outage(ServerSelectionTimeoutError("127.0.0.1:5: [Errno 111] Connection refused, Timeout: 0.5s")) == UNREACHABLE
    assert outage(AutoReconnect("127.0.0.1:5: connection closed")) == UNREACHABLE
    assert outage(NetworkTimeout("127.0.0.1:5: connection refused")) == TOO_SLOW  # the words do not count
    assert outage(ExecutionTimeout("operation exceeded time limit")) == TOO_SLOW
    assert outage(DatabaseUnreachableError("it is slow")) == UNREACHABLE
    assert outage(DatabaseTooSlowError("refused")) == TOO_SLOW
    assert outage(DatabaseUnavailableError("did not confirm")) == UNAVAILABLE
    assert outage(OperationFailure("refused", code=2)) is None and outage(ValueError("timed out")) is None


@pytest.mark.parametrize(("error", "field"), [
    (ValidationError("anything at all", field="amount"), "amount"),
    (ValidationError("no amount here", field="paymentMethod"), "method"),
    (ValidationError("about the note", field="discountCode"), "discount"),
    (ValidationError("a course_id", field="note"), "note"),
    (ValidationError("x", field="course_id"), "item"),
    (ValidationError("x", field="test_id"), "item"),
    (ValidationError("x", field="kind"), "item"),
    (ValidationError("x", field="user_id"), "user"),
    (ValidationError("amount, note, user_id", field="idempotencyKey"), None),  # the form as a whole
    (ValidationError("amount"), None),
    (UserNotFoundError("no amount"), "user"),
    (ItemNotFoundError("no note"), "item"),
    (AlreadyPurchasedError("the amount"), "item"),
    (DatabaseUnavailableError("amount note user_id"), None),
], ids=repr)
def test_a_grant_error_goes_beside_the_field_its_type_and_field_name(error, field):
    said = shown(error, grant.FORM_FIELDS)
    assert said.field == field and said.text == str(error)


def test_a_revocation_error_goes_beside_the_panel_field_it_names():
    assert shown(NotPurchasedError("no longer owned"), revoke.PANEL_FIELDS).field == "item"
    assert shown(ValidationError("too long", field="reason"), revoke.PANEL_FIELDS).field == "reason"
    assert shown(ValidationError("a course_id", field="user_id"), revoke.PANEL_FIELDS).field is None


def test_failure_says_core_errors_in_their_words_outages_in_the_pages_and_logs_the_rest(caplog):
    refused = failure(ValidationError("the range ends before it starts", field="endDate"), log, failed="F")
    assert refused.text == "the range ends before it starts" and refused.refused and not refused.outage
    down = failure(DatabaseUnreachableError("The database did not answer: refused"), log, failed="F")
    assert (down.text, down.outage, down.refused) == (RETRYING, UNREACHABLE, False)
    slow = failure(NetworkTimeout("timed out"), log, failed="F", unanswered="Try again.")
    assert (slow.text, slow.outage) == ("Try again.", TOO_SLOW)
    with caplog.at_level(logging.ERROR, logger=log.name):
        broken = failure(KeyError("x"), log, failed="Could not read it; see the server log.")
    assert broken.text == "Could not read it; see the server log." and not broken.refused
    assert [r.exc_info[0] for r in caplog.records if r.levelno >= logging.ERROR] == [KeyError]


def test_sentence_and_cut():
    assert messages.sentence("a key named x exists") == "A key named x exists."
    assert messages.sentence("Done.") == "Done."
    assert cut("abc", 3) == "abc" and cut("abcdef", 4) == "abc…"


def test_query_strings_read_and_written_one_way():
    assert query_args("?range=7d&kind=course&kind=test") == {"range": "7d", "kind": "test"}
    assert query_args("q=ada+lovelace") == {"q": "ada lovelace"}
    assert query_args(None) == {} and query_args(["?x=1"]) == {}
    assert query_arg("?job=abc", "job") == "abc" and query_arg("?job=abc", "user") == ""
    assert query_string({"range": "7d", "kind": "", "method": None}) == "?range=7d"
    assert query_string({"a": ""}) == ""
