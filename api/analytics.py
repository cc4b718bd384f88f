"""GET /api/v1/analytics: the live page's figures for a view given as the page's own query
string (range, start, end, kind, method, granularity), from the same core call."""

from dataclasses import replace
from datetime import UTC, datetime

from pydantic import BaseModel, Field

from api.schemas import AnalyticsQuery, iso
from core import ValidationError, get_purchase_analytics
from core.validation import MINOR_UNITS
from dashboard.display import today_in
from dashboard.pages.live.data import kpis
from dashboard.pages.live.filters import (
    FINEST_SPAN_DAYS,
    NOT_MIGRATED,
    View,
    analytics_filters,
    custom_range_allowed,
    describe,
    span_days,
    to_query,
)


class Period(BaseModel):
    period: str
    count: int
    revenue: float


class ItemFigure(BaseModel):
    id: str
    title: str
    count: int
    revenue: float


class MethodFigure(BaseModel):
    payment_method: str
    count: int
    revenue: float


class Kpis(BaseModel):
    revenue_today: float
    purchases_today: int
    revenue_24h: float
    purchases_24h: int
    revenue_previous_24h: float
    purchases_previous_24h: int


class Buyers(BaseModel):
    unique: int
    new: int = Field(description="buyers with one purchase in the range")
    repeat: int = Field(description="buyers with more than one")
    as_of: str


class Analytics(BaseModel):
    view: str = Field(description="the view as the live page's query string")
    description: str
    currency: str
    total_purchases: int
    total_revenue: float
    average_order_value: float
    course_purchases: int
    test_purchases: int
    course_revenue: float
    test_revenue: float
    free_grants: int
    revoked_count: int
    revoked_revenue: float
    granularity: str
    start: str | None
    end: str | None
    revenue_by_period: list[Period]
    popular_courses: list[ItemFigure]
    popular_tests: list[ItemFigure]
    payment_methods: list[MethodFigure]
    buyers: Buyers
    kpis: Kpis
    data_version: int
    as_of: str


def register(api, context, *, tags: list, errors: dict) -> None:
    db, settings = context.db, context.settings

    @api.get("/analytics", tags=tags, responses={200: Analytics, **errors}, summary="The live page's figures")
    def analytics(query: AnalyticsQuery):
        """Figures exact as of `as_of` (data version `data_version`); `range` and the days are in
        the dashboard's TIMEZONE, as on the page."""
        view = view_of(query, settings.core.payment_methods)
        now = datetime.now(UTC)
        figures = get_purchase_analytics(db, analytics_filters(view, today_in(settings.timezone, now)),
                                         settings=settings.core)
        return answer(view, figures, kpis(db, view, settings.timezone, now), settings.core.currency)


def view_of(query: AnalyticsQuery, methods) -> View:
    """The live page's view for these arguments; refuse what the page would quietly change."""
    if query.method is not None and query.method not in methods and query.method != NOT_MIGRATED:
        raise ValidationError(f"method must be one of {sorted(methods)} or {NOT_MIGRATED!r}, got {query.method!r}",
                              field="method")
    view = View(preset=query.range, kind=query.kind or "", method=query.method or "",
                granularity=query.granularity or "")
    if query.range == "custom":
        if query.start is None or query.end is None:
            raise ValidationError("range=custom needs start and end", field="start" if query.start is None else "end")
        if not custom_range_allowed(query.start, query.end):
            raise ValidationError("a custom range runs from 2000-01-01 to tomorrow, start before end, got "
                                  f"{query.start} to {query.end}", field="start")
        view = replace(view, start=query.start, end=query.end)
    elif query.start is not None or query.end is not None:
        raise ValidationError("start and end go with range=custom", field="start" if query.start else "end")
    finest = FINEST_SPAN_DAYS.get(view.granularity)
    if finest is not None and span_days(view) > finest:
        raise ValidationError(f"granularity {view.granularity} serves ranges up to {finest} days; this one has "
                              f"{span_days(view)}", field="granularity")
    return view


def answer(view: View, f: dict, k, currency: str) -> dict:
    return {
        "view": to_query(view),
        "description": describe(view),
        "currency": currency,
        "total_purchases": f["totalPurchases"],
        "total_revenue": f["totalRevenue"],
        "average_order_value": round(f["averageOrderValue"], MINOR_UNITS.get(currency, 2)),
        "course_purchases": f["coursePurchases"],
        "test_purchases": f["testPurchases"],
        "course_revenue": f["courseRevenue"],
        "test_revenue": f["testRevenue"],
        "free_grants": f["comped"]["count"],
        "revoked_count": f["revoked"]["count"],
        "revoked_revenue": f["revoked"]["revenue"],
        "granularity": f["granularity"],
        "start": iso(f["startDate"]),
        "end": iso(f["endDate"]),
        "revenue_by_period": [{"period": iso(r["period"]), "count": r["count"], "revenue": r["revenue"]}
                              for r in f["revenueByPeriod"]],
        "popular_courses": [_item(r) for r in f["popularCourses"]],
        "popular_tests": [_item(r) for r in f["popularTests"]],
        "payment_methods": [{"payment_method": r["paymentMethod"], "count": r["count"], "revenue": r["revenue"]}
                            for r in f["paymentMethods"]],
        "buyers": {"unique": f["uniqueBuyers"], "new": f["buyers"]["newBuyers"],
                   "repeat": f["buyers"]["repeatBuyers"], "as_of": iso(f["buyers"]["asOf"])},
        # sums of exact amounts: no float noise past the thousandths every amount fits in
        "kpis": {"revenue_today": round(k.revenue_today, 3), "purchases_today": k.purchases_today,
                 "revenue_24h": round(k.revenue_24h, 3), "purchases_24h": k.purchases_24h,
                 "revenue_previous_24h": round(k.revenue_prev_24h, 3), "purchases_previous_24h": k.purchases_prev_24h},
        "data_version": f["dataVersion"],
        "as_of": iso(f["asOf"]),
    }


def _item(row: dict) -> dict:
    return {"id": str(row["id"]), "title": row["title"], "count": row["count"], "revenue": row["revenue"]}
