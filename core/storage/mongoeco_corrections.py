"""Corrections to mongoeco 4.11 where it does work that MongoDB does not, applied once when
the embedded server starts (core.storage.embedded). Each one names the engine function it
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
import re
import sqlite3
import threading
from pathlib import Path

from mongoeco._types._bson_objectid import ObjectId as EngineObjectId
from mongoeco.core import codec as codec_module
from mongoeco.core.bson_scalars import INT64_MAX, INT64_MIN, BsonScalarOverflowError
from mongoeco.core.codec import DocumentCodec
from mongoeco.core.projections import apply_projection
from mongoeco.core.query_plan import EqualsCondition, InCondition
from mongoeco.engines import sqlite as engine_module
from mongoeco.engines._sqlite_connection import sqlite_read_scope
from mongoeco.engines.sqlite import SQLiteEngine

PINNED_VERSION = "4.11.0"

# What the marker of current index entries lives in, inside mongoeco's SQLite file.
MARKER_TABLE = "purchases_current_index_entries"
MARKER_TRIGGERS = {
    f"{MARKER_TABLE}_{table}_{event.lower()}": (table, event)
    for table in ("documents", "scalar_index_entries", "indexes")
    for event in ("INSERT", "UPDATE", "DELETE")
}

# How many documents of each collection hold each kind of value in each top-level field:
# its JSON type, and for objects the type mongoeco tags them with (Decimal128, int64, bytes,
# datetime ... are stored as {"$mongoeco": {"type": ...}}; a plain document as "tag:").
# Field "" counts the documents. Triggers keep it exact at every insert, update and delete.
FIELD_COUNTS = "purchases_field_counts"
_KINDS_OF = """SELECT key AS field, type AS kind FROM json_each({row}.document)
    UNION ALL SELECT key, 'tag:' || COALESCE(json_extract(value, '$."$mongoeco".type'), '')
              FROM json_each({row}.document) WHERE type = 'object'
    UNION ALL SELECT '', 'documents'"""
FIELD_COUNTS_TRIGGERS = {f"{FIELD_COUNTS}_{event.lower()}": event for event in ("INSERT", "UPDATE", "DELETE")}
SIMPLE_FIELD = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
# what mongoeco's sort_requires_python scans a collection for, in a sorted field
SORT_SCAN_KINDS = ("array", "tag:", "tag:int64", "tag:decimal", "tag:decimal128", "tag:decimal128_public")

_applied = False


class UnsupportedEngineVersion(RuntimeError):
    """The installed mongoeco is not the one these corrections were written and measured for."""


def apply() -> None:
    """Install the corrections into mongoeco's SQLite engine; once per process."""
    global _applied
    installed = importlib.metadata.version("mongoeco")
    if installed != PINNED_VERSION:
        raise UnsupportedEngineVersion(
            f"core/storage/mongoeco_corrections.py corrects mongoeco {PINNED_VERSION} and refuses mongoeco "
            f"{installed}: pin mongoeco=={PINNED_VERSION} in requirements.txt, or check each correction "
            "against the new version (tests/test_mongoeco_corrections.py, scripts/bench_scale.py) and raise "
            "PINNED_VERSION"
        )
    if _applied:
        return
    _skip_payload_scan_on_insert()
    _answer_misses_by_id_from_the_key()
    _keep_current_index_entries_at_open()
    _count_field_kinds()
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


def _keep_current_index_entries_at_open() -> None:
    """`_sqlite_index_runtime.backfill_scalar_indexes_sync`, run by every connect, deletes
    and rebuilds the index entries of every document (13 s at 100,000 documents), though
    each write keeps them current in its own SQLite transaction. A server that stops cleanly
    leaves a marker (`mark_index_entries_current`); triggers in the file delete it at the
    first change of a document, an index entry or an index by anyone, this engine or another
    program or version. With the marker there, the open keeps the entries it finds and still
    does the rest of the backfill (the index catalog's names, SQLite's own indexes)."""
    original = engine_module._sqlite_runtime_backfill_scalar_indexes_sync

    def backfill(engine, conn):
        # every open first makes sure of what the corrections add to the file (FIELD_COUNTS,
        # ENTRIES_BY_DOCUMENT), in the open's own transaction
        _ensure_field_counts(conn)
        _ensure_entries_by_document(conn)
        if not _marker_present(conn):
            return original(engine, conn)
        # the original rebuilds only collections it finds: let it find none
        engine._lookup_collection_id = lambda *args, **kwargs: None
        try:
            return original(engine, conn)
        finally:
            del engine._lookup_collection_id

    engine_module._sqlite_runtime_backfill_scalar_indexes_sync = backfill


