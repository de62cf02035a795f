"""Source health: is each source fresh, and does the store hold everything the vendor says it has?

Per source, from `sync_runs` and the records themselves:
- the last successful sync and its age, stale past a configurable age;
- completeness: the records stored against the total the vendor reported for the same range, with what that total
  means (each source's spec says: `total_meaning`, `total_upper_bound`, `total_hint`);
- gaps: runs of days inside the synced range with no record at all while the days around them have many;
- the last run's errors, requests and time waited on rate limits, and the remaining daily budget of a vendor that
  reports one.

Everything here is read-only and computed from what earlier syncs recorded; nothing calls a vendor.
"""

from __future__ import annotations

import json
import statistics
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone
from typing import Any

from .ranges import parse_moment
from .sources import registry
from .sources.spec import SourceSpec
from .store import Store, iso_utc
from .sync import FULL_HISTORY_START as _FULL_HISTORY_START

DEFAULT_STALE_AFTER = timedelta(hours=24)
GAP_NEIGHBOUR_DAYS = 7  # days looked at on each side of a run of empty days
GAP_MIN_NEIGHBOUR_MEDIAN = 5.0  # records a day around it for an empty day to count as a gap
FULL_HISTORY_START = iso_utc(_FULL_HISTORY_START)  # a run from here covers every record

# Runs whose vendor total describes a known range: not a resumed run (which sums only what it saw after the resume)
# and not a cursor-based incremental run (whose range starts at the saved cursor, not at a recorded date).
_COMPARABLE_MODES = ("full", "since", "range")


def _spec(source: str) -> SourceSpec | None:
    """The source's spec, or None for a source no longer registered (its records and runs stay in the store)."""
    return registry().get(source)


def vendor_name(source: str) -> str:
    spec = _spec(source)
    return spec.label if spec is not None else source


def age_text(seconds: float | None) -> str:
    if seconds is None:
        return "never"
    seconds = max(0, int(seconds))
    if seconds < 60:
        return "just now"
    if seconds < 3600:
        return f"{seconds // 60} min ago"
    if seconds < 86400:
        return f"{seconds // 3600} h {seconds % 3600 // 60} min ago"
    return f"{seconds // 86400} d {seconds % 86400 // 3600} h ago"


@dataclass(frozen=True)
class RunFacts:
    started_at: str
    finished_at: str | None
    mode: str
    status: str
    fetched: int
    new: int
    updated: int
    requests: int
    wait_seconds: float
    duration_seconds: float | None
    errors: str | None
    error_kind: str | None


@dataclass(frozen=True)
class Completeness:
    status: str  # complete | missing | upper_bound | unknown
    vendor_total: int | None
    stored: int | None
    range_start: str | None
    range_end: str | None  # exclusive; the run's start when the range was open-ended
    checked_at: str | None
    message: str

    @property
    def missing(self) -> int:
        if self.vendor_total is None or self.stored is None:
            return 0
        return max(0, self.vendor_total - self.stored)


@dataclass(frozen=True)
class Gap:
    first_day: date
    last_day: date
    neighbour_median: float

    @property
    def days(self) -> int:
        return (self.last_day - self.first_day).days + 1


@dataclass(frozen=True)
class Budget:
    limit: int | None
    remaining: int
    as_of: str
    reset_since: bool  # the day has turned (midnight UTC) since it was read

    @property
    def message(self) -> str:
        of = f" of {self.limit:,}" if self.limit is not None else ""
        if self.reset_since:
            full = f"{self.limit:,} requests" if self.limit is not None else "a full day's budget"
            return f"reset at midnight UTC since the last sync ({self.remaining:,}{of} were left then): {full} today"
        return f"{self.remaining:,}{of} requests left today (as of {self.as_of})"


@dataclass(frozen=True)
class SourceHealth:
    source: str
    records: int
    newest_record: str | None
    last_success_at: str | None
    age_seconds: float | None
    stale: bool
    stale_after_seconds: float
    last_run: RunFacts | None
    completeness: Completeness
    synced_from: date | None
    synced_to: date | None
    gaps: tuple[Gap, ...]
    budget: Budget | None

    @property
    def status(self) -> str:
        """never | failing | stale | fresh: what a badge says first."""
        if self.last_success_at is None:
            return "never" if self.last_run is None or self.last_run.status != "failed" else "failing"
        if self.last_run is not None and self.last_run.status == "failed":
            return "failing"
        return "stale" if self.stale else "fresh"

    @property
    def gap_days(self) -> int:
        return sum(gap.days for gap in self.gaps)


