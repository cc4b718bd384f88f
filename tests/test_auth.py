"""Sign-in, roles and the doors around the app, over HTTP as a browser or a script would try them."""

import os
import stat
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from pymongo import MongoClient

from core import DatabaseUnavailableError
from dashboard import accounts
from database.embedded import EmbeddedServer
from database.opening import CLIENT_OPTIONS
from tests.conftest import PASSWORD, signed_in

ROOT = Path(__file__).resolve().parent.parent


def test_every_page_and_dash_route_needs_a_session(client):
    for path in ("/", "/customers", "/audit", "/anything/else"):
        reply = client.get(path)
        assert reply.status_code == 302 and reply.headers["Location"].startswith("/login?next=")
    assert client.get("/_dash-layout").status_code == 401
    assert client.get("/_dash-dependencies").status_code == 401
    assert client.post("/_dash-update-component", json={"output": "x.children"}).status_code == 401
    assert client.get("/api/purchases").status_code == 401
    assert client.get("/login").status_code == 200


def test_sign_in_redirects_to_a_same_site_next_only(app):
    db = app.extensions["purchase_database"].db
    accounts.create_account(db, "ann@example.com", "admin", PASSWORD, "Ann")
    for target, expected in (("/audit?user=1", "/audit?user=1"), ("//evil.example/x", "/"),
                             ("https://evil.example/", "/"), ("/\\evil.example", "/"), ("", "/")):
        client = app.test_client()
        reply = client.post("/login", data={"email": "ANN@example.com ", "password": PASSWORD, "next": target})
        assert reply.status_code == 302 and reply.headers["Location"] == expected, target


def test_a_failed_sign_in_never_says_which_field_was_wrong(app, client):
    accounts.create_account(app.extensions["purchase_database"].db, "ann@example.com", "viewer", PASSWORD)
    wrong_password = client.post("/login", data={"email": "ann@example.com", "password": "not the password"})
    unknown_email = client.post("/login", data={"email": "bob@example.com", "password": PASSWORD})
    assert wrong_password.status_code == unknown_email.status_code == 401
    message = "Email or password is wrong, or the account is disabled."
    assert message in wrong_password.text and message in unknown_email.text
    assert client.get("/_dash-layout").status_code == 401


def test_failed_sign_ins_are_throttled_per_account_and_per_address(app):
    db = app.extensions["purchase_database"].db
    accounts.create_account(db, "ann@example.com", "viewer", PASSWORD)
    accounts.create_account(db, "bob@example.com", "viewer", PASSWORD)
    client = app.test_client()
    codes = [client.post("/login", data={"email": "ann@example.com", "password": "guess"}).status_code
             for _ in range(6)]
    assert codes == [401] * 5 + [429]
    locked = client.post("/login", data={"email": "ann@example.com", "password": PASSWORD})
    assert locked.status_code == 429 and "Too many failed sign-ins for this account" in locked.text
    assert int(locked.headers["Retry-After"]) > 0
    # another account from the same address still gets in
    assert client.post("/login", data={"email": "bob@example.com", "password": PASSWORD}).status_code == 302
    # per address: 20 failures over many accounts, then even a new account is refused
    other = app.test_client()
    for n in range(20):
        other.post("/login", data={"email": f"guess{n}@example.com", "password": "guess"},
                   environ_base={"REMOTE_ADDR": "10.9.9.9"})
    refused = other.post("/login", data={"email": "bob@example.com", "password": PASSWORD},
                         environ_base={"REMOTE_ADDR": "10.9.9.9"})
    assert refused.status_code == 429 and "from this address" in refused.text


def test_a_viewer_is_told_admins_only_on_admin_pages_and_refused_admin_writes(app):
    viewer = signed_in(app, "viewer")
    for path in ("/audit", "/health", "/bulk", "/grant", "/staff", "/api-keys"):
        reply = viewer.get(path)  # the app, whose router says "Admins only"; nothing of the page
        assert reply.status_code == 403 and "Location" not in reply.headers, path
    assert viewer.get("/customers").status_code == 200  # viewers may read customers
    write = {"output": "admin-grant-result.children", "outputs": {"id": "admin-grant-result", "property": "children"},
             "inputs": [], "changedPropIds": []}
    assert viewer.post("/_dash-update-component", json=write).status_code == 403
    # Dash dispatches on "output" alone: however "outputs" is shaped, the role is checked on it
    for outputs in ([[{"id": "admin-grant-result", "property": "children"}]], [], {"id": "x", "property": "y"}, None):
        assert viewer.post("/_dash-update-component", json={**write, "outputs": outputs}).status_code == 403
    several = "..admin-health-run-message.children...admin-health-run-message.className.."
    assert viewer.post("/_dash-update-component", json={**write, "output": several}).status_code == 403
    pattern = '{"index":1,"type":"admin-row"}.children'
    assert viewer.post("/_dash-update-component", json={**write, "output": pattern}).status_code == 403
    for not_a_key in ({"id": "x"}, ["admin-grant-result.children"], 7, None):
        assert viewer.post("/_dash-update-component", json={**write, "output": not_a_key}).status_code == 400
    assert signed_in(app, "admin").get("/audit").status_code == 200


