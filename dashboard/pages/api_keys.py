"""API keys: who may call the course platform's API (/api/v1), with which scope; make and revoke them.

A key's secret exists in one callback reply, the one that made it: only its hash is kept
(api.keys), so the page cannot show it again, and nothing here logs or stores it.
"""

import hashlib
import logging
from datetime import UTC, datetime, timedelta

import pymongo
from dash import ALL, Input, Output, State, ctx, dcc, html, no_update
from dash.exceptions import PreventUpdate
from flask import request
from pymongo.errors import PyMongoError

from api.keys import SCOPES, ApiKey, ApiKeyError, create_key, list_keys, revoke_key
from core.storage import retry_when_busy, utc
from core.storage.schema import USERS
from dashboard.accounts import STAFF_NAMES
from dashboard.auth import require_admin
from dashboard.callback_requests import mapping, text
from dashboard.confirm import ConfirmStep, scroll_when_shown
from dashboard.context import DashboardContext
from dashboard.display import local_time
from dashboard.messages import failure, sentence, shown

PATH = "/api-keys"
TITLE = "API keys"
NAV = "API keys"
ROLE = "admin"

# ids: "admin-" for what a writing callback outputs to (the server refuses those to viewers)
NAME = "admin-apikeys-name"
SCOPE = "admin-apikeys-scope"
CREATE = "apikeys-create"
CREATE_ERROR = "admin-apikeys-create-error"
CREATED_BOX = "admin-apikeys-created-box"
CREATED_NOTE = "admin-apikeys-created-note"
SECRET = "admin-apikeys-secret"
CURL = "admin-apikeys-curl"
DISMISS = "apikeys-dismiss"
CHANGED = "admin-apikeys-changed"  # bumped by every write, so the table redraws; never holds a secret
REVOKE = "apikeys-revoke"  # the type of each active key's button: {"type": REVOKE, "name": name}
CONFIRM_BOX = "admin-apikeys-confirm-box"
CONFIRM_TEXT = "admin-apikeys-confirm-text"
CONFIRM = "apikeys-confirm"
BACK = "apikeys-back"
TARGET = "admin-apikeys-target"
REVOKE_RESULT = "admin-apikeys-revoke-result"
SCROLL = "apikeys-scroll"
TABLE = "apikeys-table"
SUMMARY = "apikeys-summary"
MESSAGE = "apikeys-message"
INTERVAL = "apikeys-interval"
STATE = "apikeys-state"

REFRESH_MS = 10_000  # keys made or revoked elsewhere (the CLI, another admin) show within this
POLL_TIMEOUT = 4.0
TIME = "%Y-%m-%d %H:%M"
DOCS = "/api/v1/docs"
SCOPE_LABELS = {"read": "Read: ownership checks, entitlements, purchase history and figures (GET routes)",
                "write": "Write: what read does, and recording sales and revocations (every route)"}
# read first and preselected: an admin who does not think about the scope gets the key that can
# change nothing, and a program that needed write says so at once (403) instead of a write key
# quietly handed to a program that only reads
DEFAULT_SCOPE = "read"
LIST_FAILED = "Could not list the keys; see the server log."
log = logging.getLogger(__name__)


def layout(path: str = PATH) -> html.Div:
    """The page; the table arrives with the first poll."""
    return html.Div(className="apikeys", children=[
        html.Div(className="topbar", children=[html.H1(TITLE)]),
        html.P(["Keys let the course platform and other programs call the purchases API: a read key checks what a "
                "customer owns, a write key also records sales and refunds. Give each program its own key, so one can "
                "be revoked without stopping the others. What the API offers: ",
                # a new tab: leaving this page would lose a key that is on screen
                html.A("the API docs", href=DOCS, target="_blank", rel="noopener"), "."],
               className="muted apikeys-intro"),
        _form(),
        _created_box(),
        html.Section(className="panel apikeys-keys", children=[
            html.H2("Keys"),
            html.P(id=SUMMARY, className="muted", children="Loading…"),
            html.Div(id=MESSAGE, className="message hidden", role="alert"),
            html.Div(id=REVOKE_RESULT, role="status"),
            ConfirmStep(CONFIRM_BOX, CONFIRM_TEXT, CONFIRM, BACK, "apikeys-confirm").box_layout(
                "Confirm the revocation", "Confirm revocation", danger=True, nested=True),
            html.Div(id=TABLE, className="apikeys-table"),
        ]),
        dcc.Store(id=TARGET, data=None),  # memory: the name of the key being revoked
        dcc.Store(id=CHANGED, data=None),
        dcc.Store(id=STATE, data={}),
        dcc.Interval(id=INTERVAL, interval=REFRESH_MS),
        html.Span(id=SCROLL, className="hidden"),
    ])


