"""Calendar arithmetic in UTC: buckets of hour/day/week/month, range covers."""

from datetime import UTC, datetime, timedelta

GRANULARITIES = ("hour", "day", "week", "month")
# the levels rollups are kept at
ROLLUP_LEVELS = ("month", "week", "day", "hour")
# coarsest first, each bucket a whole number of the next one's: what a cover may use
NESTED_LEVELS = ("month", "day", "hour")


def floor(moment: datetime, unit: str) -> datetime:
    """Start of the hour, day, ISO week (Monday) or month that holds `moment`."""
    moment = moment.astimezone(UTC)
    if unit == "hour":
        return moment.replace(minute=0, second=0, microsecond=0)
    day = moment.replace(hour=0, minute=0, second=0, microsecond=0)
    if unit == "day":
        return day
    if unit == "week":
        return day - timedelta(days=day.weekday())
    if unit == "month":
        return day.replace(day=1)
    raise ValueError(f"unknown unit {unit!r}")


def step(moment: datetime, unit: str) -> datetime:
    """The start of the next hour, day, week or month after the bucket starting at `moment`."""
    if unit == "hour":
        return moment + timedelta(hours=1)
    if unit == "day":
        return moment + timedelta(days=1)
    if unit == "week":
        return moment + timedelta(days=7)
    if unit == "month":
        return moment.replace(year=moment.year + moment.month // 12, month=moment.month % 12 + 1)
    raise ValueError(f"unknown unit {unit!r}")


def ceil(moment: datetime, unit: str) -> datetime:
    start = floor(moment, unit)
    return start if start == moment else step(start, unit)


def buckets(start: datetime, end: datetime, unit: str) -> list[datetime]:
    """Starts of every `unit` bucket that overlaps [start, end)."""
    out, current = [], floor(start, unit)
    while current < end:
        out.append(current)
        current = step(current, unit)
    return out


def cover(start: datetime, end: datetime | None, levels: tuple[str, ...]) -> list[tuple[str, datetime, datetime | None]]:
    """Split [start, end) into whole buckets of the coarsest level that fits, then finer ones.

    Returns (level, from, to) pieces: level is one of `levels` (all of its buckets with a
    start in [from, to), `to` None meaning no upper bound) or "raw" for a sliver shorter
    than the finest level, to be read from the documents themselves.
    """
    if end is not None and start >= end:
        return []
    if not levels:
        return [("raw", start, end)]
    level, finer = levels[0], levels[1:]
    first = ceil(start, level)
    last = None if end is None else floor(end, level)
    if last is not None and first >= last:
        return cover(start, end, finer)
    pieces = cover(start, first, finer) + [(level, first, last)]
    return pieces + (cover(last, end, finer) if last is not None else [])


def default_granularity(span: timedelta) -> str:
    """The finest granularity that keeps a chart readable for a range of this length."""
    if span <= timedelta(days=2):
        return "hour"
    if span <= timedelta(days=92):
        return "day"
    if span <= timedelta(days=366):
        return "week"
    return "month"


def levels_for(granularity: str) -> tuple[str, ...]:
    """Nested rollup levels whose buckets each fall inside one bucket of `granularity`."""
    return {
        "hour": ("hour",),
        "day": ("day", "hour"),
        "week": ("week", "day", "hour"),
        "month": NESTED_LEVELS,
    }[granularity]
