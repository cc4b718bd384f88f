"""After any sequence of creates and removes, arrays equal purchases and the checker is quiet."""

import uuid

from bson import ObjectId
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from core import AlreadyPurchasedError, NotPurchasedError, create_purchase, ensure_indexes, remove_purchase
from core.operations import check_consistency
from core.storage.schema import COURSES, PURCHASES, REVOKED, TESTS, USERS

USERS_N, ITEMS_N = 3, 4
operations = st.lists(
    st.tuples(st.sampled_from(["create", "remove"]), st.integers(0, USERS_N - 1), st.integers(0, ITEMS_N - 1),
              st.integers(0, 5000)),
    max_size=25,
)


@settings(max_examples=10, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(ops=operations)
def test_arrays_always_equal_purchases(opened_database, ops):
    db = opened_database.client[f"prop_{uuid.uuid4().hex[:12]}"]
    try:
        ensure_indexes(db)
        users = [ObjectId() for _ in range(USERS_N)]
        items = [("course" if i % 2 == 0 else "test", ObjectId()) for i in range(ITEMS_N)]
        db[USERS].insert_many([{"_id": u, "purchasedCourses": [], "purchasedTests": []} for u in users])
        for kind, item in items:
            db[COURSES if kind == "course" else TESTS].insert_one({"_id": item, "title": str(item)})
        model = set()  # what the user owns, by a model that cannot be wrong
        revoked = 0
        for op, u, i, cents in ops:
            kind, item = items[i]
            ids = (item, None) if kind == "course" else (None, item)
            if op == "create":
                try:
                    create_purchase(db, users[u], *ids, {"amount": cents / 100, "paymentMethod": "stripe"})
                    assert (u, i) not in model
                    model.add((u, i))
                except AlreadyPurchasedError:
                    assert (u, i) in model
            else:
                try:
                    remove_purchase(db, users[u], *ids)
                    assert (u, i) in model
                    model.discard((u, i))
                    revoked += 1
                except NotPurchasedError:
                    assert (u, i) not in model
        for u, user in enumerate(users):
            doc = db[USERS].find_one({"_id": user})
            for kind, array in (("course", "purchasedCourses"), ("test", "purchasedTests")):
                expected = {items[i][1] for (uu, i) in model if uu == u and items[i][0] == kind}
                assert len(doc[array]) == len(set(doc[array]))
                assert set(doc[array]) == expected
                bought = {p[kind] for p in db[PURCHASES].find({"user": user, kind: {"$exists": True}})}
                assert bought == expected
        assert db[REVOKED].count_documents({}) == revoked
        assert all(not found for found in check_consistency(db).values())
    finally:
        opened_database.client.drop_database(db.name)
