"""The record of each send (`report_sends`), one document per subscription and period, and the
lease (core.storage.lease) under which a process sends: how a period goes out once, whatever
the number of processes, restarts or crashes.

A send starts by claiming the record's lease with one compare-and-set, which also creates the
record the first time: of processes that try at once, one wins; the others find it held, or
sent. The holder draws the report, then talks to the mail server; just before DATA it notes
`phase: "delivering"` (renewing the lease: a holder that lost it stops there, having sent
nothing). After the server's answer it writes the outcome and gives the lease back.

- sent: never sent again by the schedule ("Send now" sends again, on purpose);
- failed: tried again from `nextTryAt`, each wait twice the last (1 minute, 2, 4, ... up to
  6 hours), until MAX_ATTEMPTS, then "gave up"; the last error is kept and shown;
- a process that died before DATA leaves `phase: "preparing"`: once its lease runs out the
  next process tries again, as after a failure;
- a process that died during DATA leaves `phase: "delivering"`: the server may have taken the
  mail, so it is not sent again by itself (at most once); the page says so, and "Send now"
  sends it if wanted. The scheduled send's Message-ID is the same at every attempt, so a
  mail client that sees two shows one.
"""

from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

from bson import ObjectId
from pymongo import ASCENDING, DESCENDING
from pymongo.database import Database

from core.storage import retry_when_busy, utc
from core.storage.caches import caches_of
from core.storage.lease import Lease
from reports.schedule import Period
from reports.send import SendError

SENDS = "report_sends"
LEASE_SECONDS = 120.0  # renewed every 30 s while a report is drawn and sent
MAX_ATTEMPTS = 10
FIRST_WAIT = timedelta(minutes=1)
LONGEST_WAIT = timedelta(hours=6)
ERROR_LIMIT = 500


class LeaseLost(Exception):
    """Another process took the send over (this one stalled past its lease): stop before DATA."""


@dataclass(frozen=True)
class Outcome:
    """What one try did: "sent", "failed" (to be tried again), "gave up", "unknown" (the server
    may have taken it), or "busy" (another process holds it; or it was sent already)."""

    status: str
    key: str
    error: str = ""
    refused: dict | None = None


def record_key(subscription_id: ObjectId, period: Period) -> str:
    return f"{subscription_id}:{period.key}"


def wait_after(attempts: int) -> timedelta:
    """The wait before the next try after `attempts` failed ones."""
    return min(FIRST_WAIT * 2 ** (attempts - 1), LONGEST_WAIT)


def retryable(now: datetime) -> dict:
    """Records the schedule may take (its lease free besides): failed and due again, or left
    by a process that died before DATA."""
    return {"$or": [{"status": "failed", "nextTryAt": {"$lte": now}}, {"status": "sending", "phase": "preparing"}]}


def lease(db: Database, key: str) -> Lease:
    return Lease(db, SENDS, key, seconds=LEASE_SECONDS, token="lease.token", until="lease.until")


def attempt(db: Database, subscription, period: Period, trigger: str, now: datetime, send) -> Outcome:
    """Claim the record of (subscription, period) and, if won, `send(before_data, message_id)`
    (draws the report, delivers it, returns the refused recipients); record the outcome.

    `trigger` "schedule" takes a record only when new or retryable; "manual" takes it in any
    state (a second send on purpose), as long as nobody is sending it.
    """
    key = record_key(subscription.id, period)
    when = retryable(now) if trigger == "schedule" else {}
    fields = {"subscription": subscription.id, "name": subscription.name, "period": _period(period),
              "status": "sending", "phase": "preparing", "trigger": trigger, "startedAt": now}
    held = lease(db, key).claim(ObjectId(), when=when, fields=fields, upsert=True)
    if held is None:
        return Outcome("busy", key)
    before = held.document or {}
    attempts = before.get("attempts", 0) + 1

    def delivering():
        if not held.renew(fields={"phase": "delivering"}):
            raise LeaseLost("another process took this send over")

    message_id = f"<report.{key.replace(':', '.')}@purchases>" if trigger == "schedule" else None
    refused, error, status = None, "", "sent"
    try:
        with held.renewing(name="report-lease"):
            refused = send(delivering, message_id)
    except LeaseLost:
        return Outcome("busy", key)
    except SendError as failure:
        error, status = str(failure), "unknown" if failure.delivering else "failed"
    except Exception as failure:  # noqa: BLE001 - drawing the report failed: recorded, tried again
        error, status = f"{type(failure).__name__}: {failure}", "failed"
    if status == "failed" and attempts >= MAX_ATTEMPTS and trigger == "schedule":
        status = "gave up"
    outcome = {"status": status, "phase": None, "attempts": attempts, "lastAttemptAt": now, "trigger": trigger,
               "lastError": error[:ERROR_LIMIT] or None,
               "nextTryAt": now + wait_after(attempts) if status == "failed" else None}
    if status == "sent":
        outcome |= {"sentAt": now, "sends": before.get("sends", 0) + 1, "refused": refused or {}}
    held.release(fields=outcome)
    return Outcome(status, key, error, refused)


def due_retries(db: Database, now: datetime) -> list[dict]:
    """Records waiting for another try at `now` whose lease is free."""
    free = lease(db, "").free(datetime.now(UTC))
    return retry_when_busy(lambda: list(utc(db)[SENDS].find({"$and": [retryable(now), free]})))


def records_of(db: Database, subscription_id: ObjectId, latest: int = 3) -> list[dict]:
    """The latest records of a subscription, newest period first."""
    return retry_when_busy(lambda: list(utc(db)[SENDS].find({"subscription": subscription_id})
                                        .sort("period.start", DESCENDING).limit(latest)))


def last_sent(db: Database, subscription_id: ObjectId) -> dict | None:
    """The subscription's record sent last, if any."""
    return retry_when_busy(lambda: utc(db)[SENDS].find_one({"subscription": subscription_id, "status": "sent"},
                                                           sort=[("sentAt", DESCENDING)]))


def ensure_indexes(db: Database) -> None:
    """The records' indexes (a record a subscription a period: some thousands in a few years),
    made by the first look for work in each process."""
    caches_of(db).slot("report send indexes", lambda: _create_indexes(db))


def _create_indexes(db: Database) -> bool:
    retry_when_busy(lambda: db[SENDS].create_index([("status", ASCENDING), ("nextTryAt", ASCENDING)],
                                                   name="status_next_try"))
    retry_when_busy(lambda: db[SENDS].create_index([("subscription", ASCENDING), ("period.start", DESCENDING)],
                                                   name="subscription_period"))
    return True


def in_progress(doc: dict, now: datetime) -> bool:
    """Whether a process holds the record's lease at `now` (it is sending it)."""
    until = (doc.get("lease") or {}).get("until")
    return isinstance(until, datetime) and until.replace(tzinfo=until.tzinfo or UTC) >= now


def period_of(doc: dict) -> Period:
    p = doc["period"]
    return Period(p["start"], p["end"], date.fromisoformat(p["first"]), date.fromisoformat(p["last"]))


def _period(period: Period) -> dict:
    return {"start": period.start, "end": period.end, "first": period.first.isoformat(),
            "last": period.last.isoformat(), "label": period.label}
