"""Staff: who may sign in, with which role; add accounts, disable or enable them, change roles.

Every change is reviewed, then confirmed, and recorded with who made it (`staff_changes`,
dashboard.accounts). A new account's password is generated and exists in one callback reply,
the one that made it. No change may leave the system without an enabled admin.
"""

import hashlib
import logging
from datetime import UTC, datetime

import pymongo
from dash import ALL, Input, Output, State, ctx, dcc, html, no_update
from dash.exceptions import PreventUpdate
from pymongo.errors import PyMongoError

from dashboard import accounts
from dashboard.accounts import ROLES, STAFF_NAMES, Account, AccountError
from dashboard.auth import require_admin
from dashboard.callback_requests import mapping, text
from dashboard.confirm import ConfirmStep, scroll_when_shown
from dashboard.context import DashboardContext
from dashboard.display import local_time
from dashboard.messages import failure, sentence, shown

PATH = "/staff"
TITLE = "Staff"
NAV = "Staff"
ROLE = "admin"

# ids: "admin-" for what a writing callback outputs to (the server refuses those to viewers)
EMAIL = "admin-staff-email"
NAME = "admin-staff-name"
ROLE_CHOICE = "admin-staff-role"
REVIEW = "staff-review"
ADD_ERROR = "admin-staff-add-error"
ACTION = "staff-action"  # the type of each row's buttons: {"type": ACTION, "email": email, "action": action}
CONFIRM_BOX = "admin-staff-confirm-box"
CONFIRM_TEXT = "admin-staff-confirm-text"
CONFIRM = "staff-confirm"
BACK = "staff-back"
PENDING = "admin-staff-pending"  # the reviewed change (never a password)
RESULT = "admin-staff-result"
CREATED_BOX = "admin-staff-created-box"
CREATED_NOTE = "admin-staff-created-note"
PASSWORD = "admin-staff-password"
DISMISS = "staff-dismiss"
CHANGED = "admin-staff-changed"  # bumped by every write, so the list redraws
TABLE = "staff-table"
SUMMARY = "staff-summary"
MESSAGE = "staff-message"
HISTORY = "staff-history"
INTERVAL = "staff-interval"
STATE = "staff-state"
SCROLL = "staff-scroll"

REFRESH_MS = 10_000  # changes made elsewhere (the CLI, another admin) show within this
POLL_TIMEOUT = 4.0
HISTORY_SHOWN = 10
TIME = "%Y-%m-%d %H:%M"
ROLE_LABELS = {"viewer": "Viewer: the dashboards (the live page, customers read-only)",
               "admin": "Admin: also grants, revocations, bulk grants, API keys, staff, the audit log and health"}
# each row's changes: what its button says, and what the account is once made ("admin" and "viewer" set the role)
ACTIONS = {"disable": "Disable", "enable": "Enable", "admin": "Make admin", "viewer": "Make viewer"}
STATES = {"disable": "disabled", "enable": "enabled", "admin": "an admin", "viewer": "a viewer"}
ROW = {"display": "flex", "flexWrap": "wrap", "alignItems": "center", "gap": "6px 16px", "padding": "8px 0",
       "borderBottom": "1px solid var(--line)", "fontSize": "0.9rem"}
H2 = {"fontSize": "1.05rem", "margin": "0 0 8px"}
WARN = {"marginTop": "12px", "border": "2px solid #f59e0b", "background": "var(--warn-bg)"}  # as a new API key's box
log = logging.getLogger(__name__)


