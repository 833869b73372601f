"""CSV cells that a spreadsheet opens as data, never as a formula (CSV injection, OWASP).

Text in our CSVs comes from data files and model output (questions, options, categories, sample ids,
raw answers): a cell starting with `=`, `+`, `-`, `@`, a tab or a carriage return is run as a formula by
Excel, LibreOffice and Google Sheets. Such text gets a leading apostrophe, which those apps hide and which
tells a reader the cell was text. Numbers are left alone, both numeric values (accuracies, CI bounds such
as -0.5) and text that is exactly a number ("-1" as a sample id): a spreadsheet reads those as numbers,
not formulas, and rewriting them would change ids and values for every other reader of the file.
"""

from __future__ import annotations

import re

FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
_NUMBER = re.compile(r"[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?")


def spreadsheet_safe(value):
    """`value` unchanged unless it is text a spreadsheet would run as a formula; that gets a leading `'`."""
    if isinstance(value, str) and value.startswith(FORMULA_START) and not _NUMBER.fullmatch(value):
        return "'" + value
    return value
