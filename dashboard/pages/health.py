"""The health page: do ownership arrays, purchases and rollups agree; which database, is it
reachable; the data version. The check itself runs in the background (dashboard/health.py);
this page starts one on demand and polls its state, a few point reads per tick."""

import logging
import time
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pymongo
from dash import Input, Output, State, dcc, html, no_update
from pymongo.errors import PyMongoError

from core import get_data_version
from core.operations import PROBLEMS, REPAIRABLE
from core.storage import is_embedded
from dashboard import data
from dashboard import health as checks
from dashboard.auth import require_admin
from dashboard.callback_requests import mapping
from dashboard.context import DashboardContext

PATH = "/health"
TITLE = "Health"
NAV = "Health"
ROLE = "admin"

# ids
RUN = "health-run"
RUN_MESSAGE = "admin-health-run-message"  # written by the run-now callback: an admin write
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

POLL_MS = 2000
PING_TIMEOUT = 1.0  # the poll must end well within its interval, even with the database gone
REPAIR = "scripts/test_hybrid_system.py --repair"
TIME = "%Y-%m-%d %H:%M:%S"
log = logging.getLogger(__name__)


def value(card: str) -> str:
    return f"{card}-value"


def note(card: str) -> str:
    return f"{card}-note"


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
    hint = f"{repairable:,} repairable with {REPAIR}." if repairable else "None repairable automatically; see below."
    return card_view(f"{found:,} problem{'s' if found != 1 else ''}", hint, "bad")


def rollups_card(last: dict | None) -> dict:
    """Whether the rollups agree with a fresh aggregation of the purchases."""
    if last is None or last["status"] != "done":
        return card_view("Not checked yet" if last is None else "Unknown", "", "unknown")
    mismatches = last["counts"].get("rollup_mismatch", 0)
    if not mismatches:
        return card_view("Agree", "Rollup counters equal the purchases.", "ok")
    return card_view(f"{mismatches:,} counter{'s' if mismatches != 1 else ''} differ",
                     f"Rebuild them with {REPAIR}.", "bad")


def last_card(status: dict, version: int | None, tz: ZoneInfo) -> dict:
    """The check running now, else the last one: when, how long, who asked, which process."""
    running, last = status["running"], status["last"]
    if running:
        since = data.local_time(running["since"], tz, TIME)
        return card_view("Running…", f"since {since} · {_trigger(running)} · on {running['process']}", "running")
    if last is None:
        return card_view("Never", "No check has run on this database yet.", "unknown")
    detail = [f"took {last.get('durationSeconds', 0):.1f} s · {_trigger(last)} · on {last['process']}"]
    if version is not None and last.get("dataVersion") is not None and version != last["dataVersion"]:
        detail.append(html.Br())
        detail.append(f"{version - last['dataVersion']:,} change(s) to purchases since.")
    # green when the check ran: what it found is on the other cards
    return card_view(data.local_time(last["finishedAt"], tz, TIME), detail, "ok" if last["status"] == "done" else "bad")


def _trigger(run: dict) -> str:
    if run.get("trigger") == "manual":
        return f"run by {run.get('by') or run.get('requestedBy') or 'an admin'}"
    return "scheduled"


def engine_card(description: str, embedded: bool | None) -> dict:
    """Which database engine serves the app."""
    if embedded is None:
        engine = "Embedded mongoeco" if description.startswith("embedded") else "MongoDB"
    else:
        engine = "Embedded mongoeco" if embedded else "MongoDB"
    return card_view(engine, description, "info")


def reach_card(latency_ms: float | None, error: str | None) -> dict:
    if error is not None:
        return card_view("Unreachable", error, "bad")
    return card_view("Reachable", f"ping {latency_ms:.1f} ms", "ok")


def version_card(version: int | None) -> dict:
    if version is None:
        return card_view("…", "", "unknown")
    return card_view(f"{version:,}", "bumped by every purchase change", "info")


def problems_table(last: dict | None):
    """Every kind of problem with its count and a few examples; fixes where there are some."""
    if last is None:
        return html.P("No check has run yet.", className="muted")
    if last["status"] != "done":
        return html.P(f"The last check failed: {last.get('error', '')}", className="message")
    head = html.Thead(html.Tr([html.Th(h) for h in ("Problem", "Count", "Examples", "Fix")]))
    body = html.Tbody([_problem_row(name, last["counts"].get(name, 0), last["examples"].get(name, []))
                       for name in PROBLEMS])
    return html.Div(className="health-table", children=html.Table([head, body], className="table"))


def _problem_row(name: str, count: int, examples: list[dict]) -> html.Tr:
    if name in REPAIRABLE or name == "rollup_mismatch":
        fix = html.Code(REPAIR)
    else:
        fix = "by hand" if count else ""
    return html.Tr(id=f"health-problem-{name}", className="bad" if count else "ok", children=[
        html.Td([html.Span(PROBLEMS[name]), html.Br(), html.Code(name, className="muted")]),
        html.Td(f"{count:,}", className="num"),
        html.Td([html.Div(example_text(e), className="example") for e in examples]),
        html.Td(fix if count else ""),
    ])


