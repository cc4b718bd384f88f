"""Customers (the `users` collection) as admin pages see them: one by id, many by email,
the type-ahead search, and the users whose name or email holds a text (the audit log's filter)."""

import bisect
import functools
import itertools
import logging
import operator
import threading
import time

from bson import ObjectId
from pymongo.database import Database
from pymongo.errors import InvalidOperation

from core.errors import UserNotFoundError, ValidationError
from core.items import ItemRef
from core.storage.caches import caches_of
from core.storage.documents import ID_BATCH, utc
from core.storage.retry import retry_when_busy
from core.storage.schema import KINDS, USERS
from core.validation import to_object_id

MAX_RESULTS = 50
MAX_NEEDLE = 254
REFRESH_SECONDS = 5.0
REBUILD_SECONDS = 600.0
FIRST_BUILD_TIMEOUT = 60.0
MISS_REFRESH_SECONDS = 0.25
LAST_CHARACTER = "\U0010ffff"  # sorts after every character a key can go on with
log = logging.getLogger(__name__)


def get_customer(db: Database, user_id) -> dict:
    """The user document (name, email, the arrays of owned items, ...) by id."""
    user = to_object_id(user_id, "user_id")
    doc = retry_when_busy(lambda: utc(db)[USERS].find_one({"_id": user}))
    if doc is None:
        raise UserNotFoundError(f"no user with id {user}")
    return doc


def owned_items(user: dict) -> list[ItemRef]:
    """Every item a user document's arrays hold, by kind in table order (an array that is
    missing, null or not a list holds nothing; an entry that is not an ObjectId is skipped)."""
    return [ItemRef(kind, item) for kind, spec in KINDS.items()
            for item in (user.get(spec.array) if isinstance(user.get(spec.array), list) else ())
            if isinstance(item, ObjectId)]


def email_index(db: Database) -> dict[str, ObjectId]:
    """Every user's lower-cased email -> id, in one read of every user (users_by_email reads
    only the emails it is given, and falls back on this while the customer index is not ready)."""
    docs = retry_when_busy(lambda: list(utc(db)[USERS].find({}, {"email": 1})))
    index = {}
    for doc in docs:
        email = doc.get("email")
        if isinstance(email, str) and email.strip():
            index.setdefault(email.strip().lower(), doc["_id"])
    return index


def users_by_email(db: Database, emails) -> dict[str, ObjectId]:
    """Stripped, lower-cased email -> user id, for these emails only (a bulk upload's).

    Found in the process's CustomerIndex (no read of every user: 11 s at 33,000 users on the
    embedded engine), then each checked against its user document, so an index older than an
    email change never names the wrong user; the emails not found get one refresh of the
    index (users added since). An email no user has is left out. Where the index is not
    ready in time, every user's email is read instead (email_index). With several users of
    one email, the oldest id answers, as in email_index.
    """
    wanted = {email.strip().lower() for email in emails if isinstance(email, str) and email.strip()}
    if not wanted:
        return {}
    db = utc(db)
    index = _index(db)
    if not index.wait_ready():
        everyone = email_index(db)
        return {email: everyone[email] for email in wanted if email in everyone}
    found = _confirmed(db, index.candidates(wanted))
    if wanted - found.keys():
        index.refresh_now()
        found |= _confirmed(db, index.candidates(wanted - found.keys()))
    return found


def _confirmed(db: Database, candidates: dict[str, list[ObjectId]]) -> dict[str, ObjectId]:
    """The candidates whose user document holds that email now."""
    ids = sorted({user for users in candidates.values() for user in users})
    emails = {}
    for start in range(0, len(ids), ID_BATCH):
        part = ids[start : start + ID_BATCH]
        for doc in retry_when_busy(lambda part=part: list(db[USERS].find({"_id": {"$in": part}}, {"email": 1}))):
            if isinstance(doc.get("email"), str):
                emails[doc["_id"]] = doc["email"].strip().lower()
    return {email: next(user for user in users if emails.get(user) == email)
            for email, users in candidates.items() if any(emails.get(user) == email for user in users)}


def find_customers(db: Database, text, limit: int = 10) -> list[dict]:
    """Users each word of `text` starts a word of: of the email, its domain (`example.com`,
    `@example.com`), the name, or the id; in any order and any case. [{_id, name, email}], at
    most `limit`, matches of a name, an email or an id before those of a domain only."""
    needle = _needle(text)
    if isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= MAX_RESULTS:
        raise ValidationError(f"limit must be an integer between 1 and {MAX_RESULTS}, got {limit!r}")
    if not needle:
        return []
    found = _index(db).answer(lambda entries: entries.lookup(needle.split(), limit))
    if not found and ObjectId.is_valid(needle):  # a user the index has not seen yet
        doc = retry_when_busy(lambda: utc(db)[USERS].find_one({"_id": ObjectId(needle)}, {"name": 1, "email": 1}))
        found = [doc] if doc else []
    return found


