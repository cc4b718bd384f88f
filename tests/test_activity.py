"""The live feed: latest purchases and revocations, newest first, in a ring that never grows."""

from bson import ObjectId

from core import FEED_SIZE, create_purchase, get_data_version, get_recent_activity, remove_purchase
from core.storage.schema import ACTIVITY, COURSES, USERS

CARD = {"amount": 12.5, "paymentMethod": "paypal"}


def test_feed_lists_purchases_and_revocations_newest_first(db, catalog):
    user, course, test = catalog["user"], catalog["courses"][0], catalog["tests"][0]
    bought = create_purchase(db, user, course, None, CARD)
    create_purchase(db, user, None, test, {"amount": 0, "paymentMethod": "admin_grant"})
    remove_purchase(db, user, course, actor="support")
    feed = get_recent_activity(db)
    assert [(e["event"], e["kind"], e["title"]) for e in feed] == [
        ("revocation", "course", "Course 0"), ("purchase", "test", "Test 0"), ("purchase", "course", "Course 0")]
    assert feed[0]["version"] == get_data_version(db) == 3
    assert feed[2]["purchase"] == bought["_id"] and feed[2]["userName"] == "Ada" and feed[2]["amount"] == 12.5
    assert feed[0]["at"] >= feed[2]["at"]


def test_feed_is_a_ring_of_fixed_size(db, catalog):
    user = catalog["user"]
    courses = [ObjectId() for _ in range(FEED_SIZE + 5)]
    db[COURSES].insert_many([{"_id": c, "title": f"C{i}"} for i, c in enumerate(courses)])
    for course in courses:
        create_purchase(db, user, course, None, CARD)
    assert db[ACTIVITY].count_documents({}) == FEED_SIZE
    feed = get_recent_activity(db, limit=FEED_SIZE)
    assert [e["title"] for e in feed] == [f"C{i}" for i in range(FEED_SIZE + 4, 4, -1)]
    assert db[USERS].find_one({"_id": user})["purchasedCourses"] == courses
