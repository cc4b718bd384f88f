"""Lighthouse scores of every page, signed in, against the production server.

    .venv/bin/python scripts/bench_lighthouse.py [--runs 3] [--pages / /customers ...]
                                                 [--url http://HOST:PORT --email E --password P]
                                                 [--keep DIR]

Needs Lighthouse (npm `lighthouse`, pinned in scripts/lighthouse/package.json and its lock
file: `make lighthouse` installs it there) and Debian's Chromium (`make browser`).

Without --url it starts the server as `make run` does (gunicorn.conf.py: nginx in front of
gunicorn, the embedded database in its own process, loaded with the demo data) in a
temporary DATA_DIR on a free port, signs in as the demo admin (with the password the first
start prints) and stops it at the end. With --url it measures a server already running,
signed in with --email and --password.

Each page is measured --runs times (default 3), one Lighthouse at a time, each in a fresh
headless Chromium (`--headless --no-sandbox --disable-gpu --disable-dev-shm-usage`):
Lighthouse's desktop preset (simulated throttling: 40 ms round trips, 10 Mbit/s, the CPU
as it is), categories performance, accessibility and best practices, the session cookie
sent with every request (`--extra-headers`), a cold cache each run. The table gives, per
page, the median run's performance (the median by performance) with its metrics, and
accessibility and best practices. Lighthouse times the CPU as it finds it: on a busy
machine (a test suite beside it) the page's main thread waits for a CPU, its tasks last
longer, total blocking time grows and performance drops. So the table ends with the
machine's load average, only runs made side by side compare, and a column "TBT cpu" adds
up the same from the trace's main-thread CPU time instead of its wall time (each task's
CPU time over 50 ms, from the first contentful paint to the trace's end): what the
blocking time would be on this CPU with nothing else running. --keep DIR saves every
report (JSON) for a closer look.
"""

import argparse
import json
import os
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from scripts.chrome import FLAGS, free_port  # noqa: E402

LIGHTHOUSE = ROOT / "scripts" / "lighthouse" / "node_modules" / ".bin" / "lighthouse"
CHROME_FLAGS = " ".join(flag for flag in FLAGS if flag in ("--headless", "--no-sandbox", "--disable-gpu",
                                                            "--disable-dev-shm-usage"))
CATEGORIES = ("performance", "accessibility", "best-practices")
METRICS = (("first-contentful-paint", "FCP"), ("largest-contentful-paint", "LCP"),
           ("total-blocking-time", "TBT"), ("cumulative-layout-shift", "CLS"), ("speed-index", "SI"))
DEMO_ADMIN = re.compile(r"^\s*admin\s+(\S+@\S+)\s+password:\s*(\S+)")
START_TIMEOUT = 180.0
ATTEMPTS = 3


def page_paths() -> list[str]:
    """Every page of the dashboard, in the navigation's order."""
    from dashboard.pages import page_modules

    return [page.PATH for page in page_modules()]


class Server:
    """`make run`'s server (gunicorn.conf.py) on a temporary DATA_DIR with the demo data."""

    def __init__(self, data_dir: Path):
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.log_path = data_dir / "gunicorn.log"
        env = {**os.environ, "DATA_DIR": str(data_dir / "data"), "HOST": "127.0.0.1", "PORT": str(self.port),
               "SEED_DEMO": "1", "HEALTH_CHECK_SECONDS": "0"}
        env.pop("MONGODB_URI", None)
        with open(self.log_path, "w") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "gunicorn", "-c", "gunicorn.conf.py", "app:create_app()"],
                cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)

    def wait_ready(self) -> tuple[str, str]:
        """Wait until /login answers; the demo admin's email and password, as the start printed them."""
        give_up = time.monotonic() + START_TIMEOUT
        while True:
            try:
                if requests.get(self.base + "/login", timeout=2).status_code == 200:
                    break
            except requests.RequestException:
                pass
            if self.process.poll() is not None or time.monotonic() > give_up:
                raise SystemExit(f"the server did not start:\n{self.log_path.read_text()}")
            time.sleep(0.5)
        for line in self.log_path.read_text().splitlines():
            found = DEMO_ADMIN.match(line)
            if found:
                return found.group(1), found.group(2)
        raise SystemExit(f"no demo admin password in the server's output:\n{self.log_path.read_text()}")

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=60)
            except subprocess.TimeoutExpired:
                self.process.kill()


def sign_in(base: str, email: str, password: str) -> str:
    """The session cookie of a sign-in through the form."""
    with requests.Session() as session:
        reply = session.post(base + "/login", data={"email": email, "password": password, "next": "/"}, timeout=30)
        cookie = session.cookies.get("session")
        if reply.status_code != 200 or not cookie or reply.url.rstrip("/").endswith("/login"):
            raise SystemExit(f"sign-in as {email} failed ({reply.status_code} at {reply.url})")
        return cookie


