"""CSV that a spreadsheet opens as data: text that starts like a formula is kept as text.

Notes, names and titles come from users and files; a cell such as `=HYPERLINK(...)` would
run when an export is opened in a spreadsheet (CSV injection). As OWASP advises: text that
starts like a formula, or holds one after a character a spreadsheet may split a cell on
(`x;=1+1` in a locale whose separator is `;`), gets a leading apostrophe, and every text
cell is quoted; numbers, negative ones included, are left as they are.
"""

import csv
import re

from dash import dcc

FORMULA = re.compile(r"(^|[;,\t\r\n])\s*[=+\-@\t\r]")
NUMBER = re.compile(r"[+-]?\d+(\.\d+)?")


def cell(value):
    """`value` as it should be written: text that holds what may start a formula, as text."""
    if isinstance(value, str) and FORMULA.search(value) and not NUMBER.fullmatch(value):
        return "'" + value
    return value


class Writer:
    """csv.writer whose rows go through `cell`, every text quoted."""

    def __init__(self, out):
        self._writer = csv.writer(out, quoting=csv.QUOTE_STRINGS)

    def writerow(self, row) -> None:
        self._writer.writerow([cell(value) for value in row])


# Excel on Windows reads a CSV file as the local code page unless it starts with UTF-8's
# byte-order mark; Python (encoding "utf-8-sig") and pandas skip the mark
BYTE_ORDER_MARK = "\ufeff"


def download(content: str, filename: str) -> dict:
    """A CSV file for dcc.Download, with the byte-order mark that makes Excel read it as UTF-8."""
    return dcc.send_string(BYTE_ORDER_MARK + content, filename, type="text/csv")