# -- completeness ----------------------------------------------------------------------------------------------------


def _range_text(start: str | None, end: str) -> str:
    until = f"{end[:16].replace('T', ' ')} UTC"
    return f"all history until {until}" if start is None or start <= FULL_HISTORY_START else f"{start[:10]} to {until}"


def completeness(store: Store, source: str) -> Completeness:
    run = store.last_reported_run(source, _COMPARABLE_MODES)
    spec = _spec(source)
    vendor = vendor_name(source)
    if run is None:
        hint = f" ({spec.total_hint})" if spec is not None and spec.total_hint else ""
        if spec is not None and spec.kind == "file":  # a file has no vendor: its own row count is the total
            return Completeness("unknown", None, None, None, None, None,
                                f"No completed import has counted the file's rows yet{hint}.")
        return Completeness("unknown", None, None, None, None, None,
                            f"No completed sync has reported {vendor}'s own total yet{hint}.")
    range_start, range_end, started_at, total = run
    end = range_end or started_at
    stored = store.records_created_between(source, range_start, end)
    span = _range_text(range_start, end)
    total = int(total)
    covers_all = range_start is None or range_start <= FULL_HISTORY_START
    if stored >= total:
        extra = stored - total
        note = f" ({extra:,} more than the vendor counts: deleted there, or added by webhooks)" if extra else ""
        return Completeness("complete", total, stored, range_start, end, started_at,
                            f"{stored:,} stored of {total:,} reported by {vendor} for {span}{note}.")
    if spec is not None and spec.total_upper_bound and not covers_all:
        # What the total counts is more than the records created in the range (the spec's `total_meaning`).
        return Completeness(
            "upper_bound", total, stored, range_start, end, started_at,
            f"{stored:,} stored for {span}; {vendor} reported {total:,} {spec.total_meaning}, so the "
            "difference need not be missing records. A full sync gives an exact check.",
        )
    return Completeness("missing", total, stored, range_start, end, started_at,
                        f"{total - stored:,} of {total:,} records reported by {vendor} for {span} are not in the "
                        "store: "
                        "sync that range again.")


# -- gaps --------------------------------------------------------------------------------------------------------------


def find_gaps(
    counts: dict[date, int],
    first: date,
    last: date,
    *,
    neighbour_days: int = GAP_NEIGHBOUR_DAYS,
    min_median: float = GAP_MIN_NEIGHBOUR_MEDIAN,
) -> list[Gap]:
    """Runs of days without records, inside [first, last], whose neighbouring days' median is at least min_median.

    A run is judged as a whole by the `neighbour_days` days on each side of it (inside the range), so a week-long
    outage is found as well as a single missing day.
    """
    days = [first + timedelta(days=n) for n in range((last - first).days + 1)]
    gaps: list[Gap] = []
    index = 0
    while index < len(days):
        if counts.get(days[index], 0) != 0:
            index += 1
            continue
        end = index
        while end + 1 < len(days) and counts.get(days[end + 1], 0) == 0:
            end += 1
        around = days[max(0, index - neighbour_days) : index] + days[end + 1 : end + 1 + neighbour_days]
        if around:
            median = float(statistics.median(counts.get(day, 0) for day in around))
            if median >= min_median:
                gaps.append(Gap(days[index], days[end], median))
        index = end + 1
    return gaps


def synced_range(store: Store, source: str) -> tuple[date, date] | None:
    """The days every completed sync together covered, from the first stored record to the day before the last one
    finished (that day is still filling up)."""
    row = store.completed_span(source)
    if row is None or row[1] is None:
        return None
    first_record = store.first_record_at(source)
    if first_record is None:
        return None
    start = max(date.fromisoformat(str(row[0])[:10]), date.fromisoformat(first_record[:10]))
    end = date.fromisoformat(str(row[1])[:10]) - timedelta(days=1)
    return (start, end) if end >= start else None


def daily_counts(store: Store, source: str, first: date, last: date) -> dict[date, int]:
    rows = store.records_per_day(source, first.isoformat(), (last + timedelta(days=1)).isoformat())
    return {date.fromisoformat(day): int(count) for day, count in rows}


# -- runs and budget -------------------------------------------------------------------------------------------------


def last_run(store: Store, source: str) -> RunFacts | None:
    row = store.last_run_facts(source)
    if row is None:
        return None
    return RunFacts(row[0], row[1], row[2], row[3], int(row[4]), int(row[5]), int(row[6]), int(row[7]),
                    float(row[8] or 0.0), None if row[9] is None else float(row[9]), row[10], row[11])


