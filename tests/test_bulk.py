"""Bulk grant over HTTP and in core: the preview flags exactly the bad rows and writes nothing;
applying grants each good row once, however often, even after the app is killed halfway."""

import base64
import csv
import io
import os
import signal
import subprocess
import sys
import time
import uuid

import pytest
from bson import ObjectId

from app import create_app
from core import ValidationError, open_database
from core.operations import bulk
from core.storage.schema import AUDIT, COURSES, PURCHASES, TESTS, USERS
from dashboard.pages import bulk as page
from scripts.dash_client import callback_body, callback_key
from tests.conftest import signed_in, snapshot

embedded_only = pytest.mark.skipif(bool(os.environ.get("MONGODB_URI")), reason="kills the embedded server's process")
HEADER = "email,userId,courseId,testId,item,amount,paymentMethod,note"


def add_catalog(db, users: int = 8) -> dict:
    """Users with emails, three courses (two share a title) and a test; the last user owns course 0."""
    ids = {"users": [ObjectId() for _ in range(users)], "courses": [ObjectId() for _ in range(3)], "test": ObjectId()}
    for n, user in enumerate(ids["users"]):
        db[USERS].insert_one({"_id": user, "name": f"User {n}", "email": f"user{n}@example.com",
                              "purchasedCourses": [], "purchasedTests": []})
    for course, title in zip(ids["courses"], ("Python Basics", "Same Title", "same  title"), strict=True):
        db[COURSES].insert_one({"_id": course, "title": title, "price": 49.0})
    db[TESTS].insert_one({"_id": ids["test"], "title": "SQL Exam", "price": 9.0})
    db[USERS].update_one({"_id": ids["users"][-1]}, {"$set": {"purchasedCourses": [ids["courses"][0]]}})
    return ids


def mixed_file(ids: dict) -> tuple[bytes, dict]:
    """A file of good and bad rows; the row numbers expected to be ready, and those with problems."""
    u, c, t = ids["users"], ids["courses"], ids["test"]
    rows = [
        "user0@example.com,,,,python basics,0,admin_grant,Prize",  # 2 good: title in another case
        f",{u[1]},{c[0]},,,49.00,bank_transfer,",  # 3 good: ids
        f"USER2@example.com,,,{t},,9,credit_card,",  # 4 good: a test, email in another case
        "user0@example.com,,,,Python Basics,0,admin_grant,",  # 5 duplicate of row 2
        "nobody@example.com,,,,Python Basics,0,admin_grant,",  # 6 unknown user
        "user3@example.com,,,,No Such Course,0,admin_grant,",  # 7 unknown item
        "user3@example.com,,,,same title,0,admin_grant,",  # 8 ambiguous title
        "user4@example.com,,,,SQL Exam,12;50,paypal,",  # 9 malformed amount (the delimiter is ",")
        "user5@example.com,,,,SQL Exam,5,cash,",  # 10 payment method not allowed
        f"user7@example.com,,{c[0]},,,0,admin_grant,",  # 11 already owns it
        f",{'f' * 24},{c[1]},,,0,admin_grant,",  # 12 unknown user id
        "",  # blank lines are skipped, but keep their number
        "user6@example.com,,,,SQL Exam,1.5,stripe,Last one",  # 14 good
    ]
    content = ("\r\n".join([HEADER, *rows]) + "\r\n").encode()
    return content, {"ready": [2, 3, 4, 14], "problem": [5, 6, 7, 8, 9, 10, 11, 12]}


def data_url(content: bytes) -> str:
    return "data:text/csv;base64," + base64.b64encode(content).decode()


def post(client, app, output: str, values: dict, changed: str):
    dash_app = app.extensions["dash"]
    key = callback_key(dash_app, output)
    return client.post("/_dash-update-component", json=callback_body(dash_app, key, values, [changed]))


def post_preview(client, app, content: bytes):
    return post(client, app, f"{page.PREVIEW_GRID}.rowData",
                {f"{page.UPLOAD}.contents": data_url(content), f"{page.UPLOAD}.filename": "grants.csv"},
                f"{page.UPLOAD}.contents")


