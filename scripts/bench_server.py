"""gunicorn with the app on a DATA_DIR, started as `make run` starts it, for the benchmarks that
measure the app over real HTTP (scripts/bench_api.py, scripts/bench_scale.py)."""

import contextlib
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil
import requests

from scripts.chrome import free_port

ROOT = Path(__file__).resolve().parent.parent
AGED_OUT = "aborting a transaction open for more than"  # database.engine_queue's warning


class Stop(Exception):
    """SIGTERM: unwind as Ctrl-C does, so that everything is cleaned up."""


def stop_on_sigterm(_signum, _frame):
    raise Stop("SIGTERM")


class Server:
    """gunicorn with the app on `data_dir`, as `make run` starts it (the embedded database in
    its own process, started by gunicorn.conf.py); `rate_limit` is API_RATE_LIMIT (default: the
    app's), `settings` more of the app's settings by name (WEB_WORKERS="4")."""

    def __init__(self, data_dir: str, rate_limit: str | None = None, **settings: str):
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.log_path = Path(data_dir) / "gunicorn.log"
        self.log = open(self.log_path, "a")  # noqa: SIM115 - kept open for the process; O_APPEND, shared with it
        env = {**os.environ, "DATA_DIR": data_dir, "PORT": str(self.port), "HOST": "127.0.0.1", "SEED_DEMO": "0",
               "HEALTH_CHECK_SECONDS": "0"}
        for name in ("MONGODB_URI", "MONGODB_DB", "WEB_WORKERS", "WEB_THREADS"):
            env.pop(name, None)
        if rate_limit is not None:
            env["API_RATE_LIMIT"] = rate_limit
        env.update(settings)
        # a session of its own: Ctrl-C reaches this script alone, which then stops the server in order
        command = [sys.executable, "-m", "gunicorn", "-c", "gunicorn.conf.py", "app:create_app()"]
        self.process = subprocess.Popen(command, cwd=ROOT, env=env, stdout=self.log, stderr=subprocess.STDOUT,
                                        start_new_session=True)
        self.children: dict[int, psutil.Process] = {}

    def wait_ready(self, timeout: float = 600) -> None:
        give_up = time.monotonic() + timeout
        while time.monotonic() < give_up:
            self._note_children()
            if self.process.poll() is not None:
                raise RuntimeError(f"gunicorn exited:\n{self.tail()}")
            try:
                if requests.get(self.base + "/login", timeout=2).status_code == 200:
                    self._note_children()
                    return
            except requests.RequestException:
                pass
            time.sleep(0.5)
        raise TimeoutError(f"gunicorn not ready in {timeout} s:\n{self.tail()}")

    def _note_children(self) -> None:
        """Remember the worker's and the database's processes, to stop them whatever happens."""
        with contextlib.suppress(psutil.Error):
            for child in psutil.Process(self.process.pid).children(recursive=True):
                self.children.setdefault(child.pid, child)

    def cpu_seconds(self) -> dict:
        """CPU seconds used so far: by gunicorn and its worker, by the database's process, by this script."""
        used = {"web": 0.0, "database": 0.0}
        with contextlib.suppress(psutil.Error):
            master = psutil.Process(self.process.pid)
            for process in [master, *master.children(recursive=True)]:
                with contextlib.suppress(psutil.Error):
                    used["database" if "database" in process.cmdline() else "web"] += sum(process.cpu_times()[:2])
        used["clients"] = sum(psutil.Process().cpu_times()[:2])
        return used

    def aged_out(self) -> int:
        """Transactions the embedded server has aborted so far for being open too long (client gone)."""
        return self.log_path.read_text(errors="replace").count(AGED_OUT)

    def tail(self, lines: int = 30) -> str:
        return "".join(self.log_path.read_text(errors="replace").splitlines(keepends=True)[-lines:])

    def stop(self, grace: float = 45) -> None:
        """SIGTERM to gunicorn (it stops the worker, then the database); whatever is left after
        `grace` seconds is killed. After an interruption the grace is short: a transaction left
        open by a client thread holds the database process's exit until the engine aborts it
        for age (60 s), and the data is thrown away anyway."""
        self._note_children()
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=grace)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        for child in self.children.values():
            with contextlib.suppress(psutil.Error):
                if child.is_running():
                    child.terminate()
                    try:
                        child.wait(timeout=min(grace, 15))
                    except psutil.TimeoutExpired:
                        child.kill()
        self.log.close()
