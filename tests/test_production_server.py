"""The production server as `make run` starts it: gunicorn, the embedded database in its own
process, a worker that takes the database over when that process dies."""

import os
import signal
import time
from pathlib import Path

import psutil
import pytest
import requests
from pymongo.errors import PyMongoError

from core import open_database
from database.opening import LOCK_NAME
from tests.conftest import host_port, production_server

ROOT = Path(__file__).resolve().parent.parent
pytestmark = pytest.mark.skipif(bool(os.environ.get("MONGODB_URI")), reason="about the embedded default")


@pytest.fixture
def gunicorn(tmp_path):
    with production_server(tmp_path) as (process, base):
        yield process, base, tmp_path


def database_process(gunicorn_process) -> psutil.Process:
    found = [p for p in psutil.Process(gunicorn_process.pid).children() if "database" in p.cmdline()]
    assert len(found) == 1
    return found[0]


def test_the_database_has_its_own_process_and_a_worker_takes_over_when_it_dies(gunicorn):
    process, base, data_dir = gunicorn
    database = database_process(process)
    with open_database(data_dir=data_dir) as joined:
        assert joined.server is None  # the folder is served by the database process
        address = joined.uri
        joined.db.notes.insert_one({"_id": "before"})
        database.kill()
        database.wait(10)
        # a worker notices within a second that the folder's lock is free, and serves the same
        # address again, with the data intact
        give_up = time.monotonic() + 60
        while True:
            try:
                found = joined.db.notes.find_one({"_id": "before"})
                break
            except PyMongoError:
                assert time.monotonic() < give_up, "nobody took the database over"
                time.sleep(0.2)
        assert found == {"_id": "before"}
        assert host_port((data_dir / LOCK_NAME).read_text()) == host_port(address)
    assert requests.get(base + "/login", timeout=10).status_code == 200


def test_stopping_gunicorn_stops_the_database_process(gunicorn):
    process, _, data_dir = gunicorn
    database = database_process(process)
    process.send_signal(signal.SIGTERM)
    process.wait(timeout=60)
    database.wait(30)
    with open_database(data_dir=data_dir) as reopened:
        assert reopened.server is not None  # nobody else holds the folder
