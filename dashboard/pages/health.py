"""The health page: do ownership arrays, purchases and rollups agree; which database, is it
reachable; the data version. The check itself runs in the background (dashboard/health.py);
this page starts one on demand and polls its state, a few point reads per tick. What the
status line says comes from the database, so it is true after a reload and on any worker.

An admin repairs from here what the CLI's `--repair` repairs: a review names what will
change, "Repair now" starts it under the check's lease (one at a time, across workers)."""

import logging
import time
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pymongo
from bson import ObjectId
from dash import Input, Output, State, ctx, dcc, html, no_update
from pymongo.errors import PyMongoError

from core import get_data_version
from core.operations import PROBLEMS, REPAIRABLE
from core.storage import is_embedded
from core.storage.schema import KINDS
from dashboard import health as checks
from dashboard.auth import require_admin
from dashboard.callback_requests import mapping
from dashboard.context import DashboardContext
from dashboard.display import cut, local_time, note, value
from dashboard.messages import TOO_SLOW, Shown, failure, shown
from dashboard.pages import customers

PATH = "/health"
TITLE = "Health"
NAV = "Health"
ROLE = "admin"

# ids; those a callback writes as an admin's action start with "admin-"
RUN = "health-run"
RUN_ANSWER = "admin-health-run-answer"  # the run-now callback's answer, shown by the poll
STATUS = "health-status"
UPDATED = "health-updated"
CONSISTENCY = "health-consistency"
ROLLUPS = "health-rollups"
ENGINE = "health-engine"
REACH = "health-reach"
VERSION = "health-version"
LAST = "health-last"
CARDS = (CONSISTENCY, ROLLUPS, LAST, ENGINE, REACH, VERSION)
PROBLEMS_PANEL = "health-problems"
INTERVAL = "health-interval"
STATE = "health-state"
REPAIR = "health-repair"
REPAIR_BOX = "admin-health-repair-box"
REPAIR_TEXT = "admin-health-repair-text"
REPAIR_REVIEW = "admin-health-repair-review"  # which check the admin reviewed
REPAIR_ANSWER = "admin-health-repair-answer"
REPAIR_CONFIRM = "health-repair-confirm"
REPAIR_CANCEL = "health-repair-cancel"

POLL_MS = 2000
PING_TIMEOUT = 1.0  # the poll must end well within its interval, even with the database gone
CLI_REPAIR = "scripts/test_hybrid_system.py --repair"
REPAIR_DOES = {
    "array_entry_without_purchase": "removed from the customer's array",
    "purchase_missing_from_array": "added to the customer's array",
    "array_not_a_list": "rebuilt as a list of the customer's purchases",
    "rollup_mismatch": "every rollup rebuilt from the purchases",
}
TIME = "%Y-%m-%d %H:%M:%S"
BOX = "panel confirm health-repair-box"
log = logging.getLogger(__name__)


def card_view(text: str, detail, tone: str) -> dict:
    """What one card shows: its value, a note, and its tone (ok, bad, running, unknown, info)."""
    return {"value": text, "note": detail, "class": f"card health-card {tone}"}


def consistency_card(last: dict | None) -> dict:
    """Whether ownership arrays and purchases agree, by the last finished check."""
    if last is None:
        return card_view("Not checked yet", "Press “Run check now”.", "unknown")
    if last["status"] != "done":
        return card_view("Check failed", last.get("error", ""), "bad")
    counts = last["counts"]
    found = sum(n for name, n in counts.items() if name != "rollup_mismatch")
    if not found:
        return card_view("Consistent", "Every array entry has its purchase, and the reverse.", "ok")
    repairable = sum(counts.get(name, 0) for name in REPAIRABLE)
    hint = f"{repairable:,} repairable: press “Repair…”." if repairable else "None repairable automatically; see below."
    return card_view(f"{found:,} problem{'s' if found != 1 else ''}", hint, "bad")


