"""The app factory: embedded database, demo seeding on first start, the page's layout."""

import json
import os

import pytest

from app import create_app
from core import get_data_version
from core.rollups import rollup_differences
from core.schema import PURCHASES, USERS
from dashboard import ids

pytestmark = pytest.mark.skipif(bool(os.environ.get("MONGODB_URI")), reason="seeds only the embedded database")


def test_first_start_seeds_demo_data_with_rollups_and_serves_the_page(tmp_path):
    server = create_app({"DATA_DIR": str(tmp_path), "MONGODB_DB": "apptest", "MONGODB_URI": ""})
    try:
        db = server.extensions["purchase_database"].db
        assert db[USERS].count_documents({}) == 600 and db[PURCHASES].count_documents({}) == 5000
        assert rollup_differences(db) == [] and get_data_version(db) > 0
        client = server.test_client()
        assert client.get("/").status_code == 200
        layout = json.dumps(client.get("/_dash-layout").get_json())
        for component in (ids.LIVE_REVENUE_CHART, ids.LIVE_FEED, ids.LIVE_INTERVAL, ids.value(ids.LIVE_AOV)):
            assert f'"{component}"' in layout
        assert str(tmp_path) in layout  # the page says which database it reads
    finally:
        server.extensions["purchase_database"].close()
    # a second start finds the data and does not seed again
    again = create_app({"DATA_DIR": str(tmp_path), "MONGODB_DB": "apptest", "MONGODB_URI": ""})
    try:
        assert again.extensions["purchase_database"].db[PURCHASES].count_documents({}) == 5000
    finally:
        again.extensions["purchase_database"].close()


def test_seeding_can_be_turned_off(tmp_path):
    app = create_app({"DATA_DIR": str(tmp_path), "MONGODB_DB": "empty", "MONGODB_URI": "", "SEED_DEMO": "0"})
    try:
        assert app.extensions["purchase_database"].db[USERS].count_documents({}) == 0
    finally:
        app.extensions["purchase_database"].close()
