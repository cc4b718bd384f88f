"""The course platform's API (/api/v1): each route's answer, every error as a problem, keys and
scopes, idempotency under concurrency, the audit entries, the rate limit."""

import os
import subprocess
import sys
import threading
import uuid
from datetime import UTC, datetime
from pathlib import Path

import pytest
from bson import ObjectId

from api import keys
from app import create_app
from core import create_purchase, get_purchase_analytics
from core.audit import get_audit_log
from core.operations import check_consistency, seed_demo
from core.storage.schema import COURSES, IDEMPOTENCY, PURCHASES, TESTS, USERS
from dashboard.pages.live.filters import View, analytics_filters
from tests.conftest import api_headers, signed_in, snapshot

PROBLEM = "application/problem+json"


@pytest.fixture
def shop(app):
    """Two users, two courses and a test in the app's database."""
    db = app.extensions["purchase_database"].db
    ids = {"user": ObjectId(), "other": ObjectId(), "courses": [ObjectId(), ObjectId()], "test": ObjectId()}
    for user, name in ((ids["user"], "Ada Lovelace"), (ids["other"], "Grace Hopper")):
        db[USERS].insert_one({"_id": user, "name": name, "purchasedCourses": [], "purchasedTests": []})
    for i, course in enumerate(ids["courses"]):
        db[COURSES].insert_one({"_id": course, "title": f"Course {i}"})
    db[TESTS].insert_one({"_id": ids["test"], "title": "Final test"})
    return ids


def sale(shop, **fields) -> dict:
    return {"user_id": str(shop["user"]), "course_id": str(shop["courses"][0]), "amount": 29.99, "currency": "USD",
            "payment_method": "credit_card", **fields}


def post_purchase(client, headers, body, key=None):
    return client.post("/api/v1/purchases", json=body, headers={**headers, "Idempotency-Key": key or uuid.uuid4().hex})


def assert_problem(reply, status: int, slug: str) -> dict:
    assert reply.status_code == status, reply.get_data(as_text=True)
    assert reply.mimetype == PROBLEM
    body = reply.get_json(force=True)
    assert body["type"] == f"/api/v1/problems/{slug}" and body["status"] == status
    assert body["title"] and body["detail"]
    return body


def test_ownership_is_true_only_for_what_the_user_owns(app, client, shop, read_key):
    db = app.extensions["purchase_database"].db
    create_purchase(db, shop["user"], shop["courses"][0], None, {"amount": 10, "paymentMethod": "paypal"})
    ask = lambda query: client.get(f"/api/v1/users/{shop['user']}/ownership?{query}", headers=read_key)  # noqa: E731
    assert ask(f"course={shop['courses'][0]}").get_json() == {"owned": True}
    assert ask(f"course={shop['courses'][1]}").get_json() == {"owned": False}
    assert ask(f"test={shop['test']}").get_json() == {"owned": False}
    body = assert_problem(ask(f"course={shop['courses'][0]}&test={shop['test']}"), 422, "validation-error")
    assert body["errors"][0]["field"] == "course"
    assert_problem(client.get(f"/api/v1/users/{ObjectId()}/ownership?course={shop['courses'][0]}", headers=read_key),
                   404, "user-not-found")


def test_entitlements_list_every_item_by_kind(app, client, shop, read_key):
    db = app.extensions["purchase_database"].db
    for course in shop["courses"]:
        create_purchase(db, shop["user"], course, None, {"amount": 10, "paymentMethod": "paypal"})
    create_purchase(db, shop["user"], None, shop["test"], {"amount": 5, "paymentMethod": "paypal"})
    reply = client.get(f"/api/v1/users/{shop['user']}/entitlements", headers=read_key)
    assert reply.status_code == 200
    assert sorted(reply.get_json()["courses"]) == sorted(str(c) for c in shop["courses"])
    assert reply.get_json()["tests"] == [str(shop["test"])]
    assert client.get(f"/api/v1/users/{shop['other']}/entitlements", headers=read_key).get_json() == {
        "courses": [], "tests": []}


