"""Bad input, fuzzed: every public core function either answers or raises a core error with a
message, and a rejected call leaves the database unchanged, document for document."""

import math
import re
from datetime import UTC, date, datetime, timedelta, timezone
from decimal import Decimal

import pytest
from bson import ObjectId
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from core import (
    PurchaseError,
    buyer_figures,
    create_purchase,
    get_audit_log,
    get_purchase_analytics,
    get_purchase_history,
    get_recent_activity,
    has_purchased,
    purchase_figures,
    remove_purchase,
)
from core.catalog import get_item, list_items, parse_item_ref
from core.customers import find_customers, get_customer
from core.operations import check_consistency
from tests.conftest import snapshot

FUZZ = settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])

scalars = st.one_of(
    st.none(), st.booleans(),
    st.integers(), st.integers(min_value=2**63 - 2, max_value=2**70), st.integers(max_value=-1),
    st.floats(), st.sampled_from([math.nan, math.inf, -math.inf, 1.8e308, 1e15, -0.0, 0.001]),
    st.text(max_size=40), st.text(min_size=2_000, max_size=3_000), st.sampled_from(["", "\x00", "ÄÖÜ", "$gt", "a.b"]),
    st.binary(max_size=20), st.decimals(allow_nan=True),
    st.datetimes(timezones=st.one_of(st.none(), st.just(UTC), st.just(timezone(timedelta(hours=14))))),
    st.sampled_from([datetime.min, datetime.max, datetime(9999, 12, 31, tzinfo=UTC), date(1, 1, 1), date(9999, 12, 31)]),
    st.sampled_from(["0001-01-01", "9999-12-31", "2025-02-30", "2025-01-01T25:00", "yesterday"]),
    st.builds(lambda: str(ObjectId())), st.builds(ObjectId),
)
operators = st.sampled_from([{"$gt": ""}, {"$ne": None}, {"$where": "1"}, {"$regex": ".*"}, {"a": {"$gt": 1}}])
junk = st.recursive(
    st.one_of(scalars, operators),
    lambda inner: st.one_of(st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=8), inner, max_size=4),
                            st.frozensets(st.integers(), max_size=3)),
    max_leaves=8,
)
purchase_data = st.one_of(
    junk,
    st.fixed_dictionaries({}, optional={
        "amount": junk, "paymentMethod": st.one_of(junk, st.just("paypal")), "purchasedAt": junk,
        "currency": junk, "metadata": junk, "idempotencyKey": junk, "discountCode": junk, "actor": junk,
    }),
)
filters = st.one_of(
    junk,
    st.fixed_dictionaries({}, optional={
        "startDate": junk, "endDate": junk, "kind": junk, "paymentMethod": junk, "granularity": junk, "top": junk,
        "limit": junk, "skip": junk, "actor": junk, "user": junk, "item": junk, "source": junk, "action": junk,
    }),
)


def attempt(db, call):
    """Call; on a refusal check that it is a core error that says something and wrote nothing."""
    before = snapshot(db)
    try:
        return call()
    except PurchaseError as error:
        refusal = error
    assert str(refusal).strip(), f"{type(refusal).__name__} without a message"
    assert snapshot(db) == before, "a rejected call wrote something"
    return None


def consistent(db) -> None:
    assert {name: found for name, found in check_consistency(db).items() if found} == {}


@FUZZ
@given(user=junk, course=junk, test=junk, data=purchase_data, source=junk, note=junk)
def test_create_purchase(db, catalog, user, course, test, data, source, note):
    attempt(db, lambda: create_purchase(db, user, course, test, data, source=source, note=note))
    consistent(db)


@FUZZ
@given(data=purchase_data, use_real_ids=st.booleans(), kind=st.sampled_from(["course", "test"]))
def test_create_purchase_with_real_ids_and_fuzzed_data(db, catalog, data, use_real_ids, kind):
    item = catalog["courses"][0] if kind == "course" else catalog["tests"][0]
    ids = (item, None) if kind == "course" else (None, item)
    user = ObjectId() if not use_real_ids else catalog["user"]
    made = attempt(db, lambda: create_purchase(db, user, *ids, data))
    if made is not None:  # accepted: then it is whole, and its amount is one MongoDB keeps exactly
        assert has_purchased(db, user, *ids)
        assert isinstance(made["amount"], int | float) and math.isfinite(made["amount"]) and made["amount"] >= 0
        remove_purchase(db, user, *ids)
    consistent(db)