def rollups_card(last: dict | None) -> dict:
    """Whether the rollups agree with a fresh aggregation of the purchases."""
    if last is None or last["status"] != "done":
        return card_view("Not checked yet" if last is None else "Unknown", "", "unknown")
    mismatches = last["counts"].get("rollup_mismatch", 0)
    if not mismatches:
        return card_view("Agree", "Rollup counters equal the purchases.", "ok")
    return card_view(f"{mismatches:,} counter{'s' if mismatches != 1 else ''} differ",
                     "“Repair…” rebuilds them.", "bad")


def last_card(status: dict, version: int | None, tz: ZoneInfo) -> dict:
    """The check running now, else the last one: when, how long, who asked, which process."""
    running, last = status["running"], status["last"]
    if running:
        since = local_time(running["since"], tz, TIME)
        doing = "Repairing…" if running.get("trigger") == "repair" else "Running…"
        return card_view(doing, f"since {since} · {_trigger(running)} · on {running['process']}", "running")
    if last is None:
        return card_view("Never", "No check has run on this database yet.", "unknown")
    detail = [f"took {last.get('durationSeconds', 0):.1f} s · {_trigger(last)} · on {last['process']}"]
    if version is not None and last.get("dataVersion") is not None and version != last["dataVersion"]:
        detail.append(html.Br())
        detail.append(f"{version - last['dataVersion']:,} change(s) to purchases since.")
    # green when the check ran: what it found is on the other cards
    return card_view(local_time(last["finishedAt"], tz, TIME), detail, "ok" if last["status"] == "done" else "bad")


def _trigger(run: dict) -> str:
    who = run.get("by") or run.get("requestedBy") or "an admin"
    if run.get("trigger") == "repair":
        return f"repair by {who}"
    return f"run by {who}" if run.get("trigger") == "manual" else "scheduled"


def engine_card(description: str, embedded: bool | None) -> dict:
    """Which database engine serves the app."""
    if embedded is None:
        engine = "Embedded mongoeco" if description.startswith("embedded") else "MongoDB"
    else:
        engine = "Embedded mongoeco" if embedded else "MongoDB"
    return card_view(engine, description, "info")


def reach_card(latency_ms: float | None, error: Shown | None) -> dict:
    """Whether the database answers a ping: how fast, or (by the error's type) why not."""
    if error is not None:
        return card_view("Too slow" if error.outage == TOO_SLOW else "Unreachable", cut(error.text, 160), "bad")
    return card_view("Reachable", f"ping {latency_ms:.1f} ms", "ok")


def version_card(version: int | None) -> dict:
    if version is None:
        return card_view("…", "", "unknown")
    return card_view(f"{version:,}", "bumped by every purchase change", "info")


def problems_table(last: dict | None, names: dict | None = None):
    """Every kind of problem with its count and a few examples; fixes where there are some."""
    if last is None:
        return html.P("No check has run yet.", className="muted")
    if last["status"] != "done":
        return html.P(f"The last check failed: {last.get('error', '')}", className="message")
    head = html.Thead(html.Tr([html.Th(h) for h in ("Problem", "Count", "Examples", "Fix")]))
    body = html.Tbody([_problem_row(name, last["counts"].get(name, 0), last["examples"].get(name, []), names or {})
                       for name in PROBLEMS])
    return html.Div(className="health-table", children=html.Table([head, body], className="table"))


def _problem_row(name: str, count: int, examples: list[dict], names: dict) -> html.Tr:
    if name in checks.REPAIRS:
        fix = ["“Repair…” above, or ", html.Code(CLI_REPAIR)]
    else:
        fix = "by hand" if count else ""
    return html.Tr(id=f"health-problem-{name}", className="bad" if count else "ok", children=[
        html.Td([html.Span(PROBLEMS[name]), html.Br(), html.Code(name, className="muted")]),
        html.Td(f"{count:,}", className="num"),
        html.Td([example_view(e, names) for e in examples]),
        html.Td(fix if count else ""),
    ])


