"""The lease of core.storage.lease: of claims at once one wins, across clients; a lease runs out
at its deadline; only its holder renews or releases it; each stored layout its jobs use."""

import os
import threading
import time
from datetime import UTC, datetime, timedelta

import pytest
from pymongo import MongoClient

from core.storage.lease import EPOCH, Lease

KEY = "job"


@pytest.fixture
def other_db(db, opened_database):
    """The same database through a second client (pymongo's defaults: naive datetimes)."""
    client = MongoClient(os.environ.get("MONGODB_URI") or opened_database.uri)
    yield client[db.name]
    client.close()


def lease(db, seconds: float = 60.0, **layout) -> Lease:
    return Lease(db, "leases", KEY, seconds=seconds, **layout)


def race(databases: list, claim) -> list:
    """`claim(db, name)` from a thread per entry of `databases`, all at once: what each got."""
    barrier, got = threading.Barrier(len(databases)), [None] * len(databases)

    def contend(n):
        barrier.wait()
        got[n] = claim(databases[n], f"token-{n}")

    threads = [threading.Thread(target=contend, args=(n,)) for n in range(len(databases))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    return got


def test_of_claims_from_two_clients_at_once_one_wins(db, other_db):
    contenders = [db, other_db] * 4
    got = race(contenders, lambda d, token: lease(d).claim(token, upsert=True))  # no document yet
    [winner] = [held for held in got if held is not None]
    assert lease(db).holder(db.leases.find_one())["token"] == winner.token
    assert winner.release()
    got = race(contenders, lambda d, token: lease(d).claim(token))  # the document is there, the lease free
    [winner] = [held for held in got if held is not None]
    assert lease(other_db).holder(other_db.leases.find_one())["token"] == winner.token


def test_a_lease_runs_out_at_its_deadline_and_its_old_holder_changes_nothing(db):
    start = datetime.now(UTC).replace(microsecond=0)  # as BSON keeps it: whole milliseconds
    first = lease(db).claim("first", upsert=True, now=start)
    assert first is not None and first.document["lease"]["until"] == start + timedelta(seconds=60)
    assert lease(db).claim("second", now=start + timedelta(seconds=30)) is None
    assert lease(db).holder(db.leases.find_one(), start + timedelta(seconds=30))["token"] == "first"
    assert lease(db).holder(db.leases.find_one(), start + timedelta(seconds=61)) is None
    second = lease(db).claim("second", now=start + timedelta(seconds=61))
    assert second is not None
    assert not first.renew() and not first.release()  # it stalled and was taken over
    assert lease(db).holder(db.leases.find_one())["token"] == "second"


def test_only_the_holder_renews_or_releases(db):
    held = lease(db, seconds=5).claim("mine", holder={"who": "me"}, upsert=True)
    before = db.leases.find_one()
    stranger = lease(db, seconds=5).held("theirs")
    assert not stranger.renew(fields={"note": "x"}) and not stranger.release()
    assert db.leases.find_one() == before
    assert held.renew(fields={"note": "renewed"}, now=datetime.now(UTC) + timedelta(seconds=10))
    after = db.leases.find_one()
    assert after["note"] == "renewed" and after["lease"]["until"] > before["lease"]["until"]
    assert after["lease"]["who"] == "me"
    assert held.renew(every=60) and db.leases.find_one() == after  # renewed a moment ago: nothing written
    assert lease(db).claim("other") is None
    assert held.release(fields={"done": True})
    assert db.leases.find_one() == {"_id": KEY, "note": "renewed", "done": True}  # the record is gone
    assert lease(db).claim("other") is not None


def test_a_claim_meets_the_jobs_conditions_and_sets_its_fields(db):
    db.leases.insert_one({"_id": KEY, "due": False})  # a document without any lease yet
    assert lease(db).claim("a", when={"due": True}) is None
    db.leases.update_one({"_id": KEY}, {"$set": {"due": True}})
    held = lease(db).claim("a", when={"due": True, "$and": [{"due": {"$ne": None}}]}, fields={"due": False})
    assert held is not None and held.document["due"] is False and held.document["lease"]["token"] == "a"
    held.release()
    assert lease(db).claim("b", when={"due": True}) is None  # the slot was taken with the lease


def test_a_holder_known_to_be_dead_is_taken_over_before_its_deadline(db):
    dead = lease(db).claim("dead", upsert=True)
    assert lease(db).claim("next", over="someone else") is None
    taken = lease(db).claim("next", over=dead.token)
    assert taken is not None and not dead.renew()


def test_a_claim_waits_for_a_lease_to_run_out(db):
    lease(db, seconds=0.5).claim("short", upsert=True)
    assert lease(db).claim("eager", wait=0) is None
    started = time.monotonic()
    assert lease(db).claim("patient", wait=5) is not None
    assert 0.2 < time.monotonic() - started < 3


def test_the_renewer_keeps_a_lease_while_work_runs_and_stops_once_taken_over(db):
    held = lease(db, seconds=0.6).claim("worker", upsert=True)
    with held.renewing(every=0.1):
        time.sleep(1.5)  # well past the first deadline
        assert lease(db).claim("intruder") is None
        assert lease(db).holder(db.leases.find_one())["token"] == "worker"
    time.sleep(0.8)
    assert lease(db).claim("next") is not None  # no renewing after the block
    held = lease(db, seconds=0.6).claim("worker 2", over="next")
    with held.renewing(every=0.05) as renewing:
        assert renewing is held
        assert lease(db).claim("thief", over="worker 2") is not None
        time.sleep(0.3)  # the renewer sees it lost the lease and stops
    assert lease(db).holder(db.leases.find_one())["token"] == "thief"


def test_release_layouts_stay_free_for_a_claim_of_any_release(db):
    """Each job's layout: the record removed (the rebuild's), kept as a note (bulk jobs'), a
    deadline beside the record (the health check's); a released deadline is a past date, which
    an older release's `{"until": {"$lt": now}}` finds free."""
    now = datetime.now(UTC)
    layouts = {"gone": {"token": "rebuild.token", "until": "rebuild.until"},
               "kept": {"token": "runner.token", "until": "runner.until", "keep_holder": True},
               "beside": {"token": "running.run", "until": "runningUntil"}}
    for name, layout in layouts.items():
        held = Lease(db, "leases", name, seconds=60, **layout).claim(1, holder={"pid": 7}, upsert=True)
        assert held.release()
    assert {doc["_id"]: doc for doc in db.leases.find()} == {
        "gone": {"_id": "gone"},
        "kept": {"_id": "kept", "runner": {"token": 1, "pid": 7, "until": EPOCH}},
        "beside": {"_id": "beside", "runningUntil": EPOCH}}
    assert db.leases.count_documents({"runner.until": {"$lt": now}, "_id": "kept"}) == 1
    assert db.leases.count_documents({"runningUntil": {"$lt": now}}) == 1
    assert db.leases.count_documents({"rebuild.until": {"$exists": False}, "_id": "gone"}) == 1
    for name, layout in layouts.items():
        assert Lease(db, "leases", name, seconds=60, **layout).claim(2) is not None


def test_who_holds_is_read_from_a_document_as_any_client_read_it(db):
    beside = lease(db, token="running.run", until="runningUntil")
    later = datetime.now(UTC) + timedelta(minutes=1)
    assert beside.holder({"runningUntil": later, "running": {"run": 1}}) == {"run": 1}
    assert beside.holder({"runningUntil": later.replace(tzinfo=None), "running": {"run": 1}}) == {"run": 1}
    assert beside.holder({"runningUntil": EPOCH, "running": {"run": 1}}) is None
    assert beside.holder({"running": None}) is None and beside.holder(None) is None
    with pytest.raises(ValueError, match="holder record"):
        lease(db, token="token")