def _form() -> html.Section:
    return html.Section(className="panel apikeys-form", children=[
        html.H2("Create a key"),
        html.Div(className="field", children=[
            html.Label("Name", htmlFor=NAME),
            dcc.Input(id=NAME, type="text", maxLength=64, placeholder="course-platform-prod", autoComplete="off",
                      className="apikeys-name"),
            html.P("Letters, digits, '.', '_' or '-'. A name is never used again, even after its key is revoked.",
                   className="muted"),
        ]),
        html.Fieldset(className="field", children=[  # the legend names the radio group
            html.Legend("Scope"),
            dcc.RadioItems(id=SCOPE, className="choices", value=DEFAULT_SCOPE,
                           options=[{"label": SCOPE_LABELS[s], "value": s} for s in SCOPES]),
        ]),
        html.Div(className="actions", children=[
            html.Button("Create key", id=CREATE, className="button primary", n_clicks=0),
            html.P(id=CREATE_ERROR, className="field-error apikeys-error", role="alert"),
        ]),
    ])


def _created_box() -> html.Section:
    return html.Section(id=CREATED_BOX, className="panel apikeys-created hidden", children=[
        html.H2("Copy this key now: it will not be shown again"),
        html.P(id=CREATED_NOTE),
        html.Div(className="apikeys-secret-row", children=[
            html.Code(id=SECRET, className="apikeys-secret"),
            dcc.Clipboard(target_id=SECRET, title="Copy the key", children="Copy key", copied_children="Copied",
                          className="button apikeys-copy"),
        ]),
        html.P("Try it (any customer's id works):", className="muted"),
        html.Div(className="apikeys-secret-row", children=[
            html.Pre(id=CURL, className="apikeys-curl"),
            dcc.Clipboard(target_id=CURL, title="Copy the command", children="Copy command", copied_children="Copied",
                          className="button apikeys-copy"),
        ]),
        html.Button("I have saved it: hide the key", id=DISMISS, className="button", n_clicks=0),
    ])


def keys_table(keys: list[ApiKey], tz, who=lambda actor: actor or "unknown"):
    """Every key, in the order given; active ones get a Revoke button. Never a secret: ApiKey has none."""
    if not keys:
        return html.P("No keys yet.", className="muted")
    # the buttons' column is named for screen readers; its buttons say what they do
    head = html.Thead(html.Tr([html.Th(h) for h in ("Name", "Scope", "Key starts", f"Created ({tz.key})", "Status")]
                              + [html.Th(html.Span("Actions", className="visually-hidden"))]))
    return html.Table(className="table", children=[head, html.Tbody([_row(key, tz, who) for key in keys])])


def _row(key: ApiKey, tz, who) -> html.Tr:
    created = [local_time(key.created_at, tz, TIME), html.Br(), f"by {who(key.created_by)}"]
    if key.active:
        status = html.Span("Active", className="apikeys-badge active")
        action = html.Button("Revoke", id={"type": REVOKE, "name": key.name}, n_clicks=0, title=f"Revoke {key.name}",
                             className="button apikeys-revoke-button")
    else:
        status = [html.Span("Revoked", className="apikeys-badge"), " ", local_time(key.revoked_at, tz, TIME),
                  html.Br(), f"by {who(key.revoked_by)}"]
        action = ""
    # the name heads its block on a phone (assets/api_keys.css): no label of its own
    cells = (("", html.Strong(key.name)), ("Scope", key.scope), ("Key starts", html.Code(key.prefix + "…")),
             ("Created", created), ("Status", status), ("", action))
    return html.Tr(id=f"apikeys-row-{key.name}", className="active" if key.active else "revoked",
                   children=[html.Td(value, **{"data-label": label}) for label, value in cells])


