"""`flask --app app send-report NAME`: a subscription's last whole period, now (recorded as its
page's "Send now" is); `flask --app app send-report --to EMAIL --range 7d`: a one-off report of
the last 7 whole days to EMAIL (nothing recorded). Both exit 1 with the reason when SMTP_URL is
not set or the mail server refuses.
"""

import re
from datetime import UTC, datetime

import click
from flask import current_app
from flask.cli import with_appcontext

from reports import subscriptions
from reports.send import NOT_SET, SendError
from reports.service import reporter_of
from reports.subscriptions import parse_recipients

RANGE = re.compile(r"(\d{1,3})d")
LONGEST = 366


@click.command("send-report")
@click.argument("name", required=False)
@click.option("--to", "to", multiple=True, help="a one-off report to this address (repeat for more)")
@click.option("--range", "days", default="7d", show_default=True, help="a one-off report's days: 1d to 366d")
@with_appcontext
def send_report(name, to, days):
    """Send a subscription's report now, or a one-off report with --to and --range."""
    reporter = reporter_of(current_app)
    if bool(name) == bool(to):
        raise click.UsageError("give a subscription's NAME, or --to EMAIL (and --range) for a one-off report")
    if reporter.settings.smtp is None:
        raise click.ClickException(NOT_SET + " Set it, e.g. SMTP_URL=smtp://user:password@host:587.")
    now = datetime.now(UTC)
    if name:
        subscription = subscriptions.by_name(reporter.db, name)
        if subscription is None:
            raise click.ClickException(f"no subscription is named {name!r} (see the /reports page)")
        outcome = reporter.send_now(subscription, now)
        if outcome.status == "busy":
            raise click.ClickException(f"{subscription.name!r} is being sent right now by another process")
        if outcome.status != "sent":
            raise click.ClickException(f"{subscription.name!r} was not sent: {outcome.error}")
        _said(f"Sent {subscription.name!r} to {', '.join(subscription.recipients)}", outcome.refused)
        return
    recipients, problem = parse_recipients(" ".join(to))
    match = RANGE.fullmatch(days.strip())
    if problem:
        raise click.UsageError(f"--to: {problem}")
    if match is None or not 1 <= int(match[1]) <= LONGEST:
        raise click.UsageError(f"--range must be a number of days such as 7d, from 1d to {LONGEST}d; got {days!r}")
    try:
        refused = reporter.send_one_off(recipients, int(match[1]), now)
    except SendError as error:
        raise click.ClickException(f"not sent: {error}") from None
    _said(f"Sent the last {int(match[1])} days to {', '.join(recipients)}", refused)


def _said(text: str, refused: dict | None) -> None:
    click.echo(text)
    for address, answer in (refused or {}).items():
        click.echo(f"  refused by the server: {address} ({answer})", err=True)


def register(server) -> None:
    server.cli.add_command(send_report)
