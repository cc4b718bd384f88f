"""What an app keeps in memory hangs off one object, and goes when the app closes its database."""

import uuid

from app import create_app
from caches import AppCaches, app_caches
from core import get_purchase_analytics
from core.customers import find_customers
from core.storage.caches import caches_of


def test_every_cache_of_an_app_is_on_one_object_and_core_keeps_its_database_there(tmp_path, viewer_client, app):
    caches = app_caches(app)
    assert isinstance(caches, AppCaches) and app.extensions["caches"] is caches
    db = app.extensions["purchase_database"].db
    assert caches.database is caches_of(db)
    assert caches.sessions is not None and caches.api_keys is not None and caches.live_renders is not None
    assert caches.inline_script_hashes  # Dash's inline scripts, allowed by the policy by hash
    assert viewer_client.options("/api/v1/purchases").status_code == 204
    assert caches.api_routes is not None  # the API's routes alone, made at the first OPTIONS or API 404
    find_customers(db, "ada")
    get_purchase_analytics(db)
    assert {"customer index", "rollups", "buyers"} <= set(caches.database.names())


def test_two_apps_keep_apart_and_a_closed_app_leaves_nothing_behind(tmp_path):
    apps = [create_app({"DATA_DIR": str(tmp_path / name), "MONGODB_URI": "", "MONGODB_DB": f"c_{uuid.uuid4().hex[:8]}",
                        "SEED_DEMO": "0", "TESTING": True, "HEALTH_CHECK_SECONDS": "0", "REPORTS_CHECK_SECONDS": "0"})
            for name in ("one", "two")]
    try:
        first, second = (app_caches(app) for app in apps)
        assert first.database is not second.database and first.sessions is not second.sessions
        db = apps[0].extensions["purchase_database"].db
        get_purchase_analytics(db)
        held = caches_of(db)
        assert held.held("rollups") is not None and app_caches(apps[1]).database.held("rollups") is None
    finally:
        for app in apps:
            app.extensions["purchase_database"].close()
    # a later handle to the same servers and name starts empty
    assert caches_of(db) is not held and caches_of(db).names() == []


def test_a_new_client_never_gets_the_caches_of_a_closed_one_on_the_same_address(opened_database):
    # a closed app's thread may still ask for its caches; a new client on a reused port must
    # not find them (they would read through the closed client)
    from pymongo import MongoClient

    name = f"c_{uuid.uuid4().hex[:8]}"
    first = MongoClient(opened_database.uri)
    held = caches_of(first[name])
    held.slot("marker", lambda: "first")
    second = MongoClient(opened_database.uri)
    try:
        assert caches_of(second[name]) is not held and caches_of(second[name]).held("marker") is None
        assert caches_of(first[name]) is held  # every handle of one client shares them
    finally:
        first.close()
        second.close()
