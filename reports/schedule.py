"""When a subscription sends, and which period each send reports, in the app's TIMEZONE.

A schedule is daily, weekly on a weekday or monthly on a day of the month, at a time of day.
Each send reports the last whole period before its day, in local calendar days:
- daily at 08:00: the day before (sent Tuesday 08:00: Monday, 00:00 to 24:00);
- weekly on a weekday at 08:00: the 7 days before that weekday (on Monday: last Monday to
  Sunday; on Wednesday: last Wednesday to Tuesday);
- monthly on day N (1 to 28, a day every month has) at 08:00: the calendar month before.

The slot of a period is when it is sent: its end's day at the time (daily, weekly), or day N
of the month after it (monthly). Pure: no database, `now` is always handed in.
"""

import calendar
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

FREQUENCIES = {"daily": "Daily", "weekly": "Weekly", "monthly": "Monthly"}
WEEKDAYS = tuple(calendar.day_name)  # Monday first, as date.weekday() counts
LAST_DAY = 28  # the last day of the month a monthly schedule may name: every month has it


@dataclass(frozen=True)
class Schedule:
    frequency: str  # "daily", "weekly" or "monthly"
    at: time  # local time of day, minutes only
    weekday: int = 0  # weekly: 0 Monday .. 6 Sunday
    day: int = 1  # monthly: 1 .. LAST_DAY

    def to_document(self) -> dict:
        return {"frequency": self.frequency, "at": self.at.strftime("%H:%M"), "weekday": self.weekday, "day": self.day}

    @classmethod
    def from_document(cls, doc: dict) -> "Schedule":
        return cls(doc["frequency"], time.fromisoformat(doc["at"]), int(doc.get("weekday", 0)), int(doc.get("day", 1)))


@dataclass(frozen=True)
class Period:
    """A report's period: [start, end) in UTC, from local midnights; `first` and `last` its local days."""

    start: datetime
    end: datetime
    first: date
    last: date

    @property
    def key(self) -> str:
        """The period as its send records name it: "2026-03-02..2026-03-08"."""
        return f"{self.first.isoformat()}..{self.last.isoformat()}"

    @property
    def label(self) -> str:
        """The period in words, for subjects and headings."""
        if self.first == self.last:
            return f"{self.first:%a %d %b %Y}"
        if self.first.day == 1 and self.last == _month_end(self.first):
            return f"{self.first:%B %Y}"
        return f"{self.first:%d %b} to {self.last:%d %b %Y}"

    @property
    def days(self) -> int:
        return (self.last - self.first).days + 1


def parse_schedule(frequency, at, weekday, day) -> tuple[Schedule | None, dict[str, str]]:
    """A schedule from the form's values, or None and what is wrong, by field, in words."""
    errors = {}
    if frequency not in FREQUENCIES:
        errors["frequency"] = "Choose daily, weekly or monthly."
    moment = _clock(at)
    if moment is None:
        errors["at"] = "Enter a time of day as HH:MM, from 00:00 to 23:59."
    weekday_number = _whole(weekday)
    if frequency == "weekly" and (weekday_number is None or not 0 <= weekday_number <= 6):
        errors["weekday"] = "Choose a day of the week."
    day_number = _whole(day)
    if frequency == "monthly" and (day_number is None or not 1 <= day_number <= LAST_DAY):
        errors["day"] = f"Enter a day of the month from 1 to {LAST_DAY} (a day every month has)."
    if errors:
        return None, errors
    return Schedule(frequency, moment, weekday_number if frequency == "weekly" else 0,
                    day_number if frequency == "monthly" else 1), {}


def describe(schedule: Schedule) -> str:
    """"Daily at 08:00", "Mondays at 08:00", "Monthly on day 1 at 08:00"."""
    at = schedule.at.strftime("%H:%M")
    if schedule.frequency == "weekly":
        return f"{WEEKDAYS[schedule.weekday]}s at {at}"
    if schedule.frequency == "monthly":
        return f"Monthly on day {schedule.day} at {at}"
    return f"Daily at {at}"


