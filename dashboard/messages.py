"""What a page shows for an error: its text, the form field it belongs beside, and whether the
database is out (unreachable, too slow). Decided by the error's type and its `field`, never by
its text: rewording a message in core moves nothing on a page.

Every callback that catches an error turns it into what it shows here: `shown` for core's
errors a form points at, `failure` for the rest of a callback's failures, `outage` where
only the database's state matters (the live page's banner).
"""

import logging
from dataclasses import dataclass

from core.errors import (
    AlreadyPurchasedError,
    DatabaseTooSlowError,
    DatabaseUnreachableError,
    ItemNotFoundError,
    NotPurchasedError,
    PurchaseError,
    UserNotFoundError,
    ValidationError,
    unavailable_type,
)
from core.storage.schema import KINDS

UNREACHABLE = "unreachable"  # no server answered: refused, reset, none selected
TOO_SLOW = "too slow"  # a time limit passed first
UNAVAILABLE = "unavailable"  # the database failed otherwise (a change it did not confirm)
RETRYING = "The database did not answer; retrying."
# core's names for the item of a call (ItemRef's, the course_id/test_id pair's): one field on a form
ITEM_ARGUMENTS = frozenset({"item", "kind", *(f"{kind}_id" for kind in KINDS)})


@dataclass(frozen=True)
class Shown:
    """What a page shows for one error."""

    text: str
    field: str | None = None  # the page's form field it belongs beside; None: the page's message line
    outage: str | None = None  # UNREACHABLE, TOO_SLOW or UNAVAILABLE when the database failed; else None
    refused: bool = False  # core refused what was asked: asking again the same way gets the same answer


def argument(error: BaseException) -> str | None:
    """The argument of core's an error is about, in core's names ("amount", "paymentMethod",
    "user_id", "item" for any way of naming an item), or None: by its type and `field`."""
    if isinstance(error, UserNotFoundError):
        return "user_id"
    if isinstance(error, ItemNotFoundError | AlreadyPurchasedError | NotPurchasedError):
        return "item"
    field = error.field if isinstance(error, ValidationError) else None
    return "item" if field in ITEM_ARGUMENTS else field


def outage(error: BaseException) -> str | None:
    """UNREACHABLE, TOO_SLOW or UNAVAILABLE when `error` (core's or the driver's) says the
    database failed, by its type (core.errors.unavailable_type); None when it is not about that."""
    kind = unavailable_type(error)
    if kind is None:
        return None
    if issubclass(kind, DatabaseUnreachableError):
        return UNREACHABLE
    return TOO_SLOW if issubclass(kind, DatabaseTooSlowError) else UNAVAILABLE


def shown(error: BaseException, fields: dict[str, str] | None = None) -> Shown:
    """The error's own text, beside the page's field for the argument it is about (`fields` maps
    core's names to the page's, {"paymentMethod": "method"}; an argument the page does not name
    goes to its message line), and the outage it is, if any."""
    down = outage(error)
    return Shown(str(error), (fields or {}).get(argument(error)), down, isinstance(error, PurchaseError) and not down)


def failure(error: BaseException, log: logging.Logger, *, failed: str, unanswered: str = RETRYING,
            fields: dict[str, str] | None = None) -> Shown:
    """What a callback shows for an error it caught: core's own error in its words (beside its
    field); a database that did not answer as `unanswered` (logged as a warning); anything else
    as `failed`, logged with its traceback."""
    said = shown(error, fields)
    if said.outage:
        log.warning("the database did not answer: %s", error, exc_info=error)
        return Shown(unanswered, None, said.outage)
    if said.refused:
        return said
    log.error("%s (%s)", failed, type(error).__name__, exc_info=error)
    return Shown(failed)


def sentence(text: str) -> str:
    """`text` as a sentence: a capital first, a full stop last."""
    return text[:1].upper() + text[1:] + ("" if text.endswith(".") else ".")
