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
from contextlib import contextmanager

import pymongo
import pytest
from bson import Int64
from pymongo import MongoClient
from pymongo.errors import ConnectionFailure, ExecutionTimeout, OperationFailure
from pymongo.monitoring import CommandListener

from core.storage.transactions import READ_ONLY_COMMENT, run_in_transaction
from database.embedded import EmbeddedServer

pytestmark = pytest.mark.skipif(bool(os.environ.get("MONGODB_URI")), reason="about the embedded server")


def wait_for(condition, what: str, cap: float = 30.0) -> None:
    """Until `condition()` holds: the event a step needs, not a guess at how long it takes."""
    give_up = time.monotonic() + cap
    while not condition():
        assert time.monotonic() < give_up, f"{what}: not within {cap} s"
        time.sleep(0.01)


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


class Failures(CommandListener):
    """(command, code) of each command the server failed; code None for a dropped connection."""

    def __init__(self):
        self.seen = []

    def started(self, event):
        pass

    def succeeded(self, event):
        pass

    def failed(self, event):
        self.seen.append((event.command_name, event.failure.get("code") if isinstance(event.failure, dict) else None))


@contextmanager
def fail_point(db, commands, times, **data):
    admin = db.client.admin
    admin.command({"configureFailPoint": "failCommand", "mode": {"times": times},
                   "data": {"failCommands": commands, **data}})
    try:
        yield
    finally:
        admin.command({"configureFailPoint": "failCommand", "mode": "off"})


def test_fail_points_fire_on_commit_and_abort_as_on_any_command(server):
    failures = Failures()
    client = MongoClient(server.uri, event_listeners=[failures])
    db, session = client.queue, client.start_session()

    session.start_transaction()
    db.fp.insert_one({"n": 1}, session=session)
    with fail_point(db, ["commitTransaction"], 1, closeConnection=True), pytest.raises(ConnectionFailure) as dropped:
        session.commit_transaction()
    assert dropped.value.has_error_label("UnknownTransactionCommitResult")
    assert failures.seen == [("commitTransaction", None)]
    session.commit_transaction()  # the connection dropped before the commit: committing again commits

    session.start_transaction()
    db.fp.insert_one({"n": 2}, session=session)
    with fail_point(db, ["abortTransaction"], 1, errorCode=91):
        session.abort_transaction()  # pymongo ignores a failed abort
    assert failures.seen[1:] == [("abortTransaction", 91)]

    session.start_transaction()  # the next txnNumber ends transaction 2, still open on the server
    db.fp.insert_one({"n": 3}, session=session)
    session.commit_transaction()
    assert sorted(d["n"] for d in db.fp.find()) == [1, 3]
    session.end_session()
    client.close()


def test_a_commit_failed_as_no_such_transaction_leaves_nothing_open_and_nothing_committed(db):
    session = db.client.start_session()
    session.start_transaction()
    db.gone.insert_one({"n": 1}, session=session)
    no_such_transaction = {"errorCode": 251, "errorLabels": ["TransientTransactionError"]}
    with fail_point(db, ["commitTransaction"], 1, **no_such_transaction), pytest.raises(OperationFailure) as failed:
        session.commit_transaction()
    assert failed.value.code == 251 and failed.value.has_error_label("TransientTransactionError")

    with pymongo.timeout(1.0):  # within the 2 s lifetime: no transaction holds the engine
        assert db.gone.find_one() is None
    with pytest.raises(OperationFailure) as again:
        session.commit_transaction()  # and committing it again cannot bring it back
    assert again.value.code == 251
    assert db.gone.count_documents({}) == 0
    session.end_session()


def test_the_next_txn_number_aborts_the_transaction_left_open_by_an_unknown_commit(db):
    """What pymongo does after a commit whose outcome is unknown, when its caller tries again
    on the same session: the next transaction starts afresh, without the first one's writes."""
    session = db.client.start_session()
    session.start_transaction()
    db.attempts.insert_one({"attempt": 1}, session=session)
    unknown_commit = {"errorCode": 50, "errorLabels": ["UnknownTransactionCommitResult"]}  # MaxTimeMSExpired
    with fail_point(db, ["commitTransaction"], 1, **unknown_commit), pytest.raises(OperationFailure):
        session.commit_transaction()  # not committed, and left open on the server

    session.start_transaction()
    db.attempts.insert_one({"attempt": 2}, session=session)
    session.commit_transaction()
    assert [d["attempt"] for d in db.attempts.find()] == [2]
    session.end_session()