def example_view(example: dict, names: dict) -> html.Div:
    """One example: the customer it concerns (a link to their page) and the item's title, where
    known (`names`: checks.example_names), above its raw `name=value` pairs."""
    line, user = [], example.get("user")
    if isinstance(user, ObjectId) and "user" in names:
        doc = names["user"].get(user)
        label = doc and (doc.get("name") or doc.get("email") or "(no name)")
        line += [dcc.Link(label, href=f"{customers.PATH}/{user}", className="health-customer"),
                 html.Span(f" {doc.get('email') or ''}", className="muted")] if doc else ["no such customer"]
    for kind in KINDS:
        item = example.get(kind)
        if isinstance(item, ObjectId) and kind in names:
            title = names[kind].get(item)
            line += [" · " if line else "", f"{kind} “{title}”" if title else f"{kind} not in the catalog"]
    if not line:
        return html.Div(example_text(example), className="example")
    return html.Div([html.Div(line), html.Div(example_text(example), className="muted")], className="example")


def example_text(example: dict) -> str:
    """One example of a problem, as `name=value` pairs."""
    def shown(v):
        return ", ".join(map(str, v)) if isinstance(v, list) else str(v)
    return "; ".join(f"{k}={shown(v)}" for k, v in example.items())


def repair_review(last: dict, version: int | None, tz: ZoneInfo, now: datetime) -> list:
    """What the review step says a repair will change: the counts per kind of the last check."""
    found = checks.repairable(last)
    rows = [html.Li([html.Strong(f"{n:,}"), f" × {PROBLEMS[name]}: {REPAIR_DOES[name]}."]) for name, n in found.items()]
    since = ""
    if version is not None and last.get("dataVersion") is not None and version != last["dataVersion"]:
        since = f"{version - last['dataVersion']:,} change(s) to purchases since that check. "
    return [
        html.H2("Repair"),
        html.P(f"By the check at {checks.clock(last['finishedAt'], tz, now)}, the repair changes:"),
        html.Ul(rows),
        html.P(f"{since}It checks again first and repairs what that check finds (purchases are the truth), then "
               "checks once more. Every array change goes into the audit log with you as the actor. Problems a "
               "repair cannot decide are left as they are.", className="muted"),
    ]


def layout(path: str = PATH) -> html.Div:
    """The page; every figure arrives with the first poll."""
    return html.Div(className="health", children=[
        html.Div(className="topbar", children=[
            html.H1(TITLE),
            html.Div(className="actions", children=[
                html.Span("Loading…", id=UPDATED, className="updated"),
                html.Button("Repair…", id=REPAIR, className="button hidden", n_clicks=0),
                html.Button("Run check now", id=RUN, className="button primary health-run", n_clicks=0),
            ]),
        ]),
        html.P("Loading…", id=STATUS, className="message note", role="status"),
        html.Section(id=REPAIR_BOX, className=f"{BOX} hidden", children=[
            html.Div(id=REPAIR_TEXT),
            html.Div(className="actions", children=[
                html.Button("Repair now", id=REPAIR_CONFIRM, className="button primary", n_clicks=0),
                html.Button("Cancel", id=REPAIR_CANCEL, className="button", n_clicks=0),
            ]),
        ]),
        html.H2("Status", className="visually-hidden"),
        html.Section(className="health-cards", children=[_card(title, card) for title, card in (
            ("Ownership and purchases", CONSISTENCY), ("Rollups", ROLLUPS), ("Last check", LAST),
            ("Database engine", ENGINE), ("Reachability", REACH), ("Data version", VERSION))]),
        html.Section(className="panel health-problems", children=[
            html.H2("Problems by kind"),
            html.P(["Checked: user arrays against purchases, purchases against users and the catalog, "
                    "and every rollup counter against a fresh aggregation. Repairs take ",
                    html.Code("purchases"), " as the truth."], className="muted"),
            html.Div(id=PROBLEMS_PANEL, children=html.P("Loading…", className="muted")),
        ]),
        dcc.Interval(id=INTERVAL, interval=POLL_MS),
        dcc.Store(id=STATE, data={}),
        dcc.Store(id=RUN_ANSWER, data={}),
        dcc.Store(id=REPAIR_REVIEW, data={}),
        dcc.Store(id=REPAIR_ANSWER, data={}),
    ])


