"""Password checks per account and per address: claimed before the check, shared, progressive."""

import time
from concurrent.futures import ThreadPoolExecutor

from pymongo import MongoClient

from dashboard import accounts
from dashboard.sign_in_throttle import MAX_WINDOW, THROTTLE, SignInThrottle, progressive_window
from scripts.chrome import free_port
from tests.conftest import PASSWORD


def test_concurrent_claims_get_exactly_the_limit(db):
    throttle = SignInThrottle(db, "5 per minute", "20 per minute")
    with ThreadPoolExecutor(40) as pool:
        answers = list(pool.map(lambda n: throttle.claim("ann@example.com", f"10.0.0.{n}"), range(40)))
    assert answers.count(None) == 5
    assert {refusal.scope for refusal in answers if refusal} == {"account"}
    # the refused ones took nothing from their addresses
    assert db[THROTTLE].count_documents({"_id": {"$regex": "^address"}}) == 5
    with ThreadPoolExecutor(40) as pool:
        answers = list(pool.map(lambda n: throttle.claim(f"user{n}@example.com", "10.9.9.9"), range(40)))
    assert answers.count(None) == 20 and {r.scope for r in answers if r} == {"address"}
    # an account refused by its address got its slot back
    assert db[THROTTLE].count_documents({"_id": {"$regex": "^account\\|user"}, "checks.0": {"$exists": True}}) == 20


def test_failures_in_a_row_slow_an_account_down_progressively_and_a_success_resets_it(db):
    assert [progressive_window(f, 5, 60) for f in (0, 4, 9, 10, 15, 20, 25)] == [60, 60, 60, 120, 240, 480, 900]
    assert progressive_window(10_000, 5, 60) == MAX_WINDOW
    throttle = SignInThrottle(db, "5 per minute", "100 per minute")
    key = "account|ann@example.com"
    db[THROTTLE].insert_one({"_id": key, "version": 1, "failures": 10, "checks": [time.time() - 90.0] * 5})
    refusal = throttle.claim("ann@example.com", "10.0.0.1")  # 90 s ago: past one window, not past two
    assert refusal.scope == "account" and 25 <= refusal.retry_after <= 31
    throttle.record("ann@example.com", "10.0.0.1", succeeded=True)
    assert db[THROTTLE].find_one({"_id": key})["failures"] == 0
    assert throttle.claim("ann@example.com", "10.0.0.1") is None  # back to one window: 90 s is past it
    throttle.record("bob@example.com", "10.0.0.1", succeeded=False)
    throttle.record("ann@example.com", "10.0.0.1", succeeded=True)
    assert db[THROTTLE].find_one({"_id": "address|10.0.0.1"})["failures"] == 1  # a success clears no address


def test_counters_out_of_reach_ask_the_caller_to_wait_and_check_no_password():
    with MongoClient(f"mongodb://127.0.0.1:{free_port()}/", serverSelectionTimeoutMS=300) as nowhere:
        throttle = SignInThrottle(nowhere.learning, "5 per minute", "20 per minute")
        refusal = throttle.claim("ann@example.com", "10.0.0.1")
        assert refusal.scope == "unavailable" and refusal.retry_after > 0
        throttle.record("ann@example.com", "10.0.0.1", succeeded=False)  # logged, not raised


def test_many_sign_ins_at_once_from_one_address_check_at_most_its_limit(app):
    db = app.extensions["purchase_database"].db
    accounts.create_account(db, "ann@example.com", "viewer", PASSWORD)

    def guess(n):
        return app.test_client().post("/login", data={"email": f"guess{n}@example.com", "password": "guess"},
                                      environ_base={"REMOTE_ADDR": "10.7.7.7"}).status_code

    with ThreadPoolExecutor(30) as pool:
        codes = list(pool.map(guess, range(60)))
    assert codes.count(401) <= 20 and set(codes) <= {401, 429}
    # another address is not affected
    assert app.test_client().post("/login", data={"email": "ann@example.com", "password": PASSWORD},
                                  environ_base={"REMOTE_ADDR": "10.7.7.8"}).status_code == 302
