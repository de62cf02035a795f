"""Date presets: calendar periods are whole months and quarters, rolling ones end today."""

from __future__ import annotations

from datetime import date

from feedback_sources.ui.periods import PERIODS, period_dates

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
