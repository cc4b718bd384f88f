"""Fill the database with demo data: a catalog, users and 90 days of purchases.

Usage: python scripts/seed_demo.py [--users N] [--items N] [--purchases N] [--seed N] [--reset]
The same as `flask --app app seed-demo` (commands.py), on the database the settings name.
"""

import sys

from commands import run_as_script, seed_demo_command


def main(argv=None) -> int:
    return run_as_script(seed_demo_command, argv)


if __name__ == "__main__":
    sys.exit(main())
