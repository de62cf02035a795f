"""SurveyMonkey: each survey response becomes one feedback record.

The daily request budget (500 a day for private and draft apps) is what bounds a sync, so every choice here saves
requests: surveys are listed 1000 at a time, a survey's responses are asked for first (100 a page, the maximum), and
its question texts (`/details`) are fetched only when a page holds responses in range, once per survey per run.
Disqualified responses are not feedback: a sync page carries them as removals, and deletions arrive as webhook
events (a deleted response simply vanishes from `responses/bulk`).

What is SurveyMonkey's own lives here as data: the endpoints, the rate-limit windows, the error rows. Mapping is in
`mapping.py`, the stored cursor in `cursor.py`; paging, pacing and errors are the kit's.
"""

from __future__ import annotations

import logging
import os
import re
from collections.abc import AsyncIterator, Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any, Literal

import httpx

from ...integrations.base import BaseIntegration, ConfigError, Page, in_range, parse_iso, register, utc_bound
from ...integrations.coerce import as_dict, as_list, identifier, integer
from ...integrations.errors import ErrorContext, ErrorRow, ErrorTable
from ...integrations.http import ErrorKind, HttpClient, SourceError
from ...integrations.paging import LinksNextPaginator, PageRequest, StallGuard, next_page_number, paginate
from ...integrations.ratelimits import HeaderWindow, RateLimits, Window, daily_budget, duration_text
from ...models import MappingError, NormalizedRecord, Removal
from .cursor import CLOCK_SKEW_ALLOWANCE, SyncCursor
from .mapping import (
    SOURCE,
    SurveyIndex,
    _label,
    heading_text,
    is_disqualified,
    map_response,
    response_created_at,
    response_modified_at,
    response_removal,
)

# The pure transforms and the cursor are re-exported: code written against this module keeps working.
__all__ = [
    "CLOCK_SKEW_ALLOWANCE", "SURVEY_DETAILS", "SurveyIndex", "SurveyMonkeyIntegration", "SyncCursor", "api_datetime",
    "describe_error", "heading_text", "is_disqualified", "map_response", "parse_iso", "read_rate_limits",
    "response_removal",
]

logger = logging.getLogger("feedback_sources.sources.surveymonkey")

# Each account lives in one data centre and only its own host answers for it (error 1018 otherwise).
REGION_BASE_URLS: dict[str, str] = {
    "us": "https://api.surveymonkey.com/v3",
    "eu": "https://api.eu.surveymonkey.com/v3",
    "ca": "https://api.surveymonkey.ca/v3",
}
DEFAULT_BASE_URL = REGION_BASE_URLS["us"]
BASE_URL_ENV = "SURVEYMONKEY_BASE_URL"

SURVEYS_PER_PAGE = 1000  # the API's global maximum page size
RESPONSES_PER_PAGE = 100  # the maximum for responses/bulk
# Pages that bring nothing new in a row (an empty page, or `links.next` pointing back) before the sync gives up.
MAX_STALLED_PAGES = 5

SCOPE_LABELS: dict[str, str] = {
    "users_read": "View Users",
    "surveys_read": "View Surveys",
    "responses_read": "View Responses",
    "responses_read_detail": "View Response Details",
    "webhooks_read": "View Webhooks",
    "webhooks_write": "Create/Modify Webhooks",
}
REQUIRED_SCOPES = ("users_read", "surveys_read", "responses_read", "responses_read_detail")


# -- endpoints -------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Endpoint:
    """One API call: where it is, its fixed parameters, how it pages and which scope SurveyMonkey checks for it."""

    name: str
    path: str  # relative to the base URL, with {survey_id} placeholders
    params: Mapping[str, str | int]
    paging: Literal["none", "links.next"]
    scope: str
    bucket: str = "minute"

    def url(self, **ids: str) -> str:
        return self.path.format(**ids)

    def matches(self, url_path: str) -> bool:
        pattern = "[^/]+".join(re.escape(part) for part in re.split(r"\{\w+\}", self.path)) + "/?$"
        return re.search(pattern, url_path) is not None

    def request(self, *, params: Mapping[str, Any] | None = None, **ids: str) -> PageRequest:
        return PageRequest(self.url(**ids), {**self.params, **(params or {})}, bucket=self.bucket)


