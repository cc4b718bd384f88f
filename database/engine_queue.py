"""Fair admission to the embedded engine, inside its wire server: wait in line, never forever.

mongoeco runs one transaction at a time and, while it is open, refuses every other
session's operation, reads included, with an error that is not transient; nothing it
starts is ever aborted for age. MongoDB instead makes conflicting operations wait on its
locks, and aborts a transaction older than `transactionLifetimeLimitSeconds` (60 s). This
module gives the embedded server that behaviour, for every client of every process, so
clients need no special case:

- A transaction (the command that carries `startTransaction`) waits until no other
  transaction is open and the operations admitted before it are done; transactions are
  served in arrival order.
- A transaction that says it only reads (its first command's `comment` is
  READ_ONLY_COMMENT: a snapshot of the analytics) waits in a line of its own, served
  ahead of the writers' line and alternating with it while both wait: a reader waits for
  the transaction in progress and one batch of reads, not behind sixteen writers; writers
  wait for at most one such reader each.
- Any other operation runs at once when no transaction is open or waiting; otherwise it
  waits for the end of the transaction in progress (or of the next one, when one is only
  waiting), and then every waiting operation runs together before the next transaction
  ("phase-fair": a read waits for at most one transaction, a transaction for the
  transactions before it and one batch of reads).
- Waiting honours the client's `maxTimeMS` (pymongo sends it under `pymongo.timeout`) with
  MongoDB's MaxTimeMSExpired; a request whose client hung up while waiting is dropped.
- A transaction open longer than the lifetime is aborted, as MongoDB does; its later
  commands get NoSuchTransaction, labelled transient, so pymongo's `with_transaction`
  retries it from the start. A client that died inside a transaction holds the engine
  for at most the lifetime.
- txnNumber counts as in MongoDB (mongoeco's session store ignores it): a newer txnNumber
  that starts a transaction aborts the one still open on its session, an older one is
  TransactionTooOld, and a transaction command for a transaction not open is
  NoSuchTransaction (rather than mongoeco running it outside any transaction).
- The `failCommand` fail point fires on commitTransaction and abortTransaction too, which
  mongoeco answers before consulting it; when it answers NoSuchTransaction, the transaction
  is aborted, as that answer says.
"""

import asyncio
import contextvars
import logging
import time
from collections import OrderedDict, deque
from dataclasses import dataclass

from mongoeco.wire._session_identity import wire_session_key
from mongoeco.wire.protocol import OP_MSG, decode_op_msg, encode_op_msg_response
from mongoeco.wire.proxy import AsyncMongoEcoProxyServer

from core.storage.transactions import READ_ONLY_COMMENT

DEFAULT_LIFETIME = 60.0  # MongoDB's transactionLifetimeLimitSeconds default
WATCH_INTERVAL = 0.5
REMEMBERED_ABORTS = 1024
log = logging.getLogger(__name__)

# the reading end of the connection a request arrived on, to notice a client that hung up
_connection_reader: contextvars.ContextVar = contextvars.ContextVar("connection_reader", default=None)


# commands that never touch the engine's data: answered at once, like MongoDB answers its
# monitors while a transaction holds locks (a waiting heartbeat would look like an outage)
UNQUEUED = frozenset({"hello", "ismaster", "isMaster", "ping", "buildinfo", "buildInfo", "getParameter",
                      "configureFailPoint", "whatsmyuri", "connectionStatus", "saslStart", "saslContinue"})
OWNER, OTHER = "owner", "other"
ENDS_TRANSACTION = frozenset({"commitTransaction", "abortTransaction"})
NO_SUCH_TRANSACTION = 251


@dataclass
class _Request:
    command: str
    session: str | None  # the wire session key (from lsid)
    txn_number: int | None
    starts_transaction: bool
    in_transaction: bool  # autocommit: false
    max_seconds: float | None  # from maxTimeMS
    read_only: bool = False  # a transaction that only reads, by its first command's comment


@dataclass
class _Transaction:
    session: str
    txn_number: int | None
    started: float
    running: int = 0  # the owner's requests in flight
    abort_reason: str | None = None  # set: abort it as soon as none of its requests is in flight


def error_document(code: int, name: str, message: str, transient: bool = False) -> dict:
    document = {"ok": 0.0, "errmsg": message, "code": code, "codeName": name}
    if transient:
        document["errorLabels"] = ["TransientTransactionError"]
    return document


def parse_request(header, payload: bytes) -> _Request | None:
    """What admission needs from a request; None when it bypasses the line."""
    if header.op_code != OP_MSG:
        return None
    try:
        body = decode_op_msg(header, payload).body
    except Exception:  # noqa: BLE001 - the server answers malformed requests itself
        return None
    if not body or next(iter(body)) in UNQUEUED:
        return None
    lsid = body.get("lsid")
    max_ms = body.get("maxTimeMS")
    txn_number = getattr(body.get("txnNumber"), "value", body.get("txnNumber"))  # mongoeco decodes int64 as BsonInt64
    return _Request(
        command=next(iter(body)),
        session=wire_session_key(lsid) if lsid is not None else None,
        txn_number=txn_number if isinstance(txn_number, int) else None,
        starts_transaction=body.get("startTransaction") is True,
        in_transaction=body.get("autocommit") is False,
        max_seconds=max_ms / 1000 if isinstance(max_ms, int | float) and max_ms > 0 else None,
        read_only=body.get("comment") == READ_ONLY_COMMENT,
    )


