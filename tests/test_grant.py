"""The grant form's callbacks over HTTP: review, confirm, refusals, double submits, races."""

import contextlib
import json
import threading

import pytest
from bson import ObjectId

from core import get_audit_log, has_purchased
from core.storage.schema import COURSES, PURCHASES, USERS
from dashboard.pages import grant
from scripts.dash_client import callback_body, callback_key
from tests.conftest import signed_in, snapshot


@pytest.fixture
def shop(app):
    db = app.extensions["purchase_database"].db
    user, course = ObjectId(), ObjectId()
    db[USERS].insert_one({"_id": user, "name": "Grace Hopper", "email": "grace@example.com",
                          "purchasedCourses": [], "purchasedTests": []})
    db[COURSES].insert_one({"_id": course, "title": "COBOL in Practice", "price": 49.99})
    return {"db": db, "user": user, "course": course}


def submit(client, app, trigger: str, key="view-1", **fields):
    """Press a button of the grant form with these field values."""
    dash_app = app.extensions["dash"]
    cb = callback_key(dash_app, f"{grant.RESULT}.children")
    values = {f"{grant.USER}.value": fields.get("user"), f"{grant.ITEM}.value": fields.get("item"),
              f"{grant.MODE}.value": fields.get("mode", grant.COMPLIMENTARY), f"{grant.AMOUNT}.value": fields.get("amount"),
              f"{grant.METHOD}.value": fields.get("method"), f"{grant.DISCOUNT}.value": fields.get("discount"),
              f"{grant.NOTE}.value": fields.get("note"), f"{grant.KEY}.data": key,
              f"{trigger}.n_clicks": 1}
    return client.post("/_dash-update-component", json=callback_body(dash_app, cb, values, [f"{trigger}.n_clicks"]))


def response(reply) -> dict:
    assert reply.status_code == 200, reply.data
    return reply.get_json()["response"]


def test_review_then_confirm_grants_once_with_the_admin_as_actor(app, shop):
    admin = signed_in(app, "admin", "ann@example.com")
    item = f"course:{shop['course']}"
    reviewed = response(submit(admin, app, grant.REVIEW, user=str(shop["user"]), item=item, note="speaker"))
    text = json.dumps(reviewed[grant.CONFIRM_TEXT]["children"])
    assert "COBOL in Practice" in text and "Grace Hopper (grace@example.com)" in text and "free" in text
    assert shop["db"][PURCHASES].count_documents({}) == 0  # a review writes nothing
    first = response(submit(admin, app, grant.CONFIRM, user=str(shop["user"]), item=item, note="speaker"))
    assert "Granted" in json.dumps(first[grant.RESULT]["children"])
    # a double click, a retry: the same form view's key grants nothing more
    again = response(submit(admin, app, grant.CONFIRM, user=str(shop["user"]), item=item, note="speaker"))
    assert "Granted" in json.dumps(again[grant.RESULT]["children"])
    purchases = list(shop["db"][PURCHASES].find())
    assert len(purchases) == 1 and purchases[0]["amount"] == 0 and purchases[0]["paymentMethod"] == "admin_grant"
    assert has_purchased(shop["db"], shop["user"], shop["course"])
    [entry] = get_audit_log(shop["db"])
    assert (entry["actor"], entry["source"], entry["note"]) == ("ann@example.com", "admin", "speaker")


@contextlib.contextmanager
def ada_shop(tmp_path, name: str, **settings):
    """An app of its own with these settings, a customer Ada and a course; (server, db, user, course)."""
    from app import create_app

    server = create_app({"DATA_DIR": str(tmp_path), "MONGODB_URI": "", "SEED_DEMO": "0", "MONGODB_DB": name,
                         **settings})
    try:
        db = server.extensions["purchase_database"].db
        user, course = ObjectId(), ObjectId()
        db[USERS].insert_one({"_id": user, "name": "Ada", "email": "ada@example.com", "purchasedCourses": []})
        db[COURSES].insert_one({"_id": course, "title": "Analytical Engines", "price": 10})
        yield server, db, user, course
    finally:
        server.extensions["purchase_database"].close()


def test_a_paid_grant_and_a_setting_from_create_app(tmp_path):
    with ada_shop(tmp_path, "paid", PAYMENT_METHODS="voucher,admin_grant", CURRENCY="EUR") as (server, db, user, course):
        admin = signed_in(server, "admin")
        done = response(submit(admin, server, grant.CONFIRM, user=str(user), item=f"course:{course}",
                               mode=grant.PAID, amount="12.50", method="voucher", discount="SPRING"))
        assert "12.50 EUR" in json.dumps(done[grant.RESULT]["children"])
        purchase = db[PURCHASES].find_one()
        assert (purchase["amount"], purchase["paymentMethod"], purchase["currency"], purchase["discountCode"]) == (
            12.5, "voucher", "EUR", "SPRING")