def post_apply(client, app, content: bytes):
    return post(client, app, f"{page.URL}.search",
                {f"{page.APPLY}.n_clicks": 1, f"{page.UPLOAD}.contents": data_url(content),
                 f"{page.UPLOAD}.filename": "grants.csv"}, f"{page.APPLY}.n_clicks")


def wait_for_job(db, job_id: str, timeout: float = 60) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        job = bulk.get_job(db, job_id)
        if job is not None and job["status"] != bulk.RUNNING:
            return job
        time.sleep(0.1)
    raise AssertionError(f"job {job_id} still running after {timeout} s")


def grants_per_row(db, ids: dict) -> dict:
    """(user, item) -> purchases, over every purchase."""
    found = {}
    for purchase in db[PURCHASES].find():
        key = (purchase["user"], purchase.get("course") or purchase.get("test"))
        found[key] = found.get(key, 0) + 1
    return found


def test_the_preview_flags_exactly_the_bad_rows_and_writes_nothing(app, admin_client):
    db = app.extensions["purchase_database"].db
    ids = add_catalog(db)
    content, expected = mixed_file(ids)
    before = snapshot(db)
    reply = post_preview(admin_client, app, content)
    assert reply.status_code == 200, reply.data
    response = reply.get_json()["response"]
    rows = {row["row"]: row for row in response[page.PREVIEW_GRID]["rowData"]}
    assert sorted(rows) == sorted(expected["ready"] + expected["problem"])
    assert [n for n, row in rows.items() if row["status"] == bulk.READY] == expected["ready"]
    assert all(rows[n]["problem"] == "" for n in expected["ready"])
    problems = {n: rows[n]["problem"] for n in expected["problem"]}
    assert problems == {
        5: "same user and item as row 2",
        6: "unknown user nobody@example.com",
        7: "unknown item 'No Such Course'",
        8: "ambiguous item 'same title': 2 courses and tests have this title; use courseId or testId",
        9: "malformed amount '12;50' (write it like 12.50 or 1,299.50, without a currency)",
        10: "payment method 'cash' is not allowed (allowed: admin_grant, bank_transfer, credit_card, paypal, stripe)",
        11: "already owns this course",
        12: f"unknown user id {'f' * 24}",
    }
    assert rows[2]["item"] == "Python Basics"  # the catalog's title, not the file's spelling
    assert response[page.APPLY] == {"children": "Grant 4 rows", "disabled": False}
    assert snapshot(db) == before


def test_the_preview_flags_amounts_the_grant_would_refuse(app, admin_client):
    """Over the largest amount, more decimals than the currency has, a free method with a
    price, a price of 0 with a paid method: flagged before anything is written, as the
    grant itself (or the Grant page) would refuse them."""
    db = app.extensions["purchase_database"].db
    add_catalog(db)
    rows = ["user0@example.com,,,,SQL Exam,99999999,paypal,", "user1@example.com,,,,SQL Exam,1.234,paypal,",
            "user2@example.com,,,,SQL Exam,10,admin_grant,", "user3@example.com,,,,SQL Exam,0,paypal,",
            "user4@example.com,,,,SQL Exam,1000000,paypal,"]
    reply = post_preview(admin_client, app, ("\n".join([HEADER, *rows]) + "\n").encode())
    found = {row["row"]: row for row in reply.get_json()["response"][page.PREVIEW_GRID]["rowData"]}
    assert [n for n, row in found.items() if row["status"] == bulk.READY] == [6]
    assert found[2]["problem"] == "the amount is more than the largest allowed, 1,000,000.00 USD"
    assert found[3]["problem"] == "USD amounts have at most 2 decimals"
    assert found[4]["problem"] == "admin_grant is free access: its amount must be 0"
    assert found[5]["problem"] == "an amount of 0 is free access: give paymentMethod admin_grant"


