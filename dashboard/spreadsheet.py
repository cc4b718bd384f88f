"""CSV that a spreadsheet opens as data: text that starts like a formula is kept as text.

Notes, names and titles come from users and files; a cell such as `=HYPERLINK(...)` would
run when an export is opened in a spreadsheet (CSV injection). Such text gets a leading
apostrophe, as OWASP advises; numbers, negative ones included, are left as they are.
"""

import csv
import re

FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
NUMBER = re.compile(r"[+-]?\d+(\.\d+)?")


def cell(value):
    """`value` as it should be written: text that starts like a formula, as text."""
    if isinstance(value, str) and value.startswith(FORMULA_START) and not NUMBER.fullmatch(value):
        return "'" + value
    return value


class Writer:
    """csv.writer whose rows go through `cell`."""

    def __init__(self, out):
        self._writer = csv.writer(out)

    def writerow(self, row) -> None:
        self._writer.writerow([cell(value) for value in row])
