"""Staff accounts in `staff_accounts`: who may sign in to the dashboard, and with which role.

`_id` is the lower-cased email, so a lookup is a point read and two accounts cannot share an
email. Passwords are kept only as werkzeug scrypt hashes. `sessionToken` changes when the
password changes or the account is disabled, and every sign-in of the account is deleted
(`dashboard.sign_ins`), which ends every session signed in before.

A change of role or of the disabled flag commits with its entry in `staff_changes` (who,
when, what), in one transaction, and never leaves the system without an enabled admin.
"""

import contextlib
import re
import secrets
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass, replace
from datetime import UTC, datetime

import pymongo
from bson import ObjectId
from pymongo.database import Database
from pymongo.errors import DuplicateKeyError, PyMongoError
from werkzeug.security import check_password_hash, generate_password_hash

from core.storage import deployment, retry_when_busy, run_in_transaction, utc
from dashboard import sign_ins
from dashboard.sign_ins import SessionPolicy

ACCOUNTS = "staff_accounts"
CHANGES = "staff_changes"  # one entry per account made, disabled, enabled or given a role
ENABLED_ADMINS = {"role": "admin", "disabled": {"$ne": True}}
ID_BATCH = 200  # sign-ins re-read by one query
ROLES = ("viewer", "admin")
MIN_PASSWORD = 10
MAX_PASSWORD = 200
EMAIL = re.compile(r"^[^@\s]{1,64}@[^@\s]{1,190}\.[^@\s.]{2,63}$")
# checked when the email is unknown, so both cases take the same time
_DUMMY_HASH = generate_password_hash("not a password, only the time a check takes", method="scrypt")


class AccountError(ValueError):
    """An account could not be created or changed; the message says why."""


class LastAdminError(AccountError):
    """The change would leave no enabled admin."""


@dataclass(frozen=True)
class Account:
    email: str
    name: str
    role: str
    disabled: bool
    session_token: str
    last_sign_in: datetime | None
    session_id: str = ""  # the sign-in this request came with (dashboard.sign_ins)
    created_at: datetime | None = None

    @property
    def is_admin(self) -> bool:
        return self.role == "admin" and not self.disabled

    # Flask-Login's user protocol
    @property
    def is_authenticated(self) -> bool:
        return not self.disabled

    @property
    def is_active(self) -> bool:
        return not self.disabled

    @property
    def is_anonymous(self) -> bool:
        return False

    def get_id(self) -> str:
        return self.session_id


def normalise_email(email) -> str:
    if not isinstance(email, str) or not EMAIL.match(email.strip()):
        raise AccountError(f"not an email address: {email!r}")
    return email.strip().lower()


def check_password(password) -> str:
    if not isinstance(password, str) or not MIN_PASSWORD <= len(password) <= MAX_PASSWORD:
        raise AccountError(f"a password needs {MIN_PASSWORD} to {MAX_PASSWORD} characters")
    return password


def generate_password() -> str:
    return secrets.token_urlsafe(12)


def check_role(role) -> str:
    if role not in ROLES:
        raise AccountError(f"role must be {' or '.join(ROLES)}, got {role!r}")
    return role


def create_account(db: Database, email: str, role: str, password: str, name: str | None = None,
                   actor: str | None = None) -> Account:
    """Add an account; refuse a taken email, an unknown role or a short password."""
    email = normalise_email(email)
    doc = {
        "_id": email,
        "name": (name or email.split("@")[0]).strip()[:200],
        "role": check_role(role),
        "passwordHash": generate_password_hash(check_password(password), method="scrypt"),
        "disabled": False,
        "sessionToken": secrets.token_urlsafe(16),
        "createdAt": datetime.now(UTC).replace(microsecond=0),  # as it reads back (BSON keeps milliseconds)
        "createdBy": actor,
        "lastSignIn": None,
    }

    def work(session):
        db[ACCOUNTS].insert_one(doc, session=session)
        db[CHANGES].insert_one({"_id": ObjectId(), "at": datetime.now(UTC), "actor": actor, "account": email,
                                "action": "create", "role": role}, session=session)

    try:
        run_in_transaction(db, work)
    except DuplicateKeyError:
        raise AccountError(f"an account for {email} exists already") from None
    return _account(doc)


