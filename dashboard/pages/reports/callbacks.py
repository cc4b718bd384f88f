"""The reports page's callbacks: the list (polled), the form (add, edit, cancel), and each row's
Send now, Download and Delete. Every one checks the admin on the server; the actor comes from
the session."""

import hashlib
import logging
from datetime import UTC, datetime

import pymongo
from dash import ALL, Input, Output, State, ctx, dcc, no_update
from dash.exceptions import PreventUpdate

from dashboard.auth import require_admin
from dashboard.callback_requests import mapping, text
from dashboard.confirm import scroll_when_shown
from dashboard.context import DashboardContext
from dashboard.messages import failure
from dashboard.pages.reports import ids, table
from dashboard.pages.reports.layout import CONFIRM_STEP, NEW_TITLE
from reports import ledger, schedule, subscriptions
from reports.render import slug, wire_bytes
from reports.service import reporter_of
from reports.subscriptions import SubscriptionError

POLL_TIMEOUT = 4.0
LIST_FAILED = "Could not list the subscriptions; see the server log."
EMPTY_FORM = {"name": "", "recipients": "", "view": "", "frequency": "daily", "at": "08:00", "weekday": 0, "day": 1}
CONFIRM_OUTPUTS = {"confirmBox": Output(ids.CONFIRM_BOX, "className"), "confirmText": Output(ids.CONFIRM_TEXT, "children")}
log = logging.getLogger(__name__)


