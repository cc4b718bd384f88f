"""Staff accounts: the CLI's enable-user, list-users and set-role, the Staff page's callbacks over
HTTP, and the rule that no change leaves the system without an enabled admin, also under a race."""

import json
import threading

import pytest

from dashboard import accounts, shell
from dashboard.pages import staff
from scripts.dash_client import callback_body, callback_key
from tests.conftest import PASSWORD, signed_in, snapshot


def db_of(app):
    return app.extensions["purchase_database"].db


def cli(app):
    """run(*args): a flask command on `app`, as `flask --app app ...` runs it."""
    runner = app.test_cli_runner()

    def run(*args):
        with app.app_context():
            return runner.invoke(args=list(args))

    return run


def enabled_admins(db) -> list[str]:
    return sorted(a.email for a in accounts.list_accounts(db) if a.is_admin)


# the command line

def test_list_users_shows_every_account_with_its_role_status_and_times(app):
    db = db_of(app)
    accounts.create_account(db, "ann@example.com", "admin", PASSWORD, "Ann Admin")
    accounts.create_account(db, "vic@example.com", "viewer", PASSWORD, "Vic Viewer")
    accounts.verify(db, "ann@example.com", PASSWORD)
    accounts.disable_account(db, "vic@example.com")
    listed = cli(app)("list-users")
    assert listed.exit_code == 0, listed.output
    head, ann, vic = listed.output.splitlines()
    assert head.split() == ["email", "name", "role", "status", "created", "(UTC)", "last", "sign-in", "(UTC)"]
    assert ann.split()[:5] == ["ann@example.com", "Ann", "Admin", "admin", "enabled"] and "never" not in ann
    assert vic.split()[:5] == ["vic@example.com", "Vic", "Viewer", "viewer", "disabled"] and vic.endswith("never")
    created = accounts.get_account(db, "ann@example.com").created_at
    assert f"{created:%Y-%m-%d %H:%M}" in ann


def test_list_users_with_no_accounts_says_how_to_make_one(app):
    listed = cli(app)("list-users")
    assert listed.exit_code == 0 and "create-user" in listed.output


def test_enable_user_and_set_role_change_one_account_and_say_so(app):
    db, run = db_of(app), cli(app)
    accounts.create_account(db, "ann@example.com", "admin", PASSWORD)
    accounts.create_account(db, "vic@example.com", "viewer", PASSWORD)
    assert run("disable-user", "Vic@Example.com").output == "Disabled vic@example.com; its sign-ins have ended\n"
    assert run("disable-user", "vic@example.com").output == "vic@example.com is disabled already\n"
    assert accounts.verify(db, "vic@example.com", PASSWORD) is None
    enabled = run("enable-user", "vic@example.com")
    assert (enabled.exit_code, enabled.output) == (0, "Enabled vic@example.com\n")
    assert run("enable-user", "vic@example.com").output == "vic@example.com is enabled already\n"
    assert accounts.verify(db, "vic@example.com", PASSWORD).role == "viewer"  # the same password works again
    promoted = run("set-role", "vic@example.com", "admin")
    assert (promoted.exit_code, promoted.output) == (0, "vic@example.com is now an admin\n")
    assert run("set-role", "vic@example.com", "admin").output == "vic@example.com is an admin already\n"
    assert run("set-role", "ann@example.com", "viewer").output == "ann@example.com is now a viewer\n"
    assert enabled_admins(db) == ["vic@example.com"]
    # each change is recorded with who made it; "already" changes nothing and records nothing
    changes = [(c["action"], c["account"], c["actor"]) for c in reversed(accounts.recent_changes(db))]
    assert changes == [("create", "ann@example.com", None), ("create", "vic@example.com", None),
                       ("disable", "vic@example.com", "cli"), ("enable", "vic@example.com", "cli"),
                       ("set-role", "vic@example.com", "cli"), ("set-role", "ann@example.com", "cli")]


