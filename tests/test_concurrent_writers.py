"""A sync writer and a webhook writer, each in its own process, and a reader like the app's, all on one WAL
database at once: no "database is locked", no lost or stale write, integrity intact.

Runs for RELIABILITY_SOAK_SECONDS (default 8; the checklist's soak is 30: `RELIABILITY_SOAK_SECONDS=30 pytest ...`).
"""

from __future__ import annotations

import multiprocessing
import os
import random
import sqlite3
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

from feedback_sources.models import NormalizedRecord
from feedback_sources.store import Filters, Store

SOAK_SECONDS = float(os.environ.get("RELIABILITY_SOAK_SECONDS", "8"))
BASE = datetime(2026, 1, 1, tzinfo=timezone.utc)
SHARED_IDS = 300  # both writers write these zendesk tickets: the same rows are contended


def record(source: str, source_id: str, second: int) -> NormalizedRecord:
    words = ("export", "invoice", "login", "dark mode", "slow", "crash")
    return NormalizedRecord(
        source=source,
        source_id=source_id,
        title=f"{source} {source_id}",
        content=f"{words[second % len(words)]} problem, version {second}",
        created_at=BASE,
        metadata={"updated_at": (BASE + timedelta(seconds=second)).isoformat(), "tags": [words[second % 3]]},
    )


def _outcome(latencies: list[float], errors: list[str], written: dict[tuple[str, str], int], count: int) -> dict[str, Any]:
    return {"operations": count, "errors": errors, "written": written,
            "p99_ms": sorted(latencies)[int(len(latencies) * 0.99)] * 1000 if latencies else 0.0,
            "max_ms": max(latencies, default=0.0) * 1000}


def sync_writer(db_path: str, seconds: float, results: Any) -> None:
    """Pages of 50 records, each committed with its cursor, like `sync_source`."""
    store = Store(db_path)
    store.begin_state("zendesk", "incremental", {"start": None}, None)
    latencies: list[float] = []
    errors: list[str] = []
    written: dict[tuple[str, str], int] = {}
    pages = 0
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        second = pages + 1
        batch = [record("zendesk", str((pages * 50 + i) % (SHARED_IDS * 2)), second) for i in range(50)]
        started = time.perf_counter()
        try:
            store.upsert_records(batch, cursor_update=("zendesk", "incremental", {"page": pages}))
        except sqlite3.Error as error:
            errors.append(f"{type(error).__name__}: {error}")
        else:
            for r in batch:
                key = (r.source, r.source_id)
                written[key] = max(written.get(key, 0), second)
        latencies.append(time.perf_counter() - started)
        pages += 1
    store.close()
    results.put(("sync", _outcome(latencies, errors, written, pages)))


def webhook_writer(db_path: str, seconds: float, results: Any) -> None:
    """Single upserts with random `updated_at`, some on the tickets the sync writes, some redelivered."""
    rng = random.Random(7)
    store = Store(db_path)
    latencies: list[float] = []
    errors: list[str] = []
    written: dict[tuple[str, str], int] = {}
    events = 0
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        source = rng.choice(("zendesk", "intercom"))
        one = record(source, str(rng.randrange(SHARED_IDS)), rng.randrange(1, 5000))
        started = time.perf_counter()
        try:
            store.upsert_records([one])
        except sqlite3.Error as error:
            errors.append(f"{type(error).__name__}: {error}")
        else:
            key = (one.source, one.source_id)
            written[key] = max(written.get(key, 0), int(one.content.rsplit(" ", 1)[1]))
        latencies.append(time.perf_counter() - started)
        events += 1
    store.close()
    results.put(("webhook", _outcome(latencies, errors, written, events)))


def app_reader(db_path: str, seconds: float, results: Any) -> None:
    """What an Explore rerun does: open the store, KPIs, a page of rows, a search, top tags, close."""
    latencies: list[float] = []
    errors: list[str] = []
    reads = 0
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        started = time.perf_counter()
        try:
            with Store(db_path) as store:
                store.kpis(Filters())
                store.rows(Filters(sources=("zendesk",)), limit=50)
                store.count(Filters(text="invoice"))
                store.top_tags(Filters())
        except sqlite3.Error as error:
            errors.append(f"{type(error).__name__}: {error}")
        latencies.append(time.perf_counter() - started)
        reads += 1
    results.put(("reader", _outcome(latencies, errors, {}, reads)))


def test_sync_writer_webhook_writer_and_reader_never_see_a_locked_database(tmp_path: Path) -> None:
    db_path = str(tmp_path / "shared.db")
    Store(db_path).close()  # schema in place before the race starts
    context = multiprocessing.get_context("spawn")
    results = context.Queue()
    workers = [context.Process(target=target, args=(db_path, SOAK_SECONDS, results), daemon=True)
               for target in (sync_writer, webhook_writer, app_reader)]
    for worker in workers:
        worker.start()
    outcomes = dict(results.get(timeout=SOAK_SECONDS + 60) for _ in workers)
    for worker in workers:
        worker.join(timeout=30)

    assert {name: outcome["errors"] for name, outcome in outcomes.items()} == {"sync": [], "webhook": [], "reader": []}
    assert min(outcome["operations"] for outcome in outcomes.values()) > 10

    newest: dict[tuple[str, str], int] = {}
    for name in ("sync", "webhook"):
        for key, second in outcomes[name]["written"].items():
            newest[key] = max(newest.get(key, 0), second)
    with Store(db_path) as store:
        assert store.integrity_check() == "ok"
        stored = {(s, i): u for s, i, u in store.conn.execute("SELECT source, source_id, updated_at FROM feedback")}
        cursor = store.get_state("zendesk", "incremental").cursor
        duplicates = store.conn.execute(
            "SELECT COUNT(*) - COUNT(DISTINCT source || char(0) || source_id) FROM feedback").fetchone()[0]
    assert duplicates == 0
    assert stored == {key: (BASE + timedelta(seconds=s)).strftime("%Y-%m-%dT%H:%M:%SZ") for key, s in newest.items()}
    assert cursor == {"page": outcomes["sync"]["operations"] - 1}
    print(
        f"\n{SOAK_SECONDS:.0f}s: sync {outcomes['sync']['operations'] / SOAK_SECONDS:.0f} pages/s "
        f"(p99 {outcomes['sync']['p99_ms']:.1f} ms, max {outcomes['sync']['max_ms']:.1f} ms), "
        f"webhook {outcomes['webhook']['operations'] / SOAK_SECONDS:.0f} upserts/s "
        f"(p99 {outcomes['webhook']['p99_ms']:.1f} ms, max {outcomes['webhook']['max_ms']:.1f} ms), "
        f"reader {outcomes['reader']['operations'] / SOAK_SECONDS:.0f} reruns/s "
        f"(p99 {outcomes['reader']['p99_ms']:.1f} ms)"
    )
