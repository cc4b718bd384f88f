"""The database behind core: a MongoDB deployment from its URI, or, by default, the embedded
MongoDB-compatible server (mongoeco on SQLite) this package runs on loopback.

- `opening`: `open_database` and `OpenDatabase` (the one way the app, scripts and tests open one).
- `embedded`: mongoeco's wire server in a thread, restarted on its address if it dies.
- `engine_queue`: its fair line for the engine, and MongoDB's transaction lifetime.
- `corrections`, `corrections_in_file`: where mongoeco 4.11 does work MongoDB does not, corrected.

Core never imports this package: it receives the pymongo `Database` this opens.
"""

from database.embedded import EmbeddedServer
from database.opening import OpenDatabase, open_database

__all__ = ["EmbeddedServer", "OpenDatabase", "open_database"]
