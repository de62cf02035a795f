"""Pure helpers behind the Streamlit pages: the Explore view in the URL, date presets, chart shaping, display text.

Nothing here imports Streamlit, so every rule the pages follow (what a URL means, what a click on a chart filters,
which link is safe to show) is tested without a browser.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import date, datetime, time, timedelta, timezone
from typing import Any
from urllib.parse import urlsplit

from .models import Category, Tier
from .ranges import sync_range
from .store import UNKNOWN_TIER, Filters

PAGE_SIZE = 50
STALE_AFTER = timedelta(hours=24)
MAX_QUERY_TEXT = 500

TIER_VALUES: tuple[str, ...] = (*(t.value for t in Tier), UNKNOWN_TIER)
CATEGORY_VALUES: tuple[str, ...] = tuple(c.value for c in Category)

# -- Explore view: what the URL holds ---------------------------------------------------------------------------

PERIODS: dict[str, str] = {
    "all": "All time",
    "7d": "Last 7 days",
    "30d": "Last 30 days",
    "90d": "Last 90 days",
    "custom": "Custom range",
}
_PERIOD_DAYS = {"7d": 7, "30d": 30, "90d": 90}


@dataclass(frozen=True)
class ExploreView:
    """Everything a shared Explore link must reproduce.

    A relative period ("last 30 days") stays relative in a bookmark; only a custom range pins dates.
    """

    sources: tuple[str, ...] = ()
    tiers: tuple[str, ...] = ()
    categories: tuple[str, ...] = ()
    period: str = "all"
    start: date | None = None
    end: date | None = None
    text: str = ""
    tag: str | None = None

    def date_range(self, today: date) -> tuple[date | None, date | None]:
        days = _PERIOD_DAYS.get(self.period)
        if days is not None:
            return today - timedelta(days=days - 1), today
        if self.period == "custom":
            return self.start, self.end
        return None, None

    def to_filters(self, today: date) -> Filters:
        start, end = self.date_range(today)
        return Filters(
            sources=self.sources,
            tiers=self.tiers,
            categories=self.categories,
            start=start,
            end=end,
            text=self.text.strip(),
            tag=self.tag or None,
        )

    @property
    def is_default(self) -> bool:
        return self == ExploreView()


def view_to_query_params(view: ExploreView) -> dict[str, str]:
    """The URL form of a view: short, readable, and only what differs from the default."""
    params: dict[str, str] = {}
    if view.sources:
        params["source"] = ",".join(view.sources)
    if view.tiers:
        params["tier"] = ",".join(view.tiers)
    if view.categories:
        params["category"] = ",".join(view.categories)
    if view.period != "all":
        params["period"] = view.period
    if view.period == "custom":
        if view.start is not None:
            params["start"] = view.start.isoformat()
        if view.end is not None:
            params["end"] = view.end.isoformat()
    if view.text.strip():
        params["q"] = view.text.strip()
    if view.tag:
        params["tag"] = view.tag
    return params


def view_from_query_params(params: Mapping[str, Any]) -> ExploreView:
    """Read a view from a URL that may have been edited by hand: anything unknown or malformed is dropped."""

    def single(key: str) -> str:
        value = params.get(key)
        if isinstance(value, (list, tuple)):
            value = value[-1] if value else ""
        return str(value).strip() if value is not None else ""

    def listed(key: str, allowed: Sequence[str] | None) -> tuple[str, ...]:
        raw = params.get(key)
        parts: list[str] = []
        for item in raw if isinstance(raw, (list, tuple)) else [raw]:
            if item:
                parts.extend(p.strip() for p in str(item).split(","))
        chosen = [p for p in dict.fromkeys(parts) if p and (allowed is None or p in allowed)]
        return tuple(chosen)

    period = single("period") or "all"
    start, end = _parse_date(single("start")), _parse_date(single("end"))
    if period not in PERIODS:
        period = "all"
    if period == "custom":
        if start is not None and end is not None and end < start:
            start, end = end, start
        if start is None and end is None:
            period = "all"
    else:
        start = end = None
    sources = tuple(s for s in listed("source", None) if s.isidentifier())
    return ExploreView(
        sources=sources,
        tiers=listed("tier", TIER_VALUES),
        categories=listed("category", CATEGORY_VALUES),
        period=period,
        start=start,
        end=end,
        text=single("q")[:MAX_QUERY_TEXT],
        tag=single("tag")[:200] or None,
    )


def _parse_date(text: str) -> date | None:
    try:
        return date.fromisoformat(text) if text else None
    except ValueError:
        return None


def describe_view(view: ExploreView, today: date) -> list[tuple[str, str]]:
    """(label, value) pairs summarising the active filters, for the Export page."""
    start, end = view.date_range(today)
    described = [
        ("Sources", ", ".join(view.sources) or "all"),
        ("Tiers", ", ".join(view.tiers) or "all"),
        ("Categories", ", ".join(view.categories) or "all"),
        ("Dates", f"{start or 'first'} to {end or 'latest'}" if (start or end) else "all time"),
    ]
    if view.text.strip():
        described.append(("Search", view.text.strip()))
    if view.tag:
        described.append(("Tag", view.tag))
    return described


# -- chart clicks -------------------------------------------------------------------------------------------------

# Each chart tags its points with customdata whose first item names the chart, so a click maps back to a filter.
VOLUME_POINT = "volume"
BREAKDOWN_POINT = "breakdown"
HEATMAP_POINT = "heatmap"
TAG_POINT = "tag"


def apply_selection(view: ExploreView, points: Iterable[Mapping[str, Any]]) -> ExploreView:
    """The view narrowed to what was clicked or box-selected on a chart; unchanged for points it does not know."""
    categories: list[str] = []
    tiers: list[str] = []
    sources: list[str] = []
    tags: list[str] = []
    starts: list[date] = []
    ends: list[date] = []
    for point in points:
        data = point.get("customdata")
        if not isinstance(data, (list, tuple)) or not data:
            continue
        kind, values = data[0], [str(v) for v in data[1:]]
        if kind == VOLUME_POINT and len(values) == 3:
            bucket_start, bucket_end = _parse_date(values[1]), _parse_date(values[2])
            if bucket_start and bucket_end:
                categories.append(values[0])
                starts.append(bucket_start)
                ends.append(bucket_end)
        elif kind == BREAKDOWN_POINT and len(values) == 2:
            sources.append(values[0])
            tiers.append(values[1])
        elif kind == HEATMAP_POINT and len(values) == 2:
            categories.append(values[0])
            tiers.append(values[1])
        elif kind == TAG_POINT and len(values) == 1:
            tags.append(values[0])
    changes: dict[str, Any] = {}
    known_categories = tuple(c for c in dict.fromkeys(categories) if c in CATEGORY_VALUES)
    known_tiers = tuple(t for t in dict.fromkeys(tiers) if t in TIER_VALUES)
    if known_categories:
        changes["categories"] = known_categories
    if known_tiers:
        changes["tiers"] = known_tiers
    if sources:
        changes["sources"] = tuple(dict.fromkeys(sources))
    if starts:
        changes.update(period="custom", start=min(starts), end=max(ends))
    if tags:
        changes["tag"] = tags[0]  # the store filters on one tag; the first clicked wins
    return replace(view, **changes) if changes else view


# -- chart data shaping ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class VolumeBar:
    bucket_start: date
    bucket_end: date
    group: str
    records: int


def granularity_for(first: date, last: date) -> str:
    """Day bars up to four months, then weeks up to two years, then months: a chart stays readable."""
    span = (last - first).days
    if span <= 120:
        return "day"
    if span <= 730:
        return "week"
    return "month"


def _bucket(day: date, granularity: str) -> tuple[date, date]:
    if granularity == "week":
        start = day - timedelta(days=day.weekday())
        return start, start + timedelta(days=6)
    if granularity == "month":
        start = day.replace(day=1)
        following = (start + timedelta(days=32)).replace(day=1)
        return start, following - timedelta(days=1)
    return day, day


def volume_bars(rows: Iterable[Mapping[str, Any]]) -> tuple[str, list[VolumeBar]]:
    """Store.volume_by_day rows (day, grp, records) folded into day, week or month buckets."""
    parsed = [(date.fromisoformat(str(r["day"])), str(r["grp"]), int(r["records"])) for r in rows]
    if not parsed:
        return "day", []
    granularity = granularity_for(min(p[0] for p in parsed), max(p[0] for p in parsed))
    totals: dict[tuple[date, date, str], int] = {}
    for day, group, records in parsed:
        start, end = _bucket(day, granularity)
        totals[(start, end, group)] = totals.get((start, end, group), 0) + records
    bars = [VolumeBar(s, e, g, n) for (s, e, g), n in sorted(totals.items())]
    return granularity, bars


def matrix(
    rows: Iterable[Mapping[str, Any]], row_key: str, column_key: str, row_order: Sequence[str], column_order: Sequence[str]
) -> tuple[list[str], list[str], list[list[int]]]:
    """A dense count matrix from group-by rows; ordered by the given vocabularies, then anything else seen."""
    counts: dict[tuple[str, str], int] = {}
    seen_rows: list[str] = []
    seen_columns: list[str] = []
    for row in rows:
        r, c = str(row[row_key]), str(row[column_key])
        counts[(r, c)] = counts.get((r, c), 0) + int(row["records"])
        seen_rows.append(r)
        seen_columns.append(c)
    row_labels = [r for r in row_order if r in seen_rows] + sorted(set(seen_rows) - set(row_order))
    column_labels = [c for c in column_order if c in seen_columns] + sorted(set(seen_columns) - set(column_order))
    values = [[counts.get((r, c), 0) for c in column_labels] for r in row_labels]
    return row_labels, column_labels, values


def chart_text(text: str) -> str:
    """Text safe to hand to Plotly, which reads <a href>, <b> and <br> in labels: entities show as plain characters."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def human_label(value: str) -> str:
    """A vocabulary value (bug_report, enterprise) as a person reads it."""
    return value.replace("_", " ").capitalize()


