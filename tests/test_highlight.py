"""Search results with highlights: bm25 order, every filter combined, marked snippets, and markdown that stays inert
whatever the feedback says. The real-browser proof of inertness is tests/test_browser_insights.py."""

from __future__ import annotations

import re
from datetime import date, datetime, timedelta, timezone

import pytest
from hypothesis import given
from hypothesis import strategies as st

from feedback_sources.highlight import (
    MARK_END,
    MARK_START,
    highlighted_markdown,
    literal_markdown,
    marked_segments,
    search_results,
)
from feedback_sources.models import Category, NormalizedRecord, Tier
from feedback_sources.search import SearchSyntaxError
from feedback_sources.store import Filters, Store

TODAY = datetime.now(timezone.utc).date()


def record(source: str, source_id: str, title: str, content: str = "", *, days_ago: int = 1,
           tier: Tier | None = Tier.business, tags: tuple[str, ...] = ()) -> NormalizedRecord:
    return NormalizedRecord(
        source=source,
        source_id=source_id,
        title=title,
        content=content,
        customer_name=f"Customer {source_id}",
        customer_tier=tier,
        category=Category.feature_request,
        created_at=datetime.combine(TODAY - timedelta(days=days_ago), datetime.min.time(), tzinfo=timezone.utc),
        metadata={"tags": list(tags)},
    )


@pytest.fixture
def store() -> Store:
    with Store() as fresh:
        fresh.upsert_records([
            record("zendesk", "1", "CSV export crashes", "The CSV export crashes on large files.", tags=("export",)),
            record("zendesk", "2", "Dark mode", "Please add a dark mode; export to PDF would be nice too.",
                   days_ago=40, tier=Tier.enterprise),
            record("intercom", "3", "Billing question", "How do I export invoices as CSV? The export button is grey.",
                   tier=Tier.free, tags=("billing",)),
            record("surveymonkey", "4", "NPS survey", "Q: What should we improve?\nA: nothing"),
        ])
        yield fresh


def keys(hits: list) -> list[tuple[str, str]]:
    return [(hit.source, hit.source_id) for hit in hits]


def test_results_are_ranked_by_bm25_and_carry_marked_titles_and_snippets(store: Store) -> None:
    hits = search_results(store, Filters(text="export csv"))
    assert keys(hits) == [("zendesk", "1"), ("intercom", "3")]  # both words in the title beats both in the text
    assert [hit.score < 0 for hit in hits] == [True, True]
    assert hits[0].marked_title == "\x02CSV\x03 \x02export\x03 crashes"
    assert hits[0].marked_snippet == "The \x02CSV\x03 \x02export\x03 crashes on large files."
    assert hits[1].marked_title == "Billing question"
    assert hits[1].marked_snippet == "How do I \x02export\x03 invoices as \x02CSV\x03? The \x02export\x03 button is grey."
    assert (hits[1].created_at[:10], hits[1].category, hits[1].customer_tier, hits[1].customer_name) == (
        (TODAY - timedelta(days=1)).isoformat(), "feature_request", "free", "Customer 3")


def test_search_combines_with_every_other_filter(store: Store) -> None:
    assert keys(search_results(store, Filters(text="export"))) == [("zendesk", "1"), ("intercom", "3"), ("zendesk", "2")]
    assert keys(search_results(store, Filters(text="export", sources=("zendesk",)))) == [("zendesk", "1"), ("zendesk", "2")]
    assert keys(search_results(store, Filters(text="export", tiers=("enterprise", "free")))) == [
        ("intercom", "3"), ("zendesk", "2")]
    assert keys(search_results(store, Filters(text="export", start=TODAY - timedelta(days=7), end=TODAY))) == [
        ("zendesk", "1"), ("intercom", "3")]
    assert keys(search_results(store, Filters(text="export", tag="billing"))) == [("intercom", "3")]
    assert keys(search_results(store, Filters(text="export", categories=("bug_report",)))) == []
    assert keys(search_results(store, Filters(text="export", sources=("zendesk",), start=date(2000, 1, 1),
                                              end=TODAY))) == [("zendesk", "1"), ("zendesk", "2")]


