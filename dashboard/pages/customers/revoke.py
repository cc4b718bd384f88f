"""Revoking an owned item from the customer page (admins only): Revoke beside the item opens the
panel, Review checks the reason and shows what will happen, Confirm revokes (a double click
revokes once), Back edits, Cancel closes. The confirm step is dashboard.confirm's, as on Grant."""

import logging
from datetime import UTC, datetime

from dash import ALL, Input, Output, State, ctx, dcc, html, no_update
from dash.exceptions import PreventUpdate
from pymongo.database import Database

from core import ItemRef, NotPurchasedError, PurchaseError, ValidationError, get_audit_log, remove_purchase
from core.customers import get_customer, owned_items
from dashboard.auth import require_admin
from dashboard.callback_requests import text as as_text
from dashboard.confirm import ConfirmStep, scroll_when_shown
from dashboard.messages import shown
from dashboard.pages.customers.customer import item_title
from dashboard.pages.customers.ids import (
    BACK,
    CANCEL,
    CHANGED,
    CONFIRM,
    CONFIRM_BOX,
    CONFIRM_TEXT,
    CUSTOMER,
    FORM,
    NOTE,
    PANEL,
    PANEL_TITLE,
    REASON,
    RESULT,
    REVIEW,
    REVIEWED,
    REVOKE,
    SCROLL,
    TARGET,
    error_id,
)

REASONS = {"refund": "Refund", "chargeback": "Chargeback", "granted by mistake": "Granted by mistake",
           "other": "Other (say why in the note)"}
NOTE_MAX = 200  # core's limit for a note
FIELDS = ("item", "reason", "note")
PANEL_FIELDS = {"item": "item", "reason": "reason", "note": "note"}  # core's names -> the panel's fields
STEP = ConfirmStep(box=CONFIRM_BOX, text=CONFIRM_TEXT, confirm=CONFIRM, back=BACK, box_class="customers-confirm",
                   form=FORM, form_class="customers-form", result=RESULT, fields=FIELDS, error_id=error_id)
CLOSED = {**STEP.editing(), "panel": "panel customers-revoke hidden", "target": None, "reviewed": None}
log = logging.getLogger(__name__)


def panel_layout() -> html.Div:
    """The revoke panel, closed, with the stores it keeps its item and review time in."""
    return html.Div(children=[
        dcc.Store(id=TARGET, data=None),
        dcc.Store(id=REVIEWED, data=None),
        html.Section(id=PANEL, className="panel customers-revoke hidden", children=[
            html.H2(id=PANEL_TITLE, children="Revoke"),
            html.P(id=error_id("item"), className="customers-error"),
            html.Div(id=FORM, className="customers-form", children=[
                _field("Reason", "reason", dcc.RadioItems(
                    id=REASON, className="customers-choices", value=None,
                    options=[{"label": label, "value": value} for value, label in REASONS.items()])),
                _field("Note (required for “Other”)", "note", dcc.Textarea(
                    id=NOTE, maxLength=NOTE_MAX, value="", placeholder="What happened, for the audit log")),
                html.Div(className="actions", children=[
                    html.Button("Review revocation", id=REVIEW, className="button primary", n_clicks=0),
                    html.Button("Cancel", id=CANCEL, className="button", n_clicks=0),
                ]),
            ]),
            STEP.box_layout("Confirm the revocation", "Confirm revocation", danger=True, nested=True),
        ]),
        html.Div(id=RESULT, role="status"),
        html.Span(id=SCROLL, className="hidden"),
    ])


def _field(label: str, name: str, control) -> html.Div:
    return html.Div(className="customers-field", children=[
        html.Label(label, htmlFor=control.id), control, html.P(id=error_id(name), className="customers-error"),
    ])


def read_revoke(target, reason, note) -> tuple[dict, dict]:
    """The revocation the panel asks for, and the problems with it, by field; nothing is read."""
    errors, request = {}, {"note": as_text(note).strip() or None}
    try:
        request["item"] = ItemRef.parse(target.get("item") if isinstance(target, dict) else None)
    except ValidationError:
        errors["item"] = "Choose the item to revoke: press Revoke next to it."
    if reason not in REASONS:
        errors["reason"] = "Choose a reason."
    request["reason"] = reason
    if reason == "other" and not request["note"]:
        errors["note"] = "Say why in the note: it is required when the reason is “Other”."
    elif request["note"] and len(request["note"]) > NOTE_MAX:
        errors["note"] = f"Keep the note to {NOTE_MAX} characters."
    return request, errors


def not_owned(db: Database, user_id, request: dict) -> str:
    """"Not owned any more" when the user's array no longer lists the item (one point read), else ""."""
    user = get_customer(db, user_id)
    if request["item"] in owned_items(user):
        return ""
    return (f"Not owned any more: {user.get('name') or 'this customer'} no longer has this {request['item'].kind} "
            "(someone may have just revoked it). The list below is up to date.")


def describe(db: Database, user_id, request: dict):
    """What the confirmation step says: which item, from whom, and why."""
    user = get_customer(db, user_id)
    who = f"{user.get('name') or '(no name)'} ({user.get('email') or 'no email'})"
    title = item_title(db, request["item"])
    why = REASONS[request["reason"]].split(" (")[0] + (f": {request['note']}" if request["note"] else "")
    return ["Revoke the ", request["item"].kind, " ", html.Strong(title), " from ", html.Strong(who), "? Reason: ",
            html.Strong(why), ". They lose access at once; the purchase stays in the timeline as revoked."]


