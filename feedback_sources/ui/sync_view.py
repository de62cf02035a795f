"""The Sync page's rules: what a window preset means for `sync()`, how full a progress bar is and what it says,
and the columns of the results and history tables.

A custom range goes through the same check as the command line's, so the page cannot start what the CLI refuses.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

from ..ranges import sync_range
from .periods import _PERIOD_DAYS
from .text import parse_timestamp

SYNC_PRESETS: dict[str, str] = {
    "since_last": "Since last sync",
    "7d": "Last 7 days",
    "30d": "Last 30 days",
    "90d": "Last 90 days",
    "custom": "Custom range",
}


@dataclass(frozen=True)
class SyncWindow:
    start: datetime | None
    end: datetime | None
    incremental: bool
    label: str


def sync_window(preset: str, now: datetime, custom: tuple[date, date] | None = None) -> SyncWindow:
    """The arguments for `sync()` that a preset stands for. A custom range covers whole UTC days, end included."""
    if preset == "since_last":
        return SyncWindow(None, None, True, "since the last sync (30 days on a first sync)")
    if preset in _PERIOD_DAYS:
        days = _PERIOD_DAYS[preset]
        return SyncWindow(now - timedelta(days=days), None, True, f"the last {days} days")
    if preset == "custom":
        if custom is None or len(custom) != 2:
            raise ValueError("Pick a start and an end date.")
        first, last = custom
        if last < first:
            raise ValueError("The end date is before the start date.")
        # The same check as the command line's: no start before 2000 or in the future, no end past tomorrow.
        start, end = sync_range(since=first, until=last, now=now)
        return SyncWindow(start, end, False, f"{first.isoformat()} to {last.isoformat()}")
    raise ValueError(f"unknown preset {preset!r}")


def progress_fraction(progress: Mapping[str, Any]) -> float:
    """How full a source's progress bar is: exact when the vendor said how many records it has."""
    status = progress.get("status")
    if status in ("complete", "failed"):
        return 1.0
    total = progress.get("vendor_total")
    fetched = int(progress.get("fetched") or 0)
    if total:
        return min(0.99, fetched / int(total))
    pages = int(progress.get("pages") or 0)
    # Unknown total: creep towards the end so the bar moves with each page without claiming to be done.
    return min(0.95, 1 - 1 / (pages + 1)) if pages else 0.02


def progress_text(progress: Mapping[str, Any]) -> str:
    source = str(progress.get("source", ""))
    status = progress.get("status", "")
    pages = int(progress.get("pages") or 0)
    fetched = int(progress.get("fetched") or 0)
    total = progress.get("vendor_total")
    records = f"{fetched:,}" + (f" of {int(total):,}" if total else "")
    text = f"{source}: {status}, {pages} page{'s' if pages != 1 else ''}, {records} records"
    wait = float(progress.get("wait_seconds") or 0)
    if wait >= 0.5:
        text += f", waited {wait:.0f} s on the rate limit"
    if status == "failed" and progress.get("message"):
        text += f" - {progress['message']}"
    elif progress.get("message"):
        text += f" ({progress['message']})"
    return text


RESULT_COLUMNS = ("source", "status", "mode", "fetched", "new", "updated", "errors", "duration_seconds")


def result_rows(results: Iterable[Mapping[str, Any]]) -> list[dict[str, Any]]:
    return [{column: result.get(column) for column in RESULT_COLUMNS} for result in results]


HISTORY_COLUMNS = (
    "started_at", "source", "mode", "status", "fetched", "new", "updated", "errors", "duration_seconds",
)


def history_rows(runs: Iterable[Mapping[str, Any]]) -> list[dict[str, Any]]:
    rows = []
    for run in runs:
        row = {column: run.get(column) for column in HISTORY_COLUMNS}
        row["started_at"] = parse_timestamp(run.get("started_at"))
        rows.append(row)
    return rows
