"""What this process keeps of a database between calls, on one object per database.

Core's caches (the customer index, buyer figures, rollup documents, the engine's kind) are
slots of the database's `DatabaseCaches`, found by the handle's client and name, so they
live together and go together (`forget_caches` when an app closes its database). An app
reaches its database's through its own caches object (`caches.AppCaches.database`).
"""

import threading
import weakref
from collections.abc import Callable

from pymongo.database import Database


class DatabaseCaches:
    """Named slots, each made on first use by the caller's factory (the layers above storage
    own what they keep; this module only keeps it)."""

    def __init__(self):
        self._lock = threading.Lock()
        self._slots: dict[str, object] = {}

    def slot[T](self, name: str, make: Callable[[], T]) -> T:
        """The slot's value, made by `make()` if absent (a failed `make` leaves it absent)."""
        with self._lock:
            if name in self._slots:
                return self._slots[name]
        value = make()  # outside the lock: making may read the database
        with self._lock:
            return self._slots.setdefault(name, value)

    def held(self, name: str):
        """The slot's value, or None when nothing made it yet."""
        with self._lock:
            return self._slots.get(name)

    def names(self) -> list[str]:
        with self._lock:
            return sorted(self._slots)


_BY_DATABASE: dict[tuple[int, str], DatabaseCaches] = {}
_LOCK = threading.Lock()


def _key(db: Database) -> tuple[int, str]:
    # by client, not by address: a closed client's caches (a thread of a closed app may still
    # ask for them) never reach a new client that happens to get the same port; the entry goes
    # with its client
    client = db.client
    key = (id(client), db.name)
    if key not in _BY_DATABASE:
        weakref.finalize(client, _drop_client, id(client))
    return key


def _drop_client(client_id: int) -> None:
    with _LOCK:
        for key in [key for key in _BY_DATABASE if key[0] == client_id]:
            del _BY_DATABASE[key]


def caches_of(db: Database) -> DatabaseCaches:
    """The caches of `db` (its client and name) in this process."""
    with _LOCK:
        key = _key(db)
        found = _BY_DATABASE.get(key)
        if found is None:
            found = _BY_DATABASE[key] = DatabaseCaches()
        return found


def every_database_caches() -> list[DatabaseCaches]:
    with _LOCK:
        return list(_BY_DATABASE.values())


def forget_caches(db: Database) -> None:
    """Drop what this process keeps of `db`: the next call reads the database afresh."""
    with _LOCK:
        _BY_DATABASE.pop((id(db.client), db.name), None)
