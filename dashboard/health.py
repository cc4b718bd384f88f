"""The consistency check of the Health page: run on demand or on a schedule, in a background
thread, with each run's result kept in `health_checks`.

Several processes may serve the same database, so who runs a check is decided by the
database, not by the process: one state document (in `health_check_state`) holds a lease
(`runningUntil`) and the next scheduled time. A run starts only by an atomic
`find_one_and_update` that finds the lease expired (and, for a scheduled run, the slot due),
so two processes never run a check at once and each scheduled slot runs once. While a check
runs its process renews the lease; a process that dies mid-check loses it within `LEASE`.
"""

import logging
import os
import socket
import threading
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from bson import ObjectId
from pymongo import ReturnDocument
from pymongo.database import Database
from pymongo.errors import DuplicateKeyError

from core import get_data_version
from core.operations import PROBLEMS, check_consistency
from core.storage import retry_when_busy, utc
from dashboard.context import DashboardContext

RESULTS = "health_checks"
STATE = "health_check_state"
STATE_ID = "consistency"
DEFAULT_EVERY = 3600  # seconds between scheduled checks
FIRST_DELAY = 60  # seconds after the first start before the first scheduled check: let the app warm up
LEASE = timedelta(minutes=2)  # a running check renews it every LEASE / 4
EXAMPLES = 3  # examples kept per kind of problem
IDLE = datetime(1970, 1, 1, tzinfo=UTC)  # runningUntil when nothing runs
log = logging.getLogger(__name__)


def process_name() -> str:
    """Which process runs a check: host and pid."""
    return f"{socket.gethostname()}:{os.getpid()}"


@dataclass(frozen=True)
class Claim:
    """The right to run one check, won from the state document."""

    run: ObjectId
    trigger: str  # "manual" or "schedule"
    by: str | None  # the admin who asked; None for the schedule
    process: str
    since: datetime


def ensure_state(db: Database, every_seconds: float | None = None, first_delay: float = FIRST_DELAY) -> None:
    """Create the state document if there is none; remember the schedule's interval."""
    now = datetime.now(UTC)
    update = {"$setOnInsert": {"runningUntil": IDLE, "nextScheduledAt": now + timedelta(seconds=first_delay)}}
    if every_seconds is not None:
        update["$set"] = {"everySeconds": every_seconds}
    try:
        retry_when_busy(lambda: db[STATE].update_one({"_id": STATE_ID}, update, upsert=True))
    except DuplicateKeyError:  # another process created it at the same moment: now it matches
        retry_when_busy(lambda: db[STATE].update_one({"_id": STATE_ID}, update, upsert=True))


def claim(db: Database, trigger: str, by: str | None = None, *, process: str | None = None,
          every_seconds: float | None = None, now: datetime | None = None) -> Claim | None:
    """Win the right to run a check now, or None when one runs (or, scheduled, is not due yet)."""
    now = now or datetime.now(UTC)
    ticket = Claim(ObjectId(), trigger, by, process or process_name(), now)
    query = {"_id": STATE_ID, "runningUntil": {"$lt": now}}
    update = {"runningUntil": now + LEASE,
              "running": {"run": ticket.run, "trigger": trigger, "by": by, "process": ticket.process, "since": now}}
    if trigger == "schedule":
        query["nextScheduledAt"] = {"$lte": now}
        update["nextScheduledAt"] = now + timedelta(seconds=every_seconds or DEFAULT_EVERY)
    def attempt():
        return retry_when_busy(lambda: db[STATE].find_one_and_update(query, {"$set": update},
                                                                     return_document=ReturnDocument.AFTER))

    won = attempt()
    if won is None and retry_when_busy(lambda: db[STATE].find_one({"_id": STATE_ID}, {"_id": 1})) is None:
        ensure_state(db)  # the first check ever on this database
        won = attempt()
    return ticket if won is not None else None


def run_claimed(db: Database, ticket: Claim) -> dict:
    """Run the check that `ticket` won, store its result in `health_checks`, release; return the result."""
    result = {"_id": ticket.run, "status": "running", "trigger": ticket.trigger, "requestedBy": ticket.by,
              "process": ticket.process, "startedAt": ticket.since}
    retry_when_busy(lambda: db[RESULTS].replace_one({"_id": ticket.run}, result, upsert=True))
    started = time.perf_counter()
    try:
        with _Heartbeat(db, ticket.run):
            version = get_data_version(db)
            found = check_consistency(db)
        result |= summarize(found) | {"status": "done", "dataVersion": version}
    except Exception as error:  # noqa: BLE001 - a failed run is a result too: the page shows it
        log.exception("consistency check %s failed", ticket.run)
        result |= {"status": "failed", "error": f"{type(error).__name__}: {error}"[:500]}
    result |= {"finishedAt": datetime.now(UTC), "durationSeconds": round(time.perf_counter() - started, 3)}
    retry_when_busy(lambda: db[RESULTS].replace_one({"_id": ticket.run}, result, upsert=True))
    _release(db, ticket.run, result["finishedAt"])
    return result


