"""Intercom contacts, kept across syncs so a re-sync asks only for the contacts that changed.

A conversation names its contacts by id only (`contacts.contacts[]`), and the plan lives on the contact, so every
conversation a sync maps needs its contact. Before this cache each sync asked `GET /contacts/{id}` once per contact
it met. Now:

- Contacts fetched once are kept (in the store, through `ContactCache`), with the time they were fetched.
- A run that finds the cache already in use first asks `POST /contacts/search` for the contacts whose `updated_at`
  is later than when the cache was last brought up to date; Intercom answers with the full contact objects (the
  same shape as `GET /contacts/{id}`), so those replace their cached copies without another request.
- Any contact still not cached is fetched as before, and cached.

So a cached contact is as fresh as the start of the run, as far as Intercom's `updated_at` says: a contact's own
fields (its plan in `custom_attributes`, name, email) move `updated_at`. Company plans are not in either payload (a
contact lists companies by reference), so nothing is lost there.
"""

from __future__ import annotations

import asyncio
import json
import logging
import math
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from ...integrations.coerce import as_dict, as_list, identifier, integer
from ...integrations.http import ErrorKind, HttpClient, SourceError
from ...integrations.paging import BodyCursorPaginator, PageRequest, StallGuard, paginate

logger = logging.getLogger("feedback_sources.intercom")

SEARCH_PATH = "/contacts/search"
CONTACT_PATH = "/contacts/{contact_id}"
SEARCH_PAGE_SIZE = 150  # the documented maximum for the contact search
CHECKED_AT_KEY = "intercom_contacts_checked_at"


@dataclass(frozen=True)
class CachedContact:
    """A contact as Intercom last answered it, and when (unix seconds) we asked."""

    contact: dict[str, Any]
    fetched_at: int


class ContactCache(Protocol):
    """Where contacts are kept between runs (the store; a dict in tests)."""

    def get_many(self, ids: Collection[str]) -> dict[str, CachedContact]: ...

    def put_many(self, contacts: Mapping[str, CachedContact]) -> None: ...

    def checked_at(self) -> int | None:
        """When the cache was last brought up to date with Intercom (None: never, so nothing can be trusted)."""
        ...

    def set_checked_at(self, at: int) -> None: ...


class MemoryContactCache:
    """A ContactCache in memory: one integration object's lifetime (the default without a store)."""

    def __init__(self) -> None:
        self.contacts: dict[str, CachedContact] = {}
        self.checked: int | None = None

    def get_many(self, ids: Collection[str]) -> dict[str, CachedContact]:
        return {key: self.contacts[key] for key in ids if key in self.contacts}

    def put_many(self, contacts: Mapping[str, CachedContact]) -> None:
        self.contacts.update(contacts)

    def checked_at(self) -> int | None:
        return self.checked

    def set_checked_at(self, at: int) -> None:
        self.checked = at


class StoreContactCache:
    """A ContactCache in the store's `intercom_contacts` table (created by the store's migration of that name).

    `store` is a feedback_sources Store: reads go through `query`, each write is one `write()` transaction."""

    def __init__(self, store: Any) -> None:
        self.store = store

    def get_many(self, ids: Collection[str]) -> dict[str, CachedContact]:
        wanted = list(dict.fromkeys(ids))
        found: dict[str, CachedContact] = {}
        for offset in range(0, len(wanted), 500):
            chunk = wanted[offset : offset + 500]
            rows = self.store.query(
                "SELECT contact_id, contact, fetched_at FROM intercom_contacts WHERE contact_id IN "
                f"({','.join('?' * len(chunk))})",
                chunk,
            )
            for row in rows:
                try:
                    found[row["contact_id"]] = CachedContact(json.loads(row["contact"]), int(row["fetched_at"]))
                except (ValueError, TypeError):
                    continue  # an unreadable row is fetched again
        return found

    def put_many(self, contacts: Mapping[str, CachedContact]) -> None:
        if not contacts:
            return
        with self.store.write() as conn:
            conn.executemany(
                "INSERT INTO intercom_contacts (contact_id, contact, updated_at, fetched_at) VALUES (?, ?, ?, ?) "
                "ON CONFLICT(contact_id) DO UPDATE SET contact = excluded.contact, updated_at = excluded.updated_at, "
                "fetched_at = excluded.fetched_at",
                [
                    (key, json.dumps(entry.contact), integer(entry.contact.get("updated_at")), entry.fetched_at)
                    for key, entry in contacts.items()
                ],
            )

    def checked_at(self) -> int | None:
        rows = self.store.query("SELECT value FROM store_meta WHERE key = ?", (CHECKED_AT_KEY,))
        return int(rows[0]["value"]) if rows else None

    def set_checked_at(self, at: int) -> None:
        with self.store.write() as conn:
            conn.execute(
                "INSERT INTO store_meta (key, value) VALUES (?, ?) ON CONFLICT(key) DO UPDATE SET value = excluded.value",
                (CHECKED_AT_KEY, at),
            )


