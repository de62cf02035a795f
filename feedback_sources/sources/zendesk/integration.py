"""Zendesk Support: tickets from the cursor-based incremental export, mapped to normalized records.

The export is Zendesk's bulk-sync endpoint: one request returns up to 1000 tickets changed since a point in time,
with the users they reference side-loaded, and an opaque `after_cursor` that is also where the next sync resumes.
It has its own, much tighter rate limit (10 requests a minute), so it is paced on a bucket of its own.
The export is ordered by update time, so a date range on *created* time is applied here, on the client side.
"""

from __future__ import annotations

import asyncio
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

from ...models import MappingError, NormalizedRecord, Removal, RemovalReason
from ...rules import Rules
from ...integrations.base import BaseIntegration, ConfigError, Page, in_range, parse_iso, register, utc_bound
from ...integrations.http import ErrorKind, HttpClient, SourceError, header_number, utc_from_unix

logger = logging.getLogger("feedback_sources.sources.zendesk")

SOURCE = "zendesk"
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


# -- pure mapping ------------------------------------------------------------------------------------------------------

SEVERITY_BY_PRIORITY: dict[str, str] = {"urgent": "critical", "high": "high", "normal": "medium", "low": "low"}

# Custom user/organization fields that commonly hold the customer's plan, most specific first.
PLAN_FIELD_KEYS: tuple[str, ...] = ("plan", "tier", "subscription")


def _text(value: Any) -> str | None:
    """A stripped, non-empty string, or None for anything else."""
    if isinstance(value, str):
        stripped = value.strip()
        return stripped or None
    return None


def _lower_text(value: Any) -> str | None:
    text = _text(value)
    return text.lower() if text is not None else None


def _identifier(value: Any) -> str | None:
    """A Zendesk id as a string. The export sends integers, event webhooks send strings; "0" means 'none' there."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return str(value) if value != 0 else None
    text = _text(value)
    if text is None or text == "0":
        return None
    return text


def _ticket_id(value: Any) -> str | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return str(value)
    return _text(value)


def _lookup(table: Mapping[Any, Any] | None, key: str | None) -> dict[str, Any]:
    """Find a side-loaded object by id whether the table is keyed by int (the export) or by str."""
    if not table or key is None:
        return {}
    found = table.get(key)
    if found is None and key.isdigit():
        found = table.get(int(key))
    return found if isinstance(found, dict) else {}


def parse_moment(value: Any) -> datetime | None:
    """A UTC datetime from an ISO 8601 string or unix seconds; None when absent or unreadable."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        try:
            return utc_from_unix(value)
        except (OverflowError, OSError, ValueError):
            return None
    if isinstance(value, str):
        return parse_iso(value.strip())
    return None


def _tags(value: Any) -> list[str]:
    if not isinstance(value, list):
        return []
    return [tag.strip() for tag in value if isinstance(tag, str) and tag.strip()]


def _plan_candidates(user: Mapping[str, Any], organization: Mapping[str, Any]) -> list[tuple[str, str | None]]:
    candidates: list[tuple[str, str | None]] = []
    for owner, fields in (
        ("requester", user.get("user_fields")),
        ("organization", organization.get("organization_fields")),
    ):
        if isinstance(fields, dict):
            for key in PLAN_FIELD_KEYS:
                value = fields.get(key)
                if isinstance(value, str) and value.strip():
                    candidates.append((f"{owner} {key}", value.strip()))
    # Last resort: organizations are often named after the plan tier they bought ("Acme — Enterprise").
    organization_name = _text(organization.get("name"))
    if organization_name:
        candidates.append(("organization name", organization_name))
    return candidates


def ticket_url(subdomain: str, ticket_id: str) -> str:
    """The ticket in Zendesk's agent UI."""
    return f"https://{subdomain}.zendesk.com/agent/tickets/{ticket_id}"


def is_deleted(ticket: Mapping[str, Any]) -> bool:
    """Deleted tickets are not feedback; the sync and the webhook receiver both skip them."""
    return _lower_text(ticket.get("status")) == "deleted"


