"""Demo data: a catalog, users and 90 days of purchases that keep the hybrid invariant."""

import itertools
import math
import random
from datetime import UTC, datetime, timedelta

from bson import ObjectId
from pymongo.database import Database

from core.changes import load_activity
from core.operations.rebuild import load_rollups
from core.storage.db import bulk_insert
from core.storage.documents import utc
from core.storage.retry import retry_when_busy
from core.storage.schema import ACTIVITY, COURSES, KINDS, PURCHASES, TESTS, USERS, user_array

SUBJECTS = [
    "Python", "Data Analysis", "Machine Learning", "SQL", "Statistics", "JavaScript", "React",
    "Cloud Basics", "Docker", "Excel", "Product Management", "UX Design", "Marketing Analytics",
    "Public Speaking", "Project Management", "Accounting", "Spanish", "Photography",
    "Cybersecurity", "Linux", "Go", "Rust", "Negotiation", "Writing",
]
LEVELS = ["for Beginners", "Fundamentals", "in Practice", "Masterclass", "Bootcamp"]
FIRST = ["Ada", "Alan", "Grace", "Linus", "Margaret", "Ken", "Barbara", "Dennis", "Frances", "Edsger",
         "Radia", "Tim", "Sophie", "John", "Hedy", "Katherine", "Guido", "Anita", "Donald", "Shafi"]
LAST = ["Lovelace", "Turing", "Hopper", "Torvalds", "Hamilton", "Thompson", "Liskov", "Ritchie",
        "Allen", "Dijkstra", "Perlman", "Berners-Lee", "Wilson", "McCarthy", "Lamarr", "Johnson",
        "van Rossum", "Borg", "Knuth", "Goldwasser"]
# share of sales by payment method; admin grants are free access
PAYMENT_WEIGHTS = {"credit_card": 46, "paypal": 24, "stripe": 18, "bank_transfer": 7, "admin_grant": 5}
# sales by hour of day (UTC) and by weekday (Monday first)
HOUR_WEIGHTS = [2, 1, 1, 1, 1, 2, 3, 5, 7, 8, 9, 10, 12, 12, 10, 9, 9, 10, 12, 14, 15, 13, 8, 4]
WEEKDAY_WEIGHTS = [10, 11, 11, 10, 9, 6, 7]
DAYS = 90
CHUNK = 500


def build_demo(rng: random.Random, users: int, items: int, purchases: int, now: datetime) -> dict[str, list]:
    """Return documents for `courses`, `tests`, `users`, `purchases`; pure, so it is testable."""
    if purchases > users * items // 2:
        raise ValueError(f"{purchases} purchases need more than {users} users x {items} items")
    courses = [_item(rng, i, "course") for i in range(math.ceil(items * 0.6))]
    tests = [_item(rng, i, "test") for i in range(items - len(courses))]
    people = [_user(rng, i, now) for i in range(users)]
    catalog = [("course", c) for c in courses] + [("test", t) for t in tests]
    # cumulative weights, summed once: `choices` with plain weights sums them on every call,
    # which made 300,000 purchases among 30,000 users take an hour (the draws are the same)
    item_weights = list(itertools.accumulate(1 / (rank + 1) ** 0.8 for rank in range(len(catalog))))
    user_weights = list(itertools.accumulate(rng.paretovariate(1.5) for _ in people))
    days, day_weights = _days(now)
    day_weights = list(itertools.accumulate(day_weights))
    hour_weights = list(itertools.accumulate(HOUR_WEIGHTS))
    taken, sold = set(), []
    while len(sold) < purchases:
        person = rng.choices(people, cum_weights=user_weights)[0]
        kind, item = rng.choices(catalog, cum_weights=item_weights)[0]
        if (person["_id"], item["_id"]) in taken:
            continue
        taken.add((person["_id"], item["_id"]))
        moment = rng.choices(days, cum_weights=day_weights)[0] + timedelta(
            hours=rng.choices(range(24), cum_weights=hour_weights)[0], minutes=rng.randrange(60), seconds=rng.randrange(60)
        )
        if moment > now:  # today's later hours have not happened yet: spread over the hours that have
            midnight = moment.replace(hour=0, minute=0, second=0)
            moment = midnight + (now - midnight) * rng.random()
        sold.append(_purchase(rng, person, kind, item, moment))
        person[user_array(kind)].append(item["_id"])
    sold.sort(key=lambda p: p["purchasedAt"])
    return {COURSES: courses, TESTS: tests, USERS: people, PURCHASES: sold}


