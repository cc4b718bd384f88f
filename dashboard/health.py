"""The consistency check of the Health page: run on demand or on a schedule, in a background
thread, with each run's result kept in `health_checks`.

Several processes may serve the same database, so who runs a check is decided by the
database, not by the process: one state document (in `health_check_state`) holds a lease
(core.storage.lease: the run's id at `running.run`, its deadline at `runningUntil`) and the
next scheduled time. A run starts only by claiming the lease, which finds it free (and, for a
scheduled run, the slot due), so two processes never run a check at once and each scheduled
slot runs once. While a check runs its process renews the lease; a process that dies
mid-check loses it within `LEASE`.

A repair (the CLI's `--repair`: core's `repair_arrays` and `rebuild_rollups`) takes the same
lease, so it never runs beside a check or another repair; it checks first, repairs what that
check found, and checks again, which becomes the page's last result.
"""

import logging
import os
import socket
import threading
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from bson import ObjectId
from pymongo.database import Database
from pymongo.errors import DuplicateKeyError

from core import get_data_version
from core.operations import PROBLEMS, REPAIRABLE, check_consistency, rebuild_rollups, repair_arrays
from core.storage import retry_when_busy, utc
from core.storage.lease import EPOCH, Lease
from core.storage.schema import KINDS, USERS, catalog
from dashboard.context import DashboardContext
from dashboard.display import local_time

RESULTS = "health_checks"
STATE = "health_check_state"
STATE_ID = "consistency"
DEFAULT_EVERY = 3600  # seconds between scheduled checks
FIRST_DELAY = 60  # seconds after the first start before the first scheduled check: let the app warm up
LEASE = timedelta(minutes=2)  # a running check renews it every LEASE / 4
EXAMPLES = 3  # examples kept per kind of problem
IDLE = EPOCH  # runningUntil when nothing runs (a date: older releases claim with `$lt`)
REPAIRS = (*sorted(REPAIRABLE, key=list(PROBLEMS).index), "rollup_mismatch")  # what a repair fixes
REPAIR_SOURCE = "admin"  # the audit log's source of a repair asked for on the page
REPAIR_LINES = 20  # change lines kept in a repair's result
log = logging.getLogger(__name__)


def process_name() -> str:
    """Which process runs a check: host and pid."""
    return f"{socket.gethostname()}:{os.getpid()}"


@dataclass(frozen=True)
class Claim:
    """The right to run one check, won from the state document."""

    run: ObjectId
    trigger: str  # "manual", "schedule" or "repair"
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
          every_seconds: float | None = None, now: datetime | None = None,
          last_run: ObjectId | None = None) -> Claim | None:
    """Win the right to run a check now, or None when one runs (or, scheduled, is not due yet;
    or, with `last_run`, the last finished run is another one)."""
    now = now or datetime.now(UTC)
    ticket = Claim(ObjectId(), trigger, by, process or process_name(), now)
    when, fields = {}, {}
    if last_run is not None:
        when["lastRun"] = last_run
    if trigger == "schedule":
        when["nextScheduledAt"] = {"$lte": now}
        fields["nextScheduledAt"] = now + timedelta(seconds=every_seconds or DEFAULT_EVERY)
    holder = {"trigger": trigger, "by": by, "process": ticket.process, "since": now}

    def attempt():
        return _lease(db).claim(ticket.run, holder=holder, when=when, fields=fields, now=now)

    won = attempt()
    if won is None and retry_when_busy(lambda: db[STATE].find_one({"_id": STATE_ID}, {"_id": 1})) is None:
        ensure_state(db)  # the first check ever on this database
        won = attempt()
    return ticket if won is not None else None


def run_claimed(db: Database, ticket: Claim) -> dict:
    """Run the check (a repair first, for a "repair" ticket) that `ticket` won, store its result
    in `health_checks`, release; return the result."""
    result = {"_id": ticket.run, "status": "running", "trigger": ticket.trigger, "requestedBy": ticket.by,
              "process": ticket.process, "startedAt": ticket.since}
    retry_when_busy(lambda: db[RESULTS].replace_one({"_id": ticket.run}, result, upsert=True))
    started = time.perf_counter()
    try:
        with _lease(db).held(ticket.run).renewing(name="health-check-lease"):
            if ticket.trigger == "repair":
                result["repair"] = {}  # filled as it goes: a repair that fails halfway says what it did
                _repair(db, ticket, result["repair"])
            version = get_data_version(db)
            found = check_consistency(db)
        result |= summarize(found) | {"status": "done", "dataVersion": version}
    except Exception as error:  # noqa: BLE001 - a failed run is a result too: the page shows it
        log.exception("%s %s failed", "repair" if ticket.trigger == "repair" else "consistency check", ticket.run)
        result |= {"status": "failed", "error": f"{type(error).__name__}: {error}"[:500]}
    result |= {"finishedAt": datetime.now(UTC), "durationSeconds": round(time.perf_counter() - started, 3)}
    retry_when_busy(lambda: db[RESULTS].replace_one({"_id": ticket.run}, result, upsert=True))
    _release(db, ticket.run, result["finishedAt"])
    return result


def _repair(db: Database, ticket: Claim, done: dict) -> None:
    """What the CLI's --repair does, from a check of its own: the arrays, then the rollups."""
    found = check_consistency(db)
    done["found"] = {name: len(found[name]) for name in REPAIRS if found[name]}
    changes = repair_arrays(db, found, actor=ticket.by, source=REPAIR_SOURCE)
    done |= {"changes": len(changes), "users": len({line.split(":", 1)[0] for line in changes}),
             "lines": changes[:REPAIR_LINES]}
    if found["rollup_mismatch"]:
        done["rollupDocuments"] = rebuild_rollups(db)


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


