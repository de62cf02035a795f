"""Pure helpers behind the Streamlit pages: the Explore view in the URL, date presets, chart shaping, display text.

Nothing here imports Streamlit, so every rule the pages follow (what a URL means, what a click on a chart filters,
which link is safe to show) is tested without a browser.
"""

from __future__ import annotations

import json
import math
import re
import zlib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import date, datetime, time, timedelta, timezone
from typing import Any
from urllib.parse import urlsplit

from .models import Category, Tier
from .sources import registry
from .sources.spec import SourceSpec
from .ranges import sync_range
from .store import UNKNOWN_TIER, Filters

PAGE_SIZE = 50
STALE_AFTER = timedelta(hours=24)
MAX_QUERY_TEXT = 500

TIER_VALUES: tuple[str, ...] = (*(t.value for t in Tier), UNKNOWN_TIER)
CATEGORY_VALUES: tuple[str, ...] = tuple(c.value for c in Category)

# -- Explore view: what the URL holds ---------------------------------------------------------------------------

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


SENTIMENT_VALUES = ("negative", "neutral", "positive")


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
    sentiments: tuple[str, ...] = ()
    theme: int | None = None  # a theme found in the text (themes.py)

    def date_range(self, today: date) -> tuple[date | None, date | None]:
        if self.period == "custom":
            return self.start, self.end
        return period_dates(self.period, today)

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
            sentiments=self.sentiments,
            theme_ids=(self.theme,) if self.theme else (),
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
    if view.sentiments:
        params["sentiment"] = ",".join(view.sentiments)
    if view.theme:
        params["theme"] = str(view.theme)
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
        sentiments=listed("sentiment", SENTIMENT_VALUES),
        theme=int(single("theme")) if single("theme").isdigit() and len(single("theme")) < 12 else None,
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
        ("Sources", ", ".join(source_label(s) for s in view.sources) or "All"),
        ("Tiers", ", ".join(human_label(t) for t in view.tiers) or "All"),
        ("Categories", ", ".join(human_label(c) for c in view.categories) or "All"),
        ("Dates", f"{readable_date(start) if start else 'first'} to {readable_date(end) if end else 'latest'}"
         if (start or end) else "All time"),
    ]
    if view.text.strip():
        described.append(("Search", view.text.strip()))
    if view.tag:
        described.append(("Tag", view.tag))
    if view.sentiments:
        described.append(("Sentiment", ", ".join(human_label(v) for v in view.sentiments)))
    if view.theme:
        described.append(("Theme", f"theme {view.theme}"))
    return described


# -- chart clicks -------------------------------------------------------------------------------------------------

# Each chart tags its marks with a point (customdata) whose first item names the chart, so a click maps back to a
# filter.
VOLUME_POINT = "volume"
BREAKDOWN_POINT = "breakdown"
HEATMAP_POINT = "heatmap"
TAG_POINT = "tag"
# The charts are Vega-Lite: a mark's point travels as JSON text in one data field, and the point selection each
# clickable chart declares returns that field of every mark clicked (shift-click adds marks).
CHART_SELECTION = "picked"
POINT_FIELD = "point"


def chart_point(*values: Any) -> str:
    """A mark's point as the chart carries it: [kind, value, ...] as JSON text."""
    return json.dumps([str(v) for v in values])


def selected_points(event: Any) -> list[dict[str, Any]]:
    """The points of a chart's selection event ({"selection": {CHART_SELECTION: [{POINT_FIELD: text}, ...]}}), shaped
    as apply_selection reads them; anything malformed is left out."""
    try:
        picked = event["selection"][CHART_SELECTION]
    except (KeyError, TypeError):
        return []
    points = []
    for mark in picked if isinstance(picked, list) else []:
        try:
            points.append({"customdata": json.loads(mark[POINT_FIELD])})
        except (KeyError, TypeError, ValueError):
            continue
    return points


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


