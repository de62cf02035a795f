"""SurveyMonkey's sync cursor on the kit's cursor base: cursors stored by earlier versions load unchanged."""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

import pytest

from feedback_sources.integrations.cursor import FULL_SYNC_HINT, VERSION_KEY
from feedback_sources.integrations.http import ErrorKind, SourceError
from feedback_sources.sources.surveymonkey.cursor import SyncCursor

UTC = timezone.utc

BETWEEN_PASSES = {
    "modified_after": "2024-05-02T09:59:59+00:00", "created_start": None, "created_end": None, "surveys": [],
    "survey_id": None, "page": None, "high_water": None, "pass_started_at": None,
}
IN_PASS = {
    "modified_after": None, "created_start": "2024-04-01T00:00:00+00:00", "created_end": "2024-05-01T00:00:00+00:00",
    "surveys": ["405987654", "405987655"], "survey_id": "405987653", "page": 2,
    "high_water": "2024-04-30T17:01:02+00:00", "pass_started_at": "2024-05-02T10:05:00.123456+00:00",
}
NEVER_SYNCED = {key: None for key in BETWEEN_PASSES} | {"surveys": []}


@pytest.mark.parametrize("stored", [BETWEEN_PASSES, IN_PASS, NEVER_SYNCED])
def test_a_stored_cursor_loads_and_writes_back_the_same_dict(stored: dict[str, Any]) -> None:
    cursor = SyncCursor.parse(stored)
    assert cursor.to_json() == stored
    assert list(cursor.to_json()) == list(stored)  # same keys in the same order, no version key


def test_the_dates_are_utc_datetimes_and_the_surveys_a_tuple() -> None:
    cursor = SyncCursor.parse(IN_PASS)
    assert cursor.created_end == datetime(2024, 5, 1, tzinfo=UTC)
    assert cursor.surveys == ("405987654", "405987655") and cursor.in_pass
    # A `Z` suffix (written by hand, or by another tool) reads as UTC and is written back with an offset.
    assert SyncCursor.parse({"modified_after": "2024-05-02T10:00:00Z"}).modified_after == datetime(
        2024, 5, 2, 10, tzinfo=UTC)


def test_no_cursor_is_a_first_sync() -> None:
    assert SyncCursor.parse(None) == SyncCursor() and not SyncCursor().in_pass


def test_a_pass_walks_its_surveys_then_saves_only_the_watermark() -> None:
    cursor = SyncCursor.parse(IN_PASS)
    following = cursor.at_page(3).next_survey()
    assert (following.survey_id, following.page, following.surveys) == ("405987654", 1, ("405987655",))
    assert SyncCursor.parse(following.to_json()) == following
    done = following.next_survey().next_survey()
    assert done == SyncCursor(modified_after=datetime(2024, 4, 30, 17, 1, 1, tzinfo=UTC))


def test_a_corrupted_cursor_says_to_run_a_full_sync() -> None:
    with pytest.raises(SourceError) as raised:
        SyncCursor.parse({**IN_PASS, "page": 0})
    error = raised.value
    assert (error.kind, error.source, error.hint) == (ErrorKind.client, "surveymonkey", FULL_SYNC_HINT)
    assert error.message.startswith("the saved SurveyMonkey sync position is not valid (`page`")


def test_a_cursor_from_a_newer_version_is_refused() -> None:
    with pytest.raises(SourceError) as raised:
        SyncCursor.parse({**BETWEEN_PASSES, VERSION_KEY: 9})
    assert raised.value.kind == ErrorKind.client and "newer version of Feedback Hub" in raised.value.message