def layout(path: str = PATH) -> html.Div:
    """The page; the accounts arrive with the first poll."""
    return html.Div(className="staff", style={"maxWidth": "1100px"}, children=[
        html.Div(className="topbar", children=[html.H1(TITLE)]),
        html.P("Who may sign in to this dashboard. Viewers see the dashboards; admins also change access and "
               "manage staff. A disabled account cannot sign in and its open sessions end; it can be enabled again. "
               "There is always at least one enabled admin.", className="muted", style={"maxWidth": "760px"}),
        _form(),
        html.Section(id=CREATED_BOX, className="panel hidden", style=WARN, children=[
            html.H2("Copy this password now: it will not be shown again", style=H2),
            html.P(id=CREATED_NOTE),
            html.Div(className="actions", children=[
                html.Code(id=PASSWORD, style={"fontSize": "1rem", "fontWeight": 600, "overflowWrap": "anywhere"}),
                dcc.Clipboard(target_id=PASSWORD, title="Copy the password", children="Copy password",
                              copied_children="Copied", className="button"),
            ]),
            html.Button("I have passed it on: hide the password", id=DISMISS, className="button", n_clicks=0),
        ]),
        html.Section(className="panel", style={"marginTop": "12px"}, children=[
            html.H2("Accounts", style=H2),
            html.P(id=SUMMARY, className="muted", children="Loading…"),
            html.Div(id=MESSAGE, className="message hidden", role="alert"),
            html.Div(id=RESULT, role="status"),
            ConfirmStep(CONFIRM_BOX, CONFIRM_TEXT, CONFIRM, BACK, "panel confirm").box_layout("Confirm the change",
                                                                                              "Confirm"),
            html.Div(id=TABLE),
        ]),
        html.Section(className="panel", style={"marginTop": "12px"}, children=[
            html.H2("Recent changes", style=H2),
            html.Div(id=HISTORY),
        ]),
        dcc.Store(id=PENDING, data=None),
        dcc.Store(id=CHANGED, data=None),
        dcc.Store(id=STATE, data={}),
        dcc.Interval(id=INTERVAL, interval=REFRESH_MS),
        html.Span(id=SCROLL, className="hidden"),
    ])


def _form() -> html.Section:
    def field(label, control_id, control, note=None):
        return html.Div(className="field", children=[html.Label(label, htmlFor=control_id), control,
                                                     *([html.P(note, className="muted")] if note else [])])

    return html.Section(className="panel", style={"marginTop": "12px"}, children=[
        html.H2("Add an account", style=H2),
        field("Email", EMAIL, dcc.Input(id=EMAIL, type="email", maxLength=254, autoComplete="off",
                                        placeholder="ann@example.com", style={"maxWidth": "420px"})),
        field("Name (optional)", NAME, dcc.Input(id=NAME, type="text", maxLength=200, autoComplete="off",
                                                 style={"maxWidth": "420px"}),
              "Shown in the header and next to what the account does."),
        html.Fieldset(className="field", style={"border": 0, "padding": 0, "margin": "0 0 10px"}, children=[
            html.Legend("Role", style={"fontSize": "0.8rem", "fontWeight": 600, "color": "var(--muted)",
                                       "padding": 0, "marginBottom": "4px"}),
            dcc.RadioItems(id=ROLE_CHOICE, className="choices", value="viewer",
                           options=[{"label": ROLE_LABELS[role], "value": role} for role in ROLES]),
        ]),
        html.Div(className="actions", children=[
            html.Button("Review the new account", id=REVIEW, className="button", n_clicks=0),
            html.P(id=ADD_ERROR, className="field-error", role="alert"),
        ]),
    ])


def accounts_list(found: list[Account], me: str, tz) -> html.Ul | html.P:
    """Every account with its buttons, the signed-in admin's own marked: one line each where there
    is room, stacked on a phone (flex rows that wrap, so no column is out of sight)."""
    if not found:
        return html.P("No accounts.", className="muted")
    return html.Ul([_row(a, a.email == me, tz) for a in found], **{"aria-label": "Staff accounts"},
                   style={"listStyle": "none", "margin": 0, "padding": 0})


def _row(account: Account, mine: bool, tz) -> html.Li:
    seen = local_time(account.last_sign_in, tz, TIME) if account.last_sign_in else "never"
    created = local_time(account.created_at, tz, TIME) if account.created_at else "unknown"
    status = html.Strong("Disabled", style={"color": "var(--down)"}) if account.disabled else "Enabled"
    blocks = [
        ("1 1 300px", [html.Strong(account.name), " (you)" if mine else "", html.Br(),
                       html.Span(account.email, style={"overflowWrap": "anywhere"})]),
        ("1 1 140px", [account.role.title(), " · ", status]),
        ("1 1 220px", html.Span([f"Last sign-in: {seen}", html.Br(), f"Created: {created}"], className="muted")),
        ("0 0 210px", html.Div([_button(account, "enable" if account.disabled else "disable"),
                                _button(account, "viewer" if account.role == "admin" else "admin")],
                               className="actions")),
    ]
    return html.Li(id=f"staff-row-{account.email}", style=ROW, children=[
        html.Div(content, style={"flex": flex, "minWidth": 0}) for flex, content in blocks])