def _marker_present(conn: sqlite3.Connection) -> bool:
    names = {row[0] for row in conn.execute("SELECT name FROM sqlite_master WHERE type IN ('table', 'trigger')")}
    if MARKER_TABLE not in names or not set(MARKER_TRIGGERS) <= names:
        return False
    row = conn.execute(f"SELECT version FROM {MARKER_TABLE}").fetchone()
    return row is not None and row[0] == PINNED_VERSION


def closed(engine: SQLiteEngine) -> bool:
    """True when `SQLiteEngine.disconnect` got as far as closing the file (it sets its
    connections to None after the last commit, then raises what its heartbeat met before)."""
    return engine._connection is None and engine._change_delivery_connection is None


def mark_index_entries_current(sqlite_path: Path) -> None:
    """After a clean stop: the file's index entries are current (see _keep_current_index_entries_at_open)."""
    conn = sqlite3.connect(sqlite_path, timeout=30)
    try:
        with conn:
            conn.execute(f"CREATE TABLE IF NOT EXISTS {MARKER_TABLE} (version TEXT NOT NULL)")
            for name, (table, event) in MARKER_TRIGGERS.items():
                conn.execute(f"CREATE TRIGGER IF NOT EXISTS {name} AFTER {event} ON {table} "
                             f"BEGIN DELETE FROM {MARKER_TABLE}; END")
            conn.execute(f"DELETE FROM {MARKER_TABLE}")
            conn.execute(f"INSERT INTO {MARKER_TABLE} (version) VALUES (?)", (PINNED_VERSION,))
    finally:
        conn.close()


def _count_field_kinds() -> None:
    """Before it uses an index for `{field: value}` or sorts by a field, mongoeco asks whether
    any document of the collection holds an array in that field
    (`SQLiteEngine._field_is_top_level_array_in_collection`), a Decimal128 or another tagged
    value (`_field_contains_tagged_value_type_in_collection`), whether every document holds
    one scalar type there (`_field_has_uniform_scalar_sort_type_in_collection`) and, to sort,
    whether a matching document holds an array or a number it must order in Python
    (`_sqlite_plan_heuristics.sort_requires_python`): each question read every document of
    the collection, and the answers were cached only until the next write to it. So after
    each sale a customer's history read every purchase (60 ms at 5,000 purchases, 1.1 s at
    60,000) and the customer page every audit entry. Triggers in the file now count, at every
    insert, update and delete by anyone, the kinds of value in each top-level field
    (`FIELD_COUNTS`, built once from the documents at the first open), and each question is
    a lookup there, with the same answer. Fields with dots or unusual characters keep the
    engine's scans, and so does a sort whose field holds one of the kinds it looks for."""
    array_original = SQLiteEngine._field_is_top_level_array_in_collection
    tagged_original = SQLiteEngine._field_contains_tagged_value_type_in_collection
    uniform_original = SQLiteEngine._field_has_uniform_scalar_sort_type_in_collection
    sort_original = engine_module._sqlite_sort_requires_python

    def holds_array(self, db_name, coll_name, field):
        if not SIMPLE_FIELD.fullmatch(field):
            return array_original(self, db_name, coll_name, field)
        return _counted(self, db_name, coll_name, field, ("array",)) > 0

    def holds_tagged(self, db_name, coll_name, field, value_type):
        if not SIMPLE_FIELD.fullmatch(field):
            return tagged_original(self, db_name, coll_name, field, value_type)
        return _counted(self, db_name, coll_name, field, (f"tag:{value_type}",)) > 0

    def uniform_sort_type(self, db_name, coll_name, field):
        if not SIMPLE_FIELD.fullmatch(field):
            return uniform_original(self, db_name, coll_name, field)
        documents = _counted(self, db_name, coll_name, "", ("documents",))
        if documents == 0:
            return None
        for name, kinds in (("number", ("integer", "real")), ("string", ("text",)), ("bool", ("true", "false"))):
            if _counted(self, db_name, coll_name, field, kinds) == documents:
                return name
        return None

    def sort_requires_python(*, db_name, coll_name, sort, fetchone, json_path_for_field, **rest):
        engine = _engine_of(fetchone)
        # the sorted fields whose kinds say the scan below could find nothing
        clear = {f"json_type(document, '{json_path_for_field(field)}') = 'array'"
                 for field, _direction in (sort or ())
                 if engine is not None and SIMPLE_FIELD.fullmatch(field)
                 and _counted(engine, db_name, coll_name, field, SORT_SCAN_KINDS) == 0}

        def fetchone_unless_clear(sql, params):
            if any(probe in sql for probe in clear):
                return None
            return fetchone(sql, params)

        return sort_original(db_name=db_name, coll_name=coll_name, sort=sort, fetchone=fetchone_unless_clear,
                             json_path_for_field=json_path_for_field, **rest)

    SQLiteEngine._field_is_top_level_array_in_collection = holds_array
    SQLiteEngine._field_contains_tagged_value_type_in_collection = holds_tagged
    SQLiteEngine._field_has_uniform_scalar_sort_type_in_collection = uniform_sort_type
    engine_module._sqlite_sort_requires_python = sort_requires_python