def _card(title: str, card: str) -> html.Section:
    return html.Section(id=card, className="card health-card unknown", children=[
        html.H3(title), html.P("…", id=value(card), className="value"), html.P("", id=note(card), className="note"),
    ])


CARD_OUTPUTS = {name: output for card in CARDS for name, output in (
    (f"{card}.value", Output(value(card), "children")),
    (f"{card}.note", Output(note(card), "children")),
    (f"{card}.class", Output(card, "className")))}
POLL_OUTPUTS = {**CARD_OUTPUTS, "problems": Output(PROBLEMS_PANEL, "children"), "updated": Output(UPDATED, "children"),
                "state": Output(STATE, "data"), "status": Output(STATUS, "children"),
                "statusClass": Output(STATUS, "className"), "repair": Output(REPAIR, "className")}
REPAIR_OUTPUTS = {"box": Output(REPAIR_BOX, "className"), "text": Output(REPAIR_TEXT, "children"),
                  "review": Output(REPAIR_REVIEW, "data"), "answer": Output(REPAIR_ANSWER, "data")}


def poll_reply(views: dict, **values) -> dict:
    """A poll's reply: the cards given in `views` and the named outputs; the rest left as they are."""
    reply = {name: no_update for name in POLL_OUTPUTS}
    for card, view in views.items():
        reply |= {f"{card}.{part}": view[part] for part in ("value", "note", "class")}
    unknown = set(values) - set(POLL_OUTPUTS)
    if unknown:
        raise KeyError(f"not outputs of the poll: {sorted(unknown)}")
    return reply | values


def answer(notice: str | None = None, bad: bool = False) -> dict:
    """What a button's callback hands the poll: a notice to show beside the status, if any."""
    return {"notice": notice, "bad": bad, "at": datetime.now(UTC).isoformat()}


def probe(db) -> dict:
    """Ping the database (timed), ask which engine it is, and read the data version."""
    started = time.perf_counter()
    db.command("ping")
    latency = (time.perf_counter() - started) * 1000
    return {"latency": latency, "embedded": is_embedded(db), "version": get_data_version(db)}


