"""CSV export of exactly what a filter selects, streamed, safe to open in a spreadsheet.

Spreadsheets run a cell that starts with `=`, `+`, `-`, `@`, tab, CR or LF as a formula (OWASP "CSV injection");
pandas, the csv module and sqlite-utils write such cells untouched, so every text cell is neutralized here with a
leading apostrophe. Numbers stay numbers. `neutralize` states the rule; exports apply it inside their SQL query
(`neutralized_sql`), so a million rows go from SQLite to csv.writer without a Python call per cell.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterable, Sequence
from datetime import date
from pathlib import Path
from typing import Any, TextIO

from .store import FEEDBACK_COLUMNS, Filters, Store

FORMULA_TRIGGERS = ("=", "+", "-", "@", "\t", "\r", "\n")
DEFAULT_EXPORT_COLUMNS = tuple(c for c in FEEDBACK_COLUMNS if c != "synced_at")
UTF8_BOM = "\ufeff"  # lets Excel open UTF-8 correctly


def neutralize(value: Any) -> Any:
    if isinstance(value, str) and value.startswith(FORMULA_TRIGGERS):
        return "'" + value
    return value


def neutralized_sql(column: str) -> str:
    """neutralize() in SQL, for one column: the exported rows then reach csv.writer without a Python call per cell."""
    triggers = ", ".join(f"char({ord(trigger)})" for trigger in FORMULA_TRIGGERS)
    return (f"CASE WHEN typeof({column}) = 'text' AND substr({column}, 1, 1) IN ({triggers}) "
            f"THEN '''' || {column} ELSE {column} END")


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
