"""Corrections to mongoeco 4.11 where it does work that MongoDB does not, applied once when
the embedded server starts (database.embedded); those that keep tables of their own in
the SQLite file are in database.corrections_in_file. Each one names the engine function it
changes, what that cost and why MongoDB's semantics stay the same; tests/test_mongoeco_corrections.py
proves each, and scripts/bench_scale.py measures them.

They lean on one fact of the engine: every document is stored under a key made from its
`_id` (`SQLiteEngine._storage_key`, the repr of the id with its type), after the wire
boundary turned every ObjectId into mongoeco's own class. For an ObjectId or a string, two
ids are equal in MongoDB exactly when their keys are equal, so one lookup of the key
answers "is this `_id` taken?". Numbers are not like that (1, 1.0 and Int64(1) are one
`_id` in MongoDB, three keys here), nor are documents holding numbers: for those the
engine's own scans stay.

The corrections are written against mongoeco's private functions, so `apply()` refuses any
version but the pinned one: a new mongoeco is measured again before it runs corrected.
"""

import importlib.metadata
import inspect
import threading

from mongoeco._types._bson_objectid import ObjectId as EngineObjectId
from mongoeco.core import codec as codec_module
from mongoeco.core.bson_scalars import INT64_MAX, INT64_MIN, BsonScalarOverflowError
from mongoeco.core.codec import DocumentCodec
from mongoeco.core.projections import apply_projection
from mongoeco.core.query_plan import EqualsCondition, InCondition
from mongoeco.engines._sqlite_connection import sqlite_read_scope
from mongoeco.engines.sqlite import SQLiteEngine

PINNED_VERSION = "4.11.0"

_applied = False


class UnsupportedEngineVersion(RuntimeError):
    """The installed mongoeco is not the one these corrections were written and measured for."""


def apply() -> None:
    """Install the corrections into mongoeco's SQLite engine; once per process."""
    global _applied
    installed = importlib.metadata.version("mongoeco")
    if installed != PINNED_VERSION:
        raise UnsupportedEngineVersion(
            f"database/corrections.py corrects mongoeco {PINNED_VERSION} and refuses mongoeco "
            f"{installed}: pin mongoeco=={PINNED_VERSION} in requirements.txt, or check each correction "
            "against the new version (tests/test_mongoeco_corrections.py, scripts/bench_scale.py) and raise "
            "PINNED_VERSION"
        )
    if _applied:
        return
    from database import corrections_in_file  # it reads PINNED_VERSION from here

    _skip_payload_scan_on_insert()
    _answer_misses_by_id_from_the_key()
    corrections_in_file.keep_current_index_entries_at_open()
    corrections_in_file.count_field_kinds()
    _decode_without_inspecting_each_time()
    _validate_each_document_once()
    _applied = True


def keyed_exactly(value) -> bool:
    """True when the storage key of `value` decides equality as MongoDB does (see the module's notes)."""
    return type(value) is EngineObjectId or type(value) is str


def _id_is_stored(engine: SQLiteEngine, db_name: str, coll_name: str, value, context=None) -> bool:
    conn = engine._require_connection(context)
    with engine._bind_connection(conn), sqlite_read_scope(conn):
        row = conn.execute(
            "SELECT 1 FROM documents WHERE db_name = ? AND coll_name = ? AND storage_key = ? LIMIT 1",
            (db_name, coll_name, engine._storage_key(value)),
        ).fetchone()
    return row is not None


def _is_id_lookup(plan) -> bool:
    return isinstance(plan, EqualsCondition) and plan.field == "_id" and keyed_exactly(plan.value)


def _is_id_list_lookup(plan) -> bool:
    return (isinstance(plan, InCondition) and plan.field == "_id" and len(plan.values) > 0
            and all(keyed_exactly(value) for value in plan.values))


def _documents_by_id(engine: SQLiteEngine, db_name: str, coll_name: str, ids, context) -> list:
    """The documents whose `_id` is one of `ids`, in the order a scan meets them (SQLite's rowid)."""
    keys = list(dict.fromkeys(engine._storage_key(value) for value in ids))
    found = []
    conn = engine._require_connection(context)
    with engine._bind_connection(conn), sqlite_read_scope(conn):
        for start in range(0, len(keys), 500):
            chunk = keys[start:start + 500]
            found += conn.execute(
                f"SELECT rowid, document FROM documents WHERE db_name = ? AND coll_name = ? "
                f"AND storage_key IN ({', '.join('?' for _ in chunk)})",
                (db_name, coll_name, *chunk),
            ).fetchall()
    return [engine._deserialize_document(document) for _rowid, document in sorted(found)]


def _skip_payload_scan_on_insert() -> None:
    """`SQLiteEngine._validate_document_against_unique_indexes`, called by every insert
    (`_sqlite_write_ops.insert_document_record`) with `scan_payload_id=True`: after looking
    the new `_id`'s key up, it decoded every document of the collection to compare ids
    again (insert_one 411 ms at 10,000 documents, 3.3 s at 100,000). For an ObjectId or a
    string the key lookup it has just made is the whole answer; numbers and documents
    keep the scan, and unique secondary indexes are checked as before."""
    original = SQLiteEngine._validate_document_against_unique_indexes

    def validate(self, db_name, coll_name, document, *, exclude_storage_key=None, skip_id_check=False,
                 scan_payload_id=False):
        if scan_payload_id and "_id" in document and keyed_exactly(document["_id"]):
            scan_payload_id = False
        return original(self, db_name, coll_name, document, exclude_storage_key=exclude_storage_key,
                        skip_id_check=skip_id_check, scan_payload_id=scan_payload_id)

    SQLiteEngine._validate_document_against_unique_indexes = validate


