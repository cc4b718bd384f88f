"""Crash: the process that serves the embedded database is SIGKILLed at random moments in a
stream of grants and revocations from several threads, again and again. After each restart
every acknowledged change is there, nothing is half-written (arrays equal purchases, rollups
exact, one audit entry and one data version per change, idempotency records whole), and a
grant whose answer the kill swallowed, retried with its idempotencyKey, lands at most once.

The child process is this module run by `python -c`: `serve_and_write` opens the folder
(owning the embedded server), starts the writer threads and prints a line before each call
and one after each acknowledgement.
"""

import contextlib
import os
import random
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from bson import ObjectId

from core import (
    AlreadyPurchasedError,
    NotPurchasedError,
    create_purchase,
    get_data_version,
    open_database,
    remove_purchase,
)
from core.changes import FEED_SIZE
from core.operations import check_consistency, seed_demo
from core.storage.schema import ACTIVITY, AUDIT, COURSES, IDEMPOTENCY, PURCHASES, REVOKED, TESTS, USERS

pytestmark = pytest.mark.skipif(bool(os.environ.get("MONGODB_URI")), reason="kills the embedded server's process")
ROOT = Path(__file__).resolve().parent.parent
KILLS, THREADS = 4, 4
START_TIMEOUT = 90.0


def serve_and_write(folder: str, seed: int, threads: int) -> None:
    """The child: open the folder, then grant and revoke from `threads` threads until killed.

    Prints `try <key> <user> <kind> <item> <amount>` before a grant, then `grant <key> <purchase>`
    once it is acknowledged (or `refused <key>`: already owned), and `revoke <purchase>` once a
    revocation is.
    """
    db = open_database(data_dir=folder).db
    users = [u["_id"] for u in db[USERS].find({}, {"_id": 1})]
    items = [("course", c["_id"]) for c in db[COURSES].find()] + [("test", t["_id"]) for t in db[TESTS].find()]
    said = threading.Lock()

    def say(line: str) -> None:
        with said:
            print(line, flush=True)

    def work(n: int) -> None:
        rng = random.Random(seed * 100 + n)
        for count in range(10**9):
            user, (kind, item) = rng.choice(users), rng.choice(items)
            ids = (item, None) if kind == "course" else (None, item)
            if rng.random() < 0.55:
                key, amount = f"crash-{seed}-{n}-{count}", rng.randint(0, 9999) / 100
                say(f"try {key} {user} {kind} {item} {amount}")
                try:
                    done = create_purchase(db, user, *ids, {"amount": amount, "paymentMethod": "paypal",
                                                            "idempotencyKey": key})
                    say(f"grant {key} {done['_id']}")
                except AlreadyPurchasedError:
                    say(f"refused {key}")
            else:
                with contextlib.suppress(NotPurchasedError):
                    say(f"revoke {remove_purchase(db, user, *ids, actor='crash-test', reason='refund')['_id']}")

    say("ready")
    for n in range(threads):
        threading.Thread(target=work, args=(n,), daemon=True).start()
    threading.Event().wait()


class Acknowledged:
    """What the children said: grants tried, grants and revocations acknowledged."""

    def __init__(self):
        self.tried: dict[str, tuple] = {}  # key -> (user, kind, item, amount)
        self.granted: dict[str, ObjectId] = {}  # key -> purchase
        self.revoked: set[ObjectId] = set()

    def read(self, line: str) -> None:
        word, *rest = line.split()
        if word == "try":
            key, user, kind, item, amount = rest
            self.tried[key] = (ObjectId(user), kind, ObjectId(item), float(amount))
        elif word == "grant":
            self.granted[rest[0]] = ObjectId(rest[1])
        elif word == "refused":
            del self.tried[rest[0]]
        elif word == "revoke":
            self.revoked.add(ObjectId(rest[0]))

    def unanswered(self) -> dict[str, tuple]:
        return {key: call for key, call in self.tried.items() if key not in self.granted}


def run_until_killed(folder: Path, seed: int, delay: float, acks: Acknowledged) -> int:
    """Start a child on the folder, SIGKILL it `delay` s after it is ready; how many lines it said."""
    code = f"from tests.test_crash import serve_and_write; serve_and_write({str(folder)!r}, {seed}, {THREADS})"
    child = subprocess.Popen([sys.executable, "-c", code], cwd=ROOT, stdout=subprocess.PIPE, text=True)
    said = []
    reader = threading.Thread(target=lambda: said.append(child.stdout.read()))  # the pipe never fills
    stuck = threading.Timer(START_TIMEOUT, child.kill)  # a child that never gets ready fails the test
    stuck.start()
    try:
        assert child.stdout.readline().strip() == "ready"
        reader.start()
        time.sleep(delay)
    finally:
        stuck.cancel()
        child.send_signal(signal.SIGKILL)
        child.wait()
    reader.join()
    lines = said[0].split("\n")[:-1]  # the last is empty, or cut short by the kill
    for line in lines:
        acks.read(line)
    return len(lines)


