"""Check that every purchase is in both places and in the rollups; --repair fixes both from `purchases`.

Usage: python scripts/test_hybrid_system.py [--repair] [--examples N]
Exit status 1 when a problem is found (after --repair: when one remains).
"""

import argparse
import sys

from core.operations import PROBLEMS, REPAIRABLE, check_consistency, rebuild_rollups, repair_arrays
from settings import load_settings


def report(problems: dict, examples: int) -> int:
    """Print the count and a few examples of each kind of problem; return the total."""
    total = 0
    for name, found in problems.items():
        total += len(found)
        mark = "ok " if not found else "BAD"
        print(f"{mark} {len(found):6d}  {PROBLEMS[name]}")
        for example in found[:examples]:
            print("             " + ", ".join(f"{k}={v}" for k, v in example.items()))
    return total


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repair", action="store_true", help="make user arrays match purchases")
    parser.add_argument("--examples", type=int, default=3, help="examples printed per problem")
    args = parser.parse_args(argv)
    with load_settings().open_database() as opened:
        print(f"Checking {opened.description}")
        problems = check_consistency(opened.db)
        total = report(problems, args.examples)
        if args.repair and any(problems[name] for name in (*REPAIRABLE, "rollup_mismatch")):
            changes = repair_arrays(opened.db, problems)
            print(f"\nRepaired {len(changes)} array entries:")
            for line in changes:
                print("  " + line)
            if problems["rollup_mismatch"]:
                written = rebuild_rollups(opened.db)
                print(f"Rebuilt the rollups from purchases: {written} documents")
            print("\nAfter repair:")
            total = report(check_consistency(opened.db), args.examples)
    print("\nconsistent" if total == 0 else f"\n{total} problem(s) found")
    return 1 if total else 0


if __name__ == "__main__":
    sys.exit(main())