def map_ticket(
    ticket: dict[str, Any],
    users_by_id: Mapping[Any, dict[str, Any]],
    *,
    subdomain: str,
    rules: Rules,
    organizations_by_id: Mapping[Any, dict[str, Any]] | None = None,
) -> NormalizedRecord:
    """Map one Zendesk ticket (an export row, or the `detail` of a ticket event webhook) to a record.

    `users_by_id` and `organizations_by_id` are the side-loaded users and organizations keyed by id; the requester's
    name, email and plan come from them and are None when the requester was not side-loaded.
    Raises MappingError when the ticket has no usable id or no readable creation time. Pure: no I/O.
    """
    if not isinstance(ticket, Mapping):
        raise MappingError(SOURCE, f"a ticket must be a JSON object, not {type(ticket).__name__}")
    ticket_id = _ticket_id(ticket.get("id"))
    if ticket_id is None:
        raise MappingError(SOURCE, "ticket without an id")

    created_at = parse_moment(ticket.get("created_at"))
    updated_at = parse_moment(ticket.get("updated_at"))
    if created_at is None:
        # A webhook may carry only the update time; it still places the ticket in time.
        created_at = updated_at
    if created_at is None:
        raise MappingError(SOURCE, f"ticket {ticket_id} has no readable created_at")
    if updated_at is None:
        updated_at = created_at

    title = _text(ticket.get("subject")) or _text(ticket.get("raw_subject"))
    # `description` is the first comment's plain text (its HTML is the comment's `html_body`): customers type `<`,
    # `&`, `<b>` and `=` in it, and all of it is theirs. Stored verbatim; showing it inert is the renderer's job.
    description = ticket.get("description")
    content = description if isinstance(description, str) else ""

    requester_id = _identifier(ticket.get("requester_id"))
    requester = _lookup(users_by_id, requester_id)
    organization_id = _identifier(ticket.get("organization_id")) or _identifier(requester.get("organization_id"))
    organization = _lookup(organizations_by_id, organization_id)

    priority = _lower_text(ticket.get("priority"))
    ticket_type = _lower_text(ticket.get("type"))
    tags = _tags(ticket.get("tags"))
    via = ticket.get("via")
    via_channel = _text(via.get("channel")) if isinstance(via, dict) else None
    rating = ticket.get("satisfaction_rating")
    rating = rating if isinstance(rating, dict) else {}

    category = rules.categorize(tags=tags, vendor_type=ticket_type, text=f"{title or ''}\n{content}")
    tier = rules.tier(*_plan_candidates(requester, organization))

    try:
        return NormalizedRecord(
            source=SOURCE,
            source_id=ticket_id,
            title=title,
            content=content,
            customer_id=requester_id,
            customer_email=_text(requester.get("email")),
            customer_name=_text(requester.get("name")),
            customer_tier=tier.value,
            category=category.value,
            created_at=created_at,
            metadata={
                "status": _lower_text(ticket.get("status")),
                "priority": priority,
                "severity": SEVERITY_BY_PRIORITY.get(priority) if priority else None,
                "type": ticket_type,
                "via_channel": via_channel,
                "tags": tags,
                "url": ticket_url(subdomain, ticket_id),
                "updated_at": updated_at.isoformat(),
                "requester_id": requester_id,
                "organization_id": organization_id,
                "organization_name": _text(organization.get("name")),
                "satisfaction": _lower_text(rating.get("score")),
                "satisfaction_comment": _text(rating.get("comment")),
                "category_reason": category.reason,
                "tier_reason": tier.reason,
            },
        )
    except ValueError as error:  # pydantic's ValidationError is a ValueError
        raise MappingError(SOURCE, f"ticket {ticket_id} could not be normalized: {error}") from error


def ticket_removal(ticket: Mapping[str, Any], *, reason: RemovalReason = RemovalReason.deleted,
                   at: datetime | None = None) -> Removal | None:
    """The removal a deleted ticket stands for (None when the ticket has no usable id or time). Pure.

    The export lists a deleted or spam ticket with status "deleted" and its deletion as the last update, so that
    update time is when it was removed; an event's own time is passed as `at`."""
    ticket_id = _ticket_id(ticket.get("id"))
    when = at or parse_moment(ticket.get("updated_at")) or parse_moment(ticket.get("created_at"))
    if ticket_id is None or when is None:
        return None
    return Removal(source=SOURCE, source_id=ticket_id, reason=reason, removed_at=when)


def index_by_id(items: Any) -> dict[int | str, dict[str, Any]]:
    """Side-loaded objects (`users`, `organizations`) keyed by id; malformed entries are ignored."""
    table: dict[int | str, dict[str, Any]] = {}
    if not isinstance(items, list):
        return table
    for item in items:
        if isinstance(item, dict):
            key = item.get("id")
            if isinstance(key, int | str) and not isinstance(key, bool):
                table[key] = item
    return table


# -- rate limits and errors --------------------------------------------------------------------------------------------

