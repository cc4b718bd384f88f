"""A bulk grant job: the file's ready rows granted by one run at a time, resumable after a crash.

A job is the file: `bulk_jobs` holds one record per file (`_id` = the preview's `job_id`,
from the file's SHA-256) with its counts and status, and the lease of the run that grants
it (core.storage.lease: the runner's token, host and pid in `runner`, its deadline
`runner.until`). `claim_job` takes the lease; `start_job` then grants in a thread,
`run_job` in the caller's. `bulk_job_rows` holds the row results in blocks of BLOCK rows
(`_id` "<job>:<block>"). Neither is written per row: the counts every PROGRESS_SECONDS (one
point update that renews the lease, ~4 ms on the embedded engine), the results every
FLUSH_ROWS rows or RESULTS_SECONDS (~5 ms a block). A crash between batches loses only
results, which the next run finds again from the rows' keys.
"""

import logging
import os
import socket
import threading
import time
import uuid
from collections import Counter, defaultdict
from datetime import UTC, datetime

from pymongo import DESCENDING
from pymongo.database import Database

from core.operations.bulk.checking import EARLIER, PROBLEM, READY, Preview
from core.operations.bulk.granting import GRANTED, RESULTS, SKIPPED, grant_batches, result_of
from core.settings import CoreSettings
from core.storage.documents import utc
from core.storage.lease import Lease
from core.storage.retry import retry_when_busy
from core.validation import utc_millis

JOBS = "bulk_jobs"
JOB_ROWS = "bulk_job_rows"
BLOCK = 25  # row results per document of JOB_ROWS: a bigger block costs more to update
FLUSH_ROWS = 100
RESULTS_SECONDS = 5.0
PROGRESS_SECONDS = 1.0  # the page polls every second
# a run's lease: a run silent this long is taken to be dead (another host's crash; a crash
# on this host is seen at once from its process id)
STALE_SECONDS = 90

# a job
RUNNING, DONE, STOPPED, INTERRUPTED = "running", "done", "stopped", "interrupted"
log = logging.getLogger(__name__)


def job_lease(db: Database, job_id: str) -> Lease:
    """The lease of a job's run; a finished run's record stays (which process ran it last)."""
    return Lease(db, JOBS, job_id, seconds=STALE_SECONDS, token="runner.token", until="runner.until",
                 keep_holder=True)


def start_job(db: Database, found: Preview, *, actor: str, settings: CoreSettings | None = None,
              file_name: str = "") -> str:
    """Grant the ready rows in a background thread; return "started", "running" (another run has
    the job) or "nothing" (the file was applied and nothing is left to grant)."""
    if found.counts[READY] == 0 and (get_job(db, found.job_id) or {}).get("status") == DONE:
        return "nothing"
    token = claim_job(db, found, actor=actor, file_name=file_name)
    if token is None:
        return "running"
    threading.Thread(target=run_job, args=(db, found, token), kwargs={"actor": actor, "settings": settings},
                     name=f"bulk-{found.job_id}", daemon=True).start()
    return "started"


def claim_job(db: Database, found: Preview, *, actor: str, file_name: str = "") -> str | None:
    """Make this process the file's runner; its token, or None while another live run has the job."""
    db, now = utc(db), utc_millis(datetime.now(UTC))
    lease = job_lease(db, found.job_id)
    runner = lease.holder(retry_when_busy(lambda: db[JOBS].find_one({"_id": found.job_id})), now)
    if runner is not None and not _gone(runner):
        return None
    token = uuid.uuid4().hex
    # `heartbeat`: the last write of the run, by which older releases judge whether it lives
    fields = {"fileName": file_name, "digest": found.digest, "total": len(found.rows), "todo": found.counts[READY],
              "processed": 0, "counts": dict.fromkeys(RESULTS, 0), "status": RUNNING, "startedBy": actor,
              "startedAt": now, "heartbeat": now, "finishedAt": None, "error": None}
    # of two claims at once, one wins; a dead runner's lease is taken over by its token
    held = lease.claim(token, holder={"host": socket.gethostname(), "pid": os.getpid()}, fields=fields,
                       over=runner and runner.get("token"), upsert=True, now=now)
    return token if held is not None else None


def _gone(runner: dict) -> bool:
    """True when a runner's process is known to be dead: it ran on this host and is not there."""
    if runner.get("host") != socket.gethostname():
        return False
    try:
        os.kill(int(runner.get("pid")), 0)
    except ProcessLookupError:
        return True
    except (PermissionError, TypeError, ValueError):
        return False  # another user's process, or no pid recorded: leave it to the lease
    return False


