"""The two migration scripts, run as a user runs them, on messy legacy data (tests/legacy_data.py)."""

import os
import signal
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from bson import ObjectId

from core import create_purchase, ensure_indexes, get_purchase_analytics, open_database
from core.operations import check_consistency, joined, legacy_purchases, rollup_differences
from core.operations.arrays_from_purchases import migrate_purchases
from core.operations.purchases_from_arrays import implement_hybrid_purchases
from core.storage.schema import AUDIT, COURSES, PURCHASES, TESTS, USERS
from dashboard.pages.audit import audit_csv, audit_rows
from dashboard.pages.live.filters import NOT_MIGRATED, analytics_filters, parse_query
from tests import legacy_data

UTC_ZONE = ZoneInfo("UTC")
ROOT = Path(__file__).resolve().parent.parent
SCRIPTS = {"from_purchases": "scripts/migrate_purchases.py", "from_arrays": "scripts/implement_hybrid_purchases.py"}
COMPARED = (USERS, PURCHASES, COURSES, TESTS)


class Deployment:
    """A database of its own in a folder of its own, as a script sees it (DATA_DIR / MONGODB_DB)."""

    def __init__(self, folder: Path):
        self.folder, self.name = folder, f"legacy_{ObjectId()}"
        self.env = {**os.environ, "DATA_DIR": str(folder), "MONGODB_DB": self.name}

    def open(self):
        return open_database(uri=os.environ.get("MONGODB_URI", ""), data_dir=self.folder, db_name=self.name)

    def load(self, collections: dict) -> None:
        with self.open() as opened:
            legacy_data.load(opened.db, collections)

    def run(self, script: str, *args) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, script, *args], cwd=ROOT, env=self.env, capture_output=True, text=True,
                              timeout=300, check=False)

    def state(self) -> dict:
        """Every document that matters, comparable between two runs: audit entries without their ids and times."""
        with self.open() as opened:
            db = opened.db
            found = {name: sorted(db[name].find(), key=lambda d: str(d["_id"])) for name in COMPARED}
            found[AUDIT] = sorted((e["action"], e["source"], str(e["user"]), e["kind"], str(e["item"]), str(e["purchase"]),
                                   e["note"]) for e in db[AUDIT].find())
            return found

    def everything(self) -> dict:
        with self.open() as opened:
            db = opened.db
            return {name: sorted(db[name].find(), key=lambda d: str(d["_id"])) for name in db.list_collection_names()}

    def check(self) -> dict:
        with self.open() as opened:
            return {kind: found for kind, found in check_consistency(opened.db).items() if found}

    def drop(self) -> None:
        if os.environ.get("MONGODB_URI"):
            with self.open() as opened:
                opened.client.drop_database(self.name)


@pytest.fixture
def deployments(tmp_path):
    made = []

    def make(label: str) -> Deployment:
        made.append(Deployment(tmp_path / label))
        return made[-1]

    yield make
    for deployment in made:
        deployment.drop()


@pytest.mark.parametrize("direction", ["from_purchases", "from_arrays"])
def test_a_run_fixes_what_is_certain_reports_the_rest_and_a_second_run_changes_nothing(deployments, direction):
    data, expected = getattr(legacy_data, direction)()
    deployment = deployments("one")
    deployment.load(data)

    first = deployment.run(SCRIPTS[direction])

    assert first.returncode == 1, first.stdout + first.stderr  # the reported problems remain
    assert "Reported and left alone" in first.stdout and "Rebuilt the rollups" in first.stdout
    found = deployment.check()
    assert set(found) == expected, first.stdout
    assert "rollup_mismatch" not in found
    before = deployment.everything()
    second = deployment.run(SCRIPTS[direction])
    assert second.returncode == 1
    assert "Nothing to change" in second.stdout
    assert deployment.everything() == before  # not a document written, not even a checkpoint