_LIMIT_FIELD = re.compile(r"\s*([a-zA-Z_]+)\s*=\s*(-?\d+(?:\.\d+)?)\s*")


def parse_limit_header(value: str) -> dict[str, float]:
    """`total=10; remaining=9; resets=42` → {"total": 10.0, "remaining": 9.0, "resets": 42.0}."""
    fields: dict[str, float] = {}
    for part in value.split(";"):
        match = _LIMIT_FIELD.fullmatch(part)
        if match:
            fields[match.group(1).lower()] = float(match.group(2))
    return fields


def read_rate_limits(response: httpx.Response, wall_now: float) -> list[tuple[str, int | None, int, float]]:
    """The account bucket and the incremental-export bucket, from whichever headers the response carries.

    Account: `ratelimit-limit/-remaining/-reset` (newer) or `X-Rate-Limit`/`X-Rate-Limit-Remaining` (older, no
    reset: assume the minute window). Export: `Zendesk-RateLimit-incremental-exports` (and its `-cursor` variant)
    with `total=..; remaining=..; resets=..`.
    """
    headers = response.headers
    windows: list[tuple[str, int | None, int, float]] = []

    remaining = header_number(headers, "ratelimit-remaining")
    if remaining is None:
        remaining = header_number(headers, "X-Rate-Limit-Remaining")
    if remaining is not None:
        limit = header_number(headers, "ratelimit-limit")
        if limit is None:
            limit = header_number(headers, "X-Rate-Limit")
        reset = header_number(headers, "ratelimit-reset")
        windows.append(
            (
                ACCOUNT_BUCKET,
                int(limit) if limit is not None else None,
                max(0, int(remaining)),
                max(0.0, reset) if reset is not None else ACCOUNT_WINDOW_SECONDS,
            )
        )

    export_windows = []
    for name, value in headers.items():
        if name.lower().startswith("zendesk-ratelimit-incremental-exports"):
            fields = parse_limit_header(value)
            if "remaining" in fields:
                export_windows.append(
                    (
                        INCREMENTAL_BUCKET,
                        int(fields["total"]) if "total" in fields else None,
                        max(0, int(fields["remaining"])),
                        max(0.0, fields.get("resets", ACCOUNT_WINDOW_SECONDS)),
                    )
                )
    if export_windows:
        # Two variants may both be present; the stricter one decides.
        windows.append(min(export_windows, key=lambda window: window[2]))
    return windows


def _vendor_message(response: httpx.Response) -> str:
    """A short human message from Zendesk's several error shapes, or '' when the body says nothing useful."""
    try:
        body = response.json()
    except (json.JSONDecodeError, UnicodeDecodeError):
        return ""
    if not isinstance(body, dict):
        return ""
    error = body.get("error")
    description = body.get("description")
    if isinstance(error, dict):
        parts = [error.get("title"), error.get("message")]
    else:
        parts = [error, description]
    errors = body.get("errors")
    if isinstance(errors, list):
        for item in errors[:3]:
            if isinstance(item, dict):
                parts.extend([item.get("title"), item.get("detail")])
    texts = [part.strip() for part in parts if isinstance(part, str) and part.strip()]
    return ": ".join(dict.fromkeys(texts))[:300]


def _is_json(response: httpx.Response) -> bool:
    try:
        response.json()
    except (json.JSONDecodeError, UnicodeDecodeError):
        return False
    return True


WRONG_SUBDOMAIN_HINT = "Check the subdomain: for https://acme.zendesk.com it is `acme`."