def register(app, context: DashboardContext) -> None:
    db, tz, methods = context.db, context.settings.timezone, context.payment_methods

    @app.callback(output={"weekday": Output(ids.WEEKDAY_FIELD, "className"), "day": Output(ids.DAY_FIELD, "className"),
                          "note": Output(ids.PERIOD_NOTE, "children")},
                  inputs={"frequency": Input(ids.FREQUENCY, "value")})
    def frequency_fields(frequency):
        """The weekday for weekly, the day of the month for monthly; which period each send reports."""
        frequency = frequency if frequency in schedule.FREQUENCIES else "daily"
        what = schedule.reports_what(schedule.Schedule(frequency, datetime.min.time()))
        return {"weekday": "field" if frequency == "weekly" else "field hidden",
                "day": "field" if frequency == "monthly" else "field hidden", "note": f"Each email reports {what}."}

    form_values = {name: Output(control, "value") for name, control in (
        ("name", ids.NAME), ("recipients", ids.RECIPIENTS), ("view", ids.VIEW), ("frequency", ids.FREQUENCY),
        ("at", ids.AT), ("weekday", ids.WEEKDAY), ("day", ids.DAY))}
    form_outputs = {**form_values, **{f"{f}Error": Output(ids.error(f), "children") for f in ids.FIELDS},
                    "title": Output(ids.FORM_TITLE, "children"), "save": Output(ids.SAVE, "children"),
                    "cancel": Output(ids.CANCEL, "className"), "editing": Output(ids.EDITING, "data"),
                    "result": Output(ids.FORM_RESULT, "children"), "changed": Output(ids.CHANGED, "data")}

    @app.callback(
        output=form_outputs,
        inputs={"save": Input(ids.SAVE, "n_clicks"), "cancel": Input(ids.CANCEL, "n_clicks"),
                "edit": Input({"type": ids.EDIT, "id": ALL}, "n_clicks")},
        state={"editing": State(ids.EDITING, "data"),
               **{name: State(control.component_id, "value") for name, control in form_values.items()}},
        running=[(Output(ids.SAVE, "disabled"), True, False)],
        prevent_initial_call=True,
    )
    def edit_form(save, cancel, edit, editing, **values):
        """Save adds or changes a subscription (nothing written on a wrong field); Edit fills the form; Cancel empties it."""
        actor = require_admin()
        if isinstance(ctx.triggered_id, dict):
            if not ctx.triggered[0]["value"]:
                raise PreventUpdate  # the list was redrawn: new buttons, nobody pressed one
            return _editing(subscriptions.get(db, ctx.triggered_id["id"]))
        if ctx.triggered_id == ids.CANCEL:
            return _emptied("")
        values = {name: text(v) if name not in ("weekday", "day") else v for name, v in values.items()}
        now = datetime.now(UTC)
        try:
            if editing:
                saved = subscriptions.update(db, editing, values, methods, actor, now)
            else:
                saved = subscriptions.create(db, values, methods, actor, now)
        except SubscriptionError as error:
            return {**{k: no_update for k in form_outputs}, **_errors(error.errors), "result": "",
                    "changed": no_update}
        except Exception as error:  # noqa: BLE001 - messages.failure logs what is not ours
            said = failure(error, log, failed="The subscription could not be saved; see the server log.")
            return {**{k: no_update for k in form_outputs}, **_errors({}), "result": said.text}
        log.info("report subscription %r %s by %s", saved.name, "changed" if editing else "added", actor)
        return _emptied(f"Saved {saved.name!r}: {schedule.describe(saved.schedule)}, first email "
                        f"{_first(saved, tz, now)}.")

    action_outputs = {"result": Output(ids.RESULT, "children"), "download": Output(ids.DOWNLOAD, "data"),
                      **CONFIRM_OUTPUTS, "target": Output(ids.TARGET, "data"),
                      "changed": Output(ids.CHANGED, "data", allow_duplicate=True)}

    @app.callback(
        output=action_outputs,
        inputs={"send": Input({"type": ids.SEND, "id": ALL}, "n_clicks"),
                "get": Input({"type": ids.GET, "id": ALL}, "n_clicks"),
                "delete": Input({"type": ids.DELETE, "id": ALL}, "n_clicks"),
                "confirm": Input(ids.CONFIRM, "n_clicks"), "back": Input(ids.BACK, "n_clicks")},
        state={"target": State(ids.TARGET, "data")},
        running=[(Output(ids.BUSY, "children"), "Working…", "")],
        prevent_initial_call=True,
    )
    def act(send, get, delete, confirm, back, target):
        """Send now (in the background), Download (the .eml), Delete (after a confirmation)."""
        actor = require_admin()
        if not ctx.triggered or not ctx.triggered[0]["value"]:
            raise PreventUpdate
        reply = {k: no_update for k in action_outputs} | _closed()
        pressed = ctx.triggered_id
        if pressed == ids.BACK:
            return reply | {"result": ""}
        try:
            if pressed == ids.CONFIRM:
                gone = subscriptions.get(db, target)
                subscriptions.delete(db, target)
                log.info("report subscription %r deleted by %s", gone and gone.name, actor)
                return reply | {"result": f"Deleted {gone.name!r}." if gone else "It was deleted already.",
                                "changed": _changed()}
            subscription = subscriptions.get(db, pressed["id"])
            if subscription is None:
                return reply | {"result": "This subscription was deleted meanwhile.", "changed": _changed()}
            if pressed["type"] == ids.DELETE:
                return reply | {"confirmBox": CONFIRM_STEP.box_class, "target": str(subscription.id), "result": "",
                                "confirmText": f"Delete {subscription.name!r}? Its emails stop; the sends already "
                                               "made stay recorded."}
            reporter = reporter_of(app.server, db, context.settings)
            now = datetime.now(UTC)
            if pressed["type"] == ids.GET:
                message = reporter.latest_message(subscription, now)
                name = f"{slug(subscription.name)}-{now.astimezone(tz):%Y-%m-%d}.eml"
                return reply | {"download": dcc.send_bytes(wire_bytes(message), name, type="message/rfc822"),
                                "result": f"Downloaded {subscription.name!r}: {message['Subject']}."}
            return reply | send_now(reporter, subscription, db, now, context.settings.smtp is None)
        except Exception as error:  # noqa: BLE001 - messages.failure logs what is not ours
            return reply | {"result": failure(error, log, failed="That did not work; see the server log.").text}

    @app.callback(
        output={"table": Output(ids.TABLE, "children"), "summary": Output(ids.SUMMARY, "children"),
                "message": Output(ids.MESSAGE, "children"), "messageClass": Output(ids.MESSAGE, "className"),
                "state": Output(ids.STATE, "data")},
        inputs={"tick": Input(ids.INTERVAL, "n_intervals"), "changed": Input(ids.CHANGED, "data")},
        state={"state": State(ids.STATE, "data")},
    )
    def load(tick, changed, state):
        """Every subscription with its next and last send and its status; redrawn only when that changed."""
        require_admin()
        try:
            with pymongo.timeout(POLL_TIMEOUT):
                rows = read_rows(db, tz, datetime.now(UTC))
        except Exception as error:  # noqa: BLE001 - messages.failure logs what is not ours
            return {"table": no_update, "summary": no_update, "state": {}, "messageClass": "message",
                    "message": failure(error, log, failed=LIST_FAILED).text}
        digest = hashlib.sha256(repr(rows).encode()).hexdigest()
        if digest == mapping(state).get("seen"):
            raise PreventUpdate
        count = len(rows)
        return {"table": table.subscriptions_table(rows, tz), "summary": f"{count} subscription{'s' * (count != 1)}."
                if count else "", "message": "", "messageClass": "message hidden", "state": {"seen": digest}}

    scroll_when_shown(app, ids.CONFIRM_BOX, ids.SCROLL)