USER_ME = Endpoint("user", "/users/me", {}, paging="none", scope="users_read")
SURVEYS = Endpoint(
    "surveys",
    "/surveys",
    # response_count lets a sync skip surveys nobody answered without spending a request on them.
    {"per_page": SURVEYS_PER_PAGE, "include": "response_count"},
    paging="links.next",
    scope="surveys_read",
)
SURVEY_DETAILS = Endpoint("survey_details", "/surveys/{survey_id}/details", {}, paging="none", scope="surveys_read")
RESPONSES_BULK = Endpoint(
    "responses",
    "/surveys/{survey_id}/responses/bulk",
    # Newest change first: a response changed while we page moves to page 1, which shifts later pages by one and
    # repeats a record instead of skipping one (oldest first would skip); the changed one itself is picked up by a
    # last look per survey at what changed while it was paged (`_changed_since`).
    {"per_page": RESPONSES_PER_PAGE, "sort_by": "date_modified", "sort_order": "DESC"},
    paging="links.next",
    scope="responses_read_detail",
)
WEBHOOKS = Endpoint("webhooks", "/webhooks", {"per_page": 1000}, paging="links.next", scope="webhooks_write")
WEBHOOK = Endpoint("webhook", "/webhooks/{webhook_id}", {}, paging="none", scope="webhooks_read")
ENDPOINTS: tuple[Endpoint, ...] = (USER_ME, SURVEYS, SURVEY_DETAILS, RESPONSES_BULK, WEBHOOKS, WEBHOOK)

WEBHOOK_NAME = "Feedback Hub"
# A SurveyMonkey webhook has one event type: one webhook each for new and changed answers, and for the two ways a
# response stops being feedback (the receiver removes it on those, without spending a request).
WEBHOOK_EVENT_TYPES = ("response_completed", "response_updated", "response_disqualified", "response_deleted")
WEBHOOK_SCOPES_HINT = (
    "In the developer portal, set the scopes View Webhooks (webhooks_read) and Create/Modify Webhooks "
    "(webhooks_write) to Required, then copy the access token again."
)
TUNNEL_HINT = (
    "SurveyMonkey calls the address from the internet, so 127.0.0.1 or a LAN address cannot work: expose the "
    "receiver's port through a tunnel (for example `cloudflared tunnel --url http://127.0.0.1:8787` or "
    "`ngrok http 8787`), check that it answers, and register the public https address it gives you."
)


def api_datetime(moment: datetime) -> str:
    """SurveyMonkey's date filter format: UTC, whole seconds, no offset."""
    return moment.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S")


def _ceil_second(moment: datetime) -> datetime:
    return moment if moment.microsecond == 0 else moment.replace(microsecond=0) + timedelta(seconds=1)


def _stall_guard(what: str) -> StallGuard:
    """Follows `links.next` even when it brings nothing new, but not forever."""
    return StallGuard(
        source=SOURCE,
        raise_after=MAX_STALLED_PAGES + 1,
        message=f"SurveyMonkey kept answering {what.replace('{', '{{').replace('}', '}}')} page {{position}} "
        "without moving on",
        hint="Try again later; if it persists, the survey's responses cannot be paged right now.",
    )


# -- rate limits -----------------------------------------------------------------------------------------------------


def _day_spent(day: Window) -> SourceError:
    """A 429 with the day's budget spent: it comes back at midnight UTC, and retrying until then would only hold
    the sync open for hours."""
    limit_text = f" ({day.limit} requests)" if day.limit is not None else ""
    return SourceError(
        ErrorKind.rate_limited,
        f"SurveyMonkey's daily request budget{limit_text} is spent; it resets in {duration_text(day.reset_in)} "
        "(at midnight UTC). The next sync continues where this one stopped",
        status=429,
        hint="Private apps get 500 requests a day; SurveyMonkey sells higher limits. Sync less often meanwhile.",
        source=SOURCE,
    )


