"""feedback_daily and feedback_daily_tags, the per-day counts Explore's charts read, equal a GROUP BY over the records
(and their feedback_tags) after any sequence of writes: upserts (new, newer, older versions, tags changed, dropped or
repeated), removals, overrides and their undoing, rule re-application and theme assignment. And Explore's aggregates
answer the same from the counts as from the records."""

from __future__ import annotations

from datetime import date, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from damage_support import old_store
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from feedback_sources.models import Category, NormalizedRecord, Removal, Tier
from feedback_sources.overrides import override_record, undo_record
from feedback_sources.rules import Rules
from feedback_sources.rules_store import apply_rules
from feedback_sources.store import Filters, Store

DAY0 = datetime(2025, 3, 1, 9, tzinfo=timezone.utc)
SOURCES = ("zendesk", "intercom")
WORDS = ("export", "invoice", "login", "crash", "thanks")
TIERS = (None, *Tier)
CATEGORIES = tuple(Category)

GROUPED = """
    SELECT substr(created_at, 1, 10), source, ifnull(customer_tier, ''), category, ifnull(sentiment_label, ''),
           COUNT(*)
    FROM feedback GROUP BY 1, 2, 3, 4, 5 ORDER BY 1, 2, 3, 4, 5
"""
DAILY = """
    SELECT day, source, tier, category, sentiment, records FROM feedback_daily WHERE records <> 0
    ORDER BY 1, 2, 3, 4, 5
"""
TAGS_GROUPED = """
    SELECT substr(f.created_at, 1, 10), f.source, ifnull(f.customer_tier, ''), f.category, t.tag, COUNT(*)
    FROM feedback AS f JOIN feedback_tags AS t ON t.feedback_id = f.id GROUP BY 1, 2, 3, 4, 5 ORDER BY 1, 2, 3, 4, 5
"""
DAILY_TAGS = """
    SELECT day, source, tier, category, tag, records FROM feedback_daily_tags WHERE records <> 0
    ORDER BY 1, 2, 3, 4, 5
"""
# What top_tags answered before the per-day tag counts: the tags of the filtered records, joined.
TOP_TAGS_JOINED = (
    "SELECT t.tag, COUNT(*) FROM feedback_tags AS t JOIN feedback ON feedback.id = t.feedback_id WHERE {where} "
    "GROUP BY 1 ORDER BY 2 DESC, 1"
)


def record(source: str, number: int, day: int, tier: Tier | None, category: Category, newer: int,
           words: tuple[str, ...], tagged: bool = True) -> NormalizedRecord:
    return NormalizedRecord(
        source=source, source_id=str(number), title=f"Record {number}", content=" ".join(words),
        customer_email=f"c{number}@example.com", customer_tier=tier, category=category,
        created_at=DAY0 + timedelta(days=day),
        metadata={"updated_at": (DAY0 + timedelta(days=30, hours=newer)).isoformat(), "tags": list(words[:2]) if tagged else []},
    )


records_st = st.builds(record, st.sampled_from(SOURCES), st.integers(1, 8), st.integers(0, 4), st.sampled_from(TIERS),
                       st.sampled_from(CATEGORIES), st.integers(0, 6),
                       st.lists(st.sampled_from(WORDS), min_size=1, max_size=3).map(tuple), st.booleans())
operations = st.one_of(
    st.tuples(st.just("upsert"), st.lists(records_st, min_size=1, max_size=6)),
    st.tuples(st.just("remove"), st.sampled_from(SOURCES), st.integers(1, 8), st.integers(0, 6)),
    st.tuples(st.just("override"), st.sampled_from(SOURCES), st.integers(1, 8),
              st.sampled_from([*(("category", c.value) for c in CATEGORIES),
                               *(("customer_tier", t.value) for t in Tier), ("customer_tier", "unknown")])),
    st.tuples(st.just("undo"), st.sampled_from(SOURCES), st.integers(1, 8)),
    st.tuples(st.just("rules"), st.sampled_from(WORDS), st.sampled_from(CATEGORIES)),
    st.tuples(st.just("themes"), st.integers(0, 3), st.sampled_from((None, "negative", "neutral", "positive"))),
)


def apply(store: Store, operation: tuple[Any, ...]) -> None:
    kind = operation[0]
    if kind == "upsert":
        store.upsert_records(operation[1])
    elif kind == "remove":
        _, source, number, hours = operation
        store.upsert_records([], removals=[Removal(source=source, source_id=str(number),
                                                   removed_at=DAY0 + timedelta(days=30, hours=hours))])
    elif kind == "override":
        _, source, number, (field, value) = operation
        try:
            override_record(store, source, str(number), field, value)
        except KeyError:
            pass  # no such record (yet, or any more)
    elif kind == "undo":
        undo_record(store, operation[1], str(operation[2]))
    elif kind == "rules":
        apply_rules(store, Rules(keyword_categories=((operation[1], operation[2]),)))
    else:  # what themes.assign_new and sentiment scoring write to each record
        _, theme, label = operation
        with store.write() as conn:
            conn.execute("UPDATE feedback SET theme_id = ?, sentiment_label = ? WHERE id % 2 = ?",
                         (theme or None, label, theme % 2))


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(operations, min_size=1, max_size=12))
def test_the_daily_counts_equal_a_group_by_over_the_records(ops: list[tuple[Any, ...]]) -> None:
    with Store() as store:
        for operation in ops:
            apply(store, operation)
            assert store.conn.execute(DAILY).fetchall() == store.conn.execute(GROUPED).fetchall(), operation
            assert store.conn.execute(DAILY_TAGS).fetchall() == store.conn.execute(TAGS_GROUPED).fetchall(), operation
        assert_aggregates_match_the_records(store)


