"""Sign-ins kept server-side, in `staff_sessions`: one document per sign-in.

The session cookie carries only a sign-in's random `_id`. So a sign-out deletes the
document and the cookie is worth nothing from then on, here and in every other process
(each re-reads a sign-in at most every few seconds: `accounts.SessionCache`), even if it
was copied before; a restart changes nothing. A sign-in also ends when it has been idle
too long (per role), when it is older than the absolute lifetime, and when its account's
`sessionToken` changes (a new password, a disabled account).
"""

import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from pymongo import ASCENDING
from pymongo.database import Database

from core.storage import retry_when_busy

SESSIONS = "staff_sessions"


@dataclass(frozen=True)
class SessionPolicy:
    """How long a sign-in lasts: idle per role (SESSION_IDLE_MINUTES for admins,
    SESSION_IDLE_MINUTES_VIEWER for viewers), and at most `lifetime` (SESSION_MAX_DAYS)."""

    idle_admin: timedelta = timedelta(minutes=60)
    idle_viewer: timedelta = timedelta(hours=12)
    lifetime: timedelta = timedelta(days=7)

    def idle(self, role: str) -> timedelta:
        return self.idle_admin if role == "admin" else self.idle_viewer

    def touch_every(self, role: str) -> timedelta:
        """How stale `lastActive` may be: a write a minute at most, a tenth of the idle time for short ones."""
        return min(timedelta(minutes=1), self.idle(role) / 10)


def ensure_indexes(db: Database) -> None:
    retry_when_busy(lambda: db[SESSIONS].create_index([("email", ASCENDING)]))
    # MongoDB removes sign-ins past their lifetime by itself; every read checks it anyway
    retry_when_busy(lambda: db[SESSIONS].create_index([("expiresAt", ASCENDING)], expireAfterSeconds=0))


def start(db: Database, email: str, account_token: str, policy: SessionPolicy) -> dict:
    """A new sign-in of `email` (an account whose sessionToken is `account_token`); its document."""
    now = datetime.now(UTC)
    doc = {"_id": secrets.token_urlsafe(32), "email": email, "accountToken": account_token,
           "createdAt": now, "lastActive": now, "expiresAt": now + policy.lifetime}
    retry_when_busy(lambda: db[SESSIONS].insert_one(doc))
    return doc


def read_many(db: Database, session_ids: list[str]) -> list[dict]:
    """The sign-ins of these ids that exist."""
    wanted = [s for s in session_ids if isinstance(s, str) and 20 <= len(s) <= 100]
    return retry_when_busy(lambda: list(db[SESSIONS].find({"_id": {"$in": wanted}}))) if wanted else []


def touch(db: Database, session_id: str, now: datetime) -> None:
    retry_when_busy(lambda: db[SESSIONS].update_one({"_id": session_id}, {"$set": {"lastActive": now}}))


def end(db: Database, session_id: str) -> None:
    retry_when_busy(lambda: db[SESSIONS].delete_one({"_id": session_id}))


def end_all(db: Database, email: str) -> int:
    """End every sign-in of `email`; how many there were."""
    return retry_when_busy(lambda: db[SESSIONS].delete_many({"email": email})).deleted_count


def is_current(doc: dict, role: str, policy: SessionPolicy, now: datetime) -> bool:
    """Not past its lifetime, and not idle longer than the role allows."""
    expires, last = utc(doc.get("expiresAt")), utc(doc.get("lastActive"))
    return expires is not None and last is not None and now < expires and now - last <= policy.idle(role)


def utc(moment) -> datetime | None:
    if not isinstance(moment, datetime):
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)
