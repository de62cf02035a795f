"""Zendesk Support: tickets from the cursor-based incremental export, mapped to normalized records.

The export is Zendesk's bulk-sync endpoint: one request returns up to 1000 tickets changed since a point in time,
with the users they reference side-loaded, and an opaque `after_cursor` that is also where the next sync resumes.
It has its own, much tighter rate limit (10 requests a minute), so it is paced on a bucket of its own.
The export is ordered by update time, so a date range on *created* time is applied here, on the client side.

What is Zendesk's own lives here as data: the endpoints, the export paginator, the rate-limit headers and the error
rows. Mapping is in `mapping.py`, the stored cursor in `cursor.py`; paging, pacing and errors are the kit's.
"""

from __future__ import annotations

import json
import logging
import os
import re
import time
from collections.abc import AsyncIterator, Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any, Literal

import httpx

from ...integrations.base import BaseIntegration, ConfigError, Page, in_range, register, utc_bound
from ...integrations.coerce import identifier, lower_text, text
from ...integrations.errors import CLIENT_ERRORS, SERVER_ERRORS, ErrorRow, ErrorTable
from ...integrations.http import ErrorKind, HttpClient, SourceError
from ...integrations.paging import ExportCursorPaginator, PageRequest, StallGuard, paginate
from ...integrations.ratelimits import HeaderWindow, RateLimits, StructuredWindow, parse_limit_header
from ...models import MappingError, NormalizedRecord, Removal
from .cursor import ExportPosition
from .mapping import (
    SEVERITY_BY_PRIORITY,
    SOURCE,
    index_by_id,
    is_deleted,
    map_ticket,
    parse_moment,
    ticket_removal,
    ticket_url,
    ticket_watermark,
)

# The pure transforms and the cursor are re-exported: code written against this module keeps working.
__all__ = [
    "SEVERITY_BY_PRIORITY", "ExportPosition", "ZendeskIntegration", "describe_error", "describe_webhook_error",
    "index_by_id", "is_deleted", "map_ticket", "parse_limit_header", "parse_moment", "read_rate_limits",
    "ticket_removal", "ticket_url",
]

logger = logging.getLogger("feedback_sources.sources.zendesk")

DEFAULT_BASE_URL = "https://{subdomain}.zendesk.com"
BASE_URL_ENV = "ZENDESK_BASE_URL"

# Zendesk refuses (422) a start_time less than a minute old and never returns the most recent minute anyway.
START_TIME_MARGIN_SECONDS = 61
# Account-wide limits are per minute; used when a response gives no reset time.
ACCOUNT_WINDOW_SECONDS = 60.0

# The export's largest page; smaller pages are the documented remedy when requests time out.
MAX_PAGE_SIZE = 1000
# Pages in a row whose cursor does not move before the export is declared stuck.
MAX_STALLED_PAGES = 5

INCREMENTAL_BUCKET = "incremental_exports"
ACCOUNT_BUCKET = "default"


# -- endpoints as data -----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Endpoint:
    """One API call: where it goes, its fixed parameters, how it pages and which rate-limit bucket it spends."""

    path: str
    params: Mapping[str, str | int] = field(default_factory=dict)
    paging: Literal["none", "export_cursor"] = "none"
    bucket: str = ACCOUNT_BUCKET


CURRENT_USER = Endpoint(path="/api/v2/users/me.json")

TICKET_EXPORT = Endpoint(
    path="/api/v2/incremental/tickets/cursor.json",
    # Side-loads cost nothing extra: they ride on the same request and carry the requester's name, email and plan.
    # Deleted tickets are asked for on purpose: the export is how a sync learns that a stored ticket was deleted or
    # marked as spam (it then lists it with status "deleted"), so the store can forget it.
    params={"include": "users,organizations", "per_page": MAX_PAGE_SIZE},
    paging="export_cursor",
    bucket=INCREMENTAL_BUCKET,
)

# Spends one account-wide request (not an export one); only asked for on full syncs, where it is the exact total.
TICKET_COUNT = Endpoint(path="/api/v2/tickets/count.json")