def customers_containing(db: Database, text, limit: int) -> list[ObjectId]:
    """Ids of users whose name or email holds each word of `text` anywhere (any case, taken
    literally, never as a pattern), at most `limit`; answered by the index, not a scan."""
    words = _needle(text).split()
    if isinstance(limit, bool) or not isinstance(limit, int) or limit < 1:
        raise ValidationError(f"limit must be a positive integer, got {limit!r}")
    return _index(db).answer(lambda entries: entries.containing(words, limit)) if words else []


def _needle(text) -> str:
    if not isinstance(text, str):
        raise ValidationError(f"search text must be a string, got {text!r}")
    return " ".join(text.split()).casefold()[:MAX_NEEDLE]


class _Entries:
    """One reading of every user, never changed once published: sorted search keys, and per user
    what the other words of a search and customers_containing check."""

    def __init__(self, other: "_Entries | None" = None):
        self.keys: list[tuple[str, ObjectId]] = list(other.keys) if other else []  # email, name words, id
        self.domains: list[tuple[str, ObjectId]] = list(other.domains) if other else []  # domain_keys
        self.people: dict[ObjectId, dict] = dict(other.people) if other else {}  # {_id, name, email}
        self.words: dict[ObjectId, tuple[str, ...]] = dict(other.words) if other else {}  # keys and domains
        self.texts: dict[ObjectId, str] = dict(other.texts) if other else {}  # "name\nemail", casefolded

    def add(self, doc: dict) -> None:
        user, email = doc["_id"], str(doc.get("email") or "").strip().casefold()
        self.people[user] = {"_id": user, "name": doc.get("name"), "email": doc.get("email")}
        keys, domains = search_keys(doc), domain_keys(email)
        self.keys += [(key, user) for key in keys]
        self.domains += [(key, user) for key in domains]
        self.words[user] = (*keys, *domains)
        self.texts[user] = f"{' '.join(str(doc.get('name') or '').split()).casefold()}\n{email}"

    def lookup(self, words: list[str], limit: int) -> list[dict]:
        """The users every word starts a key of; candidates come from the word with the fewest keys."""
        first, *others = sorted(words, key=self._span)
        found = {}
        for rank, user in self._starting_with(first):
            if user not in found and all(any(key.startswith(w) for key in self.words[user]) for w in others):
                found[user] = rank
                if len(found) == limit:
                    break
        people = self.people
        return [people[user] for user in sorted(found, key=lambda user: (
            found[user], str(people[user].get("name") or "").casefold(), str(user)))]

    def containing(self, words: list[str], limit: int) -> list[ObjectId]:
        found = (user for user, text in self.texts.items() if all(word in text for word in words))
        return list(itertools.islice(found, limit))

    def _starting_with(self, word: str):
        """(0, user) for each key of a name, an email or an id that starts with `word`, then (1, user) for domains."""
        for rank, ranked in enumerate((self.keys, self.domains)):
            for index in range(bisect.bisect_left(ranked, (word,)), len(ranked)):
                key, user = ranked[index]
                if not key.startswith(word):
                    break
                yield rank, user

    def _span(self, word: str) -> int:
        return sum(bisect.bisect_left(ranked, (word + LAST_CHARACTER,)) - bisect.bisect_left(ranked, (word,))
                   for ranked in (self.keys, self.domains))


