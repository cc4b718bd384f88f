"""A bulk grant's file, read and checked: every row before anything is written (the preview).

`preview(db, content, settings)` checks every row with a few reads, none per row and none of
every user: the file's emails (`core.customers.users_by_email`: the process's customer index,
checked against the users it names), the users the file names (ID_BATCH to a read), the
catalog, this file's earlier grants (the keys `row_key(digest, row)` they were granted with).
It writes nothing. Granting the ready rows is the job's (core.operations.bulk.job).
"""

import csv
import hashlib
import io
import re
from collections import Counter, defaultdict
from dataclasses import dataclass

from bson import ObjectId
from pymongo.database import Database

from core.catalog import list_items, title_key
from core.customers import owned_items, users_by_email
from core.errors import ValidationError
from core.settings import DEFAULT_SETTINGS, CoreSettings
from core.storage.documents import ID_BATCH, utc
from core.storage.retry import retry_when_busy
from core.storage.schema import IDEMPOTENCY, KINDS, USERS
from core.validation import MAX_STRING, payment_problems, read_amount

MAX_ROWS = 10_000
MAX_BYTES = 5 * 1024 * 1024

# a row in the preview
READY, EARLIER, PROBLEM = "ready", "granted earlier", "problem"

# header (lower case, without spaces, "_" or "-") -> column
COLUMNS = {"email": "email", "userid": "userId", "courseid": "courseId", "testid": "testId", "item": "item",
           "title": "item", "amount": "amount", "paymentmethod": "paymentMethod", "note": "note"}
REQUIRED = (("email", "userId"), ("courseId", "testId", "item"), ("amount",), ("paymentMethod",))
ITEM_COLUMNS = ("courseId", "testId", "item")


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
