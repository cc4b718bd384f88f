"""POST /api/v1/webhooks/stripe: the payment provider's signed events become purchases and
revocations.

The signature is the credential (`stripe.Webhook.construct_event`, STRIPE_WEBHOOK_SECRET,
Stripe's 5-minute tolerance); no API key. Stripe delivers at least once and in any order:
- a sale's idempotency key is its event id, so a delivery twice writes once;
- a refund or dispute's revocation has its event id as idempotency key too;
- a refund that arrives before its sale is kept in `pending_revocations` and applied when
  the sale arrives (within PENDING_DAYS, and for the same payment intent when both name
  one), so it is neither lost nor applied to a later purchase.
Events this system does not sell through (no `user_id` and item in the metadata) and
unknown event types are answered 200 and ignored.
"""

import json
import logging
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import stripe
from flask import request
from flask_openapi3 import APIBlueprint, Tag
from flask_openapi3.models import RawModel

from api.problems import problem, response_doc
from api.schemas import StripeHeader, WebhookAnswer
from core import AlreadyPurchasedError, NotPurchasedError, ValidationError, purchase_item, revoke_item
from core.storage import retry_when_busy, utc
from core.storage.schema import KINDS
from core.validation import MINOR_UNITS, to_object_id

PENDING = "pending_revocations"
PENDING_DAYS = 3  # Stripe retries a delivery for up to three days
ACTOR = "stripe"
SALES = ("checkout.session.completed", "checkout.session.async_payment_succeeded")
REVOCATIONS = {"charge.refunded": "refund", "charge.dispute.created": "chargeback"}
log = logging.getLogger(__name__)


class StripeEventBody(RawModel):
    mimetypes = ["application/json"]


def blueprint(context) -> APIBlueprint:
    db, settings = context.db, context.settings
    hooks = APIBlueprint("webhooks", __name__, url_prefix="/api/v1/webhooks")
    tag = Tag(name="Webhooks", description="Signed events from the payment provider; no API key")

    @hooks.post("/stripe", tags=[tag], summary="Stripe events: sales, refunds, disputes",
                responses={200: WebhookAnswer, **response_doc(400, 404, 411, 413, 415, 422, 503)})
    def stripe_event(header: StripeHeader, raw: StripeEventBody):
        """Verified with STRIPE_WEBHOOK_SECRET; answered 200 once applied (or ignored), so Stripe
        stops retrying; any other answer makes it retry."""
        payload = request.get_data()
        try:
            stripe.WebhookSignature.verify_header(payload, header.stripe_signature, settings.stripe_webhook_secret,
                                                  stripe.Webhook.DEFAULT_TOLERANCE)
        except (stripe.SignatureVerificationError, ValueError) as error:
            if not settings.stripe_webhook_secret:
                log.warning("a Stripe webhook arrived but STRIPE_WEBHOOK_SECRET is not set")
            return problem("bad-signature", _signature_detail(error, settings.stripe_webhook_secret),
                           instance=request.path)
        try:  # signed, so Stripe's (or someone's with the secret): still read it as anything at all
            event = json.loads(payload)
            stripe.Webhook.construct_event(payload, header.stripe_signature, settings.stripe_webhook_secret)
        except (ValueError, RecursionError, TypeError, AttributeError, KeyError):
            event = None
        if not isinstance(event, dict) or not isinstance(event.get("id"), str) or not event["id"]:
            return problem("validation-error", "the signed body is not a Stripe event", instance=request.path,
                           errors=[])
        outcome = apply(db, settings.core, event)
        log.info("stripe event %s (%s): %s", event["id"], event.get("type"), outcome)
        return {"received": True, "event": event["id"], "outcome": outcome}

    return hooks


def _signature_detail(error: Exception, secret: str) -> str:
    if not secret:
        return "this server has no STRIPE_WEBHOOK_SECRET: no signature can be checked"
    if isinstance(error, stripe.SignatureVerificationError):
        return str(error).split(". Read it")[0]
    return "the body is not UTF-8 JSON"


def apply(db, core_settings, event: dict) -> str:
    """Apply one verified event; what it did, in a word."""
    kind = event.get("type")
    data = event.get("data")
    obj = data.get("object") if isinstance(data, dict) else None
    if not isinstance(obj, dict):
        return "ignored: no object in the event's data"
    if kind in SALES:
        return _sale(db, core_settings, event, obj)
    if kind in REVOCATIONS:
        return _revocation(db, event, obj, REVOCATIONS[kind])
    return "ignored"


def _item(obj: dict):
    """(user, course, test) from an object's metadata, or None when it names no purchase of ours."""
    meta = obj.get("metadata")
    if not isinstance(meta, dict) or not meta.get("user_id"):
        return None
    course, test = meta.get("course_id") or None, meta.get("test_id") or None
    if course is None and test is None:
        return None
    return meta["user_id"], course, test