def test_migrate_purchases_makes_each_array_the_set_of_its_users_purchases(deployments):
    data, _ = legacy_data.from_purchases()
    deployment = deployments("one")
    deployment.load(data)
    c0, c1, c2, _ = (c["_id"] for c in data[COURSES])
    t0, t1 = (t["_id"] for t in data[TESTS])
    users = [u["_id"] for u in data[USERS]]

    deployment.run(SCRIPTS["from_purchases"])

    with deployment.open() as opened:
        db = opened.db
        arrays = {u["_id"]: (u.get("purchasedCourses"), u.get("purchasedTests")) for u in db[USERS].find()}
        assert arrays[users[0]] == ([c0], [t1])  # missing arrays; a purchase with string ids, converted
        assert arrays[users[1]] == ([c0, c1], [])  # duplicates and a string id; a missing array made a list
        assert arrays[users[2]] == ([], [t0])  # a string instead of an array
        assert all(isinstance(c, list) and isinstance(t, list) for c, t in arrays.values())  # every user, both
        assert arrays[users[3]][0] == [c0]  # entries with no purchase (one of a deleted course) removed
        assert arrays[users[4]][0] == [c1, c2]  # the purchase recorded twice is kept once
        assert len(list(db[PURCHASES].find({"user": users[4], "course": c1}))) == 1
        assert len(list(db[PURCHASES].find({"user": users[4], "course": c2}))) == 2  # differing: both kept, reported
        converted = db[PURCHASES].find_one({"user": users[0], "test": t1})
        assert converted["amount"] == 9.99
        assert all(isinstance(p["user"], ObjectId) for p in db[PURCHASES].find())
        dated = db[PURCHASES].find_one({"user": users[2]})
        assert dated["purchasedAt"].year == 2024
        assert "test" not in db[PURCHASES].find_one({"user": users[3]})  # the null beside the course
        audit = list(db[AUDIT].find({"source": "migration"}))
        assert {e["action"] for e in audit} == {"grant", "revoke", "fix"}
        # the audit page shows and exports them all, those that name no item or amount included
        assert len(audit_rows(audit, UTC_ZONE, "USD")) == len(audit) == audit_csv(audit, UTC_ZONE, "USD").count("migration")
        assert {(e["user"], e["item"]) for e in audit if e["action"] == "revoke"} == {
            (users[3], c2), (users[3], data[PURCHASES][6]["course"])}
        assert rollup_differences(db) == []


def test_implement_hybrid_creates_marked_purchases_from_the_best_evidence(deployments):
    data, _ = legacy_data.from_arrays()
    deployment = deployments("one")
    deployment.load(data)
    c0, c1, c2, free = (c["_id"] for c in data[COURSES])
    t0, t1 = (t["_id"] for t in data[TESTS])
    users = [u["_id"] for u in data[USERS]]

    result = deployment.run(SCRIPTS["from_arrays"])

    assert "purchases created from array entries" in result.stdout
    with deployment.open() as opened:
        db = opened.db
        created = {(p["user"], p.get("course") or p.get("test")): p for p in db[PURCHASES].find({"metadata.migrated": True})}
        plain = created[(users[0], c0)]
        assert plain["paymentMethod"] == "migrated" and plain["amount"] == 19.99
        # the later of the user's creation (10 days before BASE) and the course's (30 days before)
        assert plain["purchasedAt"] == legacy_data.BASE - legacy_data.timedelta(days=10)
        assert plain["metadata"] == {"migrated": True, "amountFrom": "course.price", "purchasedAtFrom": "user.createdAt"}
        assert created[(users[0], t0)]["amount"] == 9.99  # a price stored as a string
        assert created[(users[3], t0)]["metadata"]["purchasedAtFrom"] in ("user._id", "test._id")
        assert created[(users[4], free)]["amount"] == 0 and created[(users[4], free)]["metadata"]["amountFrom"] == "none"
        assert db[USERS].find_one({"_id": users[1]})["purchasedCourses"] == [c2]  # duplicates, strings
        assert db[USERS].find_one({"_id": users[1]})["purchasedTests"] == [t1]
        assert db[USERS].find_one({"_id": users[3]})["purchasedCourses"] == "oops"  # reported, left alone
        assert (users[5], c0) not in created and (users[5], c1) not in created  # their purchases existed
        assert db[PURCHASES].count_documents({"user": users[5]}) == 2
        assert db[AUDIT].count_documents({"source": "migration", "action": "fix"}) >= len(created)
        assert rollup_differences(db) == []


@pytest.mark.parametrize("direction", ["from_purchases", "from_arrays"])
def test_dry_run_writes_nothing(deployments, direction):
    data, _ = getattr(legacy_data, direction)(filler_users=10)
    deployment = deployments("one")
    deployment.load(data)
    before = deployment.everything()

    result = deployment.run(SCRIPTS[direction], "--dry-run")

    assert result.returncode == 0, result.stderr
    assert "Would change" in result.stdout and "Dry run: nothing was written" in result.stdout
    assert deployment.everything() == before


