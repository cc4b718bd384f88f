"""Screenshot every page in headless Chromium at laptop and phone sizes, signed in as an admin.

Usage: python scripts/screenshot.py [--out screenshots] [--only PATH ...]
       python scripts/screenshot.py --url URL --email EMAIL --password-stdin
Without --url it starts the app on a free port with demo data in a temporary folder.
"""

import argparse
import contextlib
import sys
import tempfile
import threading
import time
from pathlib import Path

from selenium.webdriver.common.by import By
from werkzeug.serving import make_server

from core.storage.schema import USERS, user_array
from dashboard.accounts import create_account
from scripts.chrome import free_port, sign_in, start_chrome

SIZES = {"laptop": (1440, 900), "small-laptop": (1024, 768), "phone": (390, 844)}
SHOT_EMAIL, SHOT_PASSWORD = "screenshots@example.com", "screenshot password 123"
READY_TIMEOUT = 30
# path -> file name; "{user}" is a customer with purchases
PAGES = {"/": "live", "/customers": "customers", "/customers/{user}": "customer", "/grant": "grant",
         "/bulk": "bulk", "/audit": "audit", "/api-keys": "api-keys", "/staff": "staff",
         "/health": "health", "/insights": "insights", "/reports": "reports"}


def serve_demo(data_dir: str, stack: contextlib.ExitStack) -> tuple[str, str]:
    """Start the app with demo data in a background thread; return its URL and a customer's id.
    `stack` stops the server and closes the database (before `data_dir` goes)."""
    from app import create_app
    from commands import prepare_database

    server = create_app({"DATA_DIR": data_dir, "MONGODB_URI": ""})
    with contextlib.redirect_stdout(sys.stderr):  # stdout lists the screenshots alone
        prepare_database(server.extensions["settings"], server.extensions["purchase_database"])  # the demo data
    stack.callback(server.extensions["purchase_database"].close)
    db = server.extensions["purchase_database"].db
    create_account(db, SHOT_EMAIL, "admin", SHOT_PASSWORD, "Screenshot Admin")
    user = db[USERS].find_one({f"{user_array('course')}.2": {"$exists": True}}, {"_id": 1})["_id"]
    port = free_port()
    http = make_server("127.0.0.1", port, server, threaded=True)
    threading.Thread(target=http.serve_forever, daemon=True).start()
    stack.callback(http.shutdown)
    return f"http://127.0.0.1:{port}", str(user)


def charts_drawn(driver) -> bool:
    """True when every chart has drawn its data (or says it has none) and no card is loading."""
    return driver.execute_script(
        "const graphs = [...document.querySelectorAll('.panel .js-plotly-plot')];"
        "return graphs.length > 0 && graphs.every(g => (g.data && g.data.length > 0)"
        " || (g.layout && g.layout.meta && g.layout.meta.state === 'empty'))"
        " && ![...document.querySelectorAll('.card .value')].some(v => v.textContent === '…');"
    )


def page_ready(driver) -> bool:
    """A page is drawn: its heading is there, charts (if any) drawn, no Dash callback pending."""
    return driver.execute_script(
        "return !!document.querySelector('main h1') && !document.querySelector('._dash-loading')"
        " && !document.querySelector('[data-dash-is-loading=\"true\"]');"
    ) and (not driver.find_elements(By.CSS_SELECTOR, ".panel .js-plotly-plot") or charts_drawn(driver))


def shoot(url: str, out: Path, pages: dict, email: str, password: str) -> list[Path]:
    out.mkdir(parents=True, exist_ok=True)
    files = []
    for size, (width, height) in SIZES.items():
        driver = start_chrome(width, height)
        try:
            sign_in(driver, url, email, password)
            for path, name in pages.items():
                driver.set_window_size(width, height)
                driver.get(url + path)
                deadline = time.monotonic() + READY_TIMEOUT
                while not page_ready(driver):
                    if time.monotonic() > deadline:
                        raise TimeoutError(f"{path} not drawn within {READY_TIMEOUT} s")
                    time.sleep(0.2)
                time.sleep(1.0)  # let grids and transitions settle
                full = driver.find_element(By.TAG_NAME, "body").size["height"]
                driver.set_window_size(width, max(height, full + 40))
                time.sleep(0.5)
                target = out / f"{name}-{size}.png"
                driver.save_screenshot(str(target))
                files.append(target)
        finally:
            driver.quit()
    return files


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", help="a running dashboard; default: start one with demo data")
    parser.add_argument("--email", help="an admin account of the running dashboard (with --url)")
    parser.add_argument("--password-stdin", action="store_true", help="read that account's password from stdin")
    parser.add_argument("--user", help="the customer id for the customer page (with --url)")
    parser.add_argument("--only", nargs="*", help="paths to shoot, e.g. / /customers")
    parser.add_argument("--out", default="screenshots")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as data_dir, contextlib.ExitStack() as stack:
        if args.url:
            url, user = args.url.rstrip("/"), args.user or ""
            email, password = args.email, sys.stdin.readline().rstrip("\n") if args.password_stdin else ""
        else:
            (url, user), email, password = serve_demo(data_dir, stack), SHOT_EMAIL, SHOT_PASSWORD
        wanted = {path.format(user=user): name for path, name in PAGES.items()
                  if (not args.only or path in args.only) and ("{user}" not in path or user)}
        for file in shoot(url, Path(args.out), wanted, email, password):
            print(file)
    return 0


if __name__ == "__main__":
    sys.exit(main())
