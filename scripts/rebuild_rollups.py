"""Rebuild the rollups (`purchase_stats`, `purchase_stats_hourly`) from the purchases, after a migration or import.

Usage: python scripts/rebuild_rollups.py
Analytics readers wait while it runs; purchases may keep coming in (the rebuild starts over).
"""

import argparse
import sys
import time

from tqdm import tqdm

from core.operations import rebuild_rollups
from core.operations.consistency import rollup_mismatches
from settings import load_settings


def main(argv=None) -> int:
    argparse.ArgumentParser(description=__doc__.splitlines()[0]).parse_args(argv)
    with load_settings().open_database() as opened:
        print(f"Rebuilding rollups in {opened.description}")
        started = time.perf_counter()
        with tqdm(unit="doc", desc="rollups") as bar:

            def progress(written, total):
                bar.total = total
                bar.update(written - bar.n)

            written = rebuild_rollups(opened.db, progress)
        print(f"{written} rollup documents in {time.perf_counter() - started:.1f} s")
        left = rollup_mismatches(opened.db)  # in memory that does not grow with the rollups
        print("rollups match purchases" if not left else f"{len(left)} counters still differ (purchases changed meanwhile)")
    return 0 if not left else 1


if __name__ == "__main__":
    sys.exit(main())
