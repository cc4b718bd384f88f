"""Opening the database: a real MongoDB from a URI, or the embedded server by default.

Either way the caller gets a pymongo `Database` (in an `OpenDatabase` that owns what must
be closed), and core works with that alone. On the embedded default this starts mongoeco's
wire server under DATA_DIR (database.embedded), or joins the one another process of the
same folder already serves, and takes the folder over if that process goes away.
"""

import atexit
import fcntl
import logging
import os
import secrets
import threading
from dataclasses import dataclass, field
from datetime import UTC
from pathlib import Path
from urllib.parse import quote

import pymongo
from pymongo import MongoClient
from pymongo.database import Database

from core.storage.db import ensure_indexes, register_in_process, unregister_in_process
from database.embedded import EmbeddedServer

DEFAULT_DB_NAME = "learning"
SQLITE_NAME = "purchases.sqlite"
LOCK_NAME = "embedded.lock"
SECRET_NAME = "database_secret"  # the embedded server's password, readable by DATA_DIR's owner only
DATABASE_USER = "purchases"
SUCCESSION_CHECK_SECONDS = 1.0
CLOSE_TIMEOUT = 0.5
log = logging.getLogger(__name__)
CLIENT_OPTIONS = {"tz_aware": True, "tzinfo": UTC, "serverSelectionTimeoutMS": 5000, "connectTimeoutMS": 5000}


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
            unregister_in_process(self.server.address)
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
        _close_at_exit(opened)
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
    _close_at_exit(opened)
    return opened


def _close_at_exit(opened: OpenDatabase) -> None:
    """Close `opened` when the interpreter exits, before thread pools stop taking work: the
    engine's clean stop runs in one (a plain atexit runs after, and the stop then fails,
    leaving the file for the next start to recover and its index entries to rebuild)."""
    try:
        threading._register_atexit(opened.close)  # what concurrent.futures uses for the same reason
    except (AttributeError, RuntimeError):  # another Python; or the interpreter is exiting already
        atexit.register(opened.close)


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
    register_in_process(server.address, server.run_in_process)
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