class CustomerIndex:
    """Every user's search keys (email, its domains, each word of the name, the id) in sorted
    lists, and their names and emails, kept in the process.

    The embedded engine scans `users` for any query but one by `_id` that hits (about 0.6 s
    at 100,000 users, 7 s for a regex), so a type-ahead cannot query per keystroke. The
    index is read in one pass, in a background thread; users added since (larger ObjectIds)
    are read by an `_id` range every REFRESH_SECONDS, and the whole index again every
    REBUILD_SECONDS for renamed users. Searches answer from the index they find; only the
    very first waits for it. A miss only costs freshness.
    """

    def __init__(self, db: Database):
        self._db = utc(db)
        self._lock = threading.Lock()
        self._entries = _Entries()
        self._last_id: ObjectId | None = None
        self._refreshed = self._rebuilt = 0.0
        self._ready = threading.Event()
        self._loading: threading.Thread | None = None

    def answer(self, question):
        """`question(entries)` of the current entries; on an empty answer, again after reading the newcomers."""
        self.keep_fresh()
        self._ready.wait(FIRST_BUILD_TIMEOUT)
        found = question(self._entries)
        if not found and time.monotonic() - self._refreshed > MISS_REFRESH_SECONDS:
            # perhaps a user added a moment ago: read the newcomers now (at most every few seconds)
            self._refresh_now()
            found = question(self._entries)
        return found

    def wait_ready(self) -> bool:
        """Start the first build (or a due refresh) and wait for the first build; False if it took too long."""
        self.keep_fresh()
        return self._ready.wait(FIRST_BUILD_TIMEOUT)

    def refresh_now(self) -> None:
        """Read the users added since the last read, now (or wait for the read in progress)."""
        self._refresh_now()

    def candidates(self, emails) -> dict[str, list[ObjectId]]:
        """Lower-cased email -> the ids whose search keys hold it, oldest first (to be checked:
        the index may be older than a change of email)."""
        keys = self._entries.keys
        found = {}
        for email in emails:
            needle = email.casefold()
            users = []
            for index in range(bisect.bisect_left(keys, (needle,)), len(keys)):
                key, user = keys[index]
                if key != needle:
                    break
                users.append(user)
            if users:
                found[email] = sorted(users)
        return found

    def keep_fresh(self) -> None:
        """Start a refresh (or rebuild) in the background when one is due and none runs."""
        now = time.monotonic()
        rebuild = now - self._rebuilt > REBUILD_SECONDS
        if not rebuild and now - self._refreshed <= REFRESH_SECONDS:
            return
        with self._lock:
            if self._loading is not None and self._loading.is_alive():
                return
            self._loading = threading.Thread(target=self._load_logged, args=(rebuild,), name="customer-index",
                                             daemon=True)
            self._loading.start()

    def _refresh_now(self) -> None:
        with self._lock:
            running = self._loading if self._loading is not None and self._loading.is_alive() else None
        if running is not None:
            running.join(FIRST_BUILD_TIMEOUT)
        else:
            self._load_logged(False)

    def _load_logged(self, rebuild: bool) -> None:
        try:
            self._load(rebuild=rebuild)
        except InvalidOperation:  # the client was closed: the process is ending (a command-line run)
            log.debug("customer index not read: the database connection is closed")
        except Exception:  # noqa: BLE001 - the next search tries again; the old index still answers
            log.warning("reading the customer index failed", exc_info=True)
            self._refreshed = time.monotonic()

    def _load(self, *, rebuild: bool) -> None:
        rebuild = rebuild or self._last_id is None
        query = {} if rebuild else {"_id": {"$gt": self._last_id}}
        docs = retry_when_busy(lambda: list(self._db[USERS].find(query, {"name": 1, "email": 1})))
        entries = self._entries
        if docs or rebuild:  # a new reading, published whole, so a search never sees half of one
            entries = _Entries(None if rebuild else entries)
            for doc in docs:
                entries.add(doc)
            # by key alone: bisecting by (word,) never looks further, and comparing ObjectIds
            # (Python code) made sorting ten thousand users of one domain or first name slow
            entries.keys.sort(key=operator.itemgetter(0))
            entries.domains.sort(key=operator.itemgetter(0))
        ids = [doc["_id"] for doc in docs if isinstance(doc["_id"], ObjectId)]
        last = max([*ids, *([self._last_id] if self._last_id and not rebuild else [])], default=None)
        with self._lock:
            self._entries, self._last_id = entries, last
            self._refreshed = time.monotonic()
            if rebuild:
                self._rebuilt = self._refreshed
        self._ready.set()


def search_keys(doc: dict) -> set[str]:
    """What a user can be found by: the email, each word of the name, the id."""
    email = str(doc.get("email") or "").strip().casefold()
    return {key for key in (email, *str(doc.get("name") or "").casefold().split(), str(doc["_id"])) if key}


def domain_keys(email: str) -> frozenset[str]:
    """An email's domain, as `example.com` and `@example.com`, and each shorter domain it ends
    with but a bare top level (`ada@mail.example.com` -> `example.com` as well)."""
    local, at, domain = email.rpartition("@")
    return _domain_keys(domain) if local and at and domain else frozenset()


@functools.lru_cache(maxsize=4096)  # few domains serve many users, who then share these strings
def _domain_keys(domain: str) -> frozenset[str]:
    parts = domain.split(".")
    return frozenset({"@" + domain, *(".".join(parts[i:]) for i in range(max(len(parts) - 1, 1)))})


def warm_customer_index(db: Database) -> None:
    """Build the index of `db` now, so the first search finds it ready."""
    _index(db).keep_fresh()


def _index(db: Database) -> CustomerIndex:
    """The customer index of `db` in this process (one of the database's caches)."""
    return caches_of(db).slot("customer index", lambda: CustomerIndex(db))
