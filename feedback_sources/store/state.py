"""Sync bookkeeping: resume cursors and status per source and scope, and the runs log.
"""

from __future__ import annotations

import json
import sqlite3
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from .schema import iso_utc, now_utc


@dataclass
class SyncState:
    source: str
    scope: str
    cursor: dict[str, Any] | None
    status: str
    params: dict[str, Any] = field(default_factory=dict)
    started_at: str | None = None
    updated_at: str | None = None
    last_success_at: str | None = None


class SyncBookkeeping:
    """Sync state (resume cursors per source and scope) and the log of sync runs."""

    conn: sqlite3.Connection

    if TYPE_CHECKING:
        import sqlite_utils

        db: sqlite_utils.Database

        def write(self) -> Any: ...

    @staticmethod
    def _save_cursor(conn: sqlite3.Connection, source: str, scope: str, cursor: dict[str, Any]) -> None:
        conn.execute(
            "UPDATE sync_state SET cursor = ?, updated_at = ? WHERE source = ? AND scope = ?",
            (json.dumps(cursor, sort_keys=True), iso_utc(now_utc()), source, scope),
        )

    def get_state(self, source: str, scope: str) -> SyncState | None:
        row = self.conn.execute(
            "SELECT source, scope, cursor, status, params, started_at, updated_at, last_success_at "
            "FROM sync_state WHERE source = ? AND scope = ?",
            (source, scope),
        ).fetchone()
        if row is None:
            return None
        cursor = json.loads(row[2]) if row[2] else None
        return SyncState(row[0], row[1], cursor, row[3], json.loads(row[4] or "{}"), row[5], row[6], row[7])

    def begin_state(self, source: str, scope: str, params: dict[str, Any], cursor: dict[str, Any] | None) -> None:
        now = iso_utc(now_utc())
        with self.write() as conn:
            conn.execute(
                "INSERT INTO sync_state (source, scope, cursor, status, params, started_at, updated_at) "
                "VALUES (?, ?, ?, 'running', ?, ?, ?) ON CONFLICT (source, scope) DO UPDATE SET "
                "cursor = excluded.cursor, status = 'running', params = excluded.params, "
                "started_at = excluded.started_at, updated_at = excluded.updated_at",
                (source, scope, json.dumps(cursor, sort_keys=True) if cursor is not None else None,
                 json.dumps(params, sort_keys=True), now, now),
            )

    def finish_state(self, source: str, scope: str, status: str) -> None:
        now = iso_utc(now_utc())
        with self.write() as conn:
            conn.execute(
                "UPDATE sync_state SET status = ?, updated_at = ?, "
                "last_success_at = CASE WHEN ? = 'complete' THEN ? ELSE last_success_at END "
                "WHERE source = ? AND scope = ?",
                (status, now, status, now, source, scope),
            )

    def states(self) -> list[SyncState]:
        rows = self.conn.execute("SELECT source, scope FROM sync_state ORDER BY source, scope").fetchall()
        return [s for s in (self.get_state(a, b) for a, b in rows) if s is not None]

    def start_run(self, run_group: str, source: str, mode: str, range_start: str | None, range_end: str | None) -> int:
        with self.write() as conn:
            cursor = conn.execute(
                "INSERT INTO sync_runs (run_group, source, mode, range_start, range_end, started_at, status) "
                "VALUES (?, ?, ?, ?, ?, ?, 'running')",
                (run_group, source, mode, range_start, range_end, iso_utc(now_utc())),
            )
            return int(cursor.lastrowid or 0)

    def finish_run(self, run_id: int, **fields: Any) -> None:
        fields.setdefault("finished_at", iso_utc(now_utc()))
        if "rate_limit" in fields and not isinstance(fields["rate_limit"], str):
            fields["rate_limit"] = json.dumps(fields["rate_limit"])
        assignments = ", ".join(f"{name} = ?" for name in fields)
        with self.write() as conn:
            conn.execute(f"UPDATE sync_runs SET {assignments} WHERE id = ?", [*fields.values(), run_id])

    def recent_runs(self, limit: int = 50) -> list[dict[str, Any]]:
        return list(self.db.query("SELECT * FROM sync_runs ORDER BY id DESC LIMIT ?", [limit]))

    def source_summary(self) -> dict[str, dict[str, Any]]:
        """Per source: records stored, newest record, last successful sync, last run status."""
        summary: dict[str, dict[str, Any]] = {}
        for row in self.db.query(
            "SELECT source, COUNT(*) AS records, MAX(created_at) AS newest FROM feedback GROUP BY source"
        ):
            summary[row["source"]] = {"records": row["records"], "newest": row["newest"]}
        for row in self.db.query(
            "SELECT source, MAX(finished_at) AS last_success FROM sync_runs WHERE status = 'complete' GROUP BY source"
        ):
            summary.setdefault(row["source"], {"records": 0, "newest": None})["last_success"] = row["last_success"]
        for row in self.db.query(
            "SELECT source, status, errors, finished_at FROM sync_runs WHERE id IN (SELECT MAX(id) FROM sync_runs GROUP BY source)"
        ):
            entry = summary.setdefault(row["source"], {"records": 0, "newest": None})
            entry["last_status"] = row["status"]
            entry["last_error"] = row["errors"]
        return summary

