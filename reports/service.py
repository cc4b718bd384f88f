"""What the page, the command line and the scheduler ask of reports, with the app's database
and settings: draw a subscription's email, send it now, send what is due, send a one-off.

One `Reporter` per app (`reporter_of(server)`); tests swap its `chart` (a stand-in for kaleido,
which takes seconds) and read what a real SMTP server received.
"""

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from email.message import EmailMessage

from pymongo.database import Database

from reports import ledger, schedule, send, subscriptions
from reports.content import Report, read_report
from reports.render import build_message, draw_chart
from reports.schedule import Period
from reports.subscriptions import Subscription, view_text

EXTENSION = "reports"
log = logging.getLogger(__name__)


@dataclass
class Reporter:
    db: Database
    settings: object  # settings.Settings
    chart: Callable[[Report], bytes] | None = draw_chart
    deliver: Callable = field(default=send.deliver)
    background: list = field(default_factory=list)  # threads of "Send now" from the page
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    @property
    def tz(self):
        return self.settings.timezone

    def message(self, subscription: Subscription, period: Period, now: datetime,
                message_id: str | None = None) -> EmailMessage:
        """The email of `subscription` for `period`, figures read now."""
        return self._message(subscription.name, subscription.recipients, subscription.view, period, now, message_id)

    def latest_message(self, subscription: Subscription, now: datetime) -> EmailMessage:
        """The email "Send now" would send: the schedule's last whole period (the page's Download)."""
        return self.message(subscription, schedule.period_ended_by(subscription.schedule, self.tz, now), now)

    def send_now(self, subscription: Subscription, now: datetime) -> ledger.Outcome:
        """Send the last whole period now, sent before or not (under its record's lease)."""
        period = schedule.period_ended_by(subscription.schedule, self.tz, now)
        return self._attempt(subscription, period, "manual", now)

    def send_now_in_background(self, subscription: Subscription, now: datetime) -> threading.Thread:
        """send_now in a thread of its own: the page's request must not wait for the chart and the
        mail server (nor be bound by its database time limit)."""
        thread = threading.Thread(target=self._logged_send_now, args=(subscription, now), name="report-send-now",
                                  daemon=True)
        with self._lock:
            self.background = [t for t in self.background if t.is_alive()] + [thread]
        thread.start()
        return thread

    def wait(self, timeout: float = 60.0) -> None:
        """Wait for the sends started in the background (tests; the app's close)."""
        with self._lock:
            threads = list(self.background)
        for thread in threads:
            thread.join(timeout)

    def _logged_send_now(self, subscription: Subscription, now: datetime) -> None:
        try:
            outcome = self.send_now(subscription, now)
        except Exception:  # noqa: BLE001 - a background thread: the log is where this is seen
            log.exception("report %r could not be sent", subscription.name)
            return
        log.info("report %r sent now: %s %s", subscription.name, outcome.status, outcome.error)

    def send_due(self, now: datetime) -> list[ledger.Outcome]:
        """Send each subscription's period whose slot has come and that is not sent, and every
        failed send whose next try is due; what each try did (others' sends left out)."""
        every = {s.id: s for s in subscriptions.every(self.db)}
        if not every:
            return []
        ledger.ensure_indexes(self.db)
        tried = []
        for subscription in every.values():
            period = schedule.due_period(subscription.schedule, self.tz, now, since=subscription.since)
            if period is not None:
                tried.append(self._attempt(subscription, period, "schedule", now))
        for record in ledger.due_retries(self.db, now):
            subscription = every.get(record["subscription"])
            if subscription is not None:
                tried.append(self._attempt(subscription, ledger.period_of(record), "schedule", now))
        return [outcome for outcome in tried if outcome.status != "busy"]

    def send_one_off(self, recipients: list[str], days: int, now: datetime) -> dict:
        """The last `days` whole days of every purchase to `recipients` (no record kept); the
        recipients refused. SendError when it was not sent."""
        period = schedule.last_days(days, self.tz, now)
        message = self._message(f"Purchases report, last {days} days", recipients, "", period, now)
        return self.deliver(self.settings.smtp, message)

    def _attempt(self, subscription: Subscription, period: Period, trigger: str, now: datetime) -> ledger.Outcome:
        def send_it(before_data, message_id):
            if self.settings.smtp is None:  # said before the report is drawn: the chart takes seconds
                raise send.SendError(send.NOT_SET)
            message = self.message(subscription, period, now, message_id)
            return self.deliver(self.settings.smtp, message, before_data)

        return ledger.attempt(self.db, subscription, period, trigger, now, send_it)

    def _message(self, name, recipients, view, period, now, message_id=None) -> EmailMessage:
        core = self.settings.core
        report = read_report(self.db, name, recipients, view, period, core, self.tz)
        return build_message(report, view_text(view), self.settings.reports_from, now, self.chart, message_id)


def reporter_of(server, db: Database | None = None, settings=None) -> Reporter:
    """The app's Reporter, made at the first call (with the app's database and settings)."""
    reporter = server.extensions.get(EXTENSION)
    if reporter is None:
        db = db if db is not None else server.extensions["purchase_database"].db
        reporter = server.extensions[EXTENSION] = Reporter(db, settings or server.extensions["settings"])
    return reporter
