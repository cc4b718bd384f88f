"""Stripe webhooks: events signed the way Stripe signs them (HMAC-SHA256 of "timestamp.body"
with the endpoint's secret), delivered twice, out of order, badly signed; no network."""

import hashlib
import hmac
import json
import os
import time
import uuid

import pytest
from bson import ObjectId

from app import create_app
from core.audit import get_audit_log
from core.storage.schema import COURSES, PURCHASES, REVOKED, TESTS, USERS
from tests.conftest import snapshot

SECRET = "whsec_test_secret"


@pytest.fixture
def shop_of(tmp_path):
    """shop_of(currency): an app selling in `currency`, with a webhook secret, a user, a course and a test."""
    opened = []

    def make(currency: str = "USD"):
        server = create_app({"DATA_DIR": str(tmp_path / currency), "MONGODB_URI": os.environ.get("MONGODB_URI", ""),
                             "MONGODB_DB": f"hooks_{uuid.uuid4().hex[:8]}", "SEED_DEMO": "0", "CURRENCY": currency,
                             "HEALTH_CHECK_SECONDS": "0", "STRIPE_WEBHOOK_SECRET": SECRET, "TESTING": True})
        opened.append(server)
        db = server.extensions["purchase_database"].db
        ids = {"user": ObjectId(), "course": ObjectId(), "test": ObjectId()}
        db[USERS].insert_one({"_id": ids["user"], "name": "Ada", "purchasedCourses": [], "purchasedTests": []})
        db[COURSES].insert_one({"_id": ids["course"], "title": "Python"})
        db[TESTS].insert_one({"_id": ids["test"], "title": "Exam"})
        return server, db, ids

    yield make
    for server in opened:
        server.extensions["purchase_database"].close()


@pytest.fixture
def hooked(shop_of):
    return shop_of("USD")


def signed(payload: str, secret: str = SECRET, at: int | None = None) -> str:
    at = int(time.time()) if at is None else at
    signature = hmac.new(secret.encode(), f"{at}.{payload}".encode(), hashlib.sha256).hexdigest()
    return f"t={at},v1={signature}"


def deliver(server, event: dict, **signing):
    payload = json.dumps(event)
    reply = server.test_client().post("/api/v1/webhooks/stripe", data=payload, content_type="application/json",
                                      headers={"Stripe-Signature": signed(payload, **signing)})
    return reply


def checkout(ids, event_id="evt_sale", amount=1999, currency="usd", intent="pi_1", **meta) -> dict:
    metadata = {"user_id": str(ids["user"]), "course_id": str(ids["course"]), **meta}
    return {"id": event_id, "type": "checkout.session.completed", "created": int(time.time()),
            "data": {"object": {"id": "cs_test_1", "object": "checkout.session", "amount_total": amount,
                                "currency": currency, "payment_status": "paid", "payment_intent": intent,
                                "metadata": metadata}}}


def refund(ids, event_id="evt_refund", kind="charge.refunded", intent="pi_1", **fields) -> dict:
    obj = {"id": "ch_1", "object": "charge", "refunded": True, "payment_intent": intent,
           "metadata": {"user_id": str(ids["user"]), "course_id": str(ids["course"])}, **fields}
    return {"id": event_id, "type": kind, "created": int(time.time()), "data": {"object": obj}}


def owned(db, ids) -> list:
    return db[USERS].find_one({"_id": ids["user"]})["purchasedCourses"]


def test_a_completed_checkout_is_a_purchase_in_minor_units_converted_exactly(hooked):
    server, db, ids = hooked
    reply = deliver(server, checkout(ids))
    assert reply.status_code == 200 and reply.get_json()["outcome"] == "purchased"
    purchase = db[PURCHASES].find_one({"user": ids["user"]})
    assert purchase["amount"] == 19.99 and purchase["currency"] == "USD" and purchase["paymentMethod"] == "stripe"
    assert purchase["idempotencyKey"] == "evt_sale" and purchase["metadata"]["stripe_session"] == "cs_test_1"
    assert owned(db, ids) == [ids["course"]]
    entry = get_audit_log(db)[0]
    assert (entry["action"], entry["source"], entry["actor"]) == ("grant", "webhook", "stripe")


