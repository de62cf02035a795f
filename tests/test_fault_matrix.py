"""Every fault a vendor can throw mid-sync, over real HTTP against the emulator, through `sync.sync`: afterwards each
available record is stored exactly once and the run log (`sync_runs`) says what happened.

Faults are queued the moment the first page of records arrives, so they hit the second page request, in the middle
of the sync's work; sleeps are patched (`sleep=`), so Retry-After and backoff waits are recorded instead of slept.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

from feedback_sources.emulator import Emulator, run_emulator_server
from feedback_sources.integrations.base import get_integration_class
from feedback_sources.store import Store
from feedback_sources.sync import INCREMENTAL_SCOPE, SourceResult, sync
from tests.helpers import RecordingSleep
from tests.reliability_support import (
    ROOT,
    SOURCES,
    duplicate_keys,
    ground_truth,
    integration_configs,
    latest_runs,
    past_config,
    stored_ids,
)

# The request that fetches a page of records, per vendor (searched in the path below the vendor's base URL).
PAGE_REQUEST = {
    "zendesk": r"/incremental/tickets/cursor\.json",
    "intercom": r"/conversations/search",
    "surveymonkey": r"/responses/bulk",
}
# Zendesk pages hold up to 1000 tickets; 50 gives this dataset several pages, like the other two vendors have.
PAGE_OPTIONS: dict[str, dict[str, Any]] = {"zendesk": {"page_size": 50}}


class FirstPageHook(httpx.AsyncBaseTransport):
    """Real HTTP to the emulator; calls `hook(body)` once, when the first page of records has arrived.

    The hook runs before the integration has even read that page, so whatever it changes at the vendor (a queued
    fault, an edited record) meets the next page request, however far ahead of the store the sync engine fetches.
    """

    def __init__(self, page_request: str, hook: Callable[[Any], None] | None):
        self.inner = httpx.AsyncHTTPTransport()
        self.page_request = re.compile(page_request)
        self.hook = hook

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        response = await self.inner.handle_async_request(request)
        if self.hook is not None and response.status_code == 200 and self.page_request.search(request.url.path):
            hook, self.hook = self.hook, None
            body = await response.aread()
            hook(json.loads(body))
        return response

    async def aclose(self) -> None:
        await self.inner.aclose()


@dataclass
class World:
    emulator: Emulator
    configs: dict[str, dict[str, str]]
    store: Store
    sleep: RecordingSleep = field(default_factory=RecordingSleep)

    def sync(
        self,
        sources: tuple[str, ...],
        *,
        after_first_page: Callable[[str, Any], None] | None = None,
        **options: Any,
    ) -> dict[str, SourceResult]:
        """A full sync of `sources`; `after_first_page(source, body)` runs when a source's first page arrives."""
        integrations = {}
        for source in sources:
            hook = (lambda body, source=source: after_first_page(source, body)) if after_first_page else None
            integrations[source] = get_integration_class(source)(
                self.configs[source],
                transport=FirstPageHook(PAGE_REQUEST[source], hook),
                sleep=self.sleep,
                **PAGE_OPTIONS.get(source, {}),
                **options,
            )
        return sync(self.store, integrations, incremental=False)

    def requests(self, vendor: str) -> int:
        return self.emulator.request_count(vendor)


@pytest.fixture
def world(tmp_path: Path) -> Iterator[World]:
    emulator = Emulator(past_config())
    with run_emulator_server(emulator) as root:
        with Store(tmp_path / "feedback.db") as store:
            yield World(emulator, integration_configs(emulator, root), store)


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


# A 429's wait is the server's hint plus jitter of up to min(1 s, 25 % of the hint).
JITTER = 1.0


def waited_for_retry_after(expected: float, tolerance: float) -> Callable[[str, list[float]], bool]:
    return lambda vendor, waits: any(expected - tolerance <= wait <= expected + tolerance + JITTER for wait in waits)


def waited_for_the_rate_limit_window(vendor: str, waits: list[float]) -> bool:
    if vendor == "intercom":
        # Intercom sends no Retry-After: the wait is until X-RateLimit-Reset (4 s ahead), plus jitter.
        return any(2.5 <= wait <= 4.5 + JITTER for wait in waits)
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

    def inject(source: str, body: Any) -> None:
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
        (vendor,), after_first_page=lambda source, body: world.emulator.faults.inject(vendor, PAGE_REQUEST[vendor],
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


def move_a_record_behind_the_page_edge(world: World, vendor: str, first_page: Any) -> str:
    """Change a record of the first page so the vendor serves it again on a later page (Zendesk, Intercom), or
    change one the sync has not reached so every later page shifts by one (SurveyMonkey sorts newest change first)."""
    emulator = world.emulator
    if vendor == "zendesk":
        ticket_id = first_page["tickets"][0]["id"]
        emulator.zendesk.update_ticket(ticket_id, subject="Changed while syncing")
        return str(ticket_id)
    if vendor == "intercom":
        conversation_id = first_page["conversations"][0]["id"]
        # Inside this run's window (it ends at the second the run started, a moment ago), after every other change.
        emulator.intercom.update_conversation(conversation_id, updated_at=int(time.time()) - 3,
                                              state="changed-while-syncing")
        return conversation_id
    served = {str(response["id"]) for response in first_page["data"]}
    survey_id = str(first_page["data"][0]["survey_id"])
    unfetched = next(i for i in emulator.surveymonkey.responses_in_range(survey_id) if i not in served)
    emulator.surveymonkey.update_response(survey_id, unfetched, response_status="partial")
    return unfetched


@pytest.mark.parametrize("vendor", SOURCES)
def test_records_served_twice_across_pages_are_stored_once_newest_version(world: World, vendor: str) -> None:
    moved: list[str] = []
    results = world.sync((vendor,), after_first_page=lambda source, body: moved.append(
        move_a_record_behind_the_page_edge(world, vendor, body)))

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
