"""Cancelling a sync, or one source failing mid-page while others run, leaves nothing dangling: no "coroutine ... was
never awaited", no "Task was destroyed but it is pending!", no "Task exception was never retrieved".

Each test runs the sync on its own event loop with an exception handler that records what asyncio reports, records
every RuntimeWarning and unraisable exception (where a warning raised in a finalizer ends up), and collects garbage
before looking, so that a coroutine or task dropped on the floor is reported inside the test, not at exit.
"""

from __future__ import annotations

import asyncio
import gc
import re
import sys
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest

from feedback_sources.emulator import Emulator, run_emulator_server
from feedback_sources.integrations.base import get_integration_class
from feedback_sources.store import Store
from feedback_sources.sync import sync_all
from tests.reliability_support import SOURCES, ground_truth, integration_configs, past_config, stored_ids

DETAIL = re.compile(r"/conversations/(?!search)[^/]+$")
BOUND_SECONDS = 60.0


@contextmanager
def asyncio_reports(problems: list[str]) -> Iterator[asyncio.Runner]:
    """A runner whose loop records asyncio's complaints into `problems`, with warnings and unraisables recorded."""
    previous_hook = sys.unraisablehook

    def unraisable(report: Any) -> None:
        problems.append(f"unraisable {report.exc_type.__name__}: {report.exc_value} ({report.object!r})")

    sys.unraisablehook = unraisable
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            with asyncio.Runner() as runner:
                runner.get_loop().set_exception_handler(
                    lambda loop, context: problems.append(f"asyncio: {context.get('message')} {context.get('task', '')}")
                )
                yield runner
            for _ in range(3):
                gc.collect()
        problems.extend(f"warning: {w.message}" for w in caught if issubclass(w.category, RuntimeWarning))
    finally:
        sys.unraisablehook = previous_hook


class CancelOnDetail(httpx.AsyncBaseTransport):
    """Real HTTP; when the n-th conversation detail has been answered, cancels `target` (the whole sync)."""

    def __init__(self, n: int):
        self.inner = httpx.AsyncHTTPTransport()
        self.n = n
        self.details = 0
        self.target: asyncio.Task[Any] | None = None

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        response = await self.inner.handle_async_request(request)
        if DETAIL.search(request.url.path):
            self.details += 1
            if self.details == self.n and self.target is not None:
                self.target.cancel()
        return response

    async def aclose(self) -> None:
        await self.inner.aclose()


@pytest.fixture
def served(tmp_path: Path) -> Iterator[tuple[Emulator, dict[str, dict[str, str]], Store]]:
    emulator = Emulator(past_config(zendesk_tickets=300, intercom_conversations=120, surveymonkey_surveys=2,
                                    surveymonkey_responses_per_survey=150))
    with run_emulator_server(emulator) as root, Store(tmp_path / "feedback.db") as store:
        yield emulator, integration_configs(emulator, root), store


def test_cancelling_a_sync_mid_page_leaves_no_unawaited_coroutine_or_pending_task(served) -> None:
    emulator, configs, store = served
    cancel = CancelOnDetail(5)
    integrations = {
        source: get_integration_class(source)(
            configs[source], **({"transport": cancel, "page_size": 60} if source == "intercom" else {"page_size": 50}
                                if source == "zendesk" else {})
        )
        for source in SOURCES
    }
    problems: list[str] = []

    async def main() -> bool:
        task = asyncio.ensure_future(sync_all(store, integrations, incremental=False))
        cancel.target = task
        with pytest.raises(asyncio.CancelledError):
            await asyncio.wait_for(task, BOUND_SECONDS)
        # By the time the cancelled sync has returned, Intercom's generator has run its cleanup (it records its
        # request statistics last, after stopping its detail and contact fetches and closing its client).
        return hasattr(integrations["intercom"], "last_stats")

    with asyncio_reports(problems) as runner:
        cleaned_up = runner.run(main())
    assert cleaned_up
    assert cancel.details >= 5  # cancelled in the middle of a page's detail fetches
    assert problems == []
    # What was committed before the cancel stays, whole.
    assert store.integrity_check() == "ok"
    truth = ground_truth(emulator)
    assert all(set(ids) <= set(truth[source]) for source, ids in stored_ids(store.conn).items())


def test_a_source_failing_mid_page_while_others_run_leaves_nothing_dangling(served) -> None:
    emulator, configs, store = served
    # The third conversation detail is refused (403, not retried): the page's other detail fetches must be stopped
    # and awaited, while Zendesk and SurveyMonkey carry on to the end.
    seen = {"details": 0}

    class FailThird(httpx.AsyncBaseTransport):
        def __init__(self) -> None:
            self.inner = httpx.AsyncHTTPTransport()

        async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
            if DETAIL.search(request.url.path):
                seen["details"] += 1
                if seen["details"] == 3:
                    emulator.faults.inject("intercom", DETAIL.pattern, 403, method="GET")
            return await self.inner.handle_async_request(request)

        async def aclose(self) -> None:
            await self.inner.aclose()

    integrations = {
        source: get_integration_class(source)(
            configs[source], **({"transport": FailThird(), "page_size": 60} if source == "intercom" else {})
        )
        for source in SOURCES
    }
    problems: list[str] = []
    with asyncio_reports(problems) as runner:
        results = runner.run(asyncio.wait_for(sync_all(store, integrations, incremental=False), BOUND_SECONDS))
    assert {source: (result.status, result.error_kind) for source, result in results.items()} == {
        "zendesk": ("complete", None), "intercom": ("failed", "forbidden"), "surveymonkey": ("complete", None),
    }
    assert problems == []
    truth = ground_truth(emulator)
    stored = stored_ids(store.conn)
    assert (stored["zendesk"], stored["surveymonkey"], stored["intercom"]) == (truth["zendesk"], truth["surveymonkey"], [])
