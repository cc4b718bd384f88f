"""The bulk grant page: upload a CSV, see every row checked before anything is written, grant
the good rows as a background job, follow its progress and download its results.

The job lives in the database (core.operations.bulk), named in the page's own query string
(?job=<id>), so its progress and results survive a reload. Every callback here outputs to
"admin-bulk-" components and calls require_admin() first.
"""

import base64
import binascii
import io
import logging
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pymongo
from dash import Input, Output, State, dcc, html, no_update
from dash.exceptions import PreventUpdate
from pymongo.errors import PyMongoError

from core import PurchaseError, ValidationError
from core.operations import bulk
from dashboard import spreadsheet
from dashboard.auth import require_admin
from dashboard.context import DashboardContext, current_context
from dashboard.display import local_time, method_label
from dashboard.grids import data_grid
from dashboard.messages import failure
from dashboard.query import query_arg

PATH = "/bulk"
TITLE = "Bulk grant"
NAV = "Bulk grant"
ROLE = "admin"

URL = "admin-bulk-url"  # the page's own view of the URL: ?job=<id> names the job shown
UPLOAD = "bulk-upload"
MESSAGE = "admin-bulk-message"
UPLOAD_BOX = "bulk-upload-box"
UPLOAD_NOTE = "bulk-upload-note"
PREVIEW = "admin-bulk-preview"
PREVIEW_TITLE = "admin-bulk-preview-title"
PREVIEW_COUNTS = "admin-bulk-preview-counts"
APPLY = "admin-bulk-apply"
PREVIEW_GRID = "admin-bulk-preview-grid"
JOB = "admin-bulk-job"
JOB_TITLE = "admin-bulk-job-title"
JOB_STATUS = "admin-bulk-job-status"
PROGRESS = "admin-bulk-progress"
JOB_COUNTS = "admin-bulk-job-counts"
RESULTS = "admin-bulk-results"
RESULTS_GRID = "admin-bulk-results-grid"
RECENT = "admin-bulk-recent"
EXPORT = "bulk-export"
DOWNLOAD = "admin-bulk-download"
POLL = "admin-bulk-poll"

POLL_MS = 1000
READ_TIMEOUT = 5.0
# files up to twice the cap reach the server, which says why it refuses them; the browser drops
# bigger ones without a word (dcc.Upload reports no rejection), so the page states the limit
UPLOAD_LIMIT = bulk.MAX_BYTES * 2
EXAMPLE = ("email,item,amount,paymentMethod,note\n"
           "ada@example.com,Python for Beginners,0,admin_grant,Conference prize\n"
           "grace@example.com,Python for Beginners,49.00,bank_transfer,Paid by invoice 1042")
OUTCOME_NOTES = {"running": "This file is already being applied; its progress is below.",
                 "nothing": "Nothing left to grant: every good row of this file was granted before. Its results are below."}
ANSWER_AGAIN = "The database did not answer; try again in a moment."
log = logging.getLogger(__name__)

# the columns of both grids: the row's number and result first, what it named after
ROW = {"field": "row", "headerName": "Row", "width": 80, "filter": "agNumberColumnFilter"}
WRAPPED = {"minWidth": 250, "flex": 2, "wrapText": True, "autoHeight": True}
NAMED = [{"field": "user", "headerName": "User", "minWidth": 200, "flex": 1},
         {"field": "item", "headerName": "Item", "minWidth": 180, "flex": 1},
         {"field": "amount", "headerName": "Amount", "width": 110, "type": "rightAligned"},
         {"field": "method", "headerName": "Payment method", "width": 150}]
PREVIEW_COLUMNS = [ROW, {"field": "status", "headerName": "Status", "width": 135, "cellClass": "bulk-status-cell"},
                   {"field": "problem", "headerName": "Problem", **WRAPPED, "minWidth": 260},
                   *NAMED, {"field": "note", "headerName": "Note", "minWidth": 150}]
RESULT_COLUMNS = [ROW, {"field": "status", "headerName": "Result", "width": 140, "cellClass": "bulk-status-cell"},
                  {"field": "message", "headerName": "Message", **WRAPPED, "minWidth": 240},
                  *NAMED, {"field": "purchase", "headerName": "Purchase", "minWidth": 215, "cellClass": "mono"}]
