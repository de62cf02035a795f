"""CSV export of exactly what a filter selects, streamed, safe to open in a spreadsheet.

Spreadsheets run a cell that starts with `=`, `+`, `-`, `@`, tab, CR or LF as a formula (OWASP "CSV injection");
pandas, the csv module and sqlite-utils write such cells untouched, so every text cell is neutralized here with a
leading apostrophe. The trigger is also looked for behind what a spreadsheet skips or normalizes before reading a
formula: a byte-order mark (U+FEFF), spaces (plain, no-break, ideographic, zero-width), and the full-width forms
`＝＋－＠` that an IME types and some spreadsheets fold to their ASCII twins.

Two more things a spreadsheet cannot take: a NUL (the cell ends there, or the file is refused), so NULs are dropped;
and a cell longer than 32,767 characters (Excel's limit: the rest is cut without a word), so longer text is cut to
that length, ending with a visible "… [truncated]". Numbers stay numbers.

`neutralize` states the rule; exports apply it inside their SQL query (`neutralized_sql`), so a million rows go from
SQLite to csv.writer without a Python call per cell. A property test keeps the two equal.
"""

from __future__ import annotations

import csv
import io
import re
import sqlite3
from collections.abc import Iterable, Sequence
from datetime import date
from pathlib import Path
from typing import Any, TextIO

from .store import FEEDBACK_COLUMNS, Filters, Store

FORMULA_TRIGGERS = ("=", "+", "-", "@", "\t", "\r", "\n", "\uff1d", "\uff0b", "\uff0d", "\uff20")
# Skipped before the first character is looked at: BOM, space, no-break space, ideographic space, zero-width space,
# vertical tab, form feed. (Tab, CR and LF are triggers themselves.)
FORMULA_LEAD = "\ufeff \u00a0\u3000\u200b\x0b\x0c"
MAX_CELL_CHARS = 32_767  # Excel's limit for one cell
TRUNCATED_MARKER = "… [truncated]"
DEFAULT_EXPORT_COLUMNS = tuple(c for c in FEEDBACK_COLUMNS if c != "synced_at")
UTF8_BOM = "\ufeff"  # lets Excel open UTF-8 correctly


def neutralize(value: Any) -> Any:
    """A text cell made safe for a spreadsheet: NULs dropped, a formula defused with "'", capped at MAX_CELL_CHARS."""
    if not isinstance(value, str):
        return value
    text = value.replace("\x00", "")
    if text.lstrip(FORMULA_LEAD).startswith(FORMULA_TRIGGERS):
        text = "'" + text
    if len(text) > MAX_CELL_CHARS:
        text = text[: MAX_CELL_CHARS - len(TRUNCATED_MARKER)] + TRUNCATED_MARKER
    return text


def _sql_text(text: str) -> str:
    return " || ".join(f"char({ord(character)})" for character in text)


# The Python rule as an SQL function, for the rare cells SQL cannot handle: one holding a NUL (SQLite's length,
# substr and ltrim stop at the first NUL, replace cannot match one) or one at the length cap.
SQL_NEUTRALIZE_FUNCTION = "feedback_hub_neutralize"


def register_sql_functions(conn: sqlite3.Connection) -> None:
    """Make `conn` able to run neutralized_sql (it calls back into Python for the rare cells above)."""
    conn.create_function(SQL_NEUTRALIZE_FUNCTION, 1, neutralize, deterministic=True)


# Columns the store writes as JSON: a JSON text holds a NUL only as the escape "\u0000", never raw, so these (the
# longest columns) skip the NUL scan, which would otherwise double the cost of reading them.
JSON_COLUMNS = frozenset({"tags", "metadata"})


def neutralized_sql(column: str) -> str:
    """neutralize() in SQL, for one column: the exported rows then reach csv.writer without a Python call per cell
    (only a cell holding a NUL or near the length cap goes to Python). The connection needs register_sql_functions.

    The first character decides most cells (unicode() reads one code point); only a cell starting with a lead
    character (a space, a BOM) pays for ltrim, which copies the whole text. CASE stops at the first WHEN that holds."""
    triggers = ", ".join(str(ord(trigger)) for trigger in FORMULA_TRIGGERS)
    leads = ", ".join(str(ord(lead)) for lead in FORMULA_LEAD)
    # Bytes, not characters: no scan to count them, and fewer bytes than the cap means fewer characters.
    rare = f"length(CAST({column} AS BLOB)) >= {MAX_CELL_CHARS}"
    if column not in JSON_COLUMNS:
        rare = f"instr({column}, char(0)) > 0 OR {rare}"
    return (f"CASE WHEN typeof({column}) <> 'text' THEN {column} "
            f"WHEN {rare} THEN {SQL_NEUTRALIZE_FUNCTION}({column}) "
            f"WHEN unicode({column}) IN ({triggers}) THEN char(39) || {column} "
            f"WHEN unicode({column}) NOT IN ({leads}) THEN {column} "
            f"WHEN unicode(ltrim({column}, {_sql_text(FORMULA_LEAD)})) IN ({triggers}) THEN char(39) || {column} "
            f"ELSE {column} END")


def write_values(out: TextIO, columns: Sequence[str], rows: Iterable[Sequence[Any]], *, bom: bool = True) -> int:
    """Rows already neutralized (Store.iter_values with neutralized_sql), written by csv.writer alone."""
    if bom:
        out.write(UTF8_BOM)
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(columns)
    counted = _Counted(rows)
    writer.writerows(counted)
    return counted.count


class _Counted:
    """Counts the rows it hands out, so that writerows stays one C call over the whole stream."""

    def __init__(self, rows: Iterable[Sequence[Any]]):
        self._rows = iter(rows)
        self.count = 0

    def __iter__(self) -> _Counted:
        return self

    def __next__(self) -> Sequence[Any]:
        row = next(self._rows)
        self.count += 1
        return row


def export_csv(
    store: Store,
    filters: Filters,
    destination: str | Path | TextIO,
    *,
    columns: Sequence[str] | None = None,
) -> int:
    """Write the filtered rows as CSV; returns the number of rows written."""
    columns = tuple(columns or DEFAULT_EXPORT_COLUMNS)
    store.register_function(SQL_NEUTRALIZE_FUNCTION, 1, neutralize)
    rows = store.iter_values(filters, columns=columns, expression=neutralized_sql)
    if isinstance(destination, (str, Path)):
        path = Path(destination).expanduser()
        if not path.parent.is_dir():
            raise ValueError(f"the folder {path.parent} does not exist; create it or choose another path")
        temporary = path.with_name(path.name + ".part")
        with temporary.open("w", encoding="utf-8", newline="") as handle:
            count = write_values(handle, columns, rows)
        temporary.replace(path)  # a failed export never leaves a half-written file under the real name
        return count
    return write_values(destination, columns, rows)


def export_csv_bytes(store: Store, filters: Filters, *, columns: Sequence[str] | None = None) -> tuple[bytes, int]:
    buffer = io.StringIO()
    count = export_csv(store, filters, buffer, columns=columns)
    return buffer.getvalue().encode("utf-8"), count


def export_filename(filters: Filters, today: date | None = None) -> str:
    start = filters.start.isoformat() if filters.start else "all"
    end = filters.end.isoformat() if filters.end else (today or date.today()).isoformat()
    parts = ["feedback", f"{start}_to_{end}"]
    for values in (filters.sources, filters.tiers, filters.categories):
        if values:
            parts.append("-".join(values))
    name = "_".join(parts)
    return re.sub(r"[^A-Za-z0-9_.-]+", "-", name)[:150] + ".csv"