def get_account(db: Database, email: str) -> Account | None:
    try:
        email = normalise_email(email)
    except AccountError:
        return None
    doc = retry_when_busy(lambda: db[ACCOUNTS].find_one({"_id": email}))
    return _account(doc) if doc else None


class SessionCache:
    """Sign-ins checked against their account, read from the database at most every `max_age` s.

    A poll every second from every tab need not read its sign-in and account each time: a
    sign-in is re-read once it is `max_age` old, so a sign-out, a disabled account or a
    changed password ends a session everywhere within `max_age`; and the re-read takes every
    sign-in of this process that is as old and in use, two queries for them all (a hundred
    tabs, each signed in, cost two reads every `max_age`, not two hundred). While the database
    cannot be reached or is slow to answer, the last answer stands, for `stale_limit` s at
    most: the page can say that the database is down instead of failing to sign in, and polls
    behind a queue of writers are not failed for want of this read.
    """

    def __init__(self, max_age: float = 5.0, size: int = 10_000, timeout: float = 0.5, stale_limit: float = 60.0,
                 policy: SessionPolicy | None = None):
        # (deployment, session id) -> (last read, last attempt, last use, (sign-in, account) or None)
        self._entries: OrderedDict[tuple, list] = OrderedDict()
        self._lock = threading.Lock()  # guards _entries
        self._refreshing = threading.Lock()  # one re-read at a time: the others then find it done
        self.max_age, self.size, self.timeout, self.stale_limit = max_age, size, timeout, stale_limit
        self.policy = policy or SessionPolicy()

    def account(self, db: Database, session_id: str) -> Account | None:
        """The account signed in as `session_id`, if that sign-in is current and its account enabled."""
        known = self._known(db, session_id)
        if known is None:
            return None
        sign_in, account = known
        if account is None or account.disabled or not secrets.compare_digest(account.session_token,
                                                                             sign_in.get("accountToken", "")):
            return None
        if not sign_ins.is_current(sign_in, account.role, self.policy, datetime.now(UTC)):
            return None
        return replace(account, session_id=session_id)

    def sign_in(self, db: Database, account: Account) -> Account:
        """Start a sign-in of `account` (just verified); the account as signed in."""
        doc = sign_ins.start(db, account.email, account.session_token, self.policy)
        self._store((deployment(db), doc["_id"]), time.monotonic(), (doc, account))  # its polls need not read it
        return replace(account, session_id=doc["_id"])

    def sign_out(self, db: Database, session_id: str) -> None:
        """End the sign-in here at once; other processes see it within `max_age`."""
        self._store((deployment(db), session_id), time.monotonic(), None)
        sign_ins.end(db, session_id)

    def touch(self, db: Database, account: Account) -> None:
        """Note activity on the sign-in (a write at most every minute, see SessionPolicy.touch_every)."""
        key = (deployment(db), account.session_id)
        with self._lock:
            entry = self._entries.get(key)
            known = entry[3] if entry else None
        if known is None:
            return
        now = datetime.now(UTC)
        last = sign_ins.utc(known[0].get("lastActive"))
        if last is not None and now - last < self.policy.touch_every(account.role):
            return
        try:
            sign_ins.touch(db, account.session_id, now)
        except PyMongoError:
            return  # activity not noted: at worst the sign-in ends a minute early
        with self._lock:
            if self._entries.get(key) is entry:
                entry[3] = ({**known[0], "lastActive": now}, known[1])

    def _known(self, db: Database, session_id: str):
        key = (deployment(db), session_id)
        entry = self._fresh(key)
        if entry is not None:
            return entry[3]
        with self._refreshing:
            entry = self._fresh(key)  # another thread's re-read may have taken it
            if entry is not None:
                return entry[3]
            return self._refresh(db, key)

    def _fresh(self, key: tuple) -> list | None:
        """The entry of `key` if read less than `max_age` ago (noting its use), else None."""
        now = time.monotonic()
        with self._lock:
            entry = self._entries.get(key)
            if entry is not None:
                entry[2] = now
                if now - entry[1] < self.max_age:
                    return entry
        return None

    def _refresh(self, db: Database, key: tuple):
        """Re-read `key` and every other sign-in of its deployment that is as stale and in use."""
        now = time.monotonic()
        with self._lock:
            entry = self._entries.get(key)
            stale = [k for k, (_, tried, used, _) in self._entries.items()
                     if k[0] == key[0] and k != key and now - tried >= self.max_age and now - used < self.stale_limit]
        ids = [key[1], *(k[1] for k in stale[: ID_BATCH - 1])]
        # a read that fails may fall back on the last answer for `stale_limit` s: meanwhile
        # each attempt waits at most `timeout` (a read may queue behind many writers), and
        # the next one comes `max_age` later, not on every poll of every tab
        may_fall_back = entry is not None and now - entry[0] < self.stale_limit
        try:
            with pymongo.timeout(self.timeout) if may_fall_back else contextlib.nullcontext():
                found = self._read(db, ids)
        except PyMongoError:  # DatabaseUnavailableError too
            with self._lock:
                for k in [key, *stale]:
                    if k in self._entries:
                        self._entries[k][1] = now  # tried: the next attempt comes max_age later
            if not may_fall_back:
                raise
            return entry[3]
        for session_id in ids:
            self._store((key[0], session_id), now, found.get(session_id))
        return found.get(key[1])

    @staticmethod
    def _read(db: Database, session_ids: list[str]) -> dict[str, tuple[dict, Account | None]]:
        """session id -> (sign-in, its account) for those of `session_ids` that exist: two reads."""
        docs = sign_ins.read_many(db, session_ids)
        emails = list({doc["email"] for doc in docs})
        accounts = {doc["_id"]: _account(doc) for doc in retry_when_busy(
            lambda: list(db[ACCOUNTS].find({"_id": {"$in": emails}})))} if emails else {}
        return {doc["_id"]: (doc, accounts.get(doc["email"])) for doc in docs}

    def _store(self, key: tuple, read_at: float, known) -> None:
        with self._lock:
            entry = self._entries.get(key)
            used = entry[2] if entry else read_at
            self._entries[key] = [read_at, read_at, used, known]
            self._entries.move_to_end(key)
            while len(self._entries) > self.size:
                self._entries.popitem(last=False)


