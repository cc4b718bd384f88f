"""Bulk grants from a CSV file: read it, check every row before anything is written, then
grant the good rows as a job that survives a reload and resumes after a crash.

- `preview(db, content, settings)` checks every row with a few reads, none per row and none
  of every user: the file's emails (`core.customers.users_by_email`: the process's customer
  index, checked against the users it names), the users the file names (ID_BATCH to a read),
  the catalog, this file's earlier grants. It writes nothing.
- `start_job` grants the ready rows in a thread; `run_job` does it in the caller's thread.
  Rows are granted BATCH_ROWS at a time, each with the key `row_key(digest, row)`, through
  `purchase_items(source="bulk")` (what `create_purchase` does, for many in one transaction),
  so a re-upload, a second click or a re-run after a crash grants nothing twice.
- A job is the file: `bulk_jobs` holds one record per file (`_id` = `job_id`, from the
  file's SHA-256) with its counts, status and heartbeat; `bulk_job_rows` holds the row
  results in blocks of `BLOCK` rows (`_id` "<job>:<block>"). Neither is written per row:
  the counts every `PROGRESS_SECONDS` (one point update, ~4 ms on the embedded engine),
  the results every `FLUSH_ROWS` rows or `RESULTS_SECONDS` (~5 ms a block). A crash
  between batches loses only results, which the next run finds again from the keys.
"""

import csv
import hashlib
import io
import logging
import os
import re
import socket
import threading
import time
import uuid
from collections import Counter, defaultdict
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from bson import ObjectId
from pymongo import DESCENDING
from pymongo.database import Database
from pymongo.errors import DuplicateKeyError

from core.catalog import list_items, title_key
from core.customers import owned_items, users_by_email
from core.errors import AlreadyPurchasedError, PurchaseError, ValidationError
from core.items import ItemRef
from core.purchases.commands import GrantRequest, purchase_items, revoked_replay_error
from core.settings import DEFAULT_SETTINGS, CoreSettings
from core.storage.documents import ID_BATCH, utc
from core.storage.retry import retry_when_busy
from core.storage.schema import IDEMPOTENCY, KINDS, USERS
from core.validation import MAX_STRING, payment_problems, read_amount, utc_millis

MAX_ROWS = 10_000
MAX_BYTES = 5 * 1024 * 1024
JOBS = "bulk_jobs"
JOB_ROWS = "bulk_job_rows"
BLOCK = 25  # row results per document of JOB_ROWS: a bigger block costs more to update
FLUSH_ROWS = 100
# ready rows granted in one transaction: each row's own reads and writes cost ~15 ms on the
# embedded engine, which serves no other write meanwhile (a sale waits at most ~1 s)
BATCH_ROWS = 50
RESULTS_SECONDS = 5.0
PROGRESS_SECONDS = 1.0  # the page polls every second
# a running job whose heartbeat is older than this is taken to be dead (another host's
# crash; a crash on this host is seen at once from its process id)
STALE_SECONDS = 90

# a row in the preview
READY, EARLIER, PROBLEM = "ready", "granted earlier", "problem"
# a row's result in a job
GRANTED, ALREADY, FAILED, SKIPPED = "granted", "already granted", "failed", "skipped"
RESULTS = (GRANTED, ALREADY, FAILED, SKIPPED)
# a job
RUNNING, DONE, STOPPED, INTERRUPTED = "running", "done", "stopped", "interrupted"

# header (lower case, without spaces, "_" or "-") -> column
COLUMNS = {"email": "email", "userid": "userId", "courseid": "courseId", "testid": "testId", "item": "item",
           "title": "item", "amount": "amount", "paymentmethod": "paymentMethod", "note": "note"}
REQUIRED = (("email", "userId"), ("courseId", "testId", "item"), ("amount",), ("paymentMethod",))
ITEM_COLUMNS = ("courseId", "testId", "item")
log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Row:
    """One row of the file as checked: what it says, what it names, and whether it can be granted."""

    number: int  # as a spreadsheet numbers it: the header is row 1
    user_text: str  # the email or userId as written
    item_text: str  # the courseId, testId or title as written
    amount_text: str
    method: str
    note: str
    status: str = READY
    problem: str = ""
    user: ObjectId | None = None
    kind: str | None = None
    item: ObjectId | None = None
    title: str | None = None
    amount: float | None = None
    purchase: ObjectId | None = None  # the purchase an earlier run of this file made


