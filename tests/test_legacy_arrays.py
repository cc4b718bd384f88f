"""Users whose ownership arrays are null or not a list (legacy data): a grant or a revocation
rebuilds the array from the purchases in its own transaction, audited as a fix; the checker,
its repair and the customer page name such users."""

import pytest
from bson import ObjectId

from core import create_purchase, get_audit_log, has_purchased, remove_purchase
from core.operations import check_consistency, repair_arrays
from core.storage.schema import PURCHASES, USERS
from dashboard.pages.customers.customer import badge, consistency_problems, read_customer

PAID = {"amount": 19.95, "paymentMethod": "paypal"}


@pytest.mark.parametrize("broken", [None, "c0", {"0": "x"}, 7])
def test_a_grant_rebuilds_an_array_that_is_not_a_list_from_the_purchases(db, catalog, broken):
    user, (c0, c1) = catalog["user"], catalog["courses"]
    create_purchase(db, user, course_id=c0, purchase_data=PAID)
    db[USERS].update_one({"_id": user}, {"$set": {"purchasedCourses": broken, "purchasedTests": None}})
    assert check_consistency(db)["array_not_a_list"] == [{"user": user, "array": "purchasedCourses"},
                                                         {"user": user, "array": "purchasedTests"}]
    create_purchase(db, user, course_id=c1, purchase_data={**PAID, "actor": "ann@example.com"})
    doc = db[USERS].find_one({"_id": user})
    assert doc["purchasedCourses"] == [c0, c1] and doc["purchasedTests"] is None  # the array written, only
    assert has_purchased(db, user, course_id=c0) and has_purchased(db, user, course_id=c1)
    fixes = get_audit_log(db, {"action": "fix"})
    assert len(fixes) == 1 and fixes[0]["user"] == user and fixes[0]["kind"] == "course"
    assert "purchasedCourses was" in fixes[0]["note"] and fixes[0]["actor"] == "ann@example.com"
    # what it owned by its purchases stays owned: no second purchase of it
    with pytest.raises(Exception, match="already owns"):
        create_purchase(db, user, course_id=c0, purchase_data=PAID)


def test_a_revocation_rebuilds_it_too_and_the_checker_repairs_what_is_left(db, catalog):
    user, (c0, c1), (t0, _) = catalog["user"], catalog["courses"], catalog["tests"]
    for course in (c0, c1):
        create_purchase(db, user, course_id=course, purchase_data=PAID)
    create_purchase(db, user, test_id=t0, purchase_data=PAID)
    db[USERS].update_one({"_id": user}, {"$set": {"purchasedCourses": None, "purchasedTests": "t0"}})
    remove_purchase(db, user, course_id=c0, reason="refund")
    assert db[USERS].find_one({"_id": user})["purchasedCourses"] == [c1]
    assert db[PURCHASES].count_documents({"user": user}) == 2
    problems = check_consistency(db)
    assert problems["array_not_a_list"] == [{"user": user, "array": "purchasedTests"}]
    changes = repair_arrays(db, problems)
    assert any("purchasedTests was 't0'" in line for line in changes)
    assert db[USERS].find_one({"_id": user})["purchasedTests"] == [t0]
    assert not any(check_consistency(db).values())


def test_the_customer_page_names_an_array_that_is_not_a_list(db, catalog):
    user = catalog["user"]
    db[USERS].update_one({"_id": user}, {"$set": {"purchasedCourses": None}})
    customer = read_customer(db, user)
    problems = consistency_problems(customer)
    assert problems == ["purchasedCourses is null, not a list: the next grant or revocation rebuilds it from the purchases"]
    assert badge(problems)[0] == "1 problem"
    db[USERS].update_one({"_id": user}, {"$unset": {"purchasedCourses": ""}})  # missing: an empty list, no problem
    assert consistency_problems(read_customer(db, user)) == []
    assert ObjectId.is_valid(str(user))