def negative_share_lines(rows: Iterable[Mapping[str, Any]]) -> tuple[str, dict[str, list[tuple[date, float, int]]]]:
    """Per group, (bucket start, share of negative records, records) in buckets sized like the volume chart's."""
    parsed = [(date.fromisoformat(str(r["day"])), str(r["grp"]), int(r["records"]), int(r["negative"] or 0))
              for r in rows]
    if not parsed:
        return "day", {}
    granularity = granularity_for(min(p[0] for p in parsed), max(p[0] for p in parsed))
    totals: dict[tuple[str, date], list[int]] = {}
    for day, group, records, negative in parsed:
        entry = totals.setdefault((group, _bucket(day, granularity)[0]), [0, 0])
        entry[0] += records
        entry[1] += negative
    lines: dict[str, list[tuple[date, float, int]]] = {}
    for (group, start), (records, negative) in sorted(totals.items(), key=lambda item: item[0][1]):
        lines.setdefault(group, []).append((start, negative / records if records else 0.0, records))
    return granularity, lines


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


def source_labels() -> dict[str, str]:
    """Every registered source's product name (its spec's label), by source name."""
    return {name: spec.label for name, spec in registry().items()}


def source_label(source: str) -> str:
    """A source's product name from its spec; the stored name of a source no longer registered."""
    spec = registry().get(source)
    return spec.label if spec is not None else source


# -- one colour per category, tier and source, in every chart and every filter state ----------------------------------
# A chart colours its groups by their order, so filtering out one category would repaint all the others. The maps
# below pin each value to a colour (Okabe-Ito based: distinguishable with the common colour-vision deficiencies).

CATEGORY_COLORS: dict[str, str] = {
    "bug_report": "#D55E00",
    "feature_request": "#0072B2",
    "support": "#56B4E9",
    "question": "#E69F00",
    "praise": "#009E73",
    "complaint": "#CC79A7",
    "other": "#999999",
}
TIER_COLORS: dict[str, str] = {
    "enterprise": "#3B2C85",
    "business": "#2A6FB0",
    "professional": "#4FA3D9",
    "free": "#A6D4EE",
    UNKNOWN_TIER: "#C8C8C8",
}
OTHER_COLOR = "#7F7F7F"
_DEFAULT_SOURCE_COLOR = SourceSpec.__dataclass_fields__["color"].default
# For a source whose spec keeps the default colour: one of these, picked by its name, so two such plugins differ and
# each keeps its colour from run to run (the order sources are registered in does not matter).
SOURCE_FALLBACK_COLORS: tuple[str, ...] = ("#8C564B", "#BCBD22", "#17BECF", "#9467BD", "#E377C2", "#FF7F0E")


def source_color(source: str) -> str:
    """A source's colour: its spec's, else a fallback fixed by its name; OTHER_COLOR for an unregistered source."""
    spec = registry().get(source)
    if spec is None:
        return OTHER_COLOR
    if spec.color != _DEFAULT_SOURCE_COLOR:
        return spec.color
    return SOURCE_FALLBACK_COLORS[zlib.crc32(source.encode("utf-8")) % len(SOURCE_FALLBACK_COLORS)]


def source_colors() -> dict[str, str]:
    """Every registered source's colour, by source name."""
    return {name: source_color(name) for name in registry()}


_PALETTES = {"category": CATEGORY_COLORS, "tier": TIER_COLORS}


def color_for(kind: str, value: str) -> str:
    """The fixed colour of a category, tier or source value ("category", "tier" or "source")."""
    if kind == "source":
        return source_color(value)
    return _PALETTES[kind].get(value, OTHER_COLOR)


def __getattr__(name: str) -> object:
    # The registry is read when these are first used, not when this module is imported.
    if name == "SOURCE_LABELS":
        return source_labels()
    if name == "SOURCE_COLORS":
        return source_colors()
    raise AttributeError(name)


# -- readable dates ---------------------------------------------------------------------------------------------------


def readable_datetime(moment: datetime | None, tz: Any = None) -> str:
    """"4 Dec 2026, 15:03" in the machine's local time (tz for tests): the app runs on the PM's own laptop."""
    if moment is None:
        return ""
    local = (moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)).astimezone(tz)
    return f"{local.day} {local:%b %Y, %H:%M}"


