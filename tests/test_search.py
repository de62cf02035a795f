from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from feedback_sources.search import SearchSyntaxError, to_fts_query
from feedback_sources.store import Filters, Store
from tests.conftest import make_record


@pytest.mark.parametrize(
    "typed,expected",
    [
        ("export csv", '"export" AND "csv"'),
        ('"exact phrase"', '"exact phrase"'),
        ("export OR csv", '("export" OR "csv")'),
        ("sso -okta", '("sso") NOT "okta"'),
        ("integr*", '"integr"*'),
        ("  ", None),
        ("", None),
    ],
)
def test_translation(typed: str, expected: str | None) -> None:
    assert to_fts_query(typed) == expected


@pytest.mark.parametrize("typed", ['"unclosed', "OR csv", "csv OR", "a OR OR b", "-only", "-a OR b"])
def test_malformed_queries_get_a_readable_error(typed: str) -> None:
    with pytest.raises(SearchSyntaxError):
        to_fts_query(typed)


@given(st.text(max_size=60))
def test_any_typed_text_is_either_valid_fts_or_a_syntax_error(typed: str) -> None:
    store = Store(":memory:")
    store.upsert_records([make_record("1", content="export to csv fails")])
    try:
        store.count(Filters(text=typed))
    except SearchSyntaxError:
        pass
    finally:
        store.close()


def test_search_matches_phrase_prefix_or_and_exclusion(fresh_store: Store) -> None:
    fresh_store.upsert_records([
        make_record("1", content="CSV export is broken"),
        make_record("2", content="Please add an export to Excel"),
        make_record("3", content="SSO with Okta keeps failing"),
    ])

    def ids(text: str) -> list[str]:
        return sorted(r["source_id"] for r in fresh_store.rows(Filters(text=text), limit=None))

    assert ids("export") == ["1", "2"]
    assert ids('"csv export"') == ["1"]
    assert ids("export -excel") == ["1"]
    assert ids("okta OR excel") == ["2", "3"]
    assert ids("fail*") == ["3"]
    assert ids("<script>alert(1)</script>") == []
