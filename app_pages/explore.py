"""Explore: filters kept in the URL, KPIs, charts whose clicks filter the table, a paged table and one record's detail.

Everything a vendor sent (titles, content, names, tags) is shown with st.text, st.code, st.dataframe or as Vega-Lite
labels (SVG text nodes; tooltips escape their text): never through markdown or HTML. The one exception is a search hit's highlighted title and snippet,
and the reasons behind a category: those go through highlight.literal_markdown, which escapes every character.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta
from typing import Any

import pandas as pd
import streamlit as st

from app_pages._shared import (
    DEMO,
    current_mode,
    flash,
    forget_data_versions,
    show_flashes,
    current_view,
    cached,
    data_version,
    db_path,
    filter_bar,
    filters_digest,
    run_sync,
    search_error,
    set_view,
    source_label,
    today,
    workspace,
)
from feedback_sources import overrides as overrides_store
from feedback_sources import sentiment as sentiment_words
from feedback_sources import themes as found_themes
from feedback_sources.highlight import SearchHit, highlighted_markdown, literal_markdown, search_results
from feedback_sources.rules_store import provenance
from feedback_sources.store import Filters, Store
from feedback_sources.ui.charts import color_for, matrix, negative_share_lines, volume_bars
from feedback_sources.ui.explore_view import (
    BREAKDOWN_POINT,
    CHART_SELECTION,
    HEATMAP_POINT,
    POINT_FIELD,
    TAG_POINT,
    VOLUME_POINT,
    apply_selection,
    chart_point,
    describe_view,
    selected_points,
)
from feedback_sources.ui.labels import CATEGORY_VALUES, TIER_VALUES, human_label
from feedback_sources.ui.records import (
    PAGE_SIZE,
    kpi_row,
    page_count,
    page_offset,
    record_details,
    safe_link,
    table_rows,
)
from feedback_sources.ui.sync_view import SyncWindow
from feedback_sources.ui.text import plain_reason, readable_date
from feedback_sources.sources import source_names

CHART_GENERATION_KEY = "explore_chart_generation"
FOCUS_KEY = "explore_focus"  # (filters digest, source, source_id) of the record opened from a search hit
SEARCH_PAGE_SIZE = 10
UNKNOWN = "unknown"
ROW_HEIGHT = 35  # st.dataframe's row height in pixels
DEMO_WINDOW = SyncWindow(None, None, False, "all demo history")


def _on_chart_select(key: str) -> None:
    points = selected_points(st.session_state.get(key))
    view = current_view()
    narrowed = apply_selection(view, points)
    if narrowed != view:
        set_view(narrowed)
        # A fresh key per applied click: the old selection must not linger on a chart whose data just changed.
        st.session_state[CHART_GENERATION_KEY] = st.session_state.get(CHART_GENERATION_KEY, 0) + 1


def _count_axis(title: str | None, max_count: int) -> dict[str, Any]:
    # Record counts are whole numbers: no 0.5 ticks on a chart of three records.
    axis: dict[str, Any] = {"title": title, "format": ",d", "tickMinStep": 1}
    if max_count <= 6:
        axis["values"] = list(range(max_count + 1))
    return axis


def _colours(pairs: list[tuple[str, str]]) -> dict[str, Any]:
    """A colour scale that gives each label its fixed colour, the legend in the given order."""
    return {"domain": [label for label, _ in pairs], "range": [colour for _, colour in pairs]}


def _legend() -> dict[str, Any]:
    return {"orient": "bottom", "direction": "horizontal", "title": None}


def _day_axis() -> dict[str, Any]:
    return {"title": None, "format": "%-d %b", "labelOverlap": True}


def _chart(spec: dict[str, Any], values: list[dict[str, Any]], name: str, clickable: bool = True) -> None:
    """A Vega-Lite chart: its bundle is a sixth of Plotly's and draws in a fraction of the time (figure 11).
    Labels are SVG text nodes and tooltips escape their text: what a vendor sent never becomes markup."""
    key = f"chart_{name}_{st.session_state.get(CHART_GENERATION_KEY, 0)}"
    if clickable:  # a click (shift-click for more) selects marks by their point; a layered chart's first layer has it
        selection = [{"name": CHART_SELECTION, "select": {"type": "point", "fields": [POINT_FIELD]}}]
        (spec["layer"][0] if "layer" in spec else spec)["params"] = selection
    spec = {
        "data": {"values": values},
        # 220 px of plot, 280 with axis and legend: with the KPIs, the volume chart is on the first screen of a
        # 1280×800 laptop.
        "height": 220,
        "usermeta": {"embedOptions": {"renderer": "svg", "actions": False}},
        **spec,
    }
    if clickable:
        st.vega_lite_chart(spec, key=key, on_select=lambda: _on_chart_select(key), selection_mode=CHART_SELECTION,
                           width="stretch")
    else:
        st.vega_lite_chart(spec, key=key, width="stretch")


def volume_chart(rows: list[dict[str, Any]]) -> None:
    granularity, bars = volume_bars(rows)
    order = [c for c in CATEGORY_VALUES if any(b.group == c for b in bars)] + sorted(
        {b.group for b in bars} - set(CATEGORY_VALUES))
    values = [{"start": b.bucket_start.isoformat(), "end": (b.bucket_end + timedelta(days=1)).isoformat(),
               "bucket": readable_date(b.bucket_start), "records": b.records, "category": human_label(b.group),
               "rank": order.index(b.group),
               POINT_FIELD: chart_point(VOLUME_POINT, b.group, b.bucket_start.isoformat(), b.bucket_end.isoformat())}
              for b in bars]
    per_bucket: dict[Any, int] = {}
    for bar in bars:
        per_bucket[bar.bucket_start] = per_bucket.get(bar.bucket_start, 0) + bar.records
    _chart({
        "mark": {"type": "bar", "cursor": "pointer", "x2Offset": -1},  # a pixel between buckets
        "encoding": {
            "x": {"field": "start", "type": "temporal", "scale": {"type": "utc"}, "axis": _day_axis()},
            "x2": {"field": "end"},
            "y": {"field": "records", "type": "quantitative", "stack": "zero",
                  "axis": _count_axis(f"records per {granularity}", max(per_bucket.values(), default=0))},
            "color": {"field": "category", "type": "nominal", "legend": _legend(),
                      "scale": _colours([(human_label(c), color_for("category", c)) for c in order])},
            "order": {"field": "rank"},
            "tooltip": [{"field": "category", "title": "Category"},
                        {"field": "bucket", "title": granularity.capitalize()},
                        {"field": "records", "title": "Records", "format": ",d"}],
        },
    }, values, "volume")


def negative_chart(rows: list[dict[str, Any]], by: str) -> None:
    granularity, lines = negative_share_lines(rows)
    values: list[dict[str, Any]] = []
    colours: list[tuple[str, str]] = []
    for group, points in lines.items():
        label = source_label(group) if by == "source" else human_label(group)
        colours.append((label, color_for(by, group)))
        values += [{"start": p[0].isoformat(), "bucket": readable_date(p[0]), "share": p[1], "records": p[2],
                    "group": label} for p in points]
    _chart({
        "mark": {"type": "line", "point": True},
        "encoding": {
            "x": {"field": "start", "type": "temporal", "scale": {"type": "utc"}, "axis": _day_axis()},
            "y": {"field": "share", "type": "quantitative",
                  "axis": {"title": f"negative share per {granularity}", "format": ".0%"}},
            "color": {"field": "group", "type": "nominal", "scale": _colours(colours), "legend": _legend()},
            "tooltip": [{"field": "group", "title": by.capitalize()},
                        {"field": "bucket", "title": granularity.capitalize()},
                        {"field": "share", "title": "Negative", "format": ".0%"},
                        {"field": "records", "title": "Records", "format": ",d"}],
        },
    }, values, f"negative_{by}", clickable=False)  # a share is no filter: nothing to narrow to


def themes_table(path: Any, version: Any, filters: Filters) -> None:
    """The themes these records fall in; a row click narrows the page to that theme."""
    counts = cached(path, version, Store.theme_counts, filters, limit=8)
    if not counts:
        st.caption("No themes yet: find them on the Themes page.")
        return
    with Store(path) as store:
        known = found_themes.themes(store)
    rows = [{"theme": known[c["theme_id"]].name if c["theme_id"] in known else f"theme {c['theme_id']}",
             "records": c["records"], "negative": f"{(c['negative'] or 0) / c['records']:.0%}"} for c in counts]
    picked = st.dataframe(pd.DataFrame(rows, columns=["theme", "records", "negative"]), hide_index=True,
                          width="stretch", on_select="rerun", selection_mode="single-row",
                          key=f"explore_themes_{filters_digest(filters)}",
                          column_config={"theme": st.column_config.TextColumn("Theme"),
                                         "records": st.column_config.NumberColumn("Records"),
                                         "negative": st.column_config.TextColumn("Negative")})
    chosen = list(picked.selection.rows) if picked is not None else []
    if chosen and chosen[0] < len(counts):
        set_view(replace(current_view(), theme=int(counts[chosen[0]]["theme_id"])))
        st.rerun()


def breakdown_chart(rows: list[dict[str, Any]]) -> None:
    sources, tiers, values = matrix(rows, "source", "tier", source_names(), TIER_VALUES)
    data = [{"source": source_label(s), "tier": human_label(t), "records": values[row][column], "rank": column,
             POINT_FIELD: chart_point(BREAKDOWN_POINT, s, t)}
            for row, s in enumerate(sources) for column, t in enumerate(tiers)]
    _chart({
        "mark": {"type": "bar", "cursor": "pointer"},
        "encoding": {
            "x": {"field": "source", "type": "nominal", "sort": [source_label(s) for s in sources],
                  "axis": {"title": None, "labelAngle": 0}},
            "y": {"field": "records", "type": "quantitative", "stack": "zero",
                  "axis": _count_axis(None, max((sum(row) for row in values), default=0))},
            "color": {"field": "tier", "type": "nominal",
                      "scale": _colours([(human_label(t), color_for("tier", t)) for t in tiers]),
                      "legend": _legend()},
            "order": {"field": "rank"},
            "tooltip": [{"field": "source", "title": "Source"}, {"field": "tier", "title": "Tier"},
                        {"field": "records", "title": "Records", "format": ",d"}],
        },
    }, data, "breakdown")


def heatmap_chart(rows: list[dict[str, Any]]) -> None:
    categories, tiers, values = matrix(rows, "category", "tier", CATEGORY_VALUES, TIER_VALUES)
    data = [{"category": human_label(c), "tier": human_label(t), "records": values[row][column],
             POINT_FIELD: chart_point(HEATMAP_POINT, c, t)}
            for row, c in enumerate(categories) for column, t in enumerate(tiers)]
    x = {"field": "tier", "type": "nominal", "sort": [human_label(t) for t in tiers],
         "axis": {"title": None, "labelAngle": 0, "orient": "bottom"}}
    y = {"field": "category", "type": "nominal", "sort": [human_label(c) for c in categories], "axis": {"title": None}}
    _chart({
        "encoding": {"x": x, "y": y},
        "layer": [
            {"mark": {"type": "rect", "cursor": "pointer"},
             "encoding": {"color": {"field": "records", "type": "quantitative", "scale": {"scheme": "blues"},
                                    "legend": None},
                          "tooltip": [{"field": "category", "title": "Category"}, {"field": "tier", "title": "Tier"},
                                      {"field": "records", "title": "Records", "format": ",d"}]}},
            {"mark": {"type": "text"},
             "encoding": {"text": {"field": "records", "type": "quantitative", "format": ",d"},
                          "color": {"condition": {"test": "datum.records > 0.6 * " + str(max(
                              (max(r) for r in values), default=0)), "value": "white"}, "value": "black"}}},
        ],
    }, data, "heatmap")


def tags_chart(rows: list[dict[str, Any]]) -> None:
    data = [{"tag": str(r["tag"]), "records": int(r["records"]), POINT_FIELD: chart_point(TAG_POINT, str(r["tag"]))}
            for r in rows]
    _chart({
        "mark": {"type": "bar", "cursor": "pointer", "color": "#6c5ce7"},
        "encoding": {
            "y": {"field": "tag", "type": "nominal", "sort": [d["tag"] for d in data],
                  "axis": {"title": None, "labelLimit": 240}},  # a long tag is read whole
            "x": {"field": "records", "type": "quantitative",
                  "axis": _count_axis(None, max((d["records"] for d in data), default=0))},
            "tooltip": [{"field": "tag", "title": "Tag"}, {"field": "records", "title": "Records", "format": ",d"}],
        },
    }, data, "tags")


def empty_store(mode: str) -> None:
    st.subheader("No feedback yet")
    if mode == DEMO:
        st.markdown("Load the demo data set: about 3,500 generated tickets, conversations and survey answers from the "
                 "built-in emulator. It takes a few seconds and needs no account.")
        if st.button("Load demo data", type="primary", icon=":material/play_arrow:", key="explore_load_demo"):
            demo = workspace(DEMO)
            run_sync(demo, demo.configured_sources(), DEMO_WINDOW)
            st.rerun()
    else:
        st.markdown("Connect a source on the Connections page, then pull its feedback on the Sync page.")
        st.page_link("app_pages/connections.py", label="Connections", icon=":material/key:")
        st.page_link("app_pages/sync.py", label="Sync", icon=":material/sync:")


def detail(path: Any, version: Any, row: dict[str, Any], place: str = "table") -> None:
    record = cached(path, version, Store.get_record, row["source"], row["source_id"])
    if record is None:
        st.info("That record is no longer in the store.")
        return
    with st.container(border=True):
        heading = st.columns([4, 1], vertical_alignment="center")
        heading[0].caption("Selected record")
        # Demo records point at vendor hosts that do not exist: no link in the demo workspace.
        link = safe_link(record.get("url")) if current_mode() != DEMO else None
        if link:
            heading[1].link_button(f"Open in {source_label(str(record.get('source')))}", link,
                                   icon=":material/open_in_new:", width="stretch")
        st.text(record.get("title") or "(no title)")
        st.code(record.get("content") or "", language=None, wrap_lines=True)
        details = record_details(record, links=current_mode() != DEMO)
        st.dataframe(pd.DataFrame(details, columns=["field", "value"]), hide_index=True, width="stretch",
                     height=ROW_HEIGHT * (len(details) + 1) + 3)
        why(path, str(row["source"]), str(row["source_id"]), place)
        feeling_and_theme(path, record, place)
        with st.expander("Raw metadata"):
            st.json(record.get("metadata") or {}, expanded=False)


def feeling_and_theme(path: Any, record: dict[str, Any], place: str) -> None:
    """Sentiment with the words that decided it, the theme with the words it shares, and its near-duplicates.
    Words come from feedback: shown with st.text and st.dataframe only."""
    with Store(path) as store:
        scored = store.record_sentiment(record["source"], record["source_id"])
    score, label = scored if scored is not None else (None, None)
    if label:
        drivers = sentiment_words.explain(record.get("title"), record.get("content"), limit=6)
        words = ", ".join(f"{'not ' if d.negated else ''}{d.word} ({d.valence:+.1f})" for d in drivers)
        st.text(f"Sentiment: {human_label(str(label))} ({float(score or 0):+.2f})"
                + (f" — decided by: {words}" if words else " — no words with a feeling"))
    with Store(path) as store:
        explained = found_themes.why(store, str(record["source"]), str(record["source_id"]))
        similar = found_themes.similar_records(store, str(record["source"]), str(record["source_id"]), limit=20)
    if explained is None:
        return
    theme = explained["theme"]
    if theme is not None:
        shared = ", ".join(explained["shared_words"]) or "its words as a whole"
        st.text(f"Theme: {theme.name} — shares: {shared}")
    if explained["similar_records"]:
        with st.expander(f"Similar feedback ({explained['similar_records']:,})"):
            st.dataframe(pd.DataFrame(
                [{"created": readable_date(r["created_at"]), "source": source_label(r["source"]),
                  "title": r["title"] or "", "words": (r["content"] or "")[:200]} for r in similar],
                columns=["created", "source", "title", "words"]), hide_index=True, width="stretch",
                key=f"explore_similar_{place}_{record['source']}_{record['source_id']}")


# -- why a record has its category and tier, and overriding them ---------------------------------------------------


def _override_one(path: Any, source: str, source_id: str, field: str, key: str) -> None:
    with Store(path) as store:
        try:
            overrides_store.override_record(store, source, source_id, field, str(st.session_state[key]))
        except KeyError:
            flash("error", "That record is no longer in the store.")
            return
    forget_data_versions()
    flash("success", "Override saved: re-syncs, webhooks and rule changes keep it until you undo it.")


def _undo_one(path: Any, source: str, source_id: str, field: str) -> None:
    with Store(path) as store:
        overrides_store.undo_record(store, source, source_id, field)
    forget_data_versions()
    flash("success", "Override undone: the record follows the rules again.")


def why(path: Any, source: str, source_id: str, place: str) -> None:
    """"bug_report — because tag `bug`", and the controls that override or restore each decision."""
    with Store(path) as store:
        decided = provenance(store, source, source_id)
        overridden = overrides_store.record_overrides(store, source, source_id)
    if decided is None:
        return
    st.markdown("**Why this category and tier**")
    for label, field, value, reason, values in (
        ("Category", overrides_store.CATEGORY, decided.category, decided.category_reason, list(CATEGORY_VALUES)),
        ("Tier", overrides_store.TIER, decided.tier, decided.tier_reason, list(TIER_VALUES)),
    ):
        line = st.columns([3.2, 1.6, 1.2], vertical_alignment="bottom")
        line[0].markdown(f"{label}: **{literal_markdown(human_label(value))}** — because "
                         f"{literal_markdown(plain_reason(reason) or 'no reason was recorded')}")
        key = f"explore_override_{place}_{field}_{source}_{source_id}"
        line[1].selectbox(f"{label} override", values, index=values.index(value) if value in values else 0, key=key,
                          format_func=human_label, label_visibility="collapsed")
        line[2].button(f"Override {label.lower()}", key=f"{key}_save", on_click=_override_one,
                       args=(path, source, source_id, field, key), width="stretch")
        override = overridden.get(field)
        if override is not None:
            rule_value = override.rule_value or UNKNOWN
            note = st.columns([4.8, 1.2], vertical_alignment="center")
            note[0].caption(f"Overridden on {readable_date(override.created_at)}; the rules say "
                            f"{literal_markdown(human_label(rule_value))} — because "
                            f"{literal_markdown(plain_reason(override.rule_reason) or 'no reason was recorded')}.")
            note[1].button("Undo override", key=f"{key}_undo", on_click=_undo_one,
                           args=(path, source, source_id, field), icon=":material/undo:", width="stretch")


def _bulk_override(path: Any, filters: Filters, description: str) -> None:
    field = st.session_state.get("explore_bulk_field", overrides_store.CATEGORY)
    value = st.session_state.get(f"explore_bulk_{field}")
    with Store(path) as store:
        batch = overrides_store.override_filtered(store, filters, field, str(value), description)
    forget_data_versions()
    flash("success", f"{batch.records:,} records overridden (batch {batch.id}); undo it from the Rules page.")


def bulk_override(path: Any, filters: Filters, total: int, description: str) -> None:
    with st.expander(f"Override the category or tier of these {total:,} records"):
        st.caption("Every record the filters select gets the value you choose, whatever the rules say, until you undo "
                   "the batch on the Rules page. Re-syncs and webhook updates keep it.")
        columns = st.columns([1.2, 2, 1.4], vertical_alignment="bottom")
        field = columns[0].radio("Field", [overrides_store.CATEGORY, overrides_store.TIER], key="explore_bulk_field",
                                 format_func=lambda f: "Category" if f == overrides_store.CATEGORY else "Tier",
                                 horizontal=True)
        if field == overrides_store.CATEGORY:
            columns[1].selectbox("Set category to", list(CATEGORY_VALUES), key="explore_bulk_category",
                                 format_func=human_label)
        else:
            columns[1].selectbox("Set tier to", list(TIER_VALUES), key="explore_bulk_customer_tier",
                                 format_func=human_label)
        columns[2].button(f"Override {total:,} records", key="explore_bulk_apply", on_click=_bulk_override,
                          args=(path, filters, description), type="primary", width="stretch")


# -- search results with highlights -------------------------------------------------------------------------------------


@st.cache_data(show_spinner=False, max_entries=64)
def _search_page(path: str, version: Any, filters: Filters, offset: int) -> list[SearchHit]:
    # `version` only keys the cache: a sync or an override changes it.
    with Store(path) as store:
        return search_results(store, filters, limit=SEARCH_PAGE_SIZE, offset=offset)


def _focus(digest: str, source: str, source_id: str) -> None:
    chosen = (digest, source, source_id)
    # A second click on the same hit closes its details.
    st.session_state[FOCUS_KEY] = None if st.session_state.get(FOCUS_KEY) == chosen else chosen


def search_hits(path: Any, version: Any, filters: Filters, total: int, digest: str) -> None:
    st.markdown(f"**Best matches** ({total:,}, most relevant first)")
    pages = page_count(total, SEARCH_PAGE_SIZE)
    page = 1
    if pages > 1:
        page = st.pagination(pages, key=f"explore_hits_page_{digest}", max_visible_pages=7)
    hits = _search_page(str(path), version, filters, page_offset(page, SEARCH_PAGE_SIZE))
    for index, hit in enumerate(hits):
        with st.container(border=True, key=f"explore_hit_{index}"):
            top = st.columns([6, 1], vertical_alignment="center")
            top[0].markdown(highlighted_markdown(hit.marked_title, 200) or "(no title)")
            top[1].button("Details", key=f"explore_hit_open_{digest}_{page}_{index}", on_click=_focus,
                          args=(digest, hit.source, hit.source_id), width="stretch")
            if hit.marked_snippet:
                st.markdown(highlighted_markdown(hit.marked_snippet, 400))
            st.caption(f"{source_label(hit.source)} · {readable_date(hit.created_at)} · {human_label(hit.category)} · "
                       f"{human_label(hit.customer_tier or UNKNOWN)}")


def main() -> None:
    mode = current_mode()
    path = db_path(mode)
    version = data_version(path)
    # No page title: the sidebar names the page, and the answer (KPIs and the volume chart) must fit the first screen.
    show_flashes()
    if version[0] == 0:
        st.title("Explore")
        empty_store(mode)
        return

    known_sources = cached(path, version, Store.distinct_values, "source")
    bounds = cached(path, version, Store.date_bounds)
    view = filter_bar("explore", known_sources, bounds)
    problem = search_error(view)
    if problem is not None:
        st.error(f"Search not understood: {problem}", icon=":material/search_off:")
        return
    filters = view.to_filters(today())

    kpis = cached(path, version, Store.kpis, filters)
    columns = st.columns(4)
    for column, kpi in zip(columns, kpi_row(kpis)):
        column.metric(kpi.label, kpi.value, kpi.delta, help=kpi.help or None, border=True)
    if kpis["records"] == 0:
        st.info("No feedback matches these filters. Widen the date range, clear the search or press Reset.",
                icon=":material/filter_alt_off:")
        return

    click_help = "Click a bar or a cell to filter everything on the page by it."
    left, right = st.columns([3, 2])
    with left:
        st.markdown("**Volume over time by category**", help=click_help)
        volume_chart(cached(path, version, Store.volume_by_day, filters, by="category"))
    with right:
        st.markdown("**Top tags**", help=click_help)
        tags = cached(path, version, Store.top_tags, filters, limit=12)
        if tags:
            tags_chart(tags)
        else:
            st.caption("No tags on these records.")
    left, right = st.columns(2)
    with left:
        st.markdown("**Records by source and tier**", help=click_help)
        breakdown_chart(cached(path, version, Store.breakdown, filters, "source", "tier"))
    with right:
        st.markdown("**Records by category and tier**", help=click_help)
        heatmap_chart(cached(path, version, Store.breakdown, filters, "category", "tier"))

    left, right = st.columns([3, 2])
    with left:
        by = st.radio("Negative feedback over time, by", ["source", "tier"], horizontal=True,
                      format_func=str.capitalize, key="explore_negative_by",
                      help="The share of records whose words read negative, greetings and sign-offs left out.")
        negative_chart(cached(path, version, Store.sentiment_by_day, filters, by=by), by)
    with right:
        st.markdown("**Themes in these records**", help="Found in the customers' words; click one to narrow the "
                                                        "page to it. Names, merges and splits: Themes page.")
        themes_table(path, version, filters)

    total = int(kpis["records"])
    pages = page_count(total)
    digest = filters_digest(filters)
    if filters.text:
        search_hits(path, version, filters, total, digest)
        focus = st.session_state.get(FOCUS_KEY)
        if focus and focus[0] == digest:  # a hit of another search stays closed
            detail(path, version, {"source": focus[1], "source_id": focus[2]}, place="hit")
    st.markdown(f"**Records** ({total:,})")
    page = 1
    if pages > 1:
        page = st.pagination(pages, key=f"explore_page_{digest}", max_visible_pages=7)
    rows = cached(path, version, Store.rows, filters, limit=PAGE_SIZE, offset=page_offset(page))
    shaped = table_rows(rows, links=mode != DEMO)
    # The six columns a PM scans first, sized to fit 1280 px without a horizontal scroll; the rest is in the detail.
    columns = ["created_at", "source_name", "title", "category_label", "tier_label", "customer"]
    if mode != DEMO:
        columns.append("link")
    table = pd.DataFrame(shaped, columns=columns)
    selection = st.dataframe(
        table,
        key=f"explore_table_{digest}_{page}",
        hide_index=True,
        width="stretch",
        on_select="rerun",
        selection_mode="single-row",
        column_config={
            "created_at": st.column_config.DatetimeColumn("Created", format="D MMM YYYY, HH:mm", width=135),
            "source_name": st.column_config.TextColumn("Source", width=105),
            "title": st.column_config.TextColumn("Title", width=180),  # the grid stretches it to the room left
            "category_label": st.column_config.TextColumn("Category", width=125),
            "tier_label": st.column_config.TextColumn("Tier", width=95),
            "customer": st.column_config.TextColumn("Customer", width=130),
            "link": st.column_config.LinkColumn("Open", display_text="open ↗", width=70),
        },
    )
    first = page_offset(page) + 1
    st.caption(f"Rows {first:,}–{first + len(shaped) - 1:,} of {total:,}. Select a row to read the whole record.")
    chosen = list(selection.selection.rows) if selection is not None else []
    if chosen and chosen[0] < len(shaped):
        detail(path, version, shaped[chosen[0]])
    bulk_override(path, filters, total, "; ".join(f"{k}: {v}" for k, v in describe_view(view, today())))


main()
