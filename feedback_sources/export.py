"""CSV export of exactly what a filter selects, streamed, safe to open in a spreadsheet.

Spreadsheets run a cell that starts with `=`, `+`, `-`, `@`, tab, CR or LF as a formula (OWASP "CSV injection");
pandas, the csv module and sqlite-utils write such cells untouched, so every text cell is neutralized here with a
leading apostrophe. Numbers stay numbers.
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


def write_rows(out: TextIO, columns: Sequence[str], rows: Iterable[dict[str, Any]], *, bom: bool = True) -> int:
    if bom:
        out.write(UTF8_BOM)
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(columns)
    count = 0
    for row in rows:
        writer.writerow([neutralize(row.get(column)) for column in columns])
        count += 1
    return count


def export_csv(
    store: Store,
    filters: Filters,
    destination: str | Path | TextIO,
    *,
    columns: Sequence[str] | None = None,
) -> int:
    """Write the filtered rows as CSV; returns the number of rows written."""
    columns = tuple(columns or DEFAULT_EXPORT_COLUMNS)
    rows = store.iter_rows(filters, columns=columns, limit=None)
    if isinstance(destination, (str, Path)):
        path = Path(destination).expanduser()
        if not path.parent.is_dir():
            raise ValueError(f"the folder {path.parent} does not exist; create it or choose another path")
        temporary = path.with_name(path.name + ".part")
        with temporary.open("w", encoding="utf-8", newline="") as handle:
            count = write_rows(handle, columns, rows)
        temporary.replace(path)  # a failed export never leaves a half-written file under the real name
        return count
    return write_rows(destination, columns, rows)


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
