"""Turning caller-supplied ids into ObjectIds, with errors that name the bad value."""

from bson import ObjectId
from bson.errors import InvalidId

from core.errors import ValidationError


def to_object_id(value, name: str) -> ObjectId:
    """Return `value` as an ObjectId; accept an ObjectId or a 24-hex string."""
    if isinstance(value, ObjectId):
        return value
    if isinstance(value, str):
        try:
            return ObjectId(value.strip())
        except InvalidId:
            pass
    raise ValidationError(f"{name} must be an ObjectId or a 24-character hex string, got {value!r}")


def item_kind(course_id, test_id) -> tuple[str, ObjectId]:
    """Return ("course", id) or ("test", id); exactly one of the two must be given."""
    if (course_id is None) == (test_id is None):
        raise ValidationError(
            "give exactly one of course_id and test_id, "
            f"got course_id={course_id!r}, test_id={test_id!r}"
        )
    if course_id is not None:
        return "course", to_object_id(course_id, "course_id")
    return "test", to_object_id(test_id, "test_id")
