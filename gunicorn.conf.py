"""gunicorn, the production server: `gunicorn -c gunicorn.conf.py "app:create_app()"`.

The app reads its own settings in `create_app`; this file reads them once too, for the
address and to know whether the database is embedded. On the embedded default, the
database runs in its own process (`python app.py database`, started before the workers
and stopped after them): a grant costs the engine hundreds of ms of CPU on a large
collection, and in a web worker's interpreter that time would be taken from every poll.
The workers join it over loopback; its fair line serves them all. If that process dies, a
worker takes the folder over on the same address (database.opening) and serves on.

Workers and threads: one worker with 128 threads, measured with scripts/bench_load.py
(README, "Production server"); `WEB_WORKERS` and `WEB_THREADS` override them.

In front of it, on HOST:PORT, Debian's nginx (deploy/nginx.conf), which reads every request
whole before gunicorn sees it: a thread is never given to a client that sends slowly (1,000
slow connections held a gthread worker's 128 threads; scripts/bench_doors.py).
gunicorn then listens on a loopback port of its own. Without nginx on the PATH, or with
`WEB_PROXY=0`, gunicorn listens on HOST:PORT itself, with a warning.
"""

import os
import pwd
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

from settings import load_settings

ROOT = Path(__file__).resolve().parent
PROXY_START_TIMEOUT = 15.0
_settings = load_settings()
_database: subprocess.Popen | None = None
_proxy: subprocess.Popen | None = None
_nginx = shutil.which("nginx") or (os.path.exists("/usr/sbin/nginx") and "/usr/sbin/nginx") or None
_with_proxy = bool(_nginx) and os.environ.get("WEB_PROXY", "1") != "0"


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


if _with_proxy:
    _app_port = _free_port()
    bind = f"127.0.0.1:{_app_port}"
    os.environ["LOCAL_PROXY"] = "1"  # the workers' settings: one more proxy appends X-Forwarded-For
else:
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
control_socket_disable = True  # one per machine by default: two instances would share it


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


def when_ready(server):
    """Put nginx in front, on HOST:PORT, once gunicorn listens."""
    global _proxy
    if not _with_proxy:
        server.log.warning("nginx not found (or WEB_PROXY=0): gunicorn serves HOST:PORT itself, and slow "
                           "clients can hold its threads")
        return
    run = Path(_settings.data_dir).resolve() / "proxy"
    run.mkdir(mode=0o700, parents=True, exist_ok=True)
    user = f"user {pwd.getpwuid(os.geteuid()).pw_name};" if os.geteuid() == 0 else ""  # root's workers stay ours
    config = (ROOT / "deploy" / "nginx.conf").read_text()
    for name, value in (("@USER@", user), ("@RUN@", str(run)), ("@MAX_BODY@", str(_settings.max_content_length)),
                        ("@APP_PORT@", str(_app_port)), ("@LISTEN@", f"{_settings.host}:{_settings.port}")):
        config = config.replace(name, value)
    (run / "nginx.conf").write_text(config)
    _proxy = subprocess.Popen([_nginx, "-c", str(run / "nginx.conf"), "-p", str(run), "-e", "stderr"],
                              preexec_fn=_stop_with_parent)
    give_up = time.monotonic() + PROXY_START_TIMEOUT
    while True:
        try:
            socket.create_connection((_settings.host, _settings.port), timeout=1).close()
            break
        except OSError:
            if _proxy.poll() is not None or time.monotonic() > give_up:
                raise RuntimeError(f"nginx did not start on {_settings.host}:{_settings.port}") from None
            time.sleep(0.05)


def _stop_with_parent() -> None:
    """In nginx's process before it starts: SIGTERM when gunicorn's master dies, however it
    dies (a killed master would otherwise leave nginx holding the port)."""
    import ctypes

    ctypes.CDLL(None).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


def post_worker_init(worker):
    print(f"Dashboard on http://{_settings.host}:{_settings.port}/  (gunicorn worker {worker.pid}, "
          f"{threads} threads{', behind nginx' if _with_proxy else ''})", flush=True)


def on_exit(server):
    """Stop nginx, then the database, after the workers."""
    if _proxy is not None and _proxy.poll() is None:
        _proxy.send_signal(signal.SIGQUIT)  # nginx's graceful stop
        try:
            _proxy.wait(timeout=10)
        except subprocess.TimeoutExpired:
            _proxy.kill()
    if _database is not None and _database.poll() is None:
        _database.terminate()
        try:
            _database.wait(timeout=30)
        except subprocess.TimeoutExpired:
            _database.kill()
