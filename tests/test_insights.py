"""Demand ranking on a known fixture (whole rows), the accounts behind a theme, saved themes, merges, presets, and
emerging topics on constructed text."""

from __future__ import annotations

from datetime import date, datetime, time, timezone
from pathlib import Path
from typing import Any

import pytest

from feedback_sources import accounts, insights
from feedback_sources.insights import (
    AccountRow,
    DemandScope,
    EmergingTerm,
    Theme,
    ThemeError,
    ThemeKey,
    emerging_topics,
    rank_saved_themes,
    rank_tag_themes,
    theme_accounts,
)
from feedback_sources.models import NormalizedRecord
from feedback_sources.store import Filters, Store

Q2 = DemandScope(start=date(2026, 4, 1), end=date(2026, 6, 30))  # feature requests by default
PREVIOUS = (date(2025, 12, 31), date(2026, 3, 31))


def rec(source: str, source_id: str, day: date, *, email: str | None = None, customer_id: str | None = None,
        tier: str | None = None, category: str = "feature_request", tags: tuple[str, ...] = (), text: str = "",
        **metadata: Any) -> NormalizedRecord:
    return NormalizedRecord(
        source=source, source_id=source_id, title=text[:40] or None, content=text, customer_email=email,
        customer_id=customer_id, customer_tier=tier, category=category,
        created_at=datetime.combine(day, time(10, 0), tzinfo=timezone.utc),
        metadata={"tags": list(tags), **metadata},
    )


def demand_records() -> list[NormalizedRecord]:
    may, jun, feb = date(2026, 5, 10), date(2026, 6, 2), date(2026, 2, 14)
    return [
        # acme.com: three people, three tools; one of them writes without a plan, the account is still enterprise.
        rec("zendesk", "z1", may, email="ann@acme.com", tier="enterprise", tags=("export",), text="CSV export please"),
        rec("intercom", "i1", may, email="bob@acme.com", tier="enterprise", tags=("export", "sso"),
            text="export to excel and SAML SSO"),
        rec("surveymonkey", "s1", jun, email="Carl@ACME.com", tier=None, tags=("export",), text="exports are slow"),
        rec("zendesk", "z2", jun, email="ann@acme.com", tier="enterprise", category="bug_report", tags=("export",),
            text="export crashes"),
        # globex.io, business.
        rec("zendesk", "z3", may, email="dana@globex.io", tier="business", tags=("export",), text="export to pdf"),
        # A free-mail person, and a free-mail person inside a Zendesk organization.
        rec("intercom", "i2", jun, email="eve@gmail.com", tier="free", tags=("export",), text="export my data"),
        rec("zendesk", "z4", jun, email="frank@gmail.com", tier="professional", tags=("sso",), text="okta sso",
            organization_id="42", organization_name="Initech Ltd"),
        rec("zendesk", "z5", may, email="gina@initech.com", tier="free", tags=("sso",), text="google sso"),
        # An anonymous survey answer without tags.
        rec("surveymonkey", "s2", may, text="dark mode would be lovely"),
        # The previous quarter: acme asked for exports, globex for SSO.
        rec("zendesk", "z6", feb, email="ann@acme.com", tier="enterprise", tags=("export",), text="export"),
        rec("intercom", "i3", feb, email="dana@globex.io", tier="business", tags=("sso",), text="sso"),
        # Outside both periods.
        rec("zendesk", "z7", date(2026, 7, 1), email="ann@acme.com", tier="enterprise", tags=("sso",)),
    ]


