"""clean_value's fast path (one orjson encoding proves there is nothing to clean) gives what walking every string
gives, for any JSON-shaped value with or without lone surrogates, NULs and look-alike escapes."""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from feedback_sources.models import NormalizedRecord, _clean_walk, clean_value

TRICKY = st.sampled_from(["\udcff", "\ud83d", "\x00", "\\u0000", "\\", "\u2028", "é", "😀", "\ufffd"])
TEXT = st.lists(st.one_of(st.text(max_size=5), TRICKY), max_size=5).map("".join)
LEAVES = st.one_of(st.none(), st.booleans(), st.integers(min_value=-(2**70), max_value=2**70), st.floats(), TEXT)
VALUES = st.recursive(LEAVES, lambda inner: st.one_of(
    st.lists(inner, max_size=4), st.lists(inner, max_size=3).map(tuple),
    st.dictionaries(st.one_of(TEXT, st.integers()), inner, max_size=4)), max_leaves=20)


def same(left: Any, right: Any) -> bool:
    """Equal, with NaN equal to itself and containers of the same types."""
    if type(left) is not type(right):
        return False
    if isinstance(left, float) and left != left:
        return right != right
    if isinstance(left, dict):
        return list(left) == list(right) and all(same(left[k], right[k]) for k in left)
    if isinstance(left, (list, tuple)):
        return len(left) == len(right) and all(same(a, b) for a, b in zip(left, right))
    return bool(left == right)


@settings(max_examples=400, deadline=None)
@given(value=VALUES)
def test_fast_path_equals_the_walk(value: Any) -> None:
    assert same(clean_value(value), _clean_walk(value))


def test_nothing_to_clean_is_returned_as_is_and_hostile_text_is_replaced() -> None:
    clean = {"answers": [{"text": "Export is slow", "choice": 3}], "tags": ["csv"], "at": None}
    assert clean_value(clean) is clean
    assert clean_value({"a": ["x\x00y", ("\udcff",)], "k\x00": 1}) == {"a": ["x\ufffdy", ("\ufffd",)], "k\ufffd": 1}
    assert clean_value({"text": "a literal \\u0000 stays"}) == {"text": "a literal \\u0000 stays"}


def test_records_still_store_no_unstorable_text() -> None:
    record = NormalizedRecord(source="surveymonkey", source_id="1", content="ok\x00", created_at=datetime(
        2026, 3, 1, tzinfo=timezone.utc), metadata={"answers": [{"text": "cut \udcff"}], "fine": {"n": 1}})
    assert record.content == "ok\ufffd"
    assert record.metadata == {"answers": [{"text": "cut \ufffd"}], "fine": {"n": 1}}