def test_amounts_are_read_as_on_the_grant_page_and_refused_in_a_persons_words(app, admin_client):
    db = app.extensions["purchase_database"].db
    add_catalog(db)
    amounts = ['"1,299.50"', ".5", "1000001", "100000000000000000000", "9" * 400, "1e3", "inf", "-5"]
    rows = [f"user{n}@example.com,,,,SQL Exam,{amount},paypal," for n, amount in enumerate(amounts)]
    reply = post_preview(admin_client, app, ("\n".join([HEADER, *rows]) + "\n").encode())
    found = {row["row"] - 2: row for row in reply.get_json()["response"][page.PREVIEW_GRID]["rowData"]}
    assert (found[0]["status"], found[0]["amount"]) == (bulk.READY, "1,299.50")
    assert (found[1]["status"], found[1]["amount"]) == (bulk.READY, ".5")
    assert [row.amount for row in bulk.preview(db, ("\n".join([HEADER, *rows[:2]]) + "\n").encode()).rows] == [1299.5, 0.5]
    for n in (2, 3, 4):
        assert found[n]["problem"] == "the amount is more than the largest allowed, 1,000,000.00 USD", found[n]
    for n in (5, 6, 7):
        assert found[n]["problem"].startswith("malformed amount"), found[n]
    assert not any("got " in row["problem"] for row in found.values())


def test_applying_twice_grants_each_good_row_once_and_the_results_download(app):
    db = app.extensions["purchase_database"].db
    admin_client = signed_in(app, "admin", "boss@example.com")
    ids = add_catalog(db)
    content, expected = mixed_file(ids)
    first = post_apply(admin_client, app, content)
    assert first.status_code == 200, first.data
    search = first.get_json()["response"][page.URL]["search"]
    job_id = page.job_of(search)
    assert job_id == bulk.preview(db, content).job_id
    second = post_apply(admin_client, app, content)  # a double click while it runs, or a re-upload after
    assert second.status_code == 200
    assert second.get_json()["response"][page.MESSAGE]["children"] in (
        "This file is already being applied; its progress is below.",
        "Nothing left to grant: every good row of this file was granted before. Its results are below.")
    job = wait_for_job(db, job_id)
    assert job["status"] == bulk.DONE
    assert job["counts"] == {bulk.GRANTED: 4, bulk.ALREADY: 0, bulk.FAILED: 0, bulk.SKIPPED: 8}
    third = post_apply(admin_client, app, content)
    assert "Nothing left to grant" in third.get_json()["response"][page.MESSAGE]["children"]
    assert wait_for_job(db, job_id)["counts"] == job["counts"]

    assert set(grants_per_row(db, ids).values()) == {1}
    entries = list(db[AUDIT].find({"source": "bulk"}))
    assert len(entries) == 4 == db[PURCHASES].count_documents({})
    assert {e["actor"] for e in entries} == {"boss@example.com"}
    assert sorted(e["idempotencyKey"] for e in entries) == sorted(bulk.row_key(job["digest"], n)
                                                                  for n in expected["ready"])
    assert next(e for e in entries if e["note"] == "Prize")["amount"] == 0

    shown = post(admin_client, app, f"{page.RESULTS_GRID}.rowData",
                 {f"{page.URL}.search": search, f"{page.POLL}.n_intervals": 0}, f"{page.URL}.search")
    response = shown.get_json()["response"]
    results = {row["row"]: row["status"] for row in response[page.RESULTS_GRID]["rowData"]}
    assert results == {**dict.fromkeys(expected["ready"], bulk.GRANTED), **dict.fromkeys(expected["problem"], bulk.SKIPPED)}
    assert response[page.POLL]["disabled"] is True and "Done at" in response[page.JOB_STATUS]["children"]
    download = post(admin_client, app, f"{page.DOWNLOAD}.data", {f"{page.EXPORT}.n_clicks": 1,
                                                                 f"{page.URL}.search": search}, f"{page.EXPORT}.n_clicks")
    csv_text = download.get_json()["response"][page.DOWNLOAD]["data"]["content"]
    assert csv_text.startswith("\ufeff")  # Excel reads it as UTF-8; Python's utf-8-sig and pandas skip it
    lines = list(csv.reader(io.StringIO(csv_text.encode().decode("utf-8-sig"))))
    assert lines[0][:3] == ["row", "user", "user_id"] and len(lines) == 13
    assert lines[1][:2] == ["2", "user0@example.com"] and lines[1][10:12] == ["granted", ""]