@dataclass(frozen=True)
class Preview:
    digest: str  # SHA-256 of the file's bytes
    rows: tuple[Row, ...]

    @property
    def job_id(self) -> str:
        return self.digest[:24]

    @property
    def counts(self) -> dict[str, int]:
        found = Counter(row.status for row in self.rows)
        return {status: found[status] for status in (READY, EARLIER, PROBLEM)}


@dataclass(frozen=True)
class Lookup:
    """What the rows are checked against, read once per file."""

    emails: dict  # lower-cased email -> user id
    owned: dict  # user id -> {(kind, item id)}, for every user the file names that exists
    items: dict  # (kind, item id) -> catalog item
    titles: dict  # title_key -> [catalog items]
    earlier: dict  # row number -> purchase id, for rows this file granted before
    settings: CoreSettings  # what a grant must meet: the payment methods, the largest amount, decimals


def row_key(digest: str, number: int) -> str:
    """The idempotency key of a row of a file: the same file's same row always gets the same key."""
    return f"bulk:{digest[:24]}:{number}"


# reading the file


def read_rows(content: bytes) -> list[tuple[int, dict, bool]]:
    """The data rows of a CSV file: (row number, cells by column, whether it has extra cells).

    ValidationError, saying what to fix, for a file that cannot be taken as a whole.
    """
    if len(content) > MAX_BYTES:
        raise ValidationError(f"The file has {len(content) / 1024 / 1024:.1f} MB; at most {MAX_BYTES // 1024 // 1024} MB "
                              f"({MAX_ROWS:,} rows) can be uploaded at once. Split it into smaller files.")
    try:
        text = content.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise ValidationError("The file is not UTF-8 text. Save it as \"CSV UTF-8\" and upload it again.") from None
    first_line = text.split("\n", 1)[0]
    delimiter = max(",;\t", key=first_line.count)  # spreadsheets in many locales write ";"
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter)
    columns = _columns(next(reader, None))
    rows = []
    for number, cells in enumerate(reader, start=2):
        if not any(cell.strip() for cell in cells):
            continue
        if len(rows) == MAX_ROWS:
            raise ValidationError(f"The file has more than {MAX_ROWS:,} rows. Split it into smaller files.")
        values = {name: cell.strip() for name, cell in zip(columns, cells, strict=False) if name}
        rows.append((number, values, len(cells) > len(columns)))
    if not rows:
        raise ValidationError("The file has a header but no rows.")
    return rows


def _columns(header: list[str] | None) -> list[str]:
    if not header or not any(cell.strip() for cell in header):
        raise ValidationError("The file is empty. The first row must name the columns, e.g. "
                              "email,item,amount,paymentMethod,note")
    columns, unknown = [], []
    for cell in header:
        name = COLUMNS.get(re.sub(r"[\s_\-]", "", cell).lower())
        if cell.strip() and name is None:
            unknown.append(cell.strip())
        columns.append(name)
    if unknown:
        raise ValidationError(f"Unknown column {', '.join(map(repr, unknown))}. Columns are: email or userId; "
                              "courseId, testId or item (a title); amount; paymentMethod; note (optional).")
    repeated = sorted({name for name in columns if name and columns.count(name) > 1})
    if repeated:
        raise ValidationError(f"Column {', '.join(repeated)} appears twice in the header.")
    missing = [" or ".join(group) for group in REQUIRED if not set(group) & set(columns)]
    if missing:
        raise ValidationError(f"Missing column: {'; '.join(missing)}.")
    return columns


# checking the rows