@pytest.mark.parametrize(("currency", "minor", "amount"), [("JPY", 4500, 4500), ("BHD", 12345, 12.345)])
def test_currencies_without_cents_and_with_three_decimals(shop_of, currency, minor, amount):
    server, db, ids = shop_of(currency)
    assert deliver(server, checkout(ids, amount=minor, currency=currency.lower())).status_code == 200
    assert db[PURCHASES].find_one({"user": ids["user"]})["amount"] == amount


def test_a_sale_in_another_currency_than_the_shops_is_refused(hooked):
    server, db, ids = hooked  # a USD shop: its figures add amounts, a yen is no cent
    reply = deliver(server, checkout(ids, amount=4500, currency="jpy"))
    assert reply.status_code == 422 and reply.get_json()["errors"][0]["field"] == "currency"
    assert db[PURCHASES].count_documents({}) == 0


def test_a_signed_body_that_is_no_event_is_refused_not_a_500(hooked):
    server, db, ids = hooked
    for body in ([1], {"id": "evt_1", "type": "checkout.session.completed", "data": [1]},
                 {"id": "evt_2", "type": "checkout.session.completed", "data": "x"}, {"type": "x"}):
        payload = json.dumps(body)
        reply = server.test_client().post("/api/v1/webhooks/stripe", data=payload, content_type="application/json",
                                          headers={"Stripe-Signature": signed(payload)})
        assert reply.status_code in (200, 422), (body, reply.get_data(as_text=True))
        assert reply.status_code == 422 or reply.get_json()["outcome"].startswith("ignored")
    deep = "[" * 30_000 + "]" * 30_000
    reply = server.test_client().post("/api/v1/webhooks/stripe", data=deep, content_type="application/json",
                                      headers={"Stripe-Signature": signed(deep)})
    assert reply.status_code == 422
    assert db[PURCHASES].count_documents({}) == 0


def test_a_refund_racing_its_sale_is_not_lost(hooked, monkeypatch):
    """The sale commits after the refund found nothing to revoke and before it kept its note:
    the sale did not see the note, so the refund looks again after keeping it."""
    from api import webhooks

    server, db, ids = hooked
    sale, refunded = checkout(ids), refund(ids)
    keep = webhooks._keep_pending

    def sale_meanwhile(*args):
        assert deliver(server, sale).get_json()["outcome"] == "purchased"  # no note yet: nothing to apply
        keep(*args)

    monkeypatch.setattr(webhooks, "_keep_pending", sale_meanwhile)
    assert deliver(server, refunded).get_json()["outcome"] == "revoked"
    assert owned(db, ids) == [] and db[webhooks.PENDING].count_documents({}) == 0


def test_the_same_event_twice_applies_once(hooked):
    server, db, ids = hooked
    sale = checkout(ids)
    deliver(server, sale)
    before = snapshot(db)
    again = deliver(server, sale)
    assert again.status_code == 200 and again.get_json()["outcome"] == "replayed"
    assert snapshot(db) == before


def test_a_refund_and_a_dispute_revoke_once(hooked):
    server, db, ids = hooked
    deliver(server, checkout(ids))
    refunded = refund(ids)
    reply = deliver(server, refunded)
    assert reply.get_json()["outcome"] == "revoked" and owned(db, ids) == []
    assert db[REVOKED].find_one({"user": ids["user"]})["reason"] == "refund"
    before = snapshot(db)
    assert deliver(server, refunded).get_json()["outcome"] == "replayed"
    assert snapshot(db) == before
    deliver(server, checkout(ids, event_id="evt_sale_2", intent="pi_2"))
    disputed = deliver(server, refund(ids, event_id="evt_dispute", kind="charge.dispute.created", intent="pi_2"))
    assert disputed.get_json()["outcome"] == "revoked" and owned(db, ids) == []
    entries = get_audit_log(db, {"action": "revoke"})
    assert [(e["reason"], e["actor"], e["source"]) for e in entries] == [
        ("chargeback", "stripe", "webhook"), ("refund", "stripe", "webhook")]


