"""Scheduled reports: the email's figures against core and a count by hand, its CSV and chart,
one mail per period across two app processes, crashes, a server that refuses then accepts, and
the command line. A real SMTP server (aiosmtpd) runs in the test process; "now" is handed in."""

import csv
import io
import threading
import uuid
from datetime import UTC, datetime, time, timedelta
from email.message import EmailMessage
from zoneinfo import ZoneInfo

import pytest
from bson import ObjectId

from app import create_app
from core import create_purchase, get_purchase_analytics, remove_purchase
from core.storage.schema import COURSES, TESTS, USERS
from dashboard.display import money_text
from reports import ledger, subscriptions
from reports.content import Report, read_report
from reports.render import build_message, draw_chart
from reports.schedule import Schedule, due_period, last_days, local_days, next_slot, period_ended_by
from reports.send import SendError, deliver, parse_smtp_url
from reports.service import Reporter, reporter_of
from settings import load_settings
from tests.mail_server import MailServer, attachment, html_part, related_image

BERLIN = ZoneInfo("Europe/Berlin")
MONDAY = local_days(datetime(2025, 1, 6).date(), datetime(2025, 1, 6).date(), BERLIN)  # 23:00 UTC to 23:00 UTC
TUESDAY_0830 = datetime(2025, 1, 7, 8, 30, tzinfo=BERLIN).astimezone(UTC)
PNG = b"\x89PNG\r\n\x1a\n stand-in"  # kaleido takes seconds: one test draws a real chart
FORM = {"name": "Daily courses", "recipients": "ann@example.com, bob@example.com", "view": "/?range=7d&kind=course",
        "frequency": "daily", "at": "08:00", "weekday": "", "day": ""}


@pytest.fixture
def mail():
    with MailServer() as server:
        yield server


def settings_for(mail: MailServer | None, **more):
    return load_settings({"TIMEZONE": "Europe/Berlin", "SMTP_URL": mail.url if mail else "",
                          "REPORTS_FROM": "Reports <reports@example.com>", **more}, environ={})


def sales(db) -> dict:
    """Purchases around Monday 6 January 2025 in Berlin (UTC+1): two courses and a test inside it,
    a course just before and just after, one course revoked."""
    users = [ObjectId() for _ in range(3)]
    course, other, test = ObjectId(), ObjectId(), ObjectId()
    db[USERS].insert_many([{"_id": u, "name": f"U{i}", "purchasedCourses": [], "purchasedTests": []}
                           for i, u in enumerate(users)])
    db[COURSES].insert_many([{"_id": course, "title": "Python"}, {"_id": other, "title": "=Go"}])
    db[TESTS].insert_one({"_id": test, "title": "Quiz"})
    at = datetime(2025, 1, 5, 23, 0, tzinfo=UTC)  # Monday 00:00 in Berlin
    rows = [(users[0], course, None, 19.99, "paypal", at + timedelta(minutes=1)),
            (users[1], course, None, 25.50, "credit_card", at + timedelta(hours=23, minutes=59)),
            (users[1], other, None, 10.00, "credit_card", at + timedelta(hours=12)),
            (users[2], None, test, 5.00, "paypal", at + timedelta(hours=3)),
            (users[2], course, None, 99.00, "paypal", at - timedelta(minutes=1)),  # Sunday in Berlin
            (users[0], other, None, 7.00, "paypal", at + timedelta(hours=24))]  # Tuesday
    for user, c, t, amount, method, when in rows:
        create_purchase(db, user, c, t, {"amount": amount, "paymentMethod": method, "purchasedAt": when})
    remove_purchase(db, users[1], other, reason="refund")
    return {"courses_inside": 19.99 + 25.50}


def subscribe(db, **form) -> subscriptions.Subscription:
    since = datetime(2025, 1, 1, tzinfo=UTC)
    return subscriptions.create(db, {**FORM, **form}, {"paypal", "credit_card"}, "ann@example.com", since)


def rows_of(csv_bytes: bytes) -> dict:
    assert csv_bytes.startswith(b"\xef\xbb\xbf")  # the byte-order mark, for Excel
    return {(r[0], r[1]): r[2:] for r in csv.reader(io.StringIO(csv_bytes.decode("utf-8-sig")))}