def retry_unanswered(db, acks: Acknowledged) -> int:
    """What a caller does after a crash: send each unanswered grant again with its key.

    Returns how many of them had landed before the kill (the answer was lost, not the grant).
    """
    landed = 0
    for key, (user, kind, item, amount) in acks.unanswered().items():
        ids = (item, None) if kind == "course" else (None, item)
        record = db[IDEMPOTENCY].find_one({"_id": key})
        landed += record is not None
        try:
            purchase = create_purchase(db, user, *ids, {"amount": amount, "paymentMethod": "paypal",
                                                        "idempotencyKey": key})["_id"]
            assert record is None or purchase == record["purchase"]  # a replay, not a second grant
        except AlreadyPurchasedError:
            purchase = None  # it never landed, and another grant of the pair has since
        except NotPurchasedError:
            purchase = record["purchase"]  # it landed, and was revoked since
        assert purchase is None or db[REVOKED].find_one({"_id": purchase}) or db[PURCHASES].find_one({"_id": purchase})
        if purchase is not None:
            acks.granted[key] = purchase
        del acks.tried[key]
    return landed


def assert_whole(db, seeded: set, version_before: int, acks: Acknowledged) -> None:
    """Every acknowledged change there, every change complete in every place it touches."""
    active = {p["_id"]: p for p in db[PURCHASES].find()}
    revoked = {r["_id"]: r for r in db[REVOKED].find()}
    granted = set(acks.granted.values())
    assert granted <= active.keys() | revoked.keys(), "an acknowledged grant is missing"
    assert acks.revoked <= revoked.keys() and not acks.revoked & active.keys(), "an acknowledged revocation is undone"
    assert not active.keys() & revoked.keys()
    assert {name: found for name, found in check_consistency(db).items() if found} == {}  # arrays, rollups

    # one audit entry per change, acknowledged or not; and nothing else
    made = (active.keys() | revoked.keys()) - seeded
    entries = sorted((e["action"], e["purchase"]) for e in db[AUDIT].find())
    assert entries == sorted([("grant", p) for p in made] + [("revoke", p) for p in revoked])
    # one data version per change, and the feed's newest slot is the last change
    version = get_data_version(db)
    assert version - version_before == len(entries)
    if entries:
        assert max(e["version"] for e in db[ACTIVITY].find()) == version
        assert db[ACTIVITY].count_documents({}) <= FEED_SIZE
    # an idempotency record for each keyed grant, naming it; one grant per key
    records = {r["_id"]: r["purchase"] for r in db[IDEMPOTENCY].find()}
    keyed = {p["idempotencyKey"]: p["_id"] for p in [*active.values(), *revoked.values()] if p.get("idempotencyKey")}
    assert records == keyed
    assert len(keyed) == sum(1 for p in [*active.values(), *revoked.values()] if p.get("idempotencyKey"))
    assert all(records[key] == purchase for key, purchase in acks.granted.items())


def test_kills_in_the_middle_of_writes_lose_nothing_acknowledged(tmp_path):
    with open_database(data_dir=tmp_path) as opened:
        seed_demo(opened.db, users=30, items=6, purchases=60, seed=5)
        seeded = {p["_id"] for p in opened.db[PURCHASES].find({}, {"_id": 1})}
        version_before = get_data_version(opened.db)
    rng = random.Random(11)
    acks = Acknowledged()
    landed = 0
    for kill in range(KILLS):
        said = run_until_killed(tmp_path, kill, rng.uniform(0.5, 3.0), acks)
        assert said > 0, "the writers acknowledged nothing before the kill"
        unanswered = len(acks.unanswered())

        with open_database(data_dir=tmp_path) as opened:  # the next owner, after a crash
            assert_whole(opened.db, seeded, version_before, acks)
            landed += retry_unanswered(opened.db, acks)
            assert_whole(opened.db, seeded, version_before, acks)
            counts = {name: opened.db[name].count_documents({}) for name in (PURCHASES, REVOKED, AUDIT)}
        print(f"kill {kill}: {said} lines, {unanswered} grants unanswered and retried, {counts}")
    print(f"{len(acks.granted)} grants and {len(acks.revoked)} revocations acknowledged; "
          f"{landed} grants had landed with their answer lost")
    assert len(acks.revoked) > KILLS and len(acks.granted) > KILLS
