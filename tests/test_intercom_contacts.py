"""Intercom contacts kept across syncs: the store's cache, the one contact search per run, and what a re-sync asks.

Over real HTTP on 127.0.0.1 against the emulator, through `sync_all` and a store file, as a scheduled sync runs.
"""

from __future__ import annotations

import asyncio
import math
import re
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from feedback_sources.emulator import DEMO_INTERCOM_TOKEN, Emulator, EmulatorConfig, run_emulator_server
from feedback_sources.sources.intercom.contacts import (
    CachedContact,
    MemoryContactCache,
    StoreContactCache,
    changed_contacts_body,
)
from feedback_sources.sources.intercom.integration import IntercomIntegration
from feedback_sources.store import Store
from feedback_sources.sync import sync_all
from tests.helpers import RecordingSleep

CONVERSATIONS = 120


@pytest.fixture
def emulator() -> Emulator:
    return Emulator(EmulatorConfig(intercom_conversations=CONVERSATIONS, zendesk_tickets=1, surveymonkey_surveys=1,
                                   surveymonkey_responses_per_survey=1))


@pytest.fixture
def base_url(emulator: Emulator) -> Iterator[str]:
    with run_emulator_server(emulator) as root:
        yield emulator.base_urls(root)["intercom"]


def calls(emulator: Emulator, method: str, pattern: str) -> int:
    return sum(1 for call in emulator.requests if call.method == method and re.fullmatch(pattern, call.endpoint))


def run(store: Store, base_url: str, emulator: Emulator, *, incremental: bool = True) -> dict[str, int]:
    """One sync with a new integration object (as each scheduled run has), and the requests it made by kind."""
    before = list(emulator.requests)
    integration = IntercomIntegration({"access_token": DEMO_INTERCOM_TOKEN, "base_url": base_url},
                                      sleep=RecordingSleep())
    result = asyncio.run(sync_all(store, {"intercom": integration}, incremental=incremental))["intercom"]
    assert (result.status, result.errors) == ("complete", None)
    made = emulator.requests[len(before):]
    return {
        "requests": len(made),
        "contact_gets": sum(1 for c in made if c.method == "GET" and re.fullmatch(r"/contacts/[^/]+", c.endpoint)),
        "contact_searches": sum(1 for c in made if c.method == "POST" and c.endpoint == "/contacts/search"),
        "conversation_gets": sum(1 for c in made if c.method == "GET" and re.fullmatch(r"/conversations/\d+",
                                                                                         c.endpoint)),
    }


def next_second() -> None:
    time.sleep(math.ceil(time.time()) - time.time() + 0.01)


def contact_of(emulator: Emulator, conversation_id: int | str) -> str:
    return emulator.intercom.conversation(conversation_id)["contacts"]["contacts"][0]["id"]


def test_the_store_cache_round_trips_contacts_and_the_check_time(tmp_path: Path) -> None:
    with Store(tmp_path / "cache.db") as store:
        cache = StoreContactCache(store)
        assert cache.get_many(["a", "b"]) == {} and cache.checked_at() is None
        cache.put_many({"a": CachedContact({"id": "a", "updated_at": 5, "custom_attributes": {"plan": "pro"}}, 10)})
        cache.put_many({"a": CachedContact({"id": "a", "updated_at": 7}, 12), "b": CachedContact({"id": "b"}, 12)})
        cache.set_checked_at(12)
        cache.set_checked_at(20)
    with Store(tmp_path / "cache.db") as store:  # kept across opens, as across runs
        cache = StoreContactCache(store)
        assert cache.get_many(["a", "b", "c"]) == {
            "a": CachedContact({"id": "a", "updated_at": 7}, 12),
            "b": CachedContact({"id": "b"}, 12),
        }
        assert cache.checked_at() == 20
        row = store.query("SELECT updated_at, fetched_at FROM intercom_contacts WHERE contact_id = 'a'")
        assert row == [{"updated_at": 7, "fetched_at": 12}]


def test_the_changed_contacts_search_asks_for_changes_after_a_time() -> None:
    assert changed_contacts_body(1717236000) == {
        "query": {"field": "updated_at", "operator": ">", "value": 1717236000},
        "pagination": {"per_page": 150},
    }