def _sale(db, core_settings, event: dict, session: dict) -> str:
    item = _item(session)
    if item is None:
        return "ignored: no user_id and course_id or test_id in the metadata"
    if session.get("payment_status") not in (None, "paid", "no_payment_required"):
        return "ignored: not paid yet (checkout.session.async_payment_succeeded will follow)"
    user, course, test = item
    currency = str(session.get("currency") or "").upper()
    if currency != core_settings.currency:  # the figures add amounts: one currency
        raise ValidationError(f"this shop sells in {core_settings.currency} (CURRENCY); the session is in "
                              f"{currency or 'no currency'}", field="currency")
    data = {
        "amount": minor_to_major(session.get("amount_total"), currency),
        "currency": currency,
        "paymentMethod": "stripe",
        "idempotencyKey": event["id"],
        "actor": ACTOR,
        "metadata": {"stripe_session": session.get("id"),
                     **({"stripe_payment_intent": session["payment_intent"]}
                        if isinstance(session.get("payment_intent"), str) else {})},
    }
    if event.get("created") is not None:  # when Stripe made the event: the moment of the sale
        data["purchasedAt"] = _moment(event["created"])
    try:
        done = purchase_item(db, user, course, test, data, settings=core_settings, source="webhook")
    except AlreadyPurchasedError:
        log.warning("Stripe sale %s for %s: the user owned the item already (a refund may be due)", event["id"], item)
        return "already-owned"
    outcome = "replayed" if done.replayed else "purchased"
    if "revokedAt" in done.document:
        return outcome
    applied = _apply_pending(db, done.document)
    return f"{outcome}, then revoked by an earlier refund" if applied else outcome


def _revocation(db, event: dict, obj: dict, reason: str) -> str:
    item = _item(obj)
    if item is None:
        return "ignored: no user_id and course_id or test_id in the metadata"
    if reason == "refund" and obj.get("refunded") is False:
        return "ignored: a partial refund leaves the access"
    user, course, test = item
    note = f"Stripe {event.get('type')} {obj.get('id')}"
    revoke = lambda: revoke_item(db, user, course, test, actor=ACTOR, reason=reason, note=note,  # noqa: E731
                                 source="webhook", idempotency_key=event["id"])
    try:
        done = revoke()
    except NotPurchasedError:
        _keep_pending(db, event, obj, reason, note, item)
        # a sale that committed between the revocation above and the note did not see the note:
        # look again; a sale committed after the note finds it (_apply_pending)
        try:
            done = revoke()
        except NotPurchasedError:
            return "pending: kept until its sale arrives"
        retry_when_busy(lambda: db[PENDING].delete_one({"_id": event["id"]}))
    return "replayed" if done.replayed else "revoked"


def _keep_pending(db, event: dict, obj: dict, reason: str, note: str, item) -> None:
    user, course, test = item
    kind, ident = ("course", course) if course is not None else ("test", test)
    doc = {"user": to_object_id(user, "user_id"), "kind": kind, "item": to_object_id(ident, f"{kind}_id"),
           "reason": reason, "note": note, "paymentIntent": _payment_intent(obj),
           "receivedAt": datetime.now(UTC)}
    retry_when_busy(lambda: db[PENDING].update_one({"_id": event["id"]}, {"$setOnInsert": doc}, upsert=True))
    # refunds whose sale never came (another payment, an item sold elsewhere) are dropped in time
    stale = datetime.now(UTC) - timedelta(days=PENDING_DAYS)
    retry_when_busy(lambda: db[PENDING].delete_many({"receivedAt": {"$lt": stale}}))


def _apply_pending(db, purchase: dict) -> bool:
    """Apply the refunds that arrived before this sale; True when one revoked it."""
    kind = next(k for k in KINDS if k in purchase)
    intent = (purchase.get("metadata") or {}).get("stripe_payment_intent")
    since = datetime.now(UTC) - timedelta(days=PENDING_DAYS)
    waiting = retry_when_busy(lambda: list(utc(db)[PENDING].find({"user": purchase["user"]})))
    revoked = False
    for pending in sorted(waiting, key=lambda p: p["receivedAt"]):
        if pending["kind"] != kind or pending["item"] != purchase[kind] or pending["receivedAt"] < since:
            continue
        if intent and pending.get("paymentIntent") and intent != pending["paymentIntent"]:
            continue
        ids = {f"{kind}_id": pending["item"]}
        try:
            revoke_item(db, pending["user"], ids.get("course_id"), ids.get("test_id"), actor=ACTOR,
                        reason=pending["reason"], note=pending["note"], source="webhook",
                        idempotency_key=pending["_id"])
            revoked = True
        except NotPurchasedError:
            pass  # revoked by another delivery meanwhile
        retry_when_busy(lambda p=pending: db[PENDING].delete_one({"_id": p["_id"]}))
    return revoked


def _payment_intent(obj: dict) -> str | None:
    intent = obj.get("payment_intent")
    return intent if isinstance(intent, str) else None


def minor_to_major(amount, currency: str):
    """Stripe's integer minor units as the amount core keeps: 1999 USD -> 19.99, 500 JPY -> 500."""
    amount = _number(amount, "amount_total")
    digits = MINOR_UNITS.get(currency, 2)
    major = Decimal(int(amount)).scaleb(-digits)
    return int(major) if digits == 0 else float(major)


def _moment(created) -> datetime:
    try:
        return datetime.fromtimestamp(_number(created, "created"), UTC)
    except (OverflowError, OSError, ValueError):
        raise ValidationError(f"created is not a moment in the calendar, got {created!r}", field="created") from None


def _number(value, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValidationError(f"{name} must be a whole number, got {value!r}", field=name)
    return value
