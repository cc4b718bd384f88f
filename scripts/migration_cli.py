"""What the two migration scripts share: arguments, progress bars, the summary, the check at the end."""

import argparse
import sys
import time

from tqdm import tqdm

from core.operations import PROBLEMS
from core.operations.migration import BATCH
from core.storage.schema import PURCHASES, USERS
from settings import load_settings

CHANGES = {
    "users_touched": "users whose arrays changed",
    "array_entries_added": "array entries added (purchase without its entry)",
    "array_entries_removed": "array entries removed (entry without a purchase)",
    "arrays_normalised": "arrays rewritten (duplicates, ids stored as strings, null, not an array)",
    "purchases_normalised": "purchases normalised (ids, amounts or dates stored as strings or numbers)",
    "duplicate_purchases_removed": "purchases removed: the same purchase recorded twice",
    "purchases_created": "purchases created from array entries",
}
REPORTED = {
    "purchase_without_single_item": "purchase with both or neither of course and test",
    "purchase_with_unreadable_id": "purchase whose user or item is not an id",
    "purchase_with_unreadable_amount": "purchase whose amount is missing or not a number",
    "purchase_with_unreadable_date": "purchase whose purchasedAt is missing, unreadable or out of range",
    "purchase_without_payment_method": "purchase without a paymentMethod",
    "purchase_of_unknown_user": "purchase of a user that does not exist",
    "purchase_of_unknown_item": "purchase of a course or test that does not exist",
    "purchase_missing_from_array": "purchase missing from its user's array (migrate_purchases.py adds it)",
    "duplicate_purchases": "one item bought twice by one user, with differing details",
    "array_not_a_list": "user array field that is not an array",
    "array_entry_not_an_id": "user array entry that is not an id",
    "array_entry_of_unknown_item": "user array entry of a course or test that does not exist",
    "created_without_price": "purchase created with amount 0: the item has no usable price",
}


def main(migrate, description: str, argv=None) -> int:
    """Parse the arguments, run `migrate(db, dry_run=, progress=, log=, settings=)`, print, check."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--dry-run", action="store_true", help="print what would change and write nothing")
    parser.add_argument("--verbose", action="store_true", help="print every change and problem, not a few of each")
    parser.add_argument("--examples", type=int, default=3, help="examples printed per kind (default 3)")
    parser.add_argument("--batch-size", type=int, default=BATCH, help=f"documents between checkpoints (default {BATCH})")
    args = parser.parse_args(argv)
    settings = load_settings()
    with settings.open_database() as opened:
        db = opened.db
        print(f"{description}: {opened.description}" + (" (dry run: nothing is written)" if args.dry_run else ""))
        totals = {USERS: db[USERS].estimated_document_count(), PURCHASES: db[PURCHASES].estimated_document_count()}
        bars = {}

        def progress(phase, count):
            if phase not in bars:
                total = totals[PURCHASES if phase == "purchases" else USERS]
                bars[phase] = tqdm(total=total, desc=phase, unit="doc", disable=None, leave=False)
            bars[phase].update(count)

        started = time.perf_counter()
        log = (lambda line: tqdm.write("  " + line)) if args.verbose else None
        run = migrate(db, dry_run=args.dry_run, progress=progress, log=log, settings=settings.core,
                      batch=max(1, args.batch_size))
        for bar in bars.values():
            bar.close()
        if run.resumed:
            print(f"Resumed the run started at {run.started_at:%Y-%m-%d %H:%M:%S} UTC (counts include its earlier part)")
        changed = print_summary(run.summary, args.examples, args.dry_run)
        if args.dry_run:
            print("\nDry run: nothing was written.")
            return 0
        problems = run.finish()
        if changed:
            print("\nRebuilt the rollups.")
        status = print_check(problems, args.examples)
        print_timings(run.timings, time.perf_counter() - started)
        return status


def print_summary(summary, examples: int, dry_run: bool) -> int:
    changed = sum(summary.changes.values())
    verb = "Would change" if dry_run else "Changed"
    if not changed:
        print("\nNothing to change: what can be fixed with certainty is already migrated.")
    else:
        print(f"\n{verb}:")
        for kind, label in CHANGES.items():
            if summary.changes.get(kind):
                print(f"  {summary.changes[kind]:8d}  {label}")
                for example in summary.examples.get(kind, [])[:examples]:
                    print(f"              {example}")
    if summary.problems:
        print("\nReported and left alone:")
        for kind, count in sorted(summary.problems.items()):
            print(f"  {count:8d}  {REPORTED.get(kind, kind)}")
            for example in summary.examples.get(kind, [])[:examples]:
                print(f"              {example}")
    return changed


def print_timings(timings, elapsed: float) -> None:
    """Where the time went: reading is what the writes, the rebuild and the check leave."""
    parts = [f"{what} {seconds:.1f} s" for what, seconds in timings.items()]
    reading = elapsed - sum(timings.values())
    print(f"\nTime: {elapsed:.1f} s (reading and deciding {reading:.1f} s, " + ", ".join(parts) + ")")


def print_check(problems: dict, examples: int) -> int:
    total = sum(len(found) for found in problems.values())
    print("\nConsistency check:")
    for name, found in problems.items():
        if found:
            print(f"  {len(found):8d}  {PROBLEMS[name]}")
            for example in found[:examples]:
                print("              " + ", ".join(f"{k}={v}" for k, v in example.items()))
    print("  consistent" if not total else f"  {total} problem(s) remain: exit status 1")
    return 1 if total else 0


if __name__ == "__main__":
    sys.exit("run scripts/migrate_purchases.py or scripts/implement_hybrid_purchases.py")
