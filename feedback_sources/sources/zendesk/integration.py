"""Zendesk Support: tickets from the cursor-based incremental export, mapped to normalized records.

The export is Zendesk's bulk-sync endpoint: one request returns up to 1000 tickets changed since a point in time,
with the users they reference side-loaded, and an opaque `after_cursor` that is also where the next sync resumes.
It has its own, much tighter rate limit (10 requests a minute), so it is paced on a bucket of its own.
The export is ordered by update time, so a date range on *created* time is applied here, on the client side.

This module is the sync flow. Zendesk's API as data (endpoints, rate-limit headers, error rows) is in `api.py`, the
connection test's diagnosis and the webhook's registration in `registration.py`, mapping in `mapping.py`, the
stored cursor in `cursor.py`; paging, pacing and errors are the kit's.
"""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncIterator, Callable
from datetime import datetime, timezone
from typing import Any

import httpx

from ...integrations.base import BaseIntegration, Page, in_range, register, utc_bound
from ...integrations.coerce import as_list, integer
from ...integrations.errors import ErrorTable
from ...integrations.http import HttpClient, SourceError
from ...integrations.paging import ExportCursorPaginator, StallGuard, paginate
from ...models import MappingError, NormalizedRecord, Removal
from .api import (
    ERRORS,
    MAX_PAGE_SIZE,
    MAX_STALLED_PAGES,
    TICKET_COUNT,
    WEBHOOK_ERRORS,
    base_url,
    export_request,
    normalize_subdomain,
    read_rate_limits,
)
from .cursor import ExportPosition
from .mapping import index_by_id, is_deleted, map_ticket, ticket_removal, ticket_watermark
from .registration import check_webhook_url, ensure_webhook, probe_account

logger = logging.getLogger("feedback_sources.sources.zendesk")

# Zendesk opened in 2007: a range starting earlier (the sync's "full history") bounds nothing.
ZENDESK_EPOCH = datetime(2007, 1, 1, tzinfo=timezone.utc)


def _covers_every_ticket(start: datetime | None, end: datetime | None, cursor: dict[str, Any] | None) -> bool:
    """Whether a run fetches the whole account, so the account's ticket count is its exact total."""
    return cursor is None and end is None and (start is None or start <= ZENDESK_EPOCH)


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
        return base_url(self.subdomain, self.config.get("base_url"))

    def client(self, errors: ErrorTable = ERRORS) -> HttpClient:
        return self._http_client(
            base_url=self.base_url,
            headers={"Accept": "application/json"},
            auth=httpx.BasicAuth(f"{self.config['email']}/token", str(self.config["api_token"])),
            rate_limit_reader=read_rate_limits,
            describe_error=lambda response: self._describe_error(response, errors),
        )

    def _describe_error(self, response: httpx.Response, errors: ErrorTable = ERRORS) -> SourceError | None:
        # Error bodies never echo the token, but a message must not carry it even if one did.
        return errors.describe(response, secrets=(str(self.config.get("api_token") or ""),))

    def webhook_client(self) -> HttpClient:
        """A client for the Webhooks API, whose refusals say what to do about webhooks rather than the export."""
        return self.client(WEBHOOK_ERRORS)

    async def _connection_probe(self, client: HttpClient) -> tuple[str, dict[str, Any]]:
        return await probe_account(client, base_url=self.base_url, subdomain=self.subdomain)

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
        check_webhook_url(url)
        async with self.webhook_client() as client:
            self.webhook_id, self.webhook_secret = await ensure_webhook(client, url)
        return True

    async def _ticket_count(self, client: HttpClient) -> int | None:
        try:
            body = await client.get_json(TICKET_COUNT.path, params=TICKET_COUNT.params, bucket=TICKET_COUNT.bucket)
        except SourceError as error:
            # A progress hint only: the export itself reports any real problem.
            logger.info("%s: ticket count unavailable: %s", self.name, error)
            return None
        count = body.get("count") if isinstance(body, dict) else None
        return integer(count.get("value") if isinstance(count, dict) else count, minimum=0)

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
            request = export_request(position, page_size=self.page_size, now=self._wall_clock())
            pages = paginate(client, request, paginator, guard=guard, prefetch=True)
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

    def _records_from_page(
        self, body: dict[str, Any], start: datetime | None, end: datetime | None, skipped: dict[str, int]
    ) -> tuple[list[NormalizedRecord], list[Removal], int | None]:
        users_by_id = index_by_id(as_list(body.get("users")))
        organizations_by_id = index_by_id(as_list(body.get("organizations")))
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
