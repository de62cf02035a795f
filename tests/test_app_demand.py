"""Demand page (AppTest): the ranking, the one-click enterprise preset, the accounts behind a theme, the way to the
records in Explore, emerging topics, saved themes, account merges, and hostile tags shown inert."""

from __future__ import annotations

from datetime import timedelta

import pytest
from app_fixtures import (
    XSS_TAG,
    XSS_TITLE,
    AppEnv,
    app_env,  # noqa: F401  (fixture)
    day,
    markdown_bodies,
    record,
    run_page,
    seed,
    texts,
)
from streamlit.testing.v1 import AppTest

from feedback_sources.insights import quarter_start
from feedback_sources.models import Category, NormalizedRecord, Tier
from feedback_sources.store import Store
from feedback_sources.ui.explore_view import ExploreView

DEMAND = "app_pages/demand.py"
FR = Category.feature_request


def demand_records() -> list[NormalizedRecord]:
    """This quarter: exports asked by acme (enterprise, two people), globex (business) and a gmail user (free);
    SSO by acme; a hostile tag. The day before the quarter: acme asked for exports once."""
    before = (day(0) - quarter_start(day(0))).days + 1
    return [
        record("zendesk", "z1", days_ago=0, tier=Tier.enterprise, email="ann@acme.com", tags=("export",),
               content="CSV export please"),
        record("intercom", "i1", days_ago=0, tier=Tier.enterprise, email="bob@acme.com", tags=("export", "sso"),
               content="export to excel and sso"),
        record("zendesk", "z3", days_ago=0, tier=Tier.business, email="dana@globex.io", tags=("export",),
               content="export to pdf"),
        record("intercom", "i2", days_ago=0, tier=Tier.free, email="eve@gmail.com", tags=("export",),
               content="export my data"),
        record("zendesk", "x1", days_ago=0, tier=Tier.enterprise, email="mallory@evil.example", tags=(XSS_TAG,),
               title=XSS_TITLE, content="hostile"),
        record("zendesk", "z2", days_ago=0, tier=Tier.enterprise, category=Category.bug_report,
               email="ann@acme.com", tags=("export",), content="export crashes"),
        record("zendesk", "z6", days_ago=before, tier=Tier.enterprise, email="ann@acme.com", tags=("export",),
               content="export"),
    ]


def themes(at: AppTest) -> list[dict[str, object]]:
    frame = at.dataframe[0].value
    return frame[["theme", "score", "accounts", "records", "intercom", "zendesk", "previous_score", "trend"]].to_dict(
        "records")


def account_rows(at: AppTest) -> list[tuple[object, ...]]:
    frame = at.dataframe[1].value
    return [tuple(row) for row in frame[["account", "kind", "tier", "weight", "records", "people"]].itertuples(
        index=False)]


@pytest.fixture
def demand(app_env: AppEnv) -> AppTest:
    seed(app_env.demo_db, demand_records())
    return run_page(app_env, DEMAND)


def test_empty_store_says_so(app_env: AppEnv) -> None:
    at = run_page(app_env, DEMAND)
    assert [s.value for s in at.subheader] == ["No feedback yet"]
    assert not at.dataframe


def test_feature_requests_this_quarter_ranked_by_weighted_accounts(demand: AppTest) -> None:
    at = demand
    assert [t.value for t in at.title] == ["Demand"]
    # The store's first record is the day before the quarter: the previous quarter is not a period of zero demand,
    # so no trend is shown as a number.
    assert themes(at) == [
        {"theme": "Feature request · export", "score": 16.0, "accounts": 3, "records": 4, "intercom": 2,
         "zendesk": 2, "previous_score": 10.0, "trend": "no data before this period"},
        {"theme": f"Feature request · {XSS_TAG}", "score": 10.0, "accounts": 1, "records": 1, "intercom": 0,
         "zendesk": 1, "previous_score": 0.0, "trend": "no data before this period"},
        {"theme": "Feature request · sso", "score": 10.0, "accounts": 1, "records": 1, "intercom": 1, "zendesk": 0,
         "previous_score": 0.0, "trend": "no data before this period"},
    ]
    # The top theme's accounts show at once.
    assert account_rows(at) == [("acme.com", "domain", "Enterprise", 10.0, 2, 2),
                                ("globex.io", "domain", "Business", 5.0, 1, 1),
                                ("eve@gmail.com", "person", "Free", 1.0, 1, 1)]
    assert "Feature request · export" in texts(at)


