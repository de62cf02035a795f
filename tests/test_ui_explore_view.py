"""The Explore view: URL <-> view, hand-edited URLs, the Export page's summary, chart clicks -> filters."""

from __future__ import annotations

from datetime import date, timedelta

from hypothesis import given
from hypothesis import strategies as s

from feedback_sources.store import Filters
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
    describe_view,
    selected_points,
    view_from_query_params,
    view_to_query_params,
)
from feedback_sources.ui.labels import CATEGORY_VALUES, TIER_VALUES
from feedback_sources.ui.periods import PERIODS

TODAY = date(2026, 3, 15)


# -- URL <-> view -------------------------------------------------------------------------------------------------


def test_default_view_has_an_empty_url_and_no_filters() -> None:
    assert view_to_query_params(ExploreView()) == {}
    assert view_from_query_params({}) == ExploreView()
    assert ExploreView().to_filters(TODAY) == Filters()


def test_full_view_round_trips_through_readable_params() -> None:
    view = ExploreView(
        sources=("zendesk", "intercom"),
        tiers=("enterprise", "unknown"),
        categories=("bug_report",),
        period="custom",
        start=date(2026, 1, 1),
        end=date(2026, 1, 31),
        text='"dark mode" OR theme',
        tag="ui",
    )
    params = view_to_query_params(view)
    assert params == {
        "source": "zendesk,intercom",
        "tier": "enterprise,unknown",
        "category": "bug_report",
        "period": "custom",
        "start": "2026-01-01",
        "end": "2026-01-31",
        "q": '"dark mode" OR theme',
        "tag": "ui",
    }
    assert view_from_query_params(params) == view


def test_relative_period_stays_relative_in_the_url() -> None:
    view = ExploreView(period="30d")
    assert view_to_query_params(view) == {"period": "30d"}
    assert view.to_filters(TODAY) == Filters(start=date(2026, 2, 14), end=TODAY)
    assert view.to_filters(date(2026, 4, 1)) == Filters(start=date(2026, 3, 3), end=date(2026, 4, 1))


def test_hand_edited_url_keeps_what_is_valid_and_drops_the_rest() -> None:
    params = {
        "source": "zendesk,,not a source,zendesk",
        "tier": ["enterprise", "platinum"],
        "category": "bug_report,haiku",
        "period": "custom",
        "start": "2026-02-30",
        "end": "2026-01-10",
        "q": "  x" * 400,
        "unknown": "1",
    }
    view = view_from_query_params(params)
    assert view == ExploreView(
        sources=("zendesk",),
        tiers=("enterprise",),
        categories=("bug_report",),
        period="custom",
        start=None,
        end=date(2026, 1, 10),
        text=("  x" * 400).strip()[:500],
        tag=None,
    )


def test_reversed_custom_dates_are_swapped_and_unknown_period_falls_back() -> None:
    swapped = view_from_query_params({"period": "custom", "start": "2026-02-10", "end": "2026-02-01"})
    assert (swapped.start, swapped.end) == (date(2026, 2, 1), date(2026, 2, 10))
    assert view_from_query_params({"period": "forever", "start": "2026-01-01"}) == ExploreView()
    assert view_from_query_params({"period": "custom"}) == ExploreView()


views = s.builds(
    ExploreView,
    sources=s.lists(s.sampled_from(["zendesk", "intercom", "surveymonkey"]), unique=True).map(tuple),
    tiers=s.lists(s.sampled_from(TIER_VALUES), unique=True).map(tuple),
    categories=s.lists(s.sampled_from(CATEGORY_VALUES), unique=True).map(tuple),
    period=s.sampled_from(sorted(set(PERIODS) - {"custom"})),
    text=s.text(min_size=0, max_size=40).map(str.strip),
    tag=s.one_of(s.none(), s.text(min_size=1, max_size=20).map(str.strip).filter(bool)),
)


@given(views)
def test_any_view_survives_the_url(view: ExploreView) -> None:
    assert view_from_query_params(view_to_query_params(view)) == view