# -- KPIs ------------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Kpi:
    label: str
    value: str
    delta: str | None = None
    help: str = ""


def kpi_row(kpis: Mapping[str, Any]) -> list[Kpi]:
    records = int(kpis["records"])
    previous = kpis.get("previous_records")
    if previous is None:
        change = Kpi("Change vs previous period", "n/a", None, "Pick a date range to compare with the period before it.")
    elif previous == 0:
        change = Kpi("Change vs previous period", "new" if records else "0", f"+{records}" if records else None,
                     "No records in the previous period of the same length.")
    else:
        percent = (records - previous) / previous * 100
        change = Kpi("Change vs previous period", f"{percent:+.0f}%", f"{records - previous:+,} records",
                     f"{previous:,} records in the previous period of the same length.")
    return [
        Kpi("Records", f"{records:,}"),
        Kpi("Distinct customers", f"{int(kpis['customers']):,}"),
        Kpi("From enterprise tier", f"{float(kpis['enterprise_share']) * 100:.0f}%"),
        change,
    ]


# -- table paging and rows -------------------------------------------------------------------------------------------


def page_count(total: int, page_size: int = PAGE_SIZE) -> int:
    return max(1, math.ceil(total / page_size))


def page_offset(page: int, page_size: int = PAGE_SIZE) -> int:
    return (max(page, 1) - 1) * page_size