def test_disabling_an_account_or_changing_its_password_ends_its_sessions(app):
    db = app.extensions["purchase_database"].db
    client = signed_in(app, "viewer", "vic@example.com")
    assert client.get("/_dash-layout").status_code == 200
    accounts.set_password(db, "vic@example.com", "another long password")
    expire_session_cache(app)
    assert client.get("/_dash-layout").status_code == 401
    again = app.test_client()
    assert again.post("/login", data={"email": "vic@example.com", "password": "another long password"}).status_code == 302
    accounts.disable_account(db, "vic@example.com")
    expire_session_cache(app)
    assert again.get("/_dash-layout").status_code == 401
    assert again.post("/login", data={"email": "vic@example.com", "password": "another long password"}).status_code == 401


def expire_session_cache(app):
    """Sessions are re-checked every few seconds; a test does not wait for that."""
    app.extensions["caches"].sessions.max_age = 0


def test_cross_origin_writes_are_refused(app):
    client = signed_in(app, "admin")
    body = {"output": "x.children", "outputs": {"id": "x", "property": "children"}, "inputs": [], "changedPropIds": []}
    assert client.post("/_dash-update-component", json=body, headers={"Origin": "https://evil.example"}).status_code == 403
    assert client.post("/_dash-update-component", json=body, headers={"Sec-Fetch-Site": "cross-site"}).status_code == 403
    assert app.test_client().post("/login", data={"email": "a@b.cd", "password": "x"},
                                  headers={"Origin": "https://evil.example"}).status_code == 403


def test_cookies_and_headers(app):
    client = app.test_client()
    page = client.get("/login")
    assert page.headers["X-Frame-Options"] == "DENY" and page.headers["X-Content-Type-Options"] == "nosniff"
    assert "frame-ancestors 'none'" in page.headers["Content-Security-Policy"]
    accounts.create_account(app.extensions["purchase_database"].db, "ann@example.com", "viewer", PASSWORD)
    reply = client.post("/login", data={"email": "ann@example.com", "password": PASSWORD})
    cookie = reply.headers["Set-Cookie"]
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie and "Secure" not in cookie


def test_the_secret_key_is_generated_once_and_kept_private(app, tmp_path):
    secret = tmp_path / "secret_key"
    assert stat.S_IMODE(secret.stat().st_mode) == 0o600
    assert app.secret_key == secret.read_text().strip() and len(app.secret_key) >= 64


@pytest.mark.skipif(bool(os.environ.get("MONGODB_URI")), reason="uses the embedded database of a data folder")
def test_the_cli_manages_accounts(tmp_path):
    from app import create_app

    env = {**os.environ, "DATA_DIR": str(tmp_path), "SEED_DEMO": "0", "MONGODB_DB": "cli"}
    # once as a person types it (every flask command builds the whole app: 5 s each) ...
    created = subprocess.run([sys.executable, "-m", "flask", "--app", "app", "create-user", "Ann@Example.com",
                              "--role", "admin", "--name", "Ann Admin", "--password-stdin"], cwd=ROOT, env=env,
                             input="a long enough password\n", capture_output=True, text=True, timeout=120, check=False)
    assert created.returncode == 0, created.stderr
    assert "Created admin account ann@example.com" in created.stdout and "password" not in created.stdout.lower()
    # ... then the same commands through Flask's CLI runner, on one app
    app = create_app({"DATA_DIR": str(tmp_path), "SEED_DEMO": "0", "MONGODB_DB": "cli", "HEALTH_CHECK_SECONDS": "0"})
    try:
        runner = app.test_cli_runner()

        def run(*args, stdin=""):
            with app.app_context():  # what the flask command pushes for every command
                return runner.invoke(args=list(args), input=stdin)

        generated = run("create-user", "vic@example.com", "--role", "viewer")
        assert generated.exit_code == 0 and "Password (shown once): " in generated.output
        assert run("create-user", "ann@example.com", "--role", "viewer", "--password-stdin",
                   stdin="another long password\n").exit_code != 0
        assert run("create-user", "x@example.com", "--role", "owner").exit_code != 0
        assert run("set-password", "ann@example.com", "--password-stdin", stdin="short\n").exit_code != 0
        assert run("set-password", "ann@example.com", "--password-stdin", stdin="a newer long password\n").exit_code == 0
        assert run("disable-user", "vic@example.com").exit_code == 0
        assert run("disable-user", "nobody@example.com").exit_code != 0
        db = app.extensions["purchase_database"].db
        assert accounts.verify(db, "ann@example.com", "a newer long password").role == "admin"
        assert accounts.verify(db, "vic@example.com", generated.output.split(": ")[-1].strip()) is None
        assert accounts.get_account(db, "vic@example.com").disabled
    finally:
        app.extensions["purchase_database"].close()


