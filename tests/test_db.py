"""Opening the database: embedded by default, indexes, joining a running server, bulk loads."""

import os
import subprocess
import sys
import time
import uuid

import pytest
from bson import ObjectId
from pymongo import MongoClient

from core import bulk_insert, ensure_indexes, open_database
from core.storage import is_embedded
from core.storage.schema import PURCHASES
from database.opening import CLIENT_OPTIONS
from tests.conftest import host_port

embedded_only = pytest.mark.skipif(bool(os.environ.get("MONGODB_URI")), reason="MONGODB_URI points elsewhere")


@embedded_only
def test_embedded_server_stores_under_data_dir_and_others_join_it(tmp_path):
    with open_database(data_dir=str(tmp_path / "d"), db_name="app") as first:
        assert first.server is not None and "embedded mongoeco" in first.description
        assert (tmp_path / "d" / "purchases.sqlite").exists()
        first.db.things.insert_one({"_id": 1})
        with open_database(data_dir=str(tmp_path / "d"), db_name="app") as second:
            assert second.server is None and "served by another process" in second.description
            assert second.db.things.find_one({"_id": 1}) == {"_id": 1}
    # stopped cleanly: the file is reopened by a new server with the data intact
    with open_database(data_dir=str(tmp_path / "d"), db_name="app") as again:
        assert again.server is not None
        assert again.db.things.find_one({"_id": 1}) == {"_id": 1}


@embedded_only
def test_a_new_owner_serves_on_the_dead_owners_address_so_joined_clients_carry_on(tmp_path):
    folder = str(tmp_path / "d")
    owner_script = (f"import sys, time\nfrom core import open_database\nopened = open_database(data_dir={folder!r})\n"
                    "print(opened.uri, flush=True)\ntime.sleep(120)\n")

    def start_owner():
        process = subprocess.Popen([sys.executable, "-c", owner_script], stdout=subprocess.PIPE, text=True)
        return process, process.stdout.readline().strip()

    first, first_uri = start_owner()
    try:
        with open_database(data_dir=folder) as joined:
            assert joined.server is None and joined.uri == first_uri
            joined.db.things.insert_one({"_id": 1})
            first.kill()  # SIGKILL: no clean shutdown, the lock file still names its address
            first.wait()
            second, second_uri = start_owner()
            try:
                assert second_uri == first_uri
                assert joined.db.things.find_one({"_id": 1}) == {"_id": 1}  # the same client, reconnected
            finally:
                second.kill()
                second.wait()
    finally:
        first.kill()


@embedded_only
def test_a_server_that_dies_inside_its_process_is_started_again_on_its_address(tmp_path):
    with open_database(data_dir=str(tmp_path / "d"), db_name="app") as opened:
        server, uri = opened.server, opened.uri
        opened.db.things.insert_one({"_id": 1})
        server._loop.call_soon_threadsafe(server._task.cancel)  # the server's task ends, as a crash in it would
        deadline = time.monotonic() + 10
        while server.restarts == 0 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert server.restarts == 1 and host_port(server.uri) == host_port(uri)
        assert opened.db.things.find_one({"_id": 1}) == {"_id": 1}  # the same client, reconnected
        opened.db.things.insert_one({"_id": 2})
        assert host_port((tmp_path / "d" / "embedded.lock").read_text()) == host_port(uri)
    with open_database(data_dir=str(tmp_path / "d"), db_name="app") as again:  # stopped cleanly after a restart
        assert again.db.things.count_documents({}) == 2


def test_indexes_are_created_idempotently(db):
    ensure_indexes(db)
    keys = {tuple(index["key"].items()) for index in db[PURCHASES].list_indexes()}
    assert (("user", 1), ("purchasedAt", -1)) in keys
    assert (("purchasedAt", 1),) in keys
    unique = [index["name"] for index in db[PURCHASES].list_indexes() if index.get("unique") and index["name"] != "_id_"]
    # unique guards only where they do not cost a collection scan per write
    assert bool(unique) is not is_embedded(db)


