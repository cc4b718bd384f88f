"""gunicorn, the production server: `gunicorn -c gunicorn.conf.py "app:create_app()"`.

The app reads its own settings in `create_app`; this file reads them once too, for the
address and to know whether the database is embedded. On the embedded default, the
database runs in its own process (`python app.py database`, started before the workers
and stopped after them): a grant costs the engine hundreds of ms of CPU on a large
collection, and in a web worker's interpreter that time would be taken from every poll.
The workers join it over loopback; its fair line serves them all. If that process dies, a
worker takes the folder over on the same address (core.storage.db) and serves on.

Workers and threads: one worker with 128 threads, measured with scripts/bench_load.py
(README, "Production server"); `WEB_WORKERS` and `WEB_THREADS` override them.
"""

import os
import subprocess
import sys
from pathlib import Path

from settings import load_settings

_settings = load_settings()
_database: subprocess.Popen | None = None

bind = f"{_settings.host}:{_settings.port}"
worker_class = "gthread"
workers = int(os.environ.get("WEB_WORKERS") or 1)
# polls wait (without CPU) for the render of a new sale or the buyers pipeline: threads are
# cheap while they wait, and with 32 a hundred tabs queued behind the waiting ones
threads = int(os.environ.get("WEB_THREADS") or 128)
# gthread workers report in while requests run: this bounds a worker that hangs
timeout = 120
graceful_timeout = 20
keepalive = 15  # each open tab polls every second over one kept-alive connection
accesslog = None
errorlog = "-"
loglevel = "info"


def on_starting(server):
    """Start the embedded database's own process and wait until it serves (demo data loaded)."""
    global _database
    if _settings.mongodb_uri:
        return
    from app import READY

    _database = subprocess.Popen([sys.executable, "app.py", "database"], cwd=Path(__file__).parent,
                                 stdout=subprocess.PIPE, text=True)
    for line in _database.stdout:
        print(line, end="", flush=True)  # the demo accounts' passwords, on first start
        if line.startswith(READY):
            return
    raise RuntimeError(f"the embedded database did not start (exit status {_database.wait()})")


def post_worker_init(worker):
    print(f"Dashboard on http://{bind}/  (gunicorn worker {worker.pid}, {threads} threads)", flush=True)


def on_exit(server):
    """Stop the database after the workers."""
    if _database is not None and _database.poll() is None:
        _database.terminate()
        try:
            _database.wait(timeout=30)
        except subprocess.TimeoutExpired:
            _database.kill()