class EngineQueue:
    """The line in front of one engine; every method runs on the server's event loop."""

    def __init__(self, sessions, lifetime: float = DEFAULT_LIFETIME):
        self._sessions = sessions  # mongoeco's WireSessionStore: which sessions hold a transaction
        self.lifetime = lifetime
        self.owner: _Transaction | None = None
        self._others = 0  # requests running that are not the open transaction's
        self._waiting_others: list[asyncio.Future] = []
        self._waiting_transactions: deque[tuple[_Request, asyncio.Future]] = deque()
        self._waiting_readers: deque[tuple[_Request, asyncio.Future]] = deque()  # read-only transactions
        self._reader_turn = True
        self._aborted: OrderedDict = OrderedDict()  # (session, txnNumber) -> why the server aborted it

    def refusal(self, request: _Request) -> dict | None:
        """MongoDB's txnNumber rules, as far as the open transaction and the aborts remembered
        tell: the error to answer instead of running the request, or None. A newer txnNumber
        that starts a transaction (or a retryable write) on the open transaction's session
        dooms that transaction, as MongoDB aborts it."""
        number, owner, key = request.txn_number, self.owner, (request.session, request.txn_number)
        if number is None or request.session is None:
            return None
        if owner is not None and owner.session == request.session and owner.txn_number is not None:
            if number < owner.txn_number:
                return error_document(225, "TransactionTooOld", f"Cannot run transaction {number} on this "
                                      f"session: the newer transaction {owner.txn_number} has already started")
            if number > owner.txn_number and (request.starts_transaction or not request.in_transaction):
                self.doom(owner.session, owner.txn_number, f"transaction {number} began on its session")
                return None
            if number == owner.txn_number and owner.abort_reason is None:
                return None
        elif not request.in_transaction or request.starts_transaction:
            return None
        elif request.command in ENDS_TRANSACTION and key not in self._aborted:
            return None  # mongoeco answers ok when nothing is open: right for a commit retried after it committed
        reason = owner.abort_reason if owner is not None and (owner.session, owner.txn_number) == key else None
        reason = reason or self._aborted.get(key)
        message = f"Transaction {number} is not open on this session" + (f": it was aborted because {reason}"
                                                                         if reason else "")
        return error_document(NO_SUCH_TRANSACTION, "NoSuchTransaction", message, transient=True)

    def doom(self, session: str | None, txn_number: int | None, reason: str) -> None:
        """Abort this transaction if it is the open one, once none of its requests is in flight."""
        owner = self.owner
        if owner is not None and (owner.session, owner.txn_number) == (session, txn_number):
            owner.abort_reason = owner.abort_reason or reason
            self._settle()

    async def enter(self, request: _Request) -> str | None:
        """Wait for this request's turn and return its role, or None when it waited past its maxTimeMS."""
        owner = self.owner
        if owner is not None and request.session == owner.session and owner.abort_reason is None:
            owner.running += 1
            return OWNER
        future = asyncio.get_running_loop().create_future()
        if request.starts_transaction:
            role = OWNER
            (self._waiting_readers if request.read_only else self._waiting_transactions).append((request, future))
            self._admit()
        elif self.owner is None and not self._waiting_transactions and not self._waiting_readers:
            self._others += 1
            return OTHER
        else:
            role = OTHER
            self._waiting_others.append(future)
        try:
            await asyncio.wait_for(asyncio.shield(future), request.max_seconds)
        except TimeoutError:
            if future.done():  # admitted in the same instant: leave the normal way
                self.leave(role)
            else:
                future.cancel()
                self._forget(future)
                self._admit()
            return None
        return role

    def leave(self, role: str) -> None:
        """A request admitted by `enter` is done (or was dropped)."""
        if role == OWNER:
            self.owner.running -= 1
        else:
            self._others -= 1
        self._settle()

    def abort_expired(self) -> None:
        """Abort the open transaction when it has outlived the lifetime and no command of it runs."""
        owner = self.owner
        if owner is None or owner.running or time.monotonic() - owner.started < self.lifetime:
            return
        log.warning("aborting a transaction open for more than %g s (its client is gone or stuck)", self.lifetime)
        self.doom(owner.session, owner.txn_number,
                  f"it outlived the transaction lifetime limit ({self.lifetime:g} s)")

    def _settle(self) -> None:
        """Notice a transaction that ended (committed, aborted, never started) and move the line."""
        owner = self.owner
        if owner is not None and not owner.running:
            session = self._session(owner.session)
            if owner.abort_reason is not None:
                if session is not None and session.transaction_active:
                    session.abort_transaction()
                self._aborted[(owner.session, owner.txn_number)] = owner.abort_reason
                while len(self._aborted) > REMEMBERED_ABORTS:
                    self._aborted.popitem(last=False)
                self._end_transaction()
                return
            if session is None or not session.transaction_active:
                self._end_transaction()
                return
        self._admit()

    def _end_transaction(self) -> None:
        self.owner = None
        self._release_others()
        self._admit()

    def _release_others(self) -> None:
        """The read phase: everyone who waited for the transaction goes now, together."""
        waiting, self._waiting_others = self._waiting_others, []
        for future in waiting:
            if not future.done():
                self._others += 1
                future.set_result(True)

    def _admit(self) -> None:
        if self.owner is not None:
            return
        if self._waiting_others and not self._waiting_transactions and not self._waiting_readers:
            self._release_others()
        while self._others == 0 and (self._waiting_transactions or self._waiting_readers):
            readers_go = self._waiting_readers and (self._reader_turn or not self._waiting_transactions)
            line = self._waiting_readers if readers_go else self._waiting_transactions
            request, future = line.popleft()
            if not future.done():
                self._reader_turn = not readers_go
                self.owner = _Transaction(request.session, request.txn_number, time.monotonic(), running=1)
                future.set_result(True)
                return

    def _forget(self, future) -> None:
        if future in self._waiting_others:
            self._waiting_others.remove(future)
        self._waiting_transactions = deque(item for item in self._waiting_transactions if item[1] is not future)
        self._waiting_readers = deque(item for item in self._waiting_readers if item[1] is not future)

    def _session(self, key: str):
        context = self._sessions._sessions.get(key)
        return context.session if context is not None else None