# Webhooks API (admins only). A webhook subscribed to ticket events posts Zendesk's own event payload, signed with
# the webhook's signing secret.
WEBHOOKS = Endpoint(path="/api/v2/webhooks")
WEBHOOK_SIGNING_SECRET = "/api/v2/webhooks/{webhook_id}/signing_secret"
WEBHOOK_NAME = "Feedback Hub"
WEBHOOK_SUBSCRIPTIONS = (
    "zen:event-type:ticket.created",
    "zen:event-type:ticket.comment_added",
    "zen:event-type:ticket.status_changed",
)
# Pages of the webhook list read while looking for one already sending to the same address.
MAX_WEBHOOK_LIST_PAGES = 20


# -- rate limits and errors --------------------------------------------------------------------------------------------

# Account: `ratelimit-limit/-remaining/-reset` (newer) or `X-Rate-Limit`/`X-Rate-Limit-Remaining` (older, no reset:
# the minute window). Export: `Zendesk-RateLimit-incremental-exports` (and its `-cursor` variant), `total=..;
# remaining=..; resets=..`, the stricter variant deciding.
read_rate_limits = RateLimits(
    HeaderWindow(ACCOUNT_BUCKET, remaining=("ratelimit-remaining", "X-Rate-Limit-Remaining"),
                 limit=("ratelimit-limit", "X-Rate-Limit"), reset=("ratelimit-reset",),
                 default_reset=ACCOUNT_WINDOW_SECONDS),
    StructuredWindow(INCREMENTAL_BUCKET, "zendesk-ratelimit-incremental-exports", ACCOUNT_WINDOW_SECONDS),
)

WRONG_SUBDOMAIN_HINT = "Check the subdomain: for https://acme.zendesk.com it is `acme`."

# Zendesk's several error shapes: {"error": "...", "description": "..."}, {"error": {"title", "message"}} and
# {"errors": [{"title", "detail"}]}.
ERRORS = ErrorTable(
    message_paths=("error.title", "error.message", "error", "description", "errors[].title|detail"),
    detail=" (Zendesk said: {said})",
    rows=[
        ErrorRow(ErrorKind.auth, "Zendesk did not accept the email and API token{detail}", status=401,
                 hint="Check the email of the Zendesk user and the API token (Admin Center → Apps and integrations → "
                 "Zendesk API), and that token access is enabled."),
        ErrorRow(ErrorKind.forbidden, "Zendesk refused the request for this user{detail}", status=403,
                 hint="The incremental ticket export needs an admin's API token; use an admin's email and token."),
        # An unknown subdomain answers with a "help center closed" web page, never with the API's JSON.
        ErrorRow(ErrorKind.wrong_subdomain,
                 "Zendesk has no help desk at this address (the answer was a web page, not the API)",
                 status=404, when=lambda context: not context.is_json, hint=WRONG_SUBDOMAIN_HINT),
        ErrorRow(ErrorKind.not_found, "Zendesk has no such record{detail}", status=404,
                 hint="The ticket or user may have been deleted; if every request fails, check the base URL."),
        ErrorRow(ErrorKind.client, "Zendesk refused the export parameters{detail}", status=422,
                 hint="The export start time must be more than a minute in the past; try the sync again."),
        ErrorRow(ErrorKind.rate_limited, "Zendesk kept rate limiting the requests{detail}", status=429,
                 hint="The ticket export allows 10 requests a minute; wait a minute and sync again."),
        ErrorRow(ErrorKind.server, "Zendesk's servers kept failing{detail}", status=SERVER_ERRORS,
                 hint="Try again later or check https://status.zendesk.com."),
        ErrorRow(ErrorKind.client, "Zendesk refused the request{detail}", status=CLIENT_ERRORS),
    ],
)

# Refusals of the Webhooks API, worded for creating a webhook; anything else as for any Zendesk call.
WEBHOOK_ERRORS = ERRORS.extended(
    ErrorRow(ErrorKind.forbidden, "Zendesk refused to manage webhooks for this user{detail}", status=403,
             hint="Only admins can create webhooks: save an admin's email and API token on the Connections page, or "
             "create the webhook in Admin Center → Apps and integrations → Webhooks."),
    ErrorRow(ErrorKind.client, "Zendesk did not accept the webhook{detail}", status=(400, 422),
             hint="Check the receiver address: a full https:// URL that Zendesk can reach from the internet."),
)