def lighthouse(url: str, cookie: str, keep: Path | None, name: str) -> dict:
    """One Lighthouse run of `url`: its report (JSON), with "cpuBlockingMs" added from its trace."""
    with tempfile.TemporaryDirectory(prefix="lighthouse-") as folder:
        output = Path(folder) / "report.json"
        command = [str(LIGHTHOUSE), url, "--preset=desktop", f"--only-categories={','.join(CATEGORIES)}",
                   f"--chrome-flags={CHROME_FLAGS}", "--extra-headers", json.dumps({"Cookie": f"session={cookie}"}),
                   "--output=json", f"--output-path={output}", "--save-assets", "--quiet"]
        env = {**os.environ, "CHROME_PATH": os.environ.get("CHROME_PATH") or shutil.which("chromium")
               or shutil.which("chromium-browser") or ""}
        for attempt in range(ATTEMPTS):  # a busy machine can keep Chromium from answering in time
            finished = subprocess.run(command, env=env, capture_output=True, text=True, timeout=300)
            if finished.returncode == 0 and output.exists():
                break
            print(f"  lighthouse failed on {url} (attempt {attempt + 1} of {ATTEMPTS}): "
                  f"{finished.stderr.strip().splitlines()[-1:]}", file=sys.stderr, flush=True)
        else:
            raise SystemExit(f"lighthouse failed on {url}:\n{finished.stderr[-3000:]}")
        if keep is not None:
            keep.mkdir(parents=True, exist_ok=True)
            shutil.copy(output, keep / f"{name}.json")
        report = json.loads(output.read_text())
        trace = Path(folder) / "report-0.trace.json"
        report["cpuBlockingMs"] = cpu_blocking(json.loads(trace.read_text())) if trace.exists() else None
        return report


def cpu_blocking(trace) -> float | None:
    """Total blocking time by CPU time: the page's main-thread tasks from its first contentful
    paint on, each one's CPU time (tdur) beyond 50 ms."""
    events = trace["traceEvents"] if isinstance(trace, dict) else trace
    paints = [e for e in events if e.get("name") == "firstContentfulPaint"]
    if not paints:
        return None
    main, start = (paints[0]["pid"], paints[0]["tid"]), paints[0]["ts"]
    return sum(max(0.0, e.get("tdur", 0) / 1000 - 50) for e in events
               if e.get("name") == "RunTask" and e.get("ph") == "X" and (e["pid"], e["tid"]) == main and e["ts"] >= start)


def summary(report: dict) -> dict:
    """Scores (0-100) and metrics of one report."""
    row = {category: round(100 * (report["categories"][category]["score"] or 0)) for category in CATEGORIES}
    audits = report["audits"]
    for audit, label in METRICS:
        value = audits[audit].get("numericValue")
        row[label] = None if value is None else (round(value, 3) if label == "CLS" else round(value))
    row["TBT cpu"] = None if report.get("cpuBlockingMs") is None else round(report["cpuBlockingMs"])
    if report["finalDisplayedUrl"].split("?")[0].endswith("/login"):
        row["signed out"] = True  # measured the sign-in page: the cookie did not sign in
    return row


def measure(base: str, cookie: str, paths: list[str], runs: int, keep: Path | None) -> list[tuple[str, dict, list]]:
    results = []
    for path in paths:
        rows = []
        for run in range(runs):
            name = (path.strip("/").replace("/", "_") or "live") + f"-{run + 1}"
            rows.append(summary(lighthouse(base + path, cookie, keep, name)))
            print(f"  {path} run {run + 1}: performance {rows[-1]['performance']}"
                  f"{' (SIGNED OUT)' if rows[-1].get('signed out') else ''}", file=sys.stderr, flush=True)
        ordered = sorted(rows, key=lambda row: row["performance"])
        results.append((path, ordered[(len(ordered) - 1) // 2], [row["performance"] for row in rows]))
    return results


def table(results, load_before: float) -> str:
    lines = ["| page | performance | runs | accessibility | best practices | FCP ms | LCP ms | TBT ms | TBT cpu ms "
             "| CLS | SI ms |",
             "|---|---|---|---|---|---|---|---|---|---|---|"]
    for path, row, scores in results:
        lines.append(f"| {path} | {row['performance']} | {'/'.join(map(str, scores))} | {row['accessibility']} | "
                     f"{row['best-practices']} | {row['FCP']} | {row['LCP']} | {row['TBT']} | {row['TBT cpu']} | "
                     f"{row['CLS']} | {row['SI']} |")
    medians = [row["performance"] for _, row, _ in results]
    if medians:
        lines.append(f"\nlowest performance {min(medians)}, median {statistics.median(medians)}")
    lines.append(f"load average (1 min) {load_before:.1f} before, {os.getloadavg()[0]:.1f} after, "
                 f"on {os.cpu_count()} CPUs")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=3, help="Lighthouse runs per page (the median is shown)")
    parser.add_argument("--pages", nargs="+", help="paths to measure (default: every page)")
    parser.add_argument("--url", help="a running server's base URL (default: start one)")
    parser.add_argument("--email", help="with --url: the account to sign in as")
    parser.add_argument("--password", help="with --url: its password")
    parser.add_argument("--keep", type=Path, help="a folder to save every Lighthouse report (JSON) in")
    args = parser.parse_args()
    if not LIGHTHOUSE.exists():
        raise SystemExit(f"{LIGHTHOUSE} not found: run `make lighthouse`")
    paths = args.pages or page_paths()
    load_before = os.getloadavg()[0]
    if args.url:
        if not (args.email and args.password):
            raise SystemExit("--url needs --email and --password")
        cookie = sign_in(args.url.rstrip("/"), args.email, args.password)
        print(table(measure(args.url.rstrip("/"), cookie, paths, args.runs, args.keep), load_before))
        return
    with tempfile.TemporaryDirectory(prefix="bench-lighthouse-") as folder:
        server = Server(Path(folder))
        try:
            email, password = server.wait_ready()
            cookie = sign_in(server.base, email, password)
            print(f"server {server.base} (demo data), signed in as {email}", file=sys.stderr, flush=True)
            results = measure(server.base, cookie, paths, args.runs, args.keep)
        finally:
            server.stop()
    print(table(results, load_before))


if __name__ == "__main__":
    main()
