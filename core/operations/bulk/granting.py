"""Granting a bulk file's ready rows: BATCH_ROWS to a transaction, each with its row's key.

Each row is granted through `purchase_items(source="bulk")` (what `create_purchase` does, for
many in one transaction) with the key `row_key(digest, row)`, so a re-upload, a second click
or a re-run after a crash grants nothing twice. A row's result is what `bulk_job_rows` keeps.
"""

from collections.abc import Iterator

from bson import ObjectId
from pymongo.database import Database

from core.errors import AlreadyPurchasedError, PurchaseError
from core.items import ItemRef
from core.operations.bulk.checking import Row, row_key
from core.purchases.commands import GrantRequest, purchase_items, revoked_replay_error
from core.settings import CoreSettings

# ready rows granted in one transaction: each row's own reads and writes cost ~15 ms on the
# embedded engine, which serves no other write meanwhile (a sale waits at most ~1 s)
BATCH_ROWS = 50

# a row's result in a job
GRANTED, ALREADY, FAILED, SKIPPED = "granted", "already granted", "failed", "skipped"
RESULTS = (GRANTED, ALREADY, FAILED, SKIPPED)


def grant_batches(db: Database, digest: str, rows: list[Row], *, actor: str,
                  settings: CoreSettings | None = None) -> Iterator[dict]:
    """Each ready row's result, granting BATCH_ROWS at a time: a batch is granted only when
    the caller asks for its first result, so a caller that stops grants no more."""
    for start in range(0, len(rows), BATCH_ROWS):
        yield from grant_rows(db, digest, rows[start : start + BATCH_ROWS], actor=actor, settings=settings)


def grant_rows(db: Database, digest: str, rows: list[Row], *, actor: str,
               settings: CoreSettings | None = None) -> list[dict]:
    """Grant ready rows, each with its key, in one transaction (core's purchase_items); each
    row's result (granted, already granted or failed)."""
    requests = [GrantRequest(row.user, purchase_data={"amount": row.amount, "paymentMethod": row.method, "actor": actor,
                              "idempotencyKey": row_key(digest, row.number)},
                             note=row.note or None, item=ItemRef(row.kind, row.item))
                for row in rows]
    outcomes = purchase_items(db, requests, settings=settings, source="bulk")
    return [_row_result(row, outcome) for row, outcome in zip(rows, outcomes, strict=True)]


def _row_result(row: Row, outcome) -> dict:
    if isinstance(outcome, AlreadyPurchasedError):
        return result_of(row, ALREADY, str(outcome))
    if isinstance(outcome, PurchaseError):
        return result_of(row, FAILED, str(outcome))
    if "revokedAt" in outcome.document:
        return result_of(row, FAILED, str(revoked_replay_error(outcome.document)))
    if outcome.replayed:  # another run granted it before this call
        return result_of(row, ALREADY, "granted before by this file's key", outcome.document["_id"])
    return result_of(row, GRANTED, "", outcome.document["_id"])


def result_of(row: Row, status: str, message: str, purchase: ObjectId | None = None) -> dict:
    """A row's result as the job's rows keep it."""
    return {"row": row.number, "user": row.user_text, "userId": row.user, "item": row.item_text, "title": row.title,
            "kind": row.kind, "itemId": row.item, "amount": row.amount_text, "paymentMethod": row.method,
            "note": row.note, "status": status, "message": message, "purchase": purchase}