def test_a_no_change_resync_fetches_no_contact(tmp_path: Path, emulator: Emulator, base_url: str) -> None:
    with Store(tmp_path / "feedback.db") as store:
        first = run(store, base_url, emulator, incremental=False)
        distinct = len({contact_of(emulator, cid) for cid in emulator.intercom.all_conversation_ids()})
        # The first run knows no contact: one GET each, and no search (nothing cached to check).
        assert (first["contact_gets"], first["contact_searches"]) == (distinct, 0)
        again = run(store, base_url, emulator)
        assert (again["contact_gets"], again["contact_searches"]) == (0, 1)
        assert again["requests"] < first["requests"]


def test_a_changed_contact_comes_from_the_search_and_reaches_the_record(
    tmp_path: Path, emulator: Emulator, base_url: str
) -> None:
    with Store(tmp_path / "feedback.db") as store:
        run(store, base_url, emulator, incremental=False)
        conversation_id = emulator.intercom.all_conversation_ids()[0]
        contact_id = contact_of(emulator, conversation_id)
        emulator.intercom.change_contact(contact_id, custom_attributes={"plan": "Enterprise"})
        emulator.intercom.add_part(conversation_id, "<p>Still broken after the upgrade.</p>")
        next_second()  # a search asks for changes before the second the run starts in

        again = run(store, base_url, emulator)

        assert (again["contact_gets"], again["contact_searches"]) == (0, 1)
        record = store.query("SELECT customer_tier FROM feedback WHERE source = 'intercom' AND source_id = ?",
                             [str(conversation_id)])
        assert record == [{"customer_tier": "enterprise"}]
        cached = StoreContactCache(store).get_many([contact_id])[contact_id]
        assert cached.contact["custom_attributes"] == {"plan": "Enterprise"}


def test_without_the_contact_search_every_contact_is_fetched_again(
    tmp_path: Path, emulator: Emulator, base_url: str
) -> None:
    with Store(tmp_path / "feedback.db") as store:
        first = run(store, base_url, emulator, incremental=False)
        checked = StoreContactCache(store).checked_at()
        emulator.faults.inject("intercom", r"^/contacts/search$", 404, times=None)
        next_second()
        again = run(store, base_url, emulator, incremental=False)
        # As before the cache existed: one GET per contact, and the cache is not marked as checked.
        assert (again["contact_gets"], again["contact_searches"]) == (first["contact_gets"], 1)
        assert StoreContactCache(store).checked_at() == checked


def test_a_contact_new_to_the_cache_is_fetched_once(emulator: Emulator, base_url: str) -> None:
    """Without a store the cache lives as long as the integration object: its second run asks for nothing new."""
    cache = MemoryContactCache()
    integration = IntercomIntegration({"access_token": DEMO_INTERCOM_TOKEN, "base_url": base_url},
                                      sleep=RecordingSleep(), contact_cache=cache)

    async def pages(cursor: dict[str, Any] | None = None) -> list[Any]:
        return [page async for page in integration.iter_pages(cursor=cursor)]

    first = asyncio.run(pages())
    fetched = integration.last_stats["contacts_fetched"]
    assert fetched == len(cache.contacts) > 0
    asyncio.run(pages())  # a full re-sync: every conversation again, every contact from the cache
    assert integration.last_stats["contacts_fetched"] == 0
    assert sum(len(page.records) for page in first) == CONVERSATIONS


def test_the_emulators_contact_search_pages_and_filters(emulator: Emulator) -> None:
    from feedback_sources.sources.intercom.emulator import SearchQuery

    ids = [contact_of(emulator, cid) for cid in emulator.intercom.all_conversation_ids()[:3]]
    for contact_id in ids:
        emulator.intercom.change_contact(contact_id, name="Renamed", updated_at=2_000_000_000)
    changed = emulator.intercom.contacts_matching(
        SearchQuery({"field": "updated_at", "operator": ">", "value": 1_999_999_999})
    )
    assert sorted(contact["id"] for contact in changed) == sorted(set(ids))
    assert all(contact["name"] == "Renamed" for contact in changed)
