"""Every fault a vendor can throw mid-sync, over real HTTP against the emulator, through `sync.sync`: afterwards each
available record is stored exactly once and the run log (`sync_runs`) says what happened.

Faults are injected once the first page is committed, so they hit a sync in the middle of its work; sleeps are
patched (`sleep=`), so Retry-After and backoff waits are recorded instead of slept.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from feedback_sources.emulator import Emulator, run_emulator_server
from feedback_sources.integrations.base import BaseIntegration
from feedback_sources.store import Store
from feedback_sources.sync import INCREMENTAL_SCOPE, SourceProgress, SourceResult, sync
from feedback_sources.workspace import Workspace
from tests.reliability_support import (
    ROOT,
    SOURCES,
    RecordingSleep,
    duplicate_keys,
    ground_truth,
    latest_runs,
    past_config,
    stored_ids,
    workspace_for,
)

# The request that fetches a page of records, per vendor (searched in the path below the vendor's base URL).
PAGE_REQUEST = {
    "zendesk": r"/incremental/tickets/cursor\.json",
    "intercom": r"/conversations/search",
    "surveymonkey": r"/responses/bulk",
}
# Zendesk pages hold up to 1000 tickets; 50 gives this dataset several pages, like the other two vendors have.
PAGE_OPTIONS: dict[str, dict[str, Any]] = {"zendesk": {"page_size": 50}}


@dataclass
class World:
    emulator: Emulator
    workspace: Workspace
    store: Store
    sleep: RecordingSleep = field(default_factory=RecordingSleep)
    integrations: dict[str, BaseIntegration] = field(default_factory=dict)

    def sync(
        self,
        sources: tuple[str, ...],
        *,
        after_first_page: Callable[[str], None] | None = None,
        **options: Any,
    ) -> dict[str, SourceResult]:
        """A full sync of `sources`; `after_first_page(source)` runs once each source has committed its first page."""
        fired: set[str] = set()

        def progress(update: SourceProgress) -> None:
            if after_first_page is not None and update.pages == 1 and update.source not in fired:
                fired.add(update.source)
                after_first_page(update.source)

        self.integrations = {
            source: self.workspace.integration(source, sleep=self.sleep, **PAGE_OPTIONS.get(source, {}), **options)
            for source in sources
        }
        return sync(self.store, self.integrations, incremental=False, on_progress=progress)

    def requests(self, vendor: str) -> int:
        return self.emulator.request_count(vendor)


@pytest.fixture
def world(tmp_path: Path) -> Iterator[World]:
    emulator = Emulator(past_config())
    with run_emulator_server(emulator) as root:
        with Store(tmp_path / "feedback.db") as store:
            yield World(emulator, workspace_for(emulator, root, tmp_path / "feedback.db"), store)


def assert_every_record_once(world: World, vendor: str) -> None:
    assert stored_ids(world.store.conn, [vendor]) == {vendor: ground_truth(world.emulator)[vendor]}
    assert duplicate_keys(world.store.conn) == []
    assert world.store.integrity_check() == "ok"


# -- faults a sync rides out -----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Case:
    label: str
    kind: int | str
    times: int = 1
    opts: dict[str, Any] = field(default_factory=dict)
    timeout: float = 30.0

    def __str__(self) -> str:
        return self.label


def waited_for_retry_after(expected: float, tolerance: float) -> Callable[[str, list[float]], bool]:
    return lambda vendor, waits: any(abs(wait - expected) <= tolerance for wait in waits)


def waited_for_the_rate_limit_window(vendor: str, waits: list[float]) -> bool:
    if vendor == "intercom":
        # Intercom sends no Retry-After: the wait is until X-RateLimit-Reset (4 s ahead).
        return any(2.5 <= wait <= 4.5 for wait in waits)
    # No hint at all: the first backoff step, full jitter in 0..base_delay.
    return len(waits) == 1 and 0 <= waits[0] <= 0.5


CASES = [
    Case("429 with Retry-After in seconds", "retry_after_seconds", opts={"seconds": 7}),
    Case("429 with Retry-After as an HTTP date", "retry_after_date", opts={"seconds": 30}),
    Case("429 without Retry-After", 429, opts={"reset_in": 4}),
    Case("500 burst", 500, times=3),
    Case("502 burst", 502, times=3),
    Case("503 burst", 503, times=3),
    Case("504 burst", 504, times=3),
    Case("connection reset", "reset", times=2),
    Case("read timeout", "timeout", opts={"seconds": 5}, timeout=1.0),
    Case("malformed JSON", "malformed", times=2),
    Case("truncated page", "truncated"),
    Case("empty page with a next cursor", "empty_page_with_next"),
    Case("page repeated by the server", "repeat_page"),
]

WAIT_CHECKS: dict[str, Callable[[str, list[float]], bool]] = {
    "429 with Retry-After in seconds": waited_for_retry_after(7.0, 0.0),
    "429 with Retry-After as an HTTP date": waited_for_retry_after(29.5, 1.5),  # the date has whole seconds
    "429 without Retry-After": waited_for_the_rate_limit_window,
}


@pytest.mark.parametrize("vendor", SOURCES)
@pytest.mark.parametrize("case", CASES, ids=str)
def test_a_fault_mid_sync_loses_and_duplicates_nothing(world: World, vendor: str, case: Case) -> None:
    injected = []

    def inject(source: str) -> None:
        injected.append(world.emulator.faults.inject(vendor, PAGE_REQUEST[vendor], case.kind, times=case.times,
                                                     **case.opts))

    results = world.sync((vendor,), after_first_page=inject, timeout=case.timeout)

    result = results[vendor]
    assert (result.status, result.errors) == ("complete", None)
    assert [fault.hits for fault in injected] == [case.times]
    assert_every_record_once(world, vendor)
    if case.kind == "timeout":
        # The emulator logs a request the client abandoned once it notices; give it that moment.
        deadline = time.monotonic() + 3
        while world.requests(vendor) < result.requests and time.monotonic() < deadline:
            time.sleep(0.05)
    run = latest_runs(world.store.conn)[vendor]
    assert {name: run[name] for name in ("status", "errors", "error_kind", "requests", "wait_seconds", "fetched")} == {
        "status": "complete",
        "errors": None,
        "error_kind": None,
        "requests": world.requests(vendor),  # every attempt, retries included
        "wait_seconds": round(sum(world.sleep.waits), 3),
        "fetched": result.fetched,
    }
    check = WAIT_CHECKS.get(case.label)
    assert check is None or check(vendor, world.sleep.waits), world.sleep.waits
    assert all(0 <= wait <= 120 for wait in world.sleep.waits)  # every wait is capped


# -- faults that stop a source, and what the next sync does --------------------------------------------------------


@pytest.mark.parametrize("vendor", SOURCES)
def test_a_token_expiring_mid_sync_stops_the_source_and_the_next_sync_completes_it(world: World, vendor: str) -> None:
    results = world.sync(
        (vendor,), after_first_page=lambda source: world.emulator.faults.inject(vendor, PAGE_REQUEST[vendor],
                                                                                "expire_token")
    )
    failed = results[vendor]
    assert (failed.status, failed.error_kind, failed.pages) == ("failed", "auth", 1)
    run = latest_runs(world.store.conn)[vendor]
    assert (run["status"], run["error_kind"], run["errors"]) == ("failed", "auth", failed.errors)
    config = world.emulator.config
    assert not [token for token in (config.zendesk_token, config.intercom_token, config.surveymonkey_token)
                if token in failed.errors]
    first_page = stored_ids(world.store.conn, [vendor])[vendor]
    assert 0 < len(first_page) < len(ground_truth(world.emulator)[vendor])
    assert world.store.get_state(vendor, INCREMENTAL_SCOPE).status == "interrupted"

    world.emulator.restore_token(vendor)
    before = len(world.emulator.requests)
    resumed = world.sync((vendor,))[vendor]
    assert (resumed.status, resumed.resumed) == ("complete", True)
    assert_every_record_once(world, vendor)
    assert resumed.new == len(ground_truth(world.emulator)[vendor]) - len(first_page)
    if vendor == "zendesk":
        # The resumed export continues from the saved cursor: it never asks for the first page (start_time) again.
        again = [r for r in world.emulator.requests[before:] if "start_time" in r.query]
        assert again == []


def move_a_stored_record_behind_the_page_edge(world: World, vendor: str) -> str:
    """Change a record the sync already stored so the vendor serves it again on a later page (Zendesk, Intercom),
    or change one it has not reached so every later page shifts by one (SurveyMonkey sorts newest change first)."""
    emulator = world.emulator
    now = int(time.time())
    if vendor == "zendesk":
        ticket_id = world.store.conn.execute("SELECT MIN(CAST(source_id AS INTEGER)) FROM feedback").fetchone()[0]
        emulator.zendesk.update_ticket(ticket_id, subject="Changed while syncing")
        return str(ticket_id)
    if vendor == "intercom":
        conversation_id = world.store.conn.execute("SELECT MIN(source_id) FROM feedback").fetchone()[0]
        # Inside this run's window (it ends at the run's start, a moment ago) and after every other change.
        emulator.intercom.update_conversation(conversation_id, updated_at=now - 3, state="changed-while-syncing")
        return conversation_id
    stored = set(stored_ids(world.store.conn, [vendor])[vendor])
    survey_id = emulator.surveymonkey.survey_ids()[0]
    unfetched = next(i for i in emulator.surveymonkey.responses_in_range(survey_id) if i not in stored)
    emulator.surveymonkey.update_response(survey_id, unfetched, response_status="partial")
    return unfetched


@pytest.mark.parametrize("vendor", SOURCES)
def test_records_served_twice_across_pages_are_stored_once_newest_version(world: World, vendor: str) -> None:
    moved: list[str] = []
    results = world.sync((vendor,), after_first_page=lambda source: moved.append(
        move_a_stored_record_behind_the_page_edge(world, vendor)))

    result = results[vendor]
    assert result.status == "complete"
    assert result.updated + result.unchanged >= 1  # into an empty store: the vendor did serve a record twice
    assert_every_record_once(world, vendor)
    record = world.store.get_record(vendor, moved[0])
    changed = {
        "zendesk": lambda: record["title"] == "Changed while syncing",
        "intercom": lambda: record["metadata"]["state"] == "changed-while-syncing",
        "surveymonkey": lambda: record["metadata"]["response_status"] == "partial",
    }[vendor]
    assert changed(), record


@pytest.mark.parametrize("down", SOURCES)
def test_a_source_down_for_the_whole_run_fails_alone(world: World, down: str) -> None:
    world.emulator.set_down(down)
    results = world.sync(SOURCES)

    assert {source: (result.status, result.error_kind) for source, result in results.items()} == {
        source: ("failed", "server") if source == down else ("complete", None) for source in SOURCES
    }
    assert "gave up after 6 attempts" in results[down].errors
    truth = ground_truth(world.emulator)
    assert stored_ids(world.store.conn) == {source: [] if source == down else truth[source] for source in SOURCES}
    assert duplicate_keys(world.store.conn) == []
    runs = latest_runs(world.store.conn)
    assert {source: (run["status"], run["error_kind"]) for source, run in runs.items()} == {
        source: ("failed", "server") if source == down else ("complete", None) for source in SOURCES
    }
    # Six attempts per request before giving up (Zendesk asks for its ticket count first, then the export) ...
    attempts = runs[down]["requests"]
    assert attempts == world.requests(down) and attempts in (6, 12)
    # ... with five waits between them, each a full-jitter draw under its exponential cap.
    assert len(world.sleep.waits) == attempts // 6 * 5
    assert all(0 <= wait <= 0.5 * 2 ** (n % 5) for n, wait in enumerate(world.sleep.waits))


# -- webhook load, short form -----------------------------------------------------------------------------------------


def test_webhook_load_script_stores_every_event_exactly_once(tmp_path: Path) -> None:
    completed = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "webhook_load.py"), "--events", "500", "--json",
         "--db", str(tmp_path / "load.db")],
        capture_output=True, text=True, timeout=120, cwd=ROOT,
    )
    assert completed.returncode == 0, completed.stdout + completed.stderr
    report = json.loads(completed.stdout.strip().splitlines()[-1])
    assert report["checks"] == {
        "every_delivery_answered_200": True,
        "each_event_logged_once": True,
        "each_record_stored_once": True,
        "each_fetch_queued_once": True,
    }
    assert report["events"] == 500
    assert report["events_per_second"] > 0 and report["p99_ms"] > 0
