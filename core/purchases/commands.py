"""The hybrid purchase system: every purchase in the user's array and in `purchases`, together."""

from dataclasses import dataclass
from datetime import UTC, datetime

from bson import ObjectId
from pymongo import UpdateOne
from pymongo.database import Database

from core.analytics.rollups import (
    next_version,
    record_revocation,
    record_sale,
    record_sales,
    touched_update,
    writing_set,
)
from core.audit import change_entry, check_source, fix_entry, record_change, record_changes
from core.changes import record_activities, record_activity
from core.errors import (
    AlreadyPurchasedError,
    ItemNotFoundError,
    NotPurchasedError,
    PurchaseError,
    UserNotFoundError,
    ValidationError,
)
from core.items import ItemRef
from core.purchases.replays import repeat_in_batch, replay, replay_revocation
from core.settings import CoreSettings
from core.storage.documents import ID_BATCH, insert_all, insert_new, utc
from core.storage.retry import retry_when_busy
from core.storage.schema import IDEMPOTENCY, KINDS, PURCHASES, REVOKED, USERS, catalog, kind_of, user_array
from core.storage.transactions import run_in_transaction
from core.validation import (
    core_settings,
    item_kind,
    optional_string,
    to_object_id,
    utc_millis,
    validate_purchase_data,
)


@dataclass(frozen=True)
class Outcome:
    """What a grant or a revocation did: its document, and whether an earlier call with the same
    idempotency key had done it already (then nothing was written)."""

    document: dict
    replayed: bool = False


def create_purchase(
    db: Database, user_id, course_id=None, test_id=None, purchase_data=None, *,
    settings: CoreSettings | None = None, source: str = "api", note: str | None = None,
) -> dict:
    """Record that a user bought a course or a test, in both places, in one transaction.

    The same transaction writes the audit entry (`source`: admin, bulk, api, webhook,
    migration or script; `purchase_data["actor"]`: who; `note`: why). `settings` says which
    payment methods are allowed and the default currency. A repeat with the same
    `idempotencyKey` and the same parameters returns the original purchase and writes
    nothing; the same key with other parameters raises IdempotencyConflictError (a
    ValidationError), and the replay of a purchase since revoked raises NotPurchasedError
    saying so.
    """
    done = purchase_item(db, user_id, course_id, test_id, purchase_data, settings=settings, source=source, note=note)
    if "revokedAt" in done.document:
        raise revoked_replay_error(done.document)
    return done.document


def revoked_replay_error(revoked: dict) -> NotPurchasedError:
    """What a replay of a grant revoked since is told."""
    return NotPurchasedError(
        f"idempotencyKey {revoked.get('idempotencyKey')!r} granted purchase {revoked['_id']}, which was revoked on "
        f"{revoked['revokedAt']:%Y-%m-%d %H:%M} UTC ({revoked.get('reason') or 'no reason given'}); "
        "use a new key to grant it again"
    )


def purchase_item(
    db: Database, user_id, course_id=None, test_id=None, purchase_data=None, *,
    settings: CoreSettings | None = None, source: str = "api", note: str | None = None,
    fingerprint: str | None = None,
) -> Outcome:
    """create_purchase, saying whether it was a replay; a replay of a purchase revoked since
    returns the revoked purchase (with `revokedAt`) instead of raising.

    `fingerprint` (with an idempotencyKey) stands for the whole request as its caller saw it,
    such as a hash of an HTTP body: a replay whose fingerprint differs is a conflict, whatever
    the fields say.
    """
    request = GrantRequest(user_id, course_id, test_id, purchase_data, note=note, fingerprint=fingerprint)
    (done,) = purchase_items(db, [request], settings=settings, source=source)
    if isinstance(done, PurchaseError):
        raise done
    return done


@dataclass(frozen=True)
class GrantRequest:
    """One grant of a batch (`purchase_items`): the arguments of purchase_item. New code names
    the item with `item` (an ItemRef) instead of the course_id/test_id pair."""

    user_id: object
    course_id: object = None
    test_id: object = None
    purchase_data: object = None
    note: str | None = None
    fingerprint: str | None = None
    item: ItemRef | None = None

    def item_ref(self) -> ItemRef:
        if self.item is None:
            return ItemRef.from_ids(self.course_id, self.test_id)
        if not isinstance(self.item, ItemRef) or (self.course_id, self.test_id) != (None, None):
            raise ValidationError("give the item either as an ItemRef or as course_id/test_id", field="item")
        return self.item


