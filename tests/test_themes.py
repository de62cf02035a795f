"""Themes found in the customers' words: quality on labelled feedback, names, explanations, near-duplicates, the
PM's edits surviving re-computation, new records joining, and Demand's ranking of them."""

from __future__ import annotations

import io
from collections import Counter
from datetime import date, datetime, timedelta, timezone
from pathlib import Path

import pytest

from benchmarks.theme_quality import evaluate, items, records
from feedback_sources import insights, themes
from feedback_sources.cli import EXIT_OK, main
from feedback_sources.models import NormalizedRecord, Removal
from feedback_sources.store import Store


@pytest.fixture(scope="module")
def found(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The labelled feedback, stored and grouped once for the module; tests that edit themes work on a copy."""
    path = tmp_path_factory.mktemp("themes") / "feedback.db"
    with Store(path) as store:
        store.upsert_records(records(items()))
        themes.recompute(store)
    return path


@pytest.fixture
def store(found: Path, tmp_path: Path) -> Store:
    copy = tmp_path / "copy.db"
    with Store(found) as source, Store(copy, migrate=False) as target:
        source.conn.backup(target.conn)
    with Store(copy) as opened:
        yield opened


def topic_of(store: Store) -> dict[int, str]:
    """Each theme's majority topic."""
    truth = {item.key: item.topic for item in items()}
    votes: dict[int, Counter[str]] = {}
    for source_id, theme_id in store.conn.execute("SELECT source_id, theme_id FROM feedback WHERE theme_id > 0"):
        votes.setdefault(theme_id, Counter())[truth[source_id]] += 1
    return {theme_id: counter.most_common(1)[0][0] for theme_id, counter in votes.items()}


def test_themes_follow_the_topics_customers_wrote_about() -> None:
    quality = evaluate()
    assert quality.records == 360 and quality.topics == 12
    assert quality.purity >= 0.7 and quality.ami >= 0.6
    assert quality.near_duplicates_same_theme >= 0.9
    assert quality.sentiment_agreement >= 0.55


def test_a_theme_is_named_by_a_phrase_customers_wrote_and_lists_its_words(store: Store) -> None:
    texts = " ".join(item.text.lower() for item in items())
    for info in themes.themes(store).values():
        assert info.name.lower() in texts  # a phrase from the feedback, as written
        words = [term for term, _ in info.terms]
        assert words and not {"please", "thanks", "hi", "enterprise", "feature", "bug"} & set(words)


def test_every_record_says_why_it_belongs_and_how_many_say_the_same(store: Store) -> None:
    explained = themes.why(store, "zendesk", "csv_export_timeout-0")
    assert explained is not None and explained["theme"] is not None
    assert explained["shared_words"] and all(" " in w or w.isalpha() for w in explained["shared_words"])
    assert any("csv" in w or "export" in w or "timeout" in w for w in explained["shared_words"])
    # The same sentence in another message (greeting and sign-off around it) is a near-duplicate.
    wrapped = themes.why(store, "zendesk", "csv_export_timeout-0-wrapped")
    assert wrapped["dup_key"] == explained["dup_key"] and explained["similar_records"] >= 1
    similar = themes.similar_records(store, "zendesk", "csv_export_timeout-0")
    assert "csv_export_timeout-0-wrapped" in {row["source_id"] for row in similar}


def test_quotes_are_one_per_near_duplicate_group(store: Store) -> None:
    theme_id = store.conn.execute(
        "SELECT theme_id FROM feedback WHERE source_id = 'charged_twice-0'").fetchone()[0]
    quoted = themes.quotes(store, theme_id)
    assert len(quoted) == 3
    keys = [q["dup_key"] for q in quoted if q["dup_key"]]
    assert len(keys) == len(set(keys))


def test_new_records_join_existing_themes(store: Store) -> None:
    vat = store.conn.execute("SELECT theme_id FROM feedback WHERE source_id = 'invoice_vat-0'").fetchone()[0]
    store.upsert_records([NormalizedRecord(
        source="intercom", source_id="new-1", content="Our invoice has the wrong VAT number on it again",
        created_at=datetime(2026, 11, 1, tzinfo=timezone.utc))])
    assert store.conn.execute("SELECT theme_id FROM feedback WHERE source_id = 'new-1'").fetchone()[0] is None
    assert themes.assign_new(store) == 1
    assert store.conn.execute("SELECT theme_id FROM feedback WHERE source_id = 'new-1'").fetchone()[0] == vat
    assert themes.assign_new(store) == 0


def test_the_pms_choices_survive_a_recomputation(store: Store) -> None:
    by_topic = {topic: theme_id for theme_id, topic in topic_of(store).items()}
    vat, charged, dark, slack = (by_topic[t] for t in ("invoice_vat", "charged_twice", "dark_mode",
                                                        "slack_notifications"))
    themes.rename(store, vat, "VAT on invoices")
    themes.set_flag(store, dark, "pinned", True)
    themes.set_flag(store, slack, "hidden", True)
    was_charged = {r[0] for r in store.conn.execute("SELECT id FROM feedback WHERE theme_id = ?", (charged,))}
    moved = themes.merge(store, charged, vat)
    assert moved == len(was_charged) > 0
    themes.recompute(store, seed=1)
    after = themes.themes(store)
    vat_now = store.conn.execute("SELECT theme_id FROM feedback WHERE source_id = 'invoice_vat-0'").fetchone()[0]
    assert after[vat_now].name == "VAT on invoices"
    # The merge holds for the re-found groups: the merged records are (nearly all) still in the renamed theme.
    placed = [r[0] for r in store.conn.execute(
        f"SELECT theme_id FROM feedback WHERE id IN ({', '.join(map(str, was_charged))})")]
    assert placed.count(vat_now) >= 0.8 * len(placed)
    dark_now = store.conn.execute("SELECT theme_id FROM feedback WHERE source_id = 'dark_mode-0'").fetchone()[0]
    slack_now = store.conn.execute(
        "SELECT theme_id FROM feedback WHERE source_id = 'slack_notifications-0'").fetchone()[0]
    assert after[dark_now].pinned and after[slack_now].hidden


def test_a_split_theme_is_split_again_after_a_recomputation(store: Store) -> None:
    theme_id = store.conn.execute("SELECT theme_id FROM feedback WHERE source_id = 'user_roles-0'").fetchone()[0]
    first, second = themes.split(store, theme_id)
    parts = {first, second}
    counts = dict(store.conn.execute(
        f"SELECT theme_id, COUNT(*) FROM feedback WHERE theme_id IN ({first}, {second}) GROUP BY theme_id"))
    assert set(counts) == parts and all(counts.values())
    assert theme_id not in themes.themes(store)
    themes.recompute(store, seed=1)
    placed = {row[0] for row in store.conn.execute(
        "SELECT theme_id FROM feedback WHERE source_id LIKE 'user_roles-%'")}
    assert parts & placed  # the split's parts are still where those records go


def test_theme_actions_refuse_what_cannot_be_done(store: Store) -> None:
    theme_id = next(iter(themes.themes(store)))
    with pytest.raises(themes.ThemeError):
        themes.merge(store, theme_id, theme_id)
    with pytest.raises(themes.ThemeError):
        themes.rename(store, 999_999, "x")
    with pytest.raises(themes.ThemeError):
        themes.set_flag(store, theme_id, "deleted", True)


def test_themes_need_records(tmp_path: Path) -> None:
    with Store(tmp_path / "empty.db") as empty, pytest.raises(themes.ThemeError):
        themes.recompute(empty)


def test_demand_ranks_themes_pinned_first_hidden_never_with_honest_trends(store: Store) -> None:
    by_topic = {topic: theme_id for theme_id, topic in topic_of(store).items()}
    themes.set_flag(store, by_topic["jira_integration"], "pinned", True)
    themes.set_flag(store, by_topic["dashboard_slow"], "hidden", True)
    scope = insights.DemandScope(start=date(2026, 10, 1), end=date(2026, 10, 31), categories=())
    report = insights.rank_discovered_themes(store, scope)
    labels = [theme.key.theme_id for theme in report.themes]
    assert labels[0] == by_topic["jira_integration"]
    assert by_topic["dashboard_slow"] not in labels
    # The records start on 1 October: September is no period of zero demand.
    assert report.history_covers_previous is False
    assert {theme.honest_trend(report.history_covers_previous) for theme in report.themes} == {
        "no data before this period"}
    small = insights.Theme(report.themes[0].key, 3.0, 1, 1, (), (), 1.0, 1, previous_records=1)
    assert small.honest_trend(True) == "not enough data"
    accounts = insights.theme_accounts(store, scope, report.themes[1].key)
    assert sum(row.records for row in accounts) == report.themes[1].records


def test_what_are_enterprise_customers_unhappy_about(store: Store) -> None:
    # One enterprise account (its own domain) wrote the double-charge complaints; every other account has no plan.
    store.conn.execute("UPDATE feedback SET customer_tier = 'enterprise', customer_email = 'ap@bigcorp.example' "
                       "WHERE source_id LIKE 'charged_twice%'")
    scope = insights.unhappy_enterprise_this_month(date(2026, 10, 31))
    report = insights.rank_discovered_themes(store, scope)
    assert report.themes and report.themes[0].negative == report.themes[0].records
    top_topic = topic_of(store)[report.themes[0].key.theme_id]
    assert top_topic == "charged_twice"


def test_removed_records_leave_their_theme(store: Store) -> None:
    theme_id = store.conn.execute("SELECT theme_id FROM feedback WHERE source_id = 'dark_mode-0'").fetchone()[0]
    before = store.conn.execute("SELECT COUNT(*) FROM feedback WHERE theme_id = ?", (theme_id,)).fetchone()[0]
    store.upsert_records([], removals=[Removal(source="zendesk", source_id="dark_mode-0",
                                               removed_at=datetime(2027, 1, 1, tzinfo=timezone.utc))])
    assert store.conn.execute("SELECT COUNT(*) FROM feedback WHERE theme_id = ?", (theme_id,)).fetchone()[0] == before - 1
    assert all("dark_mode-0" != q["source_id"] for q in themes.quotes(store, theme_id, limit=50))


def test_the_command_line_finds_and_lists_themes(found: Path, tmp_path: Path) -> None:
    path = tmp_path / "cli.db"
    with Store(path) as store:
        store.upsert_records(records(items())[:90])
    out, err = io.StringIO(), io.StringIO()
    assert main(["themes", "find", "--db", str(path)], out=out, err=err) == EXIT_OK
    lines = out.getvalue().splitlines()
    assert lines[0].endswith("MB)") and " themes from 90 records in " in lines[0]
    assert len(lines) > 2 and "100% done" in err.getvalue()
