"""Customers (the `users` collection) as admin pages see them: one by id, many by email,
and the type-ahead search."""

import bisect
import itertools
import threading
import time

from bson import ObjectId
from pymongo.database import Database

from core.errors import UserNotFoundError, ValidationError
from core.storage.documents import utc
from core.storage.retry import retry_when_busy
from core.storage.schema import USERS
from core.validation import to_object_id

MAX_RESULTS = 50
MAX_NEEDLE = 254
REFRESH_SECONDS = 5.0
REBUILD_SECONDS = 600.0


def get_customer(db: Database, user_id) -> dict:
    """The user document (name, email, purchasedCourses, purchasedTests, ...) by id."""
    user = to_object_id(user_id, "user_id")
    doc = retry_when_busy(lambda: utc(db)[USERS].find_one({"_id": user}))
    if doc is None:
        raise UserNotFoundError(f"no user with id {user}")
    return doc


def email_index(db: Database) -> dict[str, ObjectId]:
    """Every user's lower-cased email -> id, in one read: for resolving many emails at once
    (a bulk upload) where a query per email would each scan the embedded engine's users."""
    docs = retry_when_busy(lambda: list(utc(db)[USERS].find({}, {"email": 1})))
    index = {}
    for doc in docs:
        email = doc.get("email")
        if isinstance(email, str) and email.strip():
            index.setdefault(email.strip().lower(), doc["_id"])
    return index


def find_customers(db: Database, text, limit: int = 10) -> list[dict]:
    """Users whose email or a word of whose name starts with `text` (any case), or whose id
    it is: [{_id, name, email}], at most `limit`."""
    if not isinstance(text, str):
        raise ValidationError(f"search text must be a string, got {text!r}")
    if isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= MAX_RESULTS:
        raise ValidationError(f"limit must be an integer between 1 and {MAX_RESULTS}, got {limit!r}")
    needle = " ".join(text.split()).casefold()[:MAX_NEEDLE]
    if not needle:
        return []
    if ObjectId.is_valid(needle):
        doc = retry_when_busy(lambda: utc(db)[USERS].find_one({"_id": ObjectId(needle)}, {"name": 1, "email": 1}))
        return [doc] if doc else []
    return _INDEXES.get(db).search(needle, limit)


class CustomerIndex:
    """Every user's search keys (email, each word of the name, the whole name) in a sorted list.

    The embedded engine scans `users` for any query but one by `_id` (about 0.6 s at 100,000
    users, 7 s for a regex), so a type-ahead cannot query per keystroke. The index is read
    once, in one pass, and kept in the process; users added since (their ObjectIds are
    larger) are read by an `_id` range every REFRESH_SECONDS, and the whole index is read
    again every REBUILD_SECONDS for renamed users. A miss only costs freshness.
    """

    def __init__(self, db: Database):
        self._db = utc(db)
        self._lock = threading.Lock()
        self._keys: list[tuple[str, ObjectId]] = []
        self._people: dict[ObjectId, dict] = {}
        self._last_id: ObjectId | None = None
        self._refreshed = self._rebuilt = 0.0

    def search(self, needle: str, limit: int) -> list[dict]:
        self._keep_fresh()
        with self._lock:
            keys, people = self._keys, self._people
        found, start = {}, bisect.bisect_left(keys, (needle,))
        for key, user in itertools.islice(keys, start, None):
            if not key.startswith(needle):
                break
            found.setdefault(user, people[user])
            if len(found) == limit:
                break
        return sorted(found.values(), key=lambda doc: (str(doc.get("name") or "").casefold(), str(doc["_id"])))

    def _keep_fresh(self) -> None:
        now = time.monotonic()
        if now - self._rebuilt > REBUILD_SECONDS:
            self._load(rebuild=True)
        elif now - self._refreshed > REFRESH_SECONDS:
            self._load(rebuild=False)

    def _load(self, *, rebuild: bool) -> None:
        query = {} if rebuild or self._last_id is None else {"_id": {"$gt": self._last_id}}
        docs = retry_when_busy(lambda: list(self._db[USERS].find(query, {"name": 1, "email": 1})))
        with self._lock:
            people = {} if rebuild else dict(self._people)
            keys = [] if rebuild else list(self._keys)
            for doc in docs:
                people[doc["_id"]] = {"_id": doc["_id"], "name": doc.get("name"), "email": doc.get("email")}
                keys += [(key, doc["_id"]) for key in search_keys(doc)]
            keys.sort()
            ids = [doc["_id"] for doc in docs if isinstance(doc["_id"], ObjectId)]
            self._keys, self._people = keys, people
            self._last_id = max([*ids, *([self._last_id] if self._last_id and not rebuild else [])], default=None)
            self._refreshed = time.monotonic()
            if rebuild:
                self._rebuilt = self._refreshed


def search_keys(doc: dict) -> set[str]:
    """What a user can be found by: the email, each word of the name, the whole name."""
    email = str(doc.get("email") or "").strip().casefold()
    name = " ".join(str(doc.get("name") or "").split()).casefold()
    return {key for key in (email, name, *name.split()) if key}


class _Indexes:
    """One CustomerIndex per database (server address and name) in this process."""

    def __init__(self):
        self._lock = threading.Lock()
        self._by_db: dict[tuple, CustomerIndex] = {}

    def get(self, db: Database) -> CustomerIndex:
        key = (db.client.address, db.name)
        with self._lock:
            if key not in self._by_db:
                self._by_db[key] = CustomerIndex(db)
            return self._by_db[key]


_INDEXES = _Indexes()