@dataclass
class _Grant:
    """A request checked outside the transaction: the purchase it would write."""

    purchase: dict
    note: str | None
    fingerprint: str | None
    explicit_date: bool

    @property
    def kind(self) -> str:
        return kind_of(self.purchase)

    @property
    def key(self) -> str | None:
        return self.purchase.get("idempotencyKey")


def purchase_items(db: Database, requests: list[GrantRequest], *, settings: CoreSettings | None = None,
                   source: str = "api") -> list[Outcome | PurchaseError]:
    """Grant many items in one transaction: for each request, in order, its Outcome or the
    PurchaseError purchase_item would raise (then nothing of that request is written; the
    others are). The same reads and writes as one grant, a read or write per collection for
    them all (a bulk upload: 2-4 rows a second one by one on the embedded engine).

    A request that repeats the idempotencyKey of an earlier one in the batch is its replay
    (or a conflict), as if it came after it. A failure of the database ends the whole batch,
    with nothing written.
    """
    settings, source = core_settings(settings), check_source(source)
    db, now = utc(db), datetime.now(UTC)
    results: list = [None] * len(requests)
    grants: dict[int, _Grant] = {}
    for number, request in enumerate(requests):
        try:
            grants[number] = _checked(request, settings, now)
        except PurchaseError as error:
            results[number] = error
    if grants:
        for number, result in run_in_transaction(db, lambda session: _grant_all(db, session, grants, source)).items():
            results[number] = result
    return results


def _checked(request: GrantRequest, settings: CoreSettings, now: datetime) -> _Grant:
    user = to_object_id(request.user_id, "user_id")
    ref = request.item_ref()
    kind, item = ref.kind, ref.id
    fields = validate_purchase_data(request.purchase_data, settings, now)
    note, fingerprint = optional_string(request.note, "note"), optional_string(request.fingerprint, "fingerprint")
    explicit_date = isinstance(request.purchase_data, dict) and "purchasedAt" in request.purchase_data
    return _Grant({"_id": ObjectId(), "user": user, kind: item, **fields}, note, fingerprint, explicit_date)


def _grant_all(db: Database, session, grants: dict[int, _Grant], source: str) -> dict[int, Outcome | PurchaseError]:
    """The transaction of purchase_items: every check first, then one write per collection."""
    results: dict[int, Outcome | PurchaseError] = {}
    records = _by_id(db, session, IDEMPOTENCY, [g.key for g in grants.values() if g.key is not None], None)
    buyers = _by_id(db, session, USERS, [g.purchase["user"] for g in grants.values()],
                    {"name": 1, **{user_array(kind): 1 for kind in KINDS}})
    products = {kind: _by_id(db, session, catalog(kind), [g.purchase[kind] for g in grants.values() if g.kind == kind],
                             {"title": 1}) for kind in KINDS}
    granted, earlier = [], {}  # earlier: key -> the grant of this batch that used it
    broken = _broken_arrays(db, session, buyers, {(g.purchase["user"], g.kind) for g in grants.values()})
    owned = {(user, kind, item) for user, doc in buyers.items() for kind in KINDS for item in _owned(doc, kind)}
    owned |= {(user, kind, item) for (user, kind), items in broken.items() for item in items}
    for number, grant in grants.items():
        try:
            purchase, kind = grant.purchase, grant.kind
            if grant.key in earlier:
                results[number] = Outcome(repeat_in_batch(grant, earlier[grant.key]), replayed=True)
                continue
            if grant.key in records:
                original = replay(db, session, grant.key, records[grant.key], purchase, grant.fingerprint,
                                   explicit_date=grant.explicit_date)
                results[number] = Outcome(original, replayed=True)
                continue
            user, item = purchase["user"], purchase[kind]
            if user not in buyers:
                raise UserNotFoundError(f"no user with id {user}")
            if item not in products[kind]:
                raise ItemNotFoundError(f"no {kind} with id {item} in {catalog(kind)!r}")
            if (user, kind, item) in owned:
                raise AlreadyPurchasedError(f"user {user} already owns {kind} {item}")
        except PurchaseError as error:
            results[number] = error
            continue
        owned.add((user, kind, item))
        if grant.key is not None:
            earlier[grant.key] = grant
        granted.append(grant)
        results[number] = Outcome(purchase)
    if granted:
        _write_grants(db, session, granted, buyers, products, source, broken)
    return results


