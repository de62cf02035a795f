"""The one check of a sync range that the command line and the app's Sync page share.

Ranges are typed as days (`--since`, `--until`, `--days`, the app's date picker). Absurd ones used to end in a
traceback (`--until 9999-12-31` overflowed when a day was added to it, `--days 100000000` overflowed the date) or
worse, ran: a start in the future stored a position in the future. Here each gets a one-line reason, before anything
is opened or changed.
"""

from __future__ import annotations

from datetime import date, datetime, time, timedelta, timezone
from typing import Any

def parse_moment(value: Any) -> datetime | None:
    """A stored ISO 8601 moment ("...Z" or with an offset, kept), None for anything else; one without a timezone is
    taken as UTC, as the store and every vendor write them."""
    if not isinstance(value, str) or not value:
        return None
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)


# The earliest a sync reaches (`sync --full` starts here too): none of the three vendors holds feedback older.
EARLIEST_START = datetime(2000, 1, 1, tzinfo=timezone.utc)


class RangeError(ValueError):
    """A sync range that cannot be meant; `field` is "since", "until" or "days" (which input to fix)."""

    def __init__(self, field: str, message: str):
        super().__init__(message)
        self.field = field
        self.message = message


def start_of(day: date) -> datetime:
    return datetime.combine(day, time.min, tzinfo=timezone.utc)


def sync_range(
    *, since: date | None = None, days: int | None = None, until: date | None = None, now: datetime
) -> tuple[datetime | None, datetime | None]:
    """(start, end) for `sync()` from whole UTC days, `until` included; (None, None) when nothing was chosen.

    Raises RangeError for a start before EARLIEST_START or after today, a number of days below 1 or reaching before
    EARLIEST_START, an end after tomorrow (one day of slack for time zones ahead of UTC), an end before the start,
    or an end without a start.
    """
    if since is not None and days is not None:
        raise RangeError("days", "Choose a start date or a number of days, not both.")
    today = now.astimezone(timezone.utc).date()
    earliest = EARLIEST_START.date()
    start: datetime | None = None
    if days is not None:
        most = (today - earliest).days
        if days < 1:
            raise RangeError("days", f"The number of days must be at least 1 (got {days}).")
        if days > most:
            raise RangeError(
                "days",
                f"{days} days back is before {earliest.isoformat()}, the earliest a sync reaches; use at most {most} "
                "days, or a full sync for the whole history.",
            )
        start = now - timedelta(days=days)
    elif since is not None:
        if since < earliest:
            raise RangeError(
                "since",
                f"The range starts on {since.isoformat()}, before {earliest.isoformat()}, the earliest a sync "
                "reaches; for the whole history run a full sync.",
            )
        if since > today:
            raise RangeError("since", f"The range starts in the future ({since.isoformat()}; today is "
                                      f"{today.isoformat()} UTC).")
        start = start_of(since)
    if until is None:
        return start, None
    if start is None:
        raise RangeError("until", "An end date needs a start date.")
    tomorrow = today + timedelta(days=1)
    if until > tomorrow:
        raise RangeError("until", f"The range ends on {until.isoformat()}, in the future (today is "
                                  f"{today.isoformat()} UTC); end it today at the latest.")
    end = start_of(until + timedelta(days=1))
    if end <= start:
        raise RangeError("until", "The end date is before the start date.")
    return start, end
