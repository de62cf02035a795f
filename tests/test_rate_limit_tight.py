"""Rate limits: a vendor that allows only 8 requests a second, and says in its headers that it allows 100.

First the emulator itself (it must enforce such a limit and lie in its headers exactly like that, with each vendor's
own 429 signal), then a full sync of all three vendors against it over real HTTP, with real sleeps: every record
arrives, however many 429s it takes. Before 429s stopped spending the attempts meant for server errors, Intercom
gave up after six of them and lost the whole source.
"""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from feedback_sources.emulator import Emulator, FixedWindowLimit, run_emulator_server
from feedback_sources.integrations.base import BaseIntegration, Page, get_integration_class
from feedback_sources.integrations.http import HttpClient, RetryPolicy
from feedback_sources.store import Store
from feedback_sources.sync import sync, sync_all
from feedback_sources.ui.sync_view import progress_text
from tests.conftest import make_record
from tests.helpers import RecordingSleep
from tests.reliability_support import (
    SOURCES,
    duplicate_keys,
    ground_truth,
    integration_configs,
    latest_runs,
    past_config,
    stored_ids,
)

REAL_LIMIT = 8  # requests per window, shared by all of a source's concurrent requests
WINDOW_SECONDS = 1.0
ADVERTISED = 100  # what the headers claim
# A bound on the whole sync: at 8 requests a second the work below needs about 15 s.
SYNC_BOUND_SECONDS = 180.0

# One request per vendor that needs authentication and counts against the limit.
PROBE = {
    "zendesk": ("GET", "/api/v2/incremental/tickets/cursor.json", {"start_time": "0"}),
    "intercom": ("GET", "/me", {}),
    "surveymonkey": ("GET", "/users/me", {}),
}


def auth_headers(emulator: Emulator, vendor: str) -> dict[str, str] | httpx.BasicAuth:
    config = emulator.config
    if vendor == "zendesk":
        return httpx.BasicAuth(f"{config.zendesk_email}/token", config.zendesk_token)
    token = config.intercom_token if vendor == "intercom" else config.surveymonkey_token
    return {"Authorization": f"Bearer {token}"}


@pytest.mark.parametrize("vendor", SOURCES)
def test_the_emulator_enforces_a_tight_shared_window_and_can_lie_in_its_headers(vendor: str) -> None:
    emulator = Emulator(past_config(zendesk_tickets=20, intercom_conversations=20, surveymonkey_responses_per_survey=10))
    # A long window, so that a dozen sequential requests surely land in the same one on a busy machine.
    emulator.set_rate_limit(vendor, REAL_LIMIT, seconds=30.0, advertised=ADVERTISED)
    method, path, params = PROBE[vendor]
    with run_emulator_server(emulator) as root:
        base = emulator.base_urls(root)[vendor]
        auth = auth_headers(emulator, vendor)
        options: dict[str, Any] = {"auth": auth} if isinstance(auth, httpx.BasicAuth) else {"headers": auth}
        with httpx.Client(base_url=base, timeout=10, **options) as client:
            answers = [client.request(method, path, params=params) for _ in range(REAL_LIMIT + 4)]
    statuses = [answer.status_code for answer in answers]
    assert statuses == [200] * REAL_LIMIT + [429] * 4
    assert emulator.rate_limited_count(vendor) == 4
    last_ok, refused = answers[REAL_LIMIT - 1], answers[REAL_LIMIT]
    now = time.time()
    if vendor == "zendesk":
        # The lie: 100 a window, 92 left after 8, and the export header says the same.
        assert (last_ok.headers["X-Rate-Limit"], last_ok.headers["X-Rate-Limit-Remaining"]) == ("100", "92")
        assert last_ok.headers["Zendesk-RateLimit-incremental-exports"].startswith("total=100; remaining=92; resets=")
        assert 0 < float(refused.headers["Retry-After"]) <= 30
        assert refused.json() == {"error": "APIRateLimitExceeded",
                                  "description": "Number of allowed API requests per minute exceeded"}
    elif vendor == "intercom":
        assert (last_ok.headers["X-RateLimit-Limit"], last_ok.headers["X-RateLimit-Remaining"]) == ("100", "92")
        # Intercom sends no Retry-After: only the unix time the window resets.
        assert "Retry-After" not in refused.headers
        assert now < float(refused.headers["X-RateLimit-Reset"]) <= now + 30
        assert refused.json()["errors"][0]["code"] == "rate_limit_exceeded"
    else:
        assert (last_ok.headers["X-Ratelimit-App-Global-Minute-Limit"],
                last_ok.headers["X-Ratelimit-App-Global-Minute-Remaining"]) == ("100", "92")
        assert "Retry-After" not in refused.headers
        assert 0 < float(refused.headers["X-Ratelimit-App-Global-Minute-Reset"]) <= 30
        assert refused.json()["error"]["http_status_code"] == 429


def test_an_honest_tight_window_says_what_is_left() -> None:
    emulator = Emulator(past_config(intercom_conversations=5))
    emulator.config.fixed_window_limits["intercom"] = FixedWindowLimit(3, 30.0)
    emulator.reset_rate_limits()
    with run_emulator_server(emulator) as root:
        with httpx.Client(base_url=emulator.base_urls(root)["intercom"], timeout=10,
                          headers={"Authorization": f"Bearer {emulator.config.intercom_token}"}) as client:
            answers = [client.get("/me") for _ in range(4)]
    assert [a.status_code for a in answers] == [200, 200, 200, 429]
    assert [a.headers["X-RateLimit-Remaining"] for a in answers] == ["2", "1", "0", "0"]
    with pytest.raises(ValueError, match="at least 1"):
        FixedWindowLimit(0)


