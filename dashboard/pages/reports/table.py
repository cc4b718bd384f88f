"""The list of subscriptions: what each one's send records say (pure builders, no database)."""

from dataclasses import dataclass
from datetime import datetime

from dash import html

from dashboard.display import local_time
from dashboard.messages import sentence
from dashboard.pages.reports.ids import DELETE, EDIT, GET, SEND
from reports import ledger, schedule
from reports.subscriptions import Subscription, view_text

WHEN = "%a %d %b %H:%M"


@dataclass(frozen=True)
class State:
    """One subscription's line: its status (a word and a tone), what it says, next and last send."""

    status: str
    tone: str  # "ok", "bad", "warn" or "" (css)
    detail: str
    next_send: str
    last_sent: str


def state(subscription: Subscription, records: list[dict], last: dict | None, tz, now: datetime) -> State:
    """What the page says of `subscription`, from its latest send records (newest period first)."""
    latest = records[0] if records else None
    slot, period = schedule.next_slot(subscription.schedule, tz, now)
    next_send = f"{local_time(slot, tz, WHEN)} ({period.label})"
    due = schedule.due_period(subscription.schedule, tz, now, since=subscription.since)
    if due is not None and not any(r["_id"] == ledger.record_key(subscription.id, due) for r in records):
        next_send = f"Due now: {due.label}, at the next check"
    last_sent = f"{local_time(last['sentAt'], tz, WHEN)} ({last['period']['label']})" if last else "Never"
    if latest is None:
        return State("Waiting", "", "Nothing sent yet.", next_send, last_sent)
    label, error = latest["period"]["label"], sentence(latest["lastError"]) if latest.get("lastError") else ""
    attempts = latest.get("attempts", 0)
    if latest["status"] == "sending" and ledger.in_progress(latest, now):
        return State("Sending…", "", f"{label}: being sent now.", next_send, last_sent)
    if latest["status"] == "sending" and latest.get("phase") == "preparing":
        return State("Failed, will retry", "bad", f"{label}: the process sending it stopped; the next check tries "
                     "again.", next_send, last_sent)
    if latest["status"] in ("unknown", "sending"):
        why = error or "The process sending it stopped while the mail server was taking it."
        return State("May have been sent", "warn", f"{label}: {why} It is not sent again by itself: "
                     "Send now sends it again.", next_send, last_sent)
    if latest["status"] == "failed":
        retry = local_time(latest["nextTryAt"], tz, WHEN)
        return State("Failed, will retry", "bad", f"{label}: {error} Try {attempts + 1} of {ledger.MAX_ATTEMPTS} "
                     f"at {retry}.", f"Retry at {retry}", last_sent)
    if latest["status"] == "gave up":
        return State("Failed", "bad", f"{label}: {error} Gave up after {attempts} tries; Send now tries again.",
                     next_send, last_sent)
    refused = latest.get("refused") or {}
    note = f" Refused: {', '.join(f'{a} ({r})' for a, r in refused.items())}." if refused else ""
    count = len(subscription.recipients)
    return State("Sent", "ok", f"{label}, to {count} recipient{'s' * (count != 1)}.{note}", next_send, last_sent)


def subscriptions_table(rows: list[tuple[Subscription, State]], tz):
    if not rows:
        return html.P("No subscriptions yet: add one below.", className="muted")
    heads = ("Name and view", "Recipients", f"Schedule ({tz.key})", "Next send", "Last sent", "Status")
    head = html.Thead(html.Tr([html.Th(h) for h in heads] + [html.Th(html.Span("Actions", className="visually-hidden"))]))
    return html.Table(className="table", children=[head, html.Tbody([_row(s, st) for s, st in rows])])


def _row(subscription: Subscription, st: State) -> html.Tr:
    key = str(subscription.id)
    view = html.A(view_text(subscription.view), href="/" + subscription.view, title="The live page with this view")
    status = [html.Span(st.status, className=f"reports-badge {st.tone}"), html.Br(),
              html.Span(st.detail, className="reports-detail")]
    schedule_text = [schedule.describe(subscription.schedule), html.Br(),
                     html.Span(f"reports {schedule.reports_what(subscription.schedule)}", className="muted")]
    actions = html.Div(className="reports-actions", children=[
        _button("Edit", EDIT, key, subscription.name), _button("Send now", SEND, key, subscription.name),
        _button("Download", GET, key, subscription.name, "Download the email (.eml) of"),
        _button("Delete", DELETE, key, subscription.name, css="reports-delete-button")])
    cells = (("", [html.Strong(subscription.name), html.Br(), view]), ("Recipients", ", ".join(subscription.recipients)),
             ("Schedule", schedule_text), ("Next send", st.next_send), ("Last sent", st.last_sent),
             ("Status", status), ("", actions))
    return html.Tr(id=f"reports-row-{key}", children=[html.Td(value, **{"data-label": label}) for label, value in cells])


def _button(text: str, kind: str, key: str, name: str, title: str | None = None, css: str = "") -> html.Button:
    return html.Button(text, id={"type": kind, "id": key}, n_clicks=0, className=f"button {css}".strip(),
                       title=f"{title or text} {name}")