def test_history_pages_newest_first_with_revoked_entries_and_their_reason(app, client, shop, write_key):
    items = [("course_id", c) for c in shop["courses"]] + [("test_id", shop["test"])]
    for day, (field, item) in enumerate(items, start=1):
        body = {**sale(shop), "course_id": None, field: str(item), "purchased_at": f"2026-0{day}-01T10:00:00Z"}
        body = {k: v for k, v in body.items() if v is not None}
        assert post_purchase(client, write_key, body).status_code == 201
    revoked = client.post("/api/v1/purchases/revoke", headers=write_key, json={
        "user_id": str(shop["user"]), "course_id": str(shop["courses"][0]), "reason": "refund", "note": "asked"})
    assert revoked.status_code == 200 and revoked.get_json()["reason"] == "refund"
    seen, cursor = [], None
    while True:
        query = "limit=2" + (f"&cursor={cursor}" if cursor else "")
        page = client.get(f"/api/v1/users/{shop['user']}/purchases?{query}", headers=write_key).get_json()
        seen += page["purchases"]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert [p["purchased_at"][:10] for p in seen] == ["2026-03-01", "2026-02-01", "2026-01-01"]
    assert [p["status"] for p in seen] == ["active", "active", "revoked"]
    assert seen[2]["reason"] == "refund" and seen[2]["revoked_by"] == "api:platform" and seen[2]["title"] == "Course 0"
    tests_only = client.get(f"/api/v1/users/{shop['user']}/purchases?kind=test", headers=write_key).get_json()
    assert [p["test_id"] for p in tests_only["purchases"]] == [str(shop["test"])]
    january = client.get(f"/api/v1/users/{shop['user']}/purchases?start=2026-01-01&end=2026-01-31",
                         headers=write_key).get_json()
    assert [p["purchased_at"][:10] for p in january["purchases"]] == ["2026-01-01"]
    assert_problem(client.get(f"/api/v1/users/{shop['user']}/purchases?cursor=nonsense", headers=write_key),
                   422, "validation-error")


def test_a_purchase_answers_201_and_its_replay_the_same_without_writing(app, client, shop, write_key):
    db = app.extensions["purchase_database"].db
    body = sale(shop, discount_code="SPRING", metadata={"order": 17, "tags": ["a"]})
    first = post_purchase(client, write_key, body, key="order-17")
    assert first.status_code == 201 and "Idempotent-Replayed" not in first.headers
    created = first.get_json()
    assert created["amount"] == 29.99 and created["payment_method"] == "credit_card"
    assert created["course_id"] == str(shop["courses"][0]) and created["kind"] == "course"
    assert created["idempotency_key"] == "order-17" and created["metadata"] == {"order": 17, "tags": ["a"]}
    assert shop["courses"][0] in db[USERS].find_one({"_id": shop["user"]})["purchasedCourses"]
    before = snapshot(db)
    again = post_purchase(client, write_key, {k: body[k] for k in reversed(list(body))}, key="order-17")  # any order
    assert again.status_code == 201 and again.headers["Idempotent-Replayed"] == "true"
    assert again.get_json() == created
    assert snapshot(db) == before
    assert_problem(post_purchase(client, write_key, {**body, "amount": 30}, key="order-17"), 409,
                   "idempotency-key-reused")
    assert_problem(post_purchase(client, write_key, {**body, "metadata": {"order": 18}}, key="order-17"), 409,
                   "idempotency-key-reused")
    assert_problem(post_purchase(client, write_key, body), 409, "already-owned")
    assert snapshot(db) == before


def test_the_replay_of_a_purchase_revoked_since_answers_as_the_first_time(app, client, shop, write_key):
    first = post_purchase(client, write_key, sale(shop), key="k")
    client.post("/api/v1/purchases/revoke", headers=write_key,
                json={"user_id": str(shop["user"]), "course_id": str(shop["courses"][0]), "reason": "other"})
    again = post_purchase(client, write_key, sale(shop), key="k")
    assert (again.status_code, again.get_json()) == (201, first.get_json())
    assert again.headers["Idempotent-Replayed"] == "true"


@pytest.mark.parametrize(("change", "field"), [
    ({"amount": 10.999}, "amount"),
    ({"amount": -1}, "amount"),
    ({"amount": "12"}, "amount"),
    ({"amount": 10**9}, "amount"),
    ({"payment_method": "cash"}, "payment_method"),
    ({"currency": "usd"}, "currency"),
    ({"user_id": "not-an-id"}, "user_id"),
    ({"test_id": "0" * 24}, "course_id"),
    ({"purchased_at": "1999-01-01T00:00:00Z"}, "purchased_at"),
    ({"metadata": {"$where": 1}}, "metadata"),
    ({"surprise": 1}, "surprise"),
])
def test_bad_input_is_a_422_naming_the_field_and_writes_nothing(app, client, shop, write_key, change, field):
    db = app.extensions["purchase_database"].db
    before = snapshot(db)
    body = assert_problem(post_purchase(client, write_key, sale(shop, **change)), 422, "validation-error")
    assert field in [error["field"] for error in body["errors"]], body
    assert all(set(error) == {"field", "value", "message"} for error in body["errors"])
    assert snapshot(db) == before