def _broken_arrays(db: Database, session, buyers: dict, wanted: set[tuple]) -> dict[tuple, list]:
    """(user, kind) -> the items the user's purchases hold, for each array these grants add to
    that is there but not a list (legacy data holds null): MongoDB refuses $addToSet on it,
    so the grant rebuilds it from the purchases, the source of truth."""
    broken = {}
    for user, kind in wanted:
        doc = buyers.get(user)
        if doc is not None and user_array(kind) in doc and not isinstance(doc[user_array(kind)], list):
            mine = db[PURCHASES].find({"user": user}, {kind: 1}, session=session)
            broken[(user, kind)] = list(dict.fromkeys(p[kind] for p in mine if kind in p))
    return broken


def _write_grants(db: Database, session, granted: list[_Grant], buyers: dict, products: dict, source: str,
                  broken: dict[tuple, list]) -> None:
    purchases = [grant.purchase for grant in granted]
    insert_all(db, PURCHASES, purchases, session)
    additions: dict[tuple, list] = {}
    for grant in granted:
        additions.setdefault((grant.purchase["user"], grant.kind), []).append(grant.purchase[grant.kind])
    db[USERS].bulk_write([
        UpdateOne({"_id": user}, {"$set": {user_array(kind): broken[(user, kind)] + items}}) if (user, kind) in broken
        else UpdateOne({"_id": user}, {"$addToSet": {user_array(kind): {"$each": items}}})
        for (user, kind), items in additions.items()], ordered=True, session=session)
    fixes = [fix_entry(buyers[user], kind, f"{user_array(kind)} was {_shown(buyers[user][user_array(kind)])}, "
                       "not a list: rebuilt from the user's purchases", at=datetime.now(UTC),
                       actor=granted[0].purchase.get("actor"), source=source)
             for user, kind in broken if (user, kind) in additions]
    keys = [{"_id": g.key, "purchase": g.purchase["_id"], "user": g.purchase["user"], g.kind: g.purchase[g.kind],
             "fingerprint": g.fingerprint} for g in granted if g.key is not None]
    if keys:
        insert_all(db, IDEMPOTENCY, keys, session)
    state = writing_set(db, session)
    moments = record_sales(db, session, state, purchases)
    changes = [("purchase", p, p["purchasedAt"], buyers[p["user"]], products[g.kind][p[g.kind]])
               for g, p in zip(granted, purchases, strict=True)]
    record_activities(db, session, changes, also=touched_update(state, moments), expect=next_version(state))
    record_changes(db, session, fixes + [
        change_entry("grant", g.purchase, at=datetime.now(UTC), actor=g.purchase.get("actor"), source=source,
                     user=buyers[g.purchase["user"]], item=products[g.kind][g.purchase[g.kind]], note=g.note)
        for g in granted
    ])


def _by_id(db: Database, session, collection: str, ids: list, projection: dict | None) -> dict:
    """{_id: document} of the documents with these ids, ID_BATCH to a read."""
    ids = list(dict.fromkeys(ids))
    return {doc["_id"]: doc for start in range(0, len(ids), ID_BATCH)
            for doc in db[collection].find({"_id": {"$in": ids[start : start + ID_BATCH]}}, projection,
                                           session=session)}


def remove_purchase(db: Database, user_id, course_id=None, test_id=None, *, actor=None, reason=None,
                    source: str = "api", note: str | None = None, idempotency_key: str | None = None) -> dict:
    """Take an item away from a user in both places; keep the purchase in `revoked_purchases`.

    The same transaction writes the audit entry (`actor`, `reason`, `source`, `note`). With an
    `idempotency_key`, a repeat for the same user and item returns the first revocation and
    writes nothing.
    """
    return revoke_item(db, user_id, course_id, test_id, actor=actor, reason=reason, source=source, note=note,
                       idempotency_key=idempotency_key).document


