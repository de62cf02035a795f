"""The date presets a page picks from (Explore and Demand), and the days each one stands for on a given day.

The keys are what a URL holds; the rolling ones also name the Sync page's windows.
"""

from __future__ import annotations

from datetime import date, timedelta

# One set of periods for every page that picks one (Explore and Demand): the keys are what a URL holds.
PERIODS: dict[str, str] = {
    "this_month": "This month",
    "last_month": "Last month",
    "this_quarter": "This quarter",
    "last_quarter": "Last quarter",
    "7d": "Last 7 days",
    "30d": "Last 30 days",
    "90d": "Last 90 days",
    "all": "All time",
    "custom": "Custom",
}
_PERIOD_DAYS = {"7d": 7, "30d": 30, "90d": 90}


def _quarter_start(day: date) -> date:
    return date(day.year, 3 * ((day.month - 1) // 3) + 1, 1)


def period_dates(period: str, today: date) -> tuple[date | None, date | None]:
    """The inclusive days a preset stands for: "this" periods end today, "last" ones are whole calendar periods.

    "all" and "custom" are (None, None): the caller knows the store's bounds or the dates that were picked.
    """
    days = _PERIOD_DAYS.get(period)
    if days is not None:
        return today - timedelta(days=days - 1), today
    if period == "this_month":
        return today.replace(day=1), today
    if period == "last_month":
        last = today.replace(day=1) - timedelta(days=1)
        return last.replace(day=1), last
    if period == "this_quarter":
        return _quarter_start(today), today
    if period == "last_quarter":
        last = _quarter_start(today) - timedelta(days=1)
        return _quarter_start(last), last
    if period in ("all", "custom"):
        return None, None
    raise ValueError(f"unknown period {period!r}")
