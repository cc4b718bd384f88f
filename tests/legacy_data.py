"""Messy legacy datasets for the migration tests: every kind of mess issue 11 names, with
the problems each migration must fix and those it must report.

Ids are made from a counter, so two builds of a dataset are equal document for document.
"""

from datetime import UTC, datetime, timedelta

from bson import ObjectId

from core.storage.db import bulk_insert
from core.storage.schema import COURSES, PURCHASES, TESTS, USERS

BASE = datetime(2024, 3, 1, 12, tzinfo=UTC)


class Ids:
    def __init__(self, start: int):
        self.next = start

    def __call__(self) -> ObjectId:
        self.next += 1
        return ObjectId((int(BASE.timestamp()) + self.next).to_bytes(4, "big") + self.next.to_bytes(8, "big"))


def catalog(new: Ids) -> dict:
    courses = [{"_id": new(), "title": f"Course {i}", "price": 19.99 + i, "createdAt": BASE - timedelta(days=30)}
               for i in range(3)]
    courses.append({"_id": new(), "title": "Free course"})  # no price
    tests = [{"_id": new(), "title": f"Test {i}", "price": "9.99"} for i in range(2)]  # price as a string
    return {COURSES: courses, TESTS: tests}


def purchase(new: Ids, user, kind, item, *, amount=29.99, at=None, method="credit_card", **more) -> dict:
    doc = {"_id": new(), "user": user, kind: item, "amount": amount, "paymentMethod": method,
           "purchasedAt": at or BASE + timedelta(minutes=new.next)}
    doc.update(more)
    return doc


def from_purchases(filler_users: int = 0) -> tuple[dict, dict]:
    """A history in `purchases` with arrays missing, partial or wrong, for migrate_purchases.

    Returns (collections, expected problem kinds of the checker after the migration).
    """
    new = Ids(0)
    cat = catalog(new)
    c0, c1, c2, free = (c["_id"] for c in cat[COURSES])
    t0, t1 = (t["_id"] for t in cat[TESTS])
    deleted_course, ghost = new(), new()
    u = [new() for _ in range(8)]
    users = [
        {"_id": u[0], "name": "Missing arrays"},
        {"_id": u[1], "name": "Duplicates and strings", "purchasedCourses": [c0, c0, str(c1)], "purchasedTests": None},
        {"_id": u[2], "name": "Not arrays", "purchasedCourses": None, "purchasedTests": "t-garbage"},
        {"_id": u[3], "name": "Wrong entry", "purchasedCourses": [c2, deleted_course], "purchasedTests": []},
        {"_id": u[4], "name": "Twice", "purchasedCourses": [c1], "purchasedTests": []},
        {"_id": u[5], "name": "Deleted item", "purchasedCourses": [], "purchasedTests": []},
        {"_id": u[6], "name": "Clean", "purchasedCourses": [c0], "purchasedTests": [t0]},
        {"_id": u[7], "name": "Bad fields", "purchasedCourses": [c2]},
    ]
    purchases = [
        purchase(new, u[0], "course", c0),
        purchase(new, str(u[0]), "test", str(t1), amount="9.99"),  # ids and amount as strings
        purchase(new, u[1], "course", c0),
        purchase(new, u[1], "course", c1, at="2024-02-03T04:05:06Z"),  # ISO date
        purchase(new, u[2], "test", t0, at=int((BASE - timedelta(days=3)).timestamp() * 1000)),  # epoch ms
        purchase(new, u[3], "course", c0, test=None),  # null beside the real item: removed
        purchase(new, u[5], "course", deleted_course),  # a deleted course
        purchase(new, u[6], "course", c0),
        purchase(new, u[6], "test", t0),
        purchase(new, ghost, "course", c1),  # a deleted user
        purchase(new, u[7], "course", c2, amount=None),  # amount missing
        purchase(new, u[7], "test", t1, at="yesterday-ish"),  # unreadable date
    ]
    same = purchase(new, u[4], "course", c1)
    purchases += [same, {**same, "_id": new()}]  # the same purchase recorded twice: one removed
    purchases += [purchase(new, u[4], "course", c2, amount=10), purchase(new, u[4], "course", c2, amount=12)]
    both = purchase(new, u[6], "course", c1)
    both["test"] = t1
    neither = purchase(new, u[6], "course", c1)
    neither.pop("course")
    purchases += [both, neither]
    users += _filler(new, filler_users, cat, purchases)
    expected = {"purchase_of_unknown_user", "purchase_of_unknown_item", "array_entry_of_unknown_item",
                "purchase_without_single_item", "purchase_with_bad_fields", "duplicate_purchases"}
    return {**cat, USERS: users, PURCHASES: purchases}, expected


def from_arrays(filler_users: int = 0) -> tuple[dict, dict]:
    """User arrays with few or no purchases behind them, for implement_hybrid_purchases."""
    new = Ids(10_000)
    cat = catalog(new)
    c0, c1, c2, free = (c["_id"] for c in cat[COURSES])
    t0, t1 = (t["_id"] for t in cat[TESTS])
    deleted_test = new()
    u = [new() for _ in range(7)]
    users = [
        {"_id": u[0], "name": "Plain", "purchasedCourses": [c0, c1], "purchasedTests": [t0],
         "createdAt": BASE - timedelta(days=10)},
        {"_id": u[1], "name": "Duplicates and strings", "purchasedCourses": [c2, str(c2), c2],
         "purchasedTests": [str(t1)], "createdAt": "2024-01-15T10:00:00Z"},
        {"_id": u[2], "name": "Null and missing", "purchasedCourses": None},
        {"_id": u[3], "name": "Not an array", "purchasedCourses": "oops", "purchasedTests": [t0]},
        {"_id": u[4], "name": "Deleted item", "purchasedCourses": [free], "purchasedTests": [deleted_test, 42]},
        {"_id": u[5], "name": "Half migrated", "purchasedCourses": [c0, c1], "purchasedTests": []},
        {"_id": u[6], "name": "Purchase without entry", "purchasedCourses": [], "purchasedTests": []},
    ]
    purchases = [
        purchase(new, u[5], "course", c0, amount="19.99"),
        purchase(new, str(u[6]), "course", str(c1)),
        purchase(new, u[5], "course", c1, at=int(BASE.timestamp() * 1000)),
    ]
    users += _filler(new, filler_users, cat, purchases, arrays_only=True)
    expected = {"array_not_a_list", "array_entry_not_an_object_id", "array_entry_of_unknown_item",
                "array_entry_without_purchase", "purchase_missing_from_array"}
    return {**cat, USERS: users, PURCHASES: purchases}, expected


def _filler(new: Ids, count: int, cat: dict, purchases: list, *, arrays_only: bool = False) -> list[dict]:
    """`count` more users, each with two courses, half of them with their arrays missing."""
    courses = [c["_id"] for c in cat[COURSES][:3]]
    users = []
    for i in range(count):
        uid, owned = new(), [courses[i % 3], courses[(i + 1) % 3]]
        user = {"_id": uid, "name": f"Filler {i}", "createdAt": BASE - timedelta(days=i % 50)}
        if arrays_only or i % 2:
            user["purchasedCourses"] = list(owned)
        if not arrays_only:
            purchases += [purchase(new, uid, "course", item) for item in owned]
        users.append(user)
    return users


def load(db, collections: dict) -> None:
    for name, documents in collections.items():
        bulk_insert(db, name, [dict(d) for d in documents])