def summary_text(keys: list[ApiKey]) -> str:
    active = sum(key.active for key in keys)
    return f"{active} active, {len(keys) - active} revoked. Active keys first." if keys else ""


def curl_line(secret: str, host_url: str, user_id: str) -> str:
    """The command that tries a key: one customer's entitlements."""
    return (f'curl -H "Authorization: Bearer {secret}" '
            f"{host_url.rstrip('/')}/api/v1/users/{user_id}/entitlements")


def confirm_text(key: ApiKey) -> list:
    """What the confirmation step says: which key, and what revoking it does."""
    return ["Revoke the ", key.scope, " key ", html.Strong(key.name), " (", html.Code(key.prefix + "…"),
            ")? Every program using it will be refused within seconds. This cannot be undone, and the name "
            "cannot be used for a new key."]


def register(app, context: DashboardContext) -> None:
    """Wire the form, the revocation and the table to the context's database."""
    db, tz = utc(context.db), context.settings.timezone

    def who(actor) -> str:
        if actor == "cli":
            return "the command line"
        return STAFF_NAMES.label(db, actor) or "unknown"

    create_outputs = {"box": Output(CREATED_BOX, "className"), "note": Output(CREATED_NOTE, "children"),
                      "secret": Output(SECRET, "children"), "curl": Output(CURL, "children"),
                      "name": Output(NAME, "value"), "scope": Output(SCOPE, "value"),
                      "error": Output(CREATE_ERROR, "children"), "changed": Output(CHANGED, "data")}
    hidden = {"box": "panel apikeys-created hidden", "note": "", "secret": "", "curl": ""}

    @app.callback(
        output=create_outputs,
        inputs={"create": Input(CREATE, "n_clicks"), "submit": Input(NAME, "n_submit"),
                "dismiss": Input(DISMISS, "n_clicks")},
        state={"name": State(NAME, "value"), "scope": State(SCOPE, "value")},
        # a second press while the first is out would make Dash drop the first reply, the only one with the key
        running=[(Output(CREATE, "disabled"), True, False), (Output(NAME, "disabled"), True, False)],
        prevent_initial_call=True,
    )
    def create(create, submit, dismiss, name, scope):
        """Create shows the new key once and empties the form; the dismiss button hides the key."""
        actor = require_admin()
        reply = {output: no_update for output in create_outputs}
        if ctx.triggered_id == DISMISS:
            return {**reply, **hidden}
        name = text(name).strip()
        problem = "Enter a name for the key." if not name else "Choose a scope." if scope not in SCOPES else ""
        # a failure leaves a key still on screen where it is: it may not have been copied yet
        if problem:
            return {**reply, "error": problem}
        try:
            key, secret = create_key(db, name, scope, created_by=actor)
        except ApiKeyError as error:
            return {**reply, "error": sentence(shown(error).text)}
        except Exception as error:  # noqa: BLE001 - messages.failure logs what is not core's
            return {**reply, "error": failure(error, log, failed="The key could not be made; see the server log.",
                                              unanswered="The database did not answer, so the key may not have been "
                                                         "made. If the table lists it, revoke it and make another.").text}
        log.info("API key %r (%s) made by %s", key.name, key.scope, actor)
        note = ["The ", key.scope, " key ", html.Strong(key.name), ". Only its hash is kept: if it is lost, revoke it "
                "and make another."]
        return {"box": "panel apikeys-created", "note": note, "secret": secret,
                "curl": curl_line(secret, request.host_url, some_user_id(db)), "name": "", "scope": DEFAULT_SCOPE,
                "error": "", "changed": changed(key.name)}

    revoke_outputs = {"box": Output(CONFIRM_BOX, "className"), "text": Output(CONFIRM_TEXT, "children"),
                      "target": Output(TARGET, "data"), "result": Output(REVOKE_RESULT, "children"),
                      "changed": Output(CHANGED, "data", allow_duplicate=True)}

    @app.callback(
        output=revoke_outputs,
        inputs={"pressed": Input({"type": REVOKE, "name": ALL}, "n_clicks"), "confirm": Input(CONFIRM, "n_clicks"),
                "back": Input(BACK, "n_clicks")},
        state={"target": State(TARGET, "data")},
        running=[(Output(CONFIRM, "disabled"), True, False)],
        prevent_initial_call=True,
    )
    def revoke(pressed, confirm, back, target):
        """Revoke opens the confirmation for a key, Confirm revokes it, Back closes it."""
        actor = require_admin()
        if not ctx.triggered or not ctx.triggered[0]["value"]:
            raise PreventUpdate  # the table was redrawn: its buttons are new, nobody pressed one
        closed = {"box": "apikeys-confirm hidden", "text": "", "target": None, "changed": no_update}
        try:
            if ctx.triggered_id == BACK:
                return {**closed, "result": ""}
            if isinstance(ctx.triggered_id, dict):
                return review(db, ctx.triggered_id["name"], closed)
            return {**closed, **confirmed(db, target, actor)}
        except Exception as error:  # noqa: BLE001 - messages.failure logs what is not core's
            said = failure(error, log, failed="The key could not be revoked; see the server log.",
                           unanswered="The database did not answer; the key may still work. Try again.")
            return {**closed, "result": _failure(said.text)}

    @app.callback(
        output={"table": Output(TABLE, "children"), "summary": Output(SUMMARY, "children"),
                "message": Output(MESSAGE, "children"), "messageClass": Output(MESSAGE, "className"),
                "state": Output(STATE, "data")},
        inputs={"tick": Input(INTERVAL, "n_intervals"), "changed": Input(CHANGED, "data")},
        state={"state": State(STATE, "data")},
    )
    def load(tick, changed, state):
        """Every key; redrawn only when the list changed, so a Revoke button is not replaced under a click."""
        require_admin()
        try:
            with pymongo.timeout(POLL_TIMEOUT):
                keys = list_keys(db)
        except PyMongoError as error:
            # an empty state: the next answer redraws, and so clears this message
            return {"table": no_update, "summary": no_update, "message": failure(error, log, failed=LIST_FAILED).text,
                    "messageClass": "message", "state": {}}
        seen = hashlib.sha256(repr(keys).encode()).hexdigest()
        if seen == mapping(state).get("seen"):
            raise PreventUpdate
        return {"table": keys_table(keys, tz, who), "summary": summary_text(keys), "message": "",
                "messageClass": "message hidden", "state": {"seen": seen}}

    scroll_when_shown(app, CONFIRM_BOX, SCROLL)


