"""Rollup documents kept between reads: after a change, only the buckets it touched are read again.

Every change that adds to the rollups notes in the data version document, in its own
transaction, the moment whose buckets it changed and the version it makes (`touched`, the
last TOUCHED_KEPT; `core.analytics.rollups.touched_update`). A reader that holds the
documents of an `_id` range as of version c and finds version n, with every version of
(c, n] among the notes, reads again only the buckets of those moments that fall in the
range: after a sale, one point read instead of the range (on the embedded engine the
default view's 100 rollup documents cost 60-90 ms after each write). Anything else reads
the range whole: a version moved without a note (a bulk load, a release before this one),
another rollup set, another `epoch` (the database was made again), a range not held.

Nothing depends on it for correctness beyond those notes: documents are kept only from
snapshots found to be of one version (`commit`), and are never changed by readers. Like
the process's other caches keyed by the data version, it takes a database's history to
only move forward: a backup restored under a running app (same epoch, an older history)
calls for a restart.
"""

import threading
from collections import OrderedDict
from datetime import datetime

from core.analytics.rollups import active_set, touched_id

ENTRIES = 64  # ranges held: a view's figures use three or four
MOST_DOCUMENTS = 20_000  # rollup documents held in all, a few kB each at most


class RangeRead:
    """How to bring one range up to a version: the documents held, the `_id`s to read again
    (None: the whole range), and the key its result is kept under once the snapshot is found good."""

    def __init__(self, key: tuple, held: dict | None, stale: list[str] | None):
        self.key, self.held, self.stale = key, held, stale
        self.docs: list[dict] = []

    def finish(self, read: list[dict]) -> list[dict]:
        """The range's documents, from what was read (the stale `_id`s, or the whole range)."""
        by_id = {} if self.stale is None else dict(self.held)
        if self.stale is not None:
            # a bucket's details are several documents, "<bucket>|<kind>|<method>" (core.analytics.rollups)
            stale = set(self.stale)
            by_id = {i: doc for i, doc in by_id.items() if _bucket_of(i) not in stale}
        by_id.update((doc["_id"], doc) for doc in read)
        self.docs = [by_id[i] for i in sorted(by_id)]
        return self.docs


class RollupCache:
    """Per process: range key -> (version, {_id: document}), least recently used dropped first."""

    def __init__(self, entries: int = ENTRIES, most_documents: int = MOST_DOCUMENTS):
        self._entries: OrderedDict = OrderedDict()
        self._lock = threading.Lock()
        self._size, self._most = entries, most_documents
        self.whole = self.partial = 0  # reads of whole ranges, and of touched buckets only

    def plan(self, db_name: str, state: dict, collection: str, level: str, low: str, high: str,
             projection: dict) -> RangeRead:
        """What to read of the range [low, high) of `collection` (one `level`) at the version
        `state` (the data version document read before the snapshot) says."""
        epoch = state.get("epoch")
        key = (db_name, epoch, active_set(state), collection, low, high, tuple(sorted(projection)))
        version = state.get("version")
        with self._lock:
            entry = self._entries.get(key) if epoch else None
            if entry is not None:
                self._entries.move_to_end(key)
        moments = _moments_since(state, entry[0], version) if entry is not None else None
        if moments is None:
            self.whole += 1
            return RangeRead(key, None, None)
        self.partial += 1
        stale = sorted({i for at in moments if low <= (i := touched_id(level, at)) < high})
        return RangeRead(key, entry[1], stale)

    def commit(self, reads: list[RangeRead], version: int) -> None:
        """Keep what `reads` found: they are of `version` (the snapshot was checked)."""
        with self._lock:
            for read in reads:
                if read.key[1] and type(version) is int:  # an epoch, and a version to hold them at
                    self._entries[read.key] = (version, {doc["_id"]: doc for doc in read.docs})
                    self._entries.move_to_end(read.key)
            held = sum(len(docs) for _, docs in self._entries.values())
            while self._entries and (len(self._entries) > self._size or held > self._most):
                _, (_, docs) = self._entries.popitem(last=False)
                held -= len(docs)

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()


def _bucket_of(doc_id: str) -> str:
    """"day|2025-01-31T00" of "day|2025-01-31T00" and of "day|2025-01-31T00|course|paypal"."""
    return "|".join(doc_id.split("|", 2)[:2])


def _moments_since(state: dict, held: int, version: int) -> list | None:
    """The moments touched by the versions after `held` up to `version`, or None when a
    version among them has no note (or the held one is newer: another history).

    The oldest version in the notes is not trusted: a change may note several moments (a
    revocation: the sale's and its own), and the cap may have cut some of its notes.
    """
    if type(version) is not int or held > version:
        return None
    notes = [t for t in state.get("touched") or () if isinstance(t, dict) and type(t.get("version")) is int]
    if not notes or held < min(t["version"] for t in notes):
        return None
    notes = [t for t in notes if held < t["version"] <= version]
    if {t["version"] for t in notes} != set(range(held + 1, version + 1)) or \
            not all(isinstance(t.get("at"), datetime) for t in notes):
        return None
    return [t["at"] for t in notes]