def daily_budget(store: Store, source: str, now: datetime) -> Budget | None:
    """The day window's remaining requests as the newest run that saw one left it (a vendor with a daily budget sends one)."""
    rows = store.daily_rate_limits(source)
    for raw, as_of in rows:
        try:
            windows: Any = json.loads(raw)
        except (TypeError, ValueError):
            continue
        day = windows.get("day") if isinstance(windows, dict) else None
        if not isinstance(day, dict) or not isinstance(day.get("remaining"), int):
            continue
        limit = day.get("limit") if isinstance(day.get("limit"), int) else None
        seen = parse_moment(as_of)
        reset = seen is not None and seen.astimezone(timezone.utc).date() < now.astimezone(timezone.utc).date()
        return Budget(limit, int(day["remaining"]), str(as_of), reset)
    return None


# -- the whole picture -------------------------------------------------------------------------------------------------


def source_health(
    store: Store,
    source: str,
    *,
    now: datetime,
    stale_after: timedelta = DEFAULT_STALE_AFTER,
    min_gap_median: float = GAP_MIN_NEIGHBOUR_MEDIAN,
) -> SourceHealth:
    records, newest = store.source_records(source)
    last_success = store.last_success_at(source)
    success_moment = parse_moment(last_success)
    age = (now - success_moment).total_seconds() if success_moment is not None else None
    stale = age is None or age > stale_after.total_seconds()
    covered = synced_range(store, source)
    gaps: tuple[Gap, ...] = ()
    if covered is not None:
        counts = daily_counts(store, source, *covered)
        gaps = tuple(find_gaps(counts, *covered, min_median=min_gap_median))
    return SourceHealth(
        source=source,
        records=int(records),
        newest_record=newest,
        last_success_at=last_success,
        age_seconds=age,
        stale=stale,
        stale_after_seconds=stale_after.total_seconds(),
        last_run=last_run(store, source),
        completeness=completeness(store, source),
        synced_from=covered[0] if covered else None,
        synced_to=covered[1] if covered else None,
        gaps=gaps,
        budget=daily_budget(store, source, now),
    )


def known_sources(store: Store, configured: Iterable[str] = ()) -> list[str]:
    """The given sources first, then any other that has records or runs."""
    seen = list(dict.fromkeys(configured))
    for source in store.run_sources():
        if source not in seen:
            seen.append(source)
    for source in store.distinct_values("source"):
        if source not in seen:
            seen.append(source)
    return seen


def health_report(
    store: Store,
    sources: Sequence[str],
    *,
    now: datetime,
    stale_after: timedelta = DEFAULT_STALE_AFTER,
    min_gap_median: float = GAP_MIN_NEIGHBOUR_MEDIAN,
) -> list[SourceHealth]:
    return [
        source_health(store, source, now=now, stale_after=stale_after, min_gap_median=min_gap_median)
        for source in known_sources(store, sources)
    ]


def health_lines(health: SourceHealth) -> list[str]:
    """The facts as plain lines, for the command line."""
    lines = [
        f"{health.source}: {health.status.upper()} - {health.records:,} records, newest "
        f"{health.newest_record or 'none'}",
        (f"  last successful sync: {health.last_success_at} ({age_text(health.age_seconds)})"
         if health.last_success_at else "  last successful sync: never")
        + f"; stale after {health.stale_after_seconds / 3600:g} h",
        f"  completeness: {health.completeness.status} - {health.completeness.message}",
    ]
    if health.synced_from is not None and health.synced_to is not None:
        if health.gaps:
            spans = ", ".join(
                (f"{gap.first_day}" if gap.days == 1 else f"{gap.first_day}..{gap.last_day}")
                + f" (neighbours' median {gap.neighbour_median:g}/day)"
                for gap in health.gaps
            )
            lines.append(f"  gaps: {health.gap_days} empty day(s) in {health.synced_from}..{health.synced_to}: {spans}")
        else:
            lines.append(f"  gaps: none in {health.synced_from}..{health.synced_to}")
    else:
        lines.append("  gaps: no completed sync to check against")
    run = health.last_run
    if run is None:
        lines.append("  last run: none")
    else:
        lines.append(
            f"  last run: {run.status} ({run.mode}) at {run.started_at}: {run.fetched:,} fetched, {run.new:,} new, "
            f"{run.requests:,} requests, {run.wait_seconds:.1f} s waited on rate limits"
        )
        if run.errors:
            lines.append(f"  last error: {' '.join(run.errors.split())}")
    if health.budget is not None:
        lines.append(f"  daily request budget: {health.budget.message}")
    return lines
