"""Rebuild the rollups from the purchases, after a migration or import.

Usage: python scripts/rebuild_rollups.py
The same as `flask --app app rebuild-rollups` (commands.py), on the database the settings name.
"""

import sys

from commands import rebuild_rollups_command, run_as_script


def main(argv=None) -> int:
    return run_as_script(rebuild_rollups_command, argv)


if __name__ == "__main__":
    sys.exit(main())
