"""The doors a security review tried, tried again over real HTTP against the app as `make run`
starts it (gunicorn, gunicorn.conf.py, the embedded database in its own process)."""

import os
import socket
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests
from pymongo import MongoClient
from pymongo.errors import OperationFailure

from core import open_database
from dashboard import accounts
from database.opening import LOCK_NAME
from tests.conftest import PASSWORD, production_server

pytestmark = pytest.mark.skipif(bool(os.environ.get("MONGODB_URI")), reason="about the embedded default")
ACCOUNT_WINDOW = 6  # s: LOGIN_LIMIT_ACCOUNT "5 per 6 seconds", so the owner's wait stays short


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    data_dir = tmp_path_factory.mktemp("doors") / "data"
    limits = {"LOGIN_LIMIT_ACCOUNT": f"5 per {ACCOUNT_WINDOW} seconds", "LOGIN_LIMIT_ADDRESS": "20 per minute",
              "MAX_CONTENT_LENGTH": str(8 * 1024 * 1024)}
    with production_server(data_dir, **limits) as (process, base), open_database(data_dir=data_dir) as joined:
        for email, role in (("ann@example.com", "admin"), ("vic@example.com", "viewer"), ("owner@example.com", "viewer")):
            accounts.create_account(joined.db, email, role, PASSWORD)
        yield process, base, data_dir, joined.db


def sign_in(base: str, email: str) -> requests.Session:
    session = requests.Session()
    reply = session.post(base + "/login", data={"email": email, "password": PASSWORD}, allow_redirects=False, timeout=30)
    assert reply.status_code == 302, reply.text
    return session


def test_a_hundred_wrong_passwords_at_once_get_the_limits_checks_and_the_owner_gets_in_after_the_wait(site):
    _, base, _, _ = site

    def guess(n):
        return requests.post(base + "/login", data={"email": "owner@example.com", "password": f"guess number {n}"},
                             allow_redirects=False, timeout=60)

    with ThreadPoolExecutor(100) as pool:
        replies = list(pool.map(guess, range(100)))
    codes = [reply.status_code for reply in replies]
    assert all(code in (401, 429) for code in codes), sorted(set(codes))  # never a 500
    assert codes.count(401) <= 5  # at most the limit's number of password checks
    refused = [reply for reply in replies if reply.status_code == 429]
    assert refused and all(int(reply.headers["Retry-After"]) >= 1 for reply in refused)
    wait = max(int(reply.headers["Retry-After"]) for reply in refused)
    assert wait <= ACCOUNT_WINDOW
    # the owner is slowed down, not locked out: after the wait the right password works
    deadline = time.monotonic() + wait + 30
    while True:
        reply = requests.post(base + "/login", data={"email": "owner@example.com", "password": PASSWORD},
                              allow_redirects=False, timeout=30)
        if reply.status_code == 302:
            break
        assert reply.status_code == 429 and time.monotonic() < deadline, reply.status_code
        time.sleep(int(reply.headers["Retry-After"]))


def test_bodies_over_the_limit_are_refused_before_they_are_read_and_memory_stays(site):
    from scripts.bench_doors import web_worker

    process, base, _, _ = site
    worker = web_worker(process)
    before = worker.memory_info().rss
    host, port = base.removeprefix("http://").split(":")
    for path, declared, cookie in (("/login", 100 * 1024 * 1024, ""), ("/login", 5000, ""),
                                   ("/_dash-update-component", 200 * 1024 * 1024,
                                    sign_in(base, "vic@example.com").cookies["session"])):
        with socket.create_connection((host, int(port)), timeout=30) as raw:
            raw.sendall((f"POST {path} HTTP/1.1\r\nHost: {host}:{port}\r\nContent-Length: {declared}\r\n"
                         f"Content-Type: application/json\r\nCookie: session={cookie}\r\n\r\n").encode()
                        + b"x" * 1000)  # a first part only: the answer must not wait for the rest
            answer = raw.recv(65536).decode(errors="replace")
        assert answer.startswith("HTTP/1.1 413"), (path, answer[:200])
    # an ordinary sign-in body is well under the limit
    assert requests.post(base + "/login", data={"email": "vic@example.com", "password": PASSWORD},
                         allow_redirects=False, timeout=30).status_code == 302
    assert worker.memory_info().rss <= before * 1.10


def test_a_cookie_copied_before_sign_out_is_worthless_after_it(site):
    _, base, _, _ = site
    session = sign_in(base, "ann@example.com")
    copy = requests.Session()
    copy.cookies.set("session", session.cookies["session"])
    assert copy.get(base + "/_dash-layout", timeout=30).status_code == 200
    assert session.get(base + "/logout", timeout=30).status_code == 200  # a GET only shows the button
    assert copy.get(base + "/_dash-layout", timeout=30).status_code == 200
    assert session.post(base + "/logout", allow_redirects=False, timeout=30).headers["Location"] == "/login"
    deadline = time.monotonic() + 10  # every process sees a sign-out within 5 s
    while copy.get(base + "/_dash-layout", timeout=30).status_code != 401:
        assert time.monotonic() < deadline, "the copied cookie still works"
        time.sleep(0.2)


def test_another_local_client_cannot_use_the_database(site):
    _, _, data_dir, _ = site
    address = (data_dir / LOCK_NAME).read_text().strip()
    with MongoClient(address, serverSelectionTimeoutMS=5000) as stranger:
        with pytest.raises(OperationFailure):
            stranger.learning.staff_accounts.find_one()
        with pytest.raises(OperationFailure):
            stranger.learning.staff_accounts.insert_one({"_id": "eve@example.com", "role": "admin"})
    assert requests.post(f"http://{site[1].removeprefix('http://')}/login",
                         data={"email": "eve@example.com", "password": PASSWORD}, allow_redirects=False,
                         timeout=30).status_code == 401


def test_slow_clients_do_not_stop_ordinary_requests(site):
    from scripts.bench_doors import under_attack

    _, base, _, _ = site
    found = under_attack(base, headers=400, bodies=150, seconds=6)
    # more slow connections than gunicorn has threads (128): all held open, none of them in the app's way
    assert found["held"] >= 500 and found["requests"] >= 10
    assert found["failed"] == 0 and found["max"] < 2.0, found