def safe_link(url: Any) -> str | None:
    """Only http(s) links reach a clickable cell: a javascript: or data: URL from a payload is dropped."""
    if not isinstance(url, str) or not url.strip():
        return None
    parts = urlsplit(url.strip())
    if parts.scheme.lower() not in ("http", "https") or not parts.netloc:
        return None
    return url.strip()


def parse_tags(value: Any) -> list[str]:
    if isinstance(value, list):
        return [str(v) for v in value]
    if isinstance(value, str) and value:
        import json

        try:
            loaded = json.loads(value)
        except ValueError:
            return []
        return [str(v) for v in loaded] if isinstance(loaded, list) else []
    return []


def table_rows(rows: Iterable[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Store rows shaped for the Explore table: parsed dates, safe links, tags as lists."""
    shaped = []
    for row in rows:
        shaped.append(
            {
                "created_at": parse_timestamp(row.get("created_at")),
                "source": row.get("source"),
                "source_id": row.get("source_id"),
                "title": row.get("title") or snippet(row.get("content")),
                "customer": row.get("customer_name") or row.get("customer_email") or "",
                "tier": row.get("customer_tier") or UNKNOWN_TIER,
                "category": row.get("category"),
                "tags": parse_tags(row.get("tags")),
                "link": safe_link(row.get("url")),
            }
        )
    return shaped


def snippet(text: Any, length: int = 90) -> str:
    """The start of a text on one line: stands in for a missing title (chat conversations have none)."""
    flat = " ".join(str(text or "").split())
    return flat if len(flat) <= length else flat[: length - 1].rstrip() + "…"


def parse_timestamp(value: Any) -> datetime | None:
    if not isinstance(value, str) or not value:
        return None
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)


def record_details(record: Mapping[str, Any]) -> list[tuple[str, str]]:
    """One record as (field, text) pairs for a plain-text detail view; metadata is shown separately as JSON."""
    fields = (
        ("Source", record.get("source")),
        ("ID", record.get("source_id")),
        ("Created", record.get("created_at")),
        ("Updated", record.get("updated_at")),
        ("Customer", record.get("customer_name")),
        ("Email", record.get("customer_email")),
        ("Customer ID", record.get("customer_id")),
        ("Tier", record.get("customer_tier") or UNKNOWN_TIER),
        ("Category", record.get("category")),
        ("Tags", ", ".join(parse_tags(record.get("tags")))),
        ("Link", safe_link(record.get("url")) or ""),
    )
    metadata = record.get("metadata")
    redacted = metadata.get("redacted_parts") if isinstance(metadata, Mapping) else None
    if isinstance(redacted, list) and redacted:
        # Messages the vendor redacted (Intercom): their text is gone from the record, their count is not.
        fields += (("Redacted messages", len(redacted)),)
    return [(label, "" if value is None else str(value)) for label, value in fields]


# -- freshness of each source ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class SourceStatus:
    source: str
    connected: bool
    records: int
    last_sync: str  # "never" or a relative time
    stale: bool
    last_failed: bool


def relative_time(moment: datetime | None, now: datetime) -> str:
    if moment is None:
        return "never"
    seconds = max(0, int((now - moment).total_seconds()))
    if seconds < 60:
        return "just now"
    if seconds < 3600:
        return f"{seconds // 60} min ago"
    if seconds < 86400:
        return f"{seconds // 3600} h ago"
    return f"{seconds // 86400} d ago"


def source_status(source: str, connected: bool, summary: Mapping[str, Any] | None, now: datetime) -> SourceStatus:
    summary = summary or {}
    last_success = parse_timestamp(summary.get("last_success"))
    stale = last_success is None or now - last_success > STALE_AFTER
    return SourceStatus(
        source=source,
        connected=connected,
        records=int(summary.get("records") or 0),
        last_sync=relative_time(last_success, now),
        stale=stale,
        last_failed=summary.get("last_status") == "failed",
    )


# -- sync windows and progress ----------------------------------------------------------------------------------------

SYNC_PRESETS: dict[str, str] = {
    "since_last": "Since last sync",
    "7d": "Last 7 days",
    "30d": "Last 30 days",
    "90d": "Last 90 days",
    "custom": "Custom range",
}


@dataclass(frozen=True)
class SyncWindow:
    start: datetime | None
    end: datetime | None
    incremental: bool
    label: str


def sync_window(preset: str, now: datetime, custom: tuple[date, date] | None = None) -> SyncWindow:
    """The arguments for `sync()` that a preset stands for. A custom range covers whole UTC days, end included."""
    if preset == "since_last":
        return SyncWindow(None, None, True, "since the last sync (30 days on a first sync)")
    if preset in _PERIOD_DAYS:
        days = _PERIOD_DAYS[preset]
        return SyncWindow(now - timedelta(days=days), None, True, f"the last {days} days")
    if preset == "custom":
        if custom is None or len(custom) != 2:
            raise ValueError("Pick a start and an end date.")
        first, last = custom
        if last < first:
            raise ValueError("The end date is before the start date.")
        # The same check as the command line's: no start before 2000 or in the future, no end past tomorrow.
        start, end = sync_range(since=first, until=last, now=now)
        return SyncWindow(start, end, False, f"{first.isoformat()} to {last.isoformat()}")
    raise ValueError(f"unknown preset {preset!r}")


def progress_fraction(progress: Mapping[str, Any]) -> float:
    """How full a source's progress bar is: exact when the vendor said how many records it has."""
    status = progress.get("status")
    if status in ("complete", "failed"):
        return 1.0
    total = progress.get("vendor_total")
    fetched = int(progress.get("fetched") or 0)
    if total:
        return min(0.99, fetched / int(total))
    pages = int(progress.get("pages") or 0)
    # Unknown total: creep towards the end so the bar moves with each page without claiming to be done.
    return min(0.95, 1 - 1 / (pages + 1)) if pages else 0.02


def progress_text(progress: Mapping[str, Any]) -> str:
    source = str(progress.get("source", ""))
    status = progress.get("status", "")
    pages = int(progress.get("pages") or 0)
    fetched = int(progress.get("fetched") or 0)
    total = progress.get("vendor_total")
    records = f"{fetched:,}" + (f" of {int(total):,}" if total else "")
    text = f"{source}: {status}, {pages} page{'s' if pages != 1 else ''}, {records} records"
    wait = float(progress.get("wait_seconds") or 0)
    if wait >= 0.5:
        text += f", waited {wait:.0f} s on the rate limit"
    if status == "failed" and progress.get("message"):
        text += f" - {progress['message']}"
    elif progress.get("message"):
        text += f" ({progress['message']})"
    return text


RESULT_COLUMNS = ("source", "status", "mode", "fetched", "new", "updated", "errors", "duration_seconds")


def result_rows(results: Iterable[Mapping[str, Any]]) -> list[dict[str, Any]]:
    return [{column: result.get(column) for column in RESULT_COLUMNS} for result in results]


HISTORY_COLUMNS = (
    "started_at", "source", "mode", "status", "fetched", "new", "updated", "errors", "duration_seconds",
)


def history_rows(runs: Iterable[Mapping[str, Any]]) -> list[dict[str, Any]]:
    rows = []
    for run in runs:
        row = {column: run.get(column) for column in HISTORY_COLUMNS}
        row["started_at"] = parse_timestamp(run.get("started_at"))
        rows.append(row)
    return rows


# -- connection diagnosis -----------------------------------------------------------------------------------------------

DIAGNOSES: dict[str, str] = {
    "ok": "Connected",
    "auth": "Bad token or email",
    "forbidden": "Missing permission (scope)",
    "wrong_subdomain": "Wrong subdomain",
    "not_found": "Wrong address or region",
    "rate_limited": "Rate limited",
    "server": "The vendor's service is failing",
    "network": "Network problem",
    "timeout": "No answer in time",
    "bad_response": "Not the vendor's API",
    "client": "Request refused",
    "config": "Not configured",
    "keyring": "Keyring unavailable",
    "invalid": "Invalid value",
}


def diagnosis_title(kind: str) -> str:
    return DIAGNOSES.get(kind, "Connection failed")


ORIGIN_LABELS: dict[str, str] = {
    "environment": "environment variable",
    ".env": ".env file",
    "keyring": "keyring",
    "missing": "missing",
}


def origin_label(origin: str) -> str:
    return ORIGIN_LABELS.get(origin, origin)


_MARKDOWN_SPECIALS = set("\\`*_{}[]()#+-.!|<>~:$&=")


def md_escape(text: Any) -> str:
    """Text that Streamlit's markdown shows literally: for vendor-supplied messages inside st.error and friends.

    Feedback itself never goes through markdown (the pages use st.text, st.code and st.dataframe); this is for the
    odd vendor error or account name that ends up inside one of the app's own sentences.
    """
    escaped = "".join("\\" + ch if ch in _MARKDOWN_SPECIALS else ch for ch in str(text))
    return " ".join(escaped.split())  # newlines would start new markdown blocks
