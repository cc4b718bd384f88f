"""Transient errors the MongoDB way: faults injected with the `failCommand` fail point.

The same tests run unchanged against a MongoDB replica set started with
`--setParameter enableTestCommands=1` (MONGODB_URI). Every test proves its fault fired: the
core call runs through a client whose commands are recorded, and the failures the server
sent are counted.
"""

import functools
import threading
from contextlib import contextmanager

import pytest
from bson import ObjectId
from pymongo import MongoClient
from pymongo.monitoring import CommandListener

from core import (
    DatabaseUnavailableError,
    GrantRequest,
    PurchaseError,
    create_purchase,
    get_audit_log,
    get_data_version,
    get_purchase_analytics,
    get_purchase_history,
    get_recent_activity,
    has_purchased,
    purchase_items,
    remove_purchase,
)
from core.catalog import get_item, list_items
from core.customers import get_customer
from core.operations import check_consistency, rollup_differences
from core.storage import retry
from core.storage.schema import AUDIT, IDEMPOTENCY, PURCHASES, REVOKED, USERS
from core.storage.transactions import run_in_transaction
from database.opening import CLIENT_OPTIONS

WRITE_CONFLICT = {"errorCode": 112, "errorLabels": ["TransientTransactionError"]}
UNKNOWN_COMMIT = {"errorCode": 91, "errorLabels": ["UnknownTransactionCommitResult"]}  # ShutdownInProgress
NO_SUCH_TRANSACTION = {"errorCode": 251, "errorLabels": ["TransientTransactionError"]}
COMMIT_TIMED_OUT = {"errorCode": 50, "errorLabels": ["UnknownTransactionCommitResult"]}  # MaxTimeMSExpired
SHUTTING_DOWN = {"errorCode": 91}  # a retryable read error: NotPrimaryError in pymongo
HOST_UNREACHABLE = {"errorCode": 6}  # a retryable read error pymongo hands on as OperationFailure
CARD = {"amount": 29.99, "paymentMethod": "paypal"}


class Recorder(CommandListener):
    """The commands a client sent and the errors the server answered."""

    def __init__(self):
        self.lock = threading.Lock()
        self.failures: list[tuple[str, int | None]] = []

    def started(self, event):
        pass

    def succeeded(self, event):
        pass

    def failed(self, event):
        failure = event.failure if isinstance(event.failure, dict) else {}
        with self.lock:
            self.failures.append((event.command_name, failure.get("code")))

    def count(self, commands: list[str], code: int) -> int:
        with self.lock:
            return sum(name in commands and failed == code for name, failed in self.failures)


@pytest.fixture
def watched(opened_database, db):
    """The test's database through a second client whose failed commands are recorded."""
    recorder = Recorder()
    client = MongoClient(opened_database.uri, event_listeners=[recorder], **CLIENT_OPTIONS)
    yield client[db.name], recorder
    client.close()


@pytest.fixture
def short_bounds(monkeypatch):
    """Writes give up after 2 s and reads after 0.3 s instead of 10 s: the same paths, sooner."""
    monkeypatch.setattr("core.purchases.commands.run_in_transaction", functools.partial(run_in_transaction, timeout=2.0))
    monkeypatch.setattr(retry, "DEADLINE_SECONDS", 0.3)


@contextmanager
def fail_point(db, commands: list[str], times: int | None, error: dict):
    """failCommand on `commands` for `times` matching commands (None: until the block ends)."""
    admin = db.client.admin
    mode = "alwaysOn" if times is None else {"times": times}
    admin.command({"configureFailPoint": "failCommand", "mode": mode, "data": {"failCommands": commands, **error}})
    try:
        yield
    finally:
        admin.command({"configureFailPoint": "failCommand", "mode": "off"})


def assert_whole(db) -> None:
    """Arrays equal purchases, rollups equal a fresh aggregation: nothing half-written."""
    assert {name: found for name, found in check_consistency(db).items() if found} == {}
    assert rollup_differences(db) == []


