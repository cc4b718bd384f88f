"""Bad input: every public core function either answers or raises a core error with a message
(a ValidationError names the argument), and a rejected call leaves the database unchanged,
document for document.

Two layers: a sweep that gives every argument of every function each value of EDGES while the
others are valid (so a bad value reaches as deep as it can: a grant of an item not owned
yet, a revocation of one that is), and hypothesis over whole calls of junk. The calls go
through a client whose commands are recorded: a refused call that sent no command that
writes cannot have changed anything; one that did is compared with a snapshot of every
collection, as is the database after each function's sweep.
"""

import math
import threading
from datetime import UTC, date, datetime, timedelta, timezone
from decimal import Decimal

import pytest
from bson import ObjectId
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pymongo import MongoClient
from pymongo.monitoring import CommandListener

from core import (
    AlreadyPurchasedError,
    PurchaseError,
    ValidationError,
    buyer_figures,
    create_purchase,
    get_audit_log,
    get_data_version,
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
from core.storage.schema import COURSES
from database.opening import CLIENT_OPTIONS
from tests.conftest import snapshot

FUZZ = settings(max_examples=8, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
# commands that cannot change a document; any other sent by a refused call means a snapshot
READ_ONLY = {"find", "getMore", "aggregate", "count", "distinct", "listCollections", "listIndexes", "killCursors",
             "abortTransaction", "endSessions", "hello", "isMaster", "ismaster", "ping", "buildInfo"}
EAST, WEST = timezone(timedelta(hours=14)), timezone(timedelta(hours=-12))
EDGES = [
    None, True, False, 0, 1, -1, 2**31, 2**63 - 1, 2**63, 2**70, -(2**70),
    0.5, -0.0, 1e-300, 1.8e308, math.inf, -math.inf, math.nan, Decimal("1.5"), Decimal("NaN"),
    "", " ", "\x00", "\ud800", "a\udfffb", "İ", "🙂" * 70, "x" * 100_000, "$gt", "a.b", "course", "test", "paypal",
    "0001-01-01", "9999-12-31", "2025-02-30", "yesterday", "2025-01-01T25:00",
    b"\x00" * 12, bytearray(b"abc"), [], ["course"], {}, {"$gt": ""}, {"$ne": None}, {"$where": "1"}, {"a": {"$gt": 1}},
    set(), frozenset({1}), timedelta(days=1), object(),
    datetime.min, datetime.max, datetime.min.replace(tzinfo=EAST), datetime.max.replace(tzinfo=WEST),
    datetime(1999, 12, 31, 23, 59, 59), datetime(2000, 1, 1, tzinfo=EAST), date(1, 1, 1), date(9999, 12, 31),
    ObjectId(), str(ObjectId()), "0" * 24, " 0123456789abcdef01234567 ",
]
# for free text every string that is not refused is the same case, but for these: an accepted
# value costs a grant, so free-text arguments meet these strings and every value of another type
WORDS = ["", " ", "\x00", "\ud800", "a\udfffb", "İ", "🙂" * 70, "x" * 100_000, "$gt", "a.b", "x" * 201]
TEXT_EDGES = [value for value in EDGES if not isinstance(value, str)] + WORDS
FREE_TEXT = {"idempotencyKey", "discountCode", "actor", "note", "reason", "metadata value"}


class Recorder(CommandListener):
    """The names of the commands a client sent."""

    def __init__(self):
        self.lock = threading.Lock()
        self.sent: list[str] = []

    def started(self, event):
        with self.lock:
            self.sent.append(event.command_name)

    def succeeded(self, event):
        pass

    def failed(self, event):
        pass

    def take(self) -> list[str]:
        with self.lock:
            sent, self.sent = self.sent, []
        return sent


class Guard:
    """Calls core through the recorded client; a refusal must be a core error that wrote nothing."""

    def __init__(self, db, recorder: Recorder):
        self.db, self.recorder = db, recorder
        self.baseline = None  # a snapshot of the database as it is, taken when next needed
        self.escaped: list[str] = []  # non-core errors and refusals that wrote: the sweep's findings

    def attempt(self, label: str, call, names: tuple[str, ...] = ()):
        """`call()`'s answer, or None when it was refused; `names`: one must be in a ValidationError."""
        if self.baseline is None:
            self.baseline = snapshot(self.db)
        self.recorder.take()
        try:
            answer = call()
        except PurchaseError as error:
            message = str(error)
            if not message.strip():
                self.escaped.append(f"{label}: {type(error).__name__} without a message")
            elif names and isinstance(error, ValidationError) and not any(name in message for name in names):
                self.escaped.append(f"{label}: the message does not name {' or '.join(names)}: {message[:200]}")
            if self._wrote() and snapshot(self.db) != self.baseline:
                self.escaped.append(f"{label}: refused ({message[:100]}) after writing")
            return None
        except Exception as error:  # noqa: BLE001 - what this test looks for
            self.escaped.append(f"{label}: {type(error).__name__} escaped: {str(error)[:200]}")
            return None
        if self._wrote():
            self.baseline = None
        return answer

    def _wrote(self) -> bool:
        return bool(set(self.recorder.take()) - READ_ONLY)

    def unchanged(self, what: str) -> None:
        if self.baseline is not None and snapshot(self.db) != self.baseline:
            self.escaped.append(f"{what}: the database changed")

    def rebase(self) -> None:
        """The database was changed on purpose."""
        self.baseline = None


@pytest.fixture
def guard(opened_database, db, catalog):
    recorder = Recorder()
    client = MongoClient(opened_database.uri, event_listeners=[recorder], **CLIENT_OPTIONS)
    yield Guard(client[db.name], recorder)
    client.close()


def label(value) -> str:
    text = repr(value)
    return text if len(text) <= 40 else f"{text[:40]}..."


def grant(db, user, kind, item, **data):
    ids = (item, None) if kind == "course" else (None, item)
    return create_purchase(db, user, *ids, {"amount": 5, "paymentMethod": "paypal", **data})


# the sweep


def test_every_argument_of_a_grant_and_a_revocation(guard, catalog):
    """Each value meets a course the user does not own yet (a grant) or owns (a revocation)."""
    db, user = guard.db, catalog["user"]
    free = [ObjectId() for _ in range(100)]  # courses the user does not own yet
    db[COURSES].insert_many([{"_id": c, "title": f"Spare {i}", "price": 5} for i, c in enumerate(free)])
    card = {"amount": 5, "paymentMethod": "paypal"}
    fields = ["amount", "paymentMethod", "purchasedAt", "currency", "metadata", "idempotencyKey", "discountCode", "actor"]
    grants = {
        "user_id": lambda v, c: create_purchase(db, v, c, None, card),
        "course_id": lambda v, c: create_purchase(db, user, v, None, card),
        "test_id": lambda v, c: create_purchase(db, user, None, v, card),
        "purchase_data": lambda v, c: create_purchase(db, user, c, None, v),
        "source": lambda v, c: create_purchase(db, user, c, None, card, source=v),
        "note": lambda v, c: create_purchase(db, user, c, None, card, note=v),
        "settings": lambda v, c: create_purchase(db, user, c, None, card, settings=v),
        **{name: lambda v, c, n=name: create_purchase(db, user, c, None, {**card, n: v}) for name in fields},
        "metadata value": lambda v, c: create_purchase(db, user, c, None, {**card, "metadata": {"k": v}}),
    }
    names = {"metadata value": ("metadata",), "purchase_data": ("purchase_data", "amount")}
    for slot, call in grants.items():
        for value in TEXT_EDGES if slot in FREE_TEXT else EDGES:
            made = guard.attempt(f"create_purchase {slot}={label(value)}", lambda c=call, v=value: c(v, free[-1]),
                                 names.get(slot, (slot,)))
            if made is not None:  # accepted: it is whole, and its amount is one MongoDB keeps exactly
                assert made["course"] == free.pop() and has_purchased(db, user, made["course"])
                assert math.isfinite(made["amount"]) and made["amount"] >= 0

    revocations = {
        "user_id": lambda v, c: remove_purchase(db, v, c),
        "course_id": lambda v, c: remove_purchase(db, user, v),
        "test_id": lambda v, c: remove_purchase(db, user, None, v),
        **{name: lambda v, c, n=name: remove_purchase(db, user, c, **{n: v}) for name in ("actor", "reason", "source",
                                                                                           "note")},
    }
    owned = None
    for slot, call in revocations.items():
        for value in TEXT_EDGES if slot in FREE_TEXT else EDGES:
            if owned is None:  # a revocation that passes validation meets a purchase
                owned = free.pop()
                grant(db, user, "course", owned)
                guard.rebase()
            if guard.attempt(f"remove_purchase {slot}={label(value)}", lambda c=call, v=value, o=owned: c(v, o),
                             (slot,)) is not None:
                owned = None
    guard.unchanged("after the sweep of grants and revocations")
    assert not guard.escaped, "\n".join(guard.escaped)
    assert {name: found for name, found in check_consistency(db).items() if found} == {}


def test_every_argument_of_the_readers(guard, catalog):
    db, user, course, test = guard.db, catalog["user"], catalog["courses"][0], catalog["tests"][0]
    grant(db, user, "course", course)
    grant(db, user, "test", test)
    remove_purchase(db, user, None, test, reason="refund")
    guard.rebase()
    slots = {
        "has_purchased user_id": (lambda v: has_purchased(db, v, course), ("user_id",)),
        "has_purchased course_id": (lambda v: has_purchased(db, user, v), ("course_id",)),
        "has_purchased test_id": (lambda v: has_purchased(db, user, None, v), ("test_id",)),
        "get_purchase_history user_id": (lambda v: get_purchase_history(db, v), ("user_id",)),
        "get_purchase_history options": (lambda v: get_purchase_history(db, user, v), ("options",)),
        **{f"get_purchase_history {n}": (lambda v, n=n: get_purchase_history(db, user, {n: v}), (n,))
           for n in ("kind", "startDate", "endDate", "limit", "skip", "includeRevoked")},
        "get_purchase_analytics filters": (lambda v: get_purchase_analytics(db, v), ("filters",)),
        **{f"get_purchase_analytics {n}": (lambda v, n=n: get_purchase_analytics(db, {n: v}), (n,))
           for n in ("startDate", "endDate", "kind", "paymentMethod", "excludePaymentMethod", "granularity", "top")},
        "purchase_figures details": (lambda v: purchase_figures(db, {}, details=v), ("details",)),
        "buyer_figures version": (lambda v: buyer_figures(db, {}, v), ("version",)),
        "get_audit_log filters": (lambda v: get_audit_log(db, v), ("filters",)),
        **{f"get_audit_log {n}": (lambda v, n=n: get_audit_log(db, {n: v}), (n,))
           for n in ("actor", "user", "item", "source", "action", "startDate", "endDate", "limit", "skip")},
        "get_recent_activity limit": (lambda v: get_recent_activity(db, v), ("limit",)),
        "get_customer user_id": (lambda v: get_customer(db, v), ("user_id",)),
        "find_customers text": (lambda v: find_customers(db, v), ("text",)),
        "find_customers limit": (lambda v: find_customers(db, "ada", v), ("limit",)),
        "list_items kind": (lambda v: list_items(db, v), ("kind",)),
        "get_item kind": (lambda v: get_item(db, v, course), ("kind",)),
        "get_item item_id": (lambda v: get_item(db, "course", v), ("course_id",)),
        "parse_item_ref value": (lambda v: parse_item_ref(v), ("course", "test")),
    }
    for slot, (call, names) in slots.items():
        for value in EDGES:
            guard.attempt(f"{slot}={label(value)}", lambda c=call, v=value: c(v), names)
    guard.attempt("get_data_version", lambda: get_data_version(db))
    guard.unchanged("after the sweep of readers")  # readers write nothing, answering or refusing
    assert not guard.escaped, "\n".join(guard.escaped)


# hypothesis: whole calls of junk

surrogates = st.text(st.characters(min_codepoint=0xD800, max_codepoint=0xDFFF), min_size=1, max_size=3)
scalars = st.one_of(
    st.none(), st.booleans(),
    st.integers(), st.integers(min_value=2**63 - 2, max_value=2**70), st.integers(max_value=-1),
    st.floats(), st.decimals(allow_nan=True),
    st.text(max_size=40), st.text(min_size=2_000, max_size=3_000), surrogates, st.binary(max_size=20),
    st.datetimes(timezones=st.one_of(st.none(), st.just(UTC), st.just(EAST), st.just(WEST))),
    st.dates(), st.sampled_from(EDGES),
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
    st.fixed_dictionaries({"amount": st.one_of(junk, st.just(5)), "paymentMethod": st.one_of(junk, st.just("paypal"))},
                          optional={"purchasedAt": junk, "currency": junk, "metadata": junk, "idempotencyKey": junk,
                                    "discountCode": junk, "actor": junk}),
)
filters = st.one_of(
    junk,
    st.fixed_dictionaries({}, optional={
        "startDate": junk, "endDate": junk, "kind": junk, "paymentMethod": junk, "granularity": junk, "top": junk,
        "limit": junk, "skip": junk, "actor": junk, "user": junk, "item": junk, "source": junk, "action": junk,
        "includeRevoked": junk, "excludePaymentMethod": junk,
    }),
)


@FUZZ
@given(data=purchase_data, source=st.one_of(junk, st.just("api")), note=st.one_of(st.none(), junk),
       kind=st.sampled_from(["course", "test"]))
def test_a_grant_of_junk_to_a_real_user(guard, catalog, data, source, note, kind):
    db = guard.db
    item = catalog["courses"][0] if kind == "course" else catalog["tests"][0]
    ids = (item, None) if kind == "course" else (None, item)
    made = guard.attempt("create_purchase", lambda: create_purchase(db, catalog["user"], *ids, data, source=source,
                                                                    note=note))
    if made is not None:  # accepted: then it is whole, and its amount is one MongoDB keeps exactly
        assert has_purchased(db, catalog["user"], *ids)
        assert isinstance(made["amount"], int | float) and math.isfinite(made["amount"]) and made["amount"] >= 0
        guard.attempt("remove_purchase", lambda: remove_purchase(db, catalog["user"], *ids))
    assert not guard.escaped, "\n".join(guard.escaped)
    assert {name: found for name, found in check_consistency(db).items() if found} == {}


@FUZZ
@given(user=junk, course=junk, test=junk, actor=junk, reason=junk, source=junk, note=junk)
def test_junk_everywhere_in_grants_and_revocations(guard, catalog, user, course, test, actor, reason, source, note):
    db = guard.db
    guard.attempt("create_purchase", lambda: create_purchase(db, user, course, test, {"amount": 1, "paymentMethod": "paypal"},
                                                             source=source, note=note))
    guard.attempt("remove_purchase", lambda: remove_purchase(db, user, course, test, actor=actor, reason=reason,
                                                             source=source, note=note))
    assert not guard.escaped, "\n".join(guard.escaped)


@FUZZ
@given(actor=st.one_of(st.none(), junk), reason=st.one_of(st.none(), junk), note=st.one_of(st.none(), junk))
def test_a_revocation_of_a_real_purchase_with_junk_words(guard, catalog, actor, reason, note):
    db, user, course = guard.db, catalog["user"], catalog["courses"][1]
    if not has_purchased(db, user, course):
        grant(db, user, "course", course)
        guard.rebase()
    guard.attempt("remove_purchase", lambda: remove_purchase(db, user, course, actor=actor, reason=reason, note=note))
    assert not guard.escaped, "\n".join(guard.escaped)
    assert {name: found for name, found in check_consistency(db).items() if found} == {}


@FUZZ
@given(user=st.one_of(junk, st.just("real")), course=junk, test=junk, options=filters, text=junk, limit=junk)
def test_readers_of_one_customer(guard, catalog, user, course, test, options, text, limit):
    db = guard.db
    user = catalog["user"] if user == "real" else user
    guard.attempt("has_purchased", lambda: has_purchased(db, user, course, test))
    guard.attempt("get_purchase_history", lambda: get_purchase_history(db, user, options))
    guard.attempt("get_customer", lambda: get_customer(db, user))
    guard.attempt("find_customers", lambda: find_customers(db, text, limit))
    guard.unchanged("readers of one customer")
    assert not guard.escaped, "\n".join(guard.escaped)


@FUZZ
@given(f=filters, version=junk, details=junk, limit=junk)
def test_analytics_and_audit_readers(guard, catalog, f, version, details, limit):
    db = guard.db
    guard.attempt("get_purchase_analytics", lambda: get_purchase_analytics(db, f))
    guard.attempt("purchase_figures", lambda: purchase_figures(db, f, details=details))
    guard.attempt("buyer_figures", lambda: buyer_figures(db, f, version))
    guard.attempt("get_audit_log", lambda: get_audit_log(db, f))
    guard.attempt("get_recent_activity", lambda: get_recent_activity(db, limit))
    guard.unchanged("analytics and audit readers")
    assert not guard.escaped, "\n".join(guard.escaped)


@FUZZ
@given(kind=junk, item=junk)
def test_catalog_readers(guard, catalog, kind, item):
    db = guard.db
    guard.attempt("list_items", lambda: list_items(db, kind))
    guard.attempt("get_item", lambda: get_item(db, kind, item))
    guard.attempt("parse_item_ref", lambda: parse_item_ref(item))
    assert not guard.escaped, "\n".join(guard.escaped)


def test_values_that_escaped_before_are_refused_by_name(guard, catalog):
    """What escaped as TypeError, OverflowError, InvalidDocument or UnicodeEncodeError."""
    db, user, course = guard.db, catalog["user"], catalog["courses"][0]
    card = {"amount": 5, "paymentMethod": "paypal"}
    cases = [
        ("amount", lambda: create_purchase(db, user, course, None, {**card, "amount": 2**63})),
        ("amount", lambda: create_purchase(db, user, course, None, {**card, "amount": 1.8e308})),
        ("amount", lambda: create_purchase(db, user, course, None, {**card, "amount": Decimal("1.5")})),
        ("decimals", lambda: create_purchase(db, user, course, None, {**card, "amount": 0.001})),
        ("paymentMethod", lambda: create_purchase(db, user, course, None, {**card, "paymentMethod": "\x00"})),
        ("currency", lambda: create_purchase(db, user, course, None, {**card, "currency": "ÄÖÜ"})),
        ("purchasedAt", lambda: create_purchase(db, user, course, None, {**card, "purchasedAt": datetime(9999, 12, 31)})),
        ("purchasedAt", lambda: create_purchase(db, user, course, None, {**card, "purchasedAt": datetime(751, 1, 12)})),
        ("metadata", lambda: create_purchase(db, user, course, None, {**card, "metadata": {"a.b": 1}})),
        ("metadata", lambda: create_purchase(db, user, course, None, {**card, "metadata": {"$x": 1}})),
        ("metadata", lambda: create_purchase(db, user, course, None, {**card, "metadata": {"s": {1, 2}}})),
        ("metadata", lambda: create_purchase(db, user, course, None, {**card, "metadata": {"n": math.nan}})),
        ("metadata", lambda: create_purchase(db, user, course, None, {**card, "metadata": {"x": "y" * 17_000_000}})),
        ("metadata", lambda: create_purchase(db, user, course, None, {**card, "metadata": {"x": "\ud800"}})),
        ("metadata", lambda: create_purchase(db, user, course, None, {**card, "metadata": {"\udfff": 1}})),
        ("discountCode", lambda: create_purchase(db, user, course, None, {**card, "discountCode": "x\ud800"})),
        ("idempotencyKey", lambda: create_purchase(db, user, course, None, {**card, "idempotencyKey": "\ud800"})),
        ("note", lambda: create_purchase(db, user, course, None, card, note="\ud800")),
        ("settings", lambda: create_purchase(db, user, course, None, card, settings={"currency": "EUR"})),
        ("endDate", lambda: get_purchase_analytics(db, {"endDate": "9999-12-31"})),
        ("endDate", lambda: get_audit_log(db, {"endDate": datetime.max})),
        ("startDate", lambda: get_purchase_history(db, user, {"startDate": datetime.min.replace(tzinfo=EAST)})),
        ("startDate", lambda: get_purchase_history(db, user, {"startDate": datetime.max.replace(tzinfo=WEST)})),
        ("actor", lambda: get_audit_log(db, {"actor": "\ud800"})),
        ("paymentMethod", lambda: get_purchase_analytics(db, {"paymentMethod": "\ud800"})),
        ("skip", lambda: get_audit_log(db, {"skip": 2**70})),
        ("skip", lambda: get_audit_log(db, {"skip": 2**63 - 1})),
        ("kind", lambda: get_purchase_analytics(db, {"kind": ["course"]})),
        ("kind", lambda: list_items(db, ["course"])),
    ]
    for name, call in cases:
        assert guard.attempt(name, call, (name,)) is None, f"{name}: accepted"
    grant(db, user, "course", course)
    guard.rebase()
    for name, value in (("actor", ""), ("reason", "\ud800"), ("note", "x" * 201)):
        assert guard.attempt(name, lambda n=name, v=value: remove_purchase(db, user, course, **{n: v}), (name,)) is None
    assert guard.attempt("again", lambda: grant(db, user, "course", course)) is None  # AlreadyPurchasedError
    guard.unchanged("refusals")
    assert not guard.escaped, "\n".join(guard.escaped)
    with pytest.raises(AlreadyPurchasedError):
        grant(db, user, "course", course)


def test_analytics_settings_that_are_not_core_settings_are_refused_by_name(guard, catalog):
    for call in (lambda: get_purchase_analytics(guard.db, {}, settings={"buyers_max_age": 1}),
                 lambda: buyer_figures(guard.db, {}, settings="30")):
        with pytest.raises(ValidationError, match="settings"):
            call()
    for version in (-1, 1.5, "3", True, {"$gt": 0}, 2**64):
        with pytest.raises(ValidationError, match="version"):
            buyer_figures(guard.db, {}, version)
    for details in ("no", None, 0):
        with pytest.raises(ValidationError, match="details"):
            purchase_figures(guard.db, {}, details=details)
    guard.unchanged("analytics refusals")
