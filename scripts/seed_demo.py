"""Fill the database with demo data: a catalog, users and 90 days of purchases.

Usage: python scripts/seed_demo.py [--users N] [--items N] [--purchases N] [--seed N] [--reset]
"""

import argparse
import sys
import time

from tqdm import tqdm

from core import ensure_indexes
from core.operations import is_empty, seed_demo
from core.storage import is_embedded
from core.storage.schema import COURSES, IDEMPOTENCY, PURCHASES, REVOKED, TESTS, USERS
from settings import load_settings


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, default=600)
    parser.add_argument("--items", type=int, default=40, help="courses and tests together")
    parser.add_argument("--purchases", type=int, default=5000)
    parser.add_argument("--seed", type=int, default=None, help="random seed, for repeatable data")
    parser.add_argument("--reset", action="store_true", help="drop existing demo collections first")
    args = parser.parse_args(argv)
    with load_settings().open_database() as opened:
        db = opened.db
        print(f"Seeding {opened.description}")
        if opened.server is None and is_embedded(db):
            print("The app is running on this data folder, so documents go over the wire one at a time,\n"
                  "which takes minutes; stop the app for a bulk load in seconds.", file=sys.stderr)
        if args.reset:
            for name in (USERS, COURSES, TESTS, PURCHASES, REVOKED, IDEMPOTENCY):
                db.drop_collection(name)
            ensure_indexes(db)
        elif not is_empty(db):
            print("The database already has users or purchases; use --reset to replace them.", file=sys.stderr)
            return 2
        started = time.perf_counter()
        total = args.users + args.items + args.purchases
        with tqdm(total=total, unit="doc", desc="demo data") as bar:
            counts = seed_demo(
                db, users=args.users, items=args.items, purchases=args.purchases, seed=args.seed, progress=bar.update
            )
        print(", ".join(f"{n} {name}" for name, n in counts.items()) + f" in {time.perf_counter() - started:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
