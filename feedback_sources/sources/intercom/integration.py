"""Intercom: conversations become feedback records.

A sync searches conversations by `updated_at` (oldest change first), then fetches each conversation's full thread and
its first contact, because search results carry neither the conversation parts nor the contact's plan. Contacts are
kept across runs (`contacts.py`): one customer usually has many conversations, and few contacts change between
syncs. The pure transforms are in `mapping.py` (shared with the webhook receiver), the cursor in `cursor.py`.
"""

from __future__ import annotations

import asyncio
import logging
import math
import os
import time
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from datetime import datetime, timezone
from typing import Any

import httpx

from ...integrations.base import BaseIntegration, ConfigError, Page, WebhookSetupRequired, in_range, register, utc_bound
from ...integrations.coerce import as_dict, as_list, identifier, integer, text
from ...integrations.http import ErrorKind, HttpClient, SourceError
from ...integrations.paging import BodyCursorPaginator, PageRequest, StallGuard
from ...models import MappingError, Removal, RemovalReason
from .api import (  # noqa: F401  (ENDPOINTS, describe_error, read_rate_limits: re-exported for callers and tests)
    BASE_URL_ENV, CONTACT, CONVERSATION, ENDPOINTS, ERRORS, INTERCOM_VERSION, MAX_PAGE_SIZE, MAX_STALE_PAGES, ME,
    REGION_BASE_URLS, SEARCH_CONVERSATIONS, WEBHOOK_TOPICS, describe_error, intercom_webhook_steps,
    read_rate_limits, search_body,
)
from .contacts import ContactBook, ContactCache, MemoryContactCache, StoreContactCache, fetch_contact
from .cursor import SearchCursor
from .mapping import SOURCE, created_in_range, first_contact_id, map_conversation
from .parts import _seconds
from .mapping import (  # noqa: F401  (re-exported: callers of the previous single module import them from here)
    DELETED_TOPIC, REDACTED_TOPIC, conversation_removal, map_notification, merge_delivered,
)

logger = logging.getLogger("feedback_sources.intercom")

# -- the integration ----------------------------------------------------------------------------------------------


