"""The embedded MongoDB-compatible server: mongoeco's wire server on loopback, in a thread.

pymongo talks to it like to any MongoDB. It also exposes mongoeco's in-process client,
because that client's `insert_many` loads thousands of documents without the per-document
collection scan that the wire path costs (see `core.storage.db.bulk_insert`).
"""

import asyncio
import concurrent.futures
import contextlib
import logging
import sqlite3
import threading
import time
from pathlib import Path

from mongoeco import AsyncMongoClient
from mongoeco.engines.sqlite import SQLiteEngine
from mongoeco.wire.auth import WireAuthUser
from mongoeco.wire.proxy import AsyncMongoEcoProxyServer

from database import corrections, corrections_in_file
from database.engine_queue import DEFAULT_LIFETIME, QueuedProxyServer

log = logging.getLogger(__name__)

START_TIMEOUT = 15.0
# mongoeco 4.11 rebuilds every scalar index entry when it opens a file (its
# backfill_scalar_indexes_sync) unless the file was closed cleanly by this server since its
# last change (database.corrections_in_file): the first open of a file another program
# wrote costs time in proportion to the data. A start waits for that; a failure is reported at once.
OPEN_TIMEOUT = 900.0
# SQLite finishes a big write at close (its last checkpoint: seconds after a migration of
# 20,000 users); a close cut short leaves the next start to recover the file, locked
# meanwhile. So a stop waits for the engine, and a start waits for a locked file.
STOP_TIMEOUT = 120.0
LOCKED_FILE_WAIT = 60.0
RESTART_DELAY = 0.5  # between a server that died and its restart on the same address


class EmbeddedServer:
    """One mongoeco server on 127.0.0.1 with a free port, storing into one SQLite file.

    Requests wait in line for the engine (database.engine_queue) and a transaction open
    longer than `transaction_lifetime` seconds is aborted; `fair_queue=False` serves them
    as mongoeco alone does (refusing), for benchmarks that compare the two. A server that
    dies while serving (anything but `stop()`) is started again on the same address, so its
    clients, here and in other processes, reconnect without a restart.

    With `credentials` (user, password), only clients that authenticate with them (SCRAM-SHA-256,
    as on MongoDB) may run any command but the handshake's.
    """

    def __init__(self, sqlite_path: Path, host: str = "127.0.0.1", port: int = 0, *,
                 transaction_lifetime: float = DEFAULT_LIFETIME, fair_queue: bool = True,
                 credentials: tuple[str, str] | None = None):
        corrections.apply()
        self.sqlite_path = Path(sqlite_path)
        self._host, self._port = host, port
        self._lifetime, self._fair_queue = transaction_lifetime, fair_queue
        self.credentials = credentials  # a replacement on the same file and address takes them too
        self._users = () if credentials is None else (
            WireAuthUser(credentials[0], credentials[1], source="admin", mechanisms=("SCRAM-SHA-256",)),)
        self._ready: concurrent.futures.Future = concurrent.futures.Future()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self._client: AsyncMongoClient | None = None
        self._task: asyncio.Task | None = None
        self._stopping = False
        self.restarts = 0
        self.proxy = None  # the wire server now serving (its `queue`: the fair line), for tests to watch
        self._thread = threading.Thread(target=self._run, name="mongoeco-server", daemon=True)
        self.uri: str | None = None
        self.address: tuple[str, int] | None = None

    def start(self) -> str:
        """Start serving and return the connection URI."""
        self.sqlite_path.parent.mkdir(parents=True, exist_ok=True)
        self._thread.start()
        self.uri = self._ready.result(timeout=OPEN_TIMEOUT + LOCKED_FILE_WAIT)
        return self.uri

    def stop(self) -> None:
        """Close every connection, then the engine; safe to call twice."""
        self._stopping = True
        if self._loop is not None and self._stop is not None and self._thread.is_alive():
            with contextlib.suppress(RuntimeError):  # a loop closed by a death: the restart sees _stopping
                self._loop.call_soon_threadsafe(self._stop.set)
            self._thread.join(timeout=STOP_TIMEOUT)

    def run_in_process(self, coroutine_factory):
        """Run `coroutine_factory(client)` on the server's own loop with its in-process client."""
        future = asyncio.run_coroutine_threadsafe(coroutine_factory(self._client), self._loop)
        return future.result()

    def _run(self) -> None:
        while True:
            try:
                asyncio.run(self._serve())
            except BaseException as error:  # noqa: BLE001 - reported to start(), or logged and restarted
                if not self._ready.done():
                    self._ready.set_exception(error)
                    return
                if not self._stopping:
                    log.exception("the embedded server at %s died; starting it again", self.uri)
                else:  # the index entries stay unmarked: the next open rebuilds them
                    log.warning("the embedded server at %s failed while stopping", self.uri, exc_info=True)
            if self._stopping or not self._ready.done():
                return
            time.sleep(RESTART_DELAY)
            if self._stopping:
                return
            self.restarts += 1
            self._port = self.address[1]  # the same address: clients find it again

    async def _connected_engine(self) -> SQLiteEngine:
        """The engine, connected; SQLite answers "database is locked" while it recovers a file
        that its previous process left mid-write (measured: 10 to 15 s right after a migration
        of 20,000 users), so a locked file is tried again for LOCKED_FILE_WAIT."""
        give_up_at = time.monotonic() + LOCKED_FILE_WAIT
        while True:
            engine = SQLiteEngine(str(self.sqlite_path))
            try:
                await engine.connect()
                return engine
            except sqlite3.OperationalError as error:
                if "locked" not in str(error) or time.monotonic() > give_up_at:
                    raise
            with contextlib.suppress(Exception):
                await engine.disconnect()
            await asyncio.sleep(0.2)

    async def _serve(self) -> None:
        self._loop, self._task = asyncio.get_running_loop(), asyncio.current_task()
        self._stop = asyncio.Event()
        if self._stopping:
            return
        engine = await self._connected_engine()
        self._client = AsyncMongoClient(engine)
        if self._fair_queue:
            proxy = QueuedProxyServer(client=self._client, host=self._host, port=self._port,
                                      transaction_lifetime=self._lifetime, auth_users=self._users)
        else:
            proxy = AsyncMongoEcoProxyServer(client=self._client, host=self._host, port=self._port,
                                             auth_users=self._users)
        self.proxy = proxy
        try:
            address = await proxy.start()
            self.address = (address.host, address.port)
            if not self._ready.done():
                self._ready.set_result(address.uri)
            await self._stop.wait()
        finally:
            await proxy.close()
            await _disconnect(engine)
        if self._stopping:  # a clean stop: the next open keeps the index entries
            try:
                corrections_in_file.mark_index_entries_current(self.sqlite_path)
            except sqlite3.Error:  # the next open rebuilds them, as without the mark
                log.warning("could not mark the index entries of %s current", self.sqlite_path, exc_info=True)


async def _disconnect(engine: SQLiteEngine) -> None:
    """Close the engine. mongoeco raises, after closing the file, an error its change-consumer
    heartbeat met earlier ("database is locked" while a long write held the file: seen after
    dropping indexes on 300,000 documents); the file is closed cleanly all the same, so the
    index entries are marked current. Any other failure is raised."""
    try:
        await engine.disconnect()
    except sqlite3.Error:
        if not corrections_in_file.closed(engine):
            raise
        log.warning("mongoeco reported an error of its heartbeat after closing %s", engine, exc_info=True)