def review(db, name: str, closed: dict) -> dict:
    """The confirmation step for `name`, unless it is gone or revoked already."""
    key = next((k for k in list_keys(db) if k.name == name), None)
    if key is None or not key.active:
        return {**closed, "result": _failure(f"The key {name!r} is not active any more."), "changed": changed(name)}
    return {"box": "apikeys-confirm", "text": confirm_text(key), "target": key.name, "result": "",
            "changed": no_update}


def confirmed(db, name, actor: str) -> dict:
    """Revoke `name`; a double click's second press finds this admin's own revocation and says it is done."""
    try:
        key = revoke_key(db, name, revoked_by=actor)
    except ApiKeyError as error:
        key = next((k for k in list_keys(db) if k.name == name), None)
        recent = datetime.now(UTC) - timedelta(minutes=1)
        if key is None or key.revoked_by != actor or key.revoked_at < recent:
            return {"result": _failure(sentence(shown(error).text)), "changed": changed(name)}
    else:
        log.info("API key %r revoked by %s", key.name, actor)
    return {"result": html.Div(className="panel success apikeys-revoked", children=[
        html.H2("Revoked"),
        html.P(["The key ", html.Strong(key.name), " is revoked: every program using it is refused within seconds."]),
    ]), "changed": changed(key.name)}


def some_user_id(db) -> str:
    """A customer's id for the example command; a placeholder when there is none or the read fails."""
    try:
        with pymongo.timeout(2):
            user = retry_when_busy(lambda: db[USERS].find_one({}, {"_id": 1}))
    except Exception:  # noqa: BLE001 - the key is made: an example without a real id beats losing it
        log.warning("no customer id for the example command", exc_info=True)
        return "USER_ID"
    return str(user["_id"]) if user else "USER_ID"


def changed(name) -> dict:
    """A new value for the CHANGED store (a new value each time, so the table always hears it)."""
    return {"name": name, "at": datetime.now(UTC).isoformat()}


def _failure(text: str) -> html.P:
    return html.P(text, className="message")
