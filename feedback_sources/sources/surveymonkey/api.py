"""SurveyMonkey's API as data: regions, endpoints and their scopes, the rate-limit windows, the error rows, and the
request helpers the sync and the webhook registration share (list walks, the response filters, the survey list)."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any, Literal

import httpx

from ...integrations.coerce import as_dict, as_list, identifier, integer
from ...integrations.errors import ErrorContext, ErrorRow, ErrorTable
from ...integrations.http import ErrorKind, HttpClient, SourceError
from ...integrations.paging import LinksNextPaginator, PageRequest, StallGuard, paginate
from ...integrations.ratelimits import HeaderWindow, RateLimits, Window, daily_budget, duration_text
from .cursor import SyncCursor
from .mapping import SOURCE, _label

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
    # last look per survey at what changed while it was paged (`_changed_since` in the integration).
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


# -- requests ----------------------------------------------------------------------------------------------------------


def api_datetime(moment: datetime) -> str:
    """SurveyMonkey's date filter format: UTC, whole seconds, no offset."""
    return moment.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S")


def _ceil_second(moment: datetime) -> datetime:
    return moment if moment.microsecond == 0 else moment.replace(microsecond=0) + timedelta(seconds=1)


def response_filters(state: SyncCursor) -> dict[str, str]:
    """The responses/bulk date filters of a position: changed since its watermark, created in its pass's range
    (the end rounded up, since the filter has whole seconds and the range excludes its end)."""
    filters: dict[str, str] = {}
    if state.modified_after is not None:
        filters["start_modified_at"] = api_datetime(state.modified_after)
    if state.created_start is not None:
        filters["start_created_at"] = api_datetime(state.created_start)
    if state.created_end is not None:
        filters["end_created_at"] = api_datetime(_ceil_second(state.created_end))
    return filters


def stall_guard(what: str) -> StallGuard:
    """Follows `links.next` even when it brings nothing new, but not forever."""
    return StallGuard(
        source=SOURCE,
        raise_after=MAX_STALLED_PAGES + 1,
        message=f"SurveyMonkey kept answering {what.replace('{', '{{').replace('}', '}}')} page {{position}} "
        "without moving on",
        hint="Try again later; if it persists, the survey's responses cannot be paged right now.",
    )


def walk(client: HttpClient, request: PageRequest, what: str) -> AsyncIterator[Any]:
    """Every page of a list, following `links.next` on our own host."""
    return paginate(client, request, LinksNextPaginator(), guard=stall_guard(what))


@dataclass(frozen=True)
class SurveyListing:
    id: str
    title: str | None
    response_count: int | None


async def list_surveys(client: HttpClient) -> list[SurveyListing]:
    """Every survey of the account, once each, with its title and how many responses it has."""
    surveys: list[SurveyListing] = []
    seen: set[str] = set()
    async for body in walk(client, SURVEYS.request(), "the survey list"):
        for item in as_list(as_dict(body).get("data")):
            item = as_dict(item)
            survey_id = identifier(item.get("id"))
            if survey_id is None or survey_id in seen:
                continue
            seen.add(survey_id)
            title = _label(item.get("title")) or _label(item.get("nickname"))
            surveys.append(SurveyListing(id=survey_id, title=title, response_count=integer(item.get("response_count"))))
    return surveys


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
