"""Collection and field names, kept exactly as the seed has them."""

USERS = "users"
COURSES = "courses"
TESTS = "tests"
PURCHASES = "purchases"
REVOKED = "revoked_purchases"
IDEMPOTENCY = "idempotency_keys"
# Rollups, split so that each query reads small documents from a small collection: the
# embedded engine re-scans a whole collection after every write to it.
STATS = "purchase_stats"  # sales by month, week and day
STATS_HOURLY = "purchase_stats_hourly"  # sales by hour
# items and revocations, one document per bucket, kind and payment method (core.analytics.rollups)
STATS_DETAILS = "purchase_stats_details"  # by month and day
STATS_DETAILS_HOURLY = "purchase_stats_details_hourly"  # by hour
ROLLUP_COLLECTIONS = (STATS, STATS_HOURLY, STATS_DETAILS, STATS_DETAILS_HOURLY)


MIGRATED_METHOD = "migrated"  # paymentMethod of purchases a migration created from user arrays


def stats_collection(level: str, part: str) -> str:
    """Where the `part` ("sales" or "details") of a level's rollups lives."""
    if part == "sales":
        return STATS_HOURLY if level == "hour" else STATS
    return STATS_DETAILS_HOURLY if level == "hour" else STATS_DETAILS
DATA_VERSION = "data_version"
ACTIVITY = "recent_activity"
AUDIT = "audit_log"

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