def readable_date(day: date | datetime | str | None) -> str:
    """"4 Dec 2026"; ISO text is read first (stored dates are ISO), a moment is shown on its local day."""
    if isinstance(day, str):
        parsed = parse_timestamp(day) if "T" in day else _parse_date(day[:10])
        if parsed is None:
            return day
        day = parsed
    if day is None:
        return ""
    if isinstance(day, datetime):
        day = day.astimezone()
    return f"{day.day} {day:%b %Y}"


_QUOTED = re.compile(r"`([^`]*)`")


def plain_reason(reason: Any) -> str:
    """A rule's reason as a sentence: the rules quote values in backticks (tag `bug`), shown as “bug”."""
    text = _QUOTED.sub(lambda match: f"\u201c{match.group(1)}\u201d", str(reason or ""))
    return " ".join(text.replace("`", "").split())


# -- KPIs ------------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Kpi:
    label: str
    value: str
    delta: str | None = None
    help: str = ""


def kpi_row(kpis: Mapping[str, Any]) -> list[Kpi]:
    """The four numbers on top of Explore; short labels (they must not be cut at 1280 px), the meaning in the help."""
    records = int(kpis["records"])
    previous = kpis.get("previous_records")
    if previous is None:
        change = Kpi("Change", "n/a", None, "Pick a period to compare it with the same number of days just before.")
    elif previous == 0:
        change = Kpi("Change", "new" if records else "0", f"+{records:,}" if records else None,
                     "There was no feedback in the same number of days just before this period.")
    else:
        percent = (records - previous) / previous * 100
        change = Kpi("Change", f"{percent:+.0f}%", f"{records - previous:+,} records",
                     f"Compared with the same number of days just before this period, which had {previous:,} "
                     "records.")
    return [
        Kpi("Records", f"{records:,}", help="Pieces of feedback that match the filters."),
        Kpi("Customers", f"{int(kpis['customers']):,}", help="Different people who sent that feedback."),
        Kpi("Enterprise", f"{float(kpis['enterprise_share']) * 100:.0f}%",
            help="How much of that feedback comes from customers on the Enterprise plan."),
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


def table_rows(rows: Iterable[Mapping[str, Any]], links: bool = True) -> list[dict[str, Any]]:
    """Store rows shaped for the Explore table: local dates, product names and labels, safe links.

    `source` and `source_id` stay the raw keys (they open the record); the labelled columns are for display.
    `links=False` (the demo workspace) drops the links: demo records point at vendor hosts that do not exist.
    """
    shaped = []
    for row in rows:
        created = parse_timestamp(row.get("created_at"))
        source = str(row.get("source") or "")
        tier = row.get("customer_tier") or UNKNOWN_TIER
        category = str(row.get("category") or "")
        shaped.append(
            {
                "created_at": created.astimezone() if created else None,
                "source": source,
                "source_id": row.get("source_id"),
                "source_name": source_label(source),
                "title": row.get("title") or snippet(row.get("content")),
                "category_label": human_label(category),
                "tier_label": human_label(tier),
                "customer": row.get("customer_name") or row.get("customer_email") or "",
                "tier": tier,
                "category": category,
                "tags": parse_tags(row.get("tags")),
                "link": safe_link(row.get("url")) if links else None,
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


def record_details(record: Mapping[str, Any], links: bool = True) -> list[tuple[str, str]]:
    """One record as (field, text) pairs for a plain-text detail view; metadata is shown separately as JSON."""
    fields = (
        ("Source", source_label(str(record.get("source") or ""))),
        ("ID", record.get("source_id")),
        ("Created", readable_datetime(parse_timestamp(record.get("created_at")))),
        ("Updated", readable_datetime(parse_timestamp(record.get("updated_at")))),
        ("Customer", record.get("customer_name")),
        ("Email", record.get("customer_email")),
        ("Customer ID", record.get("customer_id")),
        ("Tier", human_label(str(record.get("customer_tier") or UNKNOWN_TIER))),
        ("Category", human_label(str(record.get("category") or ""))),
        ("Tags", ", ".join(parse_tags(record.get("tags")))),
        ("Link", (safe_link(record.get("url")) or "") if links else ""),
    )
    metadata = record.get("metadata")
    redacted = metadata.get("redacted_parts") if isinstance(metadata, Mapping) else None
    if isinstance(redacted, list) and redacted:
        # Messages the vendor redacted: their text is gone from the record, their count is not.
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