def verify(db: Database, email, password) -> Account | None:
    """The account when email and password match an enabled account, else None."""
    doc = None
    if isinstance(email, str) and isinstance(password, str) and len(password) <= MAX_PASSWORD:
        try:
            doc = retry_when_busy(lambda: db[ACCOUNTS].find_one({"_id": normalise_email(email)}))
        except AccountError:
            doc = None
    valid = check_password_hash(doc["passwordHash"] if doc else _DUMMY_HASH, password if isinstance(password, str) else "")
    if not doc or not valid or doc.get("disabled"):
        return None
    now = datetime.now(UTC)
    retry_when_busy(lambda: db[ACCOUNTS].update_one({"_id": doc["_id"]}, {"$set": {"lastSignIn": now}}))
    return _account({**doc, "lastSignIn": now})


def set_password(db: Database, email: str, password: str) -> None:
    """Replace the password; every open session of the account ends."""
    email = normalise_email(email)
    fields = {"passwordHash": generate_password_hash(check_password(password), method="scrypt"),
              "sessionToken": secrets.token_urlsafe(16)}
    if retry_when_busy(lambda: db[ACCOUNTS].update_one({"_id": email}, {"$set": fields})).matched_count == 0:
        raise AccountError(f"no account for {email}")
    sign_ins.end_all(db, email)  # the new token ends them too; this also clears them away


def list_accounts(db: Database) -> list[Account]:
    """Every account, by email."""
    return [_account(doc) for doc in retry_when_busy(
        lambda: list(utc(db)[ACCOUNTS].find({}, {"passwordHash": 0}).sort("_id", 1)))]


def recent_changes(db: Database, limit: int = 20) -> list[dict]:
    """The last `limit` changes to accounts, newest first."""
    return retry_when_busy(lambda: list(utc(db)[CHANGES].find().sort([("at", -1), ("_id", -1)]).limit(limit)))


