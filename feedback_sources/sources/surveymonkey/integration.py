"""SurveyMonkey: each survey response becomes one feedback record.

The daily request budget (500 a day for private and draft apps) is what bounds a sync, so every choice here saves
requests: surveys are listed 1000 at a time, a survey's responses are asked for first (100 a page, the maximum), and
its question texts (`/details`) are fetched only when a page holds responses in range, once per survey per run.
Disqualified responses are not feedback: a sync page carries them as removals, and deletions arrive as webhook
events (a deleted response simply vanishes from `responses/bulk`).

This module is the sync flow. SurveyMonkey's API as data (endpoints, rate-limit windows, error rows) and the list
walks are in `api.py`, the connection test and the webhooks' registration in `registration.py`, mapping in
`mapping.py`, the stored cursor in `cursor.py`; paging, pacing and errors are the kit's.
"""

from __future__ import annotations

import logging
import os
from collections.abc import AsyncIterator, Callable
from datetime import datetime, timezone
from typing import Any

from ...integrations.base import BaseIntegration, ConfigError, Page, in_range, register, utc_bound
from ...integrations.coerce import as_dict, as_list, integer
from ...integrations.http import ErrorKind, HttpClient, SourceError
from ...integrations.paging import next_page_number
from ...models import MappingError, NormalizedRecord, Removal
from .api import (
    BASE_URL_ENV,
    REGION_BASE_URLS,
    RESPONSES_BULK,
    SURVEY_DETAILS,
    describe_error,
    list_surveys,
    read_rate_limits,
    response_filters,
    stall_guard,
    walk,
)
from .cursor import CLOCK_SKEW_ALLOWANCE, SyncCursor
from .mapping import (
    SOURCE,
    SurveyIndex,
    is_disqualified,
    map_response,
    response_created_at,
    response_modified_at,
    response_removal,
)
from .registration import check_webhook_url, probe_account, subscribe_every_survey

logger = logging.getLogger("feedback_sources.sources.surveymonkey")