@register
class IntercomIntegration(BaseIntegration):
    """Conversations from one Intercom workspace, through the conversation search sorted by `updated_at`.

    Cursor: {"updated_after": int, "updated_before": int | None, "starting_after": str | None, "high_water": int}
    (unix seconds). Mid-run cursors repeat the run's query window and Intercom's page cursor; the last page's cursor
    has no upper bound or page cursor and starts one second below `high_water`, the newest change seen.
    """

    name = "intercom"
    display_name = "Intercom"
    required_fields = ("access_token",)
    optional_fields = ("region", "base_url")
    # Each search page fans out into one call per conversation (plus uncached contacts); the per-app limit is
    # thousands a minute, so a handful in flight keeps a sync fast without bursting it.
    max_concurrency = 8

    def __init__(
        self,
        config: dict[str, Any],
        *,
        wall_clock: Callable[[], float] = time.time,
        page_size: int = MAX_PAGE_SIZE,
        contact_cache: ContactCache | None = None,
        **options: Any,
    ):
        super().__init__(config, **options)
        self.page_size = max(1, min(page_size, MAX_PAGE_SIZE))
        region = self.config.get("region") or "us"
        if not isinstance(region, str) or region.lower() not in REGION_BASE_URLS:
            raise ConfigError(
                self.name, ["region"], f"{self.name}: region must be one of {', '.join(REGION_BASE_URLS)}"
            )
        self.region = region.lower()
        self._wall_clock = wall_clock
        # The workspace's id_code, learned from GET /me; it is part of every inbox link.
        self.app_id: str | None = None
        # Contacts kept between runs: the store's table once the sync attaches the store, else this object's.
        self.contact_cache: ContactCache = contact_cache if contact_cache is not None else MemoryContactCache()

    def attach_store(self, store: Any) -> None:
        """Keep contacts in `store` from now on (the sync calls this before the first page)."""
        self.contact_cache = StoreContactCache(store)

    @property
    def base_url(self) -> str:
        return self.config.get("base_url") or os.environ.get(BASE_URL_ENV) or REGION_BASE_URLS[self.region]

    def client(self) -> HttpClient:
        return self._http_client(
            base_url=self.base_url,
            headers={
                "Authorization": f"Bearer {self.config['access_token']}",
                "Accept": "application/json",
                "Intercom-Version": INTERCOM_VERSION,
            },
            rate_limit_reader=read_rate_limits,
            describe_error=self._describe_error,
        )

    def _describe_error(self, response: httpx.Response) -> SourceError | None:
        # Intercom's error messages do not echo the token, but a message must never carry it even if one did.
        return ERRORS.describe(response, secrets=(str(self.config.get("access_token") or ""),))

    async def _read_me(self, client: HttpClient) -> dict[str, Any]:
        """GET /me, remembering the workspace's id_code for inbox links."""
        me = await client.get_json(ME.url(), bucket=ME.bucket)
        if not isinstance(me, dict) or not isinstance(me.get("app"), dict):
            raise SourceError(ErrorKind.bad_response, "the server did not answer GET /me like Intercom's API",
                              hint="Check the region and the base URL.", source=self.name)
        self.app_id = identifier(me["app"].get("id_code"))
        return me

    async def _connection_probe(self, client: HttpClient) -> tuple[str, dict[str, Any]]:
        me = await self._read_me(client)
        # /me answers for any valid token; a one-item search and its contact prove the permissions a sync needs,
        # so a token without them fails here with the permission's name instead of halfway through a sync.
        found = as_dict(await client.get_json(
            SEARCH_CONVERSATIONS.url(),
            method=SEARCH_CONVERSATIONS.method,
            json_body=search_body(0, math.floor(self._wall_clock()) + 1, None, per_page=1),
            bucket=SEARCH_CONVERSATIONS.bucket,
        ))
        sample = next((item for item in as_list(found.get("conversations")) if isinstance(item, dict)), {})
        contact_id = first_contact_id(sample)
        if contact_id is not None:
            await fetch_contact(client, contact_id, bucket=CONTACT.bucket)
        app = me["app"]
        app_name, admin_email = text(app.get("name")), text(me.get("email"))
        if app_name and admin_email:
            account = f"{app_name} ({admin_email})"
        else:
            account = app_name or admin_email or "an Intercom workspace"
        details = {
            "app_id": self.app_id,
            "app_name": app_name,
            "region": text(app.get("region")),
            "admin_email": admin_email,
            "conversations": integer(found.get("total_count")),
        }
        return account, details

    async def _learn_app_id(self, client: HttpClient) -> None:
        try:
            await self._read_me(client)
        except SourceError as error:
            # Links are a convenience; a token that cannot read /me may still read conversations.
            if error.kind not in (ErrorKind.forbidden, ErrorKind.not_found, ErrorKind.bad_response):
                raise
            logger.warning("intercom: could not read the workspace id, records will have no inbox link: %s", error)

    async def iter_pages(
        self,
        start: datetime | None = None,
        end: datetime | None = None,
        cursor: dict[str, Any] | None = None,
    ) -> AsyncIterator[Page]:
        start, end = utc_bound(start), utc_bound(end)
        position = SearchCursor.parse(cursor) if cursor is not None else None
        if position is None:
            # A conversation is updated no earlier than it is created, so changes since `start` cover it.
            floor = max(0, math.floor(start.timestamp()) - 1) if start is not None else 0
            position = SearchCursor(floor, None, None, floor)
        # The upper bound is "now", fixed for the whole run (and stored in mid-run cursors so a resumed run asks the
        # same question). It is not `end`: a conversation created before `end` may be updated after it.
        updated_before = position.updated_before
        if updated_before is None:
            updated_before = math.floor(self._wall_clock())
        skipped: Counter[str] = Counter()
        async with self.client() as client:
            contacts = ContactBook(self.contact_cache, client, now=self._wall_clock, bucket=CONTACT.bucket,
                                   source=self.name)
            try:
                if self.app_id is None:
                    await self._learn_app_id(client)
                async for page in self._search_pages(client, position, updated_before, start, end, contacts,
                                                     skipped):
                    yield page
            finally:
                await _cancel_pending(contacts.tasks)
                contacts.flush()
                self.last_stats = {
                    "http": client.stats.as_dict(),
                    "contacts_fetched": contacts.fetched,
                    "contacts_changed": contacts.changed,
                    "skipped": dict(skipped),
                }

    async def _search_pages(
        self,
        client: HttpClient,
        position: SearchCursor,
        updated_before: int,
        start: datetime | None,
        end: datetime | None,
        contacts: ContactBook,
        skipped: Counter[str],
    ) -> AsyncIterator[Page]:
        high_water = position.high_water
        if position.updated_after >= updated_before:
            # Nothing can have changed inside an empty window (a cursor from the future): keep the cursor as it is.
            yield Page([], position.as_dict(), 0)
            return
        request = PageRequest(SEARCH_CONVERSATIONS.url(), method=SEARCH_CONVERSATIONS.method,
                              json_body=search_body(position.updated_after, updated_before, None, self.page_size),
                              bucket=SEARCH_CONVERSATIONS.bucket)
        paginator = BodyCursorPaginator(cursor=position.starting_after)
        paginator.init_request(request)
        guard = StallGuard(source=self.name, raise_after=MAX_STALE_PAGES + 1,
                           message="the conversation search kept answering with a page it had already sent")
        while True:
            body = await request.send(client)
            if not isinstance(body, dict) or not isinstance(body.get("conversations", []), list):
                raise SourceError(ErrorKind.bad_response,
                                  "the conversation search answered without a list of conversations", source=self.name)
            asked = paginator.cursor
            paginator.update_state(body)
            if paginator.has_next_page and not paginator.progressed():
                # A page that points back to where we already were is an old answer: ask for this page again,
                # without fetching its conversations.
                guard.check(False)
                paginator.cursor = asked
                client.stats.retries += 1
                continue
            guard.check(True)
            found = [item for item in body.get("conversations", []) if isinstance(item, dict)]
            for item in found:
                changed = _seconds(item.get("updated_at"))
                if changed is not None:
                    high_water = max(high_water, changed)
            records, removals = await self._page_records(client, found, start, end, contacts, skipped)
            vendor_total = integer(body.get("total_count"))
            contacts.flush()
            if not paginator.has_next_page:
                # Continue from just below the newest change seen, so a conversation changed again within that
                # same second is fetched again (the store dedupes it) rather than skipped.
                final = SearchCursor(max(position.updated_after, high_water - 1), None, None, high_water)
                yield Page(records, final.as_dict(), vendor_total, removals=removals)
                return
            paginator.update_request(request)
            middle = SearchCursor(position.updated_after, updated_before, paginator.cursor, high_water)
            yield Page(records, middle.as_dict(), vendor_total, removals=removals)

    async def _page_records(self, client: HttpClient, found: list[dict[str, Any]], start: datetime | None,
                            end: datetime | None, contacts: ContactBook,
                            skipped: Counter[str]) -> tuple[list[Any], list[Removal]]:
        """One search page's conversations, fetched in full with their contacts and mapped."""
        wanted = [item for item in found if created_in_range(item, start, end)]
        # The client's semaphore bounds requests on the wire; this bounds how many conversations are started at
        # once, so that after a rate-limit wait a handful of requests resume instead of the whole page at once.
        slots = asyncio.Semaphore(self.max_concurrency)
        details = await _gather_or_cancel(
            _bounded(slots, self._full_conversation, client, item, contacts) for item in wanted
        )
        records = []
        removals: list[Removal] = []
        for item, (conversation, contact) in zip(wanted, details):
            if conversation is None:
                # Found by the search, gone by the time we asked for it: deleted, so it leaves the store too.
                skipped["deleted"] += 1
                gone_id = identifier(item.get("id"))
                if gone_id is not None:
                    removals.append(Removal(source=SOURCE, source_id=gone_id, reason=RemovalReason.deleted,
                                            removed_at=datetime.fromtimestamp(self._wall_clock(), tz=timezone.utc)))
                continue
            try:
                record = map_conversation(conversation, contact, app_id=self.app_id, rules=self.rules)
            except MappingError as error:
                # One unusable conversation must not stop the sync; it is counted and logged instead.
                logger.warning("skipped a conversation: %s", error)
                skipped["mapping_error"] += 1
                continue
            if in_range(record.created_at, start, end):
                records.append(record)
        return records, removals

    async def _full_conversation(
        self, client: HttpClient, item: dict[str, Any], contacts: ContactBook
    ) -> tuple[dict[str, Any] | None, dict[str, Any] | None]:
        """The conversation with all its parts, and its first contact (None when it has none or it was deleted)."""
        conversation_id = identifier(item.get("id"))
        if conversation_id is None:
            return item, None  # the mapper reports it
        try:
            conversation = await client.get_json(
                CONVERSATION.url(conversation_id=conversation_id), bucket=CONVERSATION.bucket
            )
        except SourceError as error:
            if error.kind is ErrorKind.not_found:
                logger.info("intercom: conversation %s was deleted during the sync", conversation_id)
                return None, None
            raise
        if not isinstance(conversation, dict):
            raise SourceError(ErrorKind.bad_response,
                              f"GET /conversations/{conversation_id} did not answer with a conversation",
                              source=self.name)
        contact_id = first_contact_id(conversation) or first_contact_id(item)
        if contact_id is None:
            return conversation, None
        return conversation, await contacts.get(contact_id)

    async def register_webhook(self, url: str) -> bool:
        """Intercom has no public API to create webhooks: raise the Developer Hub steps instead of pretending."""
        raise WebhookSetupRequired(self.name, intercom_webhook_steps(url))


async def _bounded(slots: asyncio.Semaphore, work: Callable[..., Awaitable[Any]], *args: Any) -> Any:
    """`work(*args)` once a slot is free. The coroutine is created only then: one created up front and cancelled
    while queued for a slot would be dropped without ever being awaited (and asyncio would say so)."""
    async with slots:
        return await work(*args)


async def _gather_or_cancel(coroutines: Iterable[Awaitable[Any]]) -> list[Any]:
    """Run concurrently (the client's semaphore bounds the requests); on the first failure, stop the rest."""
    tasks = [asyncio.ensure_future(coroutine) for coroutine in coroutines]
    try:
        return await asyncio.gather(*tasks)
    except BaseException:
        await _cancel_pending(tasks)
        raise


async def _cancel_pending(tasks: Iterable[asyncio.Future[Any]]) -> None:
    pending = [task for task in tasks if not task.done()]
    for task in pending:
        task.cancel()
    if pending:
        await asyncio.gather(*pending, return_exceptions=True)
    for task in tasks:
        # Mark failures as seen so asyncio does not report them as never retrieved.
        if task.done() and not task.cancelled():
            task.exception()
