"""The customers page's builders, called directly: rows and text from a Customer made by hand, the
revoke panel's reading and steps, the search's results, the shared confirm step. No database."""

import json
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

from bson import ObjectId
from plotly.io.json import to_json_plotly

from core import ItemRef
from dashboard.confirm import ConfirmStep
from dashboard.pages import customers, grant
from dashboard.pages.customers import profile, revoke, search
from dashboard.pages.customers.customer import (
    Customer,
    badge,
    consistency_problems,
    owned_count_text,
    owned_rows,
    timeline_rows,
    total_text,
)

TZ = ZoneInfo("Europe/Madrid")
COURSE, OTHER, TEST = ObjectId(), ObjectId(), ObjectId()
MAY = datetime(2025, 5, 1, 10, tzinfo=UTC)


def purchase(kind: str, item: ObjectId, title: str, amount: float, **extra) -> dict:
    return {"_id": ObjectId(), "kind": kind, kind: item, "title": title, "amount": amount, "currency": "USD",
            "paymentMethod": "paypal", "purchasedAt": MAY, "status": "active", **extra}


def customer(user_extra: dict | None = None) -> Customer:
    """Owns a course and a test by their purchases; a second course was bought, then revoked."""
    bought = purchase("course", COURSE, "Python", 29.99, actor="ann@example.com")
    test = purchase("test", TEST, "SQL quiz", 0, paymentMethod="admin_grant")
    revoked = purchase("course", OTHER, "Go", 10, status="revoked", revokedAt=datetime(2025, 6, 1, tzinfo=UTC),
                       revokedBy="bob@example.com", reason="refund")
    user = {"_id": ObjectId(), "name": "Ada", "email": "ada@example.com", "purchasedCourses": [COURSE],
            "purchasedTests": [TEST], **(user_extra or {})}
    titles = {ItemRef("course", COURSE): "Python", ItemRef("test", TEST): "SQL quiz", ItemRef("course", OTHER): "Go"}
    notes = {(revoked["_id"], "revoke"): {"actor": "bob@example.com", "source": "admin", "note": "asked"}}
    return Customer(user, [bought, test, revoked], [bought, test], notes, titles)


def text(component) -> str:
    return json.dumps(json.loads(to_json_plotly(component)), ensure_ascii=False)


def test_owned_rows_name_each_item_with_the_purchase_behind_it():
    rows = owned_rows(customer(), TZ, "USD")
    assert [(r["ref"], r["kind"], r["title"], r["purchased"]) for r in rows] == [
        (f"course:{COURSE}", "course", "Python", True), (f"test:{TEST}", "test", "SQL quiz", True)]
    assert rows[0]["detail"] == "since 2025-05-01 · 29.99 USD · PayPal"
    assert owned_count_text(rows) == "1 course · 1 test" and owned_count_text([]) == "0 courses · 0 tests"


def test_arrays_and_purchases_that_agree_are_consistent_and_each_disagreement_is_one_sentence():
    assert consistency_problems(customer()) == [] and badge([])[0] == "Consistent"
    extra = customer({"purchasedCourses": [COURSE, OTHER, "c0"], "purchasedTests": []})
    problems = consistency_problems(extra)
    assert problems == ["'c0' (course): in the user's array, but not an item id",
                        "Go (course): in the user's array, but no purchase behind it",
                        "SQL quiz (test): purchased, but missing from the user's array"]
    assert badge(problems)[:2] == ("3 problems", "customers-badge bad")
    assert consistency_problems(customer({"purchasedTests": 7})) == [
        "purchasedTests is a int, not a list: the next grant or revocation rebuilds it from the purchases"]


def test_totals_per_currency_and_the_timeline_newest_first_with_revocations_negative():
    assert total_text(customer().active, "USD") == "29.99 USD" and total_text([], "EUR") == "0.00 EUR"
    assert total_text([{"amount": 5, "currency": "EUR"}, {"amount": 2.5}], "USD") == "5.00 EUR + 2.50 USD"
    rows = timeline_rows(customer(), TZ, "USD", staff=lambda actor: actor and actor.upper())
    assert [(r["event"], r["item"], r["amount"]) for r in rows][0] == ("Revocation", "Go", -10)
    assert rows[0]["who"] == "BOB@EXAMPLE.COM" and rows[0]["why"] == "Refund" and rows[0]["note"] == "asked"
    assert rows[0]["time"] == "2025-06-01 02:00:00" and len(rows) == 4