def preview(db: Database, content: bytes, settings: CoreSettings | None = None) -> Preview:
    """Every row of the file checked, in file order; nothing is written."""
    db = utc(db)
    raw = read_rows(content)
    digest = hashlib.sha256(content).hexdigest()
    emails = users_by_email(db, [cells.get("email") for _, cells, _ in raw])
    named = {emails.get(cells.get("email", "").lower()) for _, cells, _ in raw}
    named |= {ObjectId(cells["userId"]) for _, cells, _ in raw if ObjectId.is_valid(cells.get("userId", ""))}
    items = list_items(db)
    lookup = Lookup(
        emails=emails,
        owned=_owned(db, [user for user in named if user is not None]),
        items={(item["kind"], item["_id"]): item for item in items},
        titles=_titles(items),
        earlier=_earlier(db, digest),
        settings=settings or DEFAULT_SETTINGS,
    )
    return Preview(digest, tuple(check_rows(raw, lookup)))


def _owned(db: Database, users: list[ObjectId]) -> dict:
    """Each named user's items, a read per ID_BATCH users (not one per row)."""
    fields = {spec.array: 1 for spec in KINDS.values()}
    users = sorted(users)
    docs = [doc for start in range(0, len(users), ID_BATCH)
            for doc in retry_when_busy(lambda part=users[start : start + ID_BATCH]:
                                       list(db[USERS].find({"_id": {"$in": part}}, fields)))]
    return {doc["_id"]: {(item.kind, item.id) for item in owned_items(doc)} for doc in docs}


def _titles(items: list[dict]) -> dict:
    titles = defaultdict(list)
    for item in items:
        titles[title_key(item["title"])].append(item)
    return titles


def _earlier(db: Database, digest: str) -> dict:
    """Row number -> purchase, for the rows an earlier run of this file granted (one range read of keys)."""
    prefix = row_key(digest, 0)[:-1]
    query = {"_id": {"$gte": prefix, "$lt": prefix[:-1] + ";"}}  # ";" follows ":"
    records = retry_when_busy(lambda: list(db[IDEMPOTENCY].find(query, {"purchase": 1})))
    return {int(record["_id"].rsplit(":", 1)[1]): record["purchase"] for record in records}


def check_rows(raw: list[tuple[int, dict, bool]], lookup: Lookup) -> list[Row]:
    """Each row with its status and every problem found; pure, so it is testable without a database."""
    seen: dict = {}  # (user, kind, item) -> the first row that grants it
    return [_check(number, cells, extra, lookup, seen) for number, cells, extra in raw]


def _check(number: int, cells: dict, extra: bool, lookup: Lookup, seen: dict) -> Row:
    problems = []
    user = _user(cells, lookup, problems)
    item = _item(cells, lookup, problems)
    amount = _amount(cells.get("amount", ""), problems)
    method, note = cells.get("paymentMethod", ""), cells.get("note", "")
    if not method:
        problems.append("no paymentMethod")
    elif method not in lookup.settings.payment_methods:
        allowed = ", ".join(sorted(lookup.settings.payment_methods))
        problems.append(f"payment method {method!r} is not allowed (allowed: {allowed})")
    elif amount is not None:
        problems += payment_problems(amount, method, lookup.settings)
    if len(note) > MAX_STRING:
        problems.append(f"note is longer than {MAX_STRING} characters")
    if extra:
        problems.append("more cells than the header has columns")
    target = (user, item["kind"], item["_id"]) if user and item else None
    if target and target in seen:
        problems.append(f"same user and item as row {seen[target]}")
    elif target:
        seen[target] = number
    status, purchase = (PROBLEM, None) if problems else (READY, None)
    if not problems and number in lookup.earlier:
        status, purchase = EARLIER, lookup.earlier[number]
    elif not problems and (item["kind"], item["_id"]) in lookup.owned.get(user, ()):
        status = PROBLEM
        problems.append(f"already owns this {item['kind']}")
    return Row(
        number=number, user_text=cells.get("email") or cells.get("userId", ""),
        item_text=next((cells[name] for name in ITEM_COLUMNS if cells.get(name)), ""),
        amount_text=cells.get("amount", ""), method=method, note=note, status=status, problem="; ".join(problems),
        user=user, kind=item and item["kind"], item=item and item["_id"], title=item and item["title"],
        amount=amount, purchase=purchase,
    )


