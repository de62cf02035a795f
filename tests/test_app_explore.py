"""Explore page (AppTest): empty states, KPIs, filters in the URL, search errors, paging, the inert detail view."""

from __future__ import annotations

import json
from typing import Any

from app_fixtures import (
    XSS_CONTENT,
    XSS_TAG,
    XSS_TITLE,
    AppEnv,
    day,
    app_env,  # noqa: F401  (fixture)
    markdown_bodies,
    record,
    run_page,
    seed,
    texts,
)
import pandas as pd
import pyarrow as pa
from streamlit.testing.v1 import AppTest

from feedback_sources.models import Category, Tier
from feedback_sources.store import Store
from feedback_sources.ui.explore_view import (
    BREAKDOWN_POINT,
    CHART_SELECTION,
    HEATMAP_POINT,
    POINT_FIELD,
    TAG_POINT,
    VOLUME_POINT,
    ExploreView,
    apply_selection,
    chart_point,
    selected_points,
)

EXPLORE = "app_pages/explore.py"


def metrics(at: AppTest) -> dict[str, str]:
    return {m.label: m.value for m in at.metric}


def table_titles(at: AppTest) -> list[str]:
    return list(at.dataframe[0].value["title"])


def test_empty_demo_store_offers_the_demo_data(app_env: AppEnv) -> None:
    at = run_page(app_env, EXPLORE)
    assert at.session_state["workspace_mode"] == "demo"
    assert [s.value for s in at.subheader] == ["No feedback yet"]
    assert [b.label for b in at.button if b.key == "explore_load_demo"] == ["Load demo data"]
    assert not at.metric and not at.dataframe


def test_empty_real_store_points_to_connections_and_sync(app_env: AppEnv) -> None:
    at = run_page(app_env, EXPLORE, mode="real")
    assert [s.value for s in at.subheader] == ["No feedback yet"]
    assert [link.label for link in at.get("page_link")] == ["Connections", "Sync"]
    assert not app_env.demo_db.exists()  # the real workspace never touches the demo database


def test_kpis_and_table_for_the_whole_store(app_env: AppEnv) -> None:
    seed(app_env.demo_db)
    at = run_page(app_env, EXPLORE)
    assert metrics(at) == {"Records": "12", "Customers": "11", "Enterprise": "25%", "Change": "n/a"}
    assert {m.label: m.help for m in at.metric} == {
        "Records": "Pieces of feedback that match the filters.",
        "Customers": "Different people who sent that feedback.",
        "Enterprise": "How much of that feedback comes from customers on the Enterprise plan.",
        "Change": "Pick a period to compare it with the same number of days just before.",
    }
    frame = at.dataframe[0].value
    # Demo records link to vendor hosts that do not exist: the demo table has no link column.
    assert list(frame.columns) == ["created_at", "source_name", "title", "category_label", "tier_label", "customer"]
    assert len(frame) == 12
    first = frame.iloc[0].to_dict()
    assert (first["source_name"], first["title"], first["category_label"], first["tier_label"]) == (
        "Intercom", "Too slow", "Complaint", "Business")
    assert at.query_params == {}


def test_real_table_links_only_to_http_urls(app_env: AppEnv) -> None:
    seed(app_env.real_db)
    at = run_page(app_env, EXPLORE, mode="real")
    frame = at.dataframe[0].value
    assert list(frame.columns) == ["created_at", "source_name", "title", "category_label", "tier_label", "customer",
                                   "link"]
    hostile = frame[frame["title"] == XSS_TITLE].iloc[0]
    assert pd.isna(hostile["link"])  # a javascript: URL never becomes a link
    assert frame[frame["title"] == "Export crashes"].iloc[0]["link"] == "https://demo.zendesk.com/agent/tickets/1"


def test_filters_change_the_counts_and_land_in_the_url(app_env: AppEnv) -> None:
    seed(app_env.demo_db)
    at = run_page(app_env, EXPLORE)
    at.multiselect(key="explore_sources").set_value(["zendesk"]).run()
    assert metrics(at)["Records"] == "4"
    assert at.query_params == {"source": "zendesk"}
    at.multiselect(key="explore_tiers").set_value(["enterprise"]).run()
    assert metrics(at)["Records"] == "2"
    assert table_titles(at) == ["Export crashes", "Dark mode please"]
    assert at.query_params == {"source": "zendesk", "tier": "enterprise"}
    at.text_input(key="explore_text").set_value("export").run()
    assert table_titles(at) == ["Export crashes"]
    assert at.query_params == {"source": "zendesk", "tier": "enterprise", "q": "export"}


