"""What a PM reads (AppTest): one set of periods on Explore and Demand, calendar periods that filter the right days,
human labels and fixed colours in the charts, readable local dates, no backticks and no formulas on screen."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from datetime import timedelta

from app_fixtures import AppEnv, app_env, day, markdown_bodies, record, run_page, seed  # noqa: F401
import pytest
from streamlit.testing.v1 import AppTest

from feedback_sources.models import Category, Tier
from feedback_sources.ui.charts import CATEGORY_COLORS, TIER_COLORS, SOURCE_COLORS
from feedback_sources.ui.labels import human_label
from feedback_sources.ui.periods import PERIODS
from feedback_sources.ui.text import readable_date

EXPLORE = "app_pages/explore.py"
DEMAND = "app_pages/demand.py"
LABELS = ["This month", "Last month", "This quarter", "Last quarter", "Last 7 days", "Last 30 days", "Last 90 days",
          "All time", "Custom"]


def period_labels(at: AppTest, key: str) -> list[str]:
    box = at.selectbox(key=key)
    return [PERIODS[o] for o in box.options] if box.options[0] in PERIODS else list(box.options)


def figures(at: AppTest) -> list[dict]:
    """The Vega-Lite spec of each chart on the page, in page order."""
    return [json.loads(chart.proto.spec) for chart in at.get("vega_lite_chart")]


def colours(figure: dict) -> dict[str, str]:
    """Legend label → colour, from the chart's colour scale (one entry per group drawn)."""
    scale = figure["encoding"]["color"]["scale"]
    return dict(zip(scale["domain"], scale["range"], strict=True))


def test_explore_and_demand_offer_the_same_periods(app_env: AppEnv) -> None:
    seed(app_env.demo_db)
    explore = run_page(app_env, EXPLORE)
    demand = run_page(app_env, DEMAND)
    assert period_labels(explore, "explore_period") == LABELS
    assert period_labels(demand, "demand_period") == LABELS
    assert demand.selectbox(key="demand_period").value == "this_quarter"

    # All time on Demand spans every stored record: its caption starts on the oldest record's day.
    demand.selectbox(key="demand_period").set_value("all").run()
    assert not demand.exception
    first = min(day(-d) for d in (1, 2, 3, 40, 1, 5, 6, 35, 2, 4, 10, 50))
    assert any(c.value.startswith(f"{readable_date(first)} to {readable_date(day(0))}") for c in demand.caption)


def test_last_month_on_explore_counts_the_whole_previous_calendar_month(app_env: AppEnv) -> None:
    this_month = day(0).replace(day=1)
    last_month_end = this_month - timedelta(days=1)
    inside = [(this_month - day(0)).days - 1, (last_month_end.replace(day=1) - day(0)).days]  # last and first day
    outside = [(this_month - day(0)).days, (last_month_end.replace(day=1) - day(0)).days - 1]
    records = [record("zendesk", f"in{n}", days_ago=-offset) for n, offset in enumerate(inside)]
    records += [record("zendesk", f"out{n}", days_ago=-offset) for n, offset in enumerate(outside)]
    seed(app_env.demo_db, records)
    at = run_page(app_env, EXPLORE, query={"period": "last_month"})
    assert at.selectbox(key="explore_period").value == "last_month"
    assert {m.label: m.value for m in at.metric}["Records"] == "2"
    assert sorted(at.dataframe[0].value["title"]) == ["zendesk in0", "zendesk in1"]


def test_charts_use_human_labels_and_the_fixed_colours(app_env: AppEnv) -> None:
    seed(app_env.demo_db)
    at = run_page(app_env, EXPLORE)
    volume, _tags, breakdown, heatmap, negative = figures(at)
    assert colours(volume) == {
        human_label(c): CATEGORY_COLORS[c] for c in ("bug_report", "feature_request", "support", "question",
                                                      "praise", "complaint", "other")}
    assert colours(breakdown) == {
        human_label(t): TIER_COLORS[t] for t in ("enterprise", "business", "professional", "free", "unknown")}
    assert breakdown["encoding"]["x"]["sort"] == ["Zendesk", "Intercom", "SurveyMonkey"]
    assert heatmap["encoding"]["y"]["sort"][:2] == ["Bug report", "Feature request"]
    # The negative-share lines keep each source's colour too.
    assert colours(negative) == {
        "Zendesk": SOURCE_COLORS["zendesk"], "Intercom": SOURCE_COLORS["intercom"],
        "SurveyMonkey": SOURCE_COLORS["surveymonkey"]}

    # Filtered to two categories, those two keep their colours.
    at.multiselect(key="explore_categories").set_value(["question", "praise"]).run()
    volume = figures(at)[0]
    assert colours(volume) == {"Question": CATEGORY_COLORS["question"], "Praise": CATEGORY_COLORS["praise"]}


@pytest.fixture
def kolkata(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """The machine's local time is UTC+5:30 all year: a record created at 12:00 UTC reads 17:30."""
    monkeypatch.setenv("TZ", "Asia/Kolkata")
    time.tzset()
    yield
    monkeypatch.undo()
    time.tzset()


def test_records_detail_and_reasons_read_as_words(app_env: AppEnv, kolkata: None) -> None:
    seed(app_env.demo_db, [
        record("zendesk", "1", days_ago=2, tier=Tier.enterprise, category=Category.bug_report, title="Export crashes",
               tags=("bug",)).model_copy(update={"metadata": {"tags": ["bug"], "category_reason": "tag `bug`",
                                                              "tier_reason": "plan `Acme Enterprise` matches "
                                                                             "`enterprise`"}}),
    ])
    at = run_page(app_env, EXPLORE)
    row = at.dataframe[0].value.iloc[0]
    assert (row["source_name"], row["category_label"], row["tier_label"]) == ("Zendesk", "Bug report", "Enterprise")
    at.session_state[at.dataframe[0].key] = {"selection": {"rows": [0], "columns": [], "cells": []}}
    at.run()
    details = dict(at.dataframe[1].value.values.tolist())
    assert details["Created"] == f"{day(-2).day} {day(-2):%b %Y}, 17:30"
    assert (details["Source"], details["Category"], details["Tier"]) == ("Zendesk", "Bug report", "Enterprise")
    reasons = [m.value.replace("\\", "") for m in at.markdown if " — because " in m.value]
    assert reasons == ["Category: **Bug report** — because tag “bug”",
                       "Tier: **Enterprise** — because plan “Acme Enterprise” matches “enterprise”"]
    for body in markdown_bodies(at):
        assert "`" not in body.replace("\\`", "")



def test_no_formula_or_internal_name_on_the_first_screen(app_env: AppEnv) -> None:
    seed(app_env.demo_db)
    at = run_page(app_env, EXPLORE)
    shown = " ".join(markdown_bodies(at) + [m.label for m in at.metric])
    for internal in ("bug_report", "feature_request", "surveymonkey", "zendesk", "×", "÷", "=", "enterprise_share"):
        assert internal not in shown, internal
    assert all(m.help for m in at.metric)  # each number is explained in words
