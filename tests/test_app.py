"""The app factory: embedded database, demo seeding on first start, the totals callback."""

import os

import pytest

from app import create_app
from core.schema import PURCHASES, USERS
from dashboard import ids

pytestmark = pytest.mark.skipif(bool(os.environ.get("MONGODB_URI")), reason="seeds only the embedded database")


@pytest.fixture
def server(tmp_path):
    app = create_app({"DATA_DIR": str(tmp_path), "MONGODB_DB": "apptest", "MONGODB_URI": ""})
    yield app
    app.extensions["purchase_database"].close()


def totals_request():
    outputs = [ids.OVERVIEW_USERS, ids.OVERVIEW_PURCHASES, ids.OVERVIEW_REVENUE, ids.OVERVIEW_UPDATED, ids.OVERVIEW_ERROR]
    return {
        "output": ".." + "...".join(f"{o}.children" for o in outputs) + "..",
        "outputs": [{"id": o, "property": "children"} for o in outputs],
        "inputs": [{"id": ids.OVERVIEW_INTERVAL, "property": "n_intervals", "value": 1}],
        "changedPropIds": [f"{ids.OVERVIEW_INTERVAL}.n_intervals"],
    }


def test_first_start_seeds_demo_and_page_shows_live_totals(server):
    db = server.extensions["purchase_database"].db
    assert db[USERS].count_documents({}) == 600 and db[PURCHASES].count_documents({}) == 5000
    client = server.test_client()
    assert client.get("/").status_code == 200
    reply = client.post("/_dash-update-component", json=totals_request()).get_json()["response"]
    revenue = sum(p["amount"] for p in db[PURCHASES].find({}, {"amount": 1}))
    assert reply[ids.OVERVIEW_USERS]["children"] == "600"
    assert reply[ids.OVERVIEW_PURCHASES]["children"] == "5,000"
    assert reply[ids.OVERVIEW_REVENUE]["children"] == f"{revenue:,.2f} USD"
    assert reply[ids.OVERVIEW_ERROR]["children"] == ""


def test_seeding_can_be_turned_off(tmp_path):
    app = create_app({"DATA_DIR": str(tmp_path), "MONGODB_DB": "empty", "MONGODB_URI": "", "SEED_DEMO": "0"})
    try:
        assert app.extensions["purchase_database"].db[USERS].count_documents({}) == 0
    finally:
        app.extensions["purchase_database"].close()