# The minute and day windows, as (bucket, limit, remaining, seconds to reset). While the day still has requests left
# the minute window is the one a 429 waits for, not midnight.
read_rate_limits = RateLimits(
    HeaderWindow.prefixed("minute", "X-Ratelimit-App-Global-Minute-"),
    daily_budget("day", "X-Ratelimit-App-Global-Day-", when_spent=_day_spent),
)


# -- errors ----------------------------------------------------------------------------------------------------------

AUTH_ERRORS: dict[str, str] = {
    "1010": "no access token was sent",
    "1011": "the access token was rejected",
    "1012": "the access token has expired",
    "1013": "access was revoked for this access token",
    "1052": "the SurveyMonkey user of this token was deleted",
    "1053": "the SurveyMonkey user of this token was deleted",
}
FORBIDDEN_MESSAGES: dict[str, str] = {
    "1015": "the account's plan does not allow {scope} through the API",
    "1016": "the token's user cannot see this survey (not owned by or shared with them)",
    "1017": "the account hit a SurveyMonkey quota on this resource",
}


def _endpoint_for(response: httpx.Response) -> Endpoint | None:
    try:
        path = response.request.url.path
    except RuntimeError:  # a response built without a request
        return None
    return next((endpoint for endpoint in ENDPOINTS if endpoint.matches(path)), None)


def _forbidden(context: ErrorContext) -> str:
    endpoint = _endpoint_for(context.response)
    scope = f"`{endpoint.scope}` ({SCOPE_LABELS[endpoint.scope]})" if endpoint else "a required scope"
    template = FORBIDDEN_MESSAGES.get(context.code or "", "the app was not granted the {scope} permission")
    return template.replace("{scope}", scope) + "{detail}"


# SurveyMonkey's `{"error": {"id", "name", "message", ...}}`; a 5xx is an outage whatever error id rides along with it,
# only 4xx answers can mean bad credentials.
ERRORS = ErrorTable(
    message_paths=("error.message",),
    code_path="error.id",
    detail=" — SurveyMonkey says: {said}",
    source=SOURCE,
    rows=[
        ErrorRow(ErrorKind.auth,
                 lambda c: AUTH_ERRORS.get(c.code or "", "the access token was rejected") + "{detail}",
                 "Copy the access token again from your app's Settings in the SurveyMonkey developer portal.",
                 when=lambda c: c.status == 401 or (c.code in AUTH_ERRORS and c.status < 500)),
        ErrorRow(ErrorKind.config, "this account is hosted in another SurveyMonkey region{detail}", codes={"1018"},
                 hint="Set the region to where the account lives: us, eu (surveymonkey.eu) or ca (surveymonkey.ca)."),
        ErrorRow(ErrorKind.forbidden, _forbidden,
                 when=lambda c: c.status == 403 or c.code in {"1014", "1015", "1016", "1017"},
                 hint="In the developer portal, set these scopes to Required: "
                 f"{', '.join(f'{SCOPE_LABELS[s]} ({s})' for s in REQUIRED_SCOPES)}; then copy the access token again."),
        # Not SurveyMonkey's own error body: the address is wrong, not a survey gone (which a sync steps over).
        ErrorRow(ErrorKind.bad_response, "the base URL did not answer like SurveyMonkey's API{detail}", status=404,
                 when=lambda c: not as_dict(as_dict(c.body).get("error")),
                 hint="Check the base URL or region setting: the address should end in /v3."),
        ErrorRow(ErrorKind.not_found, "SurveyMonkey did not find this resource{detail}", status=404,
                 hint="The survey may have been deleted; check the base URL or region setting otherwise."),
        ErrorRow(ErrorKind.rate_limited, "SurveyMonkey kept refusing requests over its per-minute limit{detail}",
                 status=429, hint="Wait a minute and sync again."),
        ErrorRow(ErrorKind.server, "SurveyMonkey's server kept failing{detail}", when=lambda c: c.status >= 500,
                 hint="Try again later, or check status.surveymonkey.com."),
        ErrorRow(ErrorKind.client, "SurveyMonkey refused the request{detail}",
                 hint="Check the configuration; the message above says what SurveyMonkey did not accept."),
    ],
)


