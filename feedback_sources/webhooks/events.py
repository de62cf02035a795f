"""The receiver's own tables, in the same SQLite file as the records: event log, pending fetches, counters, heartbeat.

- `webhook_events`: one row per authentic vendor event, UNIQUE(source, event_id), so a redelivery is recognised and
  stored once (its `deliveries` count goes up instead).
- `webhook_fetches`: records the receiver still has to fetch from the vendor (events that carry only ids, or that
  lack fields the sync would have). The table survives a restart; the fetch worker drains it with backoff.
- `webhook_counters`: per source and UTC day, how many requests were refused (bad signature, too large, rate
  limited, malformed). Counted in memory and written with the heartbeat, so a flood of forgeries costs no writes.
- `webhook_receiver`: one heartbeat row (host, port, pid, started_at, last_seen) for the Webhooks page.

The tables are part of the store's schema (store/schema.py); readers check that they exist first, for a store
opened without migrating.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import sqlite3
from collections.abc import Callable, Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from functools import partial
from typing import Any, TypeVar

from ..models import clean_text, clean_value
from ..store import Store, iso_utc

T = TypeVar("T")

# Verdicts of refused requests, counted in webhook_counters rather than logged row by row.
REFUSED_VERDICTS = ("rejected", "too_large", "rate_limited", "malformed")

# A receiver whose heartbeat is older than this is reported as not running.
STALE_HEARTBEAT_SECONDS = 30.0


def _tables_exist(store: Store) -> bool:
    found = store.conn.execute(
        "SELECT COUNT(*) FROM sqlite_master WHERE type = 'table' AND name IN "
        "('webhook_events', 'webhook_fetches', 'webhook_counters', 'webhook_receiver')"
    ).fetchone()[0]
    return int(found) == 4


# -- the event log -------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class FetchJob:
    """A record to fetch from the vendor: a ticket, a conversation or a survey response."""

    source: str
    kind: str
    object_id: str
    params: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class EventEntry:
    source: str
    event_id: str
    event_type: str | None
    verdict: str
    record_id: str | None
    detail: str
    received_at: str
    latency_ms: float | None
    fetches: tuple[FetchJob, ...] = ()


def is_known_event(store: Store, source: str, event_id: str) -> bool:
    row = store.conn.execute(
        "SELECT 1 FROM webhook_events WHERE source = ? AND event_id = ?", (source, event_id)
    ).fetchone()
    return row is not None


def note_redelivery(store: Store, source: str, event_id: str, at: str) -> None:
    with store.write() as conn:
        conn.execute(
            "UPDATE webhook_events SET deliveries = deliveries + 1, last_delivery_at = ? WHERE source = ? AND event_id = ?",
            (at, source, event_id),
        )


def log_event(store: Store, entry: EventEntry, *, now: float) -> bool:
    """Log an event and queue its fetches in one transaction. False when the event was already logged."""
    # Every text here comes from a vendor's payload (ids, type, a mapper's message quoting it); a lone surrogate or
    # a NUL in any of them must not turn an authentic delivery into a 500.
    entry = dataclasses.replace(
        entry,
        event_id=clean_text(entry.event_id),
        event_type=clean_value(entry.event_type),
        record_id=clean_value(entry.record_id),
        detail=clean_text(entry.detail),
        fetches=tuple(
            FetchJob(clean_text(job.source), clean_text(job.kind), clean_text(job.object_id), clean_value(dict(job.params)))
            for job in entry.fetches
        ),
    )
    with store.write() as conn:
        cursor = conn.execute(
            "INSERT INTO webhook_events (source, event_id, event_type, verdict, record_id, fetch_queued, detail, "
            "received_at, latency_ms, last_delivery_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?) "
            "ON CONFLICT (source, event_id) DO NOTHING",
            (
                entry.source,
                entry.event_id,
                entry.event_type,
                entry.verdict,
                entry.record_id,
                1 if entry.fetches else 0,
                entry.detail,
                entry.received_at,
                entry.latency_ms,
                entry.received_at,
            ),
        )
        if cursor.rowcount != 1:
            conn.execute(
                "UPDATE webhook_events SET deliveries = deliveries + 1, last_delivery_at = ? "
                "WHERE source = ? AND event_id = ?",
                (entry.received_at, entry.source, entry.event_id),
            )
            return False
        for job in entry.fetches:
            _enqueue(conn, job, event_id=entry.event_id, now=now, at=entry.received_at)
    return True


def _enqueue(conn: sqlite3.Connection, job: FetchJob, *, event_id: str, now: float, at: str) -> None:
    # A newer event about a record already waiting (or given up on) makes it due again with fresh attempts.
    conn.execute(
        "INSERT INTO webhook_fetches (source, kind, object_id, params, event_id, status, attempts, next_attempt_at, "
        "created_at, updated_at) VALUES (?, ?, ?, ?, ?, 'pending', 0, ?, ?, ?) "
        "ON CONFLICT (source, kind, object_id) DO UPDATE SET params = excluded.params, event_id = excluded.event_id, "
        "status = 'pending', attempts = 0, generation = generation + 1, next_attempt_at = excluded.next_attempt_at, "
        "last_error = NULL, updated_at = excluded.updated_at",
        (job.source, job.kind, job.object_id, json.dumps(dict(job.params), sort_keys=True), event_id, now, at, at),
    )


# -- the pending fetch queue ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class PendingFetch:
    id: int
    job: FetchJob
    attempts: int
    generation: int
    event_id: str | None


def due_fetches(store: Store, *, now: float, sources: Iterable[str], limit: int = 20) -> list[PendingFetch]:
    chosen = sorted(set(sources))
    if not chosen:
        return []
    rows = store.conn.execute(
        "SELECT id, source, kind, object_id, params, attempts, generation, event_id FROM webhook_fetches "
        f"WHERE status = 'pending' AND next_attempt_at <= ? AND source IN ({', '.join('?' * len(chosen))}) "
        "ORDER BY next_attempt_at, id LIMIT ?",
        (now, *chosen, limit),
    ).fetchall()
    found = []
    for row in rows:
        try:
            params = json.loads(row[4] or "{}")
        except ValueError:
            params = {}
        job = FetchJob(row[1], row[2], row[3], params if isinstance(params, dict) else {})
        found.append(PendingFetch(id=row[0], job=job, attempts=row[5], generation=row[6], event_id=row[7]))
    return found


def next_due_at(store: Store, sources: Iterable[str]) -> float | None:
    chosen = sorted(set(sources))
    if not chosen:
        return None
    row = store.conn.execute(
        "SELECT MIN(next_attempt_at) FROM webhook_fetches "
        f"WHERE status = 'pending' AND source IN ({', '.join('?' * len(chosen))})",
        chosen,
    ).fetchone()
    return float(row[0]) if row and row[0] is not None else None


# A newer event about the same record may re-arm a fetch while it is in flight (its generation goes up); the
# outcome of the older attempt then leaves the row alone so the newer state is fetched too.


def finish_fetch(store: Store, pending: PendingFetch) -> None:
    with store.write() as conn:
        conn.execute(
            "DELETE FROM webhook_fetches WHERE id = ? AND generation = ?", (pending.id, pending.generation)
        )


def retry_fetch(store: Store, pending: PendingFetch, *, next_attempt_at: float, error: str, at: str) -> None:
    error = clean_text(error)  # an error may quote the vendor's answer
    with store.write() as conn:
        conn.execute(
            "UPDATE webhook_fetches SET attempts = ?, next_attempt_at = ?, last_error = ?, updated_at = ? "
            "WHERE id = ? AND generation = ?",
            (pending.attempts + 1, next_attempt_at, error[:500], at, pending.id, pending.generation),
        )


def give_up_fetch(store: Store, pending: PendingFetch, *, error: str, at: str) -> None:
    error = clean_text(error)
    with store.write() as conn:
        conn.execute(
            "UPDATE webhook_fetches SET status = 'failed', attempts = ?, last_error = ?, updated_at = ? "
            "WHERE id = ? AND generation = ?",
            (pending.attempts + 1, error[:500], at, pending.id, pending.generation),
        )


def pending_fetches(store: Store) -> list[dict[str, Any]]:
    if not _tables_exist(store):
        return []
    return list(
        store.db.query(
            "SELECT source, kind, object_id, status, attempts, last_error, created_at, updated_at "
            "FROM webhook_fetches ORDER BY id"
        )
    )


# -- counters and heartbeat ----------------------------------------------------------------------------------------


def add_counts(store: Store, counts: Mapping[tuple[str, str], int], *, day: str) -> None:
    if not counts:
        return
    with store.write() as conn:
        conn.executemany(
            "INSERT INTO webhook_counters (source, day, verdict, count) VALUES (?, ?, ?, ?) "
            "ON CONFLICT (source, day, verdict) DO UPDATE SET count = count + excluded.count",
            [(source, day, verdict, n) for (source, verdict), n in counts.items() if n],
        )


def write_heartbeat(
    store: Store,
    *,
    host: str | None,
    port: int | None,
    pid: int,
    started_at: str,
    at: str,
    sources: Mapping[str, Any],
    stopped: bool = False,
) -> None:
    with store.write() as conn:
        conn.execute(
            "INSERT INTO webhook_receiver (id, host, port, pid, started_at, last_seen, stopped_at, sources) "
            "VALUES (1, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (id) DO UPDATE SET host = excluded.host, "
            "port = excluded.port, pid = excluded.pid, started_at = excluded.started_at, "
            "last_seen = excluded.last_seen, stopped_at = excluded.stopped_at, sources = excluded.sources",
            (host, port, pid, started_at, at, at if stopped else None, json.dumps(dict(sources), sort_keys=True)),
        )


# -- what the Webhooks page shows ----------------------------------------------------------------------------------


def _parse(text: str | None) -> datetime | None:
    if not text:
        return None
    try:
        return datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None


def receiver_status(store: Store, *, now: datetime | None = None) -> dict[str, Any]:
    """Is the receiver running, how many events today, the last event per source, and how many were refused."""
    now = (now or datetime.now(timezone.utc)).astimezone(timezone.utc)
    day = now.strftime("%Y-%m-%d")
    status: dict[str, Any] = {
        "running": False,
        "heartbeat": None,
        "events_today": 0,
        "events_today_by_source": {},
        "last_event": {},
        "rejected_today": 0,
        "rejected_total": 0,
        "refused_today": {},
        "pending_fetches": 0,
        "failed_fetches": 0,
    }
    if not _tables_exist(store):
        return status
    beat = store.conn.execute(
        "SELECT host, port, pid, started_at, last_seen, stopped_at, sources FROM webhook_receiver WHERE id = 1"
    ).fetchone()
    if beat is not None:
        last_seen = _parse(beat[4])
        fresh = last_seen is not None and (now - last_seen) <= timedelta(seconds=STALE_HEARTBEAT_SECONDS)
        status["running"] = bool(fresh and beat[5] is None)
        status["heartbeat"] = {
            "host": beat[0],
            "port": beat[1],
            "pid": beat[2],
            "started_at": beat[3],
            "last_seen": beat[4],
            "stopped_at": beat[5],
            "sources": json.loads(beat[6] or "{}"),
        }
    today_start = f"{day}T00:00:00Z"
    by_source = {
        row[0]: int(row[1])
        for row in store.conn.execute(
            "SELECT source, COUNT(*) FROM webhook_events WHERE received_at >= ? GROUP BY source", (today_start,)
        )
    }
    status["events_today_by_source"] = by_source
    status["events_today"] = sum(by_source.values())
    for row in store.db.query(
        "SELECT source, event_id, event_type, verdict, record_id, received_at FROM webhook_events "
        "WHERE id IN (SELECT MAX(id) FROM webhook_events GROUP BY source)"
    ):
        status["last_event"][row["source"]] = row
    refused: dict[str, int] = {}
    for verdict, count in store.conn.execute(
        "SELECT verdict, SUM(count) FROM webhook_counters WHERE day = ? GROUP BY verdict", (day,)
    ):
        refused[verdict] = int(count)
    status["refused_today"] = refused
    status["rejected_today"] = refused.get("rejected", 0)
    total = store.conn.execute("SELECT SUM(count) FROM webhook_counters WHERE verdict = 'rejected'").fetchone()[0]
    status["rejected_total"] = int(total or 0)
    for state, count in store.conn.execute("SELECT status, COUNT(*) FROM webhook_fetches GROUP BY status"):
        if state == "pending":
            status["pending_fetches"] = int(count)
        elif state == "failed":
            status["failed_fetches"] = int(count)
    return status


def recent_events(store: Store, limit: int = 50) -> list[dict[str, Any]]:
    """The newest logged events first: id, type, verdict, record, latency and how often the vendor delivered it."""
    if not _tables_exist(store):
        return []
    return list(
        store.db.query(
            "SELECT source, event_id, event_type, verdict, record_id, fetch_queued, detail, received_at, latency_ms, "
            "deliveries FROM webhook_events ORDER BY id DESC LIMIT ?",
            [max(0, int(limit))],
        )
    )


# -- one thread for all database work ------------------------------------------------------------------------------


class StoreRunner:
    """Runs store calls on one worker thread: SQLite work stays off the event loop and is never concurrent."""

    def __init__(self, store: Store):
        self.store = store
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="webhook-store")

    async def call(self, function: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._executor, partial(function, self.store, *args, **kwargs))

    def close(self) -> None:
        self._executor.shutdown(wait=True)
        self.store.close()


def utc_text(seconds: float) -> str:
    return iso_utc(datetime.fromtimestamp(seconds, tz=timezone.utc))