BAD = (bulk.PROBLEM, bulk.SKIPPED, bulk.FAILED)
ROW_CLASSES = {"bulk-problem": "['problem', 'skipped', 'failed'].includes(params.data.status)",
               "bulk-earlier": "['granted earlier', 'already granted'].includes(params.data.status)",
               "bulk-ok": "['ready', 'granted'].includes(params.data.status)"}


# pure builders
def uploaded_bytes(contents: str | None) -> bytes:
    """The file's bytes from dcc.Upload's data URL; ValidationError for anything else."""
    header, _, payload = (contents or "").partition(",")
    if not header.startswith("data:") or not header.endswith(";base64"):
        raise ValidationError("The upload did not arrive as a file; choose the file again.", field="file")
    size = len(payload) * 3 // 4  # base64: 4 characters for 3 bytes
    if size > bulk.MAX_BYTES:
        raise ValidationError(f"The file has {size / 2**20:.1f} MB; at most {bulk.MAX_BYTES // 2**20} MB ({bulk.MAX_ROWS:,} "
                              "rows) can be uploaded at once. Split it into smaller files.", field="file")
    try:
        return base64.b64decode(payload, validate=True)
    except (binascii.Error, ValueError):
        raise ValidationError("The upload arrived damaged; choose the file again.", field="file") from None


def job_of(search: str | None) -> str:
    """The job id named by the page's query string, or ""."""
    return query_arg(search, "job").strip()[:64]


def preview_rows(found: bulk.Preview) -> list[dict]:
    """Grid rows of a preview: rows with problems first, each group in file order."""
    rows = [{"row": row.number, "status": row.status, "problem": row.problem, "user": row.user_text,
             "item": row.title or row.item_text, "amount": row.amount_text, "method": method_label(row.method),
             "note": row.note} for row in found.rows]
    return problems_first(rows)


def result_rows(results: list[dict]) -> list[dict]:
    """Grid rows of a job's results: failed and skipped rows first, each group in file order."""
    rows = [{"row": r["row"], "status": r["status"], "message": r["message"], "user": r["user"],
             "item": r.get("title") or r["item"], "amount": r["amount"], "method": method_label(r["paymentMethod"]),
             "purchase": str(r["purchase"]) if r.get("purchase") else ""} for r in results]
    return problems_first(rows)


def problems_first(rows: list[dict]) -> list[dict]:
    """What needs the admin's attention on the first page of the grid."""
    return sorted(rows, key=lambda row: (row["status"] not in BAD, row["row"]))


CSV_FIELDS = ("row", "user", "user_id", "item", "kind", "item_id", "title", "amount", "payment_method", "note",
              "result", "message", "purchase_id")


def results_csv(results: list[dict]) -> str:
    """A job's results as CSV: the file's own values, what they named, and each row's result."""
    out = io.StringIO()
    writer = spreadsheet.Writer(out)
    writer.writerow(CSV_FIELDS)
    for r in results:
        writer.writerow([r["row"], r["user"], r.get("userId") or "", r["item"], r.get("kind") or "",
                         r.get("itemId") or "", r.get("title") or "", r["amount"], r["paymentMethod"], r["note"],
                         r["status"], r["message"], r.get("purchase") or ""])
    return out.getvalue()


def count_chips(pairs: list[tuple[str, int, str]]) -> list:
    return [html.Span([html.Strong(f"{n:,}"), f" {label}"], className=f"bulk-chip {css}") for label, n, css in pairs]


def preview_counts(found: bulk.Preview) -> list:
    counts = found.counts
    return count_chips([("rows", len(found.rows), ""), ("ready to grant", counts[bulk.READY], "ok"),
                        ("granted earlier by this file", counts[bulk.EARLIER], "earlier"),
                        ("with problems", counts[bulk.PROBLEM], "bad")])


def job_counts(job: dict) -> list:
    counts = job["counts"]
    left = max(job["total"] - sum(counts.values()), 0)
    return count_chips([("granted", counts[bulk.GRANTED], "ok"), ("already granted", counts[bulk.ALREADY], "earlier"),
                        ("failed", counts[bulk.FAILED], "bad"), ("skipped (problems)", counts[bulk.SKIPPED], "bad"),
                        ("left", left, "")])


