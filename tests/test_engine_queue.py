"""The embedded server's line in front of its engine: fair, bounded, and rid of dead clients.

Each test starts its own embedded server (they are about that server), with a short
transaction lifetime where the test waits for it.
"""

import os
import signal
import subprocess
import sys
import textwrap
import threading
import time

import pymongo
import pytest
from pymongo import MongoClient
from pymongo.errors import ExecutionTimeout

from core.storage.embedded import EmbeddedServer
from core.storage.transactions import run_in_transaction

pytestmark = pytest.mark.skipif(bool(os.environ.get("MONGODB_URI")), reason="about the embedded server")


@pytest.fixture
def server(tmp_path):
    started = EmbeddedServer(tmp_path / "queue.sqlite", transaction_lifetime=2.0)
    started.start()
    yield started
    started.stop()


@pytest.fixture
def db(server):
    client = MongoClient(server.uri)
    yield client.queue
    client.close()


def test_writers_and_a_reader_wait_in_line_instead_of_being_refused(db):
    db.counter.insert_one({"_id": 0, "n": 0})
    failures, reads = [], []

    def grant(worker):
        for _ in range(15):
            try:
                run_in_transaction(db, lambda s, w=worker: (
                    db.counter.update_one({"_id": 0}, {"$inc": {"n": 1}}, session=s),
                    db.log.insert_one({"worker": w}, session=s)))
            except Exception as error:  # noqa: BLE001 - collected and asserted below
                failures.append(error)

    def read(until):
        while time.monotonic() < until:
            try:
                reads.append(db.counter.find_one({"_id": 0})["n"])
            except Exception as error:  # noqa: BLE001 - collected and asserted below
                failures.append(error)

    threads = [threading.Thread(target=grant, args=(w,)) for w in range(6)]
    threads.append(threading.Thread(target=read, args=(time.monotonic() + 2,)))
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert failures == []
    assert db.counter.find_one({"_id": 0})["n"] == 90 == db.log.count_documents({})
    assert len(reads) > 10 and reads == sorted(reads)  # reads saw only committed, growing counts


def test_a_client_killed_inside_a_transaction_holds_the_engine_only_for_the_lifetime(db, server):
    script = textwrap.dedent(f"""
        import os, signal
        from pymongo import MongoClient
        client = MongoClient({server.uri!r})
        session = client.start_session()
        session.start_transaction()
        client.queue.orphans.insert_one({{"from": "dead client"}}, session=session)
        print("open", flush=True)
        os.kill(os.getpid(), signal.SIGKILL)
    """)
    dead = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60)
    assert dead.returncode == -signal.SIGKILL and "open" in dead.stdout
    started = time.monotonic()
    with pymongo.timeout(10):
        assert db.orphans.find_one() is None  # waited for the abort, then saw nothing of it
    assert time.monotonic() - started < 2.0 + 1.5
    run_in_transaction(db, lambda s: db.orphans.insert_one({"from": "live client"}, session=s))
    assert [d["from"] for d in db.orphans.find()] == ["live client"]


def test_a_wait_ends_at_the_clients_time_limit_and_the_line_moves_on(db):
    holder = db.client.start_session()
    holder.start_transaction()
    db.held.insert_one({"n": 1}, session=holder)
    started = time.monotonic()
    # maxTimeMS alone: under pymongo.timeout the client's socket gives up at the same moment,
    # and a loaded machine then sees its NetworkTimeout before the server's answer
    with pytest.raises(ExecutionTimeout):
        db.held.find_one(max_time_ms=400)
    assert time.monotonic() - started < 1.5
    holder.commit_transaction()
    holder.end_session()
    assert db.held.count_documents({}) == 1


def test_a_transaction_aborted_for_its_age_is_retried_whole_by_the_driver(db):
    attempts = []

    def slow_first_time(session):
        attempts.append(time.monotonic())
        db.slow.insert_one({"attempt": len(attempts)}, session=session)
        if len(attempts) == 1:
            time.sleep(3.0)  # outlives the 2 s lifetime: the server aborts it
        db.slow.insert_one({"attempt": len(attempts), "second": True}, session=session)

    run_in_transaction(db, slow_first_time)
    assert len(attempts) == 2
    assert sorted(d["attempt"] for d in db.slow.find()) == [2, 2]  # nothing of the aborted attempt
