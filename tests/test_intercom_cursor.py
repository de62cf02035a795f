"""Intercom's search cursor on the kit's cursor base: cursors stored by the previous version load and write back the
same dict, and a resumed sync sends the same search the interrupted one would have sent."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import pytest

from feedback_sources.integrations.cursor import FULL_SYNC_HINT, VERSION_KEY
from feedback_sources.integrations.http import ErrorKind, SourceError
from feedback_sources.sources.intercom.cursor import SearchCursor
from feedback_sources.sources.intercom.integration import IntercomIntegration, search_body

# Dicts as the single-module integration wrote them (SearchCursor.as_dict): a first run's start, a mid-run page
# (window, Intercom's page cursor) and the end of a run (no upper bound, one second below the newest change).
STORED: list[dict[str, Any]] = [
    {"updated_after": 0, "updated_before": None, "starting_after": None, "high_water": 0},
    {"updated_after": 1717235999, "updated_before": 1764849600, "starting_after": "WzE3MTcyMzYwMDAsMTAwMDE1MCwyXQ==",
     "high_water": 1717300000},
    {"updated_after": 1764849599, "updated_before": None, "starting_after": None, "high_water": 1764849600},
]


@pytest.mark.parametrize("stored", STORED)
def test_a_stored_cursor_loads_and_writes_back_the_same_dict(stored: dict[str, Any]) -> None:
    cursor = SearchCursor.parse(stored)
    assert cursor.as_dict() == stored
    assert list(cursor.as_dict()) == ["updated_after", "updated_before", "starting_after", "high_water"]
    assert SearchCursor(*stored.values()) == cursor


def test_a_mid_run_cursor_resumes_with_the_same_search() -> None:
    """The first request after resuming from a stored mid-run cursor is the one the old version sent."""
    stored = STORED[1]
    seen: list[Any] = []

    def answer(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/me":
            return httpx.Response(200, json={"app": {"id_code": "abc"}})
        seen.append(request.read())
        return httpx.Response(200, json={"type": "conversation.list", "conversations": [], "total_count": 0,
                                         "pages": {"type": "pages"}})

    integration = IntercomIntegration({"access_token": "t", "base_url": "https://intercom.test"},
                                      transport=httpx.MockTransport(answer))

    async def pages() -> list[Any]:
        return [page async for page in integration.iter_pages(cursor=stored)]

    result = asyncio.run(pages())
    expected = search_body(stored["updated_after"], stored["updated_before"], stored["starting_after"])
    assert [httpx.Response(200, content=body).json() for body in seen] == [expected]
    # The end of the run: from one second below the newest change seen, as before.
    assert result[-1].cursor == {"updated_after": stored["high_water"] - 1, "updated_before": None,
                                 "starting_after": None, "high_water": stored["high_water"]}


def test_a_corrupted_cursor_names_the_field_and_says_how_to_recover() -> None:
    with pytest.raises(SourceError) as raised:
        SearchCursor.parse({"updated_after": -1, "updated_before": None, "starting_after": None, "high_water": 0})
    error = raised.value
    assert (error.kind, error.source, error.hint) == (ErrorKind.client, "intercom", FULL_SYNC_HINT)
    assert error.message.startswith("the saved Intercom sync position is not valid (`updated_after`")
    assert error.message.endswith("; reset the Intercom sync state to start over")


def test_a_cursor_from_a_newer_version_is_refused() -> None:
    with pytest.raises(SourceError) as raised:
        SearchCursor.parse({**STORED[0], VERSION_KEY: 2})
    assert raised.value.kind is ErrorKind.client
    assert "newer version of Feedback Hub" in raised.value.message
