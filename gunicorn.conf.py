"""gunicorn, the production server: `gunicorn -c gunicorn.conf.py "app:create_app()"`.

The app reads its own settings (HOST, PORT, MONGODB_URI, ...) in `create_app`; this file
only says how many processes and threads serve it. On the embedded default one worker
owns the embedded server (the engine runs one transaction at a time, so more processes
add no database throughput) and serves every request from threads; with MONGODB_URI the
workers share nothing but the database, so there is one per core. `WEB_WORKERS` and
`WEB_THREADS` override both. Measured with scripts/bench_load.py (README, "Many tabs").
"""

import os

bind = f"{os.environ.get('HOST', '127.0.0.1')}:{os.environ.get('PORT', '8050')}"
worker_class = "gthread"
workers = int(os.environ.get("WEB_WORKERS") or (os.cpu_count() or 1 if os.environ.get("MONGODB_URI") else 1))
threads = int(os.environ.get("WEB_THREADS") or 32)
# gthread workers report in while requests run; this bounds a worker that hangs, and its
# first start, which seeds the demo data before the worker reports in
timeout = 300
graceful_timeout = 20
keepalive = 15  # each open tab polls every second over one kept-alive connection
accesslog = None
errorlog = "-"
loglevel = "info"


def post_worker_init(worker):
    """Say where the dashboard is once a worker has built the app (and seeded the demo data)."""
    print(f"Dashboard on http://{bind}/  (gunicorn worker {worker.pid}, {threads} threads)", flush=True)
