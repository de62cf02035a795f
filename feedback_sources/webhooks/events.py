"""The receiver's own tables, in the same SQLite file as the records: event log, pending fetches, counters, heartbeat.

- `webhook_events`: one row per authentic vendor event, UNIQUE(source, event_id), so a redelivery is recognised and
  stored once (its `deliveries` count goes up instead).
- `webhook_fetches`: records the receiver still has to fetch from the vendor (events that carry only ids, or that
  lack fields the sync would have). The table survives a restart; the fetch worker drains it with backoff.
- `webhook_counters`: per source and UTC day, how many requests were refused (bad signature, too large, rate
  limited, malformed). Counted in memory and written with the heartbeat, so a flood of forgeries costs no writes.
- `webhook_receiver`: one heartbeat row (host, port, pid, started_at, last_seen) for the Webhooks page.

The tables are part of the store's schema (store/schema.py) and their statements are the store's methods
(store/webhooks_sql.py); readers check that they exist first, for a store opened without migrating.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
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
    return store.webhook_event_known(source, event_id)


def note_redelivery(store: Store, source: str, event_id: str, at: str) -> None:
    store.note_webhook_redelivery(source, event_id, at)


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
    return store.log_webhook_event(
        source=entry.source,
        event_id=entry.event_id,
        event_type=entry.event_type,
        verdict=entry.verdict,
        record_id=entry.record_id,
        detail=entry.detail,
        received_at=entry.received_at,
        latency_ms=entry.latency_ms,
        fetches=[(job.source, job.kind, job.object_id, job.params) for job in entry.fetches],
        now=now,
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
    rows = store.due_webhook_fetches(now=now, sources=chosen, limit=limit)
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
    return store.next_webhook_fetch_due(chosen)


# A newer event about the same record may re-arm a fetch while it is in flight (its generation goes up); the
# outcome of the older attempt then leaves the row alone so the newer state is fetched too.


def finish_fetch(store: Store, pending: PendingFetch) -> None:
    store.finish_webhook_fetch(pending.id, pending.generation)


def retry_fetch(store: Store, pending: PendingFetch, *, next_attempt_at: float, error: str, at: str) -> None:
    error = clean_text(error)  # an error may quote the vendor's answer
    store.retry_webhook_fetch(pending.id, pending.generation, attempts=pending.attempts + 1,
                              next_attempt_at=next_attempt_at, error=error[:500], at=at)


def give_up_fetch(store: Store, pending: PendingFetch, *, error: str, at: str) -> None:
    error = clean_text(error)
    store.give_up_webhook_fetch(pending.id, pending.generation, attempts=pending.attempts + 1, error=error[:500],
                                at=at)


def pending_fetches(store: Store) -> list[dict[str, Any]]:
    if not store.has_webhook_tables():
        return []
    return store.webhook_fetch_rows()


# -- counters and heartbeat ----------------------------------------------------------------------------------------


def add_counts(store: Store, counts: Mapping[tuple[str, str], int], *, day: str) -> None:
    if not counts:
        return
    store.add_webhook_counts([(source, day, verdict, n) for (source, verdict), n in counts.items() if n])


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
    store.write_webhook_heartbeat(host=host, port=port, pid=pid, started_at=started_at, at=at,
                                  stopped_at=at if stopped else None, sources=sources)


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
    if not store.has_webhook_tables():
        return status
    beat = store.webhook_heartbeat()
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
    by_source = store.webhook_events_since(today_start)
    status["events_today_by_source"] = by_source
    status["events_today"] = sum(by_source.values())
    for row in store.last_webhook_events():
        status["last_event"][row["source"]] = row
    refused = store.webhook_refusals_on(day)
    status["refused_today"] = refused
    status["rejected_today"] = refused.get("rejected", 0)
    status["rejected_total"] = store.webhook_rejected_total()
    for state, count in store.webhook_fetch_counts():
        if state == "pending":
            status["pending_fetches"] = int(count)
        elif state == "failed":
            status["failed_fetches"] = int(count)
    return status


def recent_events(store: Store, limit: int = 50) -> list[dict[str, Any]]:
    """The newest logged events first: id, type, verdict, record, latency and how often the vendor delivered it."""
    if not store.has_webhook_tables():
        return []
    return store.recent_webhook_events(limit)


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