class QueuedProxyServer(AsyncMongoEcoProxyServer):
    """mongoeco's wire server with an EngineQueue in front of its command execution."""

    def __init__(self, *args, transaction_lifetime: float = DEFAULT_LIFETIME, **kwargs):
        super().__init__(*args, **kwargs)
        self.queue = EngineQueue(self._session_store, transaction_lifetime)
        self._watchdog: asyncio.Task | None = None

    async def start(self):
        address = await super().start()
        self._watchdog = asyncio.create_task(self._watch())
        return address

    async def close(self) -> None:
        if self._watchdog is not None:
            self._watchdog.cancel()
        await super().close()

    async def _watch(self) -> None:
        while True:
            await asyncio.sleep(WATCH_INTERVAL)
            try:
                self.queue.abort_expired()
            except Exception:  # noqa: BLE001 - the watchdog must outlive one failed abort
                log.exception("aborting an expired transaction failed")

    async def _handle_connection(self, reader, writer) -> None:
        _connection_reader.set(reader)
        await super()._handle_connection(reader, writer)

    async def _dispatch_wire_request(self, header, payload: bytes, *, connection) -> bytes | None:
        request = parse_request(header, payload)
        if request is None or (self._auth.enabled and not connection.authenticated_users):
            # a client that has not authenticated is refused there, never admitted to the line
            # (where a startTransaction alone would hold the engine for the lifetime)
            return await super()._dispatch_wire_request(header, payload, connection=connection)
        if request.command in ENDS_TRANSACTION:
            failed = await self._fail_point(header, request)
            if failed is not None:
                return failed
        refusal = self.queue.refusal(request)
        if refusal is not None:
            return self._reply(header, refusal)
        role = await self.queue.enter(request)
        if role is None:
            return self._reply(header, error_document(50, "MaxTimeMSExpired", "operation exceeded time limit "
                                                      "while waiting for another transaction"))
        try:
            reader = _connection_reader.get()
            if reader is not None and reader.at_eof():
                return None  # the client hung up while it waited: nobody to run this for
            return await super()._dispatch_wire_request(header, payload, connection=connection)
        finally:
            self.queue.leave(role)

    async def _fail_point(self, header, request: _Request) -> bytes | None:
        """failCommand on commitTransaction / abortTransaction: mongoeco answers those from its
        session store without consulting the fail point, MongoDB fails them like any command."""
        state = getattr(self._client._engine, "_command_failpoint_state", None)
        fault = state.consume_fail_command(request.command) if state is not None else None
        if fault is None:
            return None
        if fault.block_time_ms:
            await asyncio.sleep(fault.block_time_ms / 1000)
        if fault.close_connection:
            raise ConnectionResetError("failCommand closeConnection")  # the server closes the connection
        if fault.error_code == NO_SUCH_TRANSACTION:
            # the answer says the transaction is gone: make it so, rather than leave it holding
            # the engine (one transaction at a time) until the client's next txnNumber or the lifetime
            self.queue.doom(request.session, request.txn_number, "failCommand answered NoSuchTransaction")
        return self._reply(header, {"ok": 0.0, "errmsg": fault.error_message, "code": fault.error_code,
                                    "errorLabels": list(fault.error_labels)})

    def _reply(self, header, document: dict) -> bytes:
        return encode_op_msg_response(document, request_id=next(self._request_ids), response_to=header.request_id)
