"""A rollup rebuild killed at any moment never leaves analytics unusable or wrong."""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from core import get_purchase_analytics, open_database
from core.changes import read_version
from core.operations import rollup_differences, seed_demo
from core.storage.schema import DATA_VERSION, ROLLUP_COLLECTIONS

ROOT = Path(__file__).resolve().parent.parent
LEASE = 2.0  # the killed rebuild's lease, short so that the test is quick; the default is 15 s
REBUILDER = """
import sys
from core import open_database
from core.operations import rebuild
rebuild.LEASE_SECONDS, rebuild.RENEW_SECONDS = {lease}, 0.2
opened = open_database(uri={uri!r}, data_dir={folder!r}, db_name={name!r})
print("rebuilding", flush=True)
while True:
    rebuild.rebuild_rollups(opened.db)
"""


@pytest.fixture
def deployment(tmp_path):
    uri = os.environ.get("MONGODB_URI", "")
    opened = open_database(uri=uri, data_dir=tmp_path, db_name=f"rebuild_{os.getpid()}_{time.monotonic_ns()}")
    seed_demo(opened.db, users=300, items=20, purchases=2500, seed=5)
    yield opened, uri, tmp_path
    if uri:
        opened.client.drop_database(opened.db.name)
    opened.close()


@pytest.mark.parametrize("delays", [(0.3, 2.0)])
def test_a_rebuild_killed_anywhere_leaves_the_rollups_in_use_whole(deployment, delays):
    opened, uri, folder = deployment
    db = opened.db
    expected = get_purchase_analytics(db, {"startDate": "2000-01-01"})
    for delay in delays:
        code = REBUILDER.format(lease=LEASE, uri=uri, folder=str(folder), name=db.name)
        child = subprocess.Popen([sys.executable, "-c", code], cwd=ROOT, stdout=subprocess.PIPE, text=True)
        assert child.stdout.readline().strip() == "rebuilding"
        time.sleep(delay)
        child.send_signal(signal.SIGKILL)
        child.wait()

        started = time.monotonic()
        figures = get_purchase_analytics(db, {"startDate": "2000-01-01"})

        assert time.monotonic() - started < LEASE + 30  # the set in use stays whole: no waiting for a rebuild
        for name in ("totalRevenue", "totalPurchases", "revenueByPeriod", "paymentMethods", "popularCourses", "revoked"):
            assert figures[name] == expected[name], name
        assert rollup_differences(db) == []
        assert not read_version(db).get("rebuilding")


def test_a_rebuilding_flag_left_by_an_older_release_and_empty_rollups_are_repaired(deployment):
    """The issue's case: `rebuilding: true` stays set (no lease) and the rollups are gone."""
    opened, _, _ = deployment
    db = opened.db
    expected = get_purchase_analytics(db, {"startDate": "2000-01-01"})
    db[DATA_VERSION].update_one({"_id": "purchases"}, {"$set": {"rebuilding": True}, "$unset": {"rebuildingUntil": ""}})
    for name in ROLLUP_COLLECTIONS:
        db[name].delete_many({})

    figures = get_purchase_analytics(db, {"startDate": "2000-01-01"})

    assert figures["totalRevenue"] == expected["totalRevenue"] and figures["totalPurchases"] == expected["totalPurchases"]
    assert rollup_differences(db) == []