@pytest.mark.skipif(bool(os.environ.get("MONGODB_URI")), reason="stops an embedded server")
def test_a_session_keeps_its_last_check_while_the_database_cannot_answer_for_a_while(tmp_path):
    server = EmbeddedServer(tmp_path / "sessions.sqlite")
    server.start()
    client = MongoClient(server.uri, **CLIENT_OPTIONS)
    try:
        db = client.sessions
        account = accounts.create_account(db, "ann@example.com", "viewer", PASSWORD)
        checked = accounts.SessionCache(max_age=0, timeout=0.3, stale_limit=30)
        signed_in = checked.sign_in(db, account)
        signed_in_just_now = accounts.SessionCache(max_age=0, timeout=0.3, stale_limit=30)
        other = signed_in_just_now.sign_in(db, account)
        never_read = accounts.SessionCache(max_age=0, stale_limit=30)
        assert checked.account(db, signed_in.get_id()) == signed_in
        assert checked.account(db, "not-a-sign-in-of-anyone-at-all") is None
        server.stop()
        started = time.monotonic()
        assert checked.account(db, signed_in.get_id()) == signed_in  # the last answer stands
        assert signed_in_just_now.account(db, other.get_id()) == other
        assert time.monotonic() - started < 2 * 0.3 + 1
        with pytest.raises(DatabaseUnavailableError):
            never_read.account(db, signed_in.get_id())  # nothing to fall back on
        checked.stale_limit = 0
        with pytest.raises(DatabaseUnavailableError):
            checked.account(db, signed_in.get_id())  # past its limit, the last answer is not enough
    finally:
        client.close()
        server.stop()


def test_a_session_cookie_is_worthless_after_sign_out_and_names_nothing_but_a_sign_in(app):
    client = signed_in(app, "admin", "ann@example.com")
    cookie = client.get_cookie("session").value
    assert "ann@example.com" not in _session_payload(cookie)  # the cookie names a sign-in, not the account
    copy = app.test_client()
    copy.set_cookie("session", cookie)
    assert copy.get("/_dash-layout").status_code == 200
    # a GET does not sign out: it shows a button
    page = client.get("/logout")
    assert page.status_code == 200 and 'method="post" action="/logout"' in page.text
    assert copy.get("/_dash-layout").status_code == 200
    assert client.post("/logout").headers["Location"] == "/login"
    assert copy.get("/_dash-layout").status_code == 401  # at once in this process
    assert client.get("/_dash-layout").status_code == 401
    db = app.extensions["purchase_database"].db
    assert db.staff_sessions.count_documents({"email": "ann@example.com"}) == 0


def test_a_sign_out_elsewhere_ends_the_session_here_within_the_cache_age(app):
    db = app.extensions["purchase_database"].db
    client = signed_in(app, "viewer", "vic@example.com")
    assert client.get("/_dash-layout").status_code == 200
    db.staff_sessions.delete_many({"email": "vic@example.com"})  # another process's sign-out
    expire_session_cache(app)
    assert client.get("/_dash-layout").status_code == 401