def _answer_misses_by_id_from_the_key() -> None:
    """A filter `{"_id": x}` is first looked up by key; when that finds nothing, mongoeco
    does not trust the miss and runs the compiled plan, which reads the whole collection:
    `SQLiteEngine._select_first_document_for_plan` (an update or upsert by `_id`: 78 ms at
    10,000 documents, 412 ms at 100,000) and `SQLiteEngine._open_scan_documents_sync`
    (find_one: 20 and 345 ms), which runs it twice. For an ObjectId or a string `_id` the
    key's absence is the answer: no document with that `_id` exists. The same holds for
    `{"_id": {"$in": [...]}}` of such ids (a bulk grant's preview reads its customers so:
    50 of 30,000 users took 1.4 s, 14 ms by their keys), read here by their keys, in the scan's order, when nothing is
    sorted, skipped or limited (a list past some 490 ids also failed in the engine's
    compiled plan: "Expression tree is too large")."""
    select_original = SQLiteEngine._select_first_document_for_plan
    scan_original = SQLiteEngine._open_scan_documents_sync

    def select_first(self, db_name, coll_name, plan, *, hint=None, context=None):
        if hint is None and _is_id_lookup(plan) and not _id_is_stored(self, db_name, coll_name, plan.value, context):
            return None
        return select_original(self, db_name, coll_name, plan, hint=hint, context=context)

    def open_scan(self, reader):
        semantics, plan = reader.semantics, reader.semantics.query_plan
        plain = (semantics.hint is None and semantics.text_query is None and semantics.collation is None
                 and not self._is_profile_namespace(reader.coll_name))
        if plain and _is_id_lookup(plan) and not _id_is_stored(self, reader.db_name, reader.coll_name, plan.value,
                                                                  reader.context):
            return iter(())
        if plain and _is_id_list_lookup(plan) and not semantics.sort and not semantics.skip and not semantics.limit:
            documents = _documents_by_id(self, reader.db_name, reader.coll_name, plan.values, reader.context)
            return iter([apply_projection(document, semantics.projection, selector_filter=semantics.filter_spec,
                                          dialect=semantics.dialect) for document in documents])
        return scan_original(self, reader)

    SQLiteEngine._select_first_document_for_plan = select_first
    SQLiteEngine._open_scan_documents_sync = open_scan


def _decode_without_inspecting_each_time() -> None:
    """`SQLiteEngine._decode_codec_payload`, called for every document read that holds an
    ObjectId, a date or another tagged value (every document here), asked
    `inspect.signature(self._codec.decode)` each time whether the codec takes
    `preserve_bson_wrappers`: about 20 us a document, 13% of a find of 20,000 purchases
    (2.81 s -> 2.44 s) and of every index build. The answer depends on the codec's decode
    function only, so it is asked once per function; the call made is the same."""
    takes_flag: dict = {}

    def decode_codec_payload(self, payload, *, preserve_bson_wrappers):
        decode = self._codec.decode
        function = getattr(decode, "__func__", decode)
        flag = takes_flag.get(function)
        if flag is None:
            try:
                flag = takes_flag[function] = "preserve_bson_wrappers" in inspect.signature(decode).parameters
            except (TypeError, ValueError):
                flag = takes_flag[function] = False
        if not flag:
            return decode(payload)
        return decode(payload, preserve_bson_wrappers=preserve_bson_wrappers)

    SQLiteEngine._decode_codec_payload = decode_codec_payload


def _validate_each_document_once() -> None:
    """`DocumentCodec.encode`, run on every document written and again on each change it
    records for change streams (twice an update), validated the whole subtree of every
    document it met (`validate_bson_value`), then encoded each value, which validated that
    value's subtree again: a value at depth d was checked d times, and each check of a
    number built a wrapper object only to discard it (2.1 ms to encode an hour's rollup
    details of 40 items, most of a rollup update's 10 ms). Now the whole value is checked
    once, before anything is encoded, for the same errors (keys that are not strings, sets,
    integers past int64, invalid Decimal128), and the encoding that follows checks nothing
    again. Plain strings, floats, booleans and None, which cannot fail, are passed over."""
    original_encode = DocumentCodec.encode
    state = threading.local()

    def validated(value) -> None:
        pending = [value]
        while pending:
            current = pending.pop()
            kind = type(current)
            if kind is str or kind is float or kind is bool or current is None:
                continue
            if kind is int:
                if current < INT64_MIN or current > INT64_MAX:
                    raise BsonScalarOverflowError("integer exceeds BSON int64 range")
                continue
            if kind is dict or kind is list:
                if kind is dict:
                    for key in current:
                        if not isinstance(key, str):
                            raise TypeError("BSON document keys must be strings")
                    pending.extend(current.values())
                else:
                    pending.extend(current)
                continue
            validate_one(current)

    validate_one = codec_module.validate_bson_value  # anything else: the engine's own check

    def validate_unless_inside(value) -> None:
        if not getattr(state, "inside", False):
            validated(value)

    def encode(data):
        if getattr(state, "inside", False):
            return original_encode(data)
        validated(data)
        state.inside = True
        try:
            return original_encode(data)
        finally:
            state.inside = False

    encode.original = original_encode  # for the tests, which compare the two
    codec_module.validate_bson_value = validate_unless_inside
    DocumentCodec.encode = staticmethod(encode)