def example_text(example: dict) -> str:
    """One example of a problem, as `name=value` pairs."""
    def shown(v):
        return ", ".join(map(str, v)) if isinstance(v, list) else str(v)
    return "; ".join(f"{k}={shown(v)}" for k, v in example.items())


def layout(path: str = PATH) -> html.Div:
    """The page; every figure arrives with the first poll."""
    return html.Div(className="health", children=[
        html.Div(className="topbar", children=[
            html.H1(TITLE),
            html.Div(className="actions", children=[
                html.Span("Loading…", id=UPDATED, className="updated"),
                html.Button("Run check now", id=RUN, className="button primary health-run", n_clicks=0),
            ]),
        ]),
        html.Div(id=RUN_MESSAGE, className="message hidden", role="status"),
        html.Section(className="health-cards", children=[_card(title, card) for title, card in (
            ("Ownership and purchases", CONSISTENCY), ("Rollups", ROLLUPS), ("Last check", LAST),
            ("Database engine", ENGINE), ("Reachability", REACH), ("Data version", VERSION))]),
        html.Section(className="panel health-problems", children=[
            html.H3("Problems by kind"),
            html.P(["Checked: user arrays against purchases, purchases against users and the catalog, "
                    "and every rollup counter against a fresh aggregation. Repairs take ",
                    html.Code("purchases"), " as the truth."], className="muted"),
            html.Div(id=PROBLEMS_PANEL, children=html.P("Loading…", className="muted")),
        ]),
        dcc.Interval(id=INTERVAL, interval=POLL_MS),
        dcc.Store(id=STATE, data={}),
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
                "state": Output(STATE, "data")}


def poll_reply(views: dict, **values) -> dict:
    """A poll's reply: the cards given in `views` and the named outputs; the rest left as they are."""
    reply = {name: no_update for name in POLL_OUTPUTS}
    for card, view in views.items():
        reply |= {f"{card}.{part}": view[part] for part in ("value", "note", "class")}
    unknown = set(values) - set(POLL_OUTPUTS)
    if unknown:
        raise KeyError(f"not outputs of the poll: {sorted(unknown)}")
    return reply | values


def probe(db) -> dict:
    """Ping the database (timed), ask which engine it is, and read the data version."""
    started = time.perf_counter()
    db.command("ping")
    latency = (time.perf_counter() - started) * 1000
    return {"latency": latency, "embedded": is_embedded(db), "version": get_data_version(db)}


def register(app, context: DashboardContext) -> None:
    """Wire the run-now button and the poll to the context's database."""
    db, tz = context.db, context.settings.timezone

    @app.callback(
        Output(RUN_MESSAGE, "children"),
        Output(RUN_MESSAGE, "className"),
        Input(RUN, "n_clicks"),
        prevent_initial_call=True,
    )
    def run_now(_):
        """Start a check in the background, unless one runs already; answers at once."""
        actor = require_admin()
        try:
            with pymongo.timeout(PING_TIMEOUT * 3):
                ticket = checks.start_check(db, actor)
                running = None if ticket else checks.status(db)["running"]
        except PyMongoError:
            log.warning("could not start a consistency check", exc_info=True)
            return "The database did not answer; no check was started.", "message"
        if ticket is None:
            since = data.local_time(running["since"], tz, TIME) if running else "a moment ago"
            return f"A check is already running (since {since}); its result will show here.", "message note"
        return f"Check started at {data.local_time(ticket.since, tz, TIME)}.", "message note"

    @app.callback(
        output=POLL_OUTPUTS,
        inputs={"tick": Input(INTERVAL, "n_intervals"), "started": Input(RUN_MESSAGE, "children")},
        state={"state": State(STATE, "data")},
    )
    def poll(tick, started, state):
        """Each tick: ping, the engine, the data version; the check's cards only when its state moved."""
        require_admin()
        state = mapping(state)
        now = data.local_time(datetime.now(UTC), tz)
        try:
            with pymongo.timeout(PING_TIMEOUT):
                found = probe(db)
                status = checks.status(db)
        except PyMongoError as error:
            return poll_reply({REACH: reach_card(None, _short(error))}, updated=f"Updated {now}")
        views = {ENGINE: engine_card(context.description, found["embedded"]),
                 REACH: reach_card(found["latency"], None), VERSION: version_card(found["version"])}
        last, running = status["last"], status["running"]
        key = f"{running and running['run']}|{last and last['_id']}|{last and last['status']}|{found['version']}"
        if key == state.get("key"):
            return poll_reply(views, updated=f"Updated {now}")
        views |= {CONSISTENCY: consistency_card(last), ROLLUPS: rollups_card(last),
                  LAST: last_card(status, found["version"], tz)}
        return poll_reply(views, problems=problems_table(last), updated=f"Updated {now}", state={"key": key})


def _short(error: Exception) -> str:
    text = str(error).split(", Timeout:")[0]
    return text if len(text) < 160 else text[:157] + "…"