def base(store: Store, sql: str, filters: Filters, *, ordered: bool = False) -> list[tuple[Any, ...]]:
    where, params = filters.where()
    rows = [tuple(row) for row in store.conn.execute(sql.format(where=where), params)]
    return rows if ordered else sorted(rows)


def assert_aggregates_match_the_records(store: Store) -> None:
    start = DAY0.date() + timedelta(days=1)
    for filters in (Filters(), Filters(start=start, end=start + timedelta(days=2)), Filters(end=start),
                    Filters(sources=("zendesk",), tiers=("unknown", "enterprise")),
                    Filters(categories=("bug_report", "other"), sentiments=("negative",)), Filters(theme_ids=(1, 2))):
        assert store.count(filters) == base(store, "SELECT COUNT(*) FROM feedback WHERE {where}", filters)[0][0]
        kpis = store.kpis(filters)
        [(records, customers, enterprise)] = base(
            store, "SELECT COUNT(*), COUNT(DISTINCT COALESCE(customer_email, source || ':' || customer_id)), "
            "SUM(customer_tier = 'enterprise') FROM feedback WHERE {where}", filters)
        assert (kpis["records"], kpis["customers"]) == (records, customers)
        assert kpis["enterprise_share"] == ((enterprise or 0) / records if records else 0.0)
        assert sorted(tuple(r.values()) for r in store.volume_by_day(filters, by="category")) == base(
            store, "SELECT substr(created_at, 1, 10), category, COUNT(*) FROM feedback WHERE {where} GROUP BY 1, 2",
            filters)
        assert sorted(tuple(r.values()) for r in store.sentiment_by_day(filters, by="tier")) == base(
            store, "SELECT substr(created_at, 1, 10), COALESCE(customer_tier, 'unknown'), COUNT(*), "
            "SUM(sentiment_label = 'negative') FROM feedback WHERE {where} GROUP BY 1, 2", filters)
        assert sorted(tuple(r.values()) for r in store.breakdown(filters, "source", "tier")) == base(
            store, "SELECT source, COALESCE(customer_tier, 'unknown'), COUNT(*) FROM feedback WHERE {where} "
            "GROUP BY 1, 2", filters)
        assert sorted(tuple(r.values()) for r in store.theme_counts(filters, limit=100)) == base(
            store, "SELECT theme_id, COUNT(*), SUM(sentiment_label = 'negative') FROM feedback "
            "WHERE {where} AND theme_id > 0 GROUP BY 1", filters)
        assert [tuple(r.values()) for r in store.top_tags(filters, limit=100)] == base(
            store, TOP_TAGS_JOINED, filters, ordered=True)


def test_a_text_search_or_a_tag_reads_the_records(tmp_path: Path) -> None:
    with Store() as store:
        store.upsert_records([record("zendesk", 1, 0, None, Category.other, 0, ("export",)),
                              record("zendesk", 2, 0, None, Category.other, 0, ("login",))])
        assert store.count(Filters(text="export")) == 1
        assert store.count(Filters(tag="login")) == 1
        assert [r["records"] for r in store.volume_by_day(Filters(text="login"))] == [1]
        assert store.count(Filters()) == 2


@pytest.mark.parametrize("version", [13, 15])
def test_the_migration_counts_the_records_of_an_existing_store(tmp_path: Path, version: int) -> None:
    db = old_store(tmp_path / "old.db", version)
    with Store(db) as store:
        assert store.conn.execute(DAILY).fetchall() == store.conn.execute(GROUPED).fetchall()
        assert store.conn.execute(DAILY_TAGS).fetchall() == store.conn.execute(TAGS_GROUPED).fetchall() == [
            ("2025-01-01", "zendesk", "", "bug_report", "billing", 2)]
        assert store.top_tags(Filters(start=date(2025, 1, 1), end=date(2025, 1, 1))) == [
            {"tag": "billing", "records": 2}]
        assert store.kpis()["records"] == 2
        assert store.count(Filters(start=date(2025, 1, 1), end=date(2025, 1, 1))) == 2


def test_top_tags_reads_the_daily_tag_counts_when_the_filters_allow(tmp_path: Path) -> None:
    """Same answer, order and limit as the join over the records' tags; a sentiment, a tag, a theme or a text search
    (which the per-day tag counts do not hold) reads the records."""
    with Store() as store:
        store.upsert_records([
            record(source, number, number % 5, TIERS[number % len(TIERS)], CATEGORIES[number % len(CATEGORIES)], 0,
                   (WORDS[number % 5], WORDS[(number * 3) % 5], WORDS[number % 2]), tagged=number % 7 != 0)
            for source in SOURCES for number in range(1, 40)])
        apply_rules(store, Rules(keyword_categories=(("crash", Category.bug_report),)))
        store.upsert_records([], removals=[Removal(source="zendesk", source_id="3", removed_at=DAY0 + timedelta(days=40))])
        statements: list[str] = []
        store.conn.set_trace_callback(statements.append)
        start = DAY0.date() + timedelta(days=1)
        daily = (Filters(start=start, end=start + timedelta(days=2)), Filters(sources=("intercom",), tiers=("unknown",)),
                 Filters(categories=("bug_report", "question"), start=start))
        joined = (Filters(sentiments=("negative",), start=start), Filters(tag="export", start=start),
                  Filters(text="login", start=start), Filters(theme_ids=(1,)))
        for filters in (*daily, *joined):
            for limit in (2, 100):
                statements.clear()
                assert [tuple(r.values()) for r in store.top_tags(filters, limit=limit)] == base(
                    store, TOP_TAGS_JOINED, filters, ordered=True)[:limit], filters
                assert any("feedback_daily_tags" in sql for sql in statements) == (filters in daily), filters
        assert store.top_tags(daily[0], limit=2) and all(store.top_tags(f) for f in daily)
