"""Zendesk's API as data: where it lives, its endpoints, the export's request, rate-limit headers and error rows."""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

import httpx

from ...integrations.base import ConfigError
from ...integrations.errors import CLIENT_ERRORS, SERVER_ERRORS, ErrorRow, ErrorTable
from ...integrations.http import ErrorKind, SourceError
from ...integrations.paging import PageRequest
from ...integrations.ratelimits import HeaderWindow, RateLimits, StructuredWindow
from .cursor import ExportPosition
from .mapping import SOURCE

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


# -- where the account's API is ----------------------------------------------------------------------------------------

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


def base_url(subdomain: str, configured: str | None = None) -> str:
    """The account's API root: a configured or environment template (an emulator, a proxy) or Zendesk's own."""
    template = configured or os.environ.get(BASE_URL_ENV) or DEFAULT_BASE_URL
    return template.replace("{subdomain}", subdomain).rstrip("/")


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


def export_request(position: ExportPosition, *, page_size: int, now: float) -> PageRequest:
    """The export's first request from `position`: Zendesk's own cursor when there is one, else a start time no
    later than Zendesk accepts (`now` is the wall clock, unix seconds)."""
    params: dict[str, Any] = {**TICKET_EXPORT.params, "per_page": page_size}
    if position.after_cursor is None:
        latest_allowed = int(now) - START_TIME_MARGIN_SECONDS
        params["start_time"] = max(0, min(position.start_time, latest_allowed))
    return PageRequest(TICKET_EXPORT.path, params, bucket=TICKET_EXPORT.bucket)


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
