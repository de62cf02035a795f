"""Fetching what an event only points at, off the request path, through the integrations and their credentials.

The vendor already has its 200 by the time a fetch runs: fetches wait in the `webhook_fetches` table (so a restart
loses none) and a background worker drains it. Each fetch uses a fresh integration (its HTTP client retries 429s,
5xx and network errors within one attempt); a failed attempt is retried later with exponential backoff and full
jitter, and given up after a bounded number of attempts or at once when retrying cannot help (revoked token,
missing scope). A record the vendor no longer has is simply done.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any
from urllib.parse import quote

from ..integrations.base import BaseIntegration, ConfigError
from ..integrations.http import ErrorKind, SourceError
from ..models import MappingError, NormalizedRecord, Removal
from ..store import Store
from .events import FetchJob, PendingFetch, StoreRunner, due_fetches, finish_fetch, give_up_fetch, retry_fetch, utc_text

logger = logging.getLogger("feedback_sources.webhooks")

IntegrationsFactory = Callable[[str], BaseIntegration | None]

# Retrying these cannot succeed until someone changes the configuration.
PERMANENT_ERRORS = frozenset(
    {ErrorKind.auth, ErrorKind.forbidden, ErrorKind.wrong_subdomain, ErrorKind.config, ErrorKind.client}
)

# Survey details change rarely and each request spends SurveyMonkey's small daily budget.
SURVEY_DETAILS_TTL_SECONDS = 900.0


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


def _path_id(value: str) -> str:
    return quote(value, safe="")


def _object(body: Any, what: str, source: str) -> dict[str, Any]:
    if not isinstance(body, dict):
        raise SourceError(ErrorKind.bad_response, f"{what} did not answer with a JSON object", source=source)
    return body


async def _fetch_ticket(integration: Any, job: FetchJob, cache: dict[str, Any]) -> list[NormalizedRecord]:
    from ..sources.zendesk import integration as zendesk

    async with integration.client() as client:
        body = await client.get_json(
            f"/api/v2/tickets/{_path_id(job.object_id)}.json", params={"include": "users,organizations"}
        )
    body = _object(body, "the ticket endpoint", "zendesk")
    ticket = body.get("ticket")
    if not isinstance(ticket, dict):
        raise SourceError(ErrorKind.bad_response, "the ticket endpoint answered without a ticket", source="zendesk")
    if zendesk.is_deleted(ticket):
        raise RecordGone(zendesk.ticket_removal(ticket))
    record = zendesk.map_ticket(
        ticket,
        zendesk.index_by_id(body.get("users")),
        subdomain=integration.subdomain,
        rules=integration.rules,
        organizations_by_id=zendesk.index_by_id(body.get("organizations")),
    )
    return [record]


async def _fetch_conversation(integration: Any, job: FetchJob, cache: dict[str, Any]) -> list[NormalizedRecord]:
    from ..sources.intercom import integration as intercom

    async with integration.client() as client:
        try:
            found_conversation = await client.get_json(
                intercom.CONVERSATION.url(conversation_id=_path_id(job.object_id))
            )
        except SourceError as error:
            if error.kind is ErrorKind.not_found:
                # Intercom answers 404 for a deleted conversation: it leaves the store, as a deletion event would.
                raise RecordGone(
                    Removal(source="intercom", source_id=job.object_id, removed_at=datetime.now(timezone.utc))
                ) from None
            raise
        conversation = _object(found_conversation, "the conversation endpoint", "intercom")
        contact: dict[str, Any] | None = None
        contacts = conversation.get("contacts")
        listed = contacts.get("contacts") if isinstance(contacts, dict) else None
        first = next((c for c in listed if isinstance(c, dict)), None) if isinstance(listed, list) else None
        contact_id = first.get("id") if first else None
        if isinstance(contact_id, str | int) and not isinstance(contact_id, bool) and str(contact_id):
            try:
                found = await client.get_json(intercom.CONTACT.url(contact_id=_path_id(str(contact_id))))
            except SourceError as error:
                if error.kind is not ErrorKind.not_found:
                    raise
            else:
                contact = found if isinstance(found, dict) else None
    app_id = job.params.get("app_id") or getattr(integration, "app_id", None)
    return [intercom.map_conversation(conversation, contact, app_id=app_id, rules=integration.rules)]


async def _fetch_response(integration: Any, job: FetchJob, cache: dict[str, Any]) -> list[NormalizedRecord]:
    from ..sources.surveymonkey import integration as surveymonkey

    survey_id = job.params.get("survey_id")
    if not survey_id:
        raise SourceError(ErrorKind.client, "the event named no survey", source="surveymonkey")
    async with integration.client() as client:
        response = _object(
            await client.get_json(
                f"/surveys/{_path_id(survey_id)}/responses/{_path_id(job.object_id)}/details"
            ),
            "the response endpoint",
            "surveymonkey",
        )
        if surveymonkey.is_disqualified(response):
            # Announced as completed or updated, disqualified by the time we asked: not feedback, and removed if
            # stored. Checked before the details, which would spend a request of the daily budget for nothing.
            raise RecordGone(surveymonkey.response_removal(response))
        cached = cache.get(survey_id)
        if cached is not None and cached[0] > time.monotonic():
            index = cached[1]
        else:
            try:
                details = await client.get_json(surveymonkey.SURVEY_DETAILS.url(survey_id=_path_id(survey_id)))
            except SourceError as error:
                if error.kind is not ErrorKind.not_found:
                    raise
                details = None  # answers keep their ids, as in the sync
            index = surveymonkey.SurveyIndex.from_details(details)
            cache[survey_id] = (time.monotonic() + SURVEY_DETAILS_TTL_SECONDS, index)
    return [surveymonkey.map_response(response, index, rules=integration.rules)]


FETCHERS = {
    ("zendesk", "ticket"): _fetch_ticket,
    ("intercom", "conversation"): _fetch_conversation,
    ("surveymonkey", "response"): _fetch_response,
}


async def fetch_records(integration: BaseIntegration, job: FetchJob, cache: dict[str, Any] | None = None) -> list[NormalizedRecord]:
    """The current version of the record a job points at. RecordGone when the vendor no longer has it."""
    fetcher = FETCHERS.get((job.source, job.kind))
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
