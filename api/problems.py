"""Every error the API answers, in one shape: RFC 9457 `application/problem+json`.

`type` is a path on this site (`/api/v1/problems/<slug>`) that describes the problem; a
client tells problems apart by it, never by `detail`. A 422 lists what was wrong, field by
field. Core's errors are mapped here once, by type.
"""

import json
import logging

from flask import Response
from pydantic import BaseModel, Field

from core import (
    AlreadyPurchasedError,
    DatabaseUnavailableError,
    IdempotencyConflictError,
    ItemNotFoundError,
    NotPurchasedError,
    UserNotFoundError,
    ValidationError,
)

MEDIA_TYPE = "application/problem+json"
TYPE_PREFIX = "/api/v1/problems/"
log = logging.getLogger(__name__)

# slug -> (status, title, what it means)
TYPES = {
    "validation-error": (422, "The request is not valid", "A field is missing, malformed or out of range; "
                         "`errors` says which. Nothing was written."),
    "bad-signature": (400, "The webhook signature is missing, wrong or too old", "Nothing was written."),
    "unauthorized": (401, "An API key is needed", "Send `Authorization: Bearer <key>` with an active key."),
    "forbidden": (403, "This key may not do that", "A `read` key opens the GET routes only."),
    "not-found": (404, "Nothing lives here", "No API route has this path."),
    "user-not-found": (404, "No such user", "The user id names no user."),
    "item-not-found": (404, "No such course or test", "The course or test id names no item of the catalog."),
    "method-not-allowed": (405, "Method not allowed", "This route does not take this method."),
    "already-owned": (409, "The user owns this item already", "Nothing was written."),
    "not-owned": (409, "The user does not own this item", "Nothing was written."),
    "idempotency-key-reused": (409, "This Idempotency-Key was used for another request",
                               "A key stands for one request: the same key with another body or route is "
                               "refused. Use a new key for a new request."),
    "length-required": (411, "Send the body with a Content-Length", "A body of unknown length is not read."),
    "payload-too-large": (413, "The request body is too large", "Nothing was read or written."),
    "unsupported-media-type": (415, "Send JSON", "Request bodies are `application/json`."),
    "rate-limited": (429, "Too many requests for this key", "Wait for `Retry-After` seconds."),
    "internal-error": (500, "Something went wrong on our side", "It was logged; a retry with the same "
                       "Idempotency-Key is safe."),
    "unavailable": (503, "The database did not answer in time", "Nothing may have been written, or all of it: "
                    "retry with the same Idempotency-Key after `Retry-After` seconds."),
}


class FieldError(BaseModel):
    field: str = Field(description="the field, parameter or header, as the request names it")
    value: str | int | float | bool | None = Field(description="what the request sent for it (long text cut short)")
    message: str


class Problem(BaseModel):
    """RFC 9457 problem details."""

    type: str = Field(description="a path on this site that describes the problem")
    title: str
    status: int
    detail: str
    instance: str | None = Field(None, description="the request's path")
    errors: list[FieldError] | None = Field(None, description="422 only: what was wrong, field by field")


def problem(slug: str, detail: str | None = None, *, instance: str | None = None, errors: list[dict] | None = None,
            headers: dict | None = None) -> Response:
    """The problem response of type `slug`."""
    status, title, meaning = TYPES[slug]
    body = {"type": TYPE_PREFIX + slug, "title": title, "status": status, "detail": detail or meaning}
    if instance is not None:
        body["instance"] = instance
    if errors is not None:
        body["errors"] = errors
    response = Response(json.dumps(body), status=status, mimetype=MEDIA_TYPE)
    response.headers.update(headers or {})
    return response


def field_error(field: str, value, message: str) -> dict:
    return {"field": field, "value": shown_value(value), "message": message}


def shown_value(value):
    """A value as an error quotes it: scalars as sent (text cut to 200 characters), the rest as None."""
    if isinstance(value, str):
        return value if len(value) <= 200 else value[:200] + "…"
    if isinstance(value, bool) or value is None:
        return value
    if isinstance(value, int):
        return value if abs(value) < 2**53 else str(value)
    if isinstance(value, float):
        return value if value == value and abs(value) != float("inf") else str(value)
    return None


def from_core(error: Exception, instance: str, fields: dict, sent: dict) -> Response | None:
    """The problem for one of core's errors, or None when it is not core's.

    `fields` maps core's names of arguments to the request's (`paymentMethod` ->
    `payment_method`); `sent` holds what the request sent, by the request's names.
    """
    if isinstance(error, IdempotencyConflictError):
        return problem("idempotency-key-reused", str(error), instance=instance)
    if isinstance(error, ValidationError):
        name = fields.get(error.field, error.field) or "request"
        return problem("validation-error", str(error), instance=instance,
                       errors=[field_error(name, sent.get(name), str(error))])
    for kind, slug in ((UserNotFoundError, "user-not-found"), (ItemNotFoundError, "item-not-found"),
                       (AlreadyPurchasedError, "already-owned"), (NotPurchasedError, "not-owned")):
        if isinstance(error, kind):
            return problem(slug, str(error), instance=instance)
    if isinstance(error, DatabaseUnavailableError):
        return problem("unavailable", instance=instance, headers={"Retry-After": "1"})
    return None


def response_doc(*statuses: int) -> dict:
    """The OpenAPI responses of these problem statuses, for a route's `responses`."""
    docs = {}
    for status in statuses:
        slugs = [slug for slug, (code, _, _) in TYPES.items() if code == status]
        doc = {"description": "; ".join(TYPES[slug][1] for slug in slugs),
               "content": {MEDIA_TYPE: {"schema": {"$ref": "#/components/schemas/Problem"}}}}
        if status in (429, 503):
            doc["headers"] = {"Retry-After": {"description": "seconds to wait", "schema": {"type": "integer"}}}
        docs[status] = doc
    return docs
