"""The consistency checker finds each kind of problem; --repair fixes the arrays."""

import os
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

from bson import ObjectId

from core import create_purchase, open_database, remove_purchase
from core.analytics.rollups import active_collections
from core.operations import check_consistency, consistency, rebuild_rollups, repair_arrays, rollup_differences
from core.operations.consistency import rollup_mismatches
from core.operations.joined import users_with_purchases
from core.storage.schema import COHORT_COLLECTIONS, PURCHASES, REVOKED, ROLLUP_COLLECTIONS, USERS
from tests.conftest import owned

ROOT = Path(__file__).resolve().parent.parent
CARD = {"amount": 5, "paymentMethod": "paypal"}


def counts(found: dict) -> dict:
    return {name: len(examples) for name, examples in found.items() if examples}


def test_clean_database_has_no_problems(db, catalog):
    create_purchase(db, catalog["user"], catalog["courses"][0], None, CARD)
    assert counts(check_consistency(db)) == {}


def test_finds_every_kind_and_repairs_the_arrays(db, catalog):
    user, other = catalog["user"], catalog["other_user"]
    c0, c1 = catalog["courses"]
    t0, _ = catalog["tests"]
    create_purchase(db, user, c0, None, CARD)
    create_purchase(db, other, None, t0, CARD)
    ghost_user, ghost_item = ObjectId(), ObjectId()
    db[USERS].update_one({"_id": user}, {"$push": {"purchasedCourses": c1}})  # no purchase behind it
    db[USERS].update_one({"_id": other}, {"$set": {"purchasedTests": []}})  # purchase missing from array
    db[USERS].update_one({"_id": other}, {"$push": {"purchasedCourses": ghost_item}})  # unknown item, no purchase
    sale = {"amount": 1, "paymentMethod": "paypal", "purchasedAt": datetime(2025, 3, 1, tzinfo=UTC)}
    db[PURCHASES].insert_one({"user": ghost_user, "course": c0, **sale})
    db[PURCHASES].insert_one({"user": user, "test": ghost_item, **sale})
    db[PURCHASES].insert_one({"user": user, **sale})
    db[PURCHASES].insert_one({"user": user, "course": c0, **sale})  # a second purchase of c0
    db[PURCHASES].insert_one({"user": other, "course": c1, "amount": "1"})
    found = check_consistency(db)
    # the rollups never saw the purchases written behind the API's back (the details of a
    # bucket are kept per kind and payment method); nor did the cohorts (tests/test_cohorts.py)
    cohorts = [d for d in found["rollup_mismatch"] if d["collection"] in COHORT_COLLECTIONS]
    found["rollup_mismatch"] = [d for d in found["rollup_mismatch"] if d["collection"] not in COHORT_COLLECTIONS]
    assert cohorts
    assert {d["bucket"] for d in found["rollup_mismatch"]} == {
        "month|2025-03-01T00", "week|2025-02-24T00", "day|2025-03-01T00", "hour|2025-03-01T00",
        *(f"{level}|{period}|{kind}|paypal" for level, period in
          (("month", "2025-03-01T00"), ("day", "2025-03-01T00"), ("hour", "2025-03-01T00"))
          for kind in ("course", "test")),
    }
    assert counts(found) == {
        "array_entry_without_purchase": 2,
        "purchase_missing_from_array": 3,
        "purchase_with_bad_fields": 1,
        # three well-formed sales (two of course c0, one of the ghost test, all paypal): sales
        # count and revenue per kind (4 counters) at month, week, day and hour; items by
        # method (4 counters) at month, day and hour
        "rollup_mismatch": 4 * 4 + 4 * 3,
        "purchase_of_unknown_user": 1,
        "purchase_of_unknown_item": 1,
        "array_entry_of_unknown_item": 1,
        "purchase_without_single_item": 1,
        "duplicate_purchases": 1,
    }
    assert {"user": user, "course": c1} in found["array_entry_without_purchase"]
    month_sales = {d["counter"]: (d["expected"], d["stored"]) for d in found["rollup_mismatch"]
                   if d["bucket"] == "month|2025-03-01T00" and d["counter"].endswith(".count") and d["counter"].startswith("sales.")}
    assert month_sales == {"sales.course.paypal.count": (2, 0), "sales.test.paypal.count": (1, 0)}

    changes = repair_arrays(db, found)
    assert f"user {user}: removed course {c1} from purchasedCourses" in changes
    assert f"user {other}: added test {t0} to purchasedTests" in changes
    assert owned(db, user, "course") == [c0]
    assert owned(db, other, "course") == [c1] and owned(db, other, "test") == [t0]
    rebuild_rollups(db)
    after = counts(check_consistency(db))
    assert "array_entry_without_purchase" not in after and "purchase_missing_from_array" not in after
    # what a repair cannot decide is still reported; the array mirrors the purchase of
    # the unknown item, which stays reported under both names
    assert after == {
        "purchase_with_bad_fields": 1,
        "purchase_of_unknown_user": 1,
        "purchase_of_unknown_item": 1,
        "array_entry_of_unknown_item": 1,
        "purchase_without_single_item": 1,
        "duplicate_purchases": 1,
    }


