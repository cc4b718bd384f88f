"""Operations over the whole database, for scripts and the admin pages.

- `consistency`: `check_consistency`, `repair_arrays`, `PROBLEMS`, `REPAIRABLE`.
- `rebuild`: `rebuild_rollups`, `rollup_differences`, `load_rollups`.
- `demo`: `seed_demo`, `build_demo`, `load_demo`, `is_empty`.
- `bulk`: bulk grants from a CSV: read and check every row, then apply as a resumable job.
"""

from core.operations.consistency import PROBLEMS, REPAIRABLE, check_consistency, repair_arrays
from core.operations.demo import build_demo, is_empty, load_demo, seed_demo
from core.operations.rebuild import load_rollups, rebuild_rollups, rollup_differences

__all__ = [
    "PROBLEMS",
    "REPAIRABLE",
    "build_demo",
    "check_consistency",
    "is_empty",
    "load_demo",
    "load_rollups",
    "rebuild_rollups",
    "repair_arrays",
    "rollup_differences",
    "seed_demo",
]
