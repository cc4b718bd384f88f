"""The corrections to mongoeco (database.corrections) that keep tables of their own inside
its SQLite file: a marker of index entries left current by a clean stop, and counts of the
kinds of value each field holds. Triggers keep both exact whoever writes the file.
"""

import re
import sqlite3
from pathlib import Path

from mongoeco.engines import sqlite as engine_module
from mongoeco.engines.sqlite import SQLiteEngine

from database.corrections import PINNED_VERSION

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


def keep_current_index_entries_at_open() -> None:
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


def count_field_kinds() -> None:
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
