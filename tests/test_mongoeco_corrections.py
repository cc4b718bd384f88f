"""database.corrections: MongoDB's answers unchanged, and the work of an insert
or a miss by `_id` no longer growing with the collection.

Over the wire with pymongo, each test on an embedded server of its own. Work is counted,
not timed (1,000 against 10,000 documents): SQLite's virtual-machine steps (a progress handler on every engine connection)
and the documents the engine decodes.
"""

import importlib.metadata
import os
import sqlite3
from datetime import UTC, datetime

import pytest
from bson import Decimal128, Int64, ObjectId
from hypothesis import given, settings
from hypothesis import strategies as st
from mongoeco.core import bson_scalars
from mongoeco.core.codec import DocumentCodec
from mongoeco.engines.sqlite import SQLiteEngine
from pymongo import MongoClient
from pymongo.errors import BulkWriteError, DuplicateKeyError

from core import open_database
from core.storage.db import bulk_insert
from database import corrections as mongoeco_corrections
from database import corrections_in_file
from database.embedded import EmbeddedServer

pytestmark = pytest.mark.skipif(bool(os.environ.get("MONGODB_URI")), reason="about the embedded server")


@pytest.fixture
def server(tmp_path):
    started = EmbeddedServer(tmp_path / "corrections.sqlite")
    started.start()
    yield started
    started.stop()


@pytest.fixture
def coll(server):
    client = MongoClient(server.uri)
    yield client.corrections.things
    client.close()


@pytest.mark.parametrize(("first", "again"), [
    (ObjectId("65a000000000000000000001"), ObjectId("65a000000000000000000001")),
    ("ada", "ada"),
    (1, 1.0),
    (Int64(7), 7),
    ({"a": 1, "b": "x"}, {"a": 1.0, "b": "x"}),
    ({"a": "x"}, {"a": "x"}),
])
def test_a_duplicate_id_is_refused_by_insert_upsert_and_bulk(coll, first, again):
    coll.insert_many([{"n": i} for i in range(50)])
    coll.insert_one({"_id": first, "n": "first"})
    with pytest.raises(DuplicateKeyError):
        coll.insert_one({"_id": again, "n": "again"})
    with pytest.raises(BulkWriteError, match="E11000"):
        coll.insert_many([{"_id": again}])
    # an upsert by an equal _id finds the first document instead of inserting another
    coll.update_one({"_id": again}, {"$set": {"seen": True}}, upsert=True)
    assert coll.count_documents({}) == 51
    assert coll.find_one({"_id": again})["n"] == "first"


def test_ids_that_differ_are_both_kept(coll):
    coll.insert_one({"_id": "1"})
    coll.insert_one({"_id": 1})
    coll.insert_one({"_id": {"a": "x", "b": "y"}})
    coll.insert_one({"_id": {"b": "y", "a": "x"}})  # field order matters in MongoDB
    assert coll.count_documents({}) == 4


def test_a_unique_secondary_index_still_refuses(coll):
    coll.create_index("email", unique=True)
    coll.insert_one({"email": "ada@example.com"})
    with pytest.raises(DuplicateKeyError):
        coll.insert_one({"_id": ObjectId(), "email": "ada@example.com"})
    with pytest.raises(DuplicateKeyError):
        coll.update_one({"_id": "new"}, {"$set": {"email": "ada@example.com"}}, upsert=True)
    assert coll.count_documents({}) == 1


def test_a_miss_by_id_misses_and_a_hit_hits(coll, server):
    present, absent = ObjectId(), ObjectId()
    coll.insert_many([{"_id": present, "n": 1}, {"_id": "s", "n": 2}, {"_id": 3, "n": 3}])
    assert coll.find_one({"_id": absent}) is None
    assert coll.find_one({"_id": "t"}) is None
    assert list(coll.find({"_id": absent})) == []
    assert coll.find_one({"_id": present})["n"] == 1
    assert coll.find_one({"_id": {"$eq": "s"}})["n"] == 2
    assert coll.find_one({"_id": 3.0})["n"] == 3  # numbers keep the engine's own search
    assert coll.update_one({"_id": absent}, {"$set": {"n": 9}}).matched_count == 0
    assert coll.update_one({"_id": absent}, {"$set": {"n": 9}}, upsert=True).upserted_id == absent
    assert coll.find_one({"_id": absent})["n"] == 9