def revoke(db: Database, user_id, request: dict, actor: str) -> dict:
    """The one write: core's remove_purchase, by the signed-in admin."""
    return remove_purchase(db, user_id, *request["item"].ids(), actor=actor, reason=request["reason"],
                           note=request["note"], source="admin")


def revoked_by_since(db: Database, user_id, request: dict, actor: str, reviewed) -> dict | None:
    """This admin's revocation of the item since the confirmation was shown: a double click's first press."""
    try:
        since = datetime.fromisoformat(reviewed)
    except (TypeError, ValueError):
        return None
    entries = get_audit_log(db, {"user": user_id, "item": request["item"].id, "action": "revoke", "actor": actor,
                                 "startDate": since, "limit": 1})
    return entries[0] if entries else None


def revoked_view(title: str, kind: str, name: str) -> html.Div:
    """The outcome of a revocation."""
    return html.Div(className="panel customers-success", children=[
        html.H2("Revoked"),
        html.P([f"{name} no longer has the {kind} ", html.Strong(title),
                ". The revocation is in the timeline below and in the audit log."]),
    ])


def panel_step(db: Database, trigger, user, target, reason, note, reviewed_at, actor: str) -> dict:
    """What one press in the revoke panel changes, by output name."""
    if isinstance(trigger, dict):
        return _opened(db, trigger["item"])
    if trigger == CANCEL:
        return CLOSED
    if trigger == BACK:
        return STEP.editing()
    request, errors = read_revoke(target, reason, note)
    if errors:
        return STEP.refused(errors)
    if trigger == REVIEW:
        return _reviewed(db, user, request)
    return _confirmed(db, user, request, actor, reviewed_at)


def _opened(db: Database, ref: str) -> dict:
    """The panel, open and empty, for the item `ref`."""
    return {**STEP.refused({}), "panel": "panel customers-revoke", "title": f"Revoke {item_title(db, ItemRef.parse(ref))}",
            "target": {"item": ref}, "reasonChoice": None, "noteText": "", "reviewed": None}


def _reviewed(db: Database, user, request: dict) -> dict:
    """The confirmation step, unless the item is no longer owned."""
    gone = not_owned(db, user, request)
    if gone:
        return STEP.refused({"item": gone})
    return {**STEP.reviewing(describe(db, user, request)), "reviewed": datetime.now(UTC).isoformat()}


def _confirmed(db: Database, user, request: dict, actor: str, reviewed_at) -> dict:
    """Revoke; a double click's second press finds this admin's own revocation and says it is done."""
    try:
        changed = str(revoke(db, user, request, actor)["_id"])
    except NotPurchasedError as error:
        mine = revoked_by_since(db, user, request, actor, reviewed_at)
        if mine is None:
            return STEP.refused({"item": not_owned(db, user, request) or shown(error).text})
        changed = str(mine["purchase"])
    name = get_customer(db, user).get("name") or "The customer"
    done = revoked_view(item_title(db, request["item"]), request["item"].kind, name)
    return {**CLOSED, **STEP.errors({}), "result": done, "changed": changed}


def register(app, db: Database) -> None:
    """The panel's one callback (every press in it), and its scroll into view when it opens."""
    outputs = {
        **STEP.outputs(), "panel": Output(PANEL, "className"), "title": Output(PANEL_TITLE, "children"),
        "target": Output(TARGET, "data"), "reasonChoice": Output(REASON, "value"), "noteText": Output(NOTE, "value"),
        "reviewed": Output(REVIEWED, "data"), "changed": Output(CHANGED, "data"),
    }
    scroll_when_shown(app, PANEL, SCROLL)

    @app.callback(
        output=outputs,
        inputs={"pressed": Input({"type": REVOKE, "item": ALL}, "n_clicks"), "review": Input(REVIEW, "n_clicks"),
                "confirm": Input(CONFIRM, "n_clicks"), "back": Input(BACK, "n_clicks"),
                "cancel": Input(CANCEL, "n_clicks")},
        state={"user": State(CUSTOMER, "data"), "target": State(TARGET, "data"), "reason": State(REASON, "value"),
               "note": State(NOTE, "value"), "reviewed_at": State(REVIEWED, "data")},
        prevent_initial_call=True,
    )
    def revoke_panel(pressed, review, confirm, back, cancel, user, target, reason, note, reviewed_at):
        """Revoke opens the panel for an item, Review checks it, Confirm revokes, Back edits, Cancel closes."""
        actor = require_admin()
        if not ctx.triggered or not ctx.triggered[0]["value"]:
            raise PreventUpdate  # the owned list was redrawn: its buttons are new, nobody pressed one
        try:
            changes = panel_step(db, ctx.triggered_id, user, target, reason, note, reviewed_at, actor)
        except PurchaseError as error:
            said = shown(error, PANEL_FIELDS)
            changes = STEP.failed(said.field, said.text)
        except Exception:  # noqa: BLE001 - logged with its traceback; the admin gets one honest line
            log.exception("revocation failed")
            changes = {"result": html.P("The revocation could not be saved; see the server log.", className="message")}
        return {**{name: no_update for name in outputs}, **changes}