def test_idle_sessions_end_per_role_and_a_timer_is_not_activity(tmp_path):
    from app import create_app

    app = create_app({"DATA_DIR": str(tmp_path), "SEED_DEMO": "0", "MONGODB_DB": "idle", "HEALTH_CHECK_SECONDS": "0",
                      "SESSION_IDLE_MINUTES": "10", "SESSION_IDLE_MINUTES_VIEWER": "100", "SESSION_MAX_DAYS": "2"})
    try:
        db = app.extensions["purchase_database"].db
        admin, viewer = signed_in(app, "admin", "ann@example.com"), signed_in(app, "viewer", "vic@example.com")
        expire_session_cache(app)

        def idle_for(email, minutes):
            db.staff_sessions.update_many({"email": email}, {"$set": {
                "lastActive": datetime.now(UTC) - timedelta(minutes=minutes)}})

        timer = {"output": "x.children", "outputs": {"id": "x", "property": "children"}, "inputs": [],
                 "changedPropIds": ["live-interval.n_intervals"]}
        idle_for("ann@example.com", 9)
        assert admin.get("/_dash-layout").status_code == 200  # activity: noted
        assert db.staff_sessions.find_one({"email": "ann@example.com"})["lastActive"] > datetime.now(UTC) - timedelta(minutes=1)
        idle_for("ann@example.com", 9)
        admin.post("/_dash-update-component", json=timer)  # a timer's poll is not activity
        assert db.staff_sessions.find_one({"email": "ann@example.com"})["lastActive"] < datetime.now(UTC) - timedelta(minutes=8)
        idle_for("ann@example.com", 11)
        idle_for("vic@example.com", 11)
        assert admin.get("/_dash-layout").status_code == 401  # an admin idle 11 minutes: signed out
        assert viewer.get("/_dash-layout").status_code == 200  # a viewer may be idle 100
        idle_for("vic@example.com", 101)
        assert viewer.get("/_dash-layout").status_code == 401
        # the absolute lifetime, however active
        again = signed_in(app, "viewer", "val@example.com")
        db.staff_sessions.update_many({"email": "val@example.com"}, {"$set": {
            "expiresAt": datetime.now(UTC) - timedelta(seconds=1)}})
        assert again.get("/_dash-layout").status_code == 401
        cookie = again.post("/login", data={"email": "val@example.com", "password": PASSWORD}).headers["Set-Cookie"]
        assert "Expires=" in cookie  # the cookie ends with the sign-in, not with "31 days"
    finally:
        app.extensions["purchase_database"].close()


def _session_payload(cookie: str) -> str:
    """What a signed Flask session cookie carries, readable by anyone who holds it."""
    import base64
    import zlib

    data = cookie.lstrip(".").split(".")[0]
    raw = base64.urlsafe_b64decode(data + "=" * (-len(data) % 4))
    return (zlib.decompress(raw) if cookie.startswith(".") else raw).decode()


def test_headers_hosts_and_what_anonymous_callers_see(app, tmp_path):
    page = app.test_client().get("/login")
    policy = page.headers["Content-Security-Policy"]
    assert "default-src 'self'" in policy and "frame-ancestors 'none'" in policy and "object-src 'none'" in policy
    assert "'unsafe-inline'" not in policy.split("script-src")[1].split(";")[0]  # scripts: ours, and Dash's by hash
    assert page.headers["Cache-Control"] == "no-store"
    admin = signed_in(app, "admin")
    assert admin.get("/_dash-layout").headers["Cache-Control"] == "no-store"
    assert "no-store" not in (app.test_client().get("/assets/style.css").headers.get("Cache-Control") or "")
    # the assets folder's index is Dash's page, with its versions: not for anonymous callers
    index = app.test_client().get("/assets/")
    assert index.status_code == 302 and index.headers["Location"].startswith("/login")
    # the Origin check compares the scheme too
    body = {"output": "customers-results.children", "outputs": {"id": "customers-results", "property": "children"},
            "inputs": [{"id": "customers-search", "property": "value", "value": "x"}], "changedPropIds": []}
    assert admin.post("/_dash-update-component", json=body, headers={"Origin": "https://localhost"}).status_code == 403
    assert admin.post("/_dash-update-component", json=body, headers={"Origin": "http://localhost"}).status_code == 200


def test_trusted_hosts_refuse_any_other_host_header(tmp_path):
    from app import create_app

    app = create_app({"DATA_DIR": str(tmp_path), "SEED_DEMO": "0", "MONGODB_DB": "hosts", "HEALTH_CHECK_SECONDS": "0",
                      "TRUSTED_HOSTS": "purchases.example.com"})
    try:
        client = app.test_client()
        assert client.get("/login", headers={"Host": "evil.example"}).status_code == 400
        assert client.get("/login", headers={"Host": "purchases.example.com"}).status_code == 200
    finally:
        app.extensions["purchase_database"].close()