def test_a_list_of_ids_finds_each_document_once_in_insertion_order(coll):
    ids = [ObjectId() for _ in range(700)]
    coll.insert_many([{"_id": i, "n": n} for n, i in enumerate(ids)] + [{"_id": "s", "n": -1}, {"_id": 5, "n": -2}])
    wanted = ids[600:] + ids[:550] + [ObjectId(), ids[3], "s"]  # past the engine's 490, a miss, a repeat
    found = list(coll.find({"_id": {"$in": wanted}}, {"n": 1}))
    assert [d["n"] for d in found] == list(range(550)) + list(range(600, 700)) + [-1]
    assert all(set(d) == {"_id", "n"} for d in found)
    assert sorted(d["n"] for d in coll.find({"_id": {"$in": [5.0, "s"]}})) == [-2, -1]  # numbers: the engine's way
    assert [d["n"] for d in coll.find({"_id": {"$in": ids[:5]}}).sort("n", -1).limit(2)] == [4, 3]
    with coll.database.client.start_session() as session, session.start_transaction():
        coll.insert_one({"_id": "t", "n": -3}, session=session)
        assert sorted(d["n"] for d in coll.find({"_id": {"$in": ["t", "s"]}}, session=session)) == [-3, -1]


def test_inside_a_transaction_its_own_insert_is_found_by_id(coll):
    with coll.database.client.start_session() as session, session.start_transaction():
        new = coll.insert_one({"n": 1}, session=session).inserted_id
        assert coll.find_one({"_id": new}, session=session)["n"] == 1
        assert coll.update_one({"_id": new}, {"$inc": {"n": 1}}, session=session).modified_count == 1
    assert coll.find_one({"_id": new})["n"] == 2


def test_another_mongoeco_version_is_refused_with_a_clear_message(monkeypatch):
    monkeypatch.setattr(importlib.metadata, "version", lambda name: "4.12.0")
    with pytest.raises(mongoeco_corrections.UnsupportedEngineVersion, match=r"corrects mongoeco 4\.11\.0 and "
                       r"refuses mongoeco 4\.12\.0: pin mongoeco==4\.11\.0"):
        mongoeco_corrections.apply()


def test_the_pinned_version_is_the_one_installed_and_in_requirements():
    assert importlib.metadata.version("mongoeco") == mongoeco_corrections.PINNED_VERSION
    with open("requirements.txt") as pinned:
        assert f"mongoeco=={mongoeco_corrections.PINNED_VERSION}\n" in pinned.read()


def test_arrays_and_decimals_in_an_indexed_field_are_still_found_after_writes(coll):
    coll.create_index("tag")
    coll.insert_many([{"_id": f"d{i}", "tag": f"t{i}"} for i in range(30)])
    assert [d["_id"] for d in coll.find({"tag": "t3"})] == ["d3"]
    coll.insert_one({"_id": "list", "tag": ["t3", "x"]})
    assert sorted(d["_id"] for d in coll.find({"tag": "t3"})) == ["d3", "list"]
    assert coll.find_one({"tag": "x"})["_id"] == "list"
    coll.update_one({"_id": "d5"}, {"$set": {"tag": ["t3"]}})
    assert sorted(d["_id"] for d in coll.find({"tag": "t3"})) == ["d3", "d5", "list"]

    coll.create_index("amount")
    coll.insert_many([{"_id": "int", "amount": 2}, {"_id": "dec", "amount": Decimal128("2.0")}])
    assert sorted(d["_id"] for d in coll.find({"amount": 2})) == ["dec", "int"]
    assert sorted(d["_id"] for d in coll.find({"amount": Decimal128("2")})) == ["dec", "int"]


def test_sorts_and_uniform_types_answer_as_before(coll):
    coll.create_index([("v", 1)])
    coll.insert_many([{"_id": "three", "v": 3}, {"_id": "half", "v": Decimal128("2.5")}, {"_id": "one", "v": Int64(1)}])
    assert [d["_id"] for d in coll.find().sort("v", 1)] == ["one", "half", "three"]
    coll.insert_one({"_id": "list", "v": [0, 10]})
    assert [d["_id"] for d in coll.find().sort("v", 1)] == ["list", "one", "half", "three"]
    assert [d["_id"] for d in coll.find().sort("v", -1)] == ["list", "three", "half", "one"]
    coll.delete_one({"_id": "list"})
    coll.insert_many([{"_id": "text", "v": "a"}, {"_id": "none"}])
    # MongoDB's order of types: missing (as null), numbers, strings
    assert [d["_id"] for d in coll.find().sort("v", 1)] == ["none", "one", "half", "three", "text"]