def reports_what(schedule: Schedule) -> str:
    """Which period each send covers, in words."""
    return {"daily": "the day before", "weekly": "the 7 days before the send day",
            "monthly": "the month before"}[schedule.frequency]


def period_ended_by(schedule: Schedule, tz: ZoneInfo, now: datetime) -> Period:
    """The schedule's last whole period at `now` (what "Send now" reports)."""
    today = now.astimezone(tz).date()
    if schedule.frequency == "daily":
        return local_days(today - timedelta(days=1), today - timedelta(days=1), tz)
    if schedule.frequency == "weekly":
        end = today - timedelta(days=(today.weekday() - schedule.weekday) % 7)  # the last such weekday, today included
        return local_days(end - timedelta(days=7), end - timedelta(days=1), tz)
    first = (today.replace(day=1) - timedelta(days=1)).replace(day=1)
    return local_days(first, _month_end(first), tz)


def slot(schedule: Schedule, period: Period, tz: ZoneInfo) -> datetime:
    """When `period` is sent (UTC)."""
    if schedule.frequency == "monthly":
        after = period.last + timedelta(days=1)  # the first of the month after
        day = after.replace(day=schedule.day)
    else:
        day = period.last + timedelta(days=1)
    return datetime.combine(day, schedule.at, tzinfo=tz).astimezone(UTC)


def due_period(schedule: Schedule, tz: ZoneInfo, now: datetime, since: datetime | None = None) -> Period | None:
    """The period whose slot came last at or before `now` (and at or after `since`, when the
    schedule was set: a new schedule starts with its next slot); None when there is none."""
    period = period_ended_by(schedule, tz, now)
    if slot(schedule, period, tz) > now:
        period = previous(schedule, period, tz)
    due = slot(schedule, period, tz)
    return period if due <= now and (since is None or due >= since) else None


def next_slot(schedule: Schedule, tz: ZoneInfo, now: datetime) -> tuple[datetime, Period]:
    """The first slot after `now`, and the period it sends."""
    period = period_ended_by(schedule, tz, now)
    for _ in range(3):
        when = slot(schedule, period, tz)
        if when > now:
            return when, period
        period = following(schedule, period, tz)
    raise AssertionError("a slot lies within three periods")  # pragma: no cover


def previous(schedule: Schedule, period: Period, tz: ZoneInfo) -> Period:
    if schedule.frequency == "monthly":
        first = (period.first - timedelta(days=1)).replace(day=1)
        return local_days(first, _month_end(first), tz)
    step = timedelta(days=period.days)
    return local_days(period.first - step, period.last - step, tz)


def following(schedule: Schedule, period: Period, tz: ZoneInfo) -> Period:
    if schedule.frequency == "monthly":
        first = period.last + timedelta(days=1)
        return local_days(first, _month_end(first), tz)
    step = timedelta(days=period.days)
    return local_days(period.first + step, period.last + step, tz)


def last_days(days: int, tz: ZoneInfo, now: datetime) -> Period:
    """The `days` whole days before today (a one-off report's `--range 7d`)."""
    today = now.astimezone(tz).date()
    return local_days(today - timedelta(days=days), today - timedelta(days=1), tz)


def local_days(first: date, last: date, tz: ZoneInfo) -> Period:
    """The local days `first` to `last`, both included, as a UTC range (DST days are 23 or 25 hours)."""
    start = datetime.combine(first, time.min, tzinfo=tz).astimezone(UTC)
    end = datetime.combine(last + timedelta(days=1), time.min, tzinfo=tz).astimezone(UTC)
    return Period(start, end, first, last)


def _month_end(day: date) -> date:
    return day.replace(day=calendar.monthrange(day.year, day.month)[1])


def _clock(value) -> time | None:
    text = str(value or "").strip()
    parts = text.split(":")
    if len(parts) != 2 or not all(p.isdigit() and 1 <= len(p) <= 2 for p in parts):
        return None
    hour, minute = int(parts[0]), int(parts[1])
    return time(hour, minute) if hour < 24 and minute < 60 else None


def _whole(value) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    text = str(value or "").strip()
    return int(text) if text.isdigit() else None
