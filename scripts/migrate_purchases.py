"""From the purchases history, make every user's purchasedCourses / purchasedTests equal their purchases.

Usage: python scripts/migrate_purchases.py [--dry-run] [--verbose] [--examples N]

Resumable (killed and run again, it carries on from its checkpoint in the database) and
idempotent (a second run changes nothing). At the end it rebuilds the rollups and runs the
consistency checker; exit status 1 when the checker finds a problem.
"""

import sys

from migration_cli import main

from core.operations.arrays_from_purchases import migrate_purchases


def migrate(db, *, settings, **options):
    return migrate_purchases(db, **options)


if __name__ == "__main__":
    sys.exit(main(migrate, "Migrating purchases to user arrays"))