def revoke_item(db: Database, user_id, course_id=None, test_id=None, *, actor=None, reason=None,
                source: str = "api", note: str | None = None, idempotency_key: str | None = None,
                fingerprint: str | None = None) -> Outcome:
    """remove_purchase, saying whether it was a replay of an earlier call with the same key."""
    db = utc(db)
    user = to_object_id(user_id, "user_id")
    kind, item = item_kind(course_id, test_id)
    actor, reason = optional_string(actor, "actor"), optional_string(reason, "reason")
    source, note = check_source(source), optional_string(note, "note")
    key = optional_string(idempotency_key, "idempotency_key")
    fingerprint = optional_string(fingerprint, "fingerprint")
    revoked_at = utc_millis(datetime.now(UTC))

    def work(session):
        if key is not None:
            earlier = replay_revocation(db, session, key, user, kind, item, fingerprint)
            if earlier is not None:
                return Outcome(earlier, replayed=True)
        buyer = _user(db, session, user, kind)
        owned = _owned(buyer, kind)
        # by user alone, then the item here (core.storage.documents)
        mine = list(db[PURCHASES].find({"user": user}, session=session))
        found = sorted((p for p in mine if p.get(kind) == item), key=lambda p: p["purchasedAt"])
        if not found:
            hint = " (the user's array still lists it: run scripts/test_hybrid_system.py --repair)" if item in owned else ""
            raise NotPurchasedError(f"user {user} has no purchase of {kind} {item}{hint}")
        purchase = found[-1]
        array = user_array(kind)
        if array in buyer and not isinstance(buyer[array], list):  # null in legacy data: $pull refuses it
            kept = [p[kind] for p in mine if kind in p and p["_id"] != purchase["_id"]]
            db[USERS].update_one({"_id": user}, {"$set": {array: list(dict.fromkeys(kept))}}, session=session)
            record_changes(db, session, [fix_entry(buyer, kind, f"{array} was {_shown(buyer[array])}, not a list: "
                                                   "rebuilt from the user's purchases", at=revoked_at, actor=actor,
                                                   source=source)])
        elif len(found) == 1:
            db[USERS].update_one({"_id": user}, {"$pull": {array: item}}, session=session)
        db[PURCHASES].delete_one({"_id": purchase["_id"]}, session=session)
        revoked = {**purchase, "revokedAt": revoked_at, "revokedBy": actor, "reason": reason}
        insert_new(db, REVOKED, revoked, session)
        if key is not None:
            record = {"_id": key, "action": "revoke", "purchase": purchase["_id"], "user": user, kind: item,
                      "fingerprint": fingerprint}
            insert_new(db, IDEMPOTENCY, record, session)
        state = writing_set(db, session)
        moments = [record_sale(db, session, state, purchase, -1), record_revocation(db, session, state, revoked)]
        product = db[catalog(kind)].find_one({"_id": item}, {"title": 1}, session=session)
        record_activity(db, session, "revocation", purchase, revoked_at, buyer, product,
                        also=touched_update(state, moments), expect=next_version(state))
        record_change(db, session, "revoke", purchase, at=revoked_at, actor=actor, source=source, user=buyer,
                      item=product, reason=reason, note=note)
        return Outcome(revoked)

    return run_in_transaction(db, work)


def get_owned_items(db: Database, user_id) -> dict[str, list]:
    """Every item the user owns, by kind ({"course": [ids], "test": [ids]}): one point read."""
    db = utc(db)
    user = to_object_id(user_id, "user_id")
    arrays = {user_array(kind): 1 for kind in KINDS}
    doc = retry_when_busy(lambda: db[USERS].find_one({"_id": user}, arrays))
    if doc is None:
        raise UserNotFoundError(f"no user with id {user}")
    return {kind: list(_owned(doc, kind)) for kind in KINDS}


def has_purchased(db: Database, user_id, course_id=None, test_id=None) -> bool:
    """True when the user's array holds the item: one point read of the user document."""
    db = utc(db)
    user = to_object_id(user_id, "user_id")
    kind, item = item_kind(course_id, test_id)
    array = user_array(kind)
    doc = retry_when_busy(lambda: db[USERS].find_one({"_id": user}, {array: 1}))
    if doc is None:
        raise UserNotFoundError(f"no user with id {user}")
    return item in (doc.get(array) or [])


def _user(db: Database, session, user: ObjectId, kind: str) -> dict:
    doc = db[USERS].find_one({"_id": user}, {user_array(kind): 1, "name": 1}, session=session)
    if doc is None:
        raise UserNotFoundError(f"no user with id {user}")
    return doc


def _shown(value) -> str:
    return "null" if value is None else f"a {type(value).__name__} ({value!r:.60})"


def _owned(user: dict, kind: str) -> list:
    items = user.get(user_array(kind))
    return items if isinstance(items, list) else []