def start_repair(db: Database, by: str, last_run: ObjectId) -> Claim | None:
    """Start a repair in a background thread, if `last_run` is still the last check and
    nothing runs; else None."""
    ticket = claim(db, "repair", by, last_run=last_run)
    if ticket is not None:
        threading.Thread(target=_run_logged, args=(db, ticket), name="health-repair", daemon=True).start()
    return ticket


def repairable(last: dict | None) -> dict[str, int]:
    """What a repair would fix by the last check: count per kind, kinds with none left out."""
    if last is None or last.get("status") != "done":
        return {}
    return {name: last["counts"][name] for name in REPAIRS if last["counts"].get(name)}


def example_names(db: Database, last: dict | None) -> dict:
    """Who and what the last check's examples name: {"user": {id: user}, "course": {id: title}, ...}."""
    examples = [e for found in ((last or {}).get("examples") or {}).values() for e in found]
    wanted = {key: {e[key] for e in examples if isinstance(e.get(key), ObjectId)} for key in ("user", *KINDS)}
    names = {key: {} for key in wanted}
    if wanted["user"]:
        users = retry_when_busy(lambda: list(db[USERS].find({"_id": {"$in": list(wanted["user"])}},
                                                            {"name": 1, "email": 1})))
        names["user"] = {u["_id"]: u for u in users}
    for kind in KINDS:
        if wanted[kind]:
            items = retry_when_busy(lambda k=kind: list(db[catalog(k)].find({"_id": {"$in": list(wanted[k])}},
                                                                           {"title": 1})))
            names[kind] = {i["_id"]: i.get("title") for i in items}
    return names


def status_text(status: dict, tz: ZoneInfo, now: datetime) -> tuple[str, bool]:
    """The page's status line, and whether it reports a failure: what runs now, else when
    the last run ended and how long it took."""
    running, last = status["running"], status["last"]
    if running:
        doing = "Repairing, then checking…" if running.get("trigger") == "repair" else "Checking…"
        return f"{doing} (started {clock(running['since'], tz, now)})", False
    if last is None:
        return "Not checked yet.", False
    when = f"at {clock(last['finishedAt'], tz, now)} (took {_seconds(last.get('durationSeconds', 0))} s)"
    repair = last.get("repair")
    if last["status"] != "done":
        text = f"{'Repair' if repair is not None else 'Check'} failed {when}: {last.get('error', '')}"
        return text + (f" {repair_summary(repair)}" if repair else ""), True
    if repair is None:
        return f"Checked {when}.", False
    return f"Repaired by {last.get('requestedBy') or 'an admin'} and checked {when}: {repair_summary(repair)}", False


def repair_summary(repair: dict) -> str:
    """What a repair changed, in a sentence."""
    changes, users = repair.get("changes"), repair.get("users", 0)
    if changes is None and "found" in repair:  # it failed while repairing the arrays
        return "It stopped while repairing arrays: the audit log lists each change it made."
    parts = [] if changes is None else [
        f"{changes:,} array entr{'y' if changes == 1 else 'ies'} changed for {users:,} customer{'s' * (users != 1)}"]
    if repair.get("rollupDocuments") is not None:
        parts.append("the rollups rebuilt from purchases")
    text = "; ".join(parts)
    return text[:1].upper() + text[1:] + "." if parts else "Nothing was changed."


def clock(moment: datetime, tz: ZoneInfo, now: datetime) -> str:
    """The time of day in `tz`, with the date when it is not today."""
    same_day = moment.astimezone(tz).date() == now.astimezone(tz).date()
    return local_time(moment, tz, "%H:%M:%S" if same_day else "%Y-%m-%d %H:%M:%S")


def _seconds(seconds: float) -> str:
    return f"{seconds:.1f}".removesuffix(".0") if seconds < 10 else f"{seconds:,.0f}"


def run_scheduled(db: Database, every_seconds: float, process: str | None = None) -> dict | None:
    """Run the scheduled check here if its slot is due and no one runs one; its result, or None."""
    ticket = claim(db, "schedule", process=process, every_seconds=every_seconds)
    return run_claimed(db, ticket) if ticket is not None else None


def status(db: Database) -> dict:
    """What the page shows: the check running now (if any) and the last finished result."""
    db = utc(db)
    state = retry_when_busy(lambda: db[STATE].find_one({"_id": STATE_ID})) or {}
    running = _lease(db).holder(state)
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


def _lease(db: Database) -> Lease:
    """The lease of the state document: the run's id in `running`, its deadline `runningUntil`."""
    return Lease(db, STATE, STATE_ID, seconds=LEASE.total_seconds(), token="running.run", until="runningUntil")


def _release(db: Database, run: ObjectId, finished: datetime) -> None:
    """Give the lease back and point the page at this result; the next slot counts from now."""
    state = retry_when_busy(lambda: db[STATE].find_one({"_id": STATE_ID})) or {}
    fields = {"lastRun": run, "lastFinishedAt": finished}
    if state.get("everySeconds"):
        fields["nextScheduledAt"] = finished + timedelta(seconds=state["everySeconds"])
    _lease(db).held(run).release(fields=fields)
