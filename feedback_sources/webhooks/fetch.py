"""Fetching what an event only points at, off the request path, through the integrations and their credentials.

The vendor already has its 200 by the time a fetch runs: fetches wait in the `webhook_fetches` table (so a restart
loses none) and a background worker drains it. Each fetch uses a fresh integration (its HTTP client retries 429s,
5xx and network errors within one attempt); a failed attempt is retried later with exponential backoff and full
jitter, and given up after a bounded number of attempts or at once when retrying cannot help (revoked token,
missing scope). A record the vendor no longer has is simply done. What to request for each kind of job is the
source's own `WebhookHandler.fetchers`.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

from ..integrations.base import BaseIntegration, ConfigError
from ..integrations.http import ErrorKind, SourceError
from ..models import MappingError, NormalizedRecord, Removal
from ..store import Store
from .events import FetchJob, PendingFetch, StoreRunner, due_fetches, finish_fetch, give_up_fetch, retry_fetch, utc_text
from .handler import webhook_handlers

logger = logging.getLogger("feedback_sources.webhooks")

IntegrationsFactory = Callable[[str], BaseIntegration | None]

# Retrying these cannot succeed until someone changes the configuration.
PERMANENT_ERRORS = frozenset(
    {ErrorKind.auth, ErrorKind.forbidden, ErrorKind.wrong_subdomain, ErrorKind.config, ErrorKind.client}
)

class RecordGone(Exception):
    """The vendor no longer has the record (deleted, merged): nothing to store, nothing to retry.

    With a `removal`, the vendor said so plainly (a ticket with status "deleted", a disqualified response): the
    worker removes the stored record too, with the same tombstone a sync or a deletion event would leave."""

    def __init__(self, removal: Removal | None = None):
        super().__init__()
        self.removal = removal


@dataclass(frozen=True)
class FetchPolicy:
    base_delay: float = 5.0
    max_delay: float = 3600.0
    max_attempts: int = 12  # waits up to ~2.4 h in all at the defaults (half that on average): outlasts most vendor incidents
    poll_interval: float = 1.0
    batch_size: int = 20

    def delay(self, attempt: int, rand: Callable[[], float]) -> float:
        return rand() * min(self.max_delay, self.base_delay * (2**attempt))


def path_id(value: str) -> str:
    """An id from an event, quoted to be one segment of an API path."""
    return quote(value, safe="")


def response_object(body: Any, what: str, source: str) -> dict[str, Any]:
    """`body` when it is a JSON object, else the bad-response error a fetch retries."""
    if not isinstance(body, dict):
        raise SourceError(ErrorKind.bad_response, f"{what} did not answer with a JSON object", source=source)
    return body


async def fetch_records(integration: BaseIntegration, job: FetchJob, cache: dict[str, Any] | None = None) -> list[NormalizedRecord]:
    """The current version of the record a job points at. RecordGone when the vendor no longer has it."""
    handler = webhook_handlers().get(job.source)
    fetcher = handler.fetchers.get(job.kind) if handler is not None else None
    if fetcher is None:
        raise SourceError(ErrorKind.client, f"cannot fetch a {job.kind}", source=job.source)
    try:
        return await fetcher(integration, job, cache if cache is not None else {})
    except SourceError as error:
        if error.kind is ErrorKind.not_found:
            raise RecordGone() from None
        raise


class FetchWorker:
    """Drains the pending fetches of the sources it can reach, oldest due first, one source's jobs at a time."""

    def __init__(
        self,
        runner: StoreRunner,
        integrations_factory: IntegrationsFactory,
        *,
        sources: frozenset[str],
        clock: Callable[[], float] = time.time,
        policy: FetchPolicy = FetchPolicy(),
        rand: Callable[[], float] = random.random,
    ):
        self.runner = runner
        self.integrations_factory = integrations_factory
        self.sources = sources
        self.clock = clock
        self.policy = policy
        self.rand = rand
        self._wake = asyncio.Event()
        self._caches: dict[str, dict[str, Any]] = {}

    def wake(self) -> None:
        self._wake.set()

    async def run(self) -> None:
        while True:
            try:
                handled = await self.drain_once()
            except Exception:  # the worker must outlive any one bad round (a locked database, say)
                logger.exception("webhook fetch round failed")
                handled = 0
            if handled >= self.policy.batch_size:
                continue
            try:
                await asyncio.wait_for(self._wake.wait(), timeout=self.policy.poll_interval)
            except TimeoutError:
                pass
            self._wake.clear()

    async def drain_once(self) -> int:
        """Run every fetch that is due now; returns how many were attempted."""
        if not self.sources:
            return 0
        due = await self.runner.call(due_fetches, now=self.clock(), sources=self.sources, limit=self.policy.batch_size)
        by_source: dict[str, list[PendingFetch]] = {}
        for pending in due:
            by_source.setdefault(pending.job.source, []).append(pending)
        await asyncio.gather(*(self._run_in_order(jobs) for jobs in by_source.values()))
        return len(due)

    async def _run_in_order(self, jobs: list[PendingFetch]) -> None:
        for pending in jobs:
            await self._run_one(pending)

    async def _run_one(self, pending: PendingFetch) -> None:
        job = pending.job
        started = time.perf_counter()
        try:
            integration = self.integrations_factory(job.source)
        except ConfigError:
            integration = None
        if integration is None:
            return  # not reachable from this process: the row waits for a receiver that has the credentials
        cache = self._caches.setdefault(job.source, {})
        try:
            records = await fetch_records(integration, job, cache)
        except RecordGone as gone:
            if gone.removal is not None:
                await self.runner.call(Store.upsert_records, [], removals=[gone.removal])
            await self.runner.call(finish_fetch, pending)
            self._log(job, "gone", pending.attempts + 1, started)
            return
        except SourceError as error:
            await self._failed(pending, str(error), permanent=error.kind in PERMANENT_ERRORS, started=started)
            return
        except MappingError as error:  # the vendor's own copy cannot be a record: asking again will not change it
            await self._failed(pending, str(error)[:200], permanent=True, started=started)
            return
        except Exception as error:  # noqa: BLE001 - a mapper or transport surprise: retried like any failure
            await self._failed(pending, f"{type(error).__name__}", permanent=False, started=started)
            return
        await self.runner.call(Store.upsert_records, records)
        await self.runner.call(finish_fetch, pending)
        self._log(job, "stored", pending.attempts + 1, started)

    async def _failed(self, pending: PendingFetch, error: str, *, permanent: bool, started: float) -> None:
        attempts = pending.attempts + 1
        at = utc_text(self.clock())
        if permanent or attempts >= self.policy.max_attempts:
            await self.runner.call(give_up_fetch, pending, error=error, at=at)
            self._log(pending.job, "failed", attempts, started, error)
            return
        delay = self.policy.delay(pending.attempts, self.rand)
        await self.runner.call(retry_fetch, pending, next_attempt_at=self.clock() + delay, error=error, at=at)
        self._log(pending.job, f"retry in {delay:.1f}s", attempts, started, error)

    @staticmethod
    def _log(job: FetchJob, outcome: str, attempts: int, started: float, error: str = "") -> None:
        logger.info(
            "webhook fetch source=%s %s=%s outcome=%s attempt=%d latency_ms=%.1f%s",
            job.source,
            job.kind,
            job.object_id,
            outcome,
            attempts,
            (time.perf_counter() - started) * 1000,
            f" error={error}" if error else "",
        )
