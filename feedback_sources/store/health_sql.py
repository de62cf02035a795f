"""The reads behind source health: runs of `sync_runs` and counts of records per source (health.py judges
freshness, completeness, gaps and budgets from them).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from typing import Any


class HealthReads:
    """Per source: what its completed runs covered and reported, and what the store holds."""

    conn: sqlite3.Connection

    def last_reported_run(self, source: str, modes: Sequence[str]) -> tuple[Any, ...] | None:
        """(range_start, range_end, started_at, vendor_total) of the newest complete run in one of `modes` whose
        vendor reported a total."""
        placeholders = ", ".join("?" * len(modes))
        row: tuple[Any, ...] | None = self.conn.execute(
            "SELECT range_start, range_end, started_at, vendor_total FROM sync_runs "
            f"WHERE source = ? AND status = 'complete' AND vendor_total IS NOT NULL AND mode IN ({placeholders}) "
            "ORDER BY id DESC LIMIT 1",
            (source, *modes),
        ).fetchone()
        return row

    def records_created_between(self, source: str, start: str | None, end: str) -> int:
        """The source's records created before `end`, and from `start` on unless it is None."""
        conditions, params = ["source = ?", "created_at < ?"], [source, end]
        if start is not None:
            conditions.append("created_at >= ?")
            params.append(start)
        where = " AND ".join(conditions)
        return int(self.conn.execute(f"SELECT COUNT(*) FROM feedback WHERE {where}", params).fetchone()[0])

    def completed_span(self, source: str) -> tuple[Any, Any] | None:
        """(earliest range start or start, latest finish) over the source's complete runs."""
        row: tuple[Any, Any] | None = self.conn.execute(
            "SELECT MIN(COALESCE(range_start, started_at)), MAX(finished_at) FROM sync_runs "
            "WHERE source = ? AND status = 'complete'",
            (source,),
        ).fetchone()
        return row

    def first_record_at(self, source: str) -> str | None:
        first: str | None = self.conn.execute(
            "SELECT MIN(created_at) FROM feedback WHERE source = ?", (source,)).fetchone()[0]
        return first

    def records_per_day(self, source: str, start: str, end: str) -> list[tuple[str, int]]:
        """(YYYY-MM-DD, records) of the source's records created in [start, end)."""
        return self.conn.execute(
            "SELECT substr(created_at, 1, 10), COUNT(*) FROM feedback WHERE source = ? AND created_at >= ? "
            "AND created_at < ? GROUP BY 1",
            (source, start, end),
        ).fetchall()

    def last_run_facts(self, source: str) -> tuple[Any, ...] | None:
        """The newest run's started_at, finished_at, mode, status, fetched, new, updated, requests, wait_seconds,
        duration_seconds, errors and error_kind."""
        row: tuple[Any, ...] | None = self.conn.execute(
            "SELECT started_at, finished_at, mode, status, fetched, new, updated, requests, wait_seconds, "
            "duration_seconds, errors, error_kind FROM sync_runs WHERE source = ? ORDER BY id DESC LIMIT 1",
            (source,),
        ).fetchone()
        return row

    def daily_rate_limits(self, source: str) -> list[tuple[str | None, str | None]]:
        """(rate_limit JSON, when) of the newest five runs that saw a daily window."""
        return self.conn.execute(
            "SELECT rate_limit, COALESCE(finished_at, started_at) FROM sync_runs "
            "WHERE source = ? AND rate_limit LIKE '%\"day\"%' ORDER BY id DESC LIMIT 5",
            (source,),
        ).fetchall()

    def source_records(self, source: str) -> tuple[int, str | None]:
        """(records, newest created_at) of one source."""
        records, newest = self.conn.execute(
            "SELECT COUNT(*), MAX(created_at) FROM feedback WHERE source = ?", (source,)
        ).fetchone()
        return records, newest

    def last_success_at(self, source: str) -> str | None:
        last: str | None = self.conn.execute(
            "SELECT MAX(finished_at) FROM sync_runs WHERE source = ? AND status = 'complete'", (source,)
        ).fetchone()[0]
        return last

    def run_sources(self) -> list[str]:
        """Every source with a run, in order."""
        return [source for (source,) in self.conn.execute("SELECT DISTINCT source FROM sync_runs ORDER BY source")]