def progress_bar(job: dict) -> html.Div:
    done = sum(job["counts"].values())
    share = 100 if job["status"] == bulk.DONE else min(100, round(100 * done / max(job["total"], 1)))
    return html.Div(className=f"bulk-progress {job['status']}", children=[
        html.Div(className="bulk-bar", role="progressbar",
                 **{"aria-valuemin": "0", "aria-valuemax": "100", "aria-valuenow": str(share)},
                 children=html.Div(className="bulk-bar-fill", style={"width": f"{share}%"})),
        html.Span(f"{share}%", className="bulk-bar-label"),
    ])


def job_status(job: dict, tz: ZoneInfo) -> str:
    """One line: what the job is doing, who started it and when."""
    started = f"started by {job.get('startedBy') or 'unknown'} at {_when(job['startedAt'], tz)}"
    status = job["status"]
    if status == bulk.RUNNING:
        return (f"Granting, {job['processed']:,} of {job['todo']:,} rows done; {started}. "
                "It runs on the server: you may leave this page and come back.")
    if status == bulk.DONE:
        return f"Done at {_when(job['finishedAt'], tz)}; {started}."
    again = "Upload the same file and press Grant again to finish: rows already granted are not granted twice."
    if status == bulk.INTERRUPTED:
        return f"Interrupted: the app stopped while this job ran ({started}). {again}"
    return f"{job.get('error') or 'Stopped'}. {again}"


def _when(moment: datetime | None, tz: ZoneInfo) -> str:
    return local_time(moment, tz, "%Y-%m-%d %H:%M:%S %Z") if moment else "—"


# layout
def layout(path: str = PATH) -> html.Div:
    """The page: upload, preview, the job of the URL, recent jobs."""
    context = current_context()
    return html.Div(className="bulk", children=[
        dcc.Location(id=URL, refresh=False),
        html.Div(className="topbar", children=[html.H1(TITLE)]),
        _upload_panel(),
        html.Div(id=MESSAGE, className="message hidden", role="alert"),
        html.Section(id=PREVIEW, className="panel bulk-section hidden", children=[
            html.Div(className="bulk-head", children=[
                html.H2(id=PREVIEW_TITLE),
                html.Button("Grant", id=APPLY, className="button primary bulk-apply", disabled=True, n_clicks=0),
            ]),
            html.Div(id=PREVIEW_COUNTS, className="bulk-counts"),
            _grid(PREVIEW_GRID, PREVIEW_COLUMNS, "No rows."),
        ]),
        html.Section(id=JOB, className="panel bulk-section hidden", children=[
            html.Div(className="bulk-head", children=[
                html.H2(id=JOB_TITLE),
                html.Button("Download results (CSV)", id=EXPORT, className="button", n_clicks=0),
                dcc.Download(id=DOWNLOAD),
            ]),
            html.P(id=JOB_STATUS, className="bulk-status"),
            html.Div(id=PROGRESS),
            html.Div(id=JOB_COUNTS, className="bulk-counts"),
            html.Div(id=RESULTS, className="hidden", children=_grid(RESULTS_GRID, RESULT_COLUMNS, "No results yet.")),
        ]),
        html.Section(className="panel bulk-section", children=[
            html.H2("Recent jobs"),
            html.Div(id=RECENT, className="bulk-recent", children=recent_jobs(context.db, context.settings.timezone)),
        ]),
        dcc.Interval(id=POLL, interval=POLL_MS, disabled=True),
    ])