@pytest.fixture
def tight_world(tmp_path: Path) -> Iterator[tuple[Emulator, dict[str, dict[str, str]], Store]]:
    emulator = Emulator(past_config(
        zendesk_tickets=150, intercom_conversations=50, surveymonkey_surveys=3, surveymonkey_responses_per_survey=80,
    ))
    for vendor in SOURCES:
        emulator.set_rate_limit(vendor, REAL_LIMIT, seconds=WINDOW_SECONDS, advertised=ADVERTISED)
    with run_emulator_server(emulator) as root:
        with Store(tmp_path / "feedback.db") as store:
            yield emulator, integration_configs(emulator, root), store


def test_a_full_sync_under_8_requests_a_second_with_lying_headers_completes_with_every_record(
    tight_world: tuple[Emulator, dict[str, dict[str, str]], Store],
) -> None:
    emulator, configs, store = tight_world
    # Two attempts for server errors: 429s must not spend them. Real sleeps: the waits are the vendor's real ones.
    policy = RetryPolicy(max_attempts=2, max_rate_limit_wait=60)
    page_options = {"zendesk": {"page_size": 10}, "intercom": {"page_size": 15}, "surveymonkey": {}}
    integrations = {
        source: get_integration_class(source)(configs[source], retry_policy=policy, **page_options[source])
        for source in SOURCES
    }
    async def run() -> dict[str, Any]:
        return await asyncio.wait_for(sync_all(store, integrations, incremental=False),
                                      SYNC_BOUND_SECONDS)

    started = time.monotonic()
    results = asyncio.run(run())
    elapsed = time.monotonic() - started

    assert {source: (result.status, result.errors) for source, result in results.items()} == {
        source: ("complete", None) for source in SOURCES
    }
    truth = ground_truth(emulator)
    assert stored_ids(store.conn) == truth
    assert all(truth[source] for source in SOURCES)
    assert duplicate_keys(store.conn) == []
    # The limit really bit, more often than the two attempts allowed for server errors, and the client slowed down
    # instead of giving up. (Zendesk and SurveyMonkey send one request at a time; whether they reach 8 a second
    # depends on the machine's speed, so only Intercom's eight concurrent detail fetches are sure to.)
    refused = {source: emulator.rate_limited_count(source) for source in SOURCES}
    assert refused["intercom"] > policy.max_attempts, refused
    runs = latest_runs(store.conn)
    assert {source: runs[source]["status"] for source in SOURCES} == {source: "complete" for source in SOURCES}
    assert runs["intercom"]["wait_seconds"] > 0
    # Every attempt, 429s included, is counted in the run's requests, as the emulator's own log counts them.
    assert all(result.requests == emulator.request_count(source) for source, result in results.items())
    lowest = {source: integrations[source].http_stats.lowest_concurrency for source in SOURCES}
    assert lowest["intercom"] is not None and lowest["intercom"] < integrations["intercom"].max_concurrency
    print(
        f"\ntight limit {REAL_LIMIT}/{WINDOW_SECONDS:g}s (headers claim {ADVERTISED}): {elapsed:.1f}s; "
        + "; ".join(
            f"{source}: {results[source].fetched} records, {results[source].requests} requests, "
            f"{refused[source]} refused (429), waited {results[source].wait_seconds:.1f}s, "
            f"lowest concurrency {lowest[source]}"
            for source in SOURCES
        )
    )


class OneCallSource(BaseIntegration):
    """A source of one request, answered by `handler`: enough to watch what a sync reports while it waits."""

    name = "one"
    display_name = "One"
    required_fields = ()

    def __init__(self, handler: Any, **options: Any):
        super().__init__({}, transport=httpx.MockTransport(handler), **options)

    def client(self) -> HttpClient:
        return self._http_client(base_url="https://one.example")

    async def _connection_probe(self, client: HttpClient) -> tuple[str, dict[str, Any]]:
        return "one", {}

    async def iter_pages(self, start=None, end=None, cursor=None) -> AsyncIterator[Page]:
        async with self.client() as client:
            body = await client.get_json("/records")
        yield Page([make_record(i, source="one") for i in body], {"done": True})


def test_a_long_rate_limit_wait_is_reported_as_waiting_not_as_failure(tmp_path: Path) -> None:
    answers = [httpx.Response(429, headers={"Retry-After": "40"}), httpx.Response(429, headers={"Retry-After": "40"}),
               httpx.Response(200, json=["1", "2"])]
    sleep = RecordingSleep()
    source = OneCallSource(lambda request: answers.pop(0), sleep=sleep,
                           retry_policy=RetryPolicy(max_attempts=1, max_rate_limit_wait=600))
    seen: list[tuple[str, str]] = []
    with Store(tmp_path / "one.db") as store:
        result = sync(store, {"one": source}, on_progress=lambda p: seen.append((p.status, p.message)))["one"]
    assert (result.status, result.errors, result.fetched) == ("complete", None, 2)
    waiting = [(status, message) for status, message in seen if message.startswith("waiting")]
    assert [status for status, _ in waiting] == ["running", "running"]
    assert all(re.fullmatch(r"waiting for rate limit, 4[01]s", message) for _, message in waiting), waiting
    assert seen[-1] == ("complete", "")
    assert "failed" not in {status for status, _ in seen}
    assert len(sleep.waits) == 2 and all(40 <= wait <= 41 for wait in sleep.waits)
    assert progress_text({"source": "one", "status": "running", "pages": 0, "fetched": 0,
                          "message": waiting[0][1]}) == f"one: running, 0 pages, 0 records ({waiting[0][1]})"