def test_unknown_users_and_items_are_404(client, shop, write_key):
    assert_problem(post_purchase(client, write_key, sale(shop, user_id=str(ObjectId()))), 404, "user-not-found")
    assert_problem(post_purchase(client, write_key, sale(shop, course_id=str(ObjectId()))), 404, "item-not-found")


def test_a_purchase_needs_an_idempotency_key_and_json(app, client, shop, write_key):
    db = app.extensions["purchase_database"].db
    before = snapshot(db)
    body = assert_problem(client.post("/api/v1/purchases", json=sale(shop), headers=write_key), 422, "validation-error")
    assert body["errors"][0]["field"] == "Idempotency-Key"
    assert_problem(client.post("/api/v1/purchases", data="amount=1", headers={**write_key, "Idempotency-Key": "x"},
                               content_type="application/x-www-form-urlencoded"), 415, "unsupported-media-type")
    deep = "[" * 30_000 + "]" * 30_000
    assert_problem(client.post("/api/v1/purchases", data=deep, headers={**write_key, "Idempotency-Key": "x"},
                               content_type="application/json"), 422, "validation-error")
    assert_problem(client.post("/api/v1/purchases", data="{", headers={**write_key, "Idempotency-Key": "x"},
                               content_type="application/json"), 422, "validation-error")
    assert snapshot(db) == before


def test_revoke_answers_the_revoked_purchase_then_409(app, client, shop, write_key):
    db = app.extensions["purchase_database"].db
    post_purchase(client, write_key, sale(shop))
    ask = {"user_id": str(shop["user"]), "course_id": str(shop["courses"][0]), "reason": "chargeback"}
    first = client.post("/api/v1/purchases/revoke", json=ask, headers={**write_key, "Idempotency-Key": "rv"})
    assert first.status_code == 200
    assert first.get_json()["status"] == "revoked" and first.get_json()["reason"] == "chargeback"
    assert db[USERS].find_one({"_id": shop["user"]})["purchasedCourses"] == []
    replay = client.post("/api/v1/purchases/revoke", json=ask, headers={**write_key, "Idempotency-Key": "rv"})
    assert (replay.status_code, replay.get_json()) == (200, first.get_json())
    assert replay.headers["Idempotent-Replayed"] == "true"
    assert_problem(client.post("/api/v1/purchases/revoke", json=ask, headers=write_key), 409, "not-owned")
    assert_problem(client.post("/api/v1/purchases/revoke", json={**ask, "reason": "because"}, headers=write_key),
                   422, "validation-error")
    # a key stands for one request: a revocation's key cannot grant
    assert_problem(post_purchase(client, write_key, sale(shop), key="rv"), 409, "idempotency-key-reused")


def test_every_write_is_audited_with_the_key_that_made_it(app, client, shop, write_key):
    db = app.extensions["purchase_database"].db
    post_purchase(client, write_key, sale(shop))
    client.post("/api/v1/purchases/revoke", headers=write_key, json={
        "user_id": str(shop["user"]), "course_id": str(shop["courses"][0]), "reason": "granted_by_mistake",
        "note": "wrong customer"})
    entries = get_audit_log(db, {"source": "api"})
    assert [(e["action"], e["actor"]) for e in entries] == [("revoke", "api:platform"), ("grant", "api:platform")]
    assert entries[0]["reason"] == "granted_by_mistake" and entries[0]["note"] == "wrong customer"