def test_the_enterprise_preset_is_one_click(demand: AppTest) -> None:
    at = demand
    at.session_state["demand_categories"] = []  # whatever was on screen before
    at.session_state["demand_weight_enterprise"] = 3.0
    at.run()
    at.button(key="demand_preset").click().run()
    assert not at.exception
    assert (at.session_state["demand_period"], at.session_state["demand_categories"],
            at.session_state["demand_tiers"], at.session_state["demand_weight_enterprise"]) == (
        "this_quarter", ["feature_request"], ["enterprise"], 10.0)
    assert [(t["theme"], t["score"], t["accounts"], t["records"]) for t in themes(at)] == [
        ("Feature request · export", 10.0, 1, 2), (f"Feature request · {XSS_TAG}", 10.0, 1, 1),
        ("Feature request · sso", 10.0, 1, 1)]
    assert account_rows(at) == [("acme.com", "domain", "Enterprise", 10.0, 2, 2)]


def test_selecting_a_theme_shows_its_accounts_and_opens_its_records_in_explore(demand: AppTest) -> None:
    at = demand
    at.session_state[at.dataframe[0].key] = {"selection": {"rows": [2], "columns": [], "cells": []}}
    at.run()
    assert "Feature request · sso" in texts(at)
    assert account_rows(at) == [("acme.com", "domain", "Enterprise", 10.0, 1, 1)]
    at.button(key="demand_open_theme").click().run()
    assert not at.exception
    start = quarter_start(day(0))
    assert at.session_state["explore_view"] == ExploreView(categories=("feature_request",), period="custom",
                                                           start=start, end=day(0), tag="sso")
    assert [m.label for m in at.metric] == ["Records", "Customers", "Enterprise", "Change"]  # Explore's KPIs
    assert at.query_params == {"category": "feature_request", "period": "custom", "start": start.isoformat(),
                               "end": day(0).isoformat(), "tag": "sso"}


def test_weights_change_the_ranking(demand: AppTest) -> None:
    at = demand
    at.number_input(key="demand_weight_free").set_value(40.0).run()
    assert [(t["theme"], t["score"]) for t in themes(at)] == [
        ("Feature request · export", 55.0), (f"Feature request · {XSS_TAG}", 10.0), ("Feature request · sso", 10.0)]


def test_hostile_tags_only_reach_tables_and_plain_text(demand: AppTest) -> None:
    at = demand
    at.session_state[at.dataframe[0].key] = {"selection": {"rows": [1], "columns": [], "cells": []}}
    at.run()
    assert f"Feature request · {XSS_TAG}" in texts(at)
    assert account_rows(at) == [("evil.example", "domain", "Enterprise", 10.0, 1, 1)]
    for body in markdown_bodies(at) + [b.label for b in at.button]:
        for hostile in ("<b>", "onerror", "<script"):
            assert hostile not in body


def test_saved_search_themes_and_account_merges(demand: AppTest) -> None:
    at = demand
    at.radio(key="demand_view").set_value("saved").run()
    at.text_input(key="demand_theme_name").input("Exports")
    at.text_input(key="demand_theme_query").input("export*")
    at.button[[b.label for b in at.button].index("Save as theme")].click().run()
    assert [s.value for s in at.success] == ["Theme saved."]
    at.text_input(key="demand_theme_name").input("Broken")
    at.text_input(key="demand_theme_query").input('"unclosed')
    at.button[[b.label for b in at.button].index("Save as theme")].click().run()
    assert len(at.error) == 1 and "not understood" in at.error[0].value

    at.radio(key="demand_view").set_value("themes").run()
    at.radio(key="demand_kind").set_value("saved").run()
    assert [(t["theme"], t["score"], t["accounts"], t["records"]) for t in themes(at)] == [("Exports", 16.0, 3, 4)]

    at.radio(key="demand_view").set_value("merges").run()
    at.text_input(key="demand_merge_alias").input("person:eve@gmail.com")
    at.text_input(key="demand_merge_into").input("globex.io")
    at.button[[b.label for b in at.button].index("Merge")].click().run()
    assert [s.value for s in at.success] == ["Merged."]
    assert at.dataframe[0].value[["alias", "account"]].values.tolist() == [["person:eve@gmail.com", "globex.io"]]

    at.radio(key="demand_view").set_value("themes").run()
    # eve now counts as globex.io, a business account: three records, two accounts.
    assert [(t["theme"], t["score"], t["accounts"], t["records"]) for t in themes(at)] == [("Exports", 15.0, 2, 4)]
    at.radio(key="demand_view").set_value("merges").run()
    at.button(key="demand_unmerge").click().run()
    assert not at.exception
    with Store(demand_db(at)) as store:
        assert store.conn.execute("SELECT COUNT(*) FROM account_merges").fetchone()[0] == 0


