"""Chart data shaping for Explore: day, week or month buckets, dense matrices, and
one fixed colour per category, tier and source so that filtering never repaints the others.
"""

from __future__ import annotations

import zlib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

from ..sources import registry
from ..sources.spec import SourceSpec
from ..store import UNKNOWN_TIER

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
    # The registry is read when this is first used, not when this module is imported.
    if name == "SOURCE_COLORS":
        return source_colors()
    raise AttributeError(name)
