"""Where Flask-Limiter keeps its counters: limits' MongoDB storage, in the app's database
server (a database of its own), so every worker and process shares them.

The embedded engine refuses every operation while another session's transaction is open;
the storage retries that refusal (`core.storage.retry_when_busy`) instead of failing the
sign-in. On MongoDB the retry never fires.
"""

import pymongo
from limits.storage import MongoDBStorage

from core.storage import retry_when_busy
from dashboard.context import DashboardContext

PREFIX = "retrying+"
CLOSE_TIMEOUT = 0.5


class RetryingMongoDBStorage(MongoDBStorage):
    # a scheme of its own is how Flask-Limiter's storage_uri finds this class
    STORAGE_SCHEME = ["retrying+mongodb", "retrying+mongodb+srv"]

    def __init__(self, uri: str, **options):
        super().__init__(uri.removeprefix(PREFIX), **options)
        # limits creates its TTL indexes once, on first use, and never again if that fails
        retry_when_busy(self._ensure_indexes, deadline=15)

    def _ensure_indexes(self):
        self.counters.create_index("expireAt", expireAfterSeconds=0)
        self.windows.create_index("expireAt", expireAfterSeconds=0)

    def check(self) -> bool:
        # limits sends `buildinfo`, which the embedded engine does not know
        try:
            return retry_when_busy(lambda: self.storage.admin.command("ping"), deadline=2).get("ok") == 1
        except Exception:  # noqa: BLE001 - a health check answers, it does not raise
            return False


def _retried(name: str):
    method = getattr(MongoDBStorage, name)

    def call(self, *args, **kwargs):
        return retry_when_busy(lambda: method(self, *args, **kwargs), deadline=5)

    call.__name__ = name
    return call


for _name in ("incr", "get", "get_expiry", "clear", "reset", "get_moving_window", "acquire_entry",
              "get_sliding_window", "acquire_sliding_window_entry"):
    setattr(RetryingMongoDBStorage, _name, _retried(_name))


def storage(context: DashboardContext) -> dict:
    """Flask-Limiter's storage arguments for the app's database server."""
    return {"storage_uri": PREFIX + context.database_uri,
            "storage_options": {"database_name": f"{context.db.name}_limits", "serverSelectionTimeoutMS": 5000}}


def close(limiter) -> None:
    """Close the storage's own client, if it opened one; with the database gone, at once (a
    client's close ends its sessions on the server, and would wait for one to answer)."""
    client = getattr(limiter.storage, "_storage", None)
    if client is not None:
        with pymongo.timeout(CLOSE_TIMEOUT):
            client.close()
