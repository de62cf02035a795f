"""The webhook receiver's tables: event log, pending fetches, refusal counters and heartbeat (webhooks/events.py
decides what goes in them and what the Webhooks page makes of them).

Part of the store so that every statement on the receiver's tables lives beside the schema that defines them.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any


class WebhookTables:
    """Reads and writes of `webhook_events`, `webhook_fetches`, `webhook_counters` and `webhook_receiver`."""

    conn: sqlite3.Connection

    if TYPE_CHECKING:
        import sqlite_utils

        db: sqlite_utils.Database

        def write(self) -> Any: ...

    def has_webhook_tables(self) -> bool:
        """Whether the receiver's four tables exist (a store opened without migrating may lack them)."""
        found = self.conn.execute(
            "SELECT COUNT(*) FROM sqlite_master WHERE type = 'table' AND name IN "
            "('webhook_events', 'webhook_fetches', 'webhook_counters', 'webhook_receiver')"
        ).fetchone()[0]
        return int(found) == 4

    # -- the event log ---------------------------------------------------------------------------------------------

    def webhook_event_known(self, source: str, event_id: str) -> bool:
        row = self.conn.execute(
            "SELECT 1 FROM webhook_events WHERE source = ? AND event_id = ?", (source, event_id)
        ).fetchone()
        return row is not None

    def note_webhook_redelivery(self, source: str, event_id: str, at: str) -> None:
        with self.write() as conn:
            conn.execute(
                "UPDATE webhook_events SET deliveries = deliveries + 1, last_delivery_at = ? WHERE source = ? AND event_id = ?",
                (at, source, event_id),
            )

    def log_webhook_event(
        self,
        *,
        source: str,
        event_id: str,
        event_type: str | None,
        verdict: str,
        record_id: str | None,
        detail: str,
        received_at: str,
        latency_ms: float | None,
        fetches: Sequence[tuple[str, str, str, Mapping[str, str]]],
        now: float,
    ) -> bool:
        """Log an event and queue its fetches (source, kind, object id, params) in one transaction. False when the
        event was already logged: its delivery count goes up instead."""
        with self.write() as conn:
            cursor = conn.execute(
                "INSERT INTO webhook_events (source, event_id, event_type, verdict, record_id, fetch_queued, detail, "
                "received_at, latency_ms, last_delivery_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?) "
                "ON CONFLICT (source, event_id) DO NOTHING",
                (
                    source,
                    event_id,
                    event_type,
                    verdict,
                    record_id,
                    1 if fetches else 0,
                    detail,
                    received_at,
                    latency_ms,
                    received_at,
                ),
            )
            if cursor.rowcount != 1:
                conn.execute(
                    "UPDATE webhook_events SET deliveries = deliveries + 1, last_delivery_at = ? "
                    "WHERE source = ? AND event_id = ?",
                    (received_at, source, event_id),
                )
                return False
            for fetch in fetches:
                self._enqueue_webhook_fetch(conn, fetch, event_id=event_id, now=now, at=received_at)
        return True

    @staticmethod
    def _enqueue_webhook_fetch(conn: sqlite3.Connection, fetch: tuple[str, str, str, Mapping[str, str]], *,
                               event_id: str, now: float, at: str) -> None:
        # A newer event about a record already waiting (or given up on) makes it due again with fresh attempts.
        source, kind, object_id, params = fetch
        conn.execute(
            "INSERT INTO webhook_fetches (source, kind, object_id, params, event_id, status, attempts, next_attempt_at, "
            "created_at, updated_at) VALUES (?, ?, ?, ?, ?, 'pending', 0, ?, ?, ?) "
            "ON CONFLICT (source, kind, object_id) DO UPDATE SET params = excluded.params, event_id = excluded.event_id, "
            "status = 'pending', attempts = 0, generation = generation + 1, next_attempt_at = excluded.next_attempt_at, "
            "last_error = NULL, updated_at = excluded.updated_at",
            (source, kind, object_id, json.dumps(dict(params), sort_keys=True), event_id, now, at, at),
        )

    def recent_webhook_events(self, limit: int) -> list[dict[str, Any]]:
        return list(
            self.db.query(
                "SELECT source, event_id, event_type, verdict, record_id, fetch_queued, detail, received_at, latency_ms, "
                "deliveries FROM webhook_events ORDER BY id DESC LIMIT ?",
                [max(0, int(limit))],
            )
        )

    def webhook_events_since(self, start: str) -> dict[str, int]:
        """Events received at or after `start`, per source."""
        return {
            row[0]: int(row[1])
            for row in self.conn.execute(
                "SELECT source, COUNT(*) FROM webhook_events WHERE received_at >= ? GROUP BY source", (start,)
            )
        }

    def last_webhook_events(self) -> list[dict[str, Any]]:
        """The newest event of each source."""
        return list(self.db.query(
            "SELECT source, event_id, event_type, verdict, record_id, received_at FROM webhook_events "
            "WHERE id IN (SELECT MAX(id) FROM webhook_events GROUP BY source)"
        ))

    # -- the pending fetch queue -----------------------------------------------------------------------------------

    def due_webhook_fetches(self, *, now: float, sources: Sequence[str], limit: int) -> list[tuple[Any, ...]]:
        """(id, source, kind, object id, params as JSON, attempts, generation, event id) of the pending fetches of
        `sources` due by `now`, the longest-waiting first."""
        return self.conn.execute(
            "SELECT id, source, kind, object_id, params, attempts, generation, event_id FROM webhook_fetches "
            f"WHERE status = 'pending' AND next_attempt_at <= ? AND source IN ({', '.join('?' * len(sources))}) "
            "ORDER BY next_attempt_at, id LIMIT ?",
            (now, *sources, limit),
        ).fetchall()

    def next_webhook_fetch_due(self, sources: Sequence[str]) -> float | None:
        row = self.conn.execute(
            "SELECT MIN(next_attempt_at) FROM webhook_fetches "
            f"WHERE status = 'pending' AND source IN ({', '.join('?' * len(sources))})",
            list(sources),
        ).fetchone()
        return float(row[0]) if row and row[0] is not None else None

    # A newer event about the same record may re-arm a fetch while it is in flight (its generation goes up); the
    # outcome of the older attempt then leaves the row alone so the newer state is fetched too.

    def finish_webhook_fetch(self, fetch_id: int, generation: int) -> None:
        with self.write() as conn:
            conn.execute(
                "DELETE FROM webhook_fetches WHERE id = ? AND generation = ?", (fetch_id, generation)
            )

    def retry_webhook_fetch(self, fetch_id: int, generation: int, *, attempts: int, next_attempt_at: float,
                            error: str, at: str) -> None:
        with self.write() as conn:
            conn.execute(
                "UPDATE webhook_fetches SET attempts = ?, next_attempt_at = ?, last_error = ?, updated_at = ? "
                "WHERE id = ? AND generation = ?",
                (attempts, next_attempt_at, error, at, fetch_id, generation),
            )

    def give_up_webhook_fetch(self, fetch_id: int, generation: int, *, attempts: int, error: str, at: str) -> None:
        with self.write() as conn:
            conn.execute(
                "UPDATE webhook_fetches SET status = 'failed', attempts = ?, last_error = ?, updated_at = ? "
                "WHERE id = ? AND generation = ?",
                (attempts, error, at, fetch_id, generation),
            )

    def webhook_fetch_rows(self) -> list[dict[str, Any]]:
        return list(
            self.db.query(
                "SELECT source, kind, object_id, status, attempts, last_error, created_at, updated_at "
                "FROM webhook_fetches ORDER BY id"
            )
        )

    def webhook_fetch_counts(self) -> list[tuple[str, int]]:
        """(status, fetches) per status of the queue."""
        return self.conn.execute("SELECT status, COUNT(*) FROM webhook_fetches GROUP BY status").fetchall()

    # -- counters and heartbeat ------------------------------------------------------------------------------------

    def add_webhook_counts(self, rows: Iterable[tuple[str, str, str, int]]) -> None:
        """Add (source, day, verdict, count) to the refusal counters."""
        with self.write() as conn:
            conn.executemany(
                "INSERT INTO webhook_counters (source, day, verdict, count) VALUES (?, ?, ?, ?) "
                "ON CONFLICT (source, day, verdict) DO UPDATE SET count = count + excluded.count",
                list(rows),
            )

    def webhook_refusals_on(self, day: str) -> dict[str, int]:
        """Refused requests of one UTC day, per verdict."""
        refused: dict[str, int] = {}
        for verdict, count in self.conn.execute(
            "SELECT verdict, SUM(count) FROM webhook_counters WHERE day = ? GROUP BY verdict", (day,)
        ):
            refused[verdict] = int(count)
        return refused

    def webhook_rejected_total(self) -> int:
        total = self.conn.execute("SELECT SUM(count) FROM webhook_counters WHERE verdict = 'rejected'").fetchone()[0]
        return int(total or 0)

    def write_webhook_heartbeat(self, *, host: str | None, port: int | None, pid: int, started_at: str, at: str,
                                stopped_at: str | None, sources: Mapping[str, Any]) -> None:
        with self.write() as conn:
            conn.execute(
                "INSERT INTO webhook_receiver (id, host, port, pid, started_at, last_seen, stopped_at, sources) "
                "VALUES (1, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (id) DO UPDATE SET host = excluded.host, "
                "port = excluded.port, pid = excluded.pid, started_at = excluded.started_at, "
                "last_seen = excluded.last_seen, stopped_at = excluded.stopped_at, sources = excluded.sources",
                (host, port, pid, started_at, at, stopped_at, json.dumps(dict(sources), sort_keys=True)),
            )

    def webhook_heartbeat(self) -> tuple[Any, ...] | None:
        """(host, port, pid, started_at, last_seen, stopped_at, sources as JSON) of the receiver, if it ever ran."""
        row: tuple[Any, ...] | None = self.conn.execute(
            "SELECT host, port, pid, started_at, last_seen, stopped_at, sources FROM webhook_receiver WHERE id = 1"
        ).fetchone()
        return row