FAULTS = [
    pytest.param(["update"], 1, WRITE_CONFLICT, id="write-conflict-once"),
    pytest.param(["update"], 3, WRITE_CONFLICT, id="write-conflict-3-times"),
    pytest.param(["update", "findAndModify"], 5, WRITE_CONFLICT, id="write-conflict-any-write-5-times"),
    pytest.param(["find"], 2, WRITE_CONFLICT, id="write-conflict-on-a-read-in-the-transaction"),
    pytest.param(["commitTransaction"], 1, UNKNOWN_COMMIT, id="unknown-commit-result"),
    pytest.param(["commitTransaction"], 3, UNKNOWN_COMMIT, id="unknown-commit-result-3-times"),
    # the server aborted the transaction: pymongo runs it again on the same session with the
    # next txnNumber, which starts it afresh
    pytest.param(["commitTransaction"], 1, NO_SUCH_TRANSACTION, id="transient-commit-error"),
]


@pytest.mark.parametrize(("commands", "times", "error"), FAULTS)
def test_a_grant_under_transient_faults_lands_exactly_once(watched, catalog, commands, times, error):
    db, recorder = watched
    user, course = catalog["user"], catalog["courses"][0]
    version = get_data_version(db)

    with fail_point(db, commands, times, error):
        purchase = create_purchase(db, user, course, None, CARD)

    assert recorder.count(commands, error["errorCode"]) == times  # the faults did fire
    assert [p["_id"] for p in db[PURCHASES].find({"user": user})] == [purchase["_id"]]
    assert db[USERS].find_one({"_id": user})["purchasedCourses"] == [course]
    assert [(e["action"], e["purchase"]) for e in db[AUDIT].find({"user": user})] == [("grant", purchase["_id"])]
    assert get_data_version(db) == version + 1
    assert has_purchased(db, user, course)
    assert_whole(db)


@pytest.mark.parametrize(("commands", "times", "error"), FAULTS)
def test_a_revocation_under_transient_faults_lands_exactly_once(watched, catalog, commands, times, error):
    db, recorder = watched
    user, test = catalog["user"], catalog["tests"][0]
    purchase = create_purchase(db, user, None, test, {"amount": 9.99, "paymentMethod": "stripe"})
    version = get_data_version(db)

    with fail_point(db, commands, times, error):
        revoked = remove_purchase(db, user, None, test, actor="ops@example.com", reason="refund")

    assert recorder.count(commands, error["errorCode"]) == times
    assert revoked["_id"] == purchase["_id"]
    assert db[PURCHASES].count_documents({"user": user}) == 0
    assert [r["_id"] for r in db[REVOKED].find({"user": user})] == [purchase["_id"]]
    assert db[USERS].find_one({"_id": user})["purchasedTests"] == []
    assert sorted(e["action"] for e in db[AUDIT].find({"user": user})) == ["grant", "revoke"]
    assert get_data_version(db) == version + 1
    assert not has_purchased(db, user, None, test)
    assert_whole(db)


def test_a_fault_that_does_not_go_away_ends_as_a_core_error_and_writes_nothing(watched, catalog, short_bounds):
    db, recorder = watched
    user, course = catalog["user"], catalog["courses"][1]
    before = {name: list(db[name].find()) for name in (PURCHASES, USERS, AUDIT, IDEMPOTENCY)}
    version = get_data_version(db)

    with fail_point(db, ["update"], None, WRITE_CONFLICT), pytest.raises(DatabaseUnavailableError):
        create_purchase(db, user, course, None, {**CARD, "idempotencyKey": "evt_stuck"})

    assert recorder.count(["update"], 112) > 1  # retried, then given up within the bound
    assert {name: list(db[name].find()) for name in (PURCHASES, USERS, AUDIT, IDEMPOTENCY)} == before
    assert get_data_version(db) == version
    assert not has_purchased(db, user, course)


def test_a_commit_whose_outcome_stays_unknown_is_named_and_a_retry_with_its_key_lands_once(watched, catalog):
    """MaxTimeMSExpired on commit: pymongo does not retry it (the result is unknown); core says
    so, and the caller's retry with the same idempotencyKey grants once."""
    db, recorder = watched
    user, course = catalog["user"], catalog["courses"][1]
    data = {**CARD, "idempotencyKey": "evt_unknown_commit"}
    version = get_data_version(db)

    with fail_point(db, ["commitTransaction"], 1, COMMIT_TIMED_OUT), pytest.raises(DatabaseUnavailableError,
                                                                                    match="may or may not"):
        create_purchase(db, user, course, None, data)
    assert recorder.count(["commitTransaction"], 50) == 1

    purchase = create_purchase(db, user, course, None, data)
    again = create_purchase(db, user, course, None, data)  # and a second retry is a replay

    assert again["_id"] == purchase["_id"]
    assert [p["_id"] for p in db[PURCHASES].find({"user": user})] == [purchase["_id"]]
    assert db[USERS].find_one({"_id": user})["purchasedCourses"] == [course]
    assert [e["purchase"] for e in db[AUDIT].find({"user": user})] == [purchase["_id"]]
    assert get_data_version(db) == version + 1
    assert_whole(db)