def _counts_in(path) -> dict:
    """FIELD_COUNTS as stored, and as counted afresh from the documents."""
    with sqlite3.connect(path) as conn:
        stored = {row[:4]: row[4] for row in conn.execute(
            f"SELECT db_name, coll_name, field, kind, n FROM {corrections_in_file.FIELD_COUNTS} WHERE n != 0")}
        fresh = {}
        for db_name, coll_name, document in conn.execute("SELECT db_name, coll_name, document FROM documents"):
            kinds = [("", "documents")]
            for field, kind, tag in conn.execute(
                    """SELECT key, type, CASE WHEN type = 'object'
                       THEN 'tag:' || COALESCE(json_extract(value, '$."$mongoeco".type'), '') END
                       FROM json_each(?)""", (document,)):
                kinds += [(field, kind)] + ([(field, tag)] if tag else [])
            for field, kind in kinds:
                key = (db_name, coll_name, field, kind)
                fresh[key] = fresh.get(key, 0) + 1
    return stored, fresh


def test_the_field_counts_stay_exact_through_inserts_updates_deletes_and_drops(server, coll):
    coll.insert_many([{"_id": i, "v": i, "tags": ["a"] if i % 3 else "a", "when": None} for i in range(40)])
    coll.insert_one({"_id": "dec", "v": Decimal128("1.5"), "doc": {"x": 1}})
    coll.update_many({"_id": {"$lt": 10}}, {"$set": {"v": "text"}, "$unset": {"when": ""}})
    coll.update_one({"_id": "dec"}, {"$set": {"v": [1, 2]}})
    coll.delete_many({"_id": {"$in": list(range(30, 40))}})
    coll.database.other.insert_one({"v": True})
    coll.database.client.drop_database("dropped")
    coll.database.client.dropped.gone.insert_many([{"v": 1}, {"v": [2]}])
    coll.database.client.drop_database("dropped")
    stored, fresh = _counts_in(server.sqlite_path)
    assert stored == fresh
    assert fresh[("corrections", "things", "v", "array")] == 1


def test_a_file_without_the_field_counts_gets_them_from_its_documents(tmp_path):
    path = tmp_path / "kinds.sqlite"
    server = EmbeddedServer(path)
    server.start()
    with MongoClient(server.uri) as client:
        client.k.things.create_index("tag")
        client.k.things.insert_many([{"_id": "a", "tag": ["red", "blue"]}, {"_id": "b", "tag": "red"}])
    server.stop()
    with sqlite3.connect(path) as conn:  # as a file from before the corrections
        for name in corrections_in_file.FIELD_COUNTS_TRIGGERS:
            conn.execute(f"DROP TRIGGER {name}")
        conn.execute(f"DROP TABLE {corrections_in_file.FIELD_COUNTS}")
    server = EmbeddedServer(path)
    server.start()
    try:
        with MongoClient(server.uri) as client:
            client.k.other.insert_one({"x": 1})  # a write: the engine's cache of answers is dropped
            assert sorted(d["_id"] for d in client.k.things.find({"tag": "blue"})) == ["a"]
            assert sorted(d["_id"] for d in client.k.things.find({"tag": "red"})) == ["a", "b"]
        stored, fresh = _counts_in(path)
        assert stored == fresh
        assert stored[("k", "things", "tag", "array")] == 1
    finally:
        server.stop()


def _marker(path) -> list:
    with sqlite3.connect(path) as conn:
        try:
            return conn.execute(f"SELECT version FROM {corrections_in_file.MARKER_TABLE}").fetchall()
        except sqlite3.OperationalError:
            return []


