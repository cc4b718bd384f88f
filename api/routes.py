"""The API's routes under /api/v1: what the course platform calls on every lesson page, at
checkout and on a refund. Each route reads its validated input, calls core once, and turns
the result into JSON; core's errors become problems in one place (`api.problems`)."""

import hashlib
import json
from datetime import UTC, datetime, timedelta

from flask import g, request
from flask_openapi3 import APIBlueprint, Tag

from api import analytics
from api.problems import response_doc
from api.schemas import (
    Entitlements,
    HistoryQuery,
    IdempotencyHeader,
    ItemQuery,
    OptionalIdempotencyHeader,
    Owned,
    Purchase,
    PurchasePage,
    RevokeIn,
    UserPath,
    purchase_json,
    purchase_model,
)
from core import ValidationError, get_owned_items, get_purchase_history_page, has_purchased, purchase_item, revoke_item
from core.storage.schema import KINDS

PREFIX = "/api/v1"
OWNERSHIP = Tag(name="Ownership", description="What a user owns: one point read per check")
PURCHASES = Tag(name="Purchases", description="Sales and refunds, idempotent by Idempotency-Key")
ANALYTICS = Tag(name="Analytics", description="The live page's figures")
READ_ERRORS = (401, 403, 404, 422, 429, 503)
WRITE_ERRORS = (401, 403, 404, 409, 411, 413, 415, 422, 429, 503)
REPLAYED = "Idempotent-Replayed"


def blueprint(context) -> APIBlueprint:
    """The API's routes, bound to `context` (the app's database and settings)."""
    db, settings = context.db, context.settings
    api = APIBlueprint("api", __name__, url_prefix=PREFIX, abp_security=[{"bearer": []}])
    PurchaseIn = purchase_model(settings.core)  # noqa: N806 - a class

    @api.get("/users/<user_id>/ownership", tags=[OWNERSHIP], responses={200: Owned, **response_doc(*READ_ERRORS)},
             summary="Does the user own this course or test?")
    def ownership(path: UserPath, query: ItemQuery):
        """One point read of the user document, as `has_purchased`."""
        if (query.course is None) == (query.test is None):
            raise ValidationError("give exactly one of course and test", field="course")
        return {"owned": has_purchased(db, path.user_id, query.course, query.test)}

    @api.get("/users/<user_id>/entitlements", tags=[OWNERSHIP],
             responses={200: Entitlements, **response_doc(*READ_ERRORS)}, summary="Everything the user owns")
    def entitlements(path: UserPath):
        owned = get_owned_items(db, path.user_id)
        return {"courses": [str(i) for i in owned["course"]], "tests": [str(i) for i in owned["test"]]}

    @api.get("/users/<user_id>/purchases", tags=[PURCHASES],
             responses={200: PurchasePage, **response_doc(*READ_ERRORS)}, summary="The user's purchase history")
    def history(path: UserPath, query: HistoryQuery):
        """Newest first, revoked purchases included (with their reason); `next_cursor` pages on."""
        # no purchase lies past tomorrow: an end beyond it (the end of the year) asks for everything
        tomorrow = datetime.now(UTC).date() + timedelta(days=1)
        end = None if query.end is None or query.end > tomorrow else query.end.isoformat()
        options = {"limit": query.limit, "cursor": query.cursor, "kind": query.kind,
                   "startDate": query.start.isoformat() if query.start else None, "endDate": end}
        page = get_purchase_history_page(db, path.user_id, {k: v for k, v in options.items() if v is not None})
        return {"purchases": [purchase_json(p, status=p["status"]) for p in page["purchases"]],
                "next_cursor": page["nextCursor"]}

    @api.post("/purchases", tags=[PURCHASES], responses={201: Purchase, **response_doc(*WRITE_ERRORS)},
              summary="Record a sale: the user gets the item")
    def purchase(header: IdempotencyHeader, body: PurchaseIn):
        """201 with the purchase. The same Idempotency-Key and body again: the same answer, nothing
        written, `Idempotent-Replayed: true`."""
        data = {"amount": body.amount, "currency": body.currency, "paymentMethod": body.payment_method,
                "idempotencyKey": header.idempotency_key, "actor": actor()}
        optional = {"purchasedAt": body.purchased_at, "discountCode": body.discount_code, "metadata": body.metadata}
        data |= {k: v for k, v in optional.items() if v is not None}
        done = purchase_item(db, body.user_id, body.course_id, body.test_id, data, settings=settings.core,
                             source="api", fingerprint=fingerprint("purchase"))
        # a replay answers as the first call did, even for a purchase revoked since
        shown = {k: v for k, v in done.document.items() if k not in ("revokedAt", "revokedBy", "reason")}
        return purchase_json(shown, status="active"), 201, replayed(done.replayed)

    @api.post("/purchases/revoke", tags=[PURCHASES], responses={200: Purchase, **response_doc(*WRITE_ERRORS)},
              summary="Take an item away (a refund, a chargeback, a mistake)")
    def revoke(header: OptionalIdempotencyHeader, body: RevokeIn):
        """200 with the revoked purchase; 409 when the user does not own the item."""
        done = revoke_item(db, body.user_id, body.course_id, body.test_id, actor=actor(), reason=body.reason,
                           note=body.note, source="api", idempotency_key=header.idempotency_key,
                           fingerprint=fingerprint("revoke") if header.idempotency_key else None)
        return purchase_json(done.document), 200, replayed(done.replayed)

    analytics.register(api, context, tags=[ANALYTICS], errors=response_doc(*READ_ERRORS))
    return api


def actor() -> str:
    return f"api:{g.api_key.name}"


def replayed(flag: bool) -> dict:
    return {REPLAYED: "true"} if flag else {}


def fingerprint(route: str) -> str:
    """What makes two requests the same request: the route and the JSON body, in any key order."""
    canonical = json.dumps([route, request.get_json(silent=True)], sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode("utf-8", "surrogatepass")).hexdigest()


# core's names of arguments -> the request's, for the `field` of a 422
FIELDS = {"paymentMethod": "payment_method", "purchasedAt": "purchased_at", "discountCode": "discount_code",
          "idempotencyKey": "Idempotency-Key", "idempotency_key": "Idempotency-Key", "startDate": "start",
          "endDate": "end", "user": "user_id"}
QUERY_ITEMS = {f"{kind}_id": kind for kind in KINDS}  # ownership takes ?course= or ?test=


def request_fields() -> dict:
    """Core's argument names mapped to this request's."""
    if request.endpoint and request.endpoint.endswith(".ownership"):
        return {**FIELDS, **QUERY_ITEMS}
    return FIELDS


def sent_values() -> dict:
    """What the request sent, by the request's names: path, query, JSON body, headers."""
    body = request.get_json(silent=True)
    return {**(request.view_args or {}), **request.args.to_dict(), **(body if isinstance(body, dict) else {}),
            "Idempotency-Key": request.headers.get("Idempotency-Key")}