def describe_error(response: httpx.Response) -> SourceError | None:
    """Zendesk's error responses as typed errors a product manager can act on."""
    status = response.status_code
    said = _vendor_message(response)
    detail = f" (Zendesk said: {said})" if said else ""
    if status == 401:
        return SourceError(
            ErrorKind.auth,
            f"Zendesk did not accept the email and API token{detail}",
            status=status,
            hint="Check the email of the Zendesk user and the API token (Admin Center → Apps and integrations → "
            "Zendesk API), and that token access is enabled.",
        )
    if status == 403:
        return SourceError(
            ErrorKind.forbidden,
            f"Zendesk refused the request for this user{detail}",
            status=status,
            hint="The incremental ticket export needs an admin's API token; use an admin's email and token.",
        )
    if status == 404 and not _is_json(response):
        # An unknown subdomain answers with a "help center closed" web page, never with the API's JSON.
        return SourceError(
            ErrorKind.wrong_subdomain,
            "Zendesk has no help desk at this address (the answer was a web page, not the API)",
            status=status,
            hint=WRONG_SUBDOMAIN_HINT,
        )
    if status == 404:
        return SourceError(
            ErrorKind.not_found,
            f"Zendesk has no such record{detail}",
            status=status,
            hint="The ticket or user may have been deleted; if every request fails, check the base URL.",
        )
    if status == 422:
        return SourceError(
            ErrorKind.client,
            f"Zendesk refused the export parameters{detail}",
            status=status,
            hint="The export start time must be more than a minute in the past; try the sync again.",
        )
    if status == 429:
        return SourceError(
            ErrorKind.rate_limited,
            f"Zendesk kept rate limiting the requests{detail}",
            status=status,
            hint="The ticket export allows 10 requests a minute; wait a minute and sync again.",
        )
    if status >= 500:
        return SourceError(
            ErrorKind.server,
            f"Zendesk's servers kept failing{detail}",
            status=status,
            hint="Try again later or check https://status.zendesk.com.",
        )
    if 400 <= status < 500:
        return SourceError(ErrorKind.client, f"Zendesk refused the request{detail}", status=status)
    return None


def _check_webhook_url(url: str) -> None:
    parsed = httpx.URL(url) if isinstance(url, str) else None
    if parsed is None or parsed.scheme not in ("http", "https") or not parsed.host:
        raise SourceError(
            ErrorKind.config,
            f"{url!r} is not a web address Zendesk can post to",
            source=SOURCE,
            hint="Give the receiver's full public address, e.g. https://feedback-hooks.example.com/webhooks/zendesk.",
        )


def describe_webhook_error(response: httpx.Response) -> SourceError | None:
    """Refusals of the Webhooks API, worded for creating a webhook; anything else as for any Zendesk call."""
    status = response.status_code
    said = _vendor_message(response)
    detail = f" (Zendesk said: {said})" if said else ""
    if status == 403:
        return SourceError(
            ErrorKind.forbidden,
            f"Zendesk refused to manage webhooks for this user{detail}",
            status=status,
            hint="Only admins can create webhooks: save an admin's email and API token on the Connections page, or "
            "create the webhook in Admin Center → Apps and integrations → Webhooks.",
        )
    if status in (400, 422):
        return SourceError(
            ErrorKind.client,
            f"Zendesk did not accept the webhook{detail}",
            status=status,
            hint="Check the receiver address: a full https:// URL that Zendesk can reach from the internet.",
        )
    return describe_error(response)


# -- configuration -----------------------------------------------------------------------------------------------------