def test_a_clean_stop_keeps_index_entries_and_any_change_since_rebuilds_them(tmp_path):
    path = tmp_path / "marker.sqlite"

    def serve(check):
        server = EmbeddedServer(path)
        server.start()
        client = MongoClient(server.uri)
        try:
            check(client.m.things)
        finally:
            client.close()
            server.stop()

    def load(things):
        things.create_index("k")
        things.insert_many([{"_id": f"d{i}", "k": f"v{i}"} for i in range(20)])

    serve(load)
    assert _marker(path) == [(mongoeco_corrections.PINNED_VERSION,)]
    serve(lambda things: (
        _assert_found(things, "k", "v3", "d3"),
        things.update_one({"_id": "d4"}, {"$set": {"k": "changed"}})))
    serve(lambda things: _assert_found(things, "k", "changed", "d4"))

    # another program changes a document behind the engine's back (its index entry unchanged)
    with sqlite3.connect(path) as conn:
        conn.execute("UPDATE documents SET document = ? WHERE coll_name = 'things' AND document LIKE ?",
                     ('{"_id":"d5","k":"behind"}', '%"d5"%'))
    assert _marker(path) == []
    serve(lambda things: _assert_found(things, "k", "behind", "d5"))


def _assert_found(things, field, value, expected_id):
    assert [d["_id"] for d in things.find({field: value})] == [expected_id]


class Work:
    """SQLite steps and decoded documents of every engine connection, while counting."""

    STEP = 100

    def __init__(self, monkeypatch):
        from mongoeco.engines.sqlite import SQLiteEngine

        self.steps = self.decoded = 0
        self.counting = False
        create, decode = SQLiteEngine._create_sqlite_connection, SQLiteEngine._deserialize_document

        def create_counted(engine, *args, **kwargs):
            conn = create(engine, *args, **kwargs)
            conn.set_progress_handler(self._step, self.STEP)
            return conn

        def decode_counted(engine, payload):
            self.decoded += self.counting
            return decode(engine, payload)

        monkeypatch.setattr(SQLiteEngine, "_create_sqlite_connection", create_counted)
        monkeypatch.setattr(SQLiteEngine, "_deserialize_document", decode_counted)

    def _step(self):
        self.steps += self.counting
        return 0

    def of(self, operation) -> tuple[int, int]:
        self.steps = self.decoded = 0
        self.counting = True
        try:
            operation()
        finally:
            self.counting = False
        return self.steps * self.STEP, self.decoded


def test_an_insert_an_upsert_a_miss_by_id_and_an_index_build_per_document_do_not_grow_with_the_collection(tmp_path, monkeypatch):
    work = Work(monkeypatch)
    measured, indexing = {}, {}
    for size in (1_000, 10_000):
        opened = open_database(data_dir=tmp_path / str(size), uri="", db_name="grow")
        try:
            things = opened.db.things
            things.create_index([("user", 1), ("n", -1)])  # as purchases by user, newest first
            for start in range(0, size, 5_000):
                bulk_insert(opened.db, "things", [{"user": ObjectId(), "n": i, "pad": "x" * 100}
                                                  for i in range(start, min(size, start + 5_000))])
            assert things.estimated_document_count() == size
            known = things.find_one({"n": 5})["user"]
            some = [d["_id"] for d in things.find({}, {"_id": 1}).limit(20)]
            measured[size] = {
                "insert_one": work.of(lambda t=things: t.insert_one({"user": ObjectId()})),
                "insert with a string _id": work.of(lambda t=things: t.insert_one({"_id": "new", "user": 1})),
                "upsert on a new _id": work.of(lambda t=things: t.update_one(
                    {"_id": ObjectId()}, {"$setOnInsert": {"user": 2}}, upsert=True)),
                "find_one by _id, no match": work.of(lambda t=things: t.find_one({"_id": ObjectId()})),
                "find by a list of _ids": work.of(lambda t=things, some=some: list(t.find({"_id": {"$in": some}}))),
                "find by indexed field after a write": work.of(lambda t=things, known=known: (
                    t.insert_one({"user": ObjectId()}), list(t.find({"user": known})))),
                "find_one by indexed field after a write": work.of(lambda t=things, known=known: (
                    t.insert_one({"user": ObjectId()}), t.find_one({"user": known}))),
            }
            # work per document: ten times the documents, about ten times the work (it was a hundred)
            indexing[size] = work.of(lambda t=things: t.create_index("n"))[0] / size
        finally:
            opened.close()
    for name, (small_steps, small_decoded) in measured[1_000].items():
        large_steps, large_decoded = measured[10_000][name]
        # ten times the documents: the work stays that of a few lookups (B-tree depth aside)
        assert large_decoded <= small_decoded + 1, (name, measured)
        assert large_steps <= 1.5 * small_steps + 2_000, (name, measured)
    assert indexing[10_000] <= 1.5 * indexing[1_000], indexing