def test_the_profile_draws_groups_by_kind_with_revoke_buttons_for_admins_only():
    outputs = profile.customer_outputs(customer(), True, TZ, "USD")
    assert outputs["ownedCount"] == "1 course · 1 test" and outputs["badge"] == "Consistent"
    assert outputs["totalNote"] == "2 active purchases · 1 revoked"
    drawn = text(outputs["owned"])
    assert "Courses (1)" in drawn and "Tests (1)" in drawn and customers.REVOKE in drawn
    assert customers.REVOKE not in text(profile.customer_outputs(customer(), False, TZ, "USD")["owned"])
    assert profile.problems_view([]) == [] and "Where they disagree" in text(profile.problems_view(["x"]))


def test_on_a_phone_the_timeline_is_a_list_of_the_same_events_with_one_sign_for_money():
    outputs = profile.customer_outputs(customer(), True, TZ, "USD")
    events = outputs["events"]
    assert len(events) == len(outputs["rows"]) == 4
    first = text(events[0])
    for shown in ("2025-06-01 02:00:00", "Revocation", "\u221210.00 USD", "Go (course)", "Refund · asked",
                  "customers-revocation"):
        assert shown in first, shown
    python = [text(event) for event in events if "Python (course)" in text(event)]
    assert len(python) == 1 and "29.99 USD" in python[0] and "\u2212" not in python[0]
    many = [dict(outputs["rows"][1], id=str(n)) for n in range(profile.PHONE_EVENTS + 5)]
    listed = profile.timeline_list(many)
    assert len(listed) == profile.PHONE_EVENTS + 1 and f"newest {profile.PHONE_EVENTS} of 105" in text(listed[-1])


def test_the_revoke_panel_reads_its_request_and_names_what_is_missing():
    request, errors = revoke.read_revoke({"item": f"test:{TEST}"}, "other", "  ")
    assert request["item"] == ItemRef("test", TEST) and set(errors) == {"note"}
    _, errors = revoke.read_revoke(None, "lost", "x" * 201)
    assert set(errors) == {"item", "reason", "note"}
    assert revoke.panel_step(None, revoke.CANCEL, None, None, None, None, None, "a")["panel"].endswith("hidden")
    refused = revoke.panel_step(None, revoke.REVIEW, None, None, None, None, None, "a")
    assert refused["item"] and refused["form"] == "customers-form" and refused["confirmBox"].endswith("hidden")


def test_the_confirm_step_is_one_shape_for_grant_and_revoke():
    for step in (grant.STEP, revoke.STEP):
        assert isinstance(step, ConfirmStep) and step.form_class + " locked" == step.reviewing("t")["form"]
        assert step.reviewing("what")["confirmText"] == "what" and not any(step.reviewing("x")[f] for f in step.fields)
        assert step.editing()["confirmBox"] == step.box_class + " hidden"
        assert step.failed("note", "too long")["note"] == "too long" and step.failed("note", "x")["result"] == ""
        assert "too long" in text(step.failed(None, "too long")["result"])
        assert set(step.outputs()) == {*step.fields, "form", "confirmBox", "confirmText", "result"}
    box = text(revoke.STEP.box_layout("Confirm the revocation", "Confirm revocation", danger=True, nested=True))
    assert '"H3"' in box and "danger" in box and customers.CONFIRM_BOX in box
    assert '"H2"' in text(grant.STEP.box_layout("Confirm the grant", "Confirm grant"))


def test_search_results_and_the_query_it_keeps():
    assert search.query_text("?q=ada++lovelace&x=1") == "ada lovelace" and search.query_text(None) == ""
    found = text(search.results_view("ada", [{"id": "1" * 24, "name": "Ada", "email": "a@x.io", "owned": 2}], True))
    assert "The first 20 matches" in found and "2 owned" in found and f"/customers/{'1' * 24}" in found
    assert "No customer matches" in text(search.results_view("zed", [], False))