@register
class SurveyMonkeyIntegration(BaseIntegration):
    """Survey responses from SurveyMonkey (API v3) with a private app's access token."""

    name = SOURCE
    display_name = "SurveyMonkey"
    required_fields = ("access_token",)
    optional_fields = ("base_url", "region")
    max_concurrency = 1  # one request at a time: the daily budget, not latency, bounds a sync

    def __init__(self, config: dict[str, Any], *, clock: Callable[[], datetime] | None = None, **kwargs: Any):
        super().__init__(config, **kwargs)
        region = self.config.get("region") or "us"
        if not isinstance(region, str) or region.lower() not in REGION_BASE_URLS:
            raise ConfigError(self.name, ["region"], f"{self.name}: region must be one of us, eu, ca")
        self.region = region.lower()
        self._clock = clock or (lambda: datetime.now(timezone.utc))

    @property
    def base_url(self) -> str:
        return self.config.get("base_url") or os.environ.get(BASE_URL_ENV) or REGION_BASE_URLS[self.region]

    def client(self) -> HttpClient:
        token = self.config["access_token"]
        return self._http_client(
            base_url=self.base_url,
            headers={"Authorization": f"Bearer {token}", "Accept": "application/json"},
            rate_limit_reader=read_rate_limits,
            describe_error=lambda response: describe_error(response, secrets=(token,)),
        )

    async def _connection_probe(self, client: HttpClient) -> tuple[str, dict[str, Any]]:
        return await probe_account(client)

    async def register_webhook(self, url: str) -> bool:
        """Make SurveyMonkey announce every response event of every survey to `url`; True on success.

        SurveyMonkey webhooks have one event type each: one per type in `WEBHOOK_EVENT_TYPES` (completed, updated,
        disqualified, deleted) covers all surveys, listed 1000 to a page. A Feedback Hub webhook that already sends
        that event to `url` for all of them is kept as is; one that covers fewer surveys (some were added since) is
        replaced by the new one once that exists. SurveyMonkey first checks the address with a HEAD
        request: when that fails the SourceError says to expose the receiver through a tunnel. Deliveries are
        signed with the app's client id and secret, which the receiver needs (SURVEYMONKEY_CLIENT_ID/_SECRET).
        """
        check_webhook_url(url)
        async with self.client() as client:
            await subscribe_every_survey(client, url)
        return True

    async def iter_pages(
        self,
        start: datetime | None = None,
        end: datetime | None = None,
        cursor: dict[str, Any] | None = None,
    ) -> AsyncIterator[Page]:
        state = SyncCursor.parse(cursor)
        start, end = utc_bound(start), utc_bound(end)
        async with self.client() as client:
            try:
                async for page in self._pages(client, state, start, end):
                    self.last_stats = client.stats.as_dict()
                    yield page
            finally:
                self.last_stats = client.stats.as_dict()

    async def _pages(
        self, client: HttpClient, state: SyncCursor, start: datetime | None, end: datetime | None
    ) -> AsyncIterator[Page]:
        titles: dict[str, str | None] = {}
        if not state.in_pass:
            surveys = await list_surveys(client)
            titles = {survey.id: survey.title for survey in surveys}
            # A survey nobody answered cannot hold responses in any range: no request spent on it.
            pending = tuple(survey.id for survey in surveys if survey.response_count != 0)
            state = state.model_copy(update={
                "created_start": start, "created_end": end, "surveys": pending, "high_water": None,
                "pass_started_at": self._clock(),
            }).next_survey()
            if not state.in_pass:
                yield Page([], state.to_json(), vendor_total=0)
                return

        details_cache: dict[str, SurveyIndex | None] = {}
        totals: dict[str, int] = {}
        # The API's totals count disqualified responses; the vendor total a PM compares with the store must not.
        disqualified: dict[str, set[str]] = {}
        survey_started: dict[str, datetime] = {}
        guard = stall_guard(f"survey {state.survey_id} responses")
        while state.in_pass:
            survey_id, page_number = state.survey_id, state.page
            assert survey_id is not None and page_number is not None
            survey_started.setdefault(survey_id, self._clock() if page_number == 1 else state.pass_started_at or self._clock())
            body = await self._responses_page(client, state)
            data = as_list(body.get("data"))
            following = next_page_number(body, page_number)
            if following is None and body:
                # Pages run newest change first, so a response changed while we paged jumped to a page already read.
                # One look at what changed since this survey began picks it up before the survey counts as done.
                data = data + await self._changed_since(client, state, survey_started[survey_id])
            total = integer(body.get("total"))
            if total is not None:
                totals[survey_id] = total
            state = state.seen(m for m in map(response_modified_at, data) if m is not None)
            in_range_responses = [
                response for response in data
                if (created := response_created_at(response)) is None or in_range(created, start, end)
            ]
            # A disqualified response is not feedback: it leaves the store (whatever its date, it may have been
            # stored as completed before) and costs no details request.
            removals: list[Removal] = []
            for response in data:
                if is_disqualified(response) and (removal := response_removal(response)) is not None:
                    removals.append(removal)
                    if (created := response_created_at(response)) is None or in_range(created, start, end):
                        disqualified.setdefault(survey_id, set()).add(removal.source_id)
            feedback = [response for response in in_range_responses if not is_disqualified(response)]
            records = []
            if feedback:
                if survey_id not in details_cache:
                    details_cache[survey_id] = await self._details(client, survey_id)
                index = details_cache[survey_id] or SurveyIndex(title=None, questions={})
                records = self._map_all(feedback, index, titles.get(survey_id) or index.title)
            if following is None:
                state = state.next_survey()
                guard = stall_guard(f"survey {state.survey_id} responses")
            else:
                guard.check(bool(data) and following > page_number, page_number)
                state = state.at_page(following)
            vendor_total = sum(max(0, total - len(disqualified.get(sid, ()))) for sid, total in totals.items())
            yield Page(records, state.to_json(), vendor_total=vendor_total, removals=removals)

    def _map_all(self, responses: list[Any], index: SurveyIndex, title: str | None) -> list[NormalizedRecord]:
        records = []
        for response in responses:
            try:
                records.append(map_response(response, index, rules=self.rules, survey_title=title))
            except MappingError as error:
                logger.warning("skipping a SurveyMonkey response that cannot be mapped: %s", error)
        return records

    async def _responses_page(self, client: HttpClient, state: SyncCursor) -> dict[str, Any]:
        assert state.survey_id is not None and state.page is not None
        params: dict[str, Any] = {**RESPONSES_BULK.params, "page": state.page, **response_filters(state)}
        try:
            body = await client.get_json(RESPONSES_BULK.url(survey_id=state.survey_id), params=params,
                                         bucket=RESPONSES_BULK.bucket)
        except SourceError as error:
            if error.kind != ErrorKind.not_found:
                raise
            logger.info("survey %s is gone; moving on", state.survey_id)
            return {}
        return as_dict(body)

    async def _changed_since(self, client: HttpClient, state: SyncCursor, began: datetime) -> list[Any]:
        """The survey's responses changed since it began to be paged (what jumped to a page already read)."""
        assert state.survey_id is not None
        since = began - CLOCK_SKEW_ALLOWANCE
        if state.modified_after is not None and state.modified_after > since:
            since = state.modified_after
        filters = response_filters(state.model_copy(update={"modified_after": since}))
        request = RESPONSES_BULK.request(survey_id=state.survey_id, params={"page": 1, **filters})
        changed: list[Any] = []
        try:
            async for body in walk(client, request, f"survey {state.survey_id} recent changes"):
                changed.extend(as_list(as_dict(body).get("data")))
        except SourceError as error:
            if error.kind != ErrorKind.not_found:
                raise
            logger.info("survey %s is gone; moving on", state.survey_id)
        return changed

    async def _details(self, client: HttpClient, survey_id: str) -> SurveyIndex | None:
        try:
            body = await client.get_json(SURVEY_DETAILS.url(survey_id=survey_id), bucket=SURVEY_DETAILS.bucket)
        except SourceError as error:
            if error.kind != ErrorKind.not_found:
                raise
            logger.info("details of survey %s are gone; answers keep their ids", survey_id)
            return None
        return SurveyIndex.from_details(body)