@pytest.mark.parametrize(("args", "message"), [
    (("enable-user", "nobody@example.com"), "Error: no account for nobody@example.com\n"),
    (("disable-user", "nobody@example.com"), "Error: no account for nobody@example.com\n"),
    (("set-role", "nobody@example.com", "viewer"), "Error: no account for nobody@example.com\n"),
    (("set-role", "vic@example.com", "owner"), "Error: role must be viewer or admin, got 'owner'\n"),
    (("set-role", "not an email", "admin"), "Error: not an email address: 'not an email'\n"),
])
def test_a_bad_email_or_role_is_one_line_a_failure_and_writes_nothing(app, args, message):
    db = db_of(app)
    accounts.create_account(db, "vic@example.com", "viewer", PASSWORD)
    before = snapshot(db)
    result = cli(app)(*args)
    assert (result.exit_code, result.output) == (1, message)
    assert snapshot(db) == before


def test_no_command_leaves_the_system_without_an_enabled_admin(app):
    db, run = db_of(app), cli(app)
    accounts.create_account(db, "ann@example.com", "admin", PASSWORD)
    accounts.create_account(db, "old@example.com", "admin", PASSWORD)
    assert run("disable-user", "old@example.com").exit_code == 0  # a disabled admin does not count
    before = snapshot(db)
    for args in (("disable-user", "ann@example.com"), ("set-role", "ann@example.com", "viewer")):
        refused = run(*args)
        assert refused.exit_code == 1
        assert refused.output == ("Error: ann@example.com is the last enabled admin: make another account an admin "
                                  "first\n")
    assert snapshot(db) == before
    assert run("set-role", "old@example.com", "viewer").exit_code == 0  # not an enabled admin: allowed
    assert run("enable-user", "old@example.com").exit_code == 0
    assert run("set-role", "old@example.com", "admin").exit_code == 0
    assert run("set-role", "ann@example.com", "viewer").exit_code == 0  # another admin now: allowed
    assert enabled_admins(db) == ["old@example.com"]


def test_disabling_ends_the_accounts_sign_ins_and_enabling_lets_it_sign_in_again(app):
    db, run = db_of(app), cli(app)
    signed_in(app, "admin", "ann@example.com")
    vic = signed_in(app, "viewer", "vic@example.com")
    assert db.staff_sessions.count_documents({"email": "vic@example.com"}) == 1
    assert run("disable-user", "vic@example.com").exit_code == 0
    assert db.staff_sessions.count_documents({"email": "vic@example.com"}) == 0
    app.extensions["caches"].sessions.max_age = 0  # sign-ins are re-checked every few seconds; a test does not wait
    assert vic.get("/_dash-layout").status_code == 401
    assert vic.post("/login", data={"email": "vic@example.com", "password": PASSWORD}).status_code == 401
    assert run("enable-user", "vic@example.com").exit_code == 0
    assert vic.post("/login", data={"email": "vic@example.com", "password": PASSWORD}).status_code == 302
    assert vic.get("/_dash-layout").status_code == 200


