"""How many password checks a sign-in may have: per account and per client address, however
many requests arrive at once, counted in `sign_in_throttle` so every process shares them.

A slot is claimed before the password is checked, by a write that names the version it
read (a compare-and-set), so forty requests sent at once for one account get `limit`
checks between them and the rest are told when to come back. Flask-Limiter counts a
failure after the check (`deduct_when`), which concurrency walks through.

Failures slow an account down progressively instead of locking it: its first two
`limit`s of failures in a row get the configured window; each further `limit` doubles it,
up to MAX_WINDOW. Its owner's right password still works once a slot is free, and sets the
account's count back to zero (an address's count is not reset by a success: one good
account must not buy guesses at others). When the counter cannot be read or written, the
caller is asked to come back shortly: never a password check that was not counted, never
an error page.
"""

import logging
import time
from dataclasses import dataclass
from datetime import UTC, datetime

from limits import parse
from pymongo import ASCENDING
from pymongo.database import Database
from pymongo.errors import DuplicateKeyError, PyMongoError

from core.storage import retry_when_busy

log = logging.getLogger(__name__)

THROTTLE = "sign_in_throttle"
MAX_WINDOW = 15 * 60.0  # s: the longest wait progressive slowing asks for
UNAVAILABLE_WAIT = 5  # s: the wait asked for when the counters cannot be reached
ATTEMPTS = 50  # compare-and-set rounds before a claim gives up (it then asks to wait a second)
KEEP = 24 * 3600.0  # s: a key's failures are forgotten a day after its last check


@dataclass(frozen=True)
class Refusal:
    scope: str  # "account", "address", or "unavailable"
    retry_after: int  # seconds

    @property
    def message(self) -> str:
        if self.scope == "account":
            return f"Too many failed sign-ins for this account. Try again in {self.retry_after} s."
        if self.scope == "address":
            return f"Too many failed sign-ins from this address. Try again in {self.retry_after} s."
        return f"Sign-in is busy. Try again in {self.retry_after} s."


class SignInThrottle:
    def __init__(self, db: Database, account_limit: str, address_limit: str):
        self.db = db
        self.limits = {scope: (item.amount, float(item.get_expiry()))
                       for scope, item in (("address", parse(address_limit)), ("account", parse(account_limit)))}

    def ensure_indexes(self) -> None:
        retry_when_busy(lambda: self.db[THROTTLE].create_index([("expireAt", ASCENDING)], expireAfterSeconds=0))

    def claim(self, email: str, address: str) -> Refusal | None:
        """Claim one password check for `email` from `address`; a Refusal when none is left.

        The account's slot first: a request its account refuses takes nothing from its
        address (a hundred guesses at one account must not lock its colleagues out); one
        the address refuses gives its account's slot back."""
        try:
            account, stamp = f"account|{email}", time.time()
            wait = self._claim(account, stamp, *self.limits["account"])
            if wait is not None:
                return Refusal("account", wait)
            wait = self._claim(f"address|{address}", stamp, *self.limits["address"])
            if wait is not None:
                retry_when_busy(lambda: self.db[THROTTLE].update_one(
                    {"_id": account}, {"$pull": {"checks": stamp}, "$inc": {"version": 1}}))
                return Refusal("address", wait)
        except PyMongoError:
            log.warning("the sign-in counters could not be reached; asking the caller to wait", exc_info=True)
            return Refusal("unavailable", UNAVAILABLE_WAIT)
        return None

    def record(self, email: str, address: str, succeeded: bool) -> None:
        """Count a failed check, or clear the account's failures after a right password."""
        expire = _expire_at(time.time())
        try:
            if succeeded:
                retry_when_busy(lambda: self.db[THROTTLE].update_one(
                    {"_id": f"account|{email}"}, {"$set": {"failures": 0, "expireAt": expire}}))
                return
            for key in (f"address|{address}", f"account|{email}"):
                retry_when_busy(lambda k=key: self.db[THROTTLE].update_one(
                    {"_id": k}, {"$inc": {"failures": 1}, "$set": {"expireAt": expire}}))
        except PyMongoError:  # the check was counted at its claim: the limit holds all the same
            log.warning("a sign-in's result could not be counted", exc_info=True)

    def _claim(self, key: str, now: float, limit: int, window: float) -> int | None:
        """None when a check was claimed (its time: `now`); else the seconds until one may be."""
        collection = self.db[THROTTLE]
        for _ in range(ATTEMPTS):
            doc = retry_when_busy(lambda: collection.find_one({"_id": key})) or {}
            span = progressive_window(doc.get("failures", 0), limit, window)
            recent = sorted((t for t in doc.get("checks", []) if isinstance(t, float) and t > now - span),
                            reverse=True)[:limit]
            if len(recent) >= limit:
                return max(1, int(recent[limit - 1] + span - now + 0.999))
            fields = {"checks": [now, *recent[: limit - 1]], "expireAt": _expire_at(now)}
            if self._write(key, doc, fields):
                return None
        return 1  # contended beyond reason: come back in a second

    def _write(self, key: str, seen: dict, fields: dict) -> bool:
        """Write `fields` if the key's document is still the one read (`seen`, {} for none)."""
        collection = self.db[THROTTLE]
        if not seen:
            try:
                retry_when_busy(lambda: collection.insert_one({"_id": key, "version": 1, "failures": 0, **fields}))
                return True
            except DuplicateKeyError:
                return False  # another request made it first
        change = {"$set": fields, "$inc": {"version": 1}}
        return retry_when_busy(lambda: collection.update_one({"_id": key, "version": seen.get("version")},
                                                             change)).modified_count == 1


def progressive_window(failures: int, limit: int, window: float) -> float:
    """The window `limit` checks must fit in after `failures` failures in a row."""
    doublings = max(0, failures // limit - 1)
    return min(window * 2 ** min(doublings, 16), max(MAX_WINDOW, window))


def _expire_at(now: float) -> datetime:
    return datetime.fromtimestamp(now + KEEP, UTC)