def describe_error(response: httpx.Response) -> SourceError | None:
    """Zendesk's error responses as typed errors a product manager can act on."""
    return ERRORS.describe(response)


def describe_webhook_error(response: httpx.Response) -> SourceError | None:
    """Refusals of the Webhooks API, worded for creating a webhook."""
    return WEBHOOK_ERRORS.describe(response)


def _check_webhook_url(url: str) -> None:
    parsed = httpx.URL(url) if isinstance(url, str) else None
    if parsed is None or parsed.scheme not in ("http", "https") or not parsed.host:
        raise SourceError(
            ErrorKind.config,
            f"{url!r} is not a web address Zendesk can post to",
            source=SOURCE,
            hint="Give the receiver's full public address, e.g. https://feedback-hooks.example.com/webhooks/zendesk.",
        )


# -- configuration -----------------------------------------------------------------------------------------------------

_SUBDOMAIN = re.compile(r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?")


def normalize_subdomain(value: str) -> str:
    """Accept `acme`, `acme.zendesk.com` or `https://acme.zendesk.com/agent` and return `acme`."""
    lowered = value.strip().lower()
    without_scheme = re.sub(r"^[a-z][a-z0-9+.-]*://", "", lowered)
    host, has_path, _ = without_scheme.partition("/")
    is_address = without_scheme != lowered or host.endswith(".zendesk.com")
    subdomain = host.removesuffix(".zendesk.com")
    if (has_path and not is_address) or not _SUBDOMAIN.fullmatch(subdomain):
        raise ConfigError(
            SOURCE,
            ["subdomain"],
            f"{SOURCE}: the subdomain must be the first part of your Zendesk address (for https://acme.zendesk.com "
            "it is `acme`)",
        )
    return subdomain


# Zendesk opened in 2007: a range starting earlier (the sync's "full history") bounds nothing.
ZENDESK_EPOCH = datetime(2007, 1, 1, tzinfo=timezone.utc)


def _covers_every_ticket(start: datetime | None, end: datetime | None, cursor: dict[str, Any] | None) -> bool:
    """Whether a run fetches the whole account, so the account's ticket count is its exact total."""
    return cursor is None and end is None and (start is None or start <= ZENDESK_EPOCH)


def _side_loaded(body: dict[str, Any], key: str) -> list[Any]:
    found = body.get(key)
    return found if isinstance(found, list) else []


# -- the integration ---------------------------------------------------------------------------------------------------


@register
class ZendeskIntegration(BaseIntegration):
    """Zendesk Support tickets through the cursor-based incremental export.

    Cursor: {"after_cursor": str | None, "start_time": int}. `after_cursor` is Zendesk's own and wins when set;
    `start_time` (unix seconds) is where a first export starts and the newest ticket update seen so far.
    """

    name = "zendesk"
    display_name = "Zendesk Support"
    required_fields = ("subdomain", "email", "api_token")
    optional_fields = ("base_url",)
    max_concurrency = 1  # one export stream, read in order

    def __init__(
        self,
        config: dict[str, Any],
        *,
        page_size: int = MAX_PAGE_SIZE,
        wall_clock: Callable[[], float] = time.time,
        **options: Any,
    ):
        super().__init__(config, **options)
        self.subdomain = normalize_subdomain(self.config["subdomain"])
        self.page_size = max(1, min(page_size, MAX_PAGE_SIZE))
        self._wall_clock = wall_clock
        # Tickets the last run did not turn into records, by reason (deleted, malformed, outside the range).
        self.skipped: dict[str, int] = {}
        # Set by register_webhook: the webhook posting to the receiver and its signing secret (never logged).
        self.webhook_id: str | None = None
        self.webhook_secret: str | None = None

    @property
    def base_url(self) -> str:
        template = self.config.get("base_url") or os.environ.get(BASE_URL_ENV) or DEFAULT_BASE_URL
        return template.replace("{subdomain}", self.subdomain).rstrip("/")

    def client(self, errors: ErrorTable = ERRORS) -> HttpClient:
        # Error bodies never echo the token, but a message must not carry it even if one did.
        token = str(self.config["api_token"])
        return self._http_client(
            base_url=self.base_url,
            headers={"Accept": "application/json"},
            auth=httpx.BasicAuth(f"{self.config['email']}/token", token),
            rate_limit_reader=read_rate_limits,
            describe_error=lambda response: errors.describe(response, secrets=(token,)),
        )

    def _describe_error(self, response: httpx.Response) -> SourceError | None:
        return ERRORS.describe(response, secrets=(str(self.config.get("api_token") or ""),))

    async def _connection_probe(self, client: HttpClient) -> tuple[str, dict[str, Any]]:
        try:
            response = await client.request("GET", CURRENT_USER.path, bucket=CURRENT_USER.bucket)
        except SourceError as error:
            if error.status == 404:
                # Every Zendesk account answers /users/me, so a missing one means this is not the account's address.
                raise SourceError(
                    ErrorKind.wrong_subdomain,
                    f"{self.base_url} is not a Zendesk account's API address",
                    status=404,
                    source=self.name,
                    hint=WRONG_SUBDOMAIN_HINT,
                ) from None
            raise
        if 300 <= response.status_code < 400:
            # An unknown subdomain is redirected to Zendesk's marketing site rather than answered.
            raise SourceError(
                ErrorKind.wrong_subdomain,
                f"{self.base_url} redirects elsewhere instead of answering as Zendesk",
                status=response.status_code,
                source=self.name,
            )
        try:
            body = response.json()
        except (json.JSONDecodeError, UnicodeDecodeError):
            raise SourceError(
                ErrorKind.wrong_subdomain,
                f"{self.base_url} answered with a web page, not the Zendesk API",
                status=response.status_code,
                source=self.name,
            ) from None
        user = body.get("user") if isinstance(body, dict) else None
        if not isinstance(user, dict):
            raise SourceError(
                ErrorKind.bad_response,
                f"{self.base_url} answered /users/me without a user",
                status=response.status_code,
                source=self.name,
            )
        role = lower_text(user.get("role"))
        user_id = identifier(user.get("id"), zero_is_none=True)
        if user_id is None or role == "end-user":
            who = "an anonymous visitor" if user_id is None else "an end user"
            raise SourceError(
                ErrorKind.auth,
                f"Zendesk treated these credentials as {who}: the email and API token were not accepted as an "
                "agent or admin",
                status=response.status_code,
                source=self.name,
                hint="Use the email of an agent or admin together with an API token from Admin Center → Apps and "
                "integrations → Zendesk API, and check that token access is enabled.",
            )
        email = text(user.get("email"))
        details = {
            "subdomain": self.subdomain,
            "user_id": user_id,
            "name": text(user.get("name")),
            "email": email,
            "role": role,
        }
        return f"{email or details['name'] or details['user_id']} ({role}) on {self.subdomain}", details

    async def register_webhook(self, url: str) -> bool:
        """Make Zendesk post ticket events (created, comment added, status changed) to `url`; True on success.

        Reuses a Feedback Hub webhook that already posts to `url` (registering twice creates no second one), else
        creates it. Either way its signing secret is read and left in `self.webhook_secret` (and the webhook's id in
        `self.webhook_id`): the caller stores it as the zendesk `webhook_secret` credential so the receiver can
        verify deliveries. The secret is never logged. Raises SourceError with what to do when Zendesk refuses
        (403: not an admin; 400/422: the address or the request was not accepted).
        """
        self.webhook_id = None
        self.webhook_secret = None
        _check_webhook_url(url)
        async with self.webhook_client() as client:
            existing = await self._find_webhook(client, url)
            if existing is not None:
                webhook_id, created = existing, False
            else:
                webhook_id, created = await self._create_webhook(client, url), True
            try:
                secret = await self._signing_secret(client, webhook_id)
            except SourceError:
                if created:
                    # A webhook whose secret we cannot read would only send deliveries the receiver refuses.
                    await self._delete_webhook_quietly(client, webhook_id)
                raise
        self.webhook_id, self.webhook_secret = webhook_id, secret
        logger.info("%s: webhook %s %s for ticket events", self.name, webhook_id, "created" if created else "reused")
        return True

    async def _find_webhook(self, client: HttpClient, url: str) -> str | None:
        params: dict[str, Any] = {"filter[name_contains]": WEBHOOK_NAME, "page[size]": 100}
        for _ in range(MAX_WEBHOOK_LIST_PAGES):
            body = await self._webhook_call(client, "GET", WEBHOOKS.path, params=params)
            webhooks = body.get("webhooks") if isinstance(body, dict) else None
            for webhook in webhooks if isinstance(webhooks, list) else []:
                if (
                    isinstance(webhook, dict)
                    and webhook.get("endpoint") == url
                    and webhook.get("status") == "active"
                    and set(WEBHOOK_SUBSCRIPTIONS) <= set(webhook.get("subscriptions") or [])
                    and text(webhook.get("id"))
                ):
                    return str(webhook["id"]).strip()
            meta = body.get("meta") if isinstance(body, dict) else None
            after = text(meta.get("after_cursor")) if isinstance(meta, dict) and meta.get("has_more") else None
            if after is None:
                return None
            # The next page by its cursor on the same path: credentials never follow a link to another host.
            params = {**params, "page[after]": after}
        return None

    async def _create_webhook(self, client: HttpClient, url: str) -> str:
        payload = {
            "webhook": {
                "name": WEBHOOK_NAME,
                "description": "Ticket events for the Feedback Hub webhook receiver",
                "endpoint": url,
                "http_method": "POST",
                "request_format": "json",
                "status": "active",
                "subscriptions": list(WEBHOOK_SUBSCRIPTIONS),
            }
        }
        body = await self._webhook_call(client, "POST", WEBHOOKS.path, json_body=payload)
        webhook = body.get("webhook") if isinstance(body, dict) else None
        webhook_id = text(webhook.get("id")) if isinstance(webhook, dict) else None
        if webhook_id is None:
            raise SourceError(
                ErrorKind.bad_response, "Zendesk answered the webhook creation without a webhook id", source=self.name
            )
        return webhook_id

    async def _signing_secret(self, client: HttpClient, webhook_id: str) -> str:
        path = WEBHOOK_SIGNING_SECRET.format(webhook_id=webhook_id)
        body = await self._webhook_call(client, "GET", path)
        found = body.get("signing_secret") if isinstance(body, dict) else None
        secret = text(found.get("secret")) if isinstance(found, dict) else None
        if secret is None:
            raise SourceError(
                ErrorKind.bad_response, "Zendesk answered without the webhook's signing secret", source=self.name
            )
        return secret

    async def _delete_webhook_quietly(self, client: HttpClient, webhook_id: str) -> None:
        try:
            await client.request("DELETE", f"{WEBHOOKS.path}/{webhook_id}", bucket=WEBHOOKS.bucket)
        except SourceError as error:
            logger.warning("%s: could not remove webhook %s: %s", self.name, webhook_id, error)

    def webhook_client(self) -> HttpClient:
        """A client for the Webhooks API, whose refusals say what to do about webhooks rather than the export."""
        return self.client(WEBHOOK_ERRORS)

    async def _webhook_call(
        self,
        client: HttpClient,
        method: str,
        path: str,
        *,
        params: Mapping[str, Any] | None = None,
        json_body: Any = None,
    ) -> Any:
        response = await client.request(method, path, params=params, json_body=json_body, bucket=WEBHOOKS.bucket)
        try:
            return response.json()
        except (json.JSONDecodeError, UnicodeDecodeError):
            raise SourceError(
                ErrorKind.bad_response,
                "the Webhooks API did not answer with JSON",
                status=response.status_code,
                source=self.name,
                hint=WRONG_SUBDOMAIN_HINT,
            ) from None

    async def _ticket_count(self, client: HttpClient) -> int | None:
        try:
            body = await client.get_json(TICKET_COUNT.path, params=TICKET_COUNT.params, bucket=TICKET_COUNT.bucket)
        except SourceError as error:
            # A progress hint only: the export itself reports any real problem.
            logger.info("%s: ticket count unavailable: %s", self.name, error)
            return None
        count = body.get("count") if isinstance(body, dict) else None
        value = count.get("value") if isinstance(count, dict) else count
        return value if isinstance(value, int) and not isinstance(value, bool) and value >= 0 else None

    async def iter_pages(
        self,
        start: datetime | None = None,
        end: datetime | None = None,
        cursor: dict[str, Any] | None = None,
    ) -> AsyncIterator[Page]:
        """Pages of tickets created in [start, end), in export order (by update time), resuming after `cursor`."""
        start, end = utc_bound(start), utc_bound(end)
        if cursor is not None:
            position = ExportPosition.from_cursor(cursor)
        else:
            position = ExportPosition(after_cursor=None, start_time=max(0, int(start.timestamp())) if start else 0)

        if position.after_cursor is None and position.start_time > self._wall_clock():
            return  # a position in the future: nothing has changed there yet

        skipped = self.skipped = {"deleted": 0, "malformed": 0, "out_of_range": 0}
        paginator = ExportCursorPaginator(source=self.name, what="the ticket export", cursor=position.after_cursor,
                                          items_key="tickets")
        # A page that leaves the cursor where it was (an empty page, or a stale copy of the last one) is asked
        # again; only an export that never moves on is an error.
        guard = StallGuard(source=self.name, raise_after=MAX_STALLED_PAGES,
                           message="the ticket export returned {stalled} pages in a row without moving its cursor")
        async with self.client() as client:
            vendor_total = await self._ticket_count(client) if _covers_every_ticket(start, end, cursor) else None
            # The next page is asked for as soon as this one names its cursor: the vendor prepares it while this
            # page is mapped. Still one request per page, in order; a sync that stops early cancels it.
            pages = paginate(client, self._export_request(position), paginator, guard=guard, prefetch=True)
            try:
                async for body in pages:
                    records, removals, watermark = self._records_from_page(body, start, end, skipped)
                    position = ExportPosition(
                        after_cursor=paginator.cursor,
                        start_time=max(position.start_time, watermark if watermark is not None else 0),
                    )
                    yield Page(records=records, cursor=position.as_cursor(), vendor_total=vendor_total,
                               removals=removals)
            finally:
                await pages.aclose()
                if any(skipped.values()):
                    logger.info("%s: tickets left out of this run: %s", self.name, skipped)

    def _export_request(self, position: ExportPosition) -> PageRequest:
        params: dict[str, Any] = {**TICKET_EXPORT.params, "per_page": self.page_size}
        if position.after_cursor is None:
            latest_allowed = int(self._wall_clock()) - START_TIME_MARGIN_SECONDS
            params["start_time"] = max(0, min(position.start_time, latest_allowed))
        return PageRequest(TICKET_EXPORT.path, params, bucket=TICKET_EXPORT.bucket)

    def _records_from_page(
        self, body: dict[str, Any], start: datetime | None, end: datetime | None, skipped: dict[str, int]
    ) -> tuple[list[NormalizedRecord], list[Removal], int | None]:
        users_by_id = index_by_id(_side_loaded(body, "users"))
        organizations_by_id = index_by_id(_side_loaded(body, "organizations"))
        records: list[NormalizedRecord] = []
        removals: list[Removal] = []
        watermark: int | None = None
        for ticket in body["tickets"]:
            if isinstance(ticket, dict):
                stamp = ticket_watermark(ticket)
                if stamp is not None:
                    watermark = stamp if watermark is None else max(watermark, stamp)
            if isinstance(ticket, dict) and is_deleted(ticket):
                # Whatever its creation date: a deleted ticket leaves the store even when it is outside the range.
                removal = ticket_removal(ticket)
                if removal is not None:
                    removals.append(removal)
                skipped["deleted"] += 1
                continue
            try:
                record = map_ticket(ticket, users_by_id, subdomain=self.subdomain, rules=self.rules,
                                    organizations_by_id=organizations_by_id)
            except MappingError as error:
                # One broken ticket must not hold the whole export back: the cursor moves past it.
                skipped["malformed"] += 1
                logger.warning("%s: skipped a ticket: %s", self.name, error)
                continue
            if not in_range(record.created_at, start, end):
                skipped["out_of_range"] += 1
                continue
            records.append(record)
        return records, removals, watermark