def test_documents_read_back_the_same_and_the_codec_is_inspected_once(server, coll, monkeypatch):
    docs = [{"_id": ObjectId(), "at": datetime(2025, 1, n + 1, tzinfo=UTC), "n": Int64(n), "price": Decimal128("1.10"),
             "tags": ["a", {"b": ObjectId()}]} for n in range(30)]
    coll.insert_many(docs)
    asked = []
    real = mongoeco_corrections.inspect.signature
    monkeypatch.setattr(mongoeco_corrections.inspect, "signature", lambda f: asked.append(f) or real(f))

    with MongoClient(server.uri, tz_aware=True) as client:
        found = list(client[coll.database.name][coll.name].find({}).sort("n", 1))

    assert found == docs
    assert len(asked) <= 1  # 30 documents decoded, the codec asked about once at most


def test_an_error_the_heartbeat_met_before_a_clean_close_still_leaves_the_marker(tmp_path, monkeypatch):
    """mongoeco raises, after closing the file, an error its change-consumer heartbeat met
    while a long write held the file; the close was clean, so the next open keeps the entries."""
    path = tmp_path / "heartbeat.sqlite"
    real = SQLiteEngine._stop_ephemeral_registration_heartbeat

    def stop_heartbeat(self):
        real(self)
        return sqlite3.OperationalError("database is locked")

    monkeypatch.setattr(SQLiteEngine, "_stop_ephemeral_registration_heartbeat", stop_heartbeat)
    server = EmbeddedServer(path)
    server.start()
    with MongoClient(server.uri) as client:
        client.m.things.insert_one({"_id": "a", "k": 1})
    server.stop()

    assert _marker(path) == [(mongoeco_corrections.PINNED_VERSION,)]


scalars = st.one_of(
    st.none(), st.booleans(), st.integers(min_value=-(2**63), max_value=2**63 - 1), st.floats(allow_nan=False),
    st.text(max_size=8), st.datetimes(timezones=st.just(UTC)).map(lambda moment: moment.replace(microsecond=0)),
    st.builds(ObjectId), st.builds(Int64, st.integers(min_value=0, max_value=2**40)),
    # within Decimal128's 34 digits: a longer one is refused by Decimal128 itself, before any encoding
    st.decimals(min_value=-(10**30), max_value=10**30, allow_nan=False, allow_infinity=False, places=2)
    .map(lambda number: Decimal128(str(number))),
    st.binary(max_size=4),
)
documents = st.recursive(scalars, lambda inner: st.lists(inner, max_size=4) | st.dictionaries(
    st.text(max_size=6), inner, max_size=4), max_leaves=30).map(lambda value: {"v": value})


@settings(max_examples=150, deadline=None)
@given(documents)
def test_a_document_is_encoded_exactly_as_before(document):
    mongoeco_corrections.apply()
    assert DocumentCodec.encode(document) == DocumentCodec.encode.original(document)


@pytest.mark.parametrize(("bad", "error"), [
    ({"a": {"b": {"c": {1: "key not a string"}}}}, TypeError),
    ({"a": [{"b": {1, 2}}]}, TypeError),
    ({"a": {"b": [[2**64]]}}, OverflowError),
    ({"a": {"b": -(2**63) - 1}}, OverflowError),
])
def test_a_value_mongodb_cannot_store_is_refused_with_the_engines_error(bad, error):
    mongoeco_corrections.apply()
    with pytest.raises(error) as expected:
        bson_scalars.validate_bson_value(bad)
    with pytest.raises(error) as raised:
        DocumentCodec.encode(bad)
    assert type(raised.value) is type(expected.value) and str(raised.value) == str(expected.value)


def test_a_deep_value_is_checked_once_not_once_per_level(monkeypatch):
    mongoeco_corrections.apply()
    checked = []
    real = bson_scalars.wrap_bson_numeric
    monkeypatch.setattr(bson_scalars, "wrap_bson_numeric", lambda value: checked.append(value) or real(value))
    deep = {"a": {"b": {"c": {"d": {"e": {"f": Decimal128("1.10")}}}}}}

    encoded = DocumentCodec.encode(deep)

    assert len(checked) == 1  # the engine alone checked it once for each of the seven documents holding it
    assert encoded["a"]["b"]["c"]["d"]["e"]["f"] == {"$mongoeco": {"type": "decimal128_public", "value": "1.10"}}