def seed_demo(db: Database, *, users=600, items=40, purchases=5000, seed=None, progress=None) -> dict[str, int]:
    """Build demo documents for now and write them; return counts by collection."""
    documents = build_demo(random.Random(seed), users, items, purchases, datetime.now(UTC))
    return load_demo(utc(db), documents, progress)


def load_demo(db: Database, documents: dict[str, list], progress=None) -> dict[str, int]:
    """Bulk-write demo documents; purchases go before the users whose arrays list them."""
    counts = {}
    for name in (COURSES, TESTS, PURCHASES, USERS):
        docs = documents[name]
        for start in range(0, len(docs), CHUNK):
            bulk_insert(db, name, docs[start : start + CHUNK])
            if progress is not None:
                progress(len(docs[start : start + CHUNK]))
        counts[name] = len(docs)
    counts["rollups"] = load_rollups(db, documents[PURCHASES], [])
    names = {u["_id"]: u["name"] for u in documents[USERS]}
    titles = {i["_id"]: i["title"] for i in documents[COURSES] + documents[TESTS]}
    counts[ACTIVITY] = load_activity(db, documents[PURCHASES], names, titles)
    return counts


def is_empty(db: Database) -> bool:
    """True when there are no users and no purchases yet."""
    return all(retry_when_busy(lambda c=c: db[c].find_one({}, {"_id": 1})) is None for c in (USERS, PURCHASES))


def _item(rng: random.Random, index: int, kind: str) -> dict:
    subject = SUBJECTS[index % len(SUBJECTS)]
    if kind == "course":
        title = f"{subject} {LEVELS[(index // len(SUBJECTS)) % len(LEVELS)]}"
        price = rng.choice([19.99, 29.99, 39.99, 49.99, 79.99, 99.99])
    else:
        title = f"{subject} Certification Test" + (f" {index // len(SUBJECTS) + 1}" if index >= len(SUBJECTS) else "")
        price = rng.choice([4.99, 9.99, 14.99, 19.99])
    return {"_id": ObjectId(), "title": title, "price": price}


def _user(rng: random.Random, index: int, now: datetime) -> dict:
    first, last = rng.choice(FIRST), rng.choice(LAST)
    return {
        "_id": ObjectId(),
        "name": f"{first} {last}",
        "email": f"{first}.{last}.{index}@example.com".lower().replace(" ", ""),
        "createdAt": now - timedelta(days=DAYS + rng.randrange(365)),
        **{spec.array: [] for spec in KINDS.values()},
    }


def _days(now: datetime):
    """Midnights of the last DAYS days, weighted by weekday and a gentle growth trend."""
    today = now.replace(hour=0, minute=0, second=0, microsecond=0)
    days = [today - timedelta(days=back) for back in range(DAYS - 1, -1, -1)]
    weights = [WEEKDAY_WEIGHTS[d.weekday()] * (0.7 + 0.6 * i / DAYS) for i, d in enumerate(days)]
    return days, weights


def _purchase(rng: random.Random, person: dict, kind: str, item: dict, moment: datetime) -> dict:
    method = rng.choices(list(PAYMENT_WEIGHTS), list(PAYMENT_WEIGHTS.values()))[0]
    purchase = {
        "_id": ObjectId(),
        "user": person["_id"],
        kind: item["_id"],
        "purchasedAt": moment.replace(microsecond=0),
        "amount": item["price"],
        "paymentMethod": method,
        "currency": "USD",
        "actor": "demo",
    }
    if method == "admin_grant":
        purchase["amount"] = 0
    elif rng.random() < 0.12:
        percent = rng.choice([10, 20, 30])
        purchase["amount"] = round(item["price"] * (100 - percent) / 100, 2)
        purchase["discountCode"] = f"SAVE{percent}"
    return purchase
