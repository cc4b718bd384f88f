"""Customers (the `users` collection) as admin pages see them: one by id, many by email,
and the type-ahead search."""

from bson import ObjectId
from pymongo.database import Database

from core.errors import UserNotFoundError, ValidationError
from core.storage.documents import utc
from core.storage.retry import retry_when_busy
from core.storage.schema import USERS
from core.validation import to_object_id

MAX_RESULTS = 50


def get_customer(db: Database, user_id) -> dict:
    """The user document (name, email, purchasedCourses, purchasedTests, ...) by id."""
    user = to_object_id(user_id, "user_id")
    doc = retry_when_busy(lambda: utc(db)[USERS].find_one({"_id": user}))
    if doc is None:
        raise UserNotFoundError(f"no user with id {user}")
    return doc


def email_index(db: Database) -> dict[str, ObjectId]:
    """Every user's lower-cased email -> id, in one read: for resolving many emails at once
    (a bulk upload) where a query per email would each scan the embedded engine's users."""
    docs = retry_when_busy(lambda: list(utc(db)[USERS].find({}, {"email": 1})))
    index = {}
    for doc in docs:
        email = doc.get("email")
        if isinstance(email, str) and email.strip():
            index.setdefault(email.strip().lower(), doc["_id"])
    return index


def find_customers(db: Database, text, limit: int = 10) -> list[dict]:
    """Users whose email or a word of whose name starts with `text` (any case), or whose id
    it is: [{_id, name, email}], at most `limit`."""
    if not isinstance(text, str):
        raise ValidationError(f"search text must be a string, got {text!r}")
    if isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= MAX_RESULTS:
        raise ValidationError(f"limit must be an integer between 1 and {MAX_RESULTS}, got {limit!r}")
    needle = " ".join(text.split()).casefold()
    if not needle:
        return []
    if ObjectId.is_valid(needle):
        doc = retry_when_busy(lambda: utc(db)[USERS].find_one({"_id": ObjectId(needle)}, {"name": 1, "email": 1}))
        return [doc] if doc else []
    found = []
    for doc in retry_when_busy(lambda: list(utc(db)[USERS].find({}, {"name": 1, "email": 1}))):
        email = str(doc.get("email") or "").casefold()
        words = str(doc.get("name") or "").casefold().split()
        if email.startswith(needle) or any(w.startswith(needle) for w in words) or \
                " ".join(words).startswith(needle):
            found.append(doc)
            if len(found) == limit:
                break
    return found