def test_analytics_are_the_live_page_figures(app, client, read_key):
    db = app.extensions["purchase_database"].db
    seed_demo(db, users=80, items=8, purchases=200, seed=3)
    reply = client.get("/api/v1/analytics?range=90d&kind=course&granularity=week", headers=read_key)
    assert reply.status_code == 200, reply.get_data(as_text=True)
    got = reply.get_json()
    view = View(preset="90d", kind="course", granularity="week")
    today = datetime.now(UTC).date()  # the app's TIMEZONE is UTC
    core = get_purchase_analytics(db, analytics_filters(view, today))
    assert got["view"] == "?range=90d&kind=course&granularity=week"
    assert (got["total_purchases"], got["total_revenue"]) == (core["totalPurchases"], core["totalRevenue"])
    assert got["total_purchases"] > 0 and got["test_purchases"] == 0
    assert [r["revenue"] for r in got["revenue_by_period"]] == [r["revenue"] for r in core["revenueByPeriod"]]
    assert [r["id"] for r in got["popular_courses"]] == [str(r["id"]) for r in core["popularCourses"]]
    assert got["buyers"]["unique"] == core["uniqueBuyers"]
    for query, field in (("range=year", "range"), ("range=custom&start=2026-01-01", "end"),
                         ("range=7d&start=2026-01-01", "start"), ("range=90d&granularity=hour", "granularity"),
                         ("method=cash", "method"), ("range=custom&start=1999-01-01&end=2000-01-01", "start")):
        body = assert_problem(client.get(f"/api/v1/analytics?{query}", headers=read_key), 422, "validation-error")
        assert body["errors"][0]["field"] == field, (query, body)


def test_keys_open_the_api_by_scope_and_nothing_else_does(app, client, shop, read_key, write_key):
    base = f"/api/v1/users/{shop['user']}/entitlements"
    assert_problem(client.get(base), 401, "unauthorized")
    assert client.get(base).headers["WWW-Authenticate"].startswith("Bearer")
    assert_problem(client.get(base, headers={"Authorization": "Bearer pur_not-a-key"}), 401, "unauthorized")
    assert_problem(client.get(base, headers={"Authorization": "Basic dXNlcjpwYXNz"}), 401, "unauthorized")
    assert client.get(base, headers=read_key).status_code == 200
    assert_problem(post_purchase(client, read_key, sale(shop)), 403, "forbidden")
    # a dashboard session does not open the API, and a key opens no page
    viewer = signed_in(app, "admin")
    assert_problem(viewer.get(base), 401, "unauthorized")
    page = client.get("/", headers=write_key)
    assert page.status_code == 302 and page.headers["Location"].startswith("/login")
    reply = client.get(base, headers=write_key)
    assert "Set-Cookie" not in reply.headers


def test_a_revoked_key_is_refused_and_its_name_never_reused(app, client, shop):
    db = app.extensions["purchase_database"].db
    headers = api_headers(app, "read", "old-platform")
    url = f"/api/v1/users/{shop['user']}/entitlements"
    assert client.get(url, headers=headers).status_code == 200
    keys.revoke_key(db, "old-platform", "test")
    assert app.extensions["caches"].api_keys.max_age <= 5  # every process rereads a key this often
    deadline = datetime.now(UTC).timestamp() + 60
    while client.get(url, headers=headers).status_code != 401:
        assert datetime.now(UTC).timestamp() < deadline, "the revoked key still works"
        threading.Event().wait(0.1)
    with pytest.raises(keys.ApiKeyError, match="exists already"):
        keys.create_key(db, "old-platform", "read")
    with pytest.raises(keys.ApiKeyError, match="revoked already"):
        keys.revoke_key(db, "old-platform")


def test_routes_that_do_not_exist_and_methods_they_do_not_take(client, write_key):
    assert_problem(client.get("/api/v1/nothing/here", headers=write_key), 404, "not-found")
    assert_problem(client.get("/api/v2/purchases", headers=write_key), 404, "not-found")
    wrong = assert_problem(client.get("/api/v1/purchases", headers=write_key), 405, "method-not-allowed")
    assert "POST" in wrong["detail"]
    assert_problem(client.delete("/api/v1/purchases", headers=write_key), 405, "method-not-allowed")
    allow = client.options("/api/v1/purchases", headers=write_key)
    assert allow.status_code == 204 and allow.headers["Allow"] == "OPTIONS, POST" and not allow.data
    assert "Content-Type" not in allow.headers
    assert_problem(client.get("/api", headers=write_key), 404, "not-found")  # not the dashboard's page


def test_a_body_too_large_is_refused_before_it_is_read(client, write_key):
    reply = client.post("/api/v1/purchases", data=b"{" + b" " * 200_000 + b"}", content_type="application/json",
                        headers={**write_key, "Idempotency-Key": "big"})
    assert_problem(reply, 413, "payload-too-large")


