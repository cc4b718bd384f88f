"""Collection and field names, kept exactly as the seed has them."""

from dataclasses import dataclass

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
# cohorts and retention, in the same rollup set (core.analytics.cohorts)
COHORT_CELLS = "cohort_cells"  # buyers and revenue by cohort and period since
COHORT_RETENTION = "cohort_retention"  # buyers, their last purchase days, days to their second
COHORT_COLLECTIONS = (COHORT_CELLS, COHORT_RETENTION)


MIGRATED_METHOD = "migrated"  # paymentMethod of purchases a migration created from user arrays


def stats_collection(level: str, part: str) -> str:
    """Where the `part` ("sales" or "details") of a level's rollups lives."""
    if part == "sales":
        return STATS_HOURLY if level == "hour" else STATS
    return STATS_DETAILS_HOURLY if level == "hour" else STATS_DETAILS
DATA_VERSION = "data_version"
ACTIVITY = "recent_activity"
AUDIT = "audit_log"


@dataclass(frozen=True)
class Kind:
    """A kind of item for sale: where its ids live on a purchase, on a user and in the catalog."""

    name: str  # "course": the purchase's field holding the item's id, and the kind's name everywhere
    array: str  # the user's array of owned items
    catalog: str  # the collection of items of this kind
    label: str  # "Course", for people
    plural: str  # "Courses"


# The one table of kinds: adding a kind of item is adding a row here.
KINDS: dict[str, Kind] = {kind.name: kind for kind in (
    Kind("course", "purchasedCourses", COURSES, "Course", "Courses"),
    Kind("test", "purchasedTests", TESTS, "Test", "Tests"),
)}


def user_array(kind: str) -> str:
    return KINDS[kind].array


def catalog(kind: str) -> str:
    return KINDS[kind].catalog


def kind_of(purchase: dict) -> str:
    """The kind of a purchase document: the kind whose field it holds (a document holding
    none is read as a test, as it always was)."""
    return next((kind for kind in KINDS if kind in purchase), "test")
