"""The Explore view: what a shared link holds, how a hand-edited URL is read, and what a click on a chart filters.

A view is a frozen value that round-trips through the URL, so a bookmark reproduces the page and the Export page
can describe the same filters.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import date
from typing import Any

from ..store import Filters
from .labels import CATEGORY_VALUES, SENTIMENT_VALUES, TIER_VALUES, human_label, source_label
from .periods import PERIODS, period_dates
from .text import _parse_date, readable_date

MAX_QUERY_TEXT = 500


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
    """The view narrowed to what was clicked (shift-click for several) on a chart; unchanged for points it does not
    know. Each point carries its mark's [kind, value, ...] under "customdata", as `selected_points` shapes it."""
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
