"""What the production server (nginx in front of gunicorn, deploy/nginx.conf) sends a browser:
compressed scripts that it may keep, pages and answers that it may not."""

import os
import re

import pytest
import requests

from core import open_database
from dashboard import accounts
from tests.conftest import PASSWORD, production_server

pytestmark = pytest.mark.skipif(bool(os.environ.get("MONGODB_URI")), reason="about the embedded default")
YEAR = "max-age=31536000"


def test_scripts_are_compressed_and_kept_while_pages_and_answers_are_not(tmp_path):
    with production_server(tmp_path / "data") as (_, base):
        with open_database(data_dir=tmp_path / "data") as joined:
            accounts.create_account(joined.db, "cache@example.com", "viewer", PASSWORD, "Cache Tester")
        browser = requests.Session()
        browser.headers["Accept-Encoding"] = "gzip"
        signed = browser.post(base + "/login", data={"email": "cache@example.com", "password": PASSWORD},
                              allow_redirects=False, timeout=30)
        assert signed.status_code == 302

        page = browser.get(base + "/", timeout=30)
        assert page.status_code == 200 and page.headers["Cache-Control"] == "no-store"
        assert page.headers["Content-Encoding"] == "gzip"
        for answer in (browser.get(base + "/_dash-layout", timeout=30), browser.get(base + "/_dash-dependencies", timeout=30)):
            assert answer.headers["Cache-Control"] == "no-store" and answer.headers["Content-Encoding"] == "gzip"

        # Dash's component suites, named with their versions: compressed, kept a year, and the
        # same for every account (no Vary: Cookie, which the changing session cookie would
        # miss; no Set-Cookie, which a shared cache would keep with the file)
        suites = re.findall(r'src="(/_dash-component-suites/[^"]+\.v[0-9_]+m[0-9]+[^"]*\.js)"', page.text)
        assert suites, page.text
        renderer = next(src for src in suites if "dash_renderer" in src)
        script = browser.get(base + renderer, timeout=30)
        assert script.status_code == 200 and script.headers["Content-Encoding"] == "gzip"
        assert YEAR in script.headers["Cache-Control"] and "no-store" not in script.headers["Cache-Control"]
        assert script.headers["Vary"] == "Accept-Encoding" and "Set-Cookie" not in script.headers  # nothing personal

        # assets named with their file's time (?m=): the same; the sign-in page's, without it, asked for each time
        assets = re.findall(r'href="(/assets/style\.css\?m=[^"]+)"', page.text)
        assert assets, page.text
        style = browser.get(base + assets[0], timeout=30)
        assert style.headers["Cache-Control"] == f"public, {YEAR}, immutable"
        assert style.headers["Content-Encoding"] == "gzip" and style.headers["Vary"] == "Accept-Encoding"
        assert YEAR not in (requests.get(base + "/assets/style.css", timeout=30).headers.get("Cache-Control") or "")

        # a chunk Dash loads on demand has no version in its name: a browser asks again, and
        # gets a 304 although gzip made its ETag weak (nginx hands Dash the tag without W/)
        chunk = browser.get(base + "/_dash-component-suites/dash/dcc/async-graph.js", timeout=30)
        assert chunk.status_code == 200 and chunk.headers["ETag"].startswith('W/"')
        again = browser.get(base + "/_dash-component-suites/dash/dcc/async-graph.js", timeout=30,
                            headers={"If-None-Match": chunk.headers["ETag"]})
        assert again.status_code == 304

        # nobody else gets the scripts, and nothing was kept on the way for them
        stranger = requests.get(base + renderer, allow_redirects=False, timeout=30)
        assert stranger.status_code == 401