@pytest.fixture(params=["memory", "file"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Store:
    # On a file, each period's tally runs on a connection of its own, in parallel; in memory, in turn.
    with Store(":memory:" if request.param == "memory" else tmp_path / "demand.db") as opened:
        opened.upsert_records(demand_records())
        yield opened


EXPORT = ThemeKey("tag", "feature_request", "export")
SSO = ThemeKey("tag", "feature_request", "sso")


def test_themes_rank_by_tier_weighted_distinct_accounts(store: Store) -> None:
    report = rank_tag_themes(store, Q2)
    assert Q2.previous() == DemandScope(start=PREVIOUS[0], end=PREVIOUS[1])
    assert report.themes == (
        Theme(EXPORT, score=16.0, accounts=3, records=5,
              records_by_source=(("intercom", 2), ("surveymonkey", 1), ("zendesk", 2)),
              accounts_by_tier=(("enterprise", 1), ("business", 1), ("free", 1)),
              previous_score=10.0, previous_accounts=1),
        Theme(SSO, score=13.0, accounts=3, records=3,
              records_by_source=(("intercom", 1), ("zendesk", 2)),
              accounts_by_tier=(("enterprise", 1), ("professional", 1), ("free", 1)),
              previous_score=5.0, previous_accounts=1),
    )
    assert (report.untagged_records, report.untagged_accounts) == (1, 1)
    assert [t.trend_label for t in report.themes] == ["+60%", "+160%"]


def test_account_tier_filter_weights_and_categories(store: Store) -> None:
    enterprise = rank_tag_themes(store, DemandScope(start=Q2.start, end=Q2.end, tiers=("enterprise",)))
    assert [(t.key.label, t.score, t.accounts, t.records) for t in enterprise.themes] == [
        ("feature_request · export", 10.0, 1, 3), ("feature_request · sso", 10.0, 1, 1)]
    flat = rank_tag_themes(store, Q2.with_weights({tier: 1.0 for tier in insights.TIER_RANKS}))
    assert [(t.key.label, t.score, t.previous_score) for t in flat.themes] == [
        ("feature_request · export", 3.0, 1.0), ("feature_request · sso", 3.0, 1.0)]
    every = rank_tag_themes(store, DemandScope(start=Q2.start, end=Q2.end, categories=()))
    assert [(t.key.label, t.score, t.accounts) for t in every.themes] == [
        ("feature_request · export", 16.0, 3), ("feature_request · sso", 13.0, 3), ("bug_report · export", 10.0, 1)]
    zendesk = rank_tag_themes(store, DemandScope(start=Q2.start, end=Q2.end, sources=("zendesk",)))
    # acme.com stays an enterprise account: its tier comes from all of its feedback in the period.
    assert [(t.key.label, t.score, t.records_by_source) for t in zendesk.themes] == [
        ("feature_request · export", 15.0, (("zendesk", 2),)), ("feature_request · sso", 3.0, (("zendesk", 2),))]


def test_the_accounts_behind_a_theme(store: Store) -> None:
    assert theme_accounts(store, Q2, EXPORT) == [
        AccountRow("acme.com", "acme.com", "domain", "enterprise", 10.0, records=3, people=3,
                   sources=("intercom", "surveymonkey", "zendesk"), last_feedback="2026-06-02T10:00:00Z"),
        AccountRow("globex.io", "globex.io", "domain", "business", 5.0, records=1, people=1, sources=("zendesk",),
                   last_feedback="2026-05-10T10:00:00Z"),
        AccountRow("person:eve@gmail.com", "eve@gmail.com", "person", "free", 1.0, records=1, people=1,
                   sources=("intercom",), last_feedback="2026-06-02T10:00:00Z"),
    ]
    assert theme_accounts(store, Q2, SSO)[1] == AccountRow(
        "org:zendesk:42", "Initech Ltd (zendesk organization 42)", "organization", "professional", 2.0, records=1,
        people=1, sources=("zendesk",), last_feedback="2026-06-02T10:00:00Z")
    untagged = theme_accounts(store, Q2, ThemeKey("tag", "feature_request", None))
    assert [(a.account, a.label, a.tier) for a in untagged] == [
        ("anonymous:surveymonkey:s2", "anonymous respondent", "unknown")]


def test_a_merge_moves_demand_to_the_account(store: Store) -> None:
    accounts.merge(store, "org:zendesk:42", "initech.com")
    sso = rank_tag_themes(store, Q2).themes[1]
    # initech.com now holds the free seat and the professional one: it counts once, as professional.
    assert (sso.key, sso.score, sso.accounts, sso.accounts_by_tier) == (
        SSO, 12.0, 2, (("enterprise", 1), ("professional", 1)))
    assert [(a.account, a.tier, a.records, a.people) for a in theme_accounts(store, Q2, SSO)] == [
        ("acme.com", "enterprise", 1, 1), ("initech.com", "professional", 2, 2)]
    accounts.unmerge(store, "org:zendesk:42")
    assert rank_tag_themes(store, Q2).themes[1].score == 13.0


def test_saved_searches_are_themes_across_every_source(store: Store) -> None:
    assert rank_saved_themes(store, Q2) == ()
    insights.save_theme(store, "  Exports ", "export*")
    insights.save_theme(store, "Dark mode", '"dark mode"')
    insights.save_theme(store, "Nothing", "kubernetes")
    assert [t.name for t in insights.saved_themes(store)] == ["Dark mode", "Exports", "Nothing"]
    ranked = rank_saved_themes(store, Q2)
    assert ranked == (
        Theme(ThemeKey("saved", query="export*", name="Exports"), score=16.0, accounts=3, records=5,
              records_by_source=(("intercom", 2), ("surveymonkey", 1), ("zendesk", 2)),
              accounts_by_tier=(("enterprise", 1), ("business", 1), ("free", 1)),
              previous_score=10.0, previous_accounts=1),
        Theme(ThemeKey("saved", query='"dark mode"', name="Dark mode"), score=1.0, accounts=1, records=1,
              records_by_source=(("surveymonkey", 1),), accounts_by_tier=(("unknown", 1),),
              previous_score=0.0, previous_accounts=0),
        Theme(ThemeKey("saved", query="kubernetes", name="Nothing"), 0.0, 0, 0, (), (), 0.0, 0),
    )
    assert [a.account for a in theme_accounts(store, Q2, ranked[1].key)] == ["anonymous:surveymonkey:s2"]
    with pytest.raises(ThemeError, match="not understood"):
        insights.save_theme(store, "Broken", '"unclosed')
    with pytest.raises(ThemeError, match="name"):
        insights.save_theme(store, " ", "export")
    nothing = next(t for t in insights.saved_themes(store) if t.name == "Nothing")
    assert insights.delete_theme(store, nothing.id) is True
    assert insights.delete_theme(store, nothing.id) is False
    assert [t.name for t in insights.saved_themes(store)] == ["Dark mode", "Exports"]


def test_preset_periods_and_explore_links() -> None:
    assert insights.top_enterprise_feature_requests(date(2026, 5, 15)) == DemandScope(
        start=date(2026, 4, 1), end=date(2026, 5, 15), categories=("feature_request",), tiers=("enterprise",))
    assert [insights.period_range(p, date(2026, 5, 15)) for p in ("quarter", "30d", "90d", "365d")] == [
        (date(2026, 4, 1), date(2026, 5, 15)), (date(2026, 4, 16), date(2026, 5, 15)),
        (date(2026, 2, 15), date(2026, 5, 15)), (date(2025, 5, 16), date(2026, 5, 15))]
    assert insights.period_range("custom", date(2026, 5, 15), [date(2026, 3, 9), date(2026, 3, 1)]) == (
        date(2026, 3, 1), date(2026, 3, 9))
    with pytest.raises(ValueError, match="Pick"):
        insights.period_range("custom", date(2026, 5, 15))
    scope = DemandScope(start=Q2.start, end=Q2.end, sources=("zendesk",), tiers=("enterprise",))
    assert insights.theme_explore_params(scope, EXPORT) == {
        "period": "custom", "start": "2026-04-01", "end": "2026-06-30", "source": "zendesk", "tier": "enterprise",
        "category": "feature_request", "tag": "export"}
    assert insights.theme_explore_params(scope, ThemeKey("saved", query='"dark mode"', name="D")) == {
        "period": "custom", "start": "2026-04-01", "end": "2026-06-30", "source": "zendesk", "tier": "enterprise",
        "category": "feature_request", "q": '"dark mode"'}
    with pytest.raises(ValueError, match="unknown tier"):
        DemandScope(start=Q2.start, end=Q2.end, tiers=("gold",))


# -- emerging topics ----------------------------------------------------------------------------------------------


def topic_records() -> list[NormalizedRecord]:
    """Ten records a period. Before: login trouble everywhere. Now: dark mode (6), csv export (4), login (2)."""
    before = [date(2026, 3, 1)] * 10
    now = [date(2026, 4, 1)] * 10
    texts_before = ["Login fails again"] * 8 + ["The invoice is wrong", "Thanks for the help"]
    texts_now = (["Please add dark mode", "Dark mode for the dashboard", "dark mode would help at night",
                  "I want Dark Mode", "dark mode please", "Dark-mode toggle"]
                 + ["CSV export is slow", "csv export misses columns", "Need a CSV export", "csv export breaks"])
    texts_now[7] += " and login fails"
    texts_now[9] += " after login"
    records = [rec("intercom", f"b{i}", day, text=text, category="other") for i, (day, text) in
               enumerate(zip(before, texts_before))]
    records += [rec("intercom", f"n{i}", day, text=text, category="other") for i, (day, text) in
                enumerate(zip(now, texts_now))]
    return records


def lift(a: int, n: int, b: int, m: int) -> float:
    return ((a + 1) / (n + 1)) / ((b + 1) / (m + 1))


def test_emerging_topics_leave_out_words_a_phrase_explains() -> None:
    with Store(":memory:") as store:
        store.upsert_records(topic_records())
        report = emerging_topics(store, Filters(start=date(2026, 3, 16), end=date(2026, 4, 14)), min_records=3)
    # "dark" and "mode" only ever appear as "dark mode"; "csv" and "export" only as "csv export": the phrases say it.
    assert report.terms == (
        EmergingTerm("dark mode", "phrase", 6, 0, 0.6, 0.0, lift(6, 10, 0, 10), '"dark mode"'),
        EmergingTerm("csv export", "phrase", 4, 0, 0.4, 0.0, lift(4, 10, 0, 10), '"csv export"'),
    )
    assert report.terms[0].explanation() == "in 60.0% of records (6) vs 0.0% (0) before: 7.0x"
    assert insights.term_explore_params(Filters(start=date(2026, 3, 16), end=date(2026, 4, 14)), report.terms[0]) == {
        "period": "custom", "start": "2026-03-16", "end": "2026-04-14", "q": '"dark mode"'}


def test_emerging_topics_sample_evenly_past_the_cap_and_need_two_periods() -> None:
    with Store(":memory:") as store:
        store.upsert_records(topic_records())
        report = emerging_topics(store, Filters(start=date(2026, 3, 16), end=date(2026, 4, 14)), min_records=1,
                                 max_rows=4)
        with pytest.raises(ValueError, match="start and an end"):
            emerging_topics(store, Filters(start=date(2026, 3, 16)))
    # Ten records a period and at most four read: every third id (ids 3, 6, 9 before; 12, 15, 18 now).
    assert (report.records, report.scanned, report.previous_records, report.previous_scanned) == (10, 3, 10, 3)


def test_terms_skip_stop_words_numbers_and_accents() -> None:
    assert insights.terms_of("Please add the Dark-Mode, merci: café 2026 ok!") == {
        "add", "dark", "mode", "dark mode", "mode merci", "merci", "merci cafe", "cafe"}  # "the" ends a phrase


def test_tags_that_only_repeat_a_category_tier_or_source_never_make_a_theme(tmp_path: Path) -> None:
    with Store(tmp_path / "facets.db") as store:
        store.upsert_records([
            NormalizedRecord(
                source="zendesk", source_id=str(n), content="export please", customer_email=f"p{n}@co{n}.example",
                customer_tier="enterprise", category="feature_request",
                created_at=datetime(2026, 5, 2, 12, tzinfo=timezone.utc),
                metadata={"tags": ["feature_request", "enterprise", "Enterprise-plan", "zendesk", "export"]},
            )
            for n in range(4)
        ])
        scope = insights.DemandScope(start=date(2026, 5, 1), end=date(2026, 5, 31))
        report = insights.rank_tag_themes(store, scope)
    assert [theme.key.label for theme in report.themes] == ["feature_request · export"]
