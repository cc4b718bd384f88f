"""Report subscriptions (`report_subscriptions`): a name, recipients, a view of the live page
(its URL's kind and payment method) and a schedule. Checked here, field by field in words;
nothing is written when any field is wrong.
"""

import re
from dataclasses import dataclass
from datetime import datetime
from urllib.parse import urlsplit

from bson import ObjectId
from bson.errors import InvalidId
from pymongo import ASCENDING
from pymongo.database import Database
from pymongo.errors import DuplicateKeyError

from core.storage import retry_when_busy, utc
from core.storage.caches import caches_of
from dashboard.display import method_label
from dashboard.pages.live.filters import KINDS, NOT_MIGRATED
from dashboard.query import query_args, query_string
from reports.schedule import Schedule, parse_schedule

SUBSCRIPTIONS = "report_subscriptions"
NAME_LIMIT = 80
RECIPIENTS_LIMIT = 50
ADDRESS = re.compile(r"[^@\s<>,;\"]+@[^@\s<>,;\"]+\.[^@\s<>,;\"]+")


@dataclass(frozen=True)
class Subscription:
    id: ObjectId
    name: str
    recipients: tuple[str, ...]
    view: str  # the live page's query string for kind and method ("?kind=course"), "" for everything
    schedule: Schedule
    since: datetime  # when the schedule was set: its first slot is the next one after this

    @classmethod
    def from_document(cls, doc: dict) -> "Subscription":
        return cls(doc["_id"], doc["name"], tuple(doc["recipients"]), doc.get("view", ""),
                   Schedule.from_document(doc["schedule"]), doc["since"])


class SubscriptionError(ValueError):
    """A subscription that cannot be written: what is wrong, by form field."""

    def __init__(self, errors: dict[str, str]):
        super().__init__("; ".join(errors.values()))
        self.errors = errors


def check(values: dict, payment_methods) -> tuple[dict, Schedule]:
    """The fields to store from a form's `values` (name, recipients, view, frequency, at,
    weekday, day), or SubscriptionError naming every field that is wrong."""
    errors = {}
    name = " ".join(str(values.get("name") or "").split())
    if not name:
        errors["name"] = "Enter a name."
    elif len(name) > NAME_LIMIT:
        errors["name"] = f"A name has at most {NAME_LIMIT} characters."
    recipients, problem = parse_recipients(values.get("recipients"))
    if problem:
        errors["recipients"] = problem
    view, problem = parse_view(values.get("view"), payment_methods)
    if problem:
        errors["view"] = problem
    schedule, problems = parse_schedule(values.get("frequency"), values.get("at"), values.get("weekday"),
                                        values.get("day"))
    errors |= problems
    if errors:
        raise SubscriptionError(errors)
    return {"name": name, "recipients": recipients, "view": view}, schedule


def parse_recipients(text) -> tuple[list[str], str]:
    """Addresses separated by commas, semicolons, spaces or lines; duplicates once."""
    found = [part for part in re.split(r"[,;\s]+", str(text or "")) if part]
    if not found:
        return [], "Enter at least one email address."
    wrong = [part for part in found if not ADDRESS.fullmatch(part)]
    if wrong:
        return [], f"{wrong[0]!r} is not an email address (name@example.com)."
    unique = list(dict.fromkeys(found))
    if len(unique) > RECIPIENTS_LIMIT:
        return [], f"At most {RECIPIENTS_LIMIT} recipients."
    return unique, ""


def parse_view(text, payment_methods) -> tuple[str, str]:
    """The live page's address (or its query string) as the view's query string of kind and
    payment method: the report's period replaces the page's range and granularity."""
    text = str(text or "").strip()
    parts = urlsplit(text if "?" in text or "/" in text or not text else "?" + text)
    if parts.path not in ("", "/"):
        return "", "That is not the live page's address: copy it from the live page (its path is /)."
    args = query_args(parts.query)
    kind, method = args.get("kind", ""), args.get("method", "")
    if kind and kind not in KINDS:
        return "", f"The address's kind {kind!r} is neither course nor test."
    if method and method not in payment_methods and method != NOT_MIGRATED:
        return "", f"The address's payment method {method!r} is not one this shop takes."
    return query_string({"kind": kind, "method": method}), ""


