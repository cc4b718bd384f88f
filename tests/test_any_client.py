"""Core answers the same through pymongo's default (naive) client as through the app's."""

import os
from datetime import UTC, datetime

import pytest
from pymongo import MongoClient

from core import (
    create_purchase,
    get_data_version,
    get_purchase_analytics,
    get_purchase_history,
    get_recent_activity,
    has_purchased,
    remove_purchase,
)
from core.operations import check_consistency, rebuild_rollups, rollup_differences
from core.settings import CoreSettings

FRESH = CoreSettings(buyers_max_age=0)
WHEN = datetime(2025, 3, 1, 10, 30, tzinfo=UTC)


@pytest.fixture
def naive_db(db, opened_database):
    """The same database through `MongoClient(uri)` with pymongo's defaults (tz_aware=False)."""
    uri = os.environ.get("MONGODB_URI") or opened_database.uri
    client = MongoClient(uri)
    assert client.codec_options.tz_aware is False
    yield client[db.name]
    client.close()


def test_every_core_function_gives_the_same_answer_through_a_naive_client(db, naive_db, catalog):
    user, (c0, c1), (t0, _) = catalog["user"], catalog["courses"], catalog["tests"]
    # writes through the naive client: a naive datetime means UTC
    create_purchase(naive_db, user, c0, None, {"amount": 29.99, "paymentMethod": "paypal",
                                               "purchasedAt": WHEN.replace(tzinfo=None)})
    create_purchase(db, user, None, t0, {"amount": 9.99, "paymentMethod": "stripe", "purchasedAt": WHEN})
    create_purchase(naive_db, user, c1, None, {"amount": 0, "paymentMethod": "admin_grant"})
    remove_purchase(naive_db, user, c1, None, actor="admin", reason="granted by mistake")

    filters = {"startDate": "2025-01-01", "endDate": datetime(2025, 3, 1, 10, 45)}  # a naive end: UTC
    naive, aware = (without_times(get_purchase_analytics(d, filters, settings=FRESH)) for d in (naive_db, db))
    assert naive == aware and naive["totalPurchases"] == 2
    assert naive["startDate"] == datetime(2025, 1, 1, tzinfo=UTC)
    assert [row["period"] for row in naive["revenueByPeriod"]][-1] == datetime(2025, 3, 1, tzinfo=UTC)
    assert get_purchase_analytics(naive_db, settings=FRESH)["revoked"]["count"] == 1

    history = get_purchase_history(naive_db, user)
    assert history == get_purchase_history(db, user)
    assert [h["purchasedAt"] for h in history][1:] == [WHEN, WHEN]
    assert all(h["purchasedAt"].tzinfo is not None for h in history)

    assert get_recent_activity(naive_db) == get_recent_activity(db)
    assert get_data_version(naive_db) == get_data_version(db) == 4
    assert has_purchased(naive_db, user, c0) and not has_purchased(naive_db, user, c1)
    assert all(not found for found in check_consistency(naive_db).values())
    rebuild_rollups(naive_db)
    assert rollup_differences(db) == [] and rollup_differences(naive_db) == []


def without_times(figures: dict) -> dict:
    """The figures without when they were read (`asOf`), which differ between two reads."""
    return {**{k: v for k, v in figures.items() if k != "asOf"},
            "buyers": {k: v for k, v in figures["buyers"].items() if k != "asOf"}}