def test_users_read_a_chunk_at_a_time_meet_their_purchases_as_in_one_read(db):
    ids = [ObjectId() for _ in range(12)]  # increasing: users and ghosts (no user) interleaved
    users, ghosts = [ids[1], ids[3], ids[5], ids[7], ids[9], ids[10]], [ids[0], ids[2], ids[4], ids[11]]
    db[USERS].insert_many([{"_id": user, "name": str(n)} for n, user in enumerate(users)])
    db[USERS].insert_one({"_id": "legacy-user", "name": "an _id that is not an ObjectId"})
    at = [datetime(2025, 3, day, tzinfo=UTC) for day in (1, 2, 3)]
    purchases = [{"user": user, "course": ObjectId(), "purchasedAt": moment, "amount": 1, "paymentMethod": "card"}
                 for user in users[:4] + ghosts for moment in at[: 1 + users.index(user) % 3 if user in users else 2]]
    purchases += [{"user": users[1], "test": ObjectId(), "purchasedAt": "2025-03-04"},  # not a date: after the dates
                  {"user": users[1], "test": ObjectId()},
                  {"user": str(users[2]), "test": ObjectId(), "purchasedAt": at[0]}]  # not joined: the callers report it
    db[PURCHASES].insert_many(purchases)

    def joined(**options):
        return [(user and user["_id"], [(p["user"], p.get("purchasedAt")) for p in mine])
                for user, mine in users_with_purchases(db, **options)]

    whole = joined(chunk=1000)
    assert [user for user, _ in whole] == [None, users[0], None, users[1], None, *users[2:], None]
    assert whole[0] == (None, [(ids[0], at[1]), (ids[0], at[0])])  # newest first
    assert [moment for _, moment in whole[3][1]] == [at[1], at[0], "2025-03-04", None]
    assert whole[-2:] == [(users[-1], []), (None, [(ids[11], at[1]), (ids[11], at[0])])]
    projected = joined(chunk=1000, purchase_fields={"user": 1, "purchasedAt": 1})
    for chunk in (1, 2, 3, 5):
        assert joined(chunk=chunk) == whole, chunk
        assert joined(chunk=chunk, after=users[1]) == [entry for entry in whole[4:]], chunk
    assert projected == whole
    assert sum(len(mine) for _, mine in whole) == len(purchases) - 1  # all but the one whose user is a string
    assert joined(chunk=2, after=users[-1]) == [(None, [(ids[11], at[1]), (ids[11], at[0])])]