def read_rows(db, tz, now: datetime) -> list:
    """(subscription, state) of every subscription, by name."""
    return [(s, table.state(s, ledger.records_of(db, s.id), ledger.last_sent(db, s.id), tz, now))
            for s in subscriptions.every(db)]


def send_now(reporter, subscription, db, now: datetime, no_smtp: bool) -> dict:
    """Start sending the subscription's last whole period; the list shows how it went."""
    if no_smtp:
        return {"result": "Not sent: SMTP_URL is not set. Download gives the same email as a file."}
    period = schedule.period_ended_by(subscription.schedule, reporter.tz, now)
    record = db[ledger.SENDS].find_one({"_id": ledger.record_key(subscription.id, period)})
    if record is not None and record.get("status") == "sending" and ledger.in_progress(record, now):
        return {"result": f"{subscription.name!r} ({period.label}) is being sent right now."}
    reporter.send_now_in_background(subscription, now)
    return {"result": f"Sending {subscription.name!r} ({period.label}) to {', '.join(subscription.recipients)}; "
                      "the list shows when it is sent.", "changed": _changed()}


def _editing(subscription) -> dict:
    if subscription is None:
        return _emptied("This subscription was deleted meanwhile.") | {"changed": _changed()}
    return {**subscriptions.form_values(subscription), **_errors({}), "title": f"Edit {subscription.name!r}",
            "save": "Save changes", "cancel": "button", "editing": str(subscription.id), "result": "",
            "changed": no_update}


def _emptied(result: str) -> dict:
    return {**EMPTY_FORM, **_errors({}), "title": NEW_TITLE, "save": NEW_TITLE, "cancel": "button hidden",
            "editing": None, "result": result, "changed": _changed() if result else no_update}


def _errors(errors: dict) -> dict:
    return {f"{field}Error": errors.get(field, "") for field in ids.FIELDS}


def _closed() -> dict:
    return {"confirmBox": f"{CONFIRM_STEP.box_class} hidden", "confirmText": "", "target": None}


def _first(subscription, tz, now: datetime) -> str:
    when, period = schedule.next_slot(subscription.schedule, tz, now)
    return f"{when.astimezone(tz):%a %d %b %H:%M} ({period.label})"


def _changed() -> str:
    return datetime.now(UTC).isoformat()