def summarize(found: dict[str, list[dict]]) -> dict:
    """Counts per kind of problem, their total, and the first few examples of each."""
    counts = {name: len(found.get(name, [])) for name in PROBLEMS}
    examples = {name: found[name][:EXAMPLES] for name in PROBLEMS if found.get(name)}
    return {"counts": counts, "total": sum(counts.values()), "examples": examples}


def start_check(db: Database, by: str) -> Claim | None:
    """Start a check on demand in a background thread; None when one is running already."""
    ticket = claim(db, "manual", by)
    if ticket is not None:
        threading.Thread(target=_run_logged, args=(db, ticket), name="health-check", daemon=True).start()
    return ticket


def run_scheduled(db: Database, every_seconds: float, process: str | None = None) -> dict | None:
    """Run the scheduled check here if its slot is due and no one runs one; its result, or None."""
    ticket = claim(db, "schedule", process=process, every_seconds=every_seconds)
    return run_claimed(db, ticket) if ticket is not None else None


def status(db: Database) -> dict:
    """What the page shows: the check running now (if any) and the last finished result."""
    db = utc(db)
    state = retry_when_busy(lambda: db[STATE].find_one({"_id": STATE_ID})) or {}
    running = state.get("running") if state.get("runningUntil", IDLE) > datetime.now(UTC) else None
    last_id = state.get("lastRun")
    last = retry_when_busy(lambda: db[RESULTS].find_one({"_id": last_id})) if last_id else None
    return {"running": running, "last": last, "nextScheduledAt": state.get("nextScheduledAt"),
            "everySeconds": state.get("everySeconds")}


class HealthChecks:
    """The scheduler thread of one process; `stop()` ends it (the app calls it on close)."""

    def __init__(self, db: Database, every_seconds: float, tick: float | None = None):
        self.db, self.every = db, every_seconds
        self.tick = tick if tick is not None else min(30.0, max(1.0, every_seconds / 4))
        self._stop = threading.Event()
        self.thread = threading.Thread(target=self._loop, name="health-checks", daemon=True)

    def _loop(self) -> None:
        while not self._stop.wait(self.tick):
            try:
                run_scheduled(self.db, self.every)
            except Exception:  # noqa: BLE001 - the schedule must outlive a database outage
                if not self._stop.is_set():
                    log.warning("scheduled consistency check could not start", exc_info=True)

    def stop(self, timeout: float = 30.0) -> None:
        """End the thread, waiting for a check it is running (up to `timeout` s)."""
        self._stop.set()
        if self.thread.is_alive() and self.thread is not threading.current_thread():
            self.thread.join(timeout)


def start_health_checks(context: DashboardContext, every_seconds: float = DEFAULT_EVERY,
                        first_delay: float = FIRST_DELAY) -> HealthChecks:
    """Start this process's scheduler: a daemon thread that runs the check when its slot is due."""
    if every_seconds <= 0:
        raise ValueError(f"every_seconds must be positive, got {every_seconds!r}")
    ensure_state(context.db, every_seconds, first_delay)
    checks = HealthChecks(context.db, every_seconds)
    checks.thread.start()
    return checks


def _run_logged(db: Database, ticket: Claim) -> None:
    try:
        run_claimed(db, ticket)
    except Exception:  # noqa: BLE001 - a background thread: nobody else would see it
        log.exception("consistency check %s could not be recorded", ticket.run)


def _release(db: Database, run: ObjectId, finished: datetime) -> None:
    """Give the lease back and point the page at this result; the next slot counts from now."""
    state = retry_when_busy(lambda: db[STATE].find_one({"_id": STATE_ID})) or {}
    update = {"runningUntil": IDLE, "running": None, "lastRun": run, "lastFinishedAt": finished}
    if state.get("everySeconds"):
        update["nextScheduledAt"] = finished + timedelta(seconds=state["everySeconds"])
    retry_when_busy(lambda: db[STATE].update_one({"_id": STATE_ID, "running.run": run}, {"$set": update}))


class _Heartbeat:
    """Renew the lease of a running check until it ends, from a thread of its own."""

    def __init__(self, db: Database, run: ObjectId):
        self.db, self.run = db, run
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._beat, name="health-check-lease", daemon=True)

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._done.set()
        self._thread.join(timeout=5)

    def _beat(self) -> None:
        while not self._done.wait(LEASE.total_seconds() / 4):
            try:
                retry_when_busy(lambda: self.db[STATE].update_one(
                    {"_id": STATE_ID, "running.run": self.run},
                    {"$set": {"runningUntil": datetime.now(UTC) + LEASE}}))
            except Exception:  # noqa: BLE001 - the next beat tries again; the lease covers a few misses
                log.warning("could not renew the health check's lease", exc_info=True)
