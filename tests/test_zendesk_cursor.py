"""Zendesk's export cursor on the kit's cursor base: cursors stored by earlier versions load unchanged."""

from __future__ import annotations

from typing import Any

import pytest

from feedback_sources.integrations.cursor import FULL_SYNC_HINT, VERSION_KEY
from feedback_sources.integrations.http import ErrorKind, SourceError
from feedback_sources.sources.zendesk.cursor import ExportPosition

# Dicts as the store holds them from syncs before the cursor base existed: first run without a cursor yet, mid-export,
# and after an export whose last page named no cursor.
STORED: list[dict[str, Any]] = [
    {"after_cursor": None, "start_time": 0},
    {"after_cursor": None, "start_time": 1714564800},
    {"after_cursor": "MTU3NjYxMzUzOS4wfHw0Njd8", "start_time": 1576613539},
]


@pytest.mark.parametrize("stored", STORED)
def test_a_stored_cursor_loads_and_writes_back_the_same_dict(stored: dict[str, Any]) -> None:
    position = ExportPosition.from_cursor(stored)
    assert position.as_cursor() == stored
    assert list(position.as_cursor()) == ["after_cursor", "start_time"]  # no version key for version 1
    assert (position.after_cursor, position.start_time) == (stored["after_cursor"], stored["start_time"])


def test_positional_and_keyword_construction_agree() -> None:
    assert ExportPosition("abc", 5) == ExportPosition(after_cursor="abc", start_time=5)


def test_a_corrupted_cursor_names_the_field_and_says_to_run_a_full_sync() -> None:
    with pytest.raises(SourceError) as raised:
        ExportPosition.from_cursor({"after_cursor": None, "start_time": "yesterday"})
    error = raised.value
    assert (error.kind, error.source, error.hint) == (ErrorKind.client, "zendesk", FULL_SYNC_HINT)
    assert error.message.startswith("the saved Zendesk sync position is corrupted (`start_time`")
    assert error.message.endswith("; reset it to run a full sync")


def test_a_cursor_from_a_newer_version_is_refused() -> None:
    with pytest.raises(SourceError) as raised:
        ExportPosition.from_cursor({"after_cursor": "abc", "start_time": 5, VERSION_KEY: 2})
    assert raised.value.kind == ErrorKind.client
    assert "newer version of Feedback Hub" in raised.value.message


def test_keys_it_does_not_know_are_ignored() -> None:
    assert ExportPosition.from_cursor({"after_cursor": "abc", "start_time": 5, "note": "x"}) == ExportPosition("abc", 5)