def test_bulk_insert_in_process_and_over_the_wire(db, opened_database):
    docs = [{"_id": ObjectId(), "n": i} for i in range(300)]
    assert bulk_insert(db, "bulk", docs[:150]) == 150
    if opened_database.server is not None:
        # another address for the same server: not this process's in-process path
        with MongoClient(opened_database.uri.replace("@127.0.0.1:", "@localhost:"), **CLIENT_OPTIONS) as wire:
            assert bulk_insert(wire[db.name], "bulk", docs[150:]) == 150
    else:
        bulk_insert(db, "bulk", docs[150:])
    assert sorted(d["n"] for d in db.bulk.find()) == list(range(300))
    assert bulk_insert(db, "bulk", []) == 0


def test_the_description_of_a_uri_shows_hosts_without_credentials():
    from database.opening import _hosts

    assert _hosts("mongodb://admin:secret@db1:27017,db2:27018/?replicaSet=rs0") == "db1:27017, db2:27018"
    assert _hosts("mongodb+srv://u:p@cluster0.example.net/learning") == "cluster0.example.net"


def test_read_all_reads_every_document_once_in_id_order_whatever_the_id_types(db):
    from datetime import UTC, datetime

    from core.storage.db import read_all

    ids = [None, -3, 2.5, 7, "a", "b", "c", {"k": 1}, ObjectId(), ObjectId(), ObjectId(), False, True,
           datetime(2020, 1, 1, tzinfo=UTC), datetime(2021, 1, 1, tzinfo=UTC)]
    db.mixed.insert_many([{"_id": i, "n": n} for n, i in enumerate(ids)])
    expected = [doc["_id"] for doc in db.mixed.find().sort("_id", 1)]
    for page in (1, 2, 3, 100):
        read = [doc["_id"] for doc in read_all(db, "mixed", page=page)]
        assert read == expected, page
    assert [doc["n"] for doc in read_all(db, "mixed", {"n": 1}, page=4)] == [ids.index(i) for i in expected]
    strings_on = [doc["_id"] for doc in read_all(db, "mixed", after="a", page=2)]
    assert strings_on == expected[expected.index("a") + 1 :]
    assert list(read_all(db, "nothing_here", page=2)) == []


@embedded_only
def test_the_data_folder_and_the_embedded_server_are_the_owners_alone(tmp_path):
    import stat

    from bson import Int64
    from pymongo.errors import OperationFailure

    folder = tmp_path / "d"
    with open_database(data_dir=str(folder), db_name="app") as opened:
        opened.db.staff_accounts.insert_one({"_id": "ann@example.com", "passwordHash": "x"})
        assert stat.S_IMODE(folder.stat().st_mode) == 0o700
        modes = {path.name: stat.S_IMODE(path.stat().st_mode) for path in folder.iterdir()}
        assert {"purchases.sqlite", "embedded.lock", "database_secret"} <= set(modes)
        assert set(modes.values()) == {0o600}, modes
        address = (folder / "embedded.lock").read_text().strip()
        assert "@" not in address and opened.uri.split("@")[0].split(":")[-1] not in address  # no password
        for client in (MongoClient(address, serverSelectionTimeoutMS=5000),
                       MongoClient(address, username="purchases", password="a guess", authSource="admin",
                                   authMechanism="SCRAM-SHA-256", serverSelectionTimeoutMS=5000)):
            with client:
                with pytest.raises(OperationFailure):
                    client.app.staff_accounts.find_one()
                with pytest.raises(OperationFailure):
                    client.app.staff_accounts.insert_one({"_id": "eve@example.com", "role": "admin"})
                # a transaction started without authenticating holds nothing
                with pytest.raises(OperationFailure):
                    client.app.command({"find": "staff_accounts", "lsid": {"id": uuid.uuid4()},
                                        "txnNumber": Int64(1), "startTransaction": True, "autocommit": False})
        started = time.monotonic()
        opened.db.things.insert_one({"_id": 1})  # not waiting behind that transaction
        assert time.monotonic() - started < 5
        assert opened.db.staff_accounts.count_documents({}) == 1