@pytest.mark.parametrize("changes", [("viewer", "viewer"), ("disable", "disable"), ("viewer", "disable")])
def test_two_changes_at_once_that_each_remove_one_of_the_last_two_admins_one_succeeds(app, changes):
    db = db_of(app)
    accounts.create_account(db, "a@example.com", "admin", PASSWORD)
    accounts.create_account(db, "b@example.com", "admin", PASSWORD)
    start, results = threading.Barrier(2), {}

    def change(email, what):
        start.wait()
        try:
            if what == "disable":
                results[email] = accounts.disable_account(db, email, "race")
            else:
                results[email] = accounts.set_role(db, email, what, "race")
        except accounts.LastAdminError as error:
            results[email] = error

    threads = [threading.Thread(target=change, args=pair) for pair in zip(("a@example.com", "b@example.com"), changes,
                                                                          strict=True)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert sorted(type(r).__name__ for r in results.values()) == ["LastAdminError", "bool"]
    [winner] = [email for email, result in results.items() if result is True]
    assert len(enabled_admins(db)) == 1 and winner not in enabled_admins(db)
    assert [c["account"] for c in accounts.recent_changes(db) if c["actor"] == "race"] == [winner]


def test_a_change_that_removes_an_admin_writes_every_enabled_admin_so_two_such_changes_conflict(app):
    """The embedded engine runs one transaction at a time; MongoDB's snapshots would let two
    changes each count the other's admin (write skew) unless they write the same documents."""
    db = db_of(app)
    for email in ("a@example.com", "b@example.com", "c@example.com"):
        accounts.create_account(db, email, "admin", PASSWORD)
    accounts.set_role(db, "c@example.com", "admin")  # nothing to change: nothing written
    accounts.disable_account(db, "c@example.com")  # writes a, b and c
    accounts.set_role(db, "a@example.com", "viewer")  # writes a and b: c is no enabled admin now
    accounts.enable_account(db, "c@example.com")  # adds an admin: writes c only
    guards = {doc["_id"]: doc.get("adminGuard") for doc in db.staff_accounts.find()}
    assert guards == {"a@example.com": 2, "b@example.com": 2, "c@example.com": 1}


# the page

def press(client, app, output: str, values: dict, trigger: str | None = None, pressed: dict | None = None):
    """Post the callback that writes `output`, as the browser does when `trigger` (or a row's button) changed."""
    dash_app = app.extensions["dash"]
    body = callback_body(dash_app, callback_key(dash_app, output), values, [trigger] if trigger else [])
    if output == f"{staff.ADD_ERROR}.children":  # the rows' buttons: one list of those drawn
        body["inputs"][0] = [{"id": {"type": staff.ACTION, **pressed}, "property": "n_clicks", "value": 1}] if pressed \
            else []
    if pressed:
        body["changedPropIds"] = [json.dumps({**pressed, "type": staff.ACTION}, sort_keys=True,
                                             separators=(",", ":")) + ".n_clicks"]
    return client.post("/_dash-update-component", json=body)


def review_row(client, app, email: str, action: str):
    return press(client, app, f"{staff.ADD_ERROR}.children", {}, pressed={"email": email, "action": action})


def review_new(client, app, email, name="", role="viewer"):
    return press(client, app, f"{staff.ADD_ERROR}.children", {f"{staff.REVIEW}.n_clicks": 1, f"{staff.EMAIL}.value": email,
                                                              f"{staff.NAME}.value": name, f"{staff.ROLE_CHOICE}.value": role},
                 f"{staff.REVIEW}.n_clicks")


def confirm(client, app, pending, trigger=staff.CONFIRM):
    return press(client, app, f"{staff.CHANGED}.data", {f"{trigger}.n_clicks": 1, f"{staff.PENDING}.data": pending},
                 f"{trigger}.n_clicks")


def load(client, app, state=None):
    return press(client, app, f"{staff.TABLE}.children", {f"{staff.INTERVAL}.n_intervals": 1,
                                                          f"{staff.STATE}.data": state or {}},
                 f"{staff.INTERVAL}.n_intervals")


def response(reply) -> dict:
    assert reply.status_code == 200, reply.data
    return reply.get_json()["response"]


def dumps(value) -> str:
    return json.dumps(value, ensure_ascii=False, default=str)


def test_adding_an_account_is_reviewed_then_shows_its_password_once(app):
    db = db_of(app)
    admin = signed_in(app, "admin", "ann@example.com")
    before = snapshot(db)
    reviewed = response(review_new(admin, app, " New@Example.com ", "Nina New", "admin"))
    assert reviewed[staff.CONFIRM_BOX]["className"] == "panel confirm" and reviewed[staff.ADD_ERROR]["children"] == ""
    assert "Nina New" in dumps(reviewed[staff.CONFIRM_TEXT]) and "as an admin" in dumps(reviewed[staff.CONFIRM_TEXT])
    pending = reviewed[staff.PENDING]["data"]
    assert pending == {"email": "new@example.com", "action": "create", "name": "Nina New", "role": "admin"}
    assert snapshot(db) == before  # a review writes nothing

    made = response(confirm(admin, app, pending))
    password = made[staff.PASSWORD]["children"]
    assert len(password) >= accounts.MIN_PASSWORD and "hidden" not in made[staff.CREATED_BOX]["className"]
    assert [name for name, value in made.items() if password in dumps(value)] == [staff.PASSWORD]
    assert (made[staff.EMAIL]["value"], made[staff.NAME]["value"], made[staff.ROLE_CHOICE]["value"]) == ("", "", "viewer")
    assert made[staff.PENDING]["data"] is None and "hidden" in made[staff.CONFIRM_BOX]["className"]
    assert accounts.verify(db, "new@example.com", password).role == "admin"
    assert db.staff_accounts.find_one({"_id": "new@example.com"})["createdBy"] == "ann@example.com"
    # the table and the history name it, never the password
    shown = response(load(admin, app))
    assert password not in dumps(shown) and "new@example.com" in dumps(shown[staff.TABLE])
    assert "Added new@example.com as an admin by Admin Tester (ann@example.com)" in dumps(shown[staff.HISTORY])
    assert shown[staff.SUMMARY]["children"] == "2 accounts: 2 enabled admins, 0 disabled. Times in UTC."
    hidden = response(confirm(admin, app, None, staff.DISMISS))
    assert password not in dumps(hidden) and "hidden" in hidden[staff.CREATED_BOX]["className"]
    # a second press after the step closed changes nothing
    assert confirm(admin, app, None).status_code == 204


@pytest.mark.parametrize(("email", "role", "message"), [
    ("", "viewer", "Enter an email address"),
    ("no-at-sign", "viewer", "Enter an email address"),
    ("ok@example.com", None, "Choose a role."),
    ("ok@example.com", "owner", "Choose a role."),
    ("Ann@example.com", "viewer", "An account for ann@example.com exists already."),
])
def test_a_bad_new_account_is_said_at_review_and_writes_nothing(app, email, role, message):
    admin = signed_in(app, "admin", "ann@example.com")
    before = snapshot(db_of(app))
    reviewed = response(review_new(admin, app, email, "", role))
    assert reviewed[staff.ADD_ERROR]["children"].startswith(message)
    assert "hidden" in reviewed[staff.CONFIRM_BOX]["className"] and reviewed[staff.PENDING]["data"] is None
    assert snapshot(db_of(app)) == before


def test_disable_enable_and_role_changes_ask_first_then_write_with_the_admin_named(app):
    db = db_of(app)
    admin = signed_in(app, "admin", "ann@example.com")
    signed_in(app, "viewer", "vic@example.com")
    reviewed = response(review_row(admin, app, "vic@example.com", "disable"))
    assert reviewed[staff.CONFIRM_BOX]["className"] == "panel confirm"
    assert "their open sessions end" in dumps(reviewed[staff.CONFIRM_TEXT])
    assert "your own account" not in dumps(reviewed[staff.CONFIRM_TEXT])
    assert not accounts.get_account(db, "vic@example.com").disabled
    back = response(press(admin, app, f"{staff.ADD_ERROR}.children", {f"{staff.BACK}.n_clicks": 1},
                          f"{staff.BACK}.n_clicks"))
    assert "hidden" in back[staff.CONFIRM_BOX]["className"] and back[staff.PENDING]["data"] is None

    done = response(confirm(admin, app, reviewed[staff.PENDING]["data"]))
    assert "vic@example.com is disabled; its sessions have ended." in dumps(done[staff.RESULT])
    assert accounts.get_account(db, "vic@example.com").disabled
    assert db.staff_sessions.count_documents({"email": "vic@example.com"}) == 0
    for action, check in (("enable", lambda a: not a.disabled), ("admin", lambda a: a.role == "admin"),
                          ("viewer", lambda a: a.role == "viewer")):
        pending = response(review_row(admin, app, "vic@example.com", action))[staff.PENDING]["data"]
        assert pending == {"email": "vic@example.com", "action": action}
        response(confirm(admin, app, pending))
        assert check(accounts.get_account(db, "vic@example.com"))
    assert [c["actor"] for c in accounts.recent_changes(db)][:4] == ["ann@example.com"] * 4
    # nothing to change: said at review
    again = response(review_row(admin, app, "vic@example.com", "viewer"))
    assert "is a viewer already" in dumps(again[staff.RESULT]) and again[staff.PENDING]["data"] is None


def test_the_last_enabled_admin_cannot_be_disabled_or_demoted_from_the_page(app):
    db = db_of(app)
    admin = signed_in(app, "admin", "ann@example.com")
    before = snapshot(db)
    for action in ("disable", "viewer"):
        refused = response(review_row(admin, app, "ann@example.com", action))
        assert "ann@example.com is the last enabled admin: make another account an admin first." in dumps(
            refused[staff.RESULT])
        assert "hidden" in refused[staff.CONFIRM_BOX]["className"]
        # and at confirm, should another admin have gone meanwhile (or the step be forged)
        forced = response(confirm(admin, app, {"email": "ann@example.com", "action": action}))
        assert "is the last enabled admin" in dumps(forced[staff.RESULT])
    assert snapshot(db) == before


def test_changing_ones_own_account_warns_first(app):
    admin = signed_in(app, "admin", "ann@example.com")
    signed_in(app, "admin", "bob@example.com")
    for action, warning in (("disable", "you will be signed out at once"), ("viewer", "you lose this page")):
        text = dumps(response(review_row(admin, app, "ann@example.com", action))[staff.CONFIRM_TEXT])
        assert "This is your own account" in text and warning in text
    table = dumps(response(load(admin, app))[staff.TABLE])
    assert "(you)" in table and table.count("(you)") == 1


def test_two_admins_demoting_each_other_at_once_through_the_page_one_succeeds(app):
    db = db_of(app)
    ann, bob = signed_in(app, "admin", "ann@example.com"), signed_in(app, "admin", "bob@example.com")
    start, replies = threading.Barrier(2), {}

    def demote(client, other):
        start.wait()
        replies[other] = dumps(response(confirm(client, app, {"email": other, "action": "viewer"}))[staff.RESULT])

    threads = [threading.Thread(target=demote, args=(ann, "bob@example.com")),
               threading.Thread(target=demote, args=(bob, "ann@example.com"))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert sorted("is now a viewer" in r for r in replies.values()) == [False, True]
    assert sorted("is the last enabled admin" in r for r in replies.values()) == [False, True]
    assert len(enabled_admins(db)) == 1


def test_a_viewer_can_neither_see_nor_change_staff(app, viewer_client):
    db = db_of(app)
    accounts.create_account(db, "ann@example.com", "admin", PASSWORD)
    before = snapshot(db)
    assert review_row(viewer_client, app, "ann@example.com", "disable").status_code == 403
    assert review_new(viewer_client, app, "sneaky@example.com", "", "admin").status_code == 403
    assert confirm(viewer_client, app, {"email": "sneaky@example.com", "action": "create", "role": "admin"}
                   ).status_code == 403
    assert load(viewer_client, app).status_code == 403
    assert snapshot(db) == before
    assert viewer_client.get(staff.PATH).status_code == 403  # the router says "Admins only"
    routed = response(press(viewer_client, app, f"{shell.CONTENT}.children", {f"{shell.URL}.pathname": staff.PATH},
                            f"{shell.URL}.pathname"))
    assert "Admins only" in dumps(routed[shell.CONTENT]) and '"Staff"' not in dumps(routed[shell.NAV])


def test_an_admin_finds_the_page_before_health_with_labelled_inputs(app, admin_client):
    routed = response(press(admin_client, app, f"{shell.CONTENT}.children", {f"{shell.URL}.pathname": staff.PATH},
                            f"{shell.URL}.pathname"))
    nav = [link["props"]["children"] for link in routed[shell.NAV]["children"]]
    assert nav.index("Staff") == nav.index("Health") - 1
    page = dumps(routed[shell.CONTENT])
    for control in (staff.EMAIL, staff.NAME):
        assert f'"htmlFor": "{control}"' in page
    assert '"children": "Role"' in page and "Legend" in page