def test_a_refund_before_its_sale_is_kept_and_applied_when_the_sale_arrives(hooked):
    server, db, ids = hooked
    refunded, sale = refund(ids), checkout(ids)
    early = deliver(server, refunded)
    assert early.status_code == 200 and early.get_json()["outcome"].startswith("pending")
    assert owned(db, ids) == []
    sold = deliver(server, sale)
    assert sold.get_json()["outcome"] == "purchased, then revoked by an earlier refund"
    assert owned(db, ids) == [] and db[REVOKED].count_documents({"user": ids["user"]}) == 1
    before = snapshot(db)
    # Stripe delivers both again: nothing more happens, and a later purchase stays
    assert deliver(server, refunded).get_json()["outcome"] == "replayed"
    assert deliver(server, sale).get_json()["outcome"] == "replayed"
    assert snapshot(db) == before
    deliver(server, checkout(ids, event_id="evt_sale_2", intent="pi_2"))
    assert owned(db, ids) == [ids["course"]]


def test_a_pending_refund_of_another_payment_leaves_a_sale_alone(hooked):
    server, db, ids = hooked
    deliver(server, refund(ids, intent="pi_old"))
    deliver(server, checkout(ids, intent="pi_new"))
    assert owned(db, ids) == [ids["course"]]


@pytest.mark.parametrize("signing", [{"secret": "whsec_other"}, {"at": int(time.time()) - 600}])
def test_a_bad_or_old_signature_is_400_and_writes_nothing(hooked, signing):
    server, db, ids = hooked
    before = snapshot(db)
    reply = deliver(server, checkout(ids), **signing)
    assert reply.status_code == 400 and reply.mimetype == "application/problem+json"
    assert reply.get_json()["type"] == "/api/v1/problems/bad-signature"
    unsigned = server.test_client().post("/api/v1/webhooks/stripe", json=checkout(ids))
    assert unsigned.status_code == 400
    tampered = json.dumps(checkout(ids))
    reply = server.test_client().post("/api/v1/webhooks/stripe", data=tampered.replace("1999", "1"),
                                      content_type="application/json", headers={"Stripe-Signature": signed(tampered)})
    assert reply.status_code == 400
    assert snapshot(db) == before


def test_unknown_events_and_sales_of_other_things_are_ignored(hooked):
    server, db, ids = hooked
    before = snapshot(db)
    unknown = {"id": "evt_x", "type": "customer.created", "data": {"object": {"id": "cus_1"}}}
    assert deliver(server, unknown).get_json() == {"received": True, "event": "evt_x", "outcome": "ignored"}
    other = checkout(ids)
    other["data"]["object"]["metadata"] = {"sku": "t-shirt"}
    assert deliver(server, other).get_json()["outcome"].startswith("ignored")
    unpaid = checkout(ids)
    unpaid["data"]["object"]["payment_status"] = "unpaid"
    assert deliver(server, unpaid).get_json()["outcome"].startswith("ignored")
    deliver(server, checkout(ids, event_id="evt_sale_3"))
    partial = deliver(server, refund(ids, refunded=False, amount_refunded=100))
    assert partial.get_json()["outcome"].startswith("ignored") and owned(db, ids) == [ids["course"]]
    assert snapshot(db)["purchases"] != before.get("purchases")  # only the one paid sale was written


def test_a_sale_for_an_unknown_user_is_refused_so_stripe_retries(hooked):
    server, db, ids = hooked
    reply = deliver(server, checkout(ids, user_id=str(ObjectId())))
    assert reply.status_code == 404 and reply.get_json()["type"] == "/api/v1/problems/user-not-found"
    bad = deliver(server, checkout(ids, user_id="nobody"))
    assert bad.status_code == 422 and bad.get_json()["errors"][0]["field"] == "user_id"
    assert db[PURCHASES].count_documents({}) == 0


def test_without_a_secret_no_event_is_taken(tmp_path):
    server = create_app({"DATA_DIR": str(tmp_path), "MONGODB_URI": os.environ.get("MONGODB_URI", ""),
                         "MONGODB_DB": f"nohooks_{uuid.uuid4().hex[:8]}", "SEED_DEMO": "0",
                         "HEALTH_CHECK_SECONDS": "0"})
    try:
        reply = deliver(server, {"id": "evt_1", "type": "checkout.session.completed"}, secret="")
        assert reply.status_code == 400 and "STRIPE_WEBHOOK_SECRET" in reply.get_json()["detail"]
    finally:
        server.extensions["purchase_database"].close()
