"""The rules behind the pages: URL <-> view, chart clicks -> filters, presets, chart shaping, safe display text."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date, datetime, timedelta, timezone

import pytest
from hypothesis import given
from hypothesis import strategies as s

from feedback_sources.store import Filters
from feedback_sources.ui_support import (
    BREAKDOWN_POINT,
    CATEGORY_VALUES,
    CHART_SELECTION,
    HEATMAP_POINT,
    PERIODS,
    POINT_FIELD,
    TAG_POINT,
    TIER_VALUES,
    VOLUME_POINT,
    ExploreView,
    OTHER_COLOR,
    SOURCE_LABELS,
    Kpi,
    SourceStatus,
    SyncWindow,
    VolumeBar,
    apply_selection,
    chart_point,
    chart_text,
    color_for,
    describe_view,
    granularity_for,
    history_rows,
    kpi_row,
    matrix,
    md_escape,
    page_count,
    page_offset,
    period_dates,
    plain_reason,
    progress_fraction,
    progress_text,
    readable_date,
    readable_datetime,
    record_details,
    relative_time,
    result_rows,
    safe_link,
    selected_points,
    snippet,
    source_status,
    sync_window,
    table_rows,
    view_from_query_params,
    view_to_query_params,
    volume_bars,
)

TODAY = date(2026, 3, 15)
NOW = datetime(2026, 3, 15, 12, 0, tzinfo=timezone.utc)


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


# -- chart shaping ---------------------------------------------------------------------------------------------------


def test_granularity_grows_with_the_span() -> None:
    assert granularity_for(date(2026, 1, 1), date(2026, 4, 1)) == "day"
    assert granularity_for(date(2026, 1, 1), date(2026, 12, 31)) == "week"
    assert granularity_for(date(2020, 1, 1), date(2026, 1, 1)) == "month"


def test_volume_bars_keep_days_for_short_spans() -> None:
    rows = [
        {"day": "2026-03-01", "grp": "praise", "records": 2},
        {"day": "2026-03-01", "grp": "bug_report", "records": 1},
        {"day": "2026-03-03", "grp": "praise", "records": 5},
    ]
    assert volume_bars(rows) == (
        "day",
        [
            VolumeBar(date(2026, 3, 1), date(2026, 3, 1), "bug_report", 1),
            VolumeBar(date(2026, 3, 1), date(2026, 3, 1), "praise", 2),
            VolumeBar(date(2026, 3, 3), date(2026, 3, 3), "praise", 5),
        ],
    )


def test_volume_bars_fold_long_spans_into_weeks_and_months() -> None:
    weekly = [
        {"day": "2026-01-05", "grp": "praise", "records": 1},  # Monday
        {"day": "2026-01-11", "grp": "praise", "records": 2},  # Sunday, same week
        {"day": "2026-09-01", "grp": "praise", "records": 3},
    ]
    assert volume_bars(weekly) == (
        "week",
        [
            VolumeBar(date(2026, 1, 5), date(2026, 1, 11), "praise", 3),
            VolumeBar(date(2026, 8, 31), date(2026, 9, 6), "praise", 3),
        ],
    )
    monthly = [
        {"day": "2023-02-03", "grp": "other", "records": 1},
        {"day": "2023-02-28", "grp": "other", "records": 1},
        {"day": "2026-12-31", "grp": "other", "records": 4},
    ]
    assert volume_bars(monthly) == (
        "month",
        [
            VolumeBar(date(2023, 2, 1), date(2023, 2, 28), "other", 2),
            VolumeBar(date(2026, 12, 1), date(2026, 12, 31), "other", 4),
        ],
    )
    assert volume_bars([]) == ("day", [])


def test_matrix_is_dense_and_ordered_by_vocabulary() -> None:
    rows = [
        {"category": "praise", "tier": "free", "records": 2},
        {"category": "bug_report", "tier": "enterprise", "records": 3},
        {"category": "bug_report", "tier": "unknown", "records": 1},
        {"category": "mystery", "tier": "free", "records": 7},
    ]
    assert matrix(rows, "category", "tier", CATEGORY_VALUES, TIER_VALUES) == (
        ["bug_report", "praise", "mystery"],
        ["enterprise", "free", "unknown"],
        [[3, 0, 1], [0, 2, 0], [0, 7, 0]],
    )


def test_chart_text_turns_markup_into_visible_characters() -> None:
    assert chart_text('<a href="http://x">y</a> & <br>') == '&lt;a href="http://x"&gt;y&lt;/a&gt; &amp; &lt;br&gt;'


# -- KPIs ------------------------------------------------------------------------------------------------------------


def test_kpis_with_a_previous_period() -> None:
    kpis = {"records": 150, "customers": 40, "enterprise_share": 0.25, "previous_records": 100}
    assert kpi_row(kpis) == [
        Kpi("Records", "150", None, "Pieces of feedback that match the filters."),
        Kpi("Customers", "40", None, "Different people who sent that feedback."),
        Kpi("Enterprise", "25%", None, "How much of that feedback comes from customers on the Enterprise plan."),
        Kpi("Change", "+50%", "+50 records",
            "Compared with the same number of days just before this period, which had 100 records."),
    ]


def test_kpis_without_or_with_an_empty_previous_period() -> None:
    base = {"records": 3, "customers": 2, "enterprise_share": 0.0}
    assert kpi_row({**base, "previous_records": None})[3] == Kpi(
        "Change", "n/a", None, "Pick a period to compare it with the same number of days just before."
    )
    assert kpi_row({**base, "previous_records": 0})[3] == Kpi(
        "Change", "new", "+3", "There was no feedback in the same number of days just before this period."
    )


def test_kpi_labels_are_short_words_without_formulas() -> None:
    kpis = kpi_row({"records": 1, "customers": 1, "enterprise_share": 1.0, "previous_records": 1})
    assert all(len(k.label) <= 12 for k in kpis)
    assert not [k for k in kpis if any(ch in k.label + k.help for ch in "=×÷/()`_")]


# -- table ----------------------------------------------------------------------------------------------------------


def test_paging_arithmetic() -> None:
    assert [page_count(n, 50) for n in (0, 1, 50, 51, 1_000_000)] == [1, 1, 1, 2, 20_000]
    assert [page_offset(p, 50) for p in (0, 1, 2, 20_000)] == [0, 0, 50, 999_950]


@pytest.mark.parametrize(
    "url, expected",
    [
        ("https://acme.zendesk.com/agent/tickets/1", "https://acme.zendesk.com/agent/tickets/1"),
        (" http://127.0.0.1:8765/x ", "http://127.0.0.1:8765/x"),
        ("javascript:alert(1)", None),
        ("JaVaScRiPt:alert(1)", None),
        ("data:text/html,<script>alert(1)</script>", None),
        ("//evil.example/x", None),
        ("https://", None),
        ("", None),
        (None, None),
        (42, None),
    ],
)
def test_safe_link_allows_only_http_urls(url: object, expected: str | None) -> None:
    assert safe_link(url) == expected


def test_table_rows_shape_store_rows() -> None:
    row = {
        "source": "intercom", "source_id": "c3", "title": None, "customer_name": None, "content": "Hi,\n  the export\tbreaks",
        "customer_email": "a@b.example", "customer_tier": None, "category": "praise",
        "created_at": "2026-03-01T10:00:00Z", "tags": '["x", "<y>"]', "url": "javascript:alert(1)",
    }
    assert table_rows([row]) == [
        {
            "created_at": datetime(2026, 3, 1, 10, 0, tzinfo=timezone.utc),
            "source": "intercom",
            "source_id": "c3",
            "source_name": "Intercom",
            "title": "Hi, the export breaks",
            "category_label": "Praise",
            "tier_label": "Unknown",
            "customer": "a@b.example",
            "tier": "unknown",
            "category": "praise",
            "tags": ["x", "<y>"],
            "link": None,
        }
    ]


def test_demo_rows_and_details_carry_no_link() -> None:
    row = {"source": "zendesk", "source_id": "1", "created_at": "2026-03-01T10:00:00Z",
           "url": "https://demo.zendesk.com/agent/tickets/1"}
    assert table_rows([row])[0]["link"] == "https://demo.zendesk.com/agent/tickets/1"
    assert table_rows([row], links=False)[0]["link"] is None
    assert dict(record_details(row, links=False))["Link"] == ""


def test_snippet_is_one_short_line() -> None:
    assert snippet(None) == ""
    assert snippet("a\n\n b") == "a b"
    assert snippet("word " * 40, length=20) == "word word word word…"


@pytest.fixture
def madrid(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """The machine's local time zone is Madrid (UTC+1 in March): dates are shown in it."""
    import time

    monkeypatch.setenv("TZ", "Europe/Madrid")
    time.tzset()
    yield
    monkeypatch.undo()
    time.tzset()


