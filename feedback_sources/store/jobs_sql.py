"""The `sync_jobs` table and the sync schedule in `sync_settings` (jobs.py runs the jobs, judges their liveness and
holds the lock; these are its rows).

Rows are read as dicts, every column (jobs.py makes its Job from them).
"""

from __future__ import annotations

import sqlite3
from typing import TYPE_CHECKING, Any


class JobTables:
    """Job rows: created, claimed, beating, asked to stop, finished or found dead; and the schedule setting."""

    conn: sqlite3.Connection

    if TYPE_CHECKING:
        def write(self) -> Any: ...
        def query(self, sql: str, params: Any = ()) -> list[dict[str, Any]]: ...

    # -- reading ---------------------------------------------------------------------------------------------------

    def job_row(self, job_id: int) -> dict[str, Any] | None:
        rows = self.query("SELECT * FROM sync_jobs WHERE id = ?", [job_id])
        return rows[0] if rows else None

    def active_job_rows(self) -> list[dict[str, Any]]:
        """Jobs starting or running, as their rows say."""
        return self.query("SELECT * FROM sync_jobs WHERE status IN ('starting', 'running')")

    def running_job_rows(self) -> list[dict[str, Any]]:
        return self.query("SELECT * FROM sync_jobs WHERE status = 'running'")

    def newest_active_job_row(self) -> dict[str, Any] | None:
        rows = self.query(
            "SELECT * FROM sync_jobs WHERE status IN ('starting', 'running') ORDER BY id DESC LIMIT 1")
        return rows[0] if rows else None

    def newest_job_row(self) -> dict[str, Any] | None:
        """The newest job not refused for a sync already running."""
        rows = self.query("SELECT * FROM sync_jobs WHERE status <> 'rejected' ORDER BY id DESC LIMIT 1")
        return rows[0] if rows else None

    def last_sync_start(self) -> str | None:
        """When the newest sync of any origin started (jobs, and runs recorded before jobs existed)."""
        row = self.conn.execute(
            "SELECT MAX(t) FROM (SELECT MAX(created_at) AS t FROM sync_jobs WHERE status <> 'rejected' "
            "UNION ALL SELECT MAX(started_at) FROM sync_runs)"
        ).fetchone()
        return row[0] if row and row[0] else None

    # -- writing ---------------------------------------------------------------------------------------------------

    def insert_job(self, *, origin: str, sources: str, spec: str, created_at: str, log_path: str | None) -> int:
        """A job row in state "starting", its heartbeat at its creation."""
        with self.write() as conn:
            cursor = conn.execute(
                "INSERT INTO sync_jobs (origin, status, sources, spec, created_at, heartbeat_at, log_path) "
                "VALUES (?, 'starting', ?, ?, ?, ?, ?)",
                (origin, sources, spec, created_at, created_at, log_path),
            )
            return int(cursor.lastrowid or 0)

    def set_job_pid(self, job_id: int, pid: int) -> None:
        with self.write() as conn:
            conn.execute("UPDATE sync_jobs SET pid = ? WHERE id = ? AND pid IS NULL", (pid, job_id))

    def request_job_cancel(self, job_id: int) -> bool:
        """Set the cancel flag of an active job; False when it is no longer active."""
        with self.write() as conn:
            changed = conn.execute(
                "UPDATE sync_jobs SET cancel_requested = 1 WHERE id = ? AND status IN ('starting', 'running')", (job_id,)
            ).rowcount
        return bool(changed)

    def end_dead_job(self, job_id: int, *, was: str, status: str, finished_at: str, message: str,
                     run_group: str | None, run_error: str) -> None:
        """Record a job whose process is gone as `status` (if it still says `was`), and its running sync runs as
        interrupted, in one transaction."""
        with self.write() as conn:
            conn.execute(
                "UPDATE sync_jobs SET status = ?, finished_at = ?, message = ? WHERE id = ? AND status = ?",
                (status, finished_at, message, job_id, was),
            )
            if run_group:
                conn.execute(
                    "UPDATE sync_runs SET status = 'interrupted', finished_at = ?, errors = COALESCE(errors, ?) "
                    "WHERE run_group = ? AND status = 'running'",
                    (finished_at, run_error, run_group),
                )

    def beat_job(self, job_id: int, *, at: str, progress: str) -> bool:
        """Write the heartbeat and progress; a job a reader took for dead is running again. Returns whether a
        cancel was asked for."""
        with self.write() as conn:
            conn.execute("UPDATE sync_jobs SET heartbeat_at = ?, progress = ? WHERE id = ?",
                         (at, progress, job_id))
            # A reader took a long silence (a suspended laptop, a stopped process) for death; we hold the lock, so
            # we are the sync, alive again: say so.
            conn.execute("UPDATE sync_jobs SET status = 'running', finished_at = NULL, message = NULL "
                         "WHERE id = ? AND status = 'interrupted'", (job_id,))
            row = conn.execute("SELECT cancel_requested FROM sync_jobs WHERE id = ?", (job_id,)).fetchone()
        return row is not None and bool(row[0])

    def reject_job(self, job_id: int, *, finished_at: str, pid: int, message: str) -> None:
        with self.write() as conn:
            conn.execute("UPDATE sync_jobs SET status = 'rejected', finished_at = ?, pid = ?, message = ? "
                         "WHERE id = ?", (finished_at, pid, message, job_id))

    def claim_job(self, job_id: int | None, *, origin: str, sources: str, spec: str, pid: int, at: str,
                  run_group: str) -> tuple[int, bool]:
        """Mark the job (a new one when `job_id` is None) as running in this process, in one transaction; returns
        its id and whether a cancel was already asked for."""
        with self.write() as conn:
            if job_id is None:
                job_id = int(conn.execute(
                    "INSERT INTO sync_jobs (origin, status, sources, spec, created_at, log_path) "
                    "VALUES (?, 'starting', ?, ?, ?, NULL)",
                    (origin, sources, spec, at),
                ).lastrowid or 0)
            conn.execute(
                "UPDATE sync_jobs SET status = 'running', pid = ?, started_at = ?, heartbeat_at = ?, "
                "run_group = ? WHERE id = ?",
                (pid, at, at, run_group, job_id),
            )
            cancelled = conn.execute("SELECT cancel_requested FROM sync_jobs WHERE id = ?", (job_id,)).fetchone()
        return job_id, bool(cancelled and cancelled[0])

    def finish_job(self, job_id: int, *, status: str, finished_at: str, heartbeat_at: str, progress: str,
                   results: str | None, message: str | None) -> None:
        """The job's outcome; a message already on the row stays unless a new one is given."""
        with self.write() as conn:
            conn.execute(
                "UPDATE sync_jobs SET status = ?, finished_at = ?, heartbeat_at = ?, progress = ?, results = ?, "
                "message = COALESCE(?, message) WHERE id = ?",
                (status, finished_at, heartbeat_at, progress, results, message, job_id),
            )

    # -- the schedule ----------------------------------------------------------------------------------------------

    def get_setting(self, key: str) -> Any:
        """The stored value, None when there is none."""
        row = self.conn.execute("SELECT value FROM sync_settings WHERE key = ?", (key,)).fetchone()
        return None if row is None else row[0]

    def set_setting(self, key: str, value: str | None) -> None:
        """Store a setting, or remove it when `value` is None."""
        with self.write() as conn:
            if value is None:
                conn.execute("DELETE FROM sync_settings WHERE key = ?", (key,))
            else:
                conn.execute("INSERT INTO sync_settings (key, value) VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET "
                             "value = excluded.value", (key, value))
