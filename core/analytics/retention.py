"""Retention: repeat buyers, days from a first to a second purchase, lapsed buyers; read from
the retention documents the cohorts keep (core.analytics.cohorts), all time, per filters.

- `buyers`: the "buyers" document's counter.
- repeat buyers and the median: every buyer with a second purchase has one gap, counted in a
  document per whole day ("gap|d|<days>") and per 32 days ("gap|b|<days // 32>"). The bins
  give the number of repeat buyers and the bins that hold the middle one or two; only those
  bins' days are read, so the median is exact in whole days and its read does not grow with
  the number of days the gaps span.
- lapsed: buyers less the buyers whose last purchase lies on or after the cutoff day, one
  "last|<day>" document a day: at most 92 documents whatever the data's age.
"""

from datetime import UTC, datetime, timedelta

from pymongo.database import Database

from core.analytics.cohorts import GAP_BIN, choice_of, day_text, id_range, read_at_one_version
from core.analytics.periods import floor
from core.errors import PurchaseError, ValidationError
from core.storage.documents import utc
from core.storage.schema import COHORT_RETENTION
from core.validation import cohort_options, shown

LAPSED_DAYS = 90


def retention_figures(db: Database, options=None, *, now: datetime | None = None) -> dict:
    """Repeat buyers, days to a second purchase and lapsed buyers, over purchases not revoked.

    `options`: `kind`, `paymentMethod`, `paid`, as cohort_figures takes them (the purchases
    that count); over every buyer they leave, whatever their cohort. `now` (default: the
    present) is the moment "lapsed" is measured from. Returns {"buyers", "repeat_rate": the
    share of buyers with two purchases or more (0.0 without buyers), "median_days_to_second":
    over the buyers who have a second purchase, the median of whole days (24 hours, rounded
    down) from their first to their second (the mean of the two middle ones for an even
    number; None when no buyer has a second), "lapsed_90d": buyers whose last purchase is
    before the UTC day 90 days before today (today's date less 90 days)}.
    """
    chosen = cohort_options(options, dates=False)
    if now is None:
        now = datetime.now(UTC)
    elif not isinstance(now, datetime):
        raise ValidationError(f"now must be a datetime, got {shown(now)}", field="now")
    cutoff = floor(now if now.tzinfo else now.replace(tzinfo=UTC), "day") - timedelta(days=LAPSED_DAYS)
    choice = choice_of(chosen)

    def read(find):
        def counts(query: dict) -> dict[str, int]:
            return {doc["_id"]: (doc.get("n") or {}).get(choice, 0)
                    for doc in find(COHORT_RETENTION, query, {f"n.{choice}": 1})}

        buyers = sum(counts({"_id": "buyers"}).values())
        recent = sum(counts(id_range(f"last|{day_text(cutoff)}", "last|~")).values())
        bins = {int(name.rsplit("|", 1)[1]): n for name, n in counts(id_range("gap|b|", "gap|b|~")).items() if n}
        return buyers, recent, bins, _median(counts, bins)

    buyers, active, bins, median = read_at_one_version(utc(db), read)
    repeaters = sum(bins.values())
    return {"buyers": buyers, "repeat_rate": repeaters / buyers if buyers else 0.0,
            "median_days_to_second": median, "lapsed_90d": buyers - active}


def _median(counts, bins: dict[int, int]) -> float | None:
    """The median gap, from the bins' counts and the days of the one or two bins that hold it
    (`counts(query)`: {_id: the chosen counter} of the documents the query finds)."""
    count = sum(bins.values())
    if count == 0:
        return None
    middle = sorted({(count - 1) // 2, count // 2})  # the positions, from 0, of the middle one or two
    values, before = [], 0
    for number in sorted(bins):
        inside = [position - before for position in middle if before <= position < before + bins[number]]
        if inside:
            low, high = f"gap|d|{number * GAP_BIN:07d}", f"gap|d|{(number + 1) * GAP_BIN:07d}"
            days = sorted((int(name.rsplit("|", 1)[1]), n) for name, n in counts(id_range(low, high)).items())
            values += [_at(days, position) for position in inside]
        before += bins[number]
    return sum(values) / len(values)


def _at(days: list[tuple[int, int]], position: int) -> int:
    """The gap at `position` (from 0) of a bin's days, [(days, buyers)] in order."""
    for gap, buyers in days:
        if position < buyers:
            return gap
        position -= buyers
    raise PurchaseError("the retention figures disagree with themselves (a gap bin counts more buyers than its "
                        "days); the consistency check reports them and a rebuild of the rollups repairs them")