def test_readable_dates_are_local_and_short(madrid: None) -> None:
    assert readable_datetime(datetime(2026, 12, 4, 14, 3, tzinfo=timezone.utc)) == "4 Dec 2026, 15:03"
    assert readable_datetime(datetime(2026, 12, 4, 14, 3, tzinfo=timezone.utc), timezone.utc) == "4 Dec 2026, 14:03"
    assert readable_datetime(None) == ""
    assert [readable_date(v) for v in ("2026-03-09", date(2026, 3, 9), "2026-03-09T23:30:00Z", "garbage", None)] == [
        "9 Mar 2026", "9 Mar 2026", "10 Mar 2026", "garbage", "",
    ]
    assert table_rows([{"created_at": "2026-03-01T10:00:00Z"}])[0]["created_at"].utcoffset() == timedelta(hours=1)


def test_reasons_lose_their_backticks() -> None:
    assert plain_reason("tag `bug`") == "tag \u201cbug\u201d"
    assert plain_reason("requester plan `Acme Pro` matches `pro`") == "requester plan \u201cAcme Pro\u201d matches \u201cpro\u201d"
    assert plain_reason("odd ` reason") == "odd reason"
    assert plain_reason(None) == ""


def test_every_category_tier_and_source_has_its_own_fixed_colour() -> None:
    for kind, values in (("category", CATEGORY_VALUES), ("tier", TIER_VALUES), ("source", tuple(SOURCE_LABELS))):
        colours = [color_for(kind, v) for v in values]
        assert OTHER_COLOR not in colours and len(set(colours)) == len(values), kind
    assert color_for("category", "something_new") == OTHER_COLOR


