"""The kit's cursor base: round trip to the stored dict, typed refusals with a full-sync hint, versions."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import Field

from feedback_sources.integrations.cursor import FULL_SYNC_HINT, VERSION_KEY, VendorCursor
from feedback_sources.integrations.http import ErrorKind, SourceError


class Position(VendorCursor):
    source = "acme"
    vendor = "Acme"

    after: str | None = Field(default=None, min_length=1, strict=True)
    since: int = Field(default=0, ge=0, strict=True)


class PositionV2(Position):
    version = 2

    @classmethod
    def upgrade(cls, data: dict[str, Any], from_version: int) -> dict[str, Any]:
        return {**data, "since": data.get("since", 0) * 2}


def test_round_trip_keeps_the_stored_shape() -> None:
    stored = {"after": "abc", "since": 5}
    assert Position.load(stored).dump() == stored
    assert Position.load({}).dump() == {"after": None, "since": 0}
    assert Position(after="x") == Position.load({"after": "x"})


@pytest.mark.parametrize("stored", [
    None, "abc", ["after"], {"after": 5}, {"after": ""}, {"since": "5"}, {"since": -1}, {"since": True},
    {"since": 1.5}, {"unknown": 1}, {VERSION_KEY: "2"}, {VERSION_KEY: 0},
])
def test_a_corrupted_cursor_is_a_typed_error_with_a_full_sync_hint(stored: Any) -> None:
    with pytest.raises(SourceError) as raised:
        Position.load(stored)
    error = raised.value
    assert (error.kind, error.source, error.hint) == (ErrorKind.client, "acme", FULL_SYNC_HINT)
    assert error.message.startswith("the saved Acme sync position is not valid (")


def test_the_reason_names_the_field() -> None:
    with pytest.raises(SourceError) as raised:
        Position.load({"since": -1})
    assert "`since`" in raised.value.message


def test_a_cursor_from_a_newer_version_is_refused() -> None:
    with pytest.raises(SourceError) as raised:
        Position.load({"after": "x", "since": 1, VERSION_KEY: 2})
    assert raised.value.kind == ErrorKind.client
    assert "newer version of Feedback Hub" in raised.value.message
    assert "full sync" in raised.value.hint


def test_an_older_version_is_upgraded_and_a_newer_one_writes_its_version() -> None:
    upgraded = PositionV2.load({"after": "x", "since": 3})  # written by version 1, which wrote no version key
    assert upgraded.since == 6
    assert upgraded.dump() == {"after": "x", "since": 6, VERSION_KEY: 2}
    assert PositionV2.load(upgraded.dump()) == upgraded


def test_an_older_version_without_an_upgrade_is_refused() -> None:
    class Strict(Position):
        version = 3

    with pytest.raises(SourceError) as raised:
        Strict.load({"after": "x", VERSION_KEY: 2})
    assert "written as version 2" in raised.value.message


def test_a_cursor_is_immutable() -> None:
    position = Position(after="x")
    with pytest.raises(ValueError):
        position.after = "y"  # type: ignore[misc]