def _user(cells: dict, lookup: Lookup, problems: list) -> ObjectId | None:
    email, user_id = cells.get("email", ""), cells.get("userId", "")
    if not email and not user_id:
        problems.append("no email or userId")
        return None
    by_email = lookup.emails.get(email.lower()) if email else None
    if email and by_email is None:
        problems.append(f"unknown user {email}")
    by_id = None
    if user_id and not ObjectId.is_valid(user_id):
        problems.append(f"userId {user_id!r} is not a valid id")
    elif user_id:
        by_id = ObjectId(user_id)
        if by_id not in lookup.owned:
            problems.append(f"unknown user id {user_id}")
            by_id = None
    if by_email and by_id and by_email != by_id:
        problems.append("email and userId name different users")
        return None
    return by_id or by_email


def _item(cells: dict, lookup: Lookup, problems: list) -> dict | None:
    given = [name for name in ITEM_COLUMNS if cells.get(name)]
    if not given:
        problems.append("no courseId, testId or item")
        return None
    if len(given) > 1:
        problems.append(f"give one of courseId, testId and item, not {' and '.join(given)}")
        return None
    name, text = given[0], cells[given[0]]
    if name == "item":
        found = lookup.titles.get(title_key(text), [])
        if len(found) > 1:
            problems.append(f"ambiguous item {text!r}: {len(found)} courses and tests have this title; "
                            "use courseId or testId")
        elif not found:
            problems.append(f"unknown item {text!r}")
        return found[0] if len(found) == 1 else None
    kind = "course" if name == "courseId" else "test"
    if not ObjectId.is_valid(text):
        problems.append(f"{name} {text!r} is not a valid id")
        return None
    item = lookup.items.get((kind, ObjectId(text)))
    if item is None:
        problems.append(f"unknown {kind} {text}")
    return item


def _amount(text: str, problems: list) -> float | None:
    if not text:
        problems.append("no amount")
        return None
    amount = read_amount(text)
    if amount is None:
        problems.append(f"malformed amount {text!r} (write it like 12.50 or 1,299.50, without a currency)")
        return None
    return float(amount)


# the job


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
    current = retry_when_busy(lambda: db[JOBS].find_one({"_id": found.job_id}))
    if current is not None and current["status"] == RUNNING and not abandoned(current, now):
        return None
    token = uuid.uuid4().hex
    fields = {"fileName": file_name, "digest": found.digest, "total": len(found.rows), "todo": found.counts[READY],
              "processed": 0, "counts": dict.fromkeys(RESULTS, 0), "status": RUNNING, "startedBy": actor,
              "startedAt": now, "heartbeat": now, "finishedAt": None, "error": None,
              "runner": {"host": socket.gethostname(), "pid": os.getpid(), "token": token}}
    # compare-and-set on the previous runner's token: of two claims at once, one wins
    query = {"_id": found.job_id, "runner.token": current["runner"]["token"]} if current else {"_id": found.job_id}
    try:
        result = retry_when_busy(lambda: db[JOBS].update_one(query, {"$set": fields}, upsert=current is None))
    except DuplicateKeyError:
        return None
    return token if current is None or result.matched_count == 1 else None


def abandoned(job: dict, now: datetime) -> bool:
    """True when a job said to be running has no live runner: its process is gone, or it went silent."""
    if now - job["heartbeat"] > timedelta(seconds=STALE_SECONDS):
        return True
    runner = job.get("runner") or {}
    return runner.get("host") == socket.gethostname() and not _alive(runner.get("pid"))


def _alive(pid) -> bool:
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return False
    except (PermissionError, TypeError, ValueError):
        return True  # another user's process, or no pid recorded: leave it to the heartbeat
    return True


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
        for start in range(0, len(ready), BATCH_ROWS):
            for result in grant_rows(db, found.digest, ready[start : start + BATCH_ROWS], actor=actor,
                                     settings=settings):
                if not recorder.add(result):
                    return dict(recorder.counts)  # another run has the job now
                if on_row is not None:
                    on_row(result)
        recorder.flush(status=DONE, finishedAt=datetime.now(UTC))
    except Exception as error:  # noqa: BLE001 - the thread must not die silently; its rows are safe to re-run
        log.exception("bulk job %s stopped", found.job_id)
        first_line = (str(error).strip().splitlines() or [type(error).__name__])[0]
        recorder.stop(f"Stopped after {recorder.processed:,} rows: {first_line[:200].rstrip('.')}")
    return dict(recorder.counts)


