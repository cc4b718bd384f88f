"""Opening the database: a real MongoDB from a URI, or the embedded server by default.

This module is the one place that knows which engine is behind the pymongo client, and
decides what follows from it (unique guard indexes, the bulk-load path).
"""

import atexit
import fcntl
import logging
import os
import re
import secrets
import threading
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import quote

import pymongo
from bson import Binary, Decimal128, Int64, MaxKey, MinKey, ObjectId, Regex, Timestamp
from pymongo import ASCENDING, DESCENDING, MongoClient
from pymongo.database import Database

from core.storage.embedded import EmbeddedServer
from core.storage.retry import retry_when_busy
from core.storage.schema import AUDIT, PURCHASES, REVOKED

DEFAULT_DB_NAME = "learning"
SQLITE_NAME = "purchases.sqlite"
LOCK_NAME = "embedded.lock"
SECRET_NAME = "database_secret"  # the embedded server's password, readable by DATA_DIR's owner only
DATABASE_USER = "purchases"
SUCCESSION_CHECK_SECONDS = 1.0
CLOSE_TIMEOUT = 0.5
log = logging.getLogger(__name__)
CLIENT_OPTIONS = {"tz_aware": True, "tzinfo": UTC, "serverSelectionTimeoutMS": 5000, "connectTimeoutMS": 5000}

# Embedded servers started by this process, by (host, port): bulk_insert uses their
# in-process client instead of the wire.
_LOCAL_SERVERS: dict[tuple[str, int], EmbeddedServer] = {}


@dataclass
class OpenDatabase:
    """A pymongo Database and what owns it; close() releases the client and any server."""

    db: Database
    description: str
    uri: str  # how another client reaches the same server
    server: EmbeddedServer | None = None
    _lock_file: object = field(default=None, repr=False)
    _successor: object = field(default=None, repr=False)  # a joined process's watch on the owner
    on_close: list = field(default_factory=list, repr=False)  # callables: others' clients to close first

    @property
    def client(self) -> MongoClient:
        return self.db.client

    def close(self) -> None:
        if self._successor is not None:
            self._successor.stop()
            self._successor = None
        while self.on_close:
            self.on_close.pop()()
        # a client's close ends its sessions on the server: with the server gone, it would wait
        # its whole server selection time for nothing (sessions expire on their own)
        with pymongo.timeout(CLOSE_TIMEOUT):
            self.db.client.close()
        if self.server is not None:
            _LOCAL_SERVERS.pop(self.server.address, None)
            self.server.stop()
            self.server = None
        if self._lock_file is not None:
            self._lock_file.close()
            self._lock_file = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def open_database(*, uri: str = "", db_name: str | None = None, data_dir: str | Path = "data") -> OpenDatabase:
    """Connect to `uri` (a MongoDB replica set), or start (or join) the embedded server in `data_dir`.

    `db_name` defaults to the URI's database, else "learning". Indexes are created before
    this returns, so callers can write at once.
    """
    uri = (uri or "").strip()
    if uri:
        client = MongoClient(uri, **CLIENT_OPTIONS)
        name = db_name or _default_db_name(client)
        opened = OpenDatabase(client[name], f"MongoDB at {_hosts(uri)}, database {name!r}", uri)
    else:
        opened = _open_embedded(Path(data_dir or "data"), db_name or DEFAULT_DB_NAME)
    ensure_indexes(opened.db)
    return opened


def _default_db_name(client: MongoClient) -> str:
    try:
        return client.get_default_database().name
    except Exception:  # noqa: BLE001 - pymongo raises ConfigurationError when the URI names none
        return DEFAULT_DB_NAME


def _hosts(uri: str) -> str:
    """The hosts a URI names, without its credentials, for display (no DNS lookup)."""
    rest = uri.split("://", 1)[-1]
    return rest.split("/", 1)[0].split("?", 1)[0].rsplit("@", 1)[-1].replace(",", ", ")


