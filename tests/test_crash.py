"""Crash: the process that serves the embedded database is SIGKILLed in the middle of grants
and revocations from several threads, again and again; nothing acknowledged is lost and
nothing is half-written."""

import random
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

from bson import ObjectId

from core import open_database
from core.operations import check_consistency
from core.storage.schema import AUDIT, COURSES, PURCHASES, REVOKED, TESTS, USERS

ROOT = Path(__file__).resolve().parent.parent
KILLS = 6
WORKER = """
import random, sys, threading
from bson import ObjectId
from core import AlreadyPurchasedError, NotPurchasedError, open_database, create_purchase, remove_purchase
from core.storage.schema import COURSES, TESTS, USERS
opened = open_database(data_dir=sys.argv[1])
db = opened.db
users = [u["_id"] for u in db[USERS].find({{}}, {{"_id": 1}})]
items = [("course", c["_id"]) for c in db[COURSES].find()] + [("test", t["_id"]) for t in db[TESTS].find()]
said = threading.Lock()
print("ready", flush=True)

def work(seed):
    rng = random.Random(seed)
    while True:
        user, (kind, item) = rng.choice(users), rng.choice(items)
        ids = (item, None) if kind == "course" else (None, item)
        try:
            if rng.random() < 0.6:
                done = create_purchase(db, user, *ids, {{"amount": rng.randint(0, 9999) / 100, "paymentMethod": "paypal"}})
                line = f"grant {{done['_id']}}"
            else:
                done = remove_purchase(db, user, *ids, actor="crash-test")
                line = f"revoke {{done['_id']}}"
        except (AlreadyPurchasedError, NotPurchasedError):
            continue
        with said:
            print(line, flush=True)

for n in range({threads}):
    threading.Thread(target=work, args=({seed} * 100 + n,), daemon=True).start()
threading.Event().wait()
"""


def seed_world(folder: Path) -> None:
    with open_database(data_dir=folder) as opened:
        db = opened.db
        db[USERS].insert_many([{"_id": ObjectId(), "name": f"User {i}", "purchasedCourses": [], "purchasedTests": []}
                               for i in range(8)])
        db[COURSES].insert_many([{"_id": ObjectId(), "title": f"Course {i}", "price": 10} for i in range(3)])
        db[TESTS].insert_many([{"_id": ObjectId(), "title": f"Test {i}", "price": 5} for i in range(2)])


def run_until_killed(folder: Path, seed: int, delay: float) -> list[tuple[str, ObjectId]]:
    """Start a process serving the folder with 4 writer threads, SIGKILL it after `delay` s; its acknowledgements."""
    code = WORKER.format(threads=4, seed=seed)
    child = subprocess.Popen([sys.executable, "-c", code, str(folder)], cwd=ROOT, stdout=subprocess.PIPE, text=True)
    assert child.stdout.readline().strip() == "ready"
    acknowledged = []

    def read():
        for line in child.stdout:
            action, purchase = line.split()
            acknowledged.append((action, ObjectId(purchase)))

    reader = threading.Thread(target=read)
    reader.start()
    time.sleep(delay)
    child.send_signal(signal.SIGKILL)
    child.wait()
    reader.join()
    return acknowledged


def test_kills_in_the_middle_of_writes_lose_nothing_acknowledged(tmp_path):
    seed_world(tmp_path)
    rng = random.Random(11)
    granted, revoked_acks = set(), set()
    for kill in range(KILLS):
        acks = run_until_killed(tmp_path, kill, rng.uniform(1.0, 3.0))
        granted |= {p for action, p in acks if action == "grant"}
        revoked_acks |= {p for action, p in acks if action == "revoke"}

        with open_database(data_dir=tmp_path) as opened:  # the next owner, after a crash
            db = opened.db
            active = {p["_id"] for p in db[PURCHASES].find({}, {"_id": 1})}
            revoked = {r["_id"] for r in db[REVOKED].find({}, {"_id": 1})}
            audit = [(e["action"], e["purchase"]) for e in db[AUDIT].find()]
            problems = {name: found for name, found in check_consistency(db).items() if found}

        assert acks, "the writers acknowledged nothing before the kill"
        print(f"kill {kill}: {len(acks)} acknowledged, {len(active)} active, {len(revoked)} revoked")
        assert granted <= active | revoked  # every acknowledged grant is there (or revoked since)
        assert revoked_acks <= revoked and not revoked_acks & active
        assert problems == {}  # arrays equal purchases, nothing half-written, rollups exact
        # exactly one audit entry per change that happened, acknowledged or not
        assert sorted(audit) == sorted([("grant", p) for p in active | revoked] + [("revoke", p) for p in revoked])