READERS = {
    "has_purchased": lambda db, c: has_purchased(db, c["user"], c["courses"][0]),
    "get_purchase_history": lambda db, c: get_purchase_history(db, c["user"]),
    "get_purchase_analytics": lambda db, c: get_purchase_analytics(db, {"startDate": "2024-01-01"}),
    "get_audit_log": lambda db, c: get_audit_log(db, {"user": c["user"]}),
    "get_recent_activity": lambda db, c: get_recent_activity(db, 5),
    "get_data_version": lambda db, c: get_data_version(db),
    "get_customer": lambda db, c: get_customer(db, c["user"]),
    "list_items": lambda db, c: list_items(db),
    "get_item": lambda db, c: get_item(db, "test", c["tests"][0]),
}
READS = ["find", "aggregate"]


def comparable(answer):
    """An answer without the moment it was computed at."""
    if isinstance(answer, dict):
        return {k: comparable(v) for k, v in answer.items() if k != "asOf"}
    return answer


@pytest.mark.parametrize(("times", "error"), [(1, SHUTTING_DOWN), (3, HOST_UNREACHABLE)], ids=["once", "3-times"])
def test_a_read_that_fails_for_a_moment_is_retried(watched, catalog, times, error):
    """Once (the driver retries) or three times (core retries after the driver): every reader
    answers what it answers without faults."""
    db, recorder = watched
    create_purchase(db, catalog["user"], catalog["courses"][0], None, CARD)
    for reader, read in READERS.items():
        expected = comparable(read(db, catalog))
        failed = recorder.count(READS, error["errorCode"])
        with fail_point(db, READS, times, error):
            assert comparable(read(db, catalog)) == expected, reader
        assert recorder.count(READS, error["errorCode"]) - failed == times, reader


@pytest.mark.parametrize("error", [SHUTTING_DOWN, HOST_UNREACHABLE, WRITE_CONFLICT], ids=["91", "6", "112"])
def test_a_read_that_keeps_failing_ends_as_a_core_error(watched, catalog, short_bounds, error):
    """Never a raw pymongo error: DatabaseUnavailableError, after the driver's retry and core's."""
    db, recorder = watched
    for reader, read in READERS.items():
        failed = recorder.count(READS, error["errorCode"])
        with fail_point(db, READS, None, error), pytest.raises(PurchaseError) as raised:
            read(db, catalog)
        assert isinstance(raised.value, DatabaseUnavailableError), (reader, raised.value)
        assert recorder.count(READS, error["errorCode"]) - failed >= 2, reader  # the driver's retry at least
        assert read(db, catalog) is not None, reader  # and the fault gone, it answers again


def test_the_user_id_in_a_failing_read_is_not_mistaken_for_a_missing_user(watched, catalog):
    """A fault on the point read of has_purchased never reads as "no such user"."""
    db, _ = watched
    with fail_point(db, ["find"], 1, SHUTTING_DOWN):
        assert has_purchased(db, catalog["user"], ObjectId()) is False


@pytest.mark.parametrize(("commands", "times", "error"), FAULTS)
def test_a_batch_of_grants_under_transient_faults_lands_exactly_once(watched, catalog, commands, times, error):
    db, recorder = watched
    requests = [GrantRequest(user, course, None, {**CARD, "idempotencyKey": f"row-{user}-{course}"})
                for user in (catalog["user"], catalog["other_user"]) for course in catalog["courses"]]
    version = get_data_version(db)

    with fail_point(db, commands, times, error):
        results = purchase_items(db, requests, source="bulk")

    assert recorder.count(commands, error["errorCode"]) == times
    assert all(not isinstance(r, Exception) and not r.replayed for r in results)
    assert sorted(p["_id"] for p in db[PURCHASES].find()) == sorted(r.document["_id"] for r in results)
    assert db[AUDIT].count_documents({"source": "bulk"}) == len(requests)
    assert get_data_version(db) == version + len(requests)
    assert_whole(db)
