"""A rollup rebuild killed at any moment never leaves analytics unusable or wrong.

A child process joins the test's embedded server (or MONGODB_URI), rebuilds, stops at a
chosen moment and is SIGKILLed there; analytics must answer at once with the figures of
before, writes must go on, and the next rebuild must succeed once the dead one's lease
(shortened here) runs out.
"""

import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from core import create_purchase, get_purchase_analytics, open_database
from core.analytics.rollups import SET_SEPARATOR, active_collections
from core.changes import read_version
from core.operations import rebuild_rollups, rollup_differences, seed_demo
from core.storage.schema import COURSES, DATA_VERSION, ROLLUP_COLLECTIONS, USERS

ROOT = Path(__file__).resolve().parent.parent
LEASE = 2.0  # the killed rebuild's lease, short so that the test is quick; the default is 15 s
ANSWER_WITHIN = 5.0  # seconds for analytics right after the kill: no waiting for any rebuild
FIGURES = ("totalRevenue", "totalPurchases", "revenueByPeriod", "paymentMethods", "popularCourses",
           "popularTests", "revoked")
REBUILDER = """
import time
from core import open_database
from core.operations import rebuild

rebuild.LEASE_SECONDS, rebuild.RENEW_SECONDS = {lease}, 0.2
opened = open_database(uri={uri!r}, data_dir={folder!r}, db_name={name!r})
stop_at = {stop_at!r}


def stop_here(moment):
    if moment == stop_at:
        print(moment, flush=True)
        time.sleep(600)  # the test kills the process here


real_between, real_switch, real_drop = rebuild._between, rebuild._switch, rebuild._drop_other_sets
reads = []


def between(*args, **kwargs):
    reads.append(args)
    if len(reads) == 3:  # the first month written, the second being read
        stop_here("reading")
    return real_between(*args, **kwargs)


def drop_other_sets(db, keep):
    stop_here("claimed")
    real_drop(db, keep)


def switch(*args):
    done = real_switch(*args)
    stop_here("switched")  # the new set is in use; the old one and the lease are still there
    return done


rebuild._between, rebuild._switch, rebuild._drop_other_sets = between, switch, drop_other_sets
print("started", flush=True)
while True:
    rebuild.rebuild_rollups(opened.db, lambda written, total: stop_here("writing"))
"""


@pytest.fixture
def deployment(tmp_path):
    uri = os.environ.get("MONGODB_URI", "")
    opened = open_database(uri=uri, data_dir=tmp_path, db_name=f"rebuild_{os.getpid()}_{time.monotonic_ns()}")
    # few purchases: the child writes its rollups over the wire, ~15 ms a document on mongoeco
    seed_demo(opened.db, users=100, items=20, purchases=400, seed=5)
    yield opened, uri, tmp_path
    if uri:
        opened.client.drop_database(opened.db.name)
    opened.close()


def start_rebuilder(deployment, stop_at: str | None) -> subprocess.Popen:
    opened, uri, folder = deployment
    code = REBUILDER.format(lease=LEASE, uri=uri, folder=str(folder), name=opened.db.name, stop_at=stop_at)
    child = subprocess.Popen([sys.executable, "-c", code], cwd=ROOT, stdout=subprocess.PIPE, text=True)
    assert child.stdout.readline().strip() == "started"
    return child


def kill(child: subprocess.Popen) -> None:
    child.send_signal(signal.SIGKILL)
    child.wait()


def assert_answers_at_once_with(db, expected: dict) -> None:
    started = time.monotonic()
    figures = get_purchase_analytics(db, {"startDate": "2000-01-01"})
    assert time.monotonic() - started < ANSWER_WITHIN
    for name in FIGURES:
        assert figures[name] == expected[name], name
    assert rollup_differences(db) == []


def sell_one(db) -> None:
    """A sale after the kill: writers go on, into the set in use."""
    user = db[USERS].find_one({"purchasedCourses.0": {"$exists": False}}) or db[USERS].find_one()
    owned = set(user.get("purchasedCourses") or [])
    course = next(c["_id"] for c in db[COURSES].find() if c["_id"] not in owned)
    create_purchase(db, user["_id"], course, None, {"amount": 12.34, "paymentMethod": "paypal"})


def assert_a_second_rebuild_succeeds(db) -> None:
    started = time.monotonic()
    rebuild_rollups(db)  # waits for the dead rebuild's lease to run out
    assert time.monotonic() - started < LEASE + 60
    assert rollup_differences(db) == []
    assert not read_version(db).get("rebuild")  # the lease is released
    # what the killed rebuild wrote, or switched away from, is dropped by the next rebuilds;
    # an insert it sent just before it died may still be running on the server meanwhile
    give_up_at = time.monotonic() + 60
    while (left := leftover_collections(db)) and time.monotonic() < give_up_at:
        time.sleep(1)
        rebuild_rollups(db)
    assert not left


def leftover_collections(db) -> set[str]:
    in_use = set(active_collections(db))
    return {n for n in db.list_collection_names() if n.partition(SET_SEPARATOR)[0] in ROLLUP_COLLECTIONS} - in_use


@pytest.mark.parametrize("moment", ["claimed", "reading", "writing", "switched"])
def test_a_rebuild_killed_at_a_moment_leaves_analytics_answering_and_exact(deployment, moment):
    db = deployment[0].db
    expected = get_purchase_analytics(db, {"startDate": "2000-01-01"})
    child = start_rebuilder(deployment, moment)
    assert child.stdout.readline().strip() == moment
    kill(child)

    assert_answers_at_once_with(db, expected)
    sell_one(db)
    after_sale = get_purchase_analytics(db, {"startDate": "2000-01-01"})
    assert after_sale["totalPurchases"] == expected["totalPurchases"] + 1
    assert rollup_differences(db) == []
    assert_a_second_rebuild_succeeds(db)
    assert_answers_at_once_with(db, after_sale)


def test_rebuilds_killed_at_random_moments_leave_analytics_answering_and_exact(deployment):
    db = deployment[0].db
    expected = get_purchase_analytics(db, {"startDate": "2000-01-01"})
    rng = random.Random(7)
    for _ in range(2):
        child = start_rebuilder(deployment, None)  # rebuilds over and over until killed
        time.sleep(rng.uniform(0.1, 3.0))
        kill(child)
        assert_answers_at_once_with(db, expected)
    assert_a_second_rebuild_succeeds(db)


def test_a_rebuilding_flag_left_by_an_older_release_and_empty_rollups_are_repaired(deployment):
    """The issue's case: an older release rebuilt in place, `rebuilding: true` stayed set and
    the rollups are gone; the next reader rebuilds them."""
    db = deployment[0].db
    expected = get_purchase_analytics(db, {"startDate": "2000-01-01"})
    db[DATA_VERSION].update_one({"_id": "purchases"}, {"$set": {"rebuilding": True}})
    for name in active_collections(db):
        db[name].delete_many({})

    figures = get_purchase_analytics(db, {"startDate": "2000-01-01"})

    for name in FIGURES:
        assert figures[name] == expected[name], name
    assert rollup_differences(db) == []
    assert "rebuilding" not in db[DATA_VERSION].find_one({"_id": "purchases"})
