"""From users' purchasedCourses / purchasedTests, create the missing purchase documents.

Usage: python scripts/implement_hybrid_purchases.py [--dry-run] [--verbose] [--examples N]

Created purchases carry paymentMethod "migrated" and metadata.migrated = true with the
evidence used for their amount and date. Resumable, idempotent; at the end it rebuilds the
rollups and runs the consistency checker; exit status 1 when the checker finds a problem.
"""

import sys

from migration_cli import main

from core.operations.purchases_from_arrays import implement_hybrid_purchases

if __name__ == "__main__":
    sys.exit(main(implement_hybrid_purchases, "Creating purchases from user arrays"))
