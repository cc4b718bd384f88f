"""A report as an email (email.message.EmailMessage): the subject with the period and its
revenue; a plain-text part and an HTML part with the key figures, tables and the revenue chart
(a PNG inside the message, shown in place); the view's CSV attached.

The same message is sent by the scheduler, "Send now" and the command line, and downloaded
from the page as a .eml file.
"""

import email.policy
import html
import logging
from collections.abc import Callable
from datetime import datetime
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid

from dashboard.display import money_text
from reports.content import Report, as_of_text, chart_rows, csv_text, key_figures, tables

CHART_ID = "revenue-chart"
INK, MUTED, LINE, PANEL = "#1f2933", "#64748b", "#e2e8f0", "#f8fafc"
log = logging.getLogger(__name__)


def wire_bytes(message: EmailMessage) -> bytes:
    """The message as it goes over SMTP, lines ending in CRLF: what is sent, and what Download gives."""
    return message.as_bytes(policy=email.policy.SMTP)


def subject(report: Report) -> str:
    revenue = money_text(report.figures["totalRevenue"], report.currency)
    return f"{report.name}: {report.period.label}, revenue {revenue}"


def build_message(report: Report, view_words: str, sender: str, now: datetime,
                  chart: Callable[[Report], bytes] | None = None, message_id: str | None = None) -> EmailMessage:
    """The whole email; `chart(report)` draws the PNG (a failure leaves a line saying so instead)."""
    message = EmailMessage()
    message["Subject"] = subject(report)
    message["From"] = sender
    message["To"] = ", ".join(report.recipients) if report.recipients else "undisclosed-recipients:;"
    message["Date"] = format_datetime(now)
    message["Message-ID"] = message_id or make_msgid("report")
    png, chart_problem = _chart(report, chart)
    message.set_content(text_body(report, view_words, chart_problem))
    message.add_alternative(html_body(report, view_words, png is not None, chart_problem), subtype="html")
    if png is not None:
        message.get_payload()[1].add_related(png, "image", "png", cid=f"<{CHART_ID}>", filename="revenue.png")
    filename = f"{slug(report.name)}-{report.period.first.isoformat()}-to-{report.period.last.isoformat()}.csv"
    message.add_attachment(csv_text(report, view_words).encode("utf-8"), maintype="text", subtype="csv",
                           filename=filename)
    return message


def text_body(report: Report, view_words: str, chart_problem: str = "") -> str:
    lines = [f"{report.name}: {report.period.label} ({report.tz.key})", f"View: {view_words}", ""]
    lines += [f"{label}: {figure} ({note})" for label, figure, note in key_figures(report)]
    for heading, rows in tables(report):
        lines += ["", heading + ":"] + ([f"  {a}: {b}, {c}" for a, b, c in rows] or ["  none"])
    if chart_problem:
        lines += ["", chart_problem]
    lines += ["", f"Figures as of {as_of_text(report)}; the attached CSV holds them all."]
    return "\n".join(lines) + "\n"


def html_body(report: Report, view_words: str, with_chart: bool, chart_problem: str = "") -> str:
    e = html.escape
    cards = "".join(
        f'<td style="padding:10px 12px;border:1px solid {LINE};background:{PANEL};vertical-align:top">'
        f'<div style="color:{MUTED};font-size:12px">{e(label)}</div>'
        f'<div style="font-size:20px;font-weight:600;color:{INK};white-space:nowrap">{e(figure)}</div>'
        f'<div style="color:{MUTED};font-size:12px">{e(note)}</div></td>'
        for label, figure, note in key_figures(report))
    chart = (f'<img src="cid:{CHART_ID}" alt="Revenue by {e(report.figures["granularity"])}" width="760" '
             f'style="max-width:100%;height:auto;display:block">' if with_chart
             else f'<p style="color:{MUTED}">{e(chart_problem)}</p>')
    return (
        f'<!DOCTYPE html><html lang="en"><body style="font-family:system-ui,Segoe UI,Roboto,sans-serif;color:{INK};'
        f'margin:0;padding:16px">'
        f'<h1 style="font-size:20px;margin:0 0 4px">{e(report.name)}: {e(report.period.label)}</h1>'
        f'<p style="color:{MUTED};margin:0 0 12px">{e(view_words)} · {e(report.tz.key)} · '
        f'as of {e(as_of_text(report))}</p>'
        f'<table role="presentation" style="border-collapse:separate;border-spacing:6px"><tr>{cards}</tr></table>'
        f'<h2 style="font-size:16px;margin:16px 0 6px">Revenue by {e(report.figures["granularity"])}</h2>{chart}'
        + "".join(_table(heading, rows) for heading, rows in tables(report))
        + f'<p style="color:{MUTED};font-size:12px">Every figure is in the attached CSV.</p></body></html>')


def _table(heading: str, rows: list[tuple[str, str, str]]) -> str:
    e = html.escape
    cell = f"padding:4px 8px;border-bottom:1px solid {LINE}"
    body = "".join(f'<tr><td style="{cell}">{e(a)}</td><td style="{cell};text-align:right">{e(b)}</td>'
                   f'<td style="{cell};text-align:right">{e(c)}</td></tr>' for a, b, c in rows)
    body = body or f'<tr><td style="{cell};color:{MUTED}" colspan="3">None in this period</td></tr>'
    return (f'<h2 style="font-size:16px;margin:16px 0 6px">{e(heading)}</h2>'
            f'<table style="border-collapse:collapse;font-size:14px"><tr>'
            f'<th style="{cell};text-align:left"></th><th style="{cell};text-align:right">Purchases</th>'
            f'<th style="{cell};text-align:right">Revenue</th></tr>{body}</table>')


def _chart(report: Report, chart: Callable[[Report], bytes] | None) -> tuple[bytes | None, str]:
    if not any(row["count"] for row in report.figures["revenueByPeriod"]):
        return None, "No purchases in this period: no chart."
    if chart is None:
        return None, "The chart is left out of this copy."
    try:
        return chart(report), ""
    except Exception as error:  # noqa: BLE001 - the figures still go out; the log has the cause
        log.warning("the revenue chart could not be drawn", exc_info=True)
        return None, f"The revenue chart could not be drawn ({type(error).__name__})."


def draw_chart(report: Report) -> bytes:
    """The revenue chart with kaleido (reports.chart)."""
    from reports.chart import revenue_png

    return revenue_png(chart_rows(report), report.figures["granularity"], report.currency)


def slug(name: str) -> str:
    """A name as part of a file name: Daily sales, daily-sales."""
    kept = "".join(c if c.isalnum() else "-" for c in name.lower())
    return "-".join(part for part in kept.split("-") if part)[:60] or "report"