@given(s.dates(min_value=date(2000, 1, 1), max_value=date(2100, 1, 1)), s.integers(0, 4000))
def test_any_custom_range_survives_the_url(start: date, length: int) -> None:
    view = ExploreView(period="custom", start=start, end=start + timedelta(days=length))
    assert view_from_query_params(view_to_query_params(view)) == view


def test_describe_view_lists_every_active_filter() -> None:
    view = ExploreView(sources=("zendesk",), period="7d", text="export", tag="csv")
    assert describe_view(view, TODAY) == [
        ("Sources", "Zendesk"),
        ("Tiers", "All"),
        ("Categories", "All"),
        ("Dates", "9 Mar 2026 to 15 Mar 2026"),
        ("Search", "export"),
        ("Tag", "csv"),
    ]


# -- chart clicks -------------------------------------------------------------------------------------------------


def test_volume_click_narrows_to_that_category_and_bucket() -> None:
    point = {"x": "2026-03-02", "y": 4, "customdata": [VOLUME_POINT, "bug_report", "2026-03-02", "2026-03-08"]}
    assert apply_selection(ExploreView(sources=("zendesk",)), [point]) == ExploreView(
        sources=("zendesk",), categories=("bug_report",), period="custom",
        start=date(2026, 3, 2), end=date(2026, 3, 8),
    )


def test_box_selection_over_several_bars_takes_their_union() -> None:
    points = [
        {"customdata": [VOLUME_POINT, "praise", "2026-03-01", "2026-03-01"]},
        {"customdata": [VOLUME_POINT, "bug_report", "2026-03-03", "2026-03-03"]},
        {"customdata": [VOLUME_POINT, "praise", "2026-03-02", "2026-03-02"]},
    ]
    narrowed = apply_selection(ExploreView(), points)
    assert narrowed == ExploreView(categories=("praise", "bug_report"), period="custom",
                                   start=date(2026, 3, 1), end=date(2026, 3, 3))



def test_a_chart_selection_event_reads_back_as_the_points_clicked() -> None:
    event = {"selection": {CHART_SELECTION: [
        {POINT_FIELD: chart_point(VOLUME_POINT, "praise", "2026-03-01", "2026-03-01")},
        {POINT_FIELD: chart_point(TAG_POINT, "<b>x</b>")},
        {POINT_FIELD: "not json"}, {"other": 1}, "junk",
    ]}}
    assert selected_points(event) == [{"customdata": ["volume", "praise", "2026-03-01", "2026-03-01"]},
                                      {"customdata": ["tag", "<b>x</b>"]}]
    assert apply_selection(ExploreView(), selected_points(event)) == ExploreView(
        categories=("praise",), period="custom", start=date(2026, 3, 1), end=date(2026, 3, 1), tag="<b>x</b>")
    for nothing in (None, {}, {"selection": {}}, {"selection": {CHART_SELECTION: None}}, {"selection": "x"}):
        assert selected_points(nothing) == []

def test_breakdown_heatmap_and_tag_clicks() -> None:
    assert apply_selection(ExploreView(), [{"customdata": [BREAKDOWN_POINT, "intercom", "unknown"]}]) == ExploreView(
        sources=("intercom",), tiers=("unknown",)
    )
    assert apply_selection(ExploreView(), [{"customdata": [HEATMAP_POINT, "praise", "free"]}]) == ExploreView(
        categories=("praise",), tiers=("free",)
    )
    assert apply_selection(ExploreView(period="7d"), [{"customdata": [TAG_POINT, "<b>x</b>"]}]) == ExploreView(
        period="7d", tag="<b>x</b>"
    )


def test_points_without_known_customdata_change_nothing() -> None:
    view = ExploreView(text="export")
    junk = [{"x": 1}, {"customdata": None}, {"customdata": ["other", "a"]}, {"customdata": [HEATMAP_POINT, "haiku", "gold"]},
            {"customdata": [VOLUME_POINT, "praise", "not a date", "2026-01-01"]}]
    assert apply_selection(view, junk) is view