def run_job(db: Database, found: Preview, token: str, *, actor: str, settings: CoreSettings | None = None,
            on_row=None) -> dict:
    """Grant the ready rows one by one and record every row's result; return the counts.

    `on_row(result)` is called after each ready row's grant (scripts and tests watch progress with it).
    Stops early, leaving the rest to the next run, when another run takes the job over.
    """
    db = utc(db)
    recorder = Recorder(db, found.job_id, token)
    try:
        for row in found.rows:
            if row.status == PROBLEM:
                recorder.add(result_of(row, SKIPPED, row.problem), processed=False)
            elif row.status == EARLIER:
                recorder.add(result_of(row, GRANTED, "granted by an earlier run of this file", row.purchase),
                             processed=False)
        ready = [row for row in found.rows if row.status == READY]
        for result in grant_batches(db, found.digest, ready, actor=actor, settings=settings):
            if not recorder.add(result):
                return dict(recorder.counts)  # another run has the job now
            if on_row is not None:
                on_row(result)
        recorder.finish(status=DONE, finishedAt=datetime.now(UTC))
    except Exception as error:  # noqa: BLE001 - the thread must not die silently; its rows are safe to re-run
        log.exception("bulk job %s stopped", found.job_id)
        first_line = (str(error).strip().splitlines() or [type(error).__name__])[0]
        recorder.stop(f"Stopped after {recorder.processed:,} rows: {first_line[:200].rstrip('.')}")
    return dict(recorder.counts)


class Recorder:
    """A run's row results and counts, written in batches; the counts' write renews the run's lease."""

    def __init__(self, db: Database, job_id: str, token: str):
        self.db, self.job_id, self.lease = db, job_id, job_lease(db, job_id).held(token)
        self.pending: dict[int, dict] = {}
        self.counts = Counter(dict.fromkeys(RESULTS, 0))
        self.processed = 0
        self.flushed_at = self.progressed_at = time.monotonic()

    def add(self, result: dict, *, processed: bool = True) -> bool:
        """Keep a row's result; write what is due. False once another run has the job."""
        self.pending[result["row"]] = result
        self.counts[result["status"]] += 1
        self.processed += processed
        now = time.monotonic()
        if len(self.pending) >= FLUSH_ROWS or now - self.flushed_at >= RESULTS_SECONDS:
            return self.flush()
        if now - self.progressed_at >= PROGRESS_SECONDS:
            return self.progress()
        return True

    def flush(self) -> bool:
        """Write the pending results (one update per block of rows), then the counts."""
        self._write_results()
        return self.progress()

    def progress(self) -> bool:
        """Write the counts and renew the lease, only while this run holds the job."""
        self.progressed_at = time.monotonic()
        return self.lease.renew(fields=self._counts())

    def finish(self, **fields) -> bool:
        """Write what is pending and give the job back with how it ended (`status`, ...), only
        while this run holds it."""
        self._write_results()
        return self.lease.release(fields=self._counts() | fields)

    def stop(self, error: str) -> None:
        """Record why the run stopped, with what it had done, if the database lets us."""
        try:
            self.finish(status=STOPPED, error=error, finishedAt=datetime.now(UTC))
        except Exception:  # noqa: BLE001 - the job then shows as interrupted, which is also true
            log.exception("could not record that bulk job %s stopped", self.job_id)

    def _write_results(self) -> None:
        blocks = defaultdict(dict)
        for number, result in self.pending.items():
            blocks[block_id(self.job_id, number)][f"rows.r{number:07d}"] = result
        for ident, values in blocks.items():
            retry_when_busy(lambda i=ident, v=values: self.db[JOB_ROWS].update_one(
                {"_id": i}, {"$set": {"job": self.job_id, **v}}, upsert=True))
        self.pending.clear()
        self.flushed_at = time.monotonic()

    def _counts(self) -> dict:
        return {"counts": dict(self.counts), "processed": self.processed, "heartbeat": utc_millis(datetime.now(UTC))}


def block_id(job_id: str, number: int) -> str:
    return f"{job_id}:{number // BLOCK:05d}"


# reading jobs


def get_job(db: Database, job_id: str) -> dict | None:
    """A job's record; a running job without a live runner says "interrupted"."""
    db = utc(db)
    job = retry_when_busy(lambda: db[JOBS].find_one({"_id": str(job_id)}))
    if job is not None and job["status"] == RUNNING:
        runner = job_lease(db, job["_id"]).holder(job)
        if runner is None or _gone(runner):
            job["status"] = INTERRUPTED
    return job


def job_results(db: Database, job_id: str) -> list[dict]:
    """Every row's result of a job, in file order (one range read of its blocks)."""
    query = {"_id": {"$gte": f"{job_id}:", "$lt": f"{job_id};"}}
    blocks = retry_when_busy(lambda: list(utc(db)[JOB_ROWS].find(query)))
    return sorted((result for block in blocks for result in block.get("rows", {}).values()), key=lambda r: r["row"])


def recent_jobs(db: Database, limit: int = 10) -> list[dict]:
    """The latest jobs, newest first."""
    return retry_when_busy(lambda: list(utc(db)[JOBS].find({}, {"runner": 0}).sort("startedAt", DESCENDING)
                                        .limit(limit)))