def test_the_email_holds_core_figures_for_the_period_and_its_csv(db, mail):
    expected_revenue = sales(db)["courses_inside"]
    subscribe(db)
    reporter = Reporter(db, settings_for(mail), chart=lambda report: PNG)
    assert [o.status for o in reporter.send_due(TUESDAY_0830)] == ["sent"]
    [(envelope, message)] = mail.received
    assert envelope == ["ann@example.com", "bob@example.com"]
    figures = get_purchase_analytics(db, {"startDate": MONDAY.start, "endDate": MONDAY.end - timedelta(milliseconds=1),
                                          "kind": "course", "granularity": "hour"})
    assert figures["totalRevenue"] == pytest.approx(expected_revenue)  # by hand: the revoked one and the edges out
    assert (figures["totalPurchases"], figures["uniqueBuyers"]) == (2, 2)
    revenue = money_text(figures["totalRevenue"], "USD")
    assert message["Subject"] == f"Daily courses: Mon 06 Jan 2025, revenue {revenue}"
    assert message["From"] == "Reports <reports@example.com>"
    body = html_part(message)
    for shown in (revenue, money_text(figures["averageOrderValue"], "USD"), "2 with one purchase, 0 repeat",
                  money_text(figures["revoked"]["revenue"], "USD"), "Python", "PayPal", "Courses"):
        assert shown in body
    assert 'src="cid:revenue-chart"' in body and related_image(message) == PNG
    name, data = attachment(message, "text/csv")
    assert name == "daily-courses-2025-01-06-to-2025-01-06.csv"
    rows = rows_of(data)
    assert rows[("total", "all purchases")] == [str(figures["totalPurchases"]), f"{figures['totalRevenue']:.2f}"]
    assert rows[("total", "revoked")] == [str(figures["revoked"]["count"]), f"{figures['revoked']['revenue']:.2f}"]
    assert rows[("buyers", "unique buyers")][0] == str(figures["uniqueBuyers"])
    assert rows[("view", "Courses")] == ["", ""]
    hours = [(k, v) for k, v in rows.items() if k[0] == "revenue by hour"]
    assert len(hours) == 24 and hours[0][0][1] == "2025-01-06 00:00"  # Berlin's hours
    assert sum(float(v[1]) for _, v in hours) == pytest.approx(expected_revenue)
    assert ("top course", "'=Go") not in rows  # revoked: and a title like a formula stays text
    assert reporter.send_due(TUESDAY_0830 + timedelta(hours=1)) == [] and len(mail.received) == 1
    report = read_report(db, "R", ["a@example.com"], "?kind=course", MONDAY, reporter.settings.core, BERLIN)
    message = build_message(report, "Courses", "r@example.com", TUESDAY_0830, chart=None)
    assert related_image(message) is None and "left out" in message.get_body(("plain",)).get_content()


def test_a_real_chart_is_drawn_by_kaleido():
    hours = [{"period": MONDAY.start + timedelta(hours=h), "count": h % 3, "revenue": 10.0 * (h % 3)} for h in range(24)]
    report = Report("R", (), "", MONDAY, {"revenueByPeriod": hours, "granularity": "hour"}, "USD", BERLIN)
    png = draw_chart(report)  # what Reporter uses unless told otherwise
    assert png.startswith(b"\x89PNG\r\n\x1a\n") and len(png) > 5000
    assert Reporter(None, None).chart is draw_chart


def test_a_refusing_server_is_tried_again_later_and_its_error_kept(db, mail):
    subscription = subscribe(db)
    reporter = Reporter(db, settings_for(mail), chart=lambda report: PNG)
    mail.refusals = ["451 4.3.0 Mailbox busy, try later", "452 4.3.1 Still busy"]
    [first] = reporter.send_due(TUESDAY_0830)
    assert first.status == "failed" and "451 4.3.0 Mailbox busy" in first.error
    record = db[ledger.SENDS].find_one({"_id": first.key})
    assert (record["attempts"], record["status"]) == (1, "failed") and "451" in record["lastError"]
    assert record["nextTryAt"].replace(tzinfo=UTC) == TUESDAY_0830 + timedelta(minutes=1)
    assert reporter.send_due(TUESDAY_0830 + timedelta(seconds=30)) == []  # not before its time
    [second] = reporter.send_due(TUESDAY_0830 + timedelta(minutes=1))
    assert second.status == "failed" and "452" in second.error
    record = db[ledger.SENDS].find_one({"_id": first.key})
    assert record["nextTryAt"].replace(tzinfo=UTC) == TUESDAY_0830 + timedelta(minutes=3)  # twice the wait
    [third] = reporter.send_due(TUESDAY_0830 + timedelta(minutes=3))
    assert third.status == "sent" and len(mail.received) == 1
    record = db[ledger.SENDS].find_one({"_id": first.key})
    assert (record["status"], record["attempts"], record["lastError"], record["nextTryAt"]) == ("sent", 3, None, None)
    assert subscription.id == record["subscription"]


