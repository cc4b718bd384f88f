"""API keys in `api_keys`: who may call the API, and with which scope.

A key is shown once, when it is made; only its SHA-256 is kept (a key is 256 random bits,
so a fast hash is as safe as a slow one and costs nothing per request). `_id` is the key's
name, which is never reused: audit entries name the key (`api:NAME`), so a name stands for
one key for good. A revoked key stays, with when and by whom.
"""

import hashlib
import re
import secrets
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass
from datetime import UTC, datetime

from pymongo import ASCENDING
from pymongo.database import Database
from pymongo.errors import DuplicateKeyError

from core.storage import retry_when_busy

KEYS = "api_keys"
SCOPES = ("read", "write")  # read: the GET routes; write: every route
PREFIX = "pur_"
NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
SHOWN_PREFIX = 12  # characters of a key kept in clear, so people can tell their keys apart


class ApiKeyError(ValueError):
    """A key could not be made or revoked; the message says why."""


@dataclass(frozen=True)
class ApiKey:
    name: str
    scope: str
    prefix: str
    created_at: datetime
    created_by: str | None
    revoked_at: datetime | None
    revoked_by: str | None

    @property
    def active(self) -> bool:
        return self.revoked_at is None

    def allows(self, method: str) -> bool:
        """Whether this key's scope opens a request with `method`."""
        return self.active and (self.scope == "write" or method in ("GET", "HEAD", "OPTIONS"))


def digest(secret: str) -> str:
    return hashlib.sha256(secret.encode("utf-8", "surrogatepass")).hexdigest()


def ensure_key_indexes(db: Database) -> None:
    retry_when_busy(lambda: db[KEYS].create_index([("hash", ASCENDING)]))


def check_name(name) -> str:
    if not isinstance(name, str) or not NAME.fullmatch(name):
        raise ApiKeyError("a key name is 1 to 64 letters, digits, '.', '_' or '-', starting with a letter or digit; "
                        f"got {name!r}")
    return name


def create_key(db: Database, name: str, scope: str, created_by: str | None = None) -> tuple[ApiKey, str]:
    """Make a key; return it and its secret, which is not kept and cannot be shown again."""
    name = check_name(name)
    if scope not in SCOPES:
        raise ApiKeyError(f"scope must be one of {list(SCOPES)}, got {scope!r}")
    secret = PREFIX + secrets.token_urlsafe(32)
    doc = {"_id": name, "hash": digest(secret), "scope": scope, "prefix": secret[:SHOWN_PREFIX],
           "createdAt": datetime.now(UTC).replace(microsecond=0), "createdBy": created_by,
           "revokedAt": None, "revokedBy": None}
    try:
        retry_when_busy(lambda: db[KEYS].insert_one(doc))
    except DuplicateKeyError:
        # unless it is this very key: an insert that committed, then a retry of it
        if retry_when_busy(lambda: db[KEYS].find_one({"_id": name}, {"hash": 1})).get("hash") != doc["hash"]:
            raise ApiKeyError(f"a key named {name!r} exists already (names are never reused, revoked keys' "
                              "included)") from None
    return _key(doc), secret


def list_keys(db: Database) -> list[ApiKey]:
    """Every key, active first, then by name."""
    keys = [_key(doc) for doc in retry_when_busy(lambda: list(db[KEYS].find({}, {"hash": 0})))]
    return sorted(keys, key=lambda k: (not k.active, k.name.lower()))


def revoke_key(db: Database, name: str, revoked_by: str | None = None) -> ApiKey:
    """Refuse the key from now on (in every process within KeyCache.max_age seconds)."""
    name = check_name(name)
    now = datetime.now(UTC).replace(microsecond=0)
    result = retry_when_busy(lambda: db[KEYS].update_one({"_id": name, "revokedAt": None},
                                                         {"$set": {"revokedAt": now, "revokedBy": revoked_by}}))
    if result.modified_count == 0:
        doc = retry_when_busy(lambda: db[KEYS].find_one({"_id": name}, {"hash": 0}))
        if doc is None:
            raise ApiKeyError(f"no key named {name!r}")
        raise ApiKeyError(f"the key {name!r} was revoked already, on {doc['revokedAt']:%Y-%m-%d %H:%M} UTC")
    return _key(retry_when_busy(lambda: db[KEYS].find_one({"_id": name}, {"hash": 0})))


def _key(doc: dict) -> ApiKey:
    return ApiKey(name=doc["_id"], scope=doc["scope"], prefix=doc.get("prefix", ""), created_at=doc["createdAt"],
                  created_by=doc.get("createdBy"), revoked_at=doc.get("revokedAt"), revoked_by=doc.get("revokedBy"))


class KeyCache:
    """Keys by their hash, each read from the database at most every `max_age` seconds, so a
    check on every lesson page costs no read, and a revoked key is refused within `max_age`
    in every process. Unknown keys are remembered too (a client retrying a wrong key costs
    one read per `max_age`), in a bounded cache."""

    def __init__(self, max_age: float = 2.0, size: int = 10_000):
        self._entries: OrderedDict[tuple, tuple[float, ApiKey | None]] = OrderedDict()
        self._lock = threading.Lock()
        self.max_age, self.size = max_age, size

    def find(self, db: Database, secret: str) -> ApiKey | None:
        """The active key whose secret this is, or None."""
        key = (db.name, digest(secret))
        with self._lock:
            read_at, known = self._entries.get(key, (None, None))
        if read_at is None or time.monotonic() - read_at >= self.max_age:
            doc = retry_when_busy(lambda: db[KEYS].find_one({"hash": key[1]}, {"hash": 0}))
            known = _key(doc) if doc else None
            with self._lock:
                self._entries[key] = (time.monotonic(), known)
                self._entries.move_to_end(key)
                while len(self._entries) > self.size:
                    self._entries.popitem(last=False)
        return known if known is not None and known.active else None