@pytest.mark.parametrize("direction", ["from_purchases", "from_arrays"])
def test_a_run_killed_at_any_moment_and_run_again_ends_as_one_clean_run(deployments, direction):
    data, _ = getattr(legacy_data, direction)(filler_users=60)
    clean, killed = deployments("clean"), deployments("killed")
    clean.load(data)
    killed.load(data)

    assert clean.run(SCRIPTS[direction], "--batch-size", "4").returncode == 1
    for lines in (15, 60):  # killed early, then again after it resumed
        process = subprocess.Popen([sys.executable, SCRIPTS[direction], "--batch-size", "4", "--verbose"], cwd=ROOT,
                                   env=killed.env, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        for _ in range(lines):
            if not process.stdout.readline():
                break
        process.send_signal(signal.SIGKILL)
        process.wait()
    resumed = killed.run(SCRIPTS[direction], "--batch-size", "4")

    assert resumed.returncode == 1, resumed.stdout + resumed.stderr
    assert "Resumed the run" in resumed.stdout
    assert killed.state() == clean.state()
    assert set(killed.check()) == set(clean.check())


def test_a_purchase_made_while_the_migration_runs_is_never_overwritten(db):
    data, _ = legacy_data.from_purchases()
    legacy_data.load(db, data)
    user = data[USERS][0]["_id"]  # arrays missing: the migration will set them
    bought = data[COURSES][2]["_id"]
    made = []

    def buy_once(line):
        if not made and line.startswith(f"array_entries_added: user {user}"):  # read, not yet written
            made.append(create_purchase(db, user, course_id=bought, purchase_data={"amount": 5, "paymentMethod": "paypal"}))

    migrate_purchases(db, log=buy_once).finish()

    assert made and bought in db[USERS].find_one({"_id": user})["purchasedCourses"]
    migrate_purchases(db).finish()  # the next run completes that user
    courses = db[USERS].find_one({"_id": user})["purchasedCourses"]
    assert bought in courses and data[COURSES][0]["_id"] in courses


@pytest.mark.parametrize("direction", ["from_purchases", "from_arrays"])
def test_reading_in_small_pages_and_chunks_ends_as_reading_at_once(db, monkeypatch, direction):
    """The purchases are read PAGE at a time and the users CHUNK at a time: with pages of 3
    and chunks of 2 a run makes the same changes and reports the same problems."""
    data, _ = getattr(legacy_data, direction)()
    migrate = migrate_purchases if direction == "from_purchases" else implement_hybrid_purchases
    small = db.client[f"{db.name}_small"]
    ensure_indexes(small)
    ends = []
    for database in (db, small):
        legacy_data.load(database, data)
        if database is small:
            monkeypatch.setattr(legacy_purchases, "PAGE", 3)
            monkeypatch.setattr(joined, "CHUNK", 2)
        run = migrate(database)
        found = {kind: len(problems) for kind, problems in run.finish().items() if problems}
        purchases = sorted(repr({k: v for k, v in p.items() if k != "_id"}) for p in database[PURCHASES].find())
        ends.append((run.summary.changes, run.summary.problems, found, list(database[USERS].find().sort("_id", 1)),
                     purchases))
    db.client.drop_database(small.name)
    assert ends[0] == ends[1]
    assert ends[0][0]  # the run changed something


def test_analytics_and_the_live_page_can_leave_migrated_records_out(deployments):
    data, _ = legacy_data.from_arrays()
    deployment = deployments("one")
    deployment.load(data)
    deployment.run(SCRIPTS["from_arrays"])
    view = parse_query(f"?range=custom&start=2000-01-01&end={datetime.now(UTC).date()}&method={NOT_MIGRATED}", set())
    filters = analytics_filters(view, datetime.now(UTC).date())

    with deployment.open() as opened:
        db = opened.db
        everything = get_purchase_analytics(db, {"startDate": "2000-01-01", "top": 100})
        real = get_purchase_analytics(db, filters)
        migrated = db[PURCHASES].count_documents({"metadata.migrated": True})
        legacy = [p for p in db[PURCHASES].find({"metadata.migrated": {"$ne": True}})]

    assert filters["excludePaymentMethod"] == "migrated"
    assert everything["totalPurchases"] == migrated + len(legacy) and migrated > 0
    assert real["totalPurchases"] == len(legacy)
    assert real["totalRevenue"] == round(sum(p["amount"] for p in legacy), 2)
    assert "migrated" not in {row["paymentMethod"] for row in real["paymentMethods"]}
    assert sum(row["count"] for row in real["popularCourses"] + real["popularTests"]) == len(legacy)