def test_a_process_that_died_before_data_is_replaced_and_one_during_data_is_not(db, mail):
    subscription = subscribe(db)
    reporter = Reporter(db, settings_for(mail), chart=lambda report: PNG)
    key = ledger.record_key(subscription.id, MONDAY)
    long_ago = datetime.now(UTC) - timedelta(minutes=10)  # its lease ran out
    fields = {"subscription": subscription.id, "period": ledger._period(MONDAY), "status": "sending",
              "phase": "delivering", "attempts": 0}
    assert ledger.lease(db, key).claim("dead", fields=fields, upsert=True, now=long_ago)
    assert reporter.send_due(TUESDAY_0830) == [] and mail.received == []  # it may have been sent: not again
    db[ledger.SENDS].update_one({"_id": key}, {"$set": {"phase": "preparing"}})  # died before DATA
    [outcome] = reporter.send_due(TUESDAY_0830)
    assert outcome.status == "sent" and len(mail.received) == 1


@pytest.fixture
def two_apps(tmp_path, mail):
    """Two app processes' worth (two create_app) on one database, as two workers are."""
    config = {"DATA_DIR": str(tmp_path), "MONGODB_DB": f"app_{uuid.uuid4().hex[:12]}", "SEED_DEMO": "0",
              "HEALTH_CHECK_SECONDS": "0", "REPORTS_CHECK_SECONDS": "0", "TIMEZONE": "Europe/Berlin",
              "SMTP_URL": mail.url}
    apps = [create_app(config), create_app(config)]
    yield apps
    for app in reversed(apps):
        app.extensions["purchase_database"].close()


def test_two_processes_racing_send_each_period_once(two_apps, mail):
    db = two_apps[0].extensions["purchase_database"].db
    subscribe(db)
    reporters = [reporter_of(app) for app in two_apps]
    assert reporters[0].db is not reporters[1].db
    for reporter in reporters:
        reporter.chart = lambda report: PNG
    for day in range(3):  # Tuesday, Wednesday, Thursday at 08:30: Monday, Tuesday, Wednesday
        now = TUESDAY_0830 + timedelta(days=day)
        barrier, got = threading.Barrier(4), []

        def race(reporter, now=now, barrier=barrier, got=got):
            barrier.wait()
            got.extend(reporter.send_due(now))

        threads = [threading.Thread(target=race, args=(reporters[n % 2],)) for n in range(4)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=60)
        assert [o.status for o in got] == ["sent"]
    subjects = [m["Subject"].split(",")[0] for m in mail.messages()]
    assert subjects == ["Daily courses: Mon 06 Jan 2025", "Daily courses: Tue 07 Jan 2025",
                        "Daily courses: Wed 08 Jan 2025"]


def test_the_command_line_exits_non_zero_without_smtp_or_when_refused(app, mail):
    db = app.extensions["purchase_database"].db
    subscribe(db)
    runner = app.test_cli_runner()
    for args in (["send-report", "Daily courses"], ["send-report", "--to", "x@example.com", "--range", "7d"]):
        result = runner.invoke(args=args)
        assert result.exit_code == 1 and "SMTP_URL is not set" in result.output, result.output
    refused = create_app({**app.config, "SMTP_URL": mail.url, "MONGODB_DB": db.name, "REPORTS_CHECK_SECONDS": "0"})
    try:
        runner = refused.test_cli_runner()
        mail.refusals = ["554 5.7.1 Relaying denied"]
        result = runner.invoke(args=["send-report", "daily COURSES"])
        assert result.exit_code == 1 and "554 5.7.1 Relaying denied" in result.output, result.output
        result = runner.invoke(args=["send-report", "--to", "x@example.com", "--range", "7d"])
        assert result.exit_code == 0 and "Sent the last 7 days to x@example.com" in result.output, result.output
        assert mail.received[0][0] == ["x@example.com"] and "last 7 days" in mail.received[0][1]["Subject"]
        result = runner.invoke(args=["send-report", "--to", "x@example.com", "--range", "7 weeks"])
        assert result.exit_code == 2 and "--range must be a number of days" in result.output
    finally:
        refused.extensions["purchase_database"].close()


