"""The catalog: courses and tests with their titles and prices, as admin forms need them."""

from bson import ObjectId
from pymongo.database import Database

from core.errors import ItemNotFoundError, ValidationError
from core.items import ItemRef
from core.storage.documents import utc
from core.storage.retry import retry_when_busy
from core.storage.schema import KINDS, catalog
from core.validation import to_object_id

MAX_ITEMS = 50_000


def list_items(db: Database, kind: str | None = None) -> list[dict]:
    """Every course and test: {kind, _id, title, price}, sorted by kind then title."""
    db = utc(db)
    kinds = [_kind(kind)] if kind is not None and kind != "" else list(KINDS)
    items = []
    for name in kinds:
        docs = retry_when_busy(lambda n=name: list(db[catalog(n)].find({}, {"title": 1, "price": 1}).limit(MAX_ITEMS)))
        items += [{"kind": name, "_id": d["_id"], "title": d.get("title") or f"(untitled {name} {d['_id']})",
                   "price": d.get("price")} for d in docs]
    items.sort(key=lambda item: (item["kind"], item["title"].lower()))
    return items


def get_item(db: Database, kind: str, item_id) -> dict:
    """One course or test by id; ItemNotFoundError when there is none."""
    kind = _kind(kind)
    item = to_object_id(item_id, f"{kind}_id")
    doc = retry_when_busy(lambda: utc(db)[catalog(kind)].find_one({"_id": item}, {"title": 1, "price": 1}))
    if doc is None:
        raise ItemNotFoundError(f"no {kind} with id {item}")
    return {"kind": kind, "_id": doc["_id"], "title": doc.get("title") or f"(untitled {kind} {item})",
            "price": doc.get("price")}


def _kind(kind) -> str:
    if not isinstance(kind, str) or kind not in KINDS:
        raise ValidationError(f"kind must be 'course' or 'test', got {kind!r}"[:300])
    return kind


def title_key(title) -> str:
    """A title as people match it: case and runs of spaces ignored."""
    return " ".join(str(title).split()).casefold()


def item_ref(item: dict) -> str:
    """"course:<id>" or "test:<id>": one value for a form's item picker."""
    return str(ItemRef(item["kind"], item["_id"]))


def parse_item_ref(value) -> tuple[str, ObjectId]:
    """The (kind, id) of an `item_ref`."""
    item = ItemRef.parse(value)
    return item.kind, item.id