def test_periods_are_calendar_and_rolling_ranges() -> None:
    today = date(2026, 5, 15)
    assert {p: period_dates(p, today) for p in PERIODS} == {
        "this_month": (date(2026, 5, 1), today),
        "last_month": (date(2026, 4, 1), date(2026, 4, 30)),
        "this_quarter": (date(2026, 4, 1), today),
        "last_quarter": (date(2026, 1, 1), date(2026, 3, 31)),
        "7d": (date(2026, 5, 9), today),
        "30d": (date(2026, 4, 16), today),
        "90d": (date(2026, 2, 15), today),
        "all": (None, None),
        "custom": (None, None),
    }
    assert period_dates("last_quarter", date(2026, 1, 2)) == (date(2025, 10, 1), date(2025, 12, 31))
    assert period_dates("last_month", date(2026, 3, 31)) == (date(2026, 2, 1), date(2026, 2, 28))
    assert list(PERIODS.values()) == ["This month", "Last month", "This quarter", "Last quarter", "Last 7 days",
                                      "Last 30 days", "Last 90 days", "All time", "Custom"]


def test_record_details_are_plain_strings(madrid: None) -> None:
    record = {
        "source": "zendesk", "source_id": "1", "created_at": "2026-03-01T10:00:00Z", "updated_at": "2026-03-02T10:00:00Z",
        "customer_name": "Ann", "customer_email": None, "customer_id": "7", "customer_tier": "enterprise",
        "category": "bug_report", "tags": ["a", "b"], "url": "https://acme.zendesk.com/agent/tickets/1",
    }
    assert record_details(record) == [
        ("Source", "Zendesk"), ("ID", "1"), ("Created", "1 Mar 2026, 11:00"), ("Updated", "2 Mar 2026, 11:00"),
        ("Customer", "Ann"), ("Email", ""), ("Customer ID", "7"), ("Tier", "Enterprise"), ("Category", "Bug report"),
        ("Tags", "a, b"), ("Link", "https://acme.zendesk.com/agent/tickets/1"),
    ]


# -- freshness -------------------------------------------------------------------------------------------------------