def changed_contacts_body(updated_after: int, per_page: int = SEARCH_PAGE_SIZE) -> dict[str, Any]:
    """The contact search for contacts changed after `updated_after` (unix seconds)."""
    return {
        "query": {"field": "updated_at", "operator": ">", "value": updated_after},
        "pagination": {"per_page": per_page},
    }


class ContactBook:
    """One run's contacts: the cache made fresh once (lazily, on the first lookup), then one GET per contact the
    cache does not hold, shared by every conversation that waits on it."""

    def __init__(self, cache: ContactCache, client: HttpClient, *, now: Callable[[], float], bucket: str,
                 source: str) -> None:
        self.cache, self.client, self.now, self.bucket, self.source = cache, client, now, bucket, source
        self.started = math.floor(now())
        self._refreshed: asyncio.Task[None] | None = None
        self._tasks: dict[str, asyncio.Task[dict[str, Any] | None]] = {}
        # Fetched contacts wait here and are written together (`flush`): one write per page, not one per contact.
        self._pending: dict[str, CachedContact] = {}
        self.fetched = 0  # contacts asked for one by one
        self.changed = 0  # contacts the search said changed
        self.trusted = True  # whether cached contacts are known to be current

    @property
    def tasks(self) -> list[asyncio.Task[Any]]:
        return [*self._tasks.values(), *([self._refreshed] if self._refreshed is not None else [])]

    async def get(self, contact_id: str) -> dict[str, Any] | None:
        """The contact (None when Intercom no longer has it)."""
        if self._refreshed is None:
            self._refreshed = asyncio.ensure_future(self._refresh())
        # Shielded: several conversations wait on one task, and one waiter's cancellation must not end it.
        await asyncio.shield(self._refreshed)
        task = self._tasks.get(contact_id)
        if task is None:
            task = asyncio.ensure_future(self._lookup(contact_id))
            self._tasks[contact_id] = task
        return await asyncio.shield(task)

    async def _refresh(self) -> None:
        since = self.cache.checked_at()
        if since is not None:
            try:
                changed = await self._changed_since(since)
            except SourceError as error:
                if error.kind is not ErrorKind.not_found:
                    raise
                # An API without the contact search (a proxy, an older version): nothing cached can be trusted,
                # so this run fetches every contact as before and the cache stays unchecked.
                logger.warning("intercom: the contact search is not available, contacts are fetched again: %s", error)
                self.trusted = False
                return
            self.changed = len(changed)
            self.cache.put_many({key: CachedContact(contact, self.started) for key, contact in changed.items()})
        # Everything changed before the run started is now known: the next run searches from here.
        self.cache.set_checked_at(self.started)

    async def _changed_since(self, since: int) -> dict[str, dict[str, Any]]:
        # One second of overlap: a contact changed in the second the last check ran is asked for again.
        request = PageRequest(SEARCH_PATH, method="POST", json_body=changed_contacts_body(max(0, since - 1)),
                              bucket=self.bucket)
        guard = StallGuard(source=self.source, raise_after=4,
                           message="the contact search kept answering with a page it had already sent")
        found: dict[str, dict[str, Any]] = {}
        async for body in paginate(self.client, request, BodyCursorPaginator(), guard=guard):
            if not isinstance(as_dict(body).get("data"), list):
                raise SourceError(ErrorKind.bad_response, "the contact search answered without a list of contacts",
                                  source=self.source)
            for contact in as_list(body["data"]):
                key = identifier(as_dict(contact).get("id"))
                if key is not None:
                    found[key] = contact
        return found

    async def _lookup(self, contact_id: str) -> dict[str, Any] | None:
        cached = self.cache.get_many([contact_id]).get(contact_id) if self.trusted else None
        if cached is not None:
            return cached.contact
        contact = await fetch_contact(self.client, contact_id, bucket=self.bucket)
        self.fetched += 1
        if contact is not None:
            self._pending[contact_id] = CachedContact(contact, math.floor(self.now()))
        return contact

    def flush(self) -> None:
        """Keep the contacts fetched since the last flush."""
        pending, self._pending = self._pending, {}
        self.cache.put_many(pending)


async def fetch_contact(client: HttpClient, contact_id: str, *, bucket: str) -> dict[str, Any] | None:
    """GET /contacts/{id}; None when Intercom no longer has it (deleted or merged: the conversation still maps)."""
    try:
        contact = await client.get_json(CONTACT_PATH.format(contact_id=contact_id), bucket=bucket)
    except SourceError as error:
        if error.kind is ErrorKind.not_found:
            return None
        raise
    return contact if isinstance(contact, dict) else None

