from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from feedback_sources.integrations.base import BaseIntegration, Page
from feedback_sources.integrations.http import ErrorKind, HttpClient, SourceError
from feedback_sources.store import Store
from feedback_sources.sync import INCREMENTAL_SCOPE, plan_source, sync, sync_all
from tests.conftest import make_record

NOW = datetime(2026, 6, 1, tzinfo=timezone.utc)


class Crash(BaseException):
    """Stands in for the process dying: not an Exception, so nothing on the way catches it."""


class ListIntegration(BaseIntegration):
    """A source whose pages are fixed lists; the cursor is the index of the next page."""

    name = "fake"
    display_name = "Fake"
    required_fields = ()

    def __init__(self, pages: list[list[str]], *, name: str = "fake", crash_after: int | None = None,
                 fail_with: Exception | None = None, versions: dict[str, str] | None = None):
        super().__init__({})
        self.name = name
        self.pages = pages
        self.crash_after = crash_after
        self.fail_with = fail_with
        self.versions = versions or {}
        self.fetched_pages: list[int] = []

    def client(self) -> HttpClient:
        raise NotImplementedError

    async def _connection_probe(self, client: HttpClient) -> tuple[str, dict[str, Any]]:
        return "fake", {}

    async def iter_pages(self, start=None, end=None, cursor=None) -> AsyncIterator[Page]:
        index = int((cursor or {}).get("next_page", 0))
        while index < len(self.pages):
            if self.crash_after is not None and len(self.fetched_pages) == self.crash_after:
                raise Crash()
            if self.fail_with is not None and len(self.fetched_pages) == 1:
                raise self.fail_with
            self.fetched_pages.append(index)
            records = [
                make_record(i, source=self.name,
                            metadata={"updated_at": self.versions.get(i, "2026-03-01T12:00:00+00:00")})
                for i in self.pages[index]
            ]
            index += 1
            await asyncio.sleep(0)
            yield Page(records, {"next_page": index})


def stored_keys(store: Store) -> list[tuple[str, str]]:
    return [(r["source"], r["source_id"]) for r in store.rows(limit=None)]


PAGES = [["1", "2"], ["3", "4"], ["5"], ["6", "7"]]


def test_full_sync_twice_stores_each_record_once(fresh_store: Store) -> None:
    first = sync(fresh_store, {"fake": ListIntegration(PAGES)}, start=NOW - timedelta(days=30), incremental=False)
    second = sync(fresh_store, {"fake": ListIntegration(PAGES)}, start=NOW - timedelta(days=30), incremental=False)
    keys = stored_keys(fresh_store)
    assert len(keys) == len(set(keys)) == 7  # tuples, so a duplicate would show
    assert (first["fake"].new, second["fake"].new, second["fake"].unchanged) == (7, 0, 7)
    assert fresh_store.conn.execute(
        "SELECT COUNT(*) = COUNT(DISTINCT source || char(0) || source_id) FROM feedback").fetchone()[0] == 1


def test_crash_then_rerun_resumes_after_the_last_committed_page(fresh_store: Store) -> None:
    crashing = ListIntegration(PAGES, crash_after=2)
    with pytest.raises(Crash):
        sync(fresh_store, {"fake": crashing})
    assert crashing.fetched_pages == [0, 1]
    assert sorted(k for _, k in stored_keys(fresh_store)) == ["1", "2", "3", "4"]
    assert fresh_store.get_state("fake", INCREMENTAL_SCOPE).status == "running"

    rerun = ListIntegration(PAGES)
    result = sync(fresh_store, {"fake": rerun})["fake"]
    assert rerun.fetched_pages == [2, 3]  # pages before the crash are not fetched again
    assert result.resumed and result.new == 3
    assert sorted(k for _, k in stored_keys(fresh_store)) == ["1", "2", "3", "4", "5", "6", "7"]
    assert fresh_store.integrity_check() == "ok"


def test_incremental_continues_from_the_saved_cursor(fresh_store: Store) -> None:
    sync(fresh_store, {"fake": ListIntegration(PAGES)})
    grown = ListIntegration(PAGES + [["8"]])
    result = sync(fresh_store, {"fake": grown})["fake"]
    assert grown.fetched_pages == [4]
    assert (result.mode, result.new) == ("incremental", 1)


def test_a_bounded_range_is_pulled_again_once_complete(fresh_store: Store) -> None:
    start, end = NOW - timedelta(days=10), NOW - timedelta(days=5)
    sync(fresh_store, {"fake": ListIntegration(PAGES)}, start=start, end=end)
    again = ListIntegration(PAGES)
    sync(fresh_store, {"fake": again}, start=start, end=end)
    assert again.fetched_pages == [0, 1, 2, 3]