def view_text(view: str) -> str:
    """A view in words: "Courses, PayPal", "All purchases"."""
    args = query_args(view)
    parts = [KINDS[args["kind"]]] if args.get("kind") in KINDS else []
    method = args.get("method", "")
    if method == NOT_MIGRATED:
        parts.append("all but migrated records")
    elif method:
        parts.append(method_label(method))
    return ", ".join(parts) or "All purchases"


def create(db: Database, values: dict, payment_methods, actor: str, now: datetime) -> Subscription:
    """Store a new subscription; SubscriptionError when a field is wrong or the name is taken."""
    fields, schedule = check(values, payment_methods)
    doc = {"_id": ObjectId(), **fields, "key": fields["name"].casefold(), "schedule": schedule.to_document(),
           "since": now, "createdAt": now, "createdBy": actor, "updatedAt": now, "updatedBy": actor}
    _ensure_indexes(db)
    try:
        retry_when_busy(lambda: db[SUBSCRIPTIONS].insert_one(doc))
    except DuplicateKeyError:
        raise SubscriptionError({"name": f"A subscription named {fields['name']!r} exists already."}) from None
    return Subscription.from_document(doc)


def update(db: Database, subscription_id, values: dict, payment_methods, actor: str, now: datetime) -> Subscription:
    """Change a subscription; a new schedule starts from its next slot."""
    fields, schedule = check(values, payment_methods)
    old = get(db, subscription_id)
    if old is None:
        raise SubscriptionError({"name": "This subscription was deleted meanwhile."})
    changes = {**fields, "key": fields["name"].casefold(), "schedule": schedule.to_document(),
               "updatedAt": now, "updatedBy": actor}
    if schedule != old.schedule:
        changes["since"] = now
    _ensure_indexes(db)
    try:
        retry_when_busy(lambda: db[SUBSCRIPTIONS].update_one({"_id": old.id}, {"$set": changes}))
    except DuplicateKeyError:
        raise SubscriptionError({"name": f"A subscription named {fields['name']!r} exists already."}) from None
    return get(db, old.id)


def delete(db: Database, subscription_id) -> bool:
    """Remove a subscription (its send records stay, as history); False when it was gone."""
    oid = _object_id(subscription_id)
    return oid is not None and retry_when_busy(lambda: db[SUBSCRIPTIONS].delete_one({"_id": oid})).deleted_count == 1


def get(db: Database, subscription_id) -> Subscription | None:
    oid = _object_id(subscription_id)
    doc = None if oid is None else retry_when_busy(lambda: utc(db)[SUBSCRIPTIONS].find_one({"_id": oid}))
    return Subscription.from_document(doc) if doc else None


def by_name(db: Database, name: str) -> Subscription | None:
    """The subscription of that name, in any case."""
    key = " ".join(str(name).split()).casefold()
    doc = retry_when_busy(lambda: utc(db)[SUBSCRIPTIONS].find_one({"key": key}))
    return Subscription.from_document(doc) if doc else None


def every(db: Database) -> list[Subscription]:
    """Every subscription, by name."""
    docs = retry_when_busy(lambda: list(utc(db)[SUBSCRIPTIONS].find().sort("key", ASCENDING)))
    return [Subscription.from_document(doc) for doc in docs]


def form_values(subscription: Subscription) -> dict:
    """What the form shows to edit `subscription`."""
    s = subscription.schedule
    return {"name": subscription.name, "recipients": ", ".join(subscription.recipients), "view": subscription.view,
            "frequency": s.frequency, "at": s.at.strftime("%H:%M"), "weekday": s.weekday, "day": s.day}


def _ensure_indexes(db: Database) -> None:
    """Names are unique in any case: the command line sends a subscription by its name."""
    caches_of(db).slot("report subscription index", lambda: retry_when_busy(
        lambda: db[SUBSCRIPTIONS].create_index("key", unique=True, name="key_unique")))


def _object_id(value) -> ObjectId | None:
    try:
        return value if isinstance(value, ObjectId) else ObjectId(str(value))
    except (InvalidId, TypeError):
        return None
