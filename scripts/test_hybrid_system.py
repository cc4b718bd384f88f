"""Check that every purchase is in both places and in the rollups; --repair fixes both from `purchases`.

Usage: python scripts/test_hybrid_system.py [--repair] [--examples N]
The same as `flask --app app check-consistency` (commands.py), on the database the settings name.
"""

import sys

from commands import check_consistency_command, run_as_script


def main(argv=None) -> int:
    return run_as_script(check_consistency_command, argv)


if __name__ == "__main__":
    sys.exit(main())