def register(app, context: DashboardContext) -> None:
    """Wire the run-now button, the repair and the poll to the context's database."""
    db, tz = context.db, context.settings.timezone

    @app.callback(Output(RUN_ANSWER, "data"), Input(RUN, "n_clicks"), prevent_initial_call=True)
    def run_now(_):
        """Start a check in the background, unless one runs already; answers at once."""
        actor = require_admin()
        try:
            with pymongo.timeout(PING_TIMEOUT * 3):
                ticket = checks.start_check(db, actor)
        except PyMongoError as error:
            return answer(failure(error, log, failed="No check was started; see the server log.",
                                  unanswered="The database did not answer; no check was started.").text, bad=True)
        return answer(None if ticket else "One was running already: no second check was started.")

    @app.callback(output=REPAIR_OUTPUTS, inputs={"review": Input(REPAIR, "n_clicks"),
                  "confirm": Input(REPAIR_CONFIRM, "n_clicks"), "cancel": Input(REPAIR_CANCEL, "n_clicks")},
                  state={"reviewed": State(REPAIR_REVIEW, "data")}, prevent_initial_call=True)
    def repair(review, confirm, cancel, reviewed):
        """Review what a repair would change; on "Repair now", start it if the check reviewed is still the last."""
        actor = require_admin()
        closed = {"box": f"{BOX} hidden", "text": "", "review": {}, "answer": no_update}
        if ctx.triggered_id == REPAIR_CANCEL:
            return closed
        try:
            with pymongo.timeout(PING_TIMEOUT * 3):
                return _repair_step(actor, ctx.triggered_id == REPAIR_CONFIRM, mapping(reviewed).get("last"))
        except PyMongoError as error:
            said = failure(error, log, failed="Nothing was repaired; see the server log.",
                           unanswered="The database did not answer; nothing was repaired.")
            return closed | {"answer": answer(said.text, bad=True)}

    def _repair_step(actor: str, confirmed: bool, reviewed) -> dict:
        status, now = checks.status(db), datetime.now(UTC)
        last, closed = status["last"], {"box": f"{BOX} hidden", "text": "", "review": {}}
        if status["running"]:
            return closed | {"answer": answer("A check or repair is running: no repair was started. "
                                              "Its result will show here.")}
        if not checks.repairable(last):
            return closed | {"answer": answer("Nothing to repair: the last check found nothing a repair fixes.")}
        if confirmed and reviewed == str(last["_id"]):
            if checks.start_repair(db, actor, last["_id"]) is not None:
                return closed | {"answer": answer()}
            return closed | {"answer": answer("A check or repair started meanwhile: no repair was started.")}
        text = repair_review(last, get_data_version(db), tz, now)
        if confirmed:  # the review was of another check (one ran since): review again
            text.insert(1, html.P("A check ran since your review; this is what a repair does now.",
                                  className="message"))
        return {"box": BOX, "text": text, "review": {"last": str(last["_id"])}, "answer": no_update}

    @app.callback(
        output=POLL_OUTPUTS,
        inputs={"tick": Input(INTERVAL, "n_intervals"), "ran": Input(RUN_ANSWER, "data"),
                "repaired": Input(REPAIR_ANSWER, "data")},
        state={"state": State(STATE, "data")},
    )
    def poll(tick, ran, repaired, state):
        """Each tick: ping, the engine, the data version; the check's cards and the status line
        only when its state moved (or a button answered)."""
        require_admin()
        state = mapping(state)
        said = mapping({RUN_ANSWER: ran, REPAIR_ANSWER: repaired}.get(ctx.triggered_id)
                       if isinstance(ctx.triggered_id, str) else None)
        now = datetime.now(UTC)
        updated = f"Updated {local_time(now, tz)}"
        try:
            with pymongo.timeout(PING_TIMEOUT):
                found = probe(db)
                status = checks.status(db)
                last, running = status["last"], status["running"]
                key = f"{running and running['run']}|{last and last['_id']}|{last and last['status']}|{found['version']}"
                names = checks.example_names(db, last) if key != state.get("key") or said else None
        except PyMongoError as error:
            told = {"status": said["notice"], "statusClass": "message"} if isinstance(said.get("notice"), str) else {}
            return poll_reply({REACH: reach_card(None, shown(error))}, updated=updated, **told)
        views = {ENGINE: engine_card(context.description, found["embedded"]),
                 REACH: reach_card(found["latency"], None), VERSION: version_card(found["version"])}
        if names is None:
            return poll_reply(views, updated=updated)
        views |= {CONSISTENCY: consistency_card(last), ROLLUPS: rollups_card(last),
                  LAST: last_card(status, found["version"], tz)}
        line, failed = checks.status_text(status, tz, now)
        if isinstance(said.get("notice"), str):
            line, failed = f"{line} · {said['notice']}", failed or said.get("bad") is True
        tone = "message" if failed else "message note"
        repair = "button" if checks.repairable(last) and not running else "button hidden"
        return poll_reply(views, problems=problems_table(last, names), updated=updated, state={"key": key},
                          status=line, statusClass=tone, repair=repair)