def test_rollup_mismatches_reports_what_rollup_differences_reports(db, catalog, monkeypatch):
    monkeypatch.setattr(consistency, "PAGE", 2)  # the stored rollups read over several pages
    user, other = catalog["user"], catalog["other_user"]
    c0, c1 = catalog["courses"]
    create_purchase(db, user, c0, None, CARD)
    create_purchase(db, user, c1, None, {**CARD, "paymentMethod": "stripe"})
    create_purchase(db, other, None, catalog["tests"][0], CARD)
    remove_purchase(db, user, c1)
    assert rollup_mismatches(db) == rollup_differences(db) == []

    stats, _, details, details_hourly = active_collections(db)
    day = db[stats].find_one({"level": "day"})
    db[stats].update_one({"_id": day["_id"]}, {"$inc": {"sales.course.paypal.count": 2}})  # a counter off
    db[details_hourly].delete_many({})  # buckets missing
    db[details].insert_one({"_id": "junk", "items": {"course": {str(c0): {"count": 1}}}})  # a bucket of nothing
    db[details].insert_one({"_id": "day|1999-01-01T00", "level": "day"})  # an empty stored bucket: no difference
    sale = {"amount": 2.5, "paymentMethod": "cash", "purchasedAt": datetime(2024, 2, 29, 23, 30, tzinfo=UTC)}
    db[PURCHASES].insert_one({"user": other, "course": c1, **sale})  # behind the API's back: buckets never written
    db[REVOKED].insert_one({"user": other, "test": catalog["tests"][1], **sale,
                            "revokedAt": datetime(2024, 3, 4, 1, tzinfo=UTC)})
    expected = rollup_differences(db)
    assert rollup_mismatches(db) == expected
    assert {d["collection"] for d in expected} == set(ROLLUP_COLLECTIONS)
    assert {"collection": ROLLUP_COLLECTIONS[2], "bucket": "junk", "counter": "items.course." + str(c0) + ".count",
            "expected": 0, "stored": 1} in expected
    reported = check_consistency(db)["rollup_mismatch"]
    assert [d for d in reported if d["collection"] not in COHORT_COLLECTIONS] == expected
    assert any(d["collection"] in COHORT_COLLECTIONS for d in reported)  # the cohorts missed those purchases too


def run_script(*args, data_dir, db_name):
    env = {**os.environ, "DATA_DIR": str(data_dir), "MONGODB_DB": db_name}
    return subprocess.run(
        [sys.executable, *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120, check=False
    )


def test_scripts_seed_check_and_repair(tmp_path):
    """As a user runs them: seed the demo, check it, break it, repair it."""
    name = f"script_{ObjectId()}"
    seeded = run_script("scripts/seed_demo.py", "--users", "50", "--items", "10", "--purchases", "200",
                        "--seed", "3", data_dir=tmp_path, db_name=name)
    assert seeded.returncode == 0, seeded.stderr
    assert "200 purchases, 50 users" in seeded.stdout
    again = run_script("scripts/seed_demo.py", data_dir=tmp_path, db_name=name)
    assert again.returncode == 2 and "already has users" in again.stderr
    checked = run_script("scripts/test_hybrid_system.py", data_dir=tmp_path, db_name=name)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert checked.stdout.strip().endswith("consistent")

    env = {"data_dir": tmp_path, "uri": os.environ.get("MONGODB_URI", "")}
    with open_database(**env, db_name=name) as opened:
        victim = opened.db[USERS].find_one({"purchasedCourses.0": {"$exists": True}})
        opened.db[USERS].update_one({"_id": victim["_id"]}, {"$set": {"purchasedCourses": []}})
    broken = run_script("scripts/test_hybrid_system.py", data_dir=tmp_path, db_name=name)
    assert broken.returncode == 1
    assert f"BAD {len(victim['purchasedCourses']):6d}  purchase whose id is missing" in broken.stdout
    repaired = run_script("scripts/test_hybrid_system.py", "--repair", data_dir=tmp_path, db_name=name)
    assert repaired.returncode == 0, repaired.stdout
    assert f"Repaired {len(victim['purchasedCourses'])} array entries" in repaired.stdout
    with open_database(**env, db_name=name) as opened:
        assert opened.db[USERS].find_one({"_id": victim["_id"]})["purchasedCourses"] == victim["purchasedCourses"]
        stats, _, _, details_hourly = active_collections(opened.db)  # the set the seed's bulk load switched to
        opened.db[stats].delete_many({"level": "day"})
        opened.db[details_hourly].delete_many({})
        assert rollup_differences(opened.db) != []
    rebuilt = run_script("scripts/rebuild_rollups.py", data_dir=tmp_path, db_name=name)
    assert rebuilt.returncode == 0, rebuilt.stdout + rebuilt.stderr
    assert "rollups match purchases" in rebuilt.stdout
