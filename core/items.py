"""An item for sale as one value: its kind (a row of `core.storage.schema.KINDS`) and its id.

New code passes an `ItemRef` where older signatures take a `course_id, test_id` pair; those
signatures stay (other programs call them) and turn the pair into an ItemRef first.
"""

from dataclasses import dataclass

from bson import ObjectId

from core.errors import ValidationError
from core.storage.schema import KINDS, Kind, kind_of
from core.validation import item_kind, to_object_id


@dataclass(frozen=True, order=True)
class ItemRef:
    kind: str
    id: ObjectId

    def __post_init__(self):
        if self.kind not in KINDS:
            raise ValidationError(f"kind must be one of {', '.join(KINDS)}, got {str(self.kind)[:40]!r}", field="kind")
        if not isinstance(self.id, ObjectId):
            raise ValidationError(f"an item id is an ObjectId, got {type(self.id).__name__}", field=f"{self.kind}_id")

    @classmethod
    def from_ids(cls, course_id=None, test_id=None) -> "ItemRef":
        """The item of a `course_id, test_id` pair (exactly one given), as the older signatures take it."""
        return cls(*item_kind(course_id, test_id))

    @classmethod
    def of(cls, purchase: dict) -> "ItemRef":
        """The item a purchase (active or revoked) is for."""
        kind = kind_of(purchase)
        return cls(kind, purchase[kind])

    @classmethod
    def parse(cls, value) -> "ItemRef":
        """The item of its text form, "course:<id>" (a form's picker value): the inverse of str()."""
        kind, _, ident = str(value or "").partition(":")
        if kind not in KINDS:
            raise ValidationError(f"pick a {' or a '.join(KINDS)}, got {str(value)[:60]!r}", field="item")
        return cls(kind, to_object_id(ident, f"{kind}_id"))

    def __str__(self) -> str:
        return f"{self.kind}:{self.id}"

    @property
    def spec(self) -> Kind:
        """The kind's row: array, catalog, labels."""
        return KINDS[self.kind]

    def ids(self) -> tuple[ObjectId | None, ObjectId | None]:
        """(course_id, test_id), for the functions that take the pair."""
        return tuple(self.id if kind == self.kind else None for kind in KINDS)

    def purchase_fields(self) -> dict:
        """The item on a purchase document: {"course": id} or {"test": id}."""
        return {self.kind: self.id}

