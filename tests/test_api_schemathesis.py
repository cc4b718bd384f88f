"""Schemathesis, a tool nobody here wrote, against the running app over HTTP: every operation of
the OpenAPI document, a bounded number of examples each, with a write key on a test database
whose real ids it draws from. No server error; every answer as the document describes it."""

import os
import shutil
import subprocess
import sys
import threading
import uuid
from pathlib import Path

import pytest
from werkzeug.serving import make_server

from app import create_app
from core.audit import get_audit_log
from core.operations import check_consistency, seed_demo
from core.storage.schema import COURSES, TESTS, USERS
from tests.conftest import api_headers

# every check about the document; the positive-data check is left out: the document cannot say
# that an item must exist, or that JPY has no cents (core refuses those with a 422 problem)
CHECKS = ("not_a_server_error,status_code_conformance,content_type_conformance,response_headers_conformance,"
          "response_schema_conformance,negative_data_rejection,missing_required_header,unsupported_method,"
          "allow_header_conformance,ignored_auth")
EXAMPLES = 10  # per operation: the suite stays under 12 minutes (25 took 48 s beside another worker, 15 took 51 s beside three)
SEED = 20261207


@pytest.fixture
def served(tmp_path):
    """The app on a database with a little demo data, served over real HTTP on a free port."""
    server = create_app({"DATA_DIR": str(tmp_path / "data"), "MONGODB_URI": os.environ.get("MONGODB_URI", ""),
                         "MONGODB_DB": f"fuzz_{uuid.uuid4().hex[:8]}", "SEED_DEMO": "0",
                         "HEALTH_CHECK_SECONDS": "0", "STRIPE_WEBHOOK_SECRET": "whsec_fuzz",
                         "API_RATE_LIMIT": "100000 per second"})
    db = server.extensions["purchase_database"].db
    seed_demo(db, users=40, items=8, purchases=120, seed=5)
    http = make_server("127.0.0.1", 0, server, threaded=True)
    thread = threading.Thread(target=http.serve_forever, daemon=True)
    thread.start()
    yield server, db, f"http://127.0.0.1:{http.server_port}"
    http.shutdown()
    server.extensions["purchase_database"].close()


def config(path: Path, db) -> Path:
    """Schemathesis draws user, course and test ids from the database half of the time."""
    ids = {name: [str(d["_id"]) for d in db[collection].find({}, {"_id": 1}).limit(20)]
           for name, collection in (("users", USERS), ("courses", COURSES), ("tests", TESTS))}
    lines = [f"[dictionaries.{name}]\nvalues = {values!r}\n" for name, values in ids.items()]
    lines.append("[parameters]")
    for parameter, name in (("path.user_id", "users"), ("body.user_id", "users"), ("query.course", "courses"),
                            ("query.test", "tests"), ("body.course_id", "courses"), ("body.test_id", "tests")):
        lines.append(f'"{parameter}" = {{ dictionary = "{name}", probability = 0.5 }}')
    path.write_text("\n".join(lines).replace("'", '"') + "\n")
    return path


def test_schemathesis_finds_no_server_error_and_no_answer_outside_the_document(served, tmp_path):
    server, db, url = served
    key = api_headers(server, "write", "schemathesis")["Authorization"]
    command = [str(Path(sys.executable).with_name("schemathesis")), "--config-file", str(config(tmp_path / "st.toml", db)),
               "run", f"{url}/api/v1/openapi.json", "--header", f"Authorization: {key}", "--checks", CHECKS,
               "--max-examples", str(EXAMPLES), "--seed", str(SEED), "--workers", "2", "--request-timeout", "30",
               "--report", "junit", "--report-dir", str(tmp_path / "report")]
    assert shutil.which(command[0]), "schemathesis is pinned in requirements.txt"
    done = subprocess.run(command, capture_output=True, text=True, timeout=600, cwd=tmp_path)
    output = done.stdout + done.stderr
    assert done.returncode == 0, output[-6000:]
    assert "7 operations" in output or "Selected: 7/7" in output, output[-3000:]
    # it reached core (real ids: purchases made and revoked through the API), and what it wrote
    # left both places and the rollups in agreement
    assert get_audit_log(db, {"source": "api"}), "no request reached a purchase"
    assert not any(check_consistency(db).values())