@FUZZ
@given(user=junk, course=junk, test=junk, actor=junk, reason=junk, source=junk, note=junk)
def test_remove_purchase(db, catalog, user, course, test, actor, reason, source, note):
    attempt(db, lambda: remove_purchase(db, user, course, test, actor=actor, reason=reason, source=source, note=note))
    consistent(db)


@FUZZ
@given(user=junk, course=junk, test=junk, options=junk)
def test_readers_of_one_customer(db, catalog, user, course, test, options):
    attempt(db, lambda: has_purchased(db, user, course, test))
    attempt(db, lambda: get_purchase_history(db, user, options))
    attempt(db, lambda: get_customer(db, user))
    attempt(db, lambda: find_customers(db, user, options))


@FUZZ
@given(f=filters, version=junk, details=junk)
def test_analytics_and_audit_readers(db, catalog, f, version, details):
    attempt(db, lambda: get_purchase_analytics(db, f))
    attempt(db, lambda: purchase_figures(db, f, details=details))
    attempt(db, lambda: buyer_figures(db, f, version))
    attempt(db, lambda: get_audit_log(db, f))
    attempt(db, lambda: get_recent_activity(db, version))


@FUZZ
@given(kind=junk, item=junk)
def test_catalog_readers(db, catalog, kind, item):
    attempt(db, lambda: list_items(db, kind))
    attempt(db, lambda: get_item(db, kind, item))
    attempt(db, lambda: parse_item_ref(item))


def test_the_issues_inputs_are_refused_by_name(db, catalog):
    """The values the issue found escaping as TypeError, OverflowError, InvalidDocument, ..."""
    user, course = catalog["user"], catalog["courses"][0]
    cases = [
        ({"amount": 2**63, "paymentMethod": "paypal"}, "amount"),
        ({"amount": 1.8e308, "paymentMethod": "paypal"}, "amount"),
        ({"amount": Decimal("1.5"), "paymentMethod": "paypal"}, "amount"),
        ({"amount": 5, "paymentMethod": "\x00"}, "paymentMethod"),
        ({"amount": 5, "paymentMethod": "paypal", "currency": "ÄÖÜ"}, "currency"),
        ({"amount": 5, "paymentMethod": "paypal", "purchasedAt": datetime(9999, 12, 31)}, "purchasedAt"),
        ({"amount": 5, "paymentMethod": "paypal", "purchasedAt": datetime(751, 1, 12)}, "purchasedAt"),
        ({"amount": 5, "paymentMethod": "paypal", "metadata": {"a.b": 1}}, "metadata"),
        ({"amount": 5, "paymentMethod": "paypal", "metadata": {"$x": 1}}, "metadata"),
        ({"amount": 5, "paymentMethod": "paypal", "metadata": {"s": {1, 2}}}, "metadata"),
        ({"amount": 5, "paymentMethod": "paypal", "metadata": {"n": math.nan}}, "metadata"),
        ({"amount": 5, "paymentMethod": "paypal", "metadata": {"x": "y" * 17_000_000}}, "metadata"),
        ({"amount": 0.001, "paymentMethod": "paypal"}, "decimals"),
    ]
    for data, named in cases:
        before = snapshot(db)
        with pytest.raises(PurchaseError, match=re.escape(named)):
            create_purchase(db, user, course, None, data)
        assert snapshot(db) == before
    for kind in (["course"], {"$ne": None}):
        attempt(db, lambda k=kind: get_purchase_analytics(db, {"kind": k}))
    create_purchase(db, user, course, None, {"amount": 5, "paymentMethod": "paypal"})
    before = snapshot(db)
    with pytest.raises(PurchaseError, match="actor"):
        remove_purchase(db, user, course, None, actor="")
    assert snapshot(db) == before