def test_a_shared_link_reproduces_the_view(app_env: AppEnv) -> None:
    seed(app_env.demo_db)
    at = run_page(app_env, EXPLORE, query={"tier": "enterprise,unknown", "category": "bug_report,praise"})
    assert at.multiselect(key="explore_tiers").value == ["enterprise", "unknown"]
    assert at.multiselect(key="explore_categories").value == ["bug_report", "praise"]
    assert sorted(table_titles(at)) == sorted(["Export crashes", XSS_TITLE, "Love it"])
    assert metrics(at)["Records"] == "3"


def test_relative_period_compares_with_the_previous_period(app_env: AppEnv) -> None:
    seed(app_env.demo_db)
    at = run_page(app_env, EXPLORE, query={"period": "7d"})
    assert at.selectbox(key="explore_period").value == "7d"
    # 8 records in the last 7 days, 1 in the 7 days before.
    assert metrics(at)["Records"] == "8"
    assert metrics(at)["Change"] == "+700%"
    at.selectbox(key="explore_period").set_value("30d").run()
    assert metrics(at)["Records"] == "9"
    assert at.query_params == {"period": "30d"}


def test_custom_period_uses_the_chosen_dates(app_env: AppEnv) -> None:
    seed(app_env.demo_db)
    at = run_page(app_env, EXPLORE)
    at.selectbox(key="explore_period").set_value("custom").run()
    first, last = at.date_input(key="explore_dates").value
    assert (first.isoformat(), last.isoformat()) == (at.query_params["start"], at.query_params["end"])
    assert metrics(at)["Records"] == "12"  # starts from the whole range of the data

    at.date_input(key="explore_dates").set_value((day(-3), day(-1))).run()
    assert sorted(table_titles(at)) == sorted(["Export crashes", "Dark mode please", "How do I invite teammates?",
                                               "Too slow", "NPS 9"])
    assert at.query_params == {"period": "custom", "start": day(-3).isoformat(), "end": day(-1).isoformat()}


def test_malformed_search_shows_the_syntax_error(app_env: AppEnv) -> None:
    seed(app_env.demo_db)
    at = run_page(app_env, EXPLORE, query={"q": '"dark mode'})
    assert [e.value for e in at.error] == [
        'Search not understood: Unbalanced quotes: close the "exact phrase" with a second quote.'
    ]
    assert not at.metric and not at.dataframe


def test_filters_matching_nothing_show_a_helpful_empty_state(app_env: AppEnv) -> None:
    seed(app_env.demo_db)
    at = run_page(app_env, EXPLORE, query={"q": "zebra"})
    assert metrics(at)["Records"] == "0"
    assert [i.value for i in at.info] == [
        "No feedback matches these filters. Widen the date range, clear the search or press Reset."
    ]
    at.button(key="explore_reset").click().run()
    assert metrics(at)["Records"] == "12"
    assert at.query_params == {}


def test_tag_filter_from_the_url_can_be_cleared(app_env: AppEnv) -> None:
    seed(app_env.demo_db)
    at = run_page(app_env, EXPLORE, query={"tag": "nps"})
    assert metrics(at)["Records"] == "3"
    assert "Only records tagged: nps" in texts(at)
    at.button(key="explore_clear_tag").click().run()
    assert metrics(at)["Records"] == "12"
    assert at.query_params == {}


def test_table_is_paged_and_never_holds_more_than_a_page(app_env: AppEnv) -> None:
    records = [record("zendesk", str(n), days_ago=n % 60) for n in range(120)]
    seed(app_env.demo_db, records)
    at = run_page(app_env, EXPLORE)
    pagination = at.get("pagination")[0]
    assert pagination.num_pages == 3
    assert len(at.dataframe[0].value) == 50
    pagination.set_value(3).run()
    assert len(at.dataframe[0].value) == 20
    assert "Rows 101–120 of 120. Select a row to read the whole record." in [c.value for c in at.caption]


def test_new_data_invalidates_the_cache(app_env: AppEnv) -> None:
    seed(app_env.demo_db)
    at = run_page(app_env, EXPLORE)
    assert metrics(at)["Records"] == "12"
    with Store(app_env.demo_db) as store:
        store.upsert_records([record("intercom", "late", days_ago=0, tier=Tier.enterprise,
                                     category=Category.praise)])
    at.run()
    assert metrics(at)["Records"] == "13"