def test_sixteen_posts_with_one_key_at_once_make_one_purchase(app, shop, write_key):
    db = app.extensions["purchase_database"].db
    barrier, replies = threading.Barrier(16), [None] * 16

    def one(i):
        client = app.test_client()
        barrier.wait()
        replies[i] = post_purchase(client, write_key, sale(shop), key="checkout-42")

    threads = [threading.Thread(target=one, args=(i,)) for i in range(16)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert {reply.status_code for reply in replies} == {201}
    assert len({reply.get_data() for reply in replies}) == 1
    assert sum(reply.headers.get("Idempotent-Replayed") == "true" for reply in replies) == 15
    assert db[PURCHASES].count_documents({"user": shop["user"]}) == 1
    assert db[IDEMPOTENCY].count_documents({"_id": "checkout-42"}) == 1
    assert not any(check_consistency(db).values())


def test_the_rate_limit_answers_429_with_retry_after(tmp_path):
    server = create_app({"DATA_DIR": str(tmp_path), "MONGODB_URI": os.environ.get("MONGODB_URI", ""),
                         "MONGODB_DB": f"limit_{uuid.uuid4().hex[:8]}", "SEED_DEMO": "0",
                         "HEALTH_CHECK_SECONDS": "0", "API_RATE_LIMIT": "3 per minute"})
    try:
        client, headers = server.test_client(), api_headers(server, "read", "busy")
        user = ObjectId()
        # one count per key, whatever the route
        assert [client.get(f"/api/v1/users/{user}/{route}", headers=headers).status_code
                for route in ("entitlements", "purchases", "ownership?course=" + str(ObjectId()))] == [404, 404, 404]
        url = f"/api/v1/users/{user}/entitlements"
        reply = assert_problem(client.get(url, headers=headers), 429, "rate-limited")
        assert "3 per 1 minute" in reply["detail"]
        assert 1 <= int(client.get(url, headers=headers).headers["Retry-After"]) <= 60
        # per key: another key is not held back
        assert client.get(url, headers=api_headers(server, "read", "quiet")).status_code == 404
    finally:
        server.extensions["purchase_database"].close()


@pytest.mark.skipif(bool(os.environ.get("MONGODB_URI")), reason="stops the embedded server")
def test_a_database_that_is_gone_is_a_503_problem(tmp_path):
    server = create_app({"DATA_DIR": str(tmp_path), "MONGODB_URI": "", "MONGODB_DB": "gone", "SEED_DEMO": "0",
                         "HEALTH_CHECK_SECONDS": "0", "DB_TIMEOUT": "1"})  # a request waits 1 s for the database
    try:
        client, headers = server.test_client(), api_headers(server, "read", "lms")
        url = f"/api/v1/users/{ObjectId()}/entitlements"
        assert_problem(client.get(url, headers=headers), 404, "user-not-found")
        server.extensions["purchase_database"].server.stop()
        reply = client.get(url, headers=headers)
        assert_problem(reply, 503, "unavailable")
        assert reply.headers["Retry-After"] == "1"
    finally:
        server.extensions["purchase_database"].close()


def test_the_openapi_document_describes_every_route_and_its_docs_work_offline(client):
    spec = client.get("/api/v1/openapi.json").get_json()
    assert spec["openapi"].startswith("3.")
    assert set(spec["paths"]) == {
        "/api/v1/users/{user_id}/ownership", "/api/v1/users/{user_id}/entitlements",
        "/api/v1/users/{user_id}/purchases", "/api/v1/purchases", "/api/v1/purchases/revoke",
        "/api/v1/analytics", "/api/v1/webhooks/stripe"}
    problem = spec["paths"]["/api/v1/purchases"]["post"]["responses"]["409"]["content"]
    assert problem == {PROBLEM: {"schema": {"$ref": "#/components/schemas/Problem"}}}
    page = client.get("/api/v1/docs")
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    assets = [part.split('"')[1] for part in html.split('src=')[1:]] + \
             [part.split('"')[1] for part in html.split('href=')[1:] if part.startswith('"/')]
    assert assets and all(asset.startswith("/api/v1/") for asset in assets)  # no CDN
    for asset in assets:
        assert client.get(asset).status_code == 200, asset
    described = client.get("/api/v1/problems/already-owned").get_json()
    assert described["status"] == 409


def test_keys_from_the_command_line_are_shown_once_listed_and_revoked(app, client):
    runner = app.test_cli_runner()
    with app.app_context():
        made = runner.invoke(args=["create-api-key", "checkout", "--scope", "write"])
        assert made.exit_code == 0, made.output
        secret = made.output.strip().splitlines()[-1]
        assert secret.startswith("pur_")
        url = f"/api/v1/users/{ObjectId()}/entitlements"
        assert_problem(client.get(url, headers={"Authorization": f"Bearer {secret}"}), 404, "user-not-found")
        listed = runner.invoke(args=["list-api-keys"])
        assert "checkout" in listed.output and "write" in listed.output and "active" in listed.output
        assert secret not in listed.output and secret[:12] in listed.output
        stored = app.extensions["purchase_database"].db[keys.KEYS].find_one({"_id": "checkout"})
        assert secret not in str(stored)  # only its hash
        assert runner.invoke(args=["create-api-key", "checkout", "--scope", "read"]).exit_code == 1
        assert runner.invoke(args=["create-api-key", "bad name!", "--scope", "read"]).exit_code == 1
        assert runner.invoke(args=["create-api-key", "reader", "--scope", "admin"]).exit_code == 2
        revoked = runner.invoke(args=["revoke-api-key", "checkout"])
        assert revoked.exit_code == 0 and "revoked" in runner.invoke(args=["list-api-keys"]).output
        assert runner.invoke(args=["revoke-api-key", "nobody"]).exit_code == 1


@pytest.mark.skipif(bool(os.environ.get("MONGODB_URI")), reason="uses the embedded database of a data folder")
def test_flask_create_api_key_prints_a_key_that_opens_the_api(tmp_path):
    env = {**os.environ, "DATA_DIR": str(tmp_path), "SEED_DEMO": "0", "MONGODB_DB": "cli"}
    made = subprocess.run([sys.executable, "-m", "flask", "--app", "app", "create-api-key", "lms", "--scope", "read"],
                          cwd=Path(__file__).parent.parent, env=env, capture_output=True, text=True, timeout=120)
    assert made.returncode == 0, made.stderr
    secret = made.stdout.strip().splitlines()[-1]
    server = create_app({"DATA_DIR": str(tmp_path), "MONGODB_DB": "cli", "MONGODB_URI": "", "SEED_DEMO": "0",
                         "HEALTH_CHECK_SECONDS": "0"})
    try:
        reply = server.test_client().get(f"/api/v1/users/{ObjectId()}/entitlements",
                                         headers={"Authorization": f"Bearer {secret}"})
        assert_problem(reply, 404, "user-not-found")
    finally:
        server.extensions["purchase_database"].close()


def test_history_takes_an_end_past_tomorrow_and_a_cursor_only_of_its_own_user(app, client, shop, write_key):
    db = app.extensions["purchase_database"].db
    for course in shop["courses"]:
        create_purchase(db, shop["user"], course, None, {"amount": 10, "paymentMethod": "paypal"})
    next_year = datetime.now(UTC).year + 1
    whole = client.get(f"/api/v1/users/{shop['user']}/purchases?start=2020-01-01&end={next_year}-12-31&limit=1",
                       headers=write_key)
    assert whole.status_code == 200 and len(whole.get_json()["purchases"]) == 1
    cursor = whole.get_json()["next_cursor"]
    assert cursor
    body = assert_problem(client.get(f"/api/v1/users/{shop['other']}/purchases?cursor={cursor}", headers=write_key),
                          422, "validation-error")
    assert body["errors"][0]["field"] == "cursor"


def test_a_shop_in_yen_sells_whole_yen_over_the_api(tmp_path):
    server = create_app({"DATA_DIR": str(tmp_path), "MONGODB_URI": os.environ.get("MONGODB_URI", ""),
                         "MONGODB_DB": f"yen_{uuid.uuid4().hex[:8]}", "SEED_DEMO": "0", "CURRENCY": "JPY",
                         "HEALTH_CHECK_SECONDS": "0"})
    try:
        db, headers = server.extensions["purchase_database"].db, api_headers(server)
        user, course = ObjectId(), ObjectId()
        db[USERS].insert_one({"_id": user, "name": "Kenji", "purchasedCourses": [], "purchasedTests": []})
        db[COURSES].insert_one({"_id": course, "title": "Go"})
        client = server.test_client()
        body = {"user_id": str(user), "course_id": str(course), "currency": "JPY", "payment_method": "credit_card"}
        assert_problem(post_purchase(client, headers, {**body, "amount": 500.5}), 422, "validation-error")
        assert_problem(post_purchase(client, headers, {**body, "amount": 5, "currency": "USD"}), 422,
                       "validation-error")
        sold = post_purchase(client, headers, {**body, "amount": 500})
        assert sold.status_code == 201 and sold.get_json()["amount"] == 500
    finally:
        server.extensions["purchase_database"].close()
