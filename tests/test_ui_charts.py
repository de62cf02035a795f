"""Chart shaping (buckets, matrices) and the fixed colours."""

from __future__ import annotations

from datetime import date

from feedback_sources.ui.charts import (
    OTHER_COLOR,
    VolumeBar,
    color_for,
    granularity_for,
    matrix,
    volume_bars,
)
from feedback_sources.ui.labels import CATEGORY_VALUES, SOURCE_LABELS, TIER_VALUES

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


def test_every_category_tier_and_source_has_its_own_fixed_colour() -> None:
    for kind, values in (("category", CATEGORY_VALUES), ("tier", TIER_VALUES), ("source", tuple(SOURCE_LABELS))):
        colours = [color_for(kind, v) for v in values]
        assert OTHER_COLOR not in colours and len(set(colours)) == len(values), kind
    assert color_for("category", "something_new") == OTHER_COLOR
