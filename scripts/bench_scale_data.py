"""The databases scripts/bench_scale.py measures: built once a size into FOLDER/<size>/ (the
demo loader's documents and an audit log, bulk-loaded), reused by later runs, and put back each
time as another program would leave them; the users and unowned courses the bench draws."""

import itertools
import json
import random
import shutil
import sqlite3
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

from bson import ObjectId
from tqdm import tqdm

from core.operations.demo import build_demo, load_demo
from core.storage.db import bulk_insert
from core.storage.documents import utc
from core.storage.schema import AUDIT, COURSES, KINDS, PURCHASES, REVOKED, TESTS, USERS, kind_of, user_array
from database import corrections_in_file
from database.opening import DEFAULT_DB_NAME, SQLITE_NAME, _open_embedded

ITEMS = 80
CHUNK = 1000
CORRECTIONS_PREFIX = "purchases_"  # of every table, trigger and index the engine's corrections add to the file
SAMPLE_USERS = 3000  # user ids kept in built.json: the bench draws its users from them
BUILT = "built.json"


def note(size: int, text: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {size:,}: {text}", file=sys.stderr, flush=True)


class CachedWeights(random.Random):
    """random.Random whose `choices(population, weights)` keeps the cumulative weights of a long
    weights list between calls: the standard one sums them again on every call, O(users) a
    purchase. Same answers for the same seed (choices with weights is choices with their sums)."""

    def __init__(self, seed):
        super().__init__(seed)
        self._weights, self._cumulative = None, None

    def choices(self, population, weights=None, *, cum_weights=None, k=1):
        if weights is not None and cum_weights is None and len(weights) > 1000:
            if weights is not self._weights:
                self._weights, self._cumulative = weights, list(itertools.accumulate(weights))
            return super().choices(population, cum_weights=self._cumulative, k=k)
        return super().choices(population, weights, cum_weights=cum_weights, k=k)


def audit_entries(purchases: list[dict], names: dict, titles: dict, rng: random.Random):
    """One grant entry per purchase, as core.audit.record_change writes it (its `_id` made at the change)."""
    for purchase in purchases:
        kind = kind_of(purchase)
        at = purchase["purchasedAt"]
        yield {
            "_id": ObjectId(int(at.timestamp()).to_bytes(4, "big") + rng.randbytes(8)),
            "at": at, "action": "grant", "source": "script", "actor": purchase.get("actor"),
            "user": purchase["user"], "userName": names.get(purchase["user"]), "kind": kind, "item": purchase[kind],
            "title": titles.get(purchase[kind]), "purchase": purchase["_id"], "amount": purchase["amount"],
            "currency": purchase.get("currency"), "paymentMethod": purchase["paymentMethod"],
            "idempotencyKey": purchase.get("idempotencyKey"), "discountCode": purchase.get("discountCode"),
            "reason": None, "note": None,
        }


def build(data_dir: Path, size: int) -> dict:
    """Write a database of `size` purchases into `data_dir` without the app's indexes; return its record."""
    shutil.rmtree(data_dir, ignore_errors=True)  # a build that did not finish
    started = time.perf_counter()
    rng = CachedWeights(size)
    documents = build_demo(rng, max(1, size // 3), ITEMS, size, datetime.now(UTC))
    generated = time.perf_counter() - started
    names = {u["_id"]: u["name"] for u in documents[USERS]}
    titles = {i["_id"]: i["title"] for i in documents[COURSES] + documents[TESTS]}
    total = sum(len(documents[name]) for name in (COURSES, TESTS, PURCHASES, USERS)) + size
    opened = _open_embedded(data_dir, DEFAULT_DB_NAME)  # open_database would create the app's indexes
    try:
        db = utc(opened.db)
        with tqdm(total=total, unit="doc", desc=f"{size:,} purchases: loading", file=sys.stderr,
                  mininterval=2) as bar:
            load_demo(db, documents, progress=bar.update)
            entries = audit_entries(documents[PURCHASES], names, titles, rng)
            while chunk := list(itertools.islice(entries, CHUNK)):
                bulk_insert(db, AUDIT, chunk)
                bar.update(len(chunk))
    finally:
        opened.close()
    as_another_program_wrote_it(data_dir)
    record = {"purchases": size, "users": len(documents[USERS]), "items": ITEMS, "audit": size,
              "builtAt": datetime.now(UTC).isoformat(timespec="seconds"), "generateSeconds": round(generated, 1),
              "buildSeconds": round(time.perf_counter() - started, 1), "appIndexes": False,
              "sampleUsers": [str(u["_id"]) for u in rng.sample(documents[USERS], min(SAMPLE_USERS, len(documents[USERS])))]}
    write_record(data_dir, record)
    return record


def write_record(data_dir: Path, record: dict) -> None:
    path = data_dir / BUILT
    path.with_suffix(".tmp").write_text(json.dumps(record, indent=1))
    path.with_suffix(".tmp").replace(path)


def as_another_program_wrote_it(data_dir: Path) -> None:
    """Take out of the SQLite file what database/corrections_in_file.py keeps there (the
    marker of a clean close, its triggers, the tables and indexes it fills once a file: every
    name starting CORRECTIONS_PREFIX), as in a file that plain mongoeco wrote: the next open
    finds no index entry known to be current and does the corrections' one-time work itself."""
    if not corrections_in_file.MARKER_TABLE.startswith(CORRECTIONS_PREFIX):
        raise RuntimeError(f"database/corrections_in_file.py no longer names its tables {CORRECTIONS_PREFIX}*")
    conn = sqlite3.connect(data_dir / SQLITE_NAME, timeout=60)
    try:
        with conn:
            found = conn.execute("SELECT type, name FROM sqlite_master WHERE substr(name, 1, ?) = ?",
                                 (len(CORRECTIONS_PREFIX), CORRECTIONS_PREFIX)).fetchall()
            for kind in ("trigger", "index", "table"):
                for name in sorted(name for found_kind, name in found if found_kind == kind):
                    conn.execute(f'DROP {kind.upper()} IF EXISTS "{name}"')
    finally:
        conn.close()


def as_another_program_left_it(data_dir: Path, record: dict) -> None:
    """Drop the indexes the app made in an earlier run, and what the engine's corrections keep in the file."""
    if record.get("appIndexes", True):
        opened = _open_embedded(data_dir, DEFAULT_DB_NAME)
        try:
            for name in (PURCHASES, REVOKED, AUDIT):
                for index in opened.db[name].index_information():
                    if index != "_id_":
                        opened.db[name].drop_index(index)
        finally:
            opened.close()
        record["appIndexes"] = False
        write_record(data_dir, record)
    as_another_program_wrote_it(data_dir)


def database_for(folder: Path, size: int) -> tuple[Path, dict]:
    data_dir = folder / str(size)
    try:
        record = json.loads((data_dir / BUILT).read_text())
        if record.get("purchases") != size:
            raise ValueError(f"{data_dir / BUILT} is for {record.get('purchases')} purchases")
        note(size, f"reusing the database built {record['builtAt']} in {record['buildSeconds']} s")
        as_another_program_left_it(data_dir, record)
    except (OSError, ValueError, KeyError):
        note(size, f"building {size:,} purchases, {size // 3:,} users, {ITEMS} items, an audit log of {size:,}")
        record = build(data_dir, size)
        note(size, f"built in {record['buildSeconds']} s (documents made in {record['generateSeconds']} s)")
    return data_dir, record


class Pairs:
    """(user, course) pairs the user does not own, each handed out once, users from the sample."""

    def __init__(self, users: list[dict], courses: list, rng: random.Random):
        self.users, self.courses, self.rng, self.taken = users, courses, rng, set()

    def take(self, count: int) -> list[tuple]:
        picks = []
        while len(picks) < count:
            user, course = self.rng.choice(self.users), self.rng.choice(self.courses)
            if course in (user.get(user_array("course")) or []) or (user["_id"], course) in self.taken:
                continue
            self.taken.add((user["_id"], course))
            picks.append((user, course))
        return picks


def sampled_users(db, record: dict) -> list[dict]:
    ids = [ObjectId(i) for i in record["sampleUsers"]]
    fields = {"name": 1, "email": 1, **{spec.array: 1 for spec in KINDS.values()}}
    # in parts: mongoeco refuses an $in of about 1,000 values ("Expression tree is too large")
    return [doc for start in range(0, len(ids), 200)
            for doc in db[USERS].find({"_id": {"$in": ids[start : start + 200]}}, fields)]