def test_query_syntax_paging_and_the_empty_query(store: Store) -> None:
    assert keys(search_results(store, Filters(text='"dark mode" OR invoices'))) == [("zendesk", "2"), ("intercom", "3")]
    assert keys(search_results(store, Filters(text="export -csv"))) == [("zendesk", "2")]
    assert keys(search_results(store, Filters(text="crash*"))) == [("zendesk", "1")]
    assert keys(search_results(store, Filters(text="export"), limit=1, offset=1)) == [("intercom", "3")]
    assert search_results(store, Filters(text="   ")) == []
    with pytest.raises(SearchSyntaxError, match="Unbalanced quotes"):
        search_results(store, Filters(text='"export'))
    with pytest.raises(SearchSyntaxError, match="OR needs a term"):
        search_results(store, Filters(text="export OR"))


def test_marked_text_splits_into_matches_and_the_rest() -> None:
    assert marked_segments("a \x02b\x03 c\x02d\x03") == [("a ", False), ("b", True), (" c", False), ("d", True)]
    assert marked_segments("") == []
    assert marked_segments("\x02\x03plain") == [("plain", False)]


HOSTILE = {
    "<script>alert(1)</script>": r"\<script\>alert\(1\)\<\/script\>",
    "[x](javascript:alert(1))": r"\[x\]\(javascript:small[]\:alert\(1\)\)",
    "![](http://127.0.0.9/p.png)": r"\!\[\]\(http:small[]\:\/\/127:small[]\.0:small[]\.0:small[]\.9\/p:small[]\.png\)",
    "**bold** _it_ ~~no~~": r"\*\*bold\*\* \_it\_ \~\~no\~\~",
    '=cmd|" /C calc"!A0': r"\=cmd\|\" \/C calc\"\!A0",
    ":streamlit: :red[x] $x^2$": r":small[]\:streamlit:small[]\: :small[]\:red\[x\] \$x\^2\$",
    "www.evil.example ann@acme.example": r"www:small[]\.evil:small[]\.example ann:small[]\@acme:small[]\.example",
    "&lt;b&gt; # head\n- item\n1. one": r"\&lt\;b\&gt\; \# head \- item 1:small[]\. one",
    "back\\slash `code`\x00\x07": r"back\\slash \`code\`",
}


@pytest.mark.parametrize(("text", "markdown"), HOSTILE.items())
def test_feedback_becomes_literal_markdown(text: str, markdown: str) -> None:
    assert literal_markdown(text) == markdown


def test_matches_are_highlighted_and_the_text_around_them_escaped() -> None:
    marked = "Click \x02[export]\x03(javascript:x) then \x02csv\x03 **now**"
    assert highlighted_markdown(marked) == (
        r"Click :orange-background[\[export\]]\(javascript:small[]\:x\) then :orange-background[csv] \*\*now\*\*"
    )
    assert highlighted_markdown("\x02export\x03 \x02csv\x03") == ":orange-background[export] :orange-background[csv]"
    assert highlighted_markdown("long text \x02here\x03 and more words after it", max_chars=12) == (
        "long text :orange-background[he…]")
    assert highlighted_markdown("\x02word\x03 then a long tail of text", max_chars=10) == (
        ":orange-background[word] then…")
    assert highlighted_markdown("") == ""


def unescape(markdown: str) -> str:
    """What Streamlit shows for literal_markdown's output: splitters removed, backslash escapes undone."""
    return re.sub(r"\\(.)", r"\1", markdown.replace(":small[]", ""))


@given(st.text(alphabet=st.characters(blacklist_categories=("Cs",)), max_size=80))
def test_any_text_round_trips_and_no_syntax_survives(text: str) -> None:
    markdown = literal_markdown(text)
    unmarked = text.replace(MARK_START, "").replace(MARK_END, "")  # a stray marker is dropped, never shown
    expected = " ".join(re.sub(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]", " ", unmarked).split())
    assert unescape(markdown) == expected
    # Outside the splitters, every ASCII punctuation character is escaped and nothing starts a new line.
    bare = re.sub(r"\\.", "", markdown.replace(":small[]", ""))
    assert [c for c in bare if c in "!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~\n\r"] == []
    # Nothing that a link or icon detector could read is left in one piece: a splitter stands before each : @ and .
    assert re.findall(r"(?<!:small\[\])\\[:.@]", markdown) == []
