"""The standard contract every registered source keeps, run once per source through its harness.

Parametrized over `feedback_sources.sources.registry()`: a source registered through the entry-point group runs here
as soon as its spec names a harness (`SourceSpec.harness`, see feedback_sources/sources/harness.py). Each case talks
to the source's emulator over real HTTP on 127.0.0.1.

The cases: a cursor survives the store (JSON) and a later run accepts it; a corrupted cursor and one from the future;
resuming after an interruption at a page boundary loses and doubles nothing; a token revoked mid-sync is a typed auth
error with a hint; 429 and 5xx answers are retried. A corrupted cursor is refused with a typed error, or, where the
harness says the source reads everything again at no cost (`corrupted_cursor_policy = "read_again"`), read past. Sources of kind "file" read files the PM provides, so the
HTTP-only cases skip for them, saying so.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from typing import Any

import pytest

from feedback_sources.integrations.base import BaseIntegration, Page
from feedback_sources.integrations.http import ErrorKind, SourceError
from feedback_sources.sources import registry
from feedback_sources.sources.harness import RunningSource, SourceHarness
from feedback_sources.sources.spec import SourceSpec
from tests.helpers import RecordingSleep
from tests.reliability_support import past_config

SOURCES = sorted(registry())


def harness_of(spec: SourceSpec) -> SourceHarness:
    harness = spec.load("harness")
    if harness is None:
        pytest.skip(f"{spec.name} names no harness (SourceSpec.harness), so the contract cannot run against it")
    return harness


def http_only(spec: SourceSpec) -> None:
    if spec.kind == "file":
        pytest.skip(f"{spec.name} reads files the PM provides: there is no HTTP to revoke a token on or to fail")


@pytest.fixture(params=SOURCES)
def spec(request: pytest.FixtureRequest) -> SourceSpec:
    return registry()[request.param]


@pytest.fixture
def served(spec: SourceSpec) -> Iterator[tuple[SourceHarness, RunningSource]]:
    harness = harness_of(spec)
    with harness.running(past_config(**harness.dataset)) as running:
        yield harness, running


def read(integration: BaseIntegration, *, cursor: dict[str, Any] | None = None,
         stop_after: int | None = None) -> list[Page]:
    """The pages of one run from `cursor`; with `stop_after`, the run is abandoned after that many pages."""

    async def pages() -> list[Page]:
        found: list[Page] = []
        iterator = integration.iter_pages(cursor=cursor)
        try:
            async for page in iterator:
                found.append(page)
                if stop_after is not None and len(found) >= stop_after:
                    break
        finally:
            await iterator.aclose()  # type: ignore[attr-defined]
        return found

    return asyncio.run(pages())


def ids(pages: list[Page]) -> list[str]:
    return [record.source_id for page in pages for record in page.records]


def integration(running: RunningSource, **options: Any) -> BaseIntegration:
    return running.integration(sleep=RecordingSleep(), **options)


def test_every_cursor_survives_the_store_and_a_later_run_accepts_it(served: tuple[Any, RunningSource]) -> None:
    _, running = served
    pages = read(integration(running))
    assert sorted(ids(pages)) == running.expected_ids()
    assert len(pages) > 1  # the dataset spans several pages, so mid-run cursors are exercised too
    for page in pages:
        assert json.loads(json.dumps(page.cursor)) == page.cursor
    final = json.loads(json.dumps(pages[-1].cursor))
    again = read(integration(running), cursor=final)
    # From the end of a full read only the records at the very edge may come again, never the whole set.
    assert set(ids(again)) <= set(running.expected_ids())
    assert len(ids(again)) < len(running.expected_ids())


def test_a_corrupted_cursor_is_a_typed_error_saying_how_to_recover(served: tuple[SourceHarness, RunningSource],
                                                                   spec: SourceSpec) -> None:
    harness, running = served
    if getattr(harness, "corrupted_cursor_policy", "refuse") == "read_again":
        # A source that can read everything again at no cost (a file) may read past a bad position instead: the
        # whole dataset, each record once, and a position of its own afterwards.
        for cursor in harness.corrupted_cursors:
            pages = read(integration(running), cursor=cursor)
            assert sorted(ids(pages)) == running.expected_ids()
            assert json.loads(json.dumps(pages[-1].cursor)) == pages[-1].cursor
            assert ids(read(integration(running), cursor=pages[-1].cursor)) == []  # and from there, nothing new
        return
    outcomes = {}
    for cursor in harness.corrupted_cursors:
        with pytest.raises(SourceError) as raised:
            read(integration(running), cursor=cursor)
        error = raised.value
        outcomes[repr(cursor)] = (error.kind, "sync position" in error.message, bool(error.hint))
    assert outcomes == {repr(c): (ErrorKind.client, True, True) for c in harness.corrupted_cursors}
    # Refused before asking the vendor anything: a bad position must not start a read from the wrong place.
    assert running.emulator.requests == []


def test_a_cursor_from_the_future_reads_nothing_and_is_kept(served: tuple[SourceHarness, RunningSource]) -> None:
    harness, running = served
    pages = read(integration(running), cursor=harness.future_cursor)
    assert ids(pages) == []
    # Kept: either no page at all (the stored position stays) or a run that ends where it started.
    assert not pages or pages[-1].cursor == harness.future_cursor


def test_resuming_at_a_page_boundary_loses_and_doubles_nothing(served: tuple[Any, RunningSource]) -> None:
    _, running = served
    first = read(integration(running), stop_after=1)
    assert len(first) == 1 and ids(first)
    # The cursor as the store keeps it, read by a new integration object, as the next run after a crash does.
    rest = read(integration(running), cursor=json.loads(json.dumps(first[-1].cursor)))
    together = ids(first) + ids(rest)
    assert sorted(together) == running.expected_ids()
    assert len(together) == len(set(together))


def test_a_token_revoked_mid_sync_is_an_auth_error_with_a_hint(served: tuple[Any, RunningSource],
                                                              spec: SourceSpec) -> None:
    http_only(spec)
    _, running = served
    source = integration(running)

    async def revoked_after_first_page() -> int:
        seen = 0
        async for _ in source.iter_pages():
            seen += 1
            running.revoke_token()
        return seen

    with pytest.raises(SourceError) as raised:
        asyncio.run(revoked_after_first_page())
    error = raised.value
    assert (error.kind, error.status) == (ErrorKind.auth, 401)
    assert error.hint
    # Not retried: another attempt with a revoked token cannot succeed and only costs the rate limit.
    assert [call.status for call in running.emulator.requests].count(401) == 1
    secrets = [value for key, value in vars(source).get("config", {}).items() if "token" in key]
    assert secrets and not any(secret in f"{error} {error.hint}" for secret in secrets)


@pytest.mark.parametrize("status", [429, 500, 502, 503])
def test_rate_limits_and_server_errors_are_retried(served: tuple[Any, RunningSource], spec: SourceSpec,
                                                   status: int) -> None:
    http_only(spec)
    _, running = served
    running.fail_next(status, times=2)
    source = integration(running)
    pages = read(source)
    assert sorted(ids(pages)) == running.expected_ids()
    assert source.http_stats.retries >= 2
    assert [call.status for call in running.emulator.requests if call.fault is not None] == [status, status]
