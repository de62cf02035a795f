"""Search is capped at 500 characters and 32 terms, with a message saying so, wherever a PM can type one: the query
builder, the Explore search box and `export --search`. (5,000 repeated words used to take 70 s over a million
records; every capped query is now refused before SQLite sees it.)"""

from __future__ import annotations

import io
from pathlib import Path

import pytest
from app_fixtures import AppEnv, app_env, run_page, seed  # noqa: F401  (fixture)
from hypothesis import given
from hypothesis import strategies as st

from feedback_sources.cli import EXIT_USAGE, main
from feedback_sources.search import MAX_QUERY_CHARS, MAX_TERMS, SearchSyntaxError, parse_query, to_fts_query
from feedback_sources.store import Filters, Store
from tests.conftest import make_record

EXPLORE = "app_pages/explore.py"
TOO_MANY_CHARS = f"Search is limited to {MAX_QUERY_CHARS} characters"
TOO_MANY_TERMS = f"Search takes up to {MAX_TERMS} terms"


def words(n: int) -> str:
    return " ".join(f"w{i}" for i in range(n))


def test_the_caps_are_500_characters_and_32_terms() -> None:
    assert (MAX_QUERY_CHARS, MAX_TERMS) == (500, 32)


def test_a_query_at_the_character_cap_is_accepted_and_one_more_is_refused() -> None:
    at_cap = "export " + "x" * (MAX_QUERY_CHARS - len("export "))
    assert len(at_cap) == MAX_QUERY_CHARS
    assert to_fts_query(at_cap) == '"export" AND "' + "x" * (MAX_QUERY_CHARS - 7) + '"'
    with pytest.raises(SearchSyntaxError) as refused:
        to_fts_query(at_cap + "x")
    assert str(refused.value) == f"{TOO_MANY_CHARS} and this one has 501: keep the few words that matter."


def test_a_query_at_the_term_cap_is_accepted_and_one_more_is_refused() -> None:
    assert to_fts_query(words(MAX_TERMS)) == " AND ".join(f'"w{i}"' for i in range(MAX_TERMS))
    with pytest.raises(SearchSyntaxError) as refused:
        to_fts_query(words(MAX_TERMS + 1))
    assert str(refused.value) == f'{TOO_MANY_TERMS} (words or "phrases") and this one has 33: keep the few that matter.'


def test_or_is_not_a_term_and_a_phrase_is_one() -> None:
    # 32 terms joined by 31 ORs, one of them a five-word phrase: accepted.
    terms = [f"w{i}" for i in range(MAX_TERMS - 1)] + ['"one two three four five"']
    query = " OR ".join(terms)
    assert len([item for item in parse_query(query) if item != "OR"]) == MAX_TERMS
    assert to_fts_query(query) is not None


@given(st.lists(st.sampled_from(["export", "csv", '"dark mode"', "-okta", "integr*", "OR"]), min_size=1, max_size=80))
def test_every_accepted_query_is_within_both_caps(parts: list[str]) -> None:
    query = " ".join(parts)
    try:
        items = parse_query(query)
    except SearchSyntaxError as error:
        assert len(query) > MAX_QUERY_CHARS or str(error).startswith(TOO_MANY_TERMS)
        terms = len([part for part in parts if part != "OR"])
        assert len(query) > MAX_QUERY_CHARS or terms > MAX_TERMS
        return
    assert len(query) <= MAX_QUERY_CHARS
    assert len([item for item in items if item != "OR"]) <= MAX_TERMS


def test_five_thousand_repeated_words_are_refused_before_sqlite(fresh_store: Store) -> None:
    fresh_store.upsert_records([make_record("1", content="export to csv fails")])
    with pytest.raises(SearchSyntaxError, match=TOO_MANY_CHARS):
        fresh_store.count(Filters(text="export " * 5000))
    # Short words: under the character cap, over the term cap.
    with pytest.raises(SearchSyntaxError, match=TOO_MANY_TERMS):
        fresh_store.count(Filters(text="a " * 200))


def test_cli_export_refuses_a_capped_search_with_the_message(tmp_path: Path) -> None:
    db = tmp_path / "feedback.db"
    with Store(db) as store:
        store.upsert_records([make_record("1", content="export to csv fails")])
    out, err = io.StringIO(), io.StringIO()
    target = tmp_path / "out.csv"
    code = main(["export", "--db", str(db), "--csv", str(target), "--search", "export " * 5000], out=out, err=err)
    assert code == EXIT_USAGE
    assert err.getvalue() == f"export failed: {TOO_MANY_CHARS} and this one has 35,000: keep the few words that matter.\n"
    assert not target.exists() and not (tmp_path / "out.csv.part").exists()

    code = main(["export", "--db", str(db), "--csv", str(target), "--search", words(40)], out=out, err=err)
    assert code == EXIT_USAGE and TOO_MANY_TERMS in err.getvalue()


def test_the_search_box_holds_500_characters_and_says_the_caps(app_env: AppEnv) -> None:
    seed(app_env.demo_db)
    at = run_page(app_env, EXPLORE)
    box = at.text_input(key="explore_text")
    assert box.max_chars == MAX_QUERY_CHARS
    assert box.help == f"Up to {MAX_QUERY_CHARS} characters and {MAX_TERMS} terms."


def test_too_many_terms_in_the_search_box_shows_the_cap(app_env: AppEnv) -> None:
    seed(app_env.demo_db)
    at = run_page(app_env, EXPLORE)
    at.text_input(key="explore_text").set_value(words(40)).run()
    assert [e.value for e in at.error] == [
        f'Search not understood: {TOO_MANY_TERMS} (words or "phrases") and this one has 40: keep the few that matter.'
    ]
    assert not at.metric and not at.dataframe
