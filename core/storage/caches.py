"""What this process keeps of a database between calls, on one object per database.

Core's caches (the customer index, buyer figures, rollup documents, the engine's kind) are
slots of the database's `DatabaseCaches`, found by the handle's servers and name, so they
live together and go together (`forget_caches` when an app closes its database). An app
reaches its database's through its own caches object (`caches.AppCaches.database`).
"""

import threading
from collections.abc import Callable

from pymongo.database import Database

from core.storage.db import deployment


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


_BY_DATABASE: dict[tuple, DatabaseCaches] = {}
_LOCK = threading.Lock()


def caches_of(db: Database) -> DatabaseCaches:
    """The caches of `db` (its servers and name) in this process."""
    key = deployment(db)
    with _LOCK:
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
        _BY_DATABASE.pop(deployment(db), None)
