"""Transient errors the MongoDB way: faults injected with the `failCommand` fail point.

The same test runs unchanged against a MongoDB replica set started with
`--setParameter enableTestCommands=1` (MONGODB_URI): the embedded server speaks the command.
"""

from contextlib import contextmanager

import pytest
from bson import ObjectId

from core import PurchaseError, create_purchase, get_data_version, has_purchased, remove_purchase
from core.operations import rollup_differences
from core.storage.schema import AUDIT, PURCHASES, REVOKED, USERS

WRITE_CONFLICT = {"errorCode": 112, "errorLabels": ["TransientTransactionError"]}
UNKNOWN_COMMIT = {"errorCode": 91, "errorLabels": ["UnknownTransactionCommitResult"]}  # ShutdownInProgress


@contextmanager
def fail_point(db, commands: list[str], times: int, error: dict):
    admin = db.client.admin
    admin.command({"configureFailPoint": "failCommand", "mode": {"times": times},
                   "data": {"failCommands": commands, **error}})
    try:
        yield
    finally:
        admin.command({"configureFailPoint": "failCommand", "mode": "off"})


FAULTS = [
    pytest.param(["update"], 1, WRITE_CONFLICT, id="write-conflict-once"),
    pytest.param(["update"], 3, WRITE_CONFLICT, id="write-conflict-3-times"),
    pytest.param(["insert", "update", "findAndModify"], 2, WRITE_CONFLICT, id="write-conflict-any-write"),
    pytest.param(["commitTransaction"], 1, UNKNOWN_COMMIT, id="unknown-commit-result"),
    pytest.param(["commitTransaction"], 2, UNKNOWN_COMMIT, id="unknown-commit-result-twice"),
]


@pytest.mark.parametrize(("commands", "times", "error"), FAULTS)
def test_a_grant_under_transient_faults_lands_exactly_once(db, catalog, commands, times, error):
    user, course = catalog["user"], catalog["courses"][0]
    version = get_data_version(db)

    with fail_point(db, commands, times, error):
        purchase = create_purchase(db, user, course, None, {"amount": 29.99, "paymentMethod": "paypal"})

    assert [p["_id"] for p in db[PURCHASES].find({"user": user})] == [purchase["_id"]]
    assert db[USERS].find_one({"_id": user})["purchasedCourses"] == [course]
    assert [e["purchase"] for e in db[AUDIT].find({"user": user})] == [purchase["_id"]]
    assert get_data_version(db) == version + 1
    assert has_purchased(db, user, course)
    assert rollup_differences(db) == []


@pytest.mark.parametrize(("commands", "times", "error"), FAULTS)
def test_a_revocation_under_transient_faults_lands_exactly_once(db, catalog, commands, times, error):
    user, test = catalog["user"], catalog["tests"][0]
    purchase = create_purchase(db, user, None, test, {"amount": 9.99, "paymentMethod": "stripe"})
    version = get_data_version(db)

    with fail_point(db, commands, times, error):
        revoked = remove_purchase(db, user, None, test, actor="ops@example.com", reason="refund")

    assert revoked["_id"] == purchase["_id"]
    assert db[PURCHASES].count_documents({"user": user}) == 0
    assert [r["_id"] for r in db[REVOKED].find({"user": user})] == [purchase["_id"]]
    assert db[USERS].find_one({"_id": user})["purchasedTests"] == []
    assert sorted(e["action"] for e in db[AUDIT].find({"user": user})) == ["grant", "revoke"]
    assert get_data_version(db) == version + 1
    assert rollup_differences(db) == []


def test_a_fault_that_does_not_go_away_ends_as_a_core_error_and_writes_nothing(db, catalog):
    user, course = catalog["user"], catalog["courses"][1]
    before = {name: list(db[name].find()) for name in (PURCHASES, USERS, AUDIT)}

    with fail_point(db, ["update"], 10_000, WRITE_CONFLICT), pytest.raises(PurchaseError):
        create_purchase(db, user, course, None, {"amount": 5, "paymentMethod": "paypal"})

    assert {name: list(db[name].find()) for name in (PURCHASES, USERS, AUDIT)} == before


def test_a_read_that_fails_once_is_retried_or_named(db, catalog):
    """A transient error on a read is retried by the driver; no raw pymongo error reaches the caller."""
    with fail_point(db, ["find"], 1, {"errorCode": 91, "errorLabels": ["RetryableWriteError"]}):
        try:
            owned = has_purchased(db, catalog["user"], ObjectId())
        except PurchaseError:
            owned = None
    assert owned in (False, None)