def test_txn_numbers_count_as_on_mongodb(db):
    """Raw commands on one session, each with the txnNumber it names."""
    session = db.client.start_session()

    def insert(number, **fields):
        return db.command({"insert": "numbered", "documents": [{"txn": number}], "txnNumber": Int64(number),
                           "autocommit": False, **fields}, session=session)

    def end(command, number):
        return db.client.admin.command({command: 1, "txnNumber": Int64(number), "autocommit": False},
                                       session=session)

    def refused(call, *args):
        with pytest.raises(OperationFailure) as raised:
            call(*args)
        return raised.value.code, raised.value.has_error_label("TransientTransactionError")

    insert(5, startTransaction=True)
    assert refused(insert, 4) == (225, False)  # TransactionTooOld
    assert refused(insert, 6) == (251, True)  # NoSuchTransaction: 6 never started, 5 goes on
    insert(5)
    insert(7, startTransaction=True)  # aborts 5
    assert refused(end, "commitTransaction", 5) == (225, False)  # older than the open transaction 7
    end("commitTransaction", 7)
    end("commitTransaction", 7)  # a retried commit of a committed transaction succeeds
    assert refused(insert, 7) == (251, True)  # not run outside any transaction
    assert [d["txn"] for d in db.numbered.find()] == [7]
    session.end_session()


def test_a_read_only_snapshot_is_served_ahead_of_the_writers_in_line(db, server):
    db.counter.insert_one({"_id": 0, "n": 0})
    order, lock = [], threading.Lock()

    def step(name):
        with lock:
            order.append(name)

    def writer(name):
        run_in_transaction(db, lambda s: (db.counter.update_one({"_id": 0}, {"$inc": {"n": 1}}, session=s), step(name)))

    def reader():
        def work(s):
            n = db.counter.find_one({"_id": 0}, session=s, comment=READ_ONLY_COMMENT)["n"]
            step(f"reader saw {n}")
        run_in_transaction(db, work)

    client = db.client
    with client.start_session() as holder:
        holder.start_transaction()
        db.counter.update_one({"_id": 0}, {"$inc": {"n": 1}}, session=holder)  # the engine is taken
        queue = server.proxy.queue
        threads = [threading.Thread(target=writer, args=(f"writer {i}",)) for i in range(3)]
        for n, thread in enumerate(threads, start=1):
            thread.start()
            wait_for(lambda n=n: len(queue._waiting_transactions) == n, "writer in line")  # in this order
        threads.append(threading.Thread(target=reader))
        threads[-1].start()
        wait_for(lambda: len(queue._waiting_readers) == 1, "reader in line")
        holder.commit_transaction()
    for thread in threads:
        thread.join()
    # the reader came last and went first; then the writers in their order
    assert order == ["reader saw 1", "writer 0", "writer 1", "writer 2"]
    assert db.counter.find_one({"_id": 0})["n"] == 4


def test_a_transaction_that_overruns_its_bound_is_aborted_not_left_holding_the_engine(tmp_path):
    """Its commands end a margin before the bound, so the abort still reaches the server: the
    next caller gets the engine at once, not when the transaction is aborted for its age."""
    from core.errors import DatabaseUnavailableError

    slow = EmbeddedServer(tmp_path / "overrun.sqlite", transaction_lifetime=60.0)
    slow.start()
    client = MongoClient(slow.uri)
    db = client.overrun
    try:
        db.c.insert_one({"_id": 0, "n": 0})

        def overrun(session):
            db.c.update_one({"_id": 0}, {"$inc": {"n": 1}}, session=session)
            time.sleep(1.6)  # past the work's share of a 2 s bound, within the bound
            db.c.update_one({"_id": 0}, {"$inc": {"n": 1}}, session=session)

        with pytest.raises(DatabaseUnavailableError):
            run_in_transaction(db, overrun, timeout=2.0)
        started = time.monotonic()
        run_in_transaction(db, lambda s: db.c.update_one({"_id": 0}, {"$inc": {"n": 10}}, session=s), timeout=5.0)
        assert time.monotonic() - started < 4.0  # the engine was free, not held for 60 s
        assert db.c.find_one({"_id": 0})["n"] == 10  # the overrun wrote nothing
    finally:
        client.close()
        slow.stop()