def test_each_schedule_reports_its_last_whole_period_at_its_slot():
    tz = BERLIN
    at = datetime(2025, 3, 31, 9, 0, tzinfo=tz).astimezone(UTC)  # Monday, the day after DST began
    daily = Schedule("daily", time(8, 0))
    assert due_period(daily, tz, at).label == "Sun 30 Mar 2025"
    sunday = due_period(daily, tz, at)
    assert sunday.end - sunday.start == timedelta(hours=23)  # DST: a 23-hour day
    assert due_period(daily, tz, at, since=at - timedelta(minutes=30)) is None  # set after its slot: next one
    weekly = Schedule("weekly", time(7, 30), weekday=0)
    assert (due_period(weekly, tz, at).first.isoformat(), due_period(weekly, tz, at).last.isoformat()) == (
        "2025-03-24", "2025-03-30")
    assert due_period(weekly, tz, at - timedelta(hours=2)).first.isoformat() == "2025-03-17"  # before 07:30
    monthly = Schedule("monthly", time(6, 0), day=2)
    assert due_period(monthly, tz, at).label == "February 2025"  # March's is sent on 2 April
    when, period = next_slot(monthly, tz, at)
    assert (when, period.label) == (datetime(2025, 4, 2, 6, 0, tzinfo=tz).astimezone(UTC), "March 2025")
    assert period_ended_by(monthly, tz, at).label == "February 2025"
    assert last_days(7, tz, at).key == "2025-03-24..2025-03-30"


def test_smtp_url_and_sender_are_read_once_with_a_login_and_their_mistakes_named():
    with MailServer(login=("reports@example.com", "p@ss word")) as server:
        url = f"smtp://reports%40example.com:p%40ss%20word@127.0.0.1:{server.port}"
        settings = load_settings({"SMTP_URL": url}, environ={})
        assert settings.reports_from == "reports@example.com"  # the login, when it is an address
        assert "p@ss" not in str(settings.smtp) and "p@ss" not in repr(settings.smtp)
        message = EmailMessage()
        message["From"], message["To"], message["Subject"] = settings.reports_from, "x@example.com", "Hello"
        assert deliver(settings.smtp, message) == {}
        assert server.received[0][0] == ["x@example.com"]
        wrong = load_settings({"SMTP_URL": url.replace("word@", "wrong@")}, environ={})
        with pytest.raises(SendError, match="refused the user name or password: 535"):
            deliver(wrong.smtp, message)
    with pytest.raises(SendError, match="Could not talk to the mail server smtp://127.0.0.1"):
        deliver(parse_smtp_url(f"smtp://127.0.0.1:{server.port}"), message)  # nobody listens now
    assert parse_smtp_url("smtps://mail.example.com").port == 465
    assert load_settings({}, environ={}).reports_from == "reports@localhost"
    for name, value, said in (("SMTP_URL", "mail.example.com:587", "SMTP_URL must look like smtp://"),
                              ("SMTP_URL", "smtp://h:99999", "a port that is not a number"),
                              ("REPORTS_FROM", "nobody", "REPORTS_FROM must be an email address"),
                              ("REPORTS_CHECK_SECONDS", "-1", "REPORTS_CHECK_SECONDS must be between 0")):
        with pytest.raises(ValueError, match=said):
            load_settings({name: value}, environ={})


def test_each_app_process_runs_a_scheduler_unless_told_not_to(tmp_path):
    config = {"DATA_DIR": str(tmp_path), "MONGODB_DB": f"app_{uuid.uuid4().hex[:12]}", "SEED_DEMO": "0",
              "HEALTH_CHECK_SECONDS": "0", "REPORTS_CHECK_SECONDS": "3600"}
    running = lambda: [t for t in threading.enumerate() if t.name == "reports-scheduler"]  # noqa: E731
    before = len(running())
    app = create_app(config)
    assert len(running()) == before + 1
    app.extensions["purchase_database"].close()  # the app's close stops it
    assert len(running()) == before
