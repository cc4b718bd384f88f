"""Bounded, jittered retry of operations the database refused because it was busy.

The embedded engine (mongoeco) runs one transaction at a time and refuses every other
operation meanwhile, with an error that is not labelled transient, so pymongo does not
retry it. MongoDB never sends these errors, so on a replica set this code never waits.
"""

import random
import time

# mongoeco's refusal while another session's transaction is open, and SQLite's own
# "database is locked" when its busy timeout runs out under load
BUSY_MESSAGES = ("active transaction bound to another session", "database is locked")
DEADLINE_SECONDS = 30.0
FIRST_DELAY = 0.002
MAX_DELAY = 0.1


def is_busy(error: Exception) -> bool:
    """True when the engine refused because another session holds a transaction."""
    return any(message in str(error) for message in BUSY_MESSAGES)


def retry_when_busy(operation, *, deadline: float = DEADLINE_SECONDS):
    """Call `operation()` until it does not fail with a busy error, for at most `deadline` s."""
    give_up_at = time.monotonic() + deadline
    delay = FIRST_DELAY
    while True:
        try:
            return operation()
        except Exception as error:  # noqa: BLE001 - pymongo's and mongoeco's own error types
            if not is_busy(error) or time.monotonic() >= give_up_at:
                raise
        time.sleep(random.uniform(0, delay))
        delay = min(MAX_DELAY, delay * 2)