def demand_db(at: AppTest) -> str:
    import os

    return os.environ["FEEDBACK_DEMO_DB"]


def test_emerging_topics_link_to_explore(app_env: AppEnv) -> None:
    start = quarter_start(day(0))
    length = (day(0) - start).days + 1
    records = [record("intercom", f"n{i}", days_ago=0, content="dark mode please", email=f"p{i}@x{i}.com")
               for i in range(6)]
    records += [record("intercom", f"b{i}", days_ago=length, content="login broken", email=f"q{i}@y{i}.com")
                for i in range(6)]
    seed(app_env.demo_db, records)
    at = run_page(app_env, DEMAND)
    at.radio(key="demand_view").set_value("emerging").run()
    frame = at.dataframe[0].value
    assert frame[["term", "kind", "records", "previous_records"]].values.tolist() == [["dark mode", "phrase", 6, 0]]
    assert frame["explore"].tolist() == [
        f"./?period=custom&start={start.isoformat()}&end={day(0).isoformat()}&category=feature_request"
        "&q=%22dark%20mode%22"]
    at.session_state[at.dataframe[0].key] = {"selection": {"rows": [0], "columns": [], "cells": []}}
    at.run()
    assert "dark mode: in 100.0% of records (6) vs 0.0% (0) before: 7.0x" in texts(at)
    at.button(key="demand_open_term").click().run()
    assert at.session_state["explore_view"] == ExploreView(categories=("feature_request",), period="custom",
                                                           start=start, end=day(0), text='"dark mode"')
    assert [m.value for m in at.metric][:1] == ["6"]


def test_custom_period(demand: AppTest) -> None:
    at = demand
    at.selectbox(key="demand_period").set_value("custom").run()
    at.date_input(key="demand_dates").set_value((day(-400), day(-300))).run()
    assert not at.exception
    assert [i.value for i in at.info] == [
        "No tagged feedback matches. Widen the period or the categories, or save a search as a theme."]
    at.date_input(key="demand_dates").set_value((day(-400), day(0) + timedelta(days=0))).run()
    assert themes(at)[0]["theme"] == "Feature request · export"


def test_suggested_merges_fold_an_organization_into_its_domain(app_env: AppEnv) -> None:
    def ticket(source_id: str, email: str) -> NormalizedRecord:
        base = record("zendesk", source_id, days_ago=0, tier=Tier.enterprise, email=email, tags=("export",))
        return base.model_copy(update={"metadata": {**base.metadata, "organization_id": "42",
                                                    "organization_name": "Acme Inc"}})

    seed(app_env.demo_db, [ticket("1", "ann@acme.com"), ticket("2", "bob@acme.com"), ticket("3", "cy@gmail.com")])
    at = run_page(app_env, DEMAND)
    assert account_rows(at) == [("acme.com", "domain", "Enterprise", 10.0, 2, 2),
                                ("Acme Inc (zendesk organization 42)", "organization", "Enterprise", 10.0, 1, 1)]
    at.radio(key="demand_view").set_value("merges").run()
    at.button(key="demand_suggest").click().run()
    assert at.dataframe[0].value.values.tolist() == [["org:zendesk:42", "acme.com", 2, 2]]
    at.button(key="demand_merge_suggested").click().run()
    assert at.dataframe[0].value[["alias", "account"]].values.tolist() == [["org:zendesk:42", "acme.com"]]
    at.radio(key="demand_view").set_value("themes").run()
    assert account_rows(at) == [("acme.com", "domain", "Enterprise", 10.0, 3, 3)]