_SUBDOMAIN = re.compile(r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?")


def normalize_subdomain(value: str) -> str:
    """Accept `acme`, `acme.zendesk.com` or `https://acme.zendesk.com/agent` and return `acme`."""
    text = value.strip().lower()
    without_scheme = re.sub(r"^[a-z][a-z0-9+.-]*://", "", text)
    host, has_path, _ = without_scheme.partition("/")
    is_address = without_scheme != text or host.endswith(".zendesk.com")
    text = host.removesuffix(".zendesk.com")
    if (has_path and not is_address) or not _SUBDOMAIN.fullmatch(text):
        raise ConfigError(
            SOURCE,
            ["subdomain"],
            f"{SOURCE}: the subdomain must be the first part of your Zendesk address (for https://acme.zendesk.com "
            "it is `acme`)",
        )
    return text


# -- the export cursor -------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ExportPosition:
    """Where the export resumes: Zendesk's opaque cursor when we have one, else a unix start time.

    `start_time` is also a watermark (the newest ticket update seen), so a position without a cursor still
    resumes at the right time; tickets tied with it come again, which the store dedupes.
    """

    after_cursor: str | None
    start_time: int

    def as_cursor(self) -> dict[str, Any]:
        return {"after_cursor": self.after_cursor, "start_time": self.start_time}

    @classmethod
    def from_cursor(cls, cursor: Any) -> ExportPosition:
        problem = None
        if not isinstance(cursor, Mapping):
            problem = f"expected an object, got {type(cursor).__name__}"
        elif "after_cursor" not in cursor or "start_time" not in cursor:
            problem = f"expected keys after_cursor and start_time, got {sorted(map(str, cursor))}"
        else:
            after_cursor, start_time = cursor["after_cursor"], cursor["start_time"]
            if not (after_cursor is None or (isinstance(after_cursor, str) and after_cursor)):
                problem = "after_cursor must be a non-empty string or null"
            elif isinstance(start_time, bool) or not isinstance(start_time, int) or start_time < 0:
                problem = "start_time must be a non-negative integer (unix seconds)"
        if problem:
            raise SourceError(
                ErrorKind.client,
                f"the saved Zendesk sync position is corrupted ({problem}); reset it to run a full sync",
                source=SOURCE,
            )
        return cls(after_cursor=cursor["after_cursor"], start_time=cursor["start_time"])


# Zendesk opened in 2007: a range starting earlier (the sync's "full history") bounds nothing.
ZENDESK_EPOCH = datetime(2007, 1, 1, tzinfo=timezone.utc)


def _covers_every_ticket(start: datetime | None, end: datetime | None, cursor: dict[str, Any] | None) -> bool:
    """Whether a run fetches the whole account, so the account's ticket count is its exact total."""
    return cursor is None and end is None and (start is None or start <= ZENDESK_EPOCH)


def _ticket_watermark(ticket: Mapping[str, Any]) -> int | None:
    """When the export last saw this ticket change: `generated_timestamp`, else `updated_at`."""
    stamp = ticket.get("generated_timestamp")
    if isinstance(stamp, int) and not isinstance(stamp, bool) and stamp >= 0:
        return stamp
    moment = parse_moment(ticket.get("updated_at"))
    return int(moment.timestamp()) if moment is not None and moment.timestamp() >= 0 else None


def _export_body(body: Any) -> tuple[list[Any], list[Any], list[Any], str | None, bool]:
    """Validate one export page: (tickets, users, organizations, after_cursor, end_of_stream)."""

    def bad(reason: str) -> SourceError:
        return SourceError(
            ErrorKind.bad_response, f"the ticket export answered an unexpected page ({reason})", source=SOURCE
        )

    if not isinstance(body, dict):
        raise bad("not a JSON object")
    tickets = body.get("tickets")
    if not isinstance(tickets, list):
        raise bad("no `tickets` list")
    end_of_stream = body.get("end_of_stream")
    if not isinstance(end_of_stream, bool):
        raise bad("no `end_of_stream` flag")
    after_cursor = body.get("after_cursor")
    if after_cursor is not None and not (isinstance(after_cursor, str) and after_cursor):
        raise bad("`after_cursor` is not a string")
    users = body.get("users") if isinstance(body.get("users"), list) else []
    organizations = body.get("organizations") if isinstance(body.get("organizations"), list) else []
    return tickets, users, organizations, after_cursor, end_of_stream


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

    def client(self) -> HttpClient:
        return self._http_client(
            base_url=self.base_url,
            headers={"Accept": "application/json"},
            auth=httpx.BasicAuth(f"{self.config['email']}/token", str(self.config["api_token"])),
            rate_limit_reader=read_rate_limits,
            describe_error=self._describe_error,
        )

    def _describe_error(self, response: httpx.Response) -> SourceError | None:
        return self._redacted(describe_error(response))

    def _redacted(self, error: SourceError | None) -> SourceError | None:
        if error is not None:
            # Error bodies never echo the token, but a message must not carry it even if one did.
            token = str(self.config.get("api_token") or "")
            if token and token in error.message:
                error.message = error.message.replace(token, "[redacted]")
        return error

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
        role = _lower_text(user.get("role"))
        if _identifier(user.get("id")) is None or role == "end-user":
            who = "an anonymous visitor" if _identifier(user.get("id")) is None else "an end user"
            raise SourceError(
                ErrorKind.auth,
                f"Zendesk treated these credentials as {who}: the email and API token were not accepted as an "
                "agent or admin",
                status=response.status_code,
                source=self.name,
                hint="Use the email of an agent or admin together with an API token from Admin Center → Apps and "
                "integrations → Zendesk API, and check that token access is enabled.",
            )
        email = _text(user.get("email"))
        details = {
            "subdomain": self.subdomain,
            "user_id": _identifier(user.get("id")),
            "name": _text(user.get("name")),
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
                    and _text(webhook.get("id"))
                ):
                    return str(webhook["id"]).strip()
            meta = body.get("meta") if isinstance(body, dict) else None
            after = _text(meta.get("after_cursor")) if isinstance(meta, dict) and meta.get("has_more") else None
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
        webhook_id = _text(webhook.get("id")) if isinstance(webhook, dict) else None
        if webhook_id is None:
            raise SourceError(
                ErrorKind.bad_response, "Zendesk answered the webhook creation without a webhook id", source=self.name
            )
        return webhook_id

    async def _signing_secret(self, client: HttpClient, webhook_id: str) -> str:
        path = WEBHOOK_SIGNING_SECRET.format(webhook_id=webhook_id)
        body = await self._webhook_call(client, "GET", path)
        found = body.get("signing_secret") if isinstance(body, dict) else None
        secret = _text(found.get("secret")) if isinstance(found, dict) else None
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
        return self._http_client(
            base_url=self.base_url,
            headers={"Accept": "application/json"},
            auth=httpx.BasicAuth(f"{self.config['email']}/token", str(self.config["api_token"])),
            rate_limit_reader=read_rate_limits,
            describe_error=lambda response: self._redacted(describe_webhook_error(response)),
        )

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

        now = self._wall_clock()
        if position.after_cursor is None and position.start_time > now:
            return  # a position in the future: nothing has changed there yet

        skipped = self.skipped = {"deleted": 0, "malformed": 0, "out_of_range": 0}
        async with self.client() as client:
            vendor_total = await self._ticket_count(client) if _covers_every_ticket(start, end, cursor) else None
            stalled = 0
            # The next page, asked for as soon as this one names its cursor: the vendor prepares it while this page
            # is mapped. Still one request per page, in order; a sync that stops early cancels it.
            following: asyncio.Task[Any] | None = None
            try:
                while True:
                    if following is not None:
                        body, following = await following, None
                    else:
                        body = await client.get_json(TICKET_EXPORT.path, params=self._export_params(position),
                                                     bucket=TICKET_EXPORT.bucket)
                    tickets, users, organizations, after_cursor, end_of_stream = _export_body(body)
                    if not end_of_stream and after_cursor is None:
                        raise SourceError(
                            ErrorKind.bad_response,
                            "the ticket export said more pages follow but gave no cursor to fetch them",
                            source=self.name,
                        )
                    next_cursor = after_cursor or position.after_cursor
                    if not end_of_stream and next_cursor is not None:
                        following = asyncio.ensure_future(client.get_json(
                            TICKET_EXPORT.path, params=self._export_params(ExportPosition(next_cursor, 0)),
                            bucket=TICKET_EXPORT.bucket,
                        ))

                    records, removals, watermark = self._records_from_page(
                        tickets, users, organizations, start, end, skipped
                    )
                    next_position = ExportPosition(
                        after_cursor=after_cursor or position.after_cursor,
                        start_time=max(position.start_time, watermark if watermark is not None else 0),
                    )
                    yield Page(
                        records=records, cursor=next_position.as_cursor(), vendor_total=vendor_total, removals=removals
                    )
                    if end_of_stream:
                        return

                    # A page that leaves the cursor where it was (an empty page, or a stale copy of the last one)
                    # is asked again; only an export that never moves on is an error.
                    stalled = stalled + 1 if next_position.after_cursor == position.after_cursor else 0
                    if stalled >= MAX_STALLED_PAGES:
                        raise SourceError(
                            ErrorKind.bad_response,
                            f"the ticket export returned {stalled} pages in a row without moving its cursor",
                            source=self.name,
                        )
                    position = next_position
            finally:
                if following is not None:
                    following.cancel()
                    await asyncio.gather(following, return_exceptions=True)
                if any(skipped.values()):
                    logger.info("%s: tickets left out of this run: %s", self.name, skipped)

    def _export_params(self, position: ExportPosition) -> dict[str, Any]:
        params: dict[str, Any] = {**TICKET_EXPORT.params, "per_page": self.page_size}
        if position.after_cursor is not None:
            params["cursor"] = position.after_cursor
        else:
            latest_allowed = int(self._wall_clock()) - START_TIME_MARGIN_SECONDS
            params["start_time"] = max(0, min(position.start_time, latest_allowed))
        return params

    def _records_from_page(
        self,
        tickets: list[Any],
        users: list[Any],
        organizations: list[Any],
        start: datetime | None,
        end: datetime | None,
        skipped: dict[str, int],
    ) -> tuple[list[NormalizedRecord], list[Removal], int | None]:
        users_by_id = index_by_id(users)
        organizations_by_id = index_by_id(organizations)
        records: list[NormalizedRecord] = []
        removals: list[Removal] = []
        watermark: int | None = None
        for ticket in tickets:
            if isinstance(ticket, dict):
                stamp = _ticket_watermark(ticket)
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
                record = map_ticket(
                    ticket,
                    users_by_id,
                    subdomain=self.subdomain,
                    rules=self.rules,
                    organizations_by_id=organizations_by_id,
                )
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

