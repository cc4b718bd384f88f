"""A brute-force computation of every analytics figure, in plain Python over the documents."""

from collections import Counter, defaultdict

from core.analytics.periods import buckets, floor, step
from core.validation import parse_date


def brute_force(purchases, revoked, titles, filters, granularity, as_of):
    """What get_purchase_analytics must return for these documents and filters."""
    start = parse_date(filters.get("startDate"), "startDate")
    end = parse_date(filters.get("endDate"), "endDate", end=True)
    kind, method, top = filters.get("kind"), filters.get("paymentMethod"), filters.get("top", 10)

    def kind_of(doc):
        return "course" if "course" in doc else "test"

    def chosen(doc, field):
        return (
            (start is None or doc[field] >= start)
            and (end is None or doc[field] < end)
            and kind in (None, kind_of(doc))
            and method in (None, doc["paymentMethod"])
        )

    active = [p for p in purchases if chosen(p, "purchasedAt")]
    gone = [r for r in revoked if chosen(r, "revokedAt")]
    total = sum(p["amount"] for p in active)
    per_user = Counter(p["user"] for p in active)
    figures = {
        "totalPurchases": len(active),
        "totalRevenue": total,
        "averageOrderValue": total / len(active) if active else 0.0,
        "coursePurchases": sum(1 for p in active if "course" in p),
        "testPurchases": sum(1 for p in active if "test" in p),
        "courseRevenue": sum(p["amount"] for p in active if "course" in p),
        "testRevenue": sum(p["amount"] for p in active if "test" in p),
        "uniqueBuyers": len(per_user),
        "revoked": {"count": len(gone), "revenue": sum(r["amount"] for r in gone)},
        "comped": {"count": sum(1 for p in active if p["amount"] == 0)},
    }
    histogram = Counter(per_user.values())
    figures["buyers"] = {
        "newBuyers": histogram.get(1, 0),
        "repeatBuyers": sum(n for k, n in histogram.items() if k > 1),
        "purchasesPerBuyer": [{"purchases": k, "buyers": histogram[k]} for k in sorted(histogram)],
    }
    for item_kind, name in (("course", "popularCourses"), ("test", "popularTests")):
        totals = defaultdict(lambda: [0, 0.0])
        for p in active:
            if item_kind in p:
                totals[p[item_kind]][0] += 1
                totals[p[item_kind]][1] += p["amount"]
        rows = [{"id": i, "title": titles[i], "count": c, "revenue": r} for i, (c, r) in totals.items()]
        rows.sort(key=lambda row: (-row["count"], -row["revenue"], row["title"]))
        figures[name] = rows[:top]
    methods = defaultdict(lambda: [0, 0.0])
    for p in active:
        methods[p["paymentMethod"]][0] += 1
        methods[p["paymentMethod"]][1] += p["amount"]
    rows = [{"paymentMethod": m, "count": c, "revenue": r} for m, (c, r) in methods.items()]
    figures["paymentMethods"] = sorted(rows, key=lambda row: (-row["count"], -row["revenue"], row["paymentMethod"]))
    figures["revenueByPeriod"] = series(active, start, end, granularity, as_of)
    return figures


def series(active, start, end, unit, as_of):
    """Buckets from the range's start (or the first sale) to its end (or now), zeros included."""
    if not active and start is None:
        return []
    first = start or floor(min(p["purchasedAt"] for p in active), unit)
    last = end or max([as_of, *(step(floor(p["purchasedAt"], unit), unit) for p in active)])
    rows = []
    for bucket in buckets(first, last, unit):
        inside = [p for p in active if floor(p["purchasedAt"], unit) == bucket]
        rows.append({"period": bucket, "revenue": sum(p["amount"] for p in inside), "count": len(inside)})
    return rows


def assert_figures_match(actual: dict, expected: dict) -> None:
    """Counts and lists exactly; money within half a cent."""
    for name, want in expected.items():
        _match(actual[name], want, name)


def _match(have, want, path):
    if isinstance(want, dict):
        for k, v in want.items():
            _match(have[k], v, f"{path}.{k}")
    elif isinstance(want, list):
        assert len(have) == len(want), f"{path}: {len(have)} rows, expected {len(want)}: {have} != {want}"
        for i, (h, w) in enumerate(zip(have, want, strict=True)):
            _match(h, w, f"{path}[{i}]")
    elif isinstance(want, float) or isinstance(have, float):
        assert abs(have - want) < 0.005, f"{path}: {have} != {want}"
    else:
        assert have == want, f"{path}: {have!r} != {want!r}"