def test_one_failing_source_does_not_stop_the_others(fresh_store: Store) -> None:
    failing = ListIntegration(PAGES, name="down", fail_with=SourceError(ErrorKind.server, "kept failing", status=503))
    healthy = ListIntegration(PAGES, name="up")
    results = sync(fresh_store, {"down": failing, "up": healthy})
    assert (results["up"].status, results["up"].new) == ("complete", 7)
    assert (results["down"].status, results["down"].error_kind) == ("failed", "server")
    assert "kept failing" in results["down"].errors
    # The failed source keeps the cursor of its last committed page, so nothing is lost or skipped.
    assert fresh_store.get_state("down", INCREMENTAL_SCOPE).cursor == {"next_page": 1}
    assert {r["source"]: r["status"] for r in fresh_store.recent_runs()} == {"down": "failed", "up": "complete"}


def test_updates_replace_older_versions(fresh_store: Store) -> None:
    sync(fresh_store, {"fake": ListIntegration(PAGES)})
    changed = ListIntegration([["3"]], versions={"3": "2026-04-01T00:00:00+00:00"})
    fresh_store.finish_state("fake", INCREMENTAL_SCOPE, "complete")
    result = sync(fresh_store, {"fake": changed}, start=NOW - timedelta(days=1))["fake"]
    assert (result.new, result.updated) == (0, 1)
    assert fresh_store.get_record("fake", "3")["updated_at"] == "2026-04-01T00:00:00Z"


def test_invalid_range_is_reported_not_raised(fresh_store: Store) -> None:
    results = sync(fresh_store, {"fake": ListIntegration(PAGES)}, start=NOW, end=NOW - timedelta(days=1))
    assert (results["fake"].status, results["fake"].error_kind) == ("failed", "config")


def test_plan_resumes_only_the_same_request(fresh_store: Store) -> None:
    start = NOW - timedelta(days=3)
    fresh_store.begin_state("fake", INCREMENTAL_SCOPE, {"start": "2026-05-29T00:00:00Z"}, {"next_page": 2})
    same = plan_source(fresh_store, "fake", start=start, end=None, incremental=True, now=NOW)
    assert (same.mode, same.cursor) == ("resume", {"next_page": 2})
    other = plan_source(fresh_store, "fake", start=NOW - timedelta(days=9), end=None, incremental=True, now=NOW)
    assert (other.mode, other.cursor) == ("since", None)


@settings(max_examples=60, suppress_health_check=[HealthCheck.function_scoped_fixture], deadline=None)
@given(
    sizes=st.lists(st.integers(min_value=0, max_value=4), min_size=1, max_size=8),
    crashes=st.lists(st.integers(min_value=0, max_value=8), max_size=4),
)
def test_any_crash_sequence_ends_with_every_record_once(sizes: list[int], crashes: list[int]) -> None:
    counter = iter(range(10_000))
    pages = [[str(next(counter)) for _ in range(size)] for size in sizes]
    expected = sorted(i for page in pages for i in page)
    with Store(":memory:") as store:
        last_cursor = -1
        for crash_after in [*crashes, None]:
            integration = ListIntegration(pages, crash_after=crash_after)
            try:
                asyncio.run(sync_all(store, {"fake": integration}))
            except Crash:
                pass
            state = store.get_state("fake", INCREMENTAL_SCOPE)
            cursor = (state.cursor or {}).get("next_page", 0) if state else 0
            assert cursor >= last_cursor  # never goes backwards
            committed = sorted(k for _, k in stored_keys(store))
            assert committed == sorted(i for page in pages[:cursor] for i in page)  # never ahead of the store
            last_cursor = cursor
            if state and state.status == "complete":
                break
        keys = stored_keys(store)
        assert sorted(k for _, k in keys) == expected
        assert len(keys) == len(set(keys))


def test_a_page_outwaits_another_writer_that_holds_the_store_past_the_busy_timeout(tmp_path) -> None:
    """Another connection holds the write lock for longer than the store's busy timeout: the page is written once it
    lets go, and its cursor with it; nothing is lost or doubled."""
    import sqlite3
    import threading
    import time

    import feedback_sources.store.open as store_open

    path = tmp_path / "busy.db"
    Store(path).close()
    original = store_open.BUSY_TIMEOUT_MS
    store_open.BUSY_TIMEOUT_MS = 150  # each wait gives up quickly, so the retry is what outwaits the holder
    try:
        store = Store(path)
    finally:
        store_open.BUSY_TIMEOUT_MS = original
    other = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    other.execute("BEGIN IMMEDIATE")
    released = threading.Event()

    def release_later() -> None:
        time.sleep(0.3)  # past the first wait (0.15 s), well within the retries (0.6 s in all)
        other.execute("COMMIT")
        released.set()

    holder = threading.Thread(target=release_later)
    holder.start()
    try:
        result = sync(store, {"fake": ListIntegration(PAGES)}, start=NOW - timedelta(days=30), incremental=False)
    finally:
        holder.join()
        other.close()
    assert released.is_set()
    assert (result["fake"].status, result["fake"].new, result["fake"].errors) == ("complete", 7, None)
    assert sorted(k for _, k in stored_keys(store)) == ["1", "2", "3", "4", "5", "6", "7"]
    store.close()