def grant_rows(db: Database, digest: str, rows: list[Row], *, actor: str,
               settings: CoreSettings | None = None) -> list[dict]:
    """Grant ready rows, each with its key, in one transaction (core's purchase_items); each
    row's result (granted, already granted or failed)."""
    requests = [GrantRequest(row.user, purchase_data={"amount": row.amount, "paymentMethod": row.method, "actor": actor,
                              "idempotencyKey": row_key(digest, row.number)},
                             note=row.note or None, item=ItemRef(row.kind, row.item))
                for row in rows]
    outcomes = purchase_items(db, requests, settings=settings, source="bulk")
    return [_row_result(row, outcome) for row, outcome in zip(rows, outcomes, strict=True)]


def _row_result(row: Row, outcome) -> dict:
    if isinstance(outcome, AlreadyPurchasedError):
        return result_of(row, ALREADY, str(outcome))
    if isinstance(outcome, PurchaseError):
        return result_of(row, FAILED, str(outcome))
    if "revokedAt" in outcome.document:
        return result_of(row, FAILED, str(revoked_replay_error(outcome.document)))
    if outcome.replayed:  # another run granted it before this call
        return result_of(row, ALREADY, "granted before by this file's key", outcome.document["_id"])
    return result_of(row, GRANTED, "", outcome.document["_id"])


def result_of(row: Row, status: str, message: str, purchase: ObjectId | None = None) -> dict:
    """A row's result as JOB_ROWS keeps it."""
    return {"row": row.number, "user": row.user_text, "userId": row.user, "item": row.item_text, "title": row.title,
            "kind": row.kind, "itemId": row.item, "amount": row.amount_text, "paymentMethod": row.method,
            "note": row.note, "status": status, "message": message, "purchase": purchase}


class Recorder:
    """A run's row results and counts, written in batches; the counts' write is the heartbeat."""

    def __init__(self, db: Database, job_id: str, token: str):
        self.db, self.job_id, self.token = db, job_id, token
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

    def flush(self, **fields) -> bool:
        """Write the pending results (one update per block of rows), then the counts."""
        blocks = defaultdict(dict)
        for number, result in self.pending.items():
            blocks[block_id(self.job_id, number)][f"rows.r{number:07d}"] = result
        for ident, values in blocks.items():
            retry_when_busy(lambda i=ident, v=values: self.db[JOB_ROWS].update_one(
                {"_id": i}, {"$set": {"job": self.job_id, **v}}, upsert=True))
        self.pending.clear()
        self.flushed_at = time.monotonic()
        return self.progress(**fields)

    def progress(self, **fields) -> bool:
        """Write the counts and the heartbeat, only while this run holds the job."""
        update = {"counts": dict(self.counts), "processed": self.processed,
                  "heartbeat": utc_millis(datetime.now(UTC)), **fields}
        result = retry_when_busy(lambda: self.db[JOBS].update_one(
            {"_id": self.job_id, "runner.token": self.token}, {"$set": update}))
        self.progressed_at = time.monotonic()
        return result.matched_count == 1

    def stop(self, error: str) -> None:
        """Record why the run stopped, with what it had done, if the database lets us."""
        try:
            self.flush(status=STOPPED, error=error, finishedAt=datetime.now(UTC))
        except Exception:  # noqa: BLE001 - the job then shows as interrupted, which is also true
            log.exception("could not record that bulk job %s stopped", self.job_id)


def block_id(job_id: str, number: int) -> str:
    return f"{job_id}:{number // BLOCK:05d}"


# reading jobs


def get_job(db: Database, job_id: str) -> dict | None:
    """A job's record; a running job without a live runner says "interrupted"."""
    job = retry_when_busy(lambda: utc(db)[JOBS].find_one({"_id": str(job_id)}))
    if job is not None and job["status"] == RUNNING and abandoned(job, utc_millis(datetime.now(UTC))):
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