def test_viewers_and_anonymous_callers_cannot_preview_or_apply(app, viewer_client, client):
    db = app.extensions["purchase_database"].db
    content, _ = mixed_file(add_catalog(db))
    before = snapshot(db)
    assert post_apply(viewer_client, app, content).status_code == 403
    assert post_preview(viewer_client, app, content).status_code == 403
    assert post_apply(client, app, content).status_code == 401
    assert post_preview(client, app, content).status_code == 401
    time.sleep(0.3)  # a job, had one started, would have granted by now
    assert snapshot(db) == before


def test_a_file_that_cannot_be_read_as_a_whole_is_refused_with_what_to_fix(app, admin_client):
    cases = {
        b"": "The file is empty",
        b"email,amount,paymentMethod\nuser0@example.com,0,admin_grant\n": "Missing column: courseId or testId or item",
        b"email,item,amount,paymentMethod,colour\n": "Unknown column 'colour'",
        "email,item,amount,paymentMethod\nzoë@example.com,x,0,admin_grant\n".encode("latin-1"): "is not UTF-8",
        b"email,item,amount,paymentMethod\n\n\n": "has a header but no rows",
        (HEADER + "\n" + "a@b.c,,,,x,0,admin_grant,\n" * (bulk.MAX_ROWS + 1)).encode(): "more than 10,000 rows",
        b"x" * (bulk.MAX_BYTES + 1): "at most 5 MB",
    }
    for content, message in cases.items():
        with pytest.raises(ValidationError, match=message):
            bulk.read_rows(content)
    too_many = (HEADER + "\n" + "a@b.c,,,,x,0,admin_grant,\n" * (bulk.MAX_ROWS + 1)).encode()
    reply = post_preview(admin_client, app, too_many).get_json()["response"]
    assert "more than 10,000 rows" in reply[page.MESSAGE]["children"] and reply[page.APPLY]["disabled"] is True
    reply = post_preview(admin_client, app, b"x" * (bulk.MAX_BYTES + 1)).get_json()["response"]
    assert reply[page.MESSAGE]["children"].startswith("The file has 5.0 MB; at most 5 MB")
    semicolons = bulk.read_rows("\ufeffEmail;Item;Amount;Payment Method\nuser0@example.com;SQL Exam;0;admin_grant\n".encode())
    assert semicolons == [(2, {"email": "user0@example.com", "item": "SQL Exam", "amount": "0",
                               "paymentMethod": "admin_grant"}, False)]


CHILD = """
import sys
from core import open_database
from core.operations import bulk
with open_database(data_dir=sys.argv[1], db_name=sys.argv[2]) as opened:
    found = bulk.preview(opened.db, open(sys.argv[3], "rb").read())
    token = bulk.claim_job(opened.db, found, actor="first@example.com", file_name="big.csv")
    bulk.run_job(opened.db, found, token, actor="first@example.com", on_row=lambda result: print(result["row"], flush=True))
"""