def _button(account: Account, action: str) -> html.Button:
    label = ACTIONS[action]
    return html.Button(label, id={"type": ACTION, "email": account.email, "action": action}, n_clicks=0,
                       className="button", title=f"{label}: {account.email}", **{"aria-label": f"{label} {account.email}"})


def summary_text(found: list[Account], tz) -> str:
    admins, disabled = sum(a.is_admin for a in found), sum(a.disabled for a in found)
    return f"{len(found)} accounts: {admins} enabled admin{'s' * (admins != 1)}, {disabled} disabled. Times in {tz.key}."


def history_list(changes: list[dict], tz, who) -> html.Ul | html.P:
    """The last changes, newest first: when, what, by whom."""
    if not changes:
        return html.P("No changes recorded yet.", className="muted")
    return html.Ul([html.Li(f"{local_time(c['at'], tz, TIME)} · {_did(c)} {who(c.get('actor'))}")
                    for c in changes[:HISTORY_SHOWN]],
                   style={"margin": 0, "paddingLeft": "18px", "fontSize": "0.85rem", "overflowWrap": "anywhere"})


def _did(change: dict) -> str:
    account, role = change.get("account", "?"), change.get("role")
    article = "an" if role == "admin" else "a"
    return {"create": f"Added {account} as {article} {role}", "disable": f"Disabled {account}",
            "enable": f"Enabled {account}", "set-role": f"Made {account} {article} {role}"}.get(change.get("action"), "")


def describe(change: dict, target: Account | None, me: str) -> list:
    """What the confirmation step says: the change, what it does, and a warning about one's own account."""
    email, action = change["email"], change["action"]
    if action == "create":
        name = change.get("name") or email.split("@")[0]
        return [html.P(["Add ", html.Strong(name), f" ({email}) as {'an' if change['role'] == 'admin' else 'a'} "
                        f"{change['role']}?"]),
                html.P("A password is generated and shown once, here: pass it on, and ask them to change it.")]
    who = [html.Strong(target.name), f" ({email})"]
    says = {"disable": (["Disable "] + who + ["?"], "They can no longer sign in, and their open sessions end "
                        "(within seconds everywhere)."),
            "enable": (["Enable "] + who + ["?"], "They can sign in again with their password (a new one: "
                       "flask --app app set-password EMAIL)."),
            "admin": (["Make "] + who + [" an admin?"], "They can then grant and revoke access and manage API keys "
                      "and staff."),
            "viewer": (["Make "] + who + [" a viewer?"], "They keep the dashboards and lose the admin pages.")}
    question, effect = says[action]
    parts = [html.P(question), html.P(effect)]
    if email == me and action in ("disable", "viewer"):
        parts.append(html.P("This is your own account: " + (
            "you will be signed out at once, and only another admin can enable it again." if action == "disable"
            else "you lose this page and every admin page within seconds."), className="message"))
    return parts


def review_problem(change: dict, target: Account | None, found: list[Account]) -> str:
    """Why the change cannot be made ("" when it can): gone, nothing to change, or the last admin."""
    if target is None:
        return f"There is no account for {change['email']} any more."
    action = change["action"]
    already = {"disable": target.disabled, "enable": not target.disabled, "admin": target.role == "admin",
               "viewer": target.role == "viewer"}[action]
    if already:
        return f"{target.email} is {STATES[action]} already: nothing to change."
    if target.is_admin and not any(a.is_admin for a in found if a.email != target.email):
        return f"{target.email} is the last enabled admin: make another account an admin first."
    return ""