def test_hostile_record_is_shown_as_plain_text_only(app_env: AppEnv) -> None:
    seed(app_env.demo_db)
    at = run_page(app_env, EXPLORE, query={"source": "intercom", "category": "bug_report"})
    assert table_titles(at) == [XSS_TITLE]
    at.session_state[at.dataframe[0].key] = {"selection": {"rows": [0], "columns": [], "cells": []}}
    at.run()
    assert XSS_TITLE in texts(at)
    assert [c.value for c in at.code] == [XSS_CONTENT]
    details = dict(at.dataframe[1].value.values.tolist())
    assert details["Tags"] == XSS_TAG
    assert details["Link"] == ""
    assert at.get("link_button") == []  # a javascript: URL never becomes a button
    for body in markdown_bodies(at):
        for hostile in ("<script", "onerror", "javascript:", "pixel.png"):
            assert hostile not in body


def test_load_demo_data_fills_the_page_from_the_emulator(app_env: AppEnv) -> None:
    at = run_page(app_env, EXPLORE)
    at.button(key="explore_load_demo").click().run()
    assert not at.exception
    with Store(app_env.demo_db) as store:
        total = store.count()
        assert store.distinct_values("source") == ["intercom", "spreadsheet", "surveymonkey", "zendesk"]
    assert total > 1000
    assert metrics(at)["Records"] == f"{total:,}"
    assert len(at.dataframe[0].value) == 50
    assert not app_env.real_db.exists()


def test_demo_detail_has_no_link_to_a_host_that_does_not_exist(app_env: AppEnv) -> None:
    seed(app_env.demo_db)
    at = run_page(app_env, EXPLORE, query={"q": "crashes"})
    at.session_state[at.dataframe[0].key] = {"selection": {"rows": [0], "columns": [], "cells": []}}
    at.run()
    assert at.get("link_button") == []
    assert dict(at.dataframe[1].value.values.tolist())["Link"] == ""


def test_detail_links_back_to_the_vendor(app_env: AppEnv) -> None:
    seed(app_env.real_db)
    at = run_page(app_env, EXPLORE, mode="real", query={"q": "crashes"})
    at.session_state[at.dataframe[0].key] = {"selection": {"rows": [0], "columns": [], "cells": []}}
    at.run()
    [button] = at.get("link_button")
    assert (button.label, button.proto.url) == ("Open in Zendesk", "https://demo.zendesk.com/agent/tickets/1")
    # The title, then the record's sentiment and the words that decided it (no themes found yet in this store).
    assert texts(at) == ["Export crashes", "Sentiment: Negative (-0.70) — decided by: crashes (-1.9)"]
    assert [c.value for c in at.code] == ["CSV export crashes on large files"]




def test_every_chart_mark_carries_the_point_a_click_filters_by(app_env: AppEnv) -> None:
    """Four charts select points on a click (the negative share is no filter); each mark's data holds its point, a
    hostile tag is plain data in the chart (a label, never markup), and the selection event maps back to filters
    (tests/test_ui_explore_view.py covers selected_points and apply_selection)."""
    seed(app_env.demo_db, [
        record("zendesk", "1", days_ago=1, tier=Tier.enterprise, category=Category.bug_report, tags=(XSS_TAG,)),
        record("intercom", "2", days_ago=2, tier=Tier.free, category=Category.praise, tags=("kind",)),
        record("intercom", "3", days_ago=3, tier=Tier.enterprise, category=Category.bug_report, tags=("kind",)),
    ])
    at = run_page(app_env, EXPLORE)
    charts = at.get("vega_lite_chart")
    assert [list(c.proto.selection_mode) for c in charts] == [[CHART_SELECTION]] * 4 + [[]]
    volume, tags, breakdown, heatmap = (chart_data(c) for c in charts[:4])
    assert json.loads(charts[1].proto.spec)["encoding"]["y"]["sort"] == ["kind", XSS_TAG]
    assert set(tags[POINT_FIELD]) == {chart_point(TAG_POINT, XSS_TAG), chart_point(TAG_POINT, "kind")}
    assert chart_point(BREAKDOWN_POINT, "intercom", "free") in set(breakdown[POINT_FIELD])
    assert chart_point(HEATMAP_POINT, "praise", "free") in set(heatmap[POINT_FIELD])
    bucket = day(-2).isoformat()
    assert chart_point(VOLUME_POINT, "praise", bucket, bucket) in set(volume[POINT_FIELD])
    view = apply_selection(ExploreView(), selected_points(
        {"selection": {CHART_SELECTION: [{POINT_FIELD: chart_point(TAG_POINT, XSS_TAG)}]}}))
    assert view == ExploreView(tag=XSS_TAG)


def chart_data(chart: Any) -> pd.DataFrame:
    """The rows a chart draws, as the page sent them (Arrow)."""
    return pa.ipc.open_stream(chart.proto.data.data).read_pandas()
