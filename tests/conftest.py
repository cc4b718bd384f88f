"""One database server for the session (embedded, or MONGODB_URI); a fresh database per test."""

import contextlib
import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest
import requests
from bson import ObjectId
from pymongo import _csot

from app import create_app
from core import ensure_indexes, open_database
from core.storage.caches import forget_caches
from core.storage.schema import COURSES, PURCHASES, TESTS, USERS
from dashboard import accounts


@pytest.fixture(autouse=True)
def no_time_limit_left_behind():
    """A test must not leave a pymongo.timeout() entered (a request's bound whose teardown did
    not run): every later database call of its worker would fail at once."""
    yield
    left = _csot.get_timeout()
    _csot.reset_all()
    assert left is None, f"a pymongo.timeout({left}) was left entered"


@pytest.fixture(scope="session")
def opened_database(tmp_path_factory):
    opened = open_database(
        uri=os.environ.get("MONGODB_URI", ""), data_dir=tmp_path_factory.mktemp("data"), db_name="test_bootstrap"
    )
    yield opened
    opened.close()


@pytest.fixture
def db(opened_database):
    database = opened_database.client[f"test_{uuid.uuid4().hex[:12]}"]
    ensure_indexes(database)
    yield database
    opened_database.client.drop_database(database.name)
    forget_caches(database)


@pytest.fixture
def catalog(db):
    """A user with empty arrays, two courses and two tests."""
    ids = {
        "user": ObjectId(),
        "other_user": ObjectId(),
        "courses": [ObjectId(), ObjectId()],
        "tests": [ObjectId(), ObjectId()],
    }
    for user in (ids["user"], ids["other_user"]):
        db[USERS].insert_one({"_id": user, "name": "Ada", "purchasedCourses": [], "purchasedTests": []})
    for i, course in enumerate(ids["courses"]):
        db[COURSES].insert_one({"_id": course, "title": f"Course {i}", "price": 29.99})
    for i, test in enumerate(ids["tests"]):
        db[TESTS].insert_one({"_id": test, "title": f"Test {i}", "price": 9.99})
    return ids


def snapshot(db) -> dict:
    """Every document of every collection, to assert that a rejected call wrote nothing."""
    return {name: sorted(db[name].find(), key=lambda d: str(d["_id"])) for name in sorted(db.list_collection_names())}


def owned(db, user, kind: str) -> list:
    array = "purchasedCourses" if kind == "course" else "purchasedTests"
    return db[USERS].find_one({"_id": user})[array]


def purchases_of(db, user) -> list:
    return list(db[PURCHASES].find({"user": user}))


@pytest.fixture
def app(tmp_path):
    """The app as `create_app` builds it, on its own database (flaskr's `app` fixture)."""
    uri = os.environ.get("MONGODB_URI", "")
    server = create_app({"DATA_DIR": str(tmp_path), "MONGODB_URI": uri, "MONGODB_DB": f"app_{uuid.uuid4().hex[:12]}",
                         "SEED_DEMO": "0", "TESTING": True,
                         # a poll may take up to half the interval: these tests are about what
                         # a poll answers, not how fast, on a machine that may be busy
                         "REFRESH_MS": "10000",
                         # no scheduled consistency check writing in the middle of a snapshot
                         "HEALTH_CHECK_SECONDS": "0"})
    yield server
    opened = server.extensions["purchase_database"]
    if uri:
        opened.client.drop_database(opened.db.name)
    opened.close()


@pytest.fixture
def client(app):
    """A browser without a session."""
    return app.test_client()


PASSWORD = "correct horse battery staple"


@contextlib.contextmanager
def production_server(data_dir: Path, **env):
    """gunicorn with gunicorn.conf.py on a free port, as `make run` starts it (no demo data
    unless SEED_DEMO says so); yields (process, base URL) once /login answers."""
    from scripts.chrome import free_port

    port = free_port()
    env = {**os.environ, "DATA_DIR": str(data_dir), "PORT": str(port), "SEED_DEMO": "0", "HEALTH_CHECK_SECONDS": "0",
           **env}
    env.pop("MONGODB_URI", None)
    data_dir.mkdir(parents=True, exist_ok=True)
    log_path = data_dir.parent / f"gunicorn-{port}.log"
    with open(log_path, "w+") as log:
        process = subprocess.Popen([sys.executable, "-m", "gunicorn", "-c", "gunicorn.conf.py", "app:create_app()"],
                                   cwd=Path(__file__).resolve().parent.parent, env=env, stdout=log,
                                   stderr=subprocess.STDOUT)
        base = f"http://127.0.0.1:{port}"
        try:
            give_up = time.monotonic() + 90
            while True:
                try:
                    if requests.get(base + "/login", timeout=2).status_code == 200:
                        break
                except requests.RequestException:
                    pass
                assert process.poll() is None and time.monotonic() < give_up, log_path.read_text()
                time.sleep(0.3)
            yield process, base
        finally:
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
            process.wait(timeout=60)


def host_port(uri: str) -> str:
    """"127.0.0.1:40123" of a MongoDB URI, without its credentials and options."""
    return uri.strip().removeprefix("mongodb://").rsplit("@", 1)[-1].split("/", 1)[0]


def signed_in(app, role: str, email: str | None = None):
    """A test client signed in through POST /login with a new account of `role`."""
    email = email or f"{role}-{uuid.uuid4().hex[:6]}@example.com"
    accounts.create_account(app.extensions["purchase_database"].db, email, role, PASSWORD, f"{role.title()} Tester")
    client = app.test_client()
    reply = client.post("/login", data={"email": email, "password": PASSWORD})
    assert reply.status_code == 302, reply.data
    return client


@pytest.fixture
def viewer_client(app):
    return signed_in(app, "viewer")


@pytest.fixture
def admin_client(app):
    return signed_in(app, "admin")


def api_headers(app, scope: str = "write", name: str | None = None) -> dict:
    """The Authorization header of a new API key of `scope` on `app`'s database."""
    from api import keys

    _, secret = keys.create_key(app.extensions["purchase_database"].db, name or f"{scope}-{uuid.uuid4().hex[:6]}", scope)
    return {"Authorization": f"Bearer {secret}"}


@pytest.fixture
def write_key(app):
    return api_headers(app, "write", "platform")


@pytest.fixture
def read_key(app):
    return api_headers(app, "read", "lessons")