@embedded_only
def test_an_app_killed_halfway_finishes_on_the_next_apply_and_grants_nothing_twice(tmp_path):
    data_dir, name, rows = tmp_path / "data", f"bulk_{uuid.uuid4().hex[:8]}", 4 * bulk.BATCH_ROWS
    with open_database(data_dir=data_dir, db_name=name) as opened:
        ids = add_catalog(opened.db, users=rows)
    lines = [f"user{n}@example.com,,,{ids['test']},,{n + 1},paypal,row {n}" for n in range(rows)]
    csv_file = tmp_path / "big.csv"
    csv_file.write_bytes(("\n".join([HEADER, *lines]) + "\n").encode())

    # the job runs in another process that owns the embedded server, as the app does; kill -9 it
    child = subprocess.Popen([sys.executable, "-c", CHILD, str(data_dir), name, str(csv_file)],
                             stdout=subprocess.PIPE, text=True)
    try:
        granted = [child.stdout.readline() for _ in range(10)]
    finally:
        child.send_signal(signal.SIGKILL)
        child.wait(timeout=10)
    assert all(line.strip() for line in granted), "the job did not grant 10 rows before it was killed"

    app = create_app({"DATA_DIR": str(data_dir), "MONGODB_URI": "", "MONGODB_DB": name, "SEED_DEMO": "0"})
    try:
        db = app.extensions["purchase_database"].db
        job_id = bulk.preview(db, csv_file.read_bytes()).job_id
        assert bulk.get_job(db, job_id)["status"] == bulk.INTERRUPTED
        done_before = db[PURCHASES].count_documents({})
        assert 10 <= done_before < rows  # really halfway
        reply = post_apply(signed_in(app, "admin", "second@example.com"), app, csv_file.read_bytes())
        assert reply.status_code == 200 and page.job_of(reply.get_json()["response"][page.URL]["search"]) == job_id
        job = wait_for_job(db, job_id)
        assert job["status"] == bulk.DONE and job["counts"][bulk.GRANTED] == rows
        assert db[PURCHASES].count_documents({}) == rows and set(grants_per_row(db, ids).values()) == {1}
        entries = list(db[AUDIT].find({"source": "bulk"}))
        assert len(entries) == rows
        assert sum(e["actor"] == "first@example.com" for e in entries) == done_before
        assert sum(e["actor"] == "second@example.com" for e in entries) == rows - done_before
        assert [r["status"] for r in bulk.job_results(db, job_id)] == [bulk.GRANTED] * rows
    finally:
        app.extensions["purchase_database"].close()


def test_one_run_holds_a_job_and_a_dead_runner_is_taken_over(db, monkeypatch):
    ids = add_catalog(db)
    found = bulk.preview(db, mixed_file(ids)[0])
    first = bulk.claim_job(db, found, actor="a@example.com")
    assert first is not None
    assert bulk.claim_job(db, found, actor="b@example.com") is None  # a second click, another worker
    assert bulk.start_job(db, found, actor="b@example.com") == "running"
    gone = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    db[bulk.JOBS].update_one({"_id": found.job_id}, {"$set": {"runner.pid": int(gone.stdout)}})
    assert bulk.get_job(db, found.job_id)["status"] == bulk.INTERRUPTED
    second = bulk.claim_job(db, found, actor="b@example.com")
    assert second not in (None, first)
    # a first runner still alive after all stops at its next write, here after its first batch (a row)
    monkeypatch.setattr(bulk.job, "PROGRESS_SECONDS", 0)
    monkeypatch.setattr(bulk.granting, "BATCH_ROWS", 1)
    assert bulk.run_job(db, found, first, actor="a@example.com")[bulk.GRANTED] == 1
    assert bulk.get_job(db, found.job_id)["runner"]["token"] == second
    counts = bulk.run_job(db, found, second, actor="b@example.com")
    assert counts == {bulk.GRANTED: 3, bulk.ALREADY: 1, bulk.FAILED: 0, bulk.SKIPPED: 8}  # row 2: a replay
    assert bulk.get_job(db, found.job_id)["status"] == bulk.DONE
    assert set(grants_per_row(db, ids).values()) == {1} and db[PURCHASES].count_documents({}) == 4


def test_a_campaign_of_many_customers_previews_every_row(app, admin_client):
    """One `$in` over every customer of the file failed past some 490 ("Expression tree is too
    large"): a file of 1,200 customers is read in batches and every row is checked."""
    db = app.extensions["purchase_database"].db
    ids = add_catalog(db, users=1)
    users = [{"_id": ObjectId(), "name": f"Campaign {n}", "email": f"campaign{n}@example.com",
              "purchasedCourses": [], "purchasedTests": []} for n in range(1200)]
    db[USERS].insert_many(users)
    db[USERS].update_one({"_id": users[7]["_id"]}, {"$set": {"purchasedCourses": [ids["courses"][0]]}})
    rows = [f"{u['email']},,{ids['courses'][0]},,,0,admin_grant," for u in users]
    reply = post_preview(admin_client, app, ("\n".join([HEADER, *rows]) + "\n").encode())
    assert reply.status_code == 200, reply.data[:300]
    found = reply.get_json()["response"][page.PREVIEW_GRID]["rowData"]
    assert len(found) == 1200
    assert [row["row"] for row in found if row["status"] != bulk.READY] == [9]  # the one who owns it already