def disable_account(db: Database, email: str, actor: str | None = None) -> bool:
    """Refuse further sign-ins and end every open session; False when disabled already."""
    email = normalise_email(email)
    changed = _change(db, email, "disable", {"disabled": True, "sessionToken": secrets.token_urlsafe(16)}, actor)
    if changed:  # the new token ends them too; this also clears them away
        sign_ins.end_all(db, email)
    return changed


def enable_account(db: Database, email: str, actor: str | None = None) -> bool:
    """Let a disabled account sign in again (with its password); False when enabled already."""
    return _change(db, normalise_email(email), "enable", {"disabled": False}, actor)


def set_role(db: Database, email: str, role: str, actor: str | None = None) -> bool:
    """Give the account `role`; False when it has it already."""
    return _change(db, normalise_email(email), "set-role", {"role": check_role(role)}, actor)


def _change(db: Database, email: str, action: str, fields: dict, actor: str | None) -> bool:
    """Set `fields` on the account and record the change, in one transaction; False when nothing changes.

    A change that takes an enabled admin away (LastAdminError when it is the last) first writes every
    enabled admin's account: two at once, each sure the other's admin stays, write the same documents,
    so MongoDB starts one again (a write conflict), and that one sees the other's change.
    """
    def work(session):
        doc = db[ACCOUNTS].find_one({"_id": email}, session=session)
        if doc is None:
            raise AccountError(f"no account for {email}")
        before = (doc.get("role"), bool(doc.get("disabled")))
        after = (fields.get("role", before[0]), fields.get("disabled", before[1]))
        if after == before:
            return False
        if before == ("admin", False):
            db[ACCOUNTS].update_many(ENABLED_ADMINS, {"$inc": {"adminGuard": 1}}, session=session)
            if db[ACCOUNTS].count_documents({**ENABLED_ADMINS, "_id": {"$ne": email}}, session=session) == 0:
                raise LastAdminError(f"{email} is the last enabled admin: make another account an admin first")
        db[ACCOUNTS].update_one({"_id": email}, {"$set": fields}, session=session)
        db[CHANGES].insert_one({"_id": ObjectId(), "at": datetime.now(UTC), "actor": actor, "account": email,
                                "action": action, "role": after[0], "before": before[0]}, session=session)
        return True

    return run_in_transaction(db, work)


def _account(doc: dict) -> Account:
    return Account(email=doc["_id"], name=doc.get("name") or doc["_id"], role=doc.get("role", "viewer"),
                   disabled=bool(doc.get("disabled")), session_token=doc.get("sessionToken", ""),
                   last_sign_in=doc.get("lastSignIn"), created_at=doc.get("createdAt"))


class StaffNames:
    """Staff accounts' names by email, per database, re-read at most every `max_age` seconds,
    so tables can show who acted by name as well as by the email core records."""

    def __init__(self, max_age: float = 30.0):
        self._names: dict[tuple, tuple[float, dict[str, str]]] = {}  # database -> (read at, names)
        self._lock = threading.Lock()
        self.max_age = max_age

    def label(self, db: Database, actor) -> str:
        """"Ann Admin (ann@example.com)" for a staff email, anything else as it is."""
        if not isinstance(actor, str) or not actor:
            return actor or ""
        names = self._current(db)
        name = names.get(actor.strip().lower())
        return f"{name} ({actor})" if name and name != actor else actor

    def _current(self, db: Database) -> dict[str, str]:
        key = deployment(db)
        with self._lock:
            read_at, names = self._names.get(key, (float("-inf"), {}))
        if time.monotonic() - read_at < self.max_age:
            return names
        try:
            docs = retry_when_busy(lambda: list(db[ACCOUNTS].find({}, {"name": 1})))
        except PyMongoError:
            return names  # the emails alone are shown
        names = {doc["_id"]: doc.get("name") or doc["_id"] for doc in docs}
        with self._lock:
            self._names[key] = (time.monotonic(), names)
        return names


STAFF_NAMES = StaffNames()