def _open_embedded(data_dir: Path, name: str) -> OpenDatabase:
    """Start the embedded server, or join the one another process already runs on this folder.

    The folder and its files are its owner's alone (0700, 0600), and the server answers only
    clients that authenticate with the password kept in the folder: another local user can
    neither read the file nor talk to the server.
    """
    secret = _private_folder(data_dir)
    sqlite_path = data_dir / SQLITE_NAME
    lock_file = _open_lock(data_dir)
    try:
        fcntl.flock(lock_file, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        # Two engines on one SQLite file would not see each other's caches: join the owner.
        lock_file.seek(0)
        address = lock_file.read().strip()
        lock_file.close()
        uri = _with_credentials(address, secret)
        client = MongoClient(uri, **CLIENT_OPTIONS)
        opened = OpenDatabase(client[name], f"embedded mongoeco at {sqlite_path} (served by another process at "
                                            f"{_hosts(address)})", uri)
        opened._successor = _Successor(opened, data_dir)
        atexit.register(opened.close)
        return opened
    server = _serve(sqlite_path, lock_file, secret)
    uri = _with_credentials(server.uri, secret)
    opened = OpenDatabase(
        MongoClient(uri, **CLIENT_OPTIONS)[name],
        f"embedded mongoeco at {sqlite_path}",
        uri,
        server=server,
        _lock_file=lock_file,
    )
    atexit.register(opened.close)
    return opened


def _private_folder(data_dir: Path) -> str:
    """Make DATA_DIR its owner's alone (0700, its files 0600); the embedded server's password."""
    data_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    try:
        os.chmod(data_dir, 0o700)
        for path in data_dir.iterdir():
            if path.is_file():
                os.chmod(path, 0o600)
    except PermissionError:
        log.warning("could not make %s private to its owner", data_dir, exc_info=True)
    sqlite_path = data_dir / SQLITE_NAME
    with _created_private(sqlite_path, exist_ok=True):  # SQLite gives its -wal and -shm files the same mode
        pass
    path = data_dir / SECRET_NAME
    try:
        with _created_private(path) as file:
            file.write(secrets.token_urlsafe(32))
    except FileExistsError:
        pass
    return path.read_text().strip()


def _created_private(path: Path, exist_ok: bool = False):
    """`path` opened for writing, created with mode 0600 (FileExistsError if it exists, unless `exist_ok`)."""
    flags = os.O_WRONLY | os.O_CREAT | (0 if exist_ok else os.O_EXCL)
    return os.fdopen(os.open(path, flags, 0o600), "a")


def _open_lock(data_dir: Path):
    """The folder's lock file, created 0600; it names the address of the server that holds it."""
    return os.fdopen(os.open(data_dir / LOCK_NAME, os.O_RDWR | os.O_CREAT, 0o600), "a+")


def _with_credentials(address: str, secret: str) -> str:
    """The server's URI with the user and password every client of it must present."""
    rest = address.removeprefix("mongodb://")
    options = "authSource=admin&authMechanism=SCRAM-SHA-256"
    separator = "&" if "?" in rest else "/?" if "/" not in rest else "?"
    return f"mongodb://{DATABASE_USER}:{quote(secret, safe='')}@{rest}{separator}{options}"


def _serve(sqlite_path: Path, lock_file, secret: str) -> EmbeddedServer:
    """Start the server of a folder whose lock this process holds; name it in the lock file."""
    lock_file.seek(0)
    server = _start_on_previous_address(sqlite_path, lock_file.read().strip(), secret)
    lock_file.seek(0)
    lock_file.truncate()
    lock_file.write(server.uri)
    lock_file.flush()
    _LOCAL_SERVERS[server.address] = server
    return server


class _Successor(threading.Thread):
    """In a process that joined another's embedded server: when that process is gone (its
    lock is free), serve the folder from here, on the same address, so that every client
    of it, in every process, carries on without a restart."""

    def __init__(self, opened: OpenDatabase, data_dir: Path):
        super().__init__(name="embedded-successor", daemon=True)
        self._opened, self._data_dir = opened, data_dir
        self._stopped = threading.Event()
        self.start()

    def stop(self) -> None:
        self._stopped.set()
        if threading.current_thread() is not self:
            self.join()  # a takeover in progress finishes first, so close() stops what it started

    def run(self) -> None:
        while not self._stopped.wait(SUCCESSION_CHECK_SECONDS):
            lock_file = _open_lock(self._data_dir)  # kept open while we serve
            try:
                fcntl.flock(lock_file, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                lock_file.close()  # the owner lives
                continue
            if self._stopped.is_set():
                lock_file.close()
                return
            try:
                server = _serve(self._data_dir / SQLITE_NAME, lock_file, _private_folder(self._data_dir))
            except Exception:  # noqa: BLE001 - logged; the next check tries again
                log.exception("taking over the embedded server of %s failed", self._data_dir)
                lock_file.close()
                continue
            log.warning("the process serving %s is gone: serving it from this process at %s", self._data_dir,
                        server.uri)
            self._opened.server, self._opened._lock_file = server, lock_file
            self._opened.description = f"embedded mongoeco at {self._data_dir / SQLITE_NAME}"
            return


def _start_on_previous_address(sqlite_path: Path, previous_uri: str, secret: str) -> EmbeddedServer:
    """Serve on the address the folder's last server had, when it is free.

    Processes that joined a server that then died (its process killed, a gunicorn worker
    replaced) keep its address: a new owner on the same port is found again by their
    clients, without a restart. Another port only when that one is taken.
    """
    host, _, port = previous_uri.removeprefix("mongodb://").split("/", 1)[0].rpartition(":")
    if host == "127.0.0.1" and port.isdigit():
        server = EmbeddedServer(sqlite_path, port=int(port), credentials=(DATABASE_USER, secret))
        try:
            server.start()
            return server
        except OSError:
            pass  # taken by something else since: any free port
    server = EmbeddedServer(sqlite_path, credentials=(DATABASE_USER, secret))
    server.start()
    return server


def deployment(db: Database) -> tuple:
    """Which database a handle names, for cache keys: its servers' addresses and its name.

    Unlike `client.address`, this never waits for a server, so a cache lookup still answers
    while the database is down.
    """
    return (frozenset(db.client.topology_description.server_descriptions()), db.name)


def is_embedded(db: Database) -> bool:
    """True when the server is mongoeco, whose unique secondary indexes scan on every write."""
    hello = retry_when_busy(lambda: db.client.admin.command("hello"))
    return hello.get("gitVersion") == "mongoeco"


def ensure_indexes(db: Database) -> None:
    """Create the indexes the queries need; idempotent, cheap when they exist."""
    retry_when_busy(lambda: _create_indexes(db, unique_guards=not is_embedded(db)))


def _create_indexes(db: Database, *, unique_guards: bool) -> None:
    db[PURCHASES].create_index([("user", ASCENDING), ("purchasedAt", DESCENDING)])
    db[PURCHASES].create_index([("purchasedAt", ASCENDING)])
    db[REVOKED].create_index([("user", ASCENDING), ("purchasedAt", DESCENDING)])
    db[REVOKED].create_index([("revokedAt", ASCENDING)])
    db[AUDIT].create_index([("at", DESCENDING)])
    db[AUDIT].create_index([("user", ASCENDING), ("at", DESCENDING)])
    if unique_guards:
        # A second guard behind the per-user write conflict. mongoeco checks a unique
        # secondary index by scanning the collection on every write, so not there.
        for item in ("course", "test"):
            db[PURCHASES].create_index(
                [("user", ASCENDING), (item, ASCENDING)],
                unique=True,
                partialFilterExpression={item: {"$exists": True}},
                name=f"user_{item}_unique",
            )


def bulk_insert(db: Database, collection: str, documents: list[dict], *, skip_existing: bool = False) -> int:
    """Insert many documents at once, outside any transaction; return how many were inserted.

    With `skip_existing`, documents whose `_id` is already there are left out instead of
    failing the batch: a re-run after a crash inserts only what is missing. On an embedded
    server of this process, mongoeco's in-process insert_many; elsewhere pymongo's
    insert_many. The caller keeps the data consistent.
    """
    if not documents:
        return 0

    try:
        _bulk(db, collection, "insert_many", documents, ordered=not skip_existing)
        return len(documents)
    except Exception as error:  # noqa: BLE001 - pymongo's and mongoeco's BulkWriteError
        errors = (getattr(error, "details", None) or {}).get("writeErrors") or [{}]
        if not skip_existing or any(e.get("code") != DUPLICATE_KEY for e in errors):
            raise
        return len(documents) - len(errors)


def bulk_write(db: Database, collection: str, requests: list) -> int:
    """Apply many pymongo write models (UpdateOne, DeleteOne, ...) at once, unordered,
    outside any transaction, by the same path as bulk_insert; return how many."""
    if requests:
        _bulk(db, collection, "bulk_write", requests, ordered=False)
    return len(requests)


DUPLICATE_KEY = 11000

# $type names in MongoDB's order for comparing and sorting values of different types (an
# _id is never an array): the order in which read_all meets them
_ID_TYPES = (("minKey",), ("null",), ("double", "int", "long", "decimal"), ("string", "symbol"), ("object",),
             ("binData",), ("objectId",), ("bool",), ("date",), ("timestamp",), ("regex",), ("maxKey",))


def read_all(db: Database, collection: str, projection: dict | None = None, *, after=None, page: int = 10_000):
    """Every document of a collection (with `_id` greater than `after`), in `_id` order, read
    `page` at a time: `_id` greater than the last one read, sorted, limited (a `projection`
    keeps `_id`).

    One query for them all would not stream on the embedded engine: its wire server computes
    a whole answer before the first batch (300,000 purchases held at once, 240 MB). MongoDB
    compares values of one type only, so when a type runs out the read goes on with the
    types that sort after it; mongoeco compares across types and finds nothing more there.
    """
    query = {} if after is None else {"_id": {"$gt": after}}
    while True:
        docs = retry_when_busy(lambda q=query: list(db[collection].find(q, projection).sort("_id", 1).limit(page)))
        yield from docs
        if len(docs) == page:
            query = {"_id": {"$gt": docs[-1]["_id"]}}
            continue
        if "$gt" not in query.get("_id", {}):
            return  # {} or the types after one: nothing is left
        last = docs[-1]["_id"] if docs else query["_id"]["$gt"]
        later = [name for group in _ID_TYPES[_type_rank(last) + 1 :] for name in group]
        if not later:
            return
        query = {"_id": {"$type": later}}


_PYTHON_TYPES = ((bool, "bool"), (type(None), "null"), ((int, float, Int64, Decimal128), "double"), (str, "string"),
                 (dict, "object"), ((bytes, Binary, uuid.UUID), "binData"), (ObjectId, "objectId"), (datetime, "date"),
                 (Timestamp, "timestamp"), ((Regex, re.Pattern), "regex"), (MinKey, "minKey"), (MaxKey, "maxKey"))


def _type_rank(value) -> int:
    """The place of a value's type in _ID_TYPES (bool before int: it is one in Python)."""
    name = next((name for kinds, name in _PYTHON_TYPES if isinstance(value, kinds)), "maxKey")
    return next(rank for rank, group in enumerate(_ID_TYPES) if name in group)


def _bulk(db: Database, collection: str, method: str, *args, **kwargs):
    """`collection.method(*args, **kwargs)` on the in-process client of a local embedded server, else pymongo's."""
    server = _LOCAL_SERVERS.get(db.client.address)
    if server is None:
        return retry_when_busy(lambda: getattr(db[collection], method)(*args, **kwargs))
    name = db.name

    async def run(client):
        return await getattr(client[name][collection], method)(*args, **kwargs)

    return retry_when_busy(lambda: server.run_in_process(run))
