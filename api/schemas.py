"""What the API takes and gives, as pydantic models: flask-openapi3 validates requests with
them and writes the OpenAPI document from them. Converters from core's documents to the
API's JSON live here too: ids become strings, datetimes ISO 8601 in UTC, names snake_case."""

import copy
from datetime import date, datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StrictBool, create_model

from core.storage.schema import kind_of

ObjectIdText = Annotated[str, Field(pattern="^[0-9a-fA-F]{24}$", description="an ObjectId: 24 hexadecimal digits")]
ShortText = Annotated[str, Field(min_length=1, max_length=200)]
Reason = Literal["refund", "chargeback", "granted_by_mistake", "other"]
Kind = Literal["course", "test"]


class Parameters(BaseModel):
    """A query or header model. flask-openapi3 asks it for its JSON schema on every request
    (1.2 ms, a quarter of an ownership check's time in the web process): it is made once."""

    @classmethod
    def model_json_schema(cls, *args, **kwargs) -> dict:
        key = (cls, args, tuple(sorted(kwargs.items())))
        if key not in _SCHEMAS:
            _SCHEMAS[key] = super().model_json_schema(*args, **kwargs)
        return copy.deepcopy(_SCHEMAS[key])  # a caller may change what it gets


_SCHEMAS: dict = {}


class Strict(Parameters):
    model_config = ConfigDict(extra="forbid")


# requests


class UserPath(BaseModel):
    user_id: ObjectIdText


class ItemQuery(Strict):
    course: ObjectIdText | None = Field(None, description="a course id (or give `test`)")
    test: ObjectIdText | None = Field(None, description="a test id (or give `course`)")


class HistoryQuery(Strict):
    kind: Kind | None = None
    start: date | None = Field(None, description="purchases from this day (UTC) on")
    end: date | None = Field(None, description="purchases up to this day (UTC), included")
    limit: int = Field(50, ge=1, le=500)
    cursor: Annotated[str, Field(min_length=1, max_length=200)] | None = Field(
        None, description="`next_cursor` of the page before")


class IdempotencyHeader(Parameters):
    idempotency_key: str = Field(alias="Idempotency-Key", min_length=1, max_length=200,
                                 description="one key per purchase: a retry with the same key and body replays "
                                             "the first answer; the same key with another body is refused")


class OptionalIdempotencyHeader(Parameters):
    idempotency_key: str | None = Field(None, alias="Idempotency-Key", min_length=1, max_length=200,
                                        description="optional: a retry with the same key and body replays the first "
                                                    "answer")


Metadata = dict[str, Any]


class ItemIn(BaseModel):
    """A user and exactly one item: `course_id` or `test_id`."""

    model_config = ConfigDict(extra="forbid", json_schema_extra={
        "oneOf": [{"required": ["course_id"]}, {"required": ["test_id"]}]})

    user_id: ObjectIdText
    # not nullable: an item is named or left out
    course_id: ObjectIdText = Field(None, description="the course (or give test_id)")
    test_id: ObjectIdText = Field(None, description="the test (or give course_id)")


class PurchaseBase(ItemIn):
    amount: float
    currency: str
    payment_method: str
    purchased_at: datetime = Field(None, description="when it was paid (ISO 8601); default now")
    discount_code: ShortText = None
    metadata: Metadata = Field(None, description="JSON object kept with the purchase (keys without '$' or '.')")


def purchase_model(settings) -> type[BaseModel]:
    """The body of POST /purchases for these CoreSettings: the currency, the payment methods, the
    largest amount. One currency: the figures add amounts, and a sum of USD and JPY is no sum."""
    return create_model(
        "PurchaseIn", __base__=PurchaseBase,
        amount=(Annotated[float, Field(strict=True, ge=0, le=settings.max_amount, allow_inf_nan=False, description=
                "in the currency's major unit, e.g. 29.99 (at most the currency's decimals: 2, or 0 for JPY)")], ...),
        currency=(Literal[settings.currency], Field(description="the shop's currency (CURRENCY)")),
        payment_method=(Literal[tuple(sorted(settings.payment_methods))], ...),
    )


class RevokeIn(ItemIn):
    reason: Reason
    note: ShortText = None


class AnalyticsQuery(Strict):
    range: Literal["today", "7d", "30d", "90d", "custom"] = Field("30d", description="as on the live page")
    start: date | None = Field(None, description="custom range: first day, in TIMEZONE")
    end: date | None = Field(None, description="custom range: last day, included")
    kind: Kind | None = None
    method: ShortText | None = Field(None, description="a payment method, or `-migrated` for all but migrated")
    granularity: Literal["hour", "day", "week", "month"] | None = None


class StripeHeader(Parameters):
    stripe_signature: str | None = Field(None, alias="Stripe-Signature", max_length=10_000)


# responses


class Owned(BaseModel):
    owned: StrictBool


class Entitlements(BaseModel):
    courses: list[str]
    tests: list[str]


class Purchase(BaseModel):
    id: str
    user_id: str
    kind: Kind
    course_id: str | None = None
    test_id: str | None = None
    title: str | None = Field(None, description="the item's title (history only)")
    amount: float
    currency: str | None
    payment_method: str | None
    purchased_at: datetime | None
    discount_code: str | None = None
    metadata: Metadata | None = None
    idempotency_key: str | None = None
    status: Literal["active", "revoked"]
    revoked_at: datetime | None = None
    revoked_by: str | None = None
    reason: str | None = None


class PurchasePage(BaseModel):
    purchases: list[Purchase]
    next_cursor: str | None = Field(description="pass as `cursor` for the next page; null on the last")


class WebhookAnswer(BaseModel):
    received: StrictBool
    event: str | None = None
    outcome: str = Field(description="what the event did: purchased, revoked, pending, replayed, ignored, ...")


def purchase_json(doc: dict, *, status: str | None = None) -> dict:
    """A purchase (active or revoked) as the API shows it."""
    kind = kind_of(doc)
    revoked = "revokedAt" in doc
    body = {
        "id": str(doc["_id"]),
        "user_id": str(doc["user"]),
        "kind": kind,
        "course_id": str(doc["course"]) if kind == "course" else None,
        "test_id": str(doc["test"]) if kind == "test" else None,
        "amount": doc.get("amount"),
        "currency": doc.get("currency"),
        "payment_method": doc.get("paymentMethod"),
        "purchased_at": iso(doc.get("purchasedAt")),
        "discount_code": doc.get("discountCode"),
        "metadata": doc.get("metadata"),
        "idempotency_key": doc.get("idempotencyKey"),
        "status": status or ("revoked" if revoked else "active"),
    }
    if "title" in doc:
        body["title"] = doc["title"]
    if body["status"] == "revoked":
        body |= {"revoked_at": iso(doc.get("revokedAt")), "revoked_by": doc.get("revokedBy"),
                 "reason": doc.get("reason")}
    return body


def iso(moment: datetime | None) -> str | None:
    """ISO 8601 in UTC with milliseconds and a Z, as MongoDB keeps time."""
    if moment is None:
        return None
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")
