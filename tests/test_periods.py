"""Calendar arithmetic and range covers, without a database."""

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from core.analytics.periods import buckets, ceil, cover, default_granularity, floor, levels_for, step
from core.errors import ValidationError
from core.validation import parse_date

T = datetime(2025, 3, 5, 13, 47, 12, tzinfo=UTC)  # a Wednesday


def test_floor_and_step():
    assert floor(T, "hour") == datetime(2025, 3, 5, 13, tzinfo=UTC)
    assert floor(T, "day") == datetime(2025, 3, 5, tzinfo=UTC)
    assert floor(T, "week") == datetime(2025, 3, 3, tzinfo=UTC)
    assert floor(T, "month") == datetime(2025, 3, 1, tzinfo=UTC)
    assert step(datetime(2025, 12, 1, tzinfo=UTC), "month") == datetime(2026, 1, 1, tzinfo=UTC)
    assert ceil(datetime(2025, 3, 1, tzinfo=UTC), "month") == datetime(2025, 3, 1, tzinfo=UTC)
    assert ceil(T, "day") == datetime(2025, 3, 6, tzinfo=UTC)


def test_parse_date_end_includes_the_whole_day():
    assert parse_date("2025-01-31", "endDate", end=True) == datetime(2025, 2, 1, tzinfo=UTC)
    assert parse_date("2025-01-01", "startDate") == datetime(2025, 1, 1, tzinfo=UTC)
    assert parse_date(T, "endDate", end=True) == T + timedelta(milliseconds=1)
    assert parse_date(None, "x") is None
    for bad in ("yesterday", "2025-02-30", 20250101):
        with pytest.raises(ValidationError, match="must be a datetime or a 'YYYY-MM-DD' date"):
            parse_date(bad, "startDate")


def test_default_granularity():
    assert default_granularity(timedelta(hours=30)) == "hour"
    assert default_granularity(timedelta(days=30)) == "day"
    assert default_granularity(timedelta(days=200)) == "week"
    assert default_granularity(timedelta(days=800)) == "month"


def test_buckets_cover_the_range():
    assert buckets(T, T + timedelta(days=2), "day") == [
        datetime(2025, 3, 5, tzinfo=UTC), datetime(2025, 3, 6, tzinfo=UTC), datetime(2025, 3, 7, tzinfo=UTC)
    ]


moments = st.datetimes(min_value=datetime(2024, 11, 1), max_value=datetime(2025, 4, 1)).map(
    lambda d: d.replace(tzinfo=UTC, microsecond=d.microsecond // 1000 * 1000)
)


@given(start=moments, length=st.timedeltas(min_value=timedelta(0), max_value=timedelta(days=120)),
       granularity=st.sampled_from(["hour", "day", "week", "month"]))
def test_cover_tiles_the_range_exactly(start, length, granularity):
    """Pieces are aligned to their level, do not overlap, and add up to [start, end)."""
    end = start + length
    pieces = cover(start, end, levels_for(granularity))
    position = start
    for level, low, high in sorted(pieces, key=lambda p: p[1]):
        assert low == position
        if level != "raw":
            assert floor(low, level) == low and floor(high, level) == high
        else:  # a raw sliver holds no whole hour: those are read from hourly rollups
            assert step(ceil(low, "hour"), "hour") > high
        position = high
    assert position == (end if pieces else start)


@given(moment=moments, granularity=st.sampled_from(["hour", "day", "week", "month"]))
def test_levels_read_for_a_granularity_fall_inside_its_buckets(moment, granularity):
    outer = floor(moment, granularity)
    for level in levels_for(granularity):
        inner = floor(moment, level)
        assert outer <= inner and step(inner, level) <= step(outer, granularity)


def test_open_ended_cover_has_no_upper_sliver():
    pieces = cover(T, None, levels_for("day"))
    assert pieces[-1] == ("day", datetime(2025, 3, 6, tzinfo=UTC), None)
    assert pieces[0] == ("raw", T, datetime(2025, 3, 5, 14, tzinfo=UTC))