def test_relative_time() -> None:
    assert [relative_time(NOW - timedelta(seconds=n), NOW) for n in (5, 300, 7200, 3 * 86400)] == [
        "just now", "5 min ago", "2 h ago", "3 d ago",
    ]
    assert relative_time(None, NOW) == "never"


def test_source_status_marks_stale_and_failing_sources() -> None:
    fresh = {"records": 12, "last_success": "2026-03-15T11:00:00Z", "last_status": "complete"}
    old = {"records": 3, "last_success": "2026-03-13T11:00:00Z", "last_status": "failed"}
    assert [source_status("zendesk", True, fresh, NOW), source_status("intercom", True, old, NOW),
            source_status("surveymonkey", False, None, NOW)] == [
        SourceStatus("zendesk", True, 12, "1 h ago", False, False),
        SourceStatus("intercom", True, 3, "2 d ago", True, True),
        SourceStatus("surveymonkey", False, 0, "never", True, False),
    ]


# -- sync windows and progress --------------------------------------------------------------------------------------


def test_sync_presets() -> None:
    assert sync_window("since_last", NOW) == SyncWindow(None, None, True, "since the last sync (30 days on a first sync)")
    assert sync_window("7d", NOW) == SyncWindow(NOW - timedelta(days=7), None, True, "the last 7 days")
    assert sync_window("90d", NOW) == SyncWindow(NOW - timedelta(days=90), None, True, "the last 90 days")
    assert sync_window("custom", NOW, (date(2026, 3, 1), date(2026, 3, 3))) == SyncWindow(
        datetime(2026, 3, 1, tzinfo=timezone.utc), datetime(2026, 3, 4, tzinfo=timezone.utc), False,
        "2026-03-01 to 2026-03-03",
    )


@pytest.mark.parametrize(
    "custom, message",
    [
        (None, "Pick a start and an end date."),
        ((date(2026, 3, 1),), "Pick a start and an end date."),
        ((date(2026, 3, 3), date(2026, 3, 1)), "The end date is before the start date."),
        ((date(2026, 4, 1), date(2026, 4, 2)), "The range starts in the future."),
    ],
)
def test_bad_custom_sync_ranges_are_explained(custom: object, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        sync_window("custom", NOW, custom)  # type: ignore[arg-type]


def test_progress_bar_fraction_and_text() -> None:
    assert progress_fraction({"status": "running", "fetched": 50, "vendor_total": 200, "pages": 1}) == 0.25
    assert progress_fraction({"status": "running", "fetched": 500, "vendor_total": 200, "pages": 9}) == 0.99
    assert progress_fraction({"status": "running", "pages": 0}) == 0.02
    assert progress_fraction({"status": "running", "pages": 3}) == 0.75
    assert progress_fraction({"status": "failed", "pages": 1}) == 1.0
    running = {"source": "zendesk", "status": "running", "pages": 3, "fetched": 300, "vendor_total": 1200,
               "wait_seconds": 12.4, "message": ""}
    assert progress_text(running) == "zendesk: running, 3 pages, 300 of 1,200 records, waited 12 s on the rate limit"
    failed = {"source": "intercom", "status": "failed", "pages": 1, "fetched": 0, "message": "401: bad token"}
    assert progress_text(failed) == "intercom: failed, 1 page, 0 records - 401: bad token"


def test_result_and_history_rows_keep_the_table_columns() -> None:
    result = {"source": "zendesk", "status": "complete", "mode": "full", "fetched": 5, "new": 4, "updated": 1,
              "errors": None, "duration_seconds": 0.5, "pages": 1}
    assert result_rows([result]) == [{"source": "zendesk", "status": "complete", "mode": "full", "fetched": 5,
                                      "new": 4, "updated": 1, "errors": None, "duration_seconds": 0.5}]
    run = {**result, "started_at": "2026-03-15T11:00:00Z", "id": 3}
    assert history_rows([run]) == [{"started_at": datetime(2026, 3, 15, 11, tzinfo=timezone.utc), "source": "zendesk",
                                    "mode": "full", "status": "complete", "fetched": 5, "new": 4, "updated": 1,
                                    "errors": None, "duration_seconds": 0.5}]


def test_md_escape_leaves_no_markdown_syntax() -> None:
    assert md_escape("![x](http://e/p.png) **b** <i>\nnext") == r"\!\[x\]\(http\://e/p\.png\) \*\*b\*\* \<i\> next"
