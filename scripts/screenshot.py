"""Screenshot the dashboard in headless Chromium at laptop and phone sizes.

Usage: python scripts/screenshot.py [--url URL] [--out screenshots]
Without --url it starts the app on a free port with demo data in a temporary folder.
"""

import argparse
import sys
import tempfile
import threading
import time
from pathlib import Path

from selenium.webdriver.common.by import By
from werkzeug.serving import make_server

from scripts.chrome import free_port, start_chrome

SIZES = {"laptop": (1440, 900), "phone": (390, 844)}
READY_TIMEOUT = 30


def serve_demo(data_dir: str) -> str:
    """Start the app with demo data in a background thread; return its URL."""
    from app import create_app

    server = create_app({"DATA_DIR": data_dir, "MONGODB_URI": "", "PORT": "0"})
    port = free_port()
    http = make_server("127.0.0.1", port, server, threaded=True)
    threading.Thread(target=http.serve_forever, daemon=True).start()
    return f"http://127.0.0.1:{port}/"


def charts_drawn(driver) -> bool:
    """True when every chart has drawn its data (or says it has none) and no card is loading."""
    return driver.execute_script(
        "const graphs = [...document.querySelectorAll('.panel .js-plotly-plot')];"
        "return graphs.length > 0 && graphs.every(g => (g.data && g.data.length > 0)"
        " || (g.layout && g.layout.meta && g.layout.meta.state === 'empty'))"
        " && ![...document.querySelectorAll('.card .value')].some(v => v.textContent === '…');"
    )


def shoot(url: str, out: Path, path: str = "") -> list[Path]:
    out.mkdir(parents=True, exist_ok=True)
    files = []
    for name, (width, height) in SIZES.items():
        driver = start_chrome(width, height)
        try:
            driver.get(url + path)
            deadline = time.monotonic() + READY_TIMEOUT
            while not charts_drawn(driver):
                if time.monotonic() > deadline:
                    raise TimeoutError(f"charts not drawn within {READY_TIMEOUT} s at {url}")
                time.sleep(0.2)
            time.sleep(0.5)  # let transitions settle
            full = driver.find_element(By.TAG_NAME, "body").size["height"]
            driver.set_window_size(width, max(height, full + 40))
            time.sleep(0.5)
            target = out / f"live-{name}.png"
            driver.save_screenshot(str(target))
            files.append(target)
        finally:
            driver.quit()
    return files


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", help="a running dashboard; default: start one with demo data")
    parser.add_argument("--out", default="screenshots")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as data_dir:
        url = args.url or serve_demo(data_dir)
        for file in shoot(url, Path(args.out)):
            print(file)
    return 0


if __name__ == "__main__":
    sys.exit(main())
