"""Collection and field names, kept exactly as the seed has them."""

USERS = "users"
COURSES = "courses"
TESTS = "tests"
PURCHASES = "purchases"
REVOKED = "revoked_purchases"
IDEMPOTENCY = "idempotency_keys"
STATS = "purchase_stats"
DATA_VERSION = "data_version"
ACTIVITY = "recent_activity"

# kind -> (item field on a purchase, array on the user, catalog collection)
KINDS = {
    "course": ("course", "purchasedCourses", COURSES),
    "test": ("test", "purchasedTests", TESTS),
}


def user_array(kind: str) -> str:
    return KINDS[kind][1]


def catalog(kind: str) -> str:
    return KINDS[kind][2]


def kind_of(purchase: dict) -> str:
    """Return "course" or "test" for a purchase document."""
    return "course" if "course" in purchase else "test"
