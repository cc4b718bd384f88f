"""With the database gone, every core call fails within its bound with DatabaseUnavailableError,
and works again, without a restart, once the database is back."""

import os
import time

import pymongo
import pytest
from bson import ObjectId
from pymongo import MongoClient

from core import DatabaseUnavailableError, PurchaseError, create_purchase, has_purchased, remove_purchase
from core.storage.retry import DEADLINE_SECONDS
from core.storage.schema import COURSES, USERS
from database.embedded import EmbeddedServer
from database.opening import CLIENT_OPTIONS

pytestmark = pytest.mark.skipif(bool(os.environ.get("MONGODB_URI")), reason="stops the embedded server")
MARGIN = 3.0


def test_calls_fail_within_the_bound_and_work_again_when_the_database_returns(tmp_path):
    server = EmbeddedServer(tmp_path / "down.sqlite")
    server.start()
    host, port = server.address
    client = MongoClient(server.uri, **CLIENT_OPTIONS)
    db = client.down
    user, course = ObjectId(), ObjectId()
    db[USERS].insert_one({"_id": user, "name": "Ada", "purchasedCourses": [], "purchasedTests": []})
    db[COURSES].insert_one({"_id": course, "title": "Course", "price": 10})
    server.stop()
    try:
        for call in (lambda: has_purchased(db, user, course_id=course),
                     lambda: create_purchase(db, user, course, None, {"amount": 10, "paymentMethod": "paypal"}),
                     lambda: remove_purchase(db, user, course_id=course, actor="admin@example.com", reason="test")):
            started = time.monotonic()
            with pytest.raises(DatabaseUnavailableError) as raised:
                call()
            assert time.monotonic() - started < DEADLINE_SECONDS + MARGIN
            assert isinstance(raised.value, PurchaseError)
            assert "Check that it is running" in str(raised.value)

        # a caller's pymongo.timeout is the bound (the app sets DB_TIMEOUT per request)
        for call in (lambda: has_purchased(db, user, course_id=course),
                     lambda: create_purchase(db, user, course, None, {"amount": 10, "paymentMethod": "paypal"})):
            started = time.monotonic()
            with pytest.raises(DatabaseUnavailableError), pymongo.timeout(1.5):
                call()
            assert time.monotonic() - started < 1.5 + 1.0

        back = EmbeddedServer(tmp_path / "down.sqlite", host=host, port=port)
        back.start()
        try:
            create_purchase(db, user, course, None, {"amount": 10, "paymentMethod": "paypal"})
            assert has_purchased(db, user, course_id=course)
        finally:
            back.stop()
    finally:
        client.close()