def _engine_of(fetchone):
    """The engine whose `_sort_requires_python` made this fetchone (a lambda closing over it)."""
    for cell in fetchone.__closure__ or ():
        if isinstance(cell.cell_contents, SQLiteEngine):
            return cell.cell_contents
    return None


def _counted(engine: SQLiteEngine, db_name: str, coll_name: str, field: str, kinds: tuple[str, ...]) -> int:
    marks = ", ".join("?" for _ in kinds)
    row = engine._require_connection().execute(
        f"SELECT COALESCE(SUM(n), 0) FROM {FIELD_COUNTS} WHERE db_name = ? AND coll_name = ? AND field = ? "
        f"AND kind IN ({marks})",
        (db_name, coll_name, field, *kinds),
    ).fetchone()
    return row[0]


def _counting(row: str, sign: int) -> str:
    return (f"INSERT INTO {FIELD_COUNTS} (db_name, coll_name, field, kind, n) "
            f"SELECT {row}.db_name, {row}.coll_name, field, kind, {sign} FROM ({_KINDS_OF.format(row=row)}) WHERE true "
            "ON CONFLICT (db_name, coll_name, field, kind) DO UPDATE SET n = n + excluded.n;")


def _ensure_field_counts(conn: sqlite3.Connection) -> None:
    """FIELD_COUNTS and its triggers, counted from every document when they are new (once a file)."""
    names = {row[0] for row in conn.execute("SELECT name FROM sqlite_master WHERE type IN ('table', 'trigger')")}
    if FIELD_COUNTS in names and set(FIELD_COUNTS_TRIGGERS) <= names:
        return
    conn.execute(f"DROP TABLE IF EXISTS {FIELD_COUNTS}")
    conn.execute(f"CREATE TABLE {FIELD_COUNTS} (db_name TEXT NOT NULL, coll_name TEXT NOT NULL, field TEXT NOT NULL, "
                 "kind TEXT NOT NULL, n INTEGER NOT NULL, PRIMARY KEY (db_name, coll_name, field, kind)) WITHOUT ROWID")
    bodies = {"INSERT": _counting("NEW", 1), "DELETE": _counting("OLD", -1),
              "UPDATE": _counting("OLD", -1) + " " + _counting("NEW", 1)}
    for name, event in FIELD_COUNTS_TRIGGERS.items():
        conn.execute(f"DROP TRIGGER IF EXISTS {name}")
        conn.execute(f"CREATE TRIGGER {name} AFTER {event} ON documents BEGIN {bodies[event]} END")
    into = f"INSERT INTO {FIELD_COUNTS} (db_name, coll_name, field, kind, n)"
    conn.execute(f"{into} SELECT d.db_name, d.coll_name, j.key, j.type, COUNT(*) "
                 "FROM documents d, json_each(d.document) j GROUP BY 1, 2, 3, 4")
    conn.execute(f"""{into} SELECT d.db_name, d.coll_name, j.key,
                            'tag:' || COALESCE(json_extract(j.value, '$."$mongoeco".type'), ''), COUNT(*)
                     FROM documents d, json_each(d.document) j WHERE j.type = 'object' GROUP BY 1, 2, 3, 4""")
    conn.execute(f"{into} SELECT db_name, coll_name, '', 'documents', COUNT(*) FROM documents GROUP BY 1, 2")


ENTRIES_BY_DOCUMENT = "purchases_scalar_index_entries_by_document"


def _ensure_entries_by_document(conn: sqlite3.Connection) -> None:
    """`create_index` on a collection that holds documents deletes each document's entries
    first (`_sqlite_index_runtime.replace_scalar_entries_for_index_for_document`: `WHERE
    collection_id = ? AND storage_key = ? AND index_name = ?`), and SQLite, with no
    statistics, answered that through the index by index name, reading every entry of the
    index for each document: 4.4 s for one index on 5,000 documents, 14 s on 10,000, hours
    on 300,000. An index on exactly those three columns makes each delete one lookup; an
    index never changes what a statement returns."""
    conn.execute(f"CREATE INDEX IF NOT EXISTS {ENTRIES_BY_DOCUMENT} "
                 "ON scalar_index_entries (collection_id, storage_key, index_name)")