@pytest.mark.parametrize(("fields", "field", "message"), [
    ({"item": "course:{course}"}, "user", "Choose a customer"),
    ({"user": "{user}"}, "item", "Choose a course or a test"),
    ({"user": "{user}", "item": "course:{course}", "mode": "paid", "amount": "abc", "method": "paypal"}, "amount",
     "Enter the amount"),
    ({"user": "{user}", "item": "course:{course}", "mode": "paid", "amount": "-5", "method": "paypal"}, "amount",
     "Enter the amount"),
    ({"user": "{user}", "item": "course:{course}", "mode": "paid", "amount": "1.999", "method": "paypal"}, "amount",
     "at most 2 decimals"),
    ({"user": "{user}", "item": "course:{course}", "mode": "paid", "amount": "999999999", "method": "paypal"},
     "amount", "more than the largest allowed, 1,000,000.00 USD"),
    *[({"user": "{user}", "item": "course:{course}", "mode": "paid", "amount": loose, "method": "paypal"}, "amount",
       "Enter the amount") for loose in ("12,50", "1,2,3", "1_000", "\u0663\u0664", "1e3", "Infinity")],
    ({"user": "{user}", "item": "course:{course}", "mode": "paid", "amount": "5", "method": "cash"}, "method",
     "Choose how it was paid"),
    ({"user": str(ObjectId()), "item": "course:{course}"}, "user", "no user with id"),
    ({"user": "{user}", "item": f"course:{ObjectId()}"}, "item", "no course with id"),
    ({"user": "{user}", "item": "course:{course}", "note": "x" * 300}, "note", "note must be"),
])
def test_each_bad_input_is_shown_next_to_its_field_and_writes_nothing(app, shop, fields, field, message):
    admin = signed_in(app, "admin")
    values = {k: v.format(user=shop["user"], course=shop["course"]) for k, v in fields.items()}
    before = snapshot(shop["db"])
    reply = response(submit(admin, app, grant.CONFIRM, **values))
    assert message in reply[grant.error_id(field)]["children"]
    assert snapshot(shop["db"]) == before


def test_already_owned_is_said_at_review(app, shop):
    admin = signed_in(app, "admin")
    item = f"course:{shop['course']}"
    response(submit(admin, app, grant.CONFIRM, key="a", user=str(shop["user"]), item=item))
    reply = response(submit(admin, app, grant.REVIEW, key="b", user=str(shop["user"]), item=item))
    assert "already owns this course" in reply[grant.error_id("item")]["children"]


def test_two_admins_granting_the_same_item_at_once(app, shop):
    admins = [signed_in(app, "admin"), signed_in(app, "admin")]
    item, replies = f"course:{shop['course']}", [None, None]
    barrier = threading.Barrier(2)

    def press(index):
        barrier.wait()
        replies[index] = response(submit(admins[index], app, grant.CONFIRM, key=f"view-{index}",
                                         user=str(shop["user"]), item=item))

    threads = [threading.Thread(target=press, args=(i,)) for i in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    texts = [json.dumps(r) for r in replies]
    assert sum("Granted" in t for t in texts) == 1
    assert sum("already owns this course" in t for t in texts) == 1
    assert not any(str(shop["user"]) in t for t in texts if "already owns" in t)  # a name, not ids
    assert shop["db"][PURCHASES].count_documents({}) == 1


def test_viewers_and_strangers_cannot_grant(app, shop, client):
    viewer = signed_in(app, "viewer")
    before = snapshot(shop["db"])
    fields = {"user": str(shop["user"]), "item": f"course:{shop['course']}"}
    assert submit(client, app, grant.CONFIRM, **fields).status_code == 401
    assert submit(viewer, app, grant.CONFIRM, **fields).status_code == 403
    assert submit(viewer, app, grant.REVIEW, **fields).status_code == 403
    assert snapshot(shop["db"]) == before


def test_the_review_names_every_field_and_grant_another_starts_empty_but_for_the_customer(tmp_path):
    with ada_shop(tmp_path, "another", PAYMENT_METHODS="voucher,stripe,admin_grant") as (server, db, user, course):
        admin = signed_in(server, "admin")
        fields = {"user": str(user), "item": f"course:{course}", "mode": grant.PAID, "amount": "12.50",
                  "method": "voucher", "discount": "SPRING", "note": "Conference prize"}
        reviewed = json.dumps(response(submit(admin, server, grant.REVIEW, **fields))[grant.CONFIRM_TEXT]["children"])
        for shown in ("Ada (ada@example.com)", "Analytical Engines", "12.50", "Voucher", "SPRING", "Conference prize"):
            assert shown in reviewed, shown
        response(submit(admin, server, grant.CONFIRM, **fields))

        fresh = response(submit(admin, server, grant.ANOTHER, **fields))

        assert fresh[grant.ITEM] == {"value": None} and fresh[grant.MODE] == {"value": grant.COMPLIMENTARY}
        assert fresh[grant.AMOUNT] == {"value": ""} and fresh[grant.DISCOUNT] == {"value": ""}
        assert fresh[grant.NOTE] == {"value": ""} and fresh[grant.METHOD] == {"value": "stripe"}
        assert grant.USER not in fresh  # the customer stays chosen
        assert fresh[grant.KEY]["data"] != "view-1"


@pytest.mark.parametrize(("written", "amount"), [(".5", 0.5), ("1,299.50", 1299.5), ("12", 12.0)])
def test_the_grant_page_reads_amounts_as_the_bulk_file_does(app, shop, written, amount):
    admin = signed_in(app, "admin")
    done = response(submit(admin, app, grant.CONFIRM, user=str(shop["user"]), item=f"course:{shop['course']}",
                           mode=grant.PAID, amount=written, method="stripe"))
    assert "Granted" in json.dumps(done[grant.RESULT]["children"])
    assert shop["db"][PURCHASES].find_one()["amount"] == amount


@pytest.mark.parametrize("written", ["1000001", "100000000000000000000", "9" * 400, "12.345"])
def test_an_amount_refused_is_said_in_a_persons_words(app, shop, written):
    admin = signed_in(app, "admin")
    reviewed = response(submit(admin, app, grant.REVIEW, user=str(shop["user"]), item=f"course:{shop['course']}",
                               mode=grant.PAID, amount=written, method="stripe"))
    message = reviewed[grant.error_id("amount")]["children"]
    assert message in ("The amount is more than the largest allowed, 1,000,000.00 USD.",
                       "USD amounts have at most 2 decimals."), message
