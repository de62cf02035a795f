"""The kit's JSON coercers: a value of the expected shape or nothing, never a crash."""

from __future__ import annotations

from datetime import datetime, timezone

import pytest

from feedback_sources.integrations import coerce

UTC = timezone.utc


@pytest.mark.parametrize(("value", "expected"), [
    (" hi ", "hi"), ("", None), ("   ", None), (5, None), (None, None), (True, None), (["x"], None),
])
def test_text(value: object, expected: str | None) -> None:
    assert coerce.text(value) == expected


def test_lower_text() -> None:
    assert coerce.lower_text(" URGENT ") == "urgent"
    assert coerce.lower_text(3) is None


@pytest.mark.parametrize(("value", "plain", "zero_is_none"), [
    (42, "42", "42"), (" 42 ", "42", "42"), (0, "0", None), ("0", "0", None), (True, None, None),
    (False, None, None), (4.5, None, None), ("", None, None), (None, None, None), ({"id": 1}, None, None),
])
def test_identifier(value: object, plain: str | None, zero_is_none: str | None) -> None:
    assert coerce.identifier(value) == plain
    assert coerce.identifier(value, zero_is_none=True) == zero_is_none


def test_dict_and_list() -> None:
    assert coerce.as_dict({"a": 1}) == {"a": 1} and coerce.as_dict([1]) == {} and coerce.as_dict(None) == {}
    assert coerce.as_list([1]) == [1] and coerce.as_list({"a": 1}) == [] and coerce.as_list("ab") == []
    assert coerce.string_list([" a ", "", 3, None, "b"]) == ["a", "b"]
    assert coerce.string_list("a,b") == []


@pytest.mark.parametrize(("value", "minimum", "expected"), [
    (3, None, 3), (-1, None, -1), (-1, 0, None), (True, None, None), (3.0, None, None), ("3", None, None),
])
def test_integer(value: object, minimum: int | None, expected: int | None) -> None:
    assert coerce.integer(value, minimum=minimum) == expected


def test_datetimes() -> None:
    moment = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)
    assert coerce.unix_datetime(int(moment.timestamp())) == moment
    assert coerce.unix_datetime(moment.timestamp() + 0.5) == datetime(2024, 5, 1, 12, 0, 0, 500000, tzinfo=UTC)
    assert coerce.unix_datetime(True) is None and coerce.unix_datetime("1714564800") is None
    assert coerce.unix_datetime(10**20) is None  # out of range
    assert coerce.iso_datetime(" 2024-05-01T12:00:00Z ") == moment
    assert coerce.iso_datetime("2024-05-01T14:00:00+02:00") == moment
    assert coerce.iso_datetime("2024-05-01T12:00:00") == moment  # no offset: UTC
    assert coerce.iso_datetime("yesterday") is None and coerce.iso_datetime(5) is None
    assert coerce.moment("2024-05-01T12:00:00Z") == coerce.moment(int(moment.timestamp())) == moment
    assert coerce.moment(None) is None and coerce.moment(False) is None


def test_lookup_by_int_or_str_key() -> None:
    table = {7: {"id": 7}, "abc": {"id": "abc"}, 8: "not an object"}
    assert coerce.lookup(table, "7") == {"id": 7}
    assert coerce.lookup(table, "abc") == {"id": "abc"}
    assert coerce.lookup(table, "8") == {} and coerce.lookup(table, None) == {} and coerce.lookup(None, "7") == {}


def test_a_record_id_longer_than_any_vendor_id_is_no_id() -> None:
    from feedback_sources.integrations.coerce import MAX_RECORD_ID_LENGTH, record_id

    assert [record_id(0), record_id("a" * MAX_RECORD_ID_LENGTH), record_id("a" * (MAX_RECORD_ID_LENGTH + 1)),
            record_id(" 42 "), record_id(True)] == ["0", "a" * MAX_RECORD_ID_LENGTH, None, "42", None]