def describe_error(response: httpx.Response, *, secrets: Iterable[str] = ()) -> SourceError:
    """SurveyMonkey's error body as a typed error a PM can act on (every status has a row)."""
    error = ERRORS.describe(response, secrets=secrets)
    assert error is not None  # the last row matches anything
    return error


@dataclass(frozen=True)
class SurveyListing:
    id: str
    title: str | None
    response_count: int | None


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
        body = await client.get_json(USER_ME.url(), bucket=USER_ME.bucket)
        body = as_dict(body)
        username, email = identifier(body.get("username")), identifier(body.get("email"))
        if username is None and email is None:
            raise SourceError(
                ErrorKind.bad_response,
                "users/me answered without a username or email",
                hint="Check the base URL: it should end in /v3.",
                source=self.name,
            )
        # users/me answers for any valid token; a sync also needs the survey and response scopes, so try them now
        # (two small requests) rather than failing halfway through the first sync.
        surveys = as_dict(await client.get_json(SURVEYS.url(), params={"per_page": 1}, bucket=SURVEYS.bucket))
        first = next((item for item in surveys.get("data") or [] if isinstance(item, dict) and item.get("id")), None)
        if first is not None:
            await client.get_json(
                RESPONSES_BULK.url(survey_id=str(first["id"])), params={"per_page": 1}, bucket=RESPONSES_BULK.bucket
            )
        details = {
            "username": username,
            "email": email,
            "surveys": surveys.get("total"),
            "account_type": identifier(body.get("account_type")),
            "rate_limit": dict(client.stats.rate_limit),
            "day_requests_remaining": client.stats.rate_limit.get("day", {}).get("remaining"),
        }
        return username or email or "", details

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
            surveys = await self._list_surveys(client)
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
        guard = _stall_guard(f"survey {state.survey_id} responses")
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
                guard = _stall_guard(f"survey {state.survey_id} responses")
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

    async def register_webhook(self, url: str) -> bool:
        """Make SurveyMonkey announce every response event of every survey to `url`; True on success.

        SurveyMonkey webhooks have one event type each: one per type in `WEBHOOK_EVENT_TYPES` (completed, updated,
        disqualified, deleted) covers all surveys, listed 1000 to a page. A Feedback Hub webhook that already sends
        that event to `url` for all of them is kept as is; one that covers fewer surveys (some were added since) is
        replaced by the new one once that exists. SurveyMonkey first checks the address with a HEAD
        request: when that fails the SourceError says to expose the receiver through a tunnel. Deliveries are
        signed with the app's client id and secret, which the receiver needs (SURVEYMONKEY_CLIENT_ID/_SECRET).
        """
        if not isinstance(url, str) or httpx.URL(url).scheme not in ("http", "https") or not httpx.URL(url).host:
            raise SourceError(
                ErrorKind.config,
                f"{url!r} is not a web address SurveyMonkey can post to",
                source=self.name,
                hint="Give the receiver's full public address, e.g. https://feedback-hooks.example.com/webhooks/"
                "surveymonkey.",
            )
        try:
            return await self._register_webhook(url)
        except SourceError as error:
            if error.kind is ErrorKind.forbidden and error.status != 400:
                error.hint = WEBHOOK_SCOPES_HINT
            raise

    async def _register_webhook(self, url: str) -> bool:
        async with self.client() as client:
            survey_ids = [survey.id for survey in await self._list_surveys(client)]
            if not survey_ids:
                raise SourceError(
                    ErrorKind.client,
                    "this account has no surveys to subscribe to yet",
                    source=self.name,
                    hint="Create a survey, then register the webhook again.",
                )
            ours = await self._webhooks_to(client, url)
            for event_type in WEBHOOK_EVENT_TYPES:
                await self._register_event(client, url, event_type, survey_ids, ours.get(event_type, {}))
        return True

    async def _register_event(
        self, client: HttpClient, url: str, event_type: str, survey_ids: list[str], ours: dict[str, list[str]]
    ) -> None:
        if any(set(survey_ids) <= set(covered) for covered in ours.values()):
            return
        payload = {
            "name": WEBHOOK_NAME,
            "event_type": event_type,
            "object_type": "survey",
            "object_ids": survey_ids,
            "subscription_url": url,
        }
        try:
            await client.get_json(WEBHOOKS.path, method="POST", json_body=payload, bucket=WEBHOOKS.bucket)
        except SourceError as error:
            if error.status == 400:
                # describe_error words it "SurveyMonkey refused the request — SurveyMonkey says: ...".
                said = error.message.partition(" — ")[2]
                raise SourceError(
                    ErrorKind.client,
                    f"SurveyMonkey refused the webhook for {url}: before accepting one it checks that the "
                    f"address answers a HEAD request with 200{f' ({said})' if said else ''}",
                    status=400,
                    source=self.name,
                    hint=TUNNEL_HINT,
                ) from None
            raise
        for stale in ours:
            # Its surveys are all in the new webhook: keeping it would announce each response twice.
            try:
                await client.request("DELETE", WEBHOOK.url(webhook_id=stale), bucket=WEBHOOK.bucket)
            except SourceError as error:
                logger.warning("could not remove the older SurveyMonkey webhook %s: %s", stale, error)

    async def _webhooks_to(self, client: HttpClient, url: str) -> dict[str, dict[str, list[str]]]:
        """Our webhooks that already send response events to `url`: event type → id → the survey ids covered."""
        found: dict[str, dict[str, list[str]]] = {}
        async for body in self._walk(client, WEBHOOKS.request(), "the webhook list"):
            for item in as_list(as_dict(body).get("data")):
                item = as_dict(item)
                webhook_id = identifier(item.get("id"))
                # The list shows names only: details are read for our own webhooks, not for every one.
                if webhook_id is None or identifier(item.get("name")) != WEBHOOK_NAME:
                    continue
                details = as_dict(await client.get_json(WEBHOOK.url(webhook_id=webhook_id), bucket=WEBHOOK.bucket))
                event_type = details.get("event_type")
                if (
                    details.get("subscription_url") == url
                    and event_type in WEBHOOK_EVENT_TYPES
                    and details.get("object_type") == "survey"
                ):
                    found.setdefault(event_type, {})[webhook_id] = [str(i) for i in as_list(details.get("object_ids"))]
        return found

    def _walk(self, client: HttpClient, request: PageRequest, what: str) -> AsyncIterator[Any]:
        """Every page of a list, following `links.next` on our own host."""
        return paginate(client, request, LinksNextPaginator(), guard=_stall_guard(what))

    async def _list_surveys(self, client: HttpClient) -> list[SurveyListing]:
        surveys: list[SurveyListing] = []
        seen: set[str] = set()
        async for body in self._walk(client, SURVEYS.request(), "the survey list"):
            for item in as_list(as_dict(body).get("data")):
                item = as_dict(item)
                survey_id = identifier(item.get("id"))
                if survey_id is None or survey_id in seen:
                    continue
                seen.add(survey_id)
                title = _label(item.get("title")) or _label(item.get("nickname"))
                surveys.append(SurveyListing(id=survey_id, title=title, response_count=integer(item.get("response_count"))))
        return surveys

    async def _responses_page(self, client: HttpClient, state: SyncCursor) -> dict[str, Any]:
        assert state.survey_id is not None and state.page is not None
        params: dict[str, Any] = {**RESPONSES_BULK.params, "page": state.page}
        if state.modified_after is not None:
            params["start_modified_at"] = api_datetime(state.modified_after)
        if state.created_start is not None:
            params["start_created_at"] = api_datetime(state.created_start)
        if state.created_end is not None:
            params["end_created_at"] = api_datetime(_ceil_second(state.created_end))
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
        since = began - CLOCK_SKEW_ALLOWANCE
        if state.modified_after is not None and state.modified_after > since:
            since = state.modified_after
        changed: list[Any] = []
        page: int | None = 1
        guard = _stall_guard(f"survey {state.survey_id} recent changes")
        while page is not None:
            body = await self._responses_page(client, state.model_copy(update={"modified_after": since, "page": page}))
            data = as_list(body.get("data"))
            changed.extend(data)
            following = next_page_number(body, page)
            if following is not None:
                guard.check(bool(data) and following > page, page)
            page = following
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
