"""The reports' scheduler: a daemon thread in each app process that, every
REPORTS_CHECK_SECONDS, sends what is due (Reporter.send_due). Every process runs one; the send
records' leases (reports.ledger) make each period go out once however many look at the same
moment. Started by create_app beside the health checks, stopped when the app closes.
"""

import logging
import threading
from datetime import UTC, datetime

from reports.service import Reporter, reporter_of

log = logging.getLogger(__name__)


class Scheduler:
    """One process's thread; `stop()` ends it (waiting for a send under way)."""

    def __init__(self, reporter: Reporter, every_seconds: float):
        self.reporter, self.every = reporter, every_seconds
        self._stop = threading.Event()
        self.thread = threading.Thread(target=self._loop, name="reports-scheduler", daemon=True)

    def _loop(self) -> None:
        while not self._stop.wait(self.every):
            self.tick(datetime.now(UTC))

    def tick(self, now: datetime) -> list:
        """One look for reports due at `now`; what was tried (a failure is logged, not raised)."""
        try:
            outcomes = self.reporter.send_due(now)
        except Exception:  # noqa: BLE001 - the schedule must outlive a database outage
            if not self._stop.is_set():
                log.warning("could not look for reports due", exc_info=True)
            return []
        for outcome in outcomes:
            if outcome.status == "sent":
                log.info("report %s sent", outcome.key)
            else:
                log.warning("report %s %s: %s", outcome.key, outcome.status, outcome.error)
        return outcomes

    def stop(self, timeout: float = 30.0) -> None:
        """End the thread, and wait for the sends under way (this one's, and the page's "Send now")."""
        self._stop.set()
        if self.thread.is_alive() and self.thread is not threading.current_thread():
            self.thread.join(timeout)
        self.reporter.wait(timeout)


def start_reports(server, context) -> Scheduler:
    """This process's scheduler, running unless REPORTS_CHECK_SECONDS is 0 (then `stop` does nothing)."""
    every = context.settings.reports_check_seconds
    scheduler = Scheduler(reporter_of(server, context.db, context.settings), every)
    if every:
        scheduler.thread.start()
    return scheduler