def apply(db, change: dict, actor: str) -> tuple[str, str | None]:
    """Make the reviewed change: (what was done, the new password if an account was added)."""
    email, action = change["email"], change["action"]
    if action == "create":
        password = accounts.generate_password()
        account = accounts.create_account(db, email, change.get("role"), password, text(change.get("name")) or None,
                                          actor=actor)
        return f"Added {account.email} as {'an' if account.role == 'admin' else 'a'} {account.role}.", password
    done = {"disable": lambda: accounts.disable_account(db, email, actor),
            "enable": lambda: accounts.enable_account(db, email, actor),
            "admin": lambda: accounts.set_role(db, email, "admin", actor),
            "viewer": lambda: accounts.set_role(db, email, "viewer", actor)}[action]()
    if not done:  # another admin, or the command line, got there first
        return f"{email} is {STATES[action]} already: nothing changed.", None
    return (f"{email} is disabled; its sessions have ended." if action == "disable"
            else f"{email} is now {STATES[action]}."), None


def register(app, context: DashboardContext) -> None:
    """Wire the review, the confirmation and the list to the context's database."""
    db, tz = context.db, context.settings.timezone

    def who(actor) -> str:
        if actor == "cli":
            return "from the command line"
        return f"by {STAFF_NAMES.label(db, actor)}" if actor else "(by whom was not recorded)"

    closed = {"box": "panel confirm hidden", "text": "", "pending": None}

    @app.callback(
        output={"box": Output(CONFIRM_BOX, "className"), "text": Output(CONFIRM_TEXT, "children"),
                "pending": Output(PENDING, "data"), "result": Output(RESULT, "children"),
                "error": Output(ADD_ERROR, "children")},
        inputs={"pressed": Input({"type": ACTION, "email": ALL, "action": ALL}, "n_clicks"),
                "review": Input(REVIEW, "n_clicks"), "back": Input(BACK, "n_clicks")},
        state={"email": State(EMAIL, "value"), "name": State(NAME, "value"), "role": State(ROLE_CHOICE, "value")},
        prevent_initial_call=True,
    )
    def review(pressed, review, back, email, name, role):
        """A row's button or "Review" opens the confirmation (nothing is written); Back closes it."""
        me = require_admin()
        if not ctx.triggered or not ctx.triggered[0]["value"]:
            raise PreventUpdate  # the list was redrawn: its buttons are new, nobody pressed one
        trigger = ctx.triggered_id
        if trigger == BACK:
            return {**closed, "result": "", "error": no_update}
        try:
            if trigger == REVIEW:
                return review_new(text(email), text(name).strip(), role)
            # a tuple, not the dict: a forged id may carry a list, which cannot be hashed
            if isinstance(trigger, dict) and trigger.get("action") in tuple(ACTIONS):
                change = {"email": str(trigger.get("email")), "action": trigger["action"]}
                found = accounts.list_accounts(db)
                target = next((a for a in found if a.email == change["email"]), None)
                problem = review_problem(change, target, found)
                if problem:
                    return {**closed, "result": _failure(problem), "error": ""}
                return {"box": "panel confirm", "text": describe(change, target, me), "pending": change,
                        "result": "", "error": ""}
        except PyMongoError as error:
            said = failure(error, log, failed="Nothing was changed; see the server log.",
                           unanswered="The database did not answer; nothing was changed. Try again.")
            return {**closed, "result": _failure(said.text), "error": ""}
        raise PreventUpdate

    def review_new(email: str, name: str, role) -> dict:
        try:
            change = {"email": accounts.normalise_email(email), "action": "create", "name": name[:200],
                      "role": accounts.check_role(role)}
        except AccountError:
            problem = "Enter an email address, such as ann@example.com." if role in ROLES else "Choose a role."
            return {**closed, "result": "", "error": problem}
        if accounts.get_account(db, change["email"]) is not None:
            return {**closed, "result": "", "error": f"An account for {change['email']} exists already."}
        return {"box": "panel confirm", "text": describe(change, None, ""), "pending": change, "result": "",
                "error": ""}

    write_outputs = {"box": Output(CONFIRM_BOX, "className", allow_duplicate=True),
                     "pending": Output(PENDING, "data", allow_duplicate=True),
                     "result": Output(RESULT, "children", allow_duplicate=True), "changed": Output(CHANGED, "data"),
                     "created": Output(CREATED_BOX, "className"), "note": Output(CREATED_NOTE, "children"),
                     "password": Output(PASSWORD, "children"), "email": Output(EMAIL, "value"),
                     "name": Output(NAME, "value"), "role": Output(ROLE_CHOICE, "value")}

    @app.callback(
        output=write_outputs,
        inputs={"confirm": Input(CONFIRM, "n_clicks"), "dismiss": Input(DISMISS, "n_clicks")},
        state={"pending": State(PENDING, "data")},
        # a second press while the first is out would make Dash drop the first reply, the only one with a password
        running=[(Output(CONFIRM, "disabled"), True, False)],
        prevent_initial_call=True,
    )
    def confirm(confirm, dismiss, pending):
        """Confirm makes the reviewed change; the dismiss button hides a new account's password."""
        actor = require_admin()
        reply = {output: no_update for output in write_outputs}
        if ctx.triggered_id == DISMISS:
            return {**reply, "created": "panel hidden", "note": "", "password": ""}
        change = mapping(pending)
        if change.get("action") not in (*ACTIONS, "create") or not isinstance(change.get("email"), str):
            raise PreventUpdate  # nothing reviewed (a second press after the first closed the step)
        done = {**reply, "box": "panel confirm hidden", "pending": None, "changed": changed(change)}
        try:
            said, password = apply(db, change, actor)
        except AccountError as error:
            return {**done, "result": _failure(sentence(shown(error).text))}
        except Exception as error:  # noqa: BLE001 - messages.failure logs what is not core's
            return {**done, "result": _failure(failure(
                error, log, failed="The change could not be made; see the server log.",
                unanswered="The database did not answer, so the change may not have been made: the list shows what "
                           "is. Try again if it is not there.").text)}
        log.info("staff change %s %s by %s", change["action"], change["email"], actor)
        result = html.P(said, className="panel success")
        if password is None:
            return {**done, "result": result}
        return {**done, "result": result, "created": "panel", "password": password,
                "note": ["The password of ", html.Strong(change["email"]), ". Only its hash is kept: if it is lost, "
                         "set a new one with ", html.Code("flask --app app set-password EMAIL"), "."],
                "email": "", "name": "", "role": "viewer"}

    @app.callback(
        output={"table": Output(TABLE, "children"), "summary": Output(SUMMARY, "children"),
                "history": Output(HISTORY, "children"), "message": Output(MESSAGE, "children"),
                "messageClass": Output(MESSAGE, "className"), "state": Output(STATE, "data")},
        inputs={"tick": Input(INTERVAL, "n_intervals"), "changed": Input(CHANGED, "data")},
        state={"state": State(STATE, "data")},
    )
    def load(tick, changed, state):
        """Every account and the last changes; redrawn only when they changed, so no button moves under a click."""
        me = require_admin()
        try:
            with pymongo.timeout(POLL_TIMEOUT):
                found, changes = accounts.list_accounts(db), accounts.recent_changes(db, HISTORY_SHOWN)
        except PyMongoError as error:
            return {"table": no_update, "summary": no_update, "history": no_update, "messageClass": "message",
                    "message": failure(error, log, failed="Could not list the accounts; see the server log.").text,
                    "state": {}}
        shown = [(a.email, a.name, a.role, a.disabled, a.last_sign_in, a.created_at) for a in found]
        seen = hashlib.sha256(repr((me, shown, [c["_id"] for c in changes])).encode()).hexdigest()
        if seen == mapping(state).get("seen"):
            raise PreventUpdate
        return {"table": accounts_list(found, me, tz), "summary": summary_text(found, tz),
                "history": history_list(changes, tz, who), "message": "", "messageClass": "message hidden",
                "state": {"seen": seen}}

    scroll_when_shown(app, CONFIRM_BOX, SCROLL)


def changed(change: dict) -> dict:
    """A new value for the CHANGED store (a new value each time, so the list always hears it)."""
    return {"email": change.get("email"), "at": datetime.now(UTC).isoformat()}


def _failure(words: str) -> html.P:
    return html.P(words, className="message")