def _upload_panel() -> html.Section:
    return html.Section(className="panel bulk-section", children=[
        html.H2("Upload a CSV file"),
        html.P(["One grant per row. Columns: ", html.Code("email"), " or ", html.Code("userId"), "; ",
                html.Code("courseId"), ", ", html.Code("testId"), " or ", html.Code("item"),
                " (a title, matching exactly one course or test, any case); ", html.Code("amount"),
                " (0 for a free grant); ", html.Code("paymentMethod"), "; ", html.Code("note"), " (optional)."],
               className="muted"),
        html.Pre(EXAMPLE, className="bulk-example"),
        # assets/bulk_upload.js reads these: a file the browser will not send (over max-bytes)
        # is named in UPLOAD_NOTE, and choosing the same file again reads it again
        html.Div(id=UPLOAD_BOX, **{"data-max-bytes": str(UPLOAD_LIMIT), "data-allowed-mb": str(bulk.MAX_BYTES // 2**20)},
                 children=[
            dcc.Upload(id=UPLOAD, accept=".csv,text/csv", multiple=False, max_size=UPLOAD_LIMIT, className="bulk-drop",
                       className_active="bulk-drop active",
                       children=html.Div([html.Strong("Drop a CSV file here"), " or ",
                                          html.Span("choose one", className="bulk-choose")])),
            html.P(id=UPLOAD_NOTE, className="field-error", role="alert"),
        ]),
        html.P(f"At most {bulk.MAX_ROWS:,} rows and {bulk.MAX_BYTES // 1024 // 1024} MB. Every row is checked first; "
               "nothing is written until you press Grant. Uploading the same file again grants nothing twice.",
               className="muted"),
    ])


def _grid(ident: str, columns: list[dict], empty: str):
    return data_grid(ident, columns, empty=empty, row_id="row", row_classes=ROW_CLASSES, class_name="bulk-grid",
                     min_width=None)


def recent_jobs(db, tz: ZoneInfo):
    """The latest jobs as a table, each linking to its results."""
    try:
        with pymongo.timeout(READ_TIMEOUT):
            jobs = bulk.recent_jobs(db)
    except (PyMongoError, PurchaseError):
        log.warning("could not read the recent bulk jobs", exc_info=True)
        return html.P("Could not read the recent jobs; reload to try again.", className="muted")
    rows = [html.Tr([
        html.Td(dcc.Link(job.get("fileName") or job["_id"], href=f"{PATH}?job={job['_id']}")),
        html.Td(_when(job["startedAt"], tz)), html.Td(job.get("startedBy") or "—"), html.Td(job["status"]),
        html.Td(f"{job['counts'][bulk.GRANTED]:,} of {job['total']:,}", className="num"),
    ]) for job in jobs]
    if not rows:
        return html.P("No jobs yet.", className="muted")
    head = html.Thead(html.Tr([html.Th(h) for h in ("File", "Started", "By", "Status", "Granted")]))
    return html.Table([head, html.Tbody(rows)], className="table")


# callbacks
def register(app, context: DashboardContext) -> None:
    """Wire the page's callbacks to the context's database."""
    db, settings, tz = context.db, context.settings.core, context.settings.timezone

    @app.callback(
        output={"previewClass": Output(PREVIEW, "className"), "title": Output(PREVIEW_TITLE, "children"),
                "counts": Output(PREVIEW_COUNTS, "children"), "rows": Output(PREVIEW_GRID, "rowData"),
                "apply": Output(APPLY, "children"), "applyDisabled": Output(APPLY, "disabled"),
                "message": Output(MESSAGE, "children"), "messageClass": Output(MESSAGE, "className")},
        inputs={"contents": Input(UPLOAD, "contents")},
        state={"file_name": State(UPLOAD, "filename")},
        prevent_initial_call=True,
    )
    def show_preview(contents, file_name):
        """Check every row of the uploaded file; nothing is written."""
        require_admin()
        try:
            with pymongo.timeout(READ_TIMEOUT * 4):
                found = bulk.preview(db, uploaded_bytes(contents), settings)
        except Exception as error:  # noqa: BLE001 - messages.failure logs what is not core's
            return _preview_reply(message=failure(error, log, failed="Could not check the file; see the server log.",
                                                  unanswered=ANSWER_AGAIN).text)
        ready = found.counts[bulk.READY]
        return {"previewClass": "panel bulk-section", "title": f"Preview of {file_name or 'the file'}",
                "counts": preview_counts(found), "rows": preview_rows(found),
                "apply": f"Grant {ready:,} {'row' if ready == 1 else 'rows'}" if ready else "Nothing to grant",
                "applyDisabled": ready == 0, "message": "", "messageClass": "message hidden"}

    @app.callback(
        output={"search": Output(URL, "search"), "applyDisabled": Output(APPLY, "disabled", allow_duplicate=True),
                "previewClass": Output(PREVIEW, "className", allow_duplicate=True),
                "message": Output(MESSAGE, "children", allow_duplicate=True),
                "messageClass": Output(MESSAGE, "className", allow_duplicate=True)},
        inputs={"clicks": Input(APPLY, "n_clicks")},
        state={"contents": State(UPLOAD, "contents"), "file_name": State(UPLOAD, "filename")},
        prevent_initial_call=True,
    )
    def apply(clicks, contents, file_name):
        """Check the file again on the server and start its job; the request does not wait for the grants."""
        actor = require_admin()
        if not clicks or not contents:
            raise PreventUpdate
        try:
            with pymongo.timeout(READ_TIMEOUT * 4):
                found = bulk.preview(db, uploaded_bytes(contents), settings)
                outcome = bulk.start_job(db, found, actor=actor, settings=settings, file_name=file_name or "")
        except Exception as error:  # noqa: BLE001 - messages.failure logs what is not core's
            said = failure(error, log, failed="Could not start the job; see the server log.", unanswered=ANSWER_AGAIN)
            return {"search": no_update, "applyDisabled": False, "previewClass": no_update, "message": said.text,
                    "messageClass": "message"}
        note = OUTCOME_NOTES.get(outcome, "")
        # the job's panel takes over from the preview
        return {"search": f"?job={found.job_id}", "applyDisabled": True, "previewClass": "panel bulk-section hidden",
                "message": note, "messageClass": "message note" if note else "message hidden"}

    @app.callback(
        output={"jobClass": Output(JOB, "className"), "title": Output(JOB_TITLE, "children"),
                "status": Output(JOB_STATUS, "children"), "progress": Output(PROGRESS, "children"),
                "counts": Output(JOB_COUNTS, "children"), "rows": Output(RESULTS_GRID, "rowData"),
                "resultsClass": Output(RESULTS, "className"), "poll": Output(POLL, "disabled"),
                "recent": Output(RECENT, "children")},
        inputs={"search": Input(URL, "search"), "tick": Input(POLL, "n_intervals")},
    )
    def show_job(search, tick):
        """The URL's job: each tick one point read while it runs; its results once it has stopped."""
        require_admin()
        job_id = job_of(search)
        if not job_id:
            return _job_reply(jobClass="panel bulk-section hidden", poll=True)
        try:
            with pymongo.timeout(READ_TIMEOUT):
                job = bulk.get_job(db, job_id)
                running = job is not None and job["status"] == bulk.RUNNING
                rows = no_update if job is None or running else result_rows(bulk.job_results(db, job_id))
        except Exception as error:  # noqa: BLE001 - messages.failure logs what is not core's
            said = failure(error, log, failed="Could not read the job; see the server log.")
            return _job_reply(status=said.text, poll=not said.outage)  # polled on while the database is out
        if job is None:
            return _job_reply(jobClass="panel bulk-section", title="No such job",
                              status=f"There is no bulk job {job_id}.", poll=True)
        return _job_reply(jobClass="panel bulk-section", title=f"Job: {job.get('fileName') or job_id}",
                          status=job_status(job, tz), progress=progress_bar(job), counts=job_counts(job), rows=rows,
                          resultsClass="hidden" if running else "bulk-results", poll=not running,
                          recent=recent_jobs(db, tz))

    @app.callback(
        output={"file": Output(DOWNLOAD, "data"), "message": Output(MESSAGE, "children", allow_duplicate=True),
                "messageClass": Output(MESSAGE, "className", allow_duplicate=True)},
        inputs={"clicks": Input(EXPORT, "n_clicks")},
        state={"search": State(URL, "search")},
        prevent_initial_call=True,
    )
    def download(clicks, search):
        """The URL's job's results as CSV."""
        require_admin()
        job_id = job_of(search)
        if not clicks or not job_id:
            raise PreventUpdate
        try:
            with pymongo.timeout(READ_TIMEOUT * 4):
                results = bulk.job_results(db, job_id)
        except Exception as error:  # noqa: BLE001 - messages.failure logs what is not core's
            said = failure(error, log, failed="Could not read the results; see the server log.",
                           unanswered=ANSWER_AGAIN)
            return {"file": no_update, "message": said.text, "messageClass": "message"}
        name = f"bulk-{job_id}-{datetime.now(UTC):%Y%m%d-%H%M%S}.csv"
        return {"file": spreadsheet.download(results_csv(results), name), "message": "", "messageClass": "message hidden"}


def _preview_reply(message: str) -> dict:
    return {"previewClass": "panel bulk-section hidden", "title": "", "counts": [], "rows": [], "apply": "Grant",
            "applyDisabled": True, "message": message, "messageClass": "message"}


def _job_reply(**values) -> dict:
    names = ("jobClass", "title", "status", "progress", "counts", "rows", "resultsClass", "poll", "recent")
    return {name: values.get(name, no_update) for name in names}
