"""Themes: what customers write about, found in their words, with quotes, sentiment, and the PM's own edits.

Theme names come from feedback text and quotes are the customers' words: shown with st.text, st.dataframe and
widget labels only, never through markdown.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pandas as pd
import streamlit as st

from app_pages._shared import current_mode, data_version, db_path, set_view, source_label, today
from feedback_sources import insights, themes
from feedback_sources.store import Store
from feedback_sources.ui.explore_view import view_from_query_params

EXPLORE = "app_pages/explore.py"
PERIOD_DAYS = {"Last 30 days": 30, "Last 90 days": 90, "Last 12 months": 365}


@st.cache_data(show_spinner=False, max_entries=32)
def ranked(path: str, version: Any, days: int, tiers: tuple[str, ...], sentiments: tuple[str, ...],
           marker: Any) -> insights.DemandReport:
    end = today()
    scope = insights.DemandScope(start=end - timedelta(days=days - 1), end=end, categories=(), tiers=tiers,
                                 sentiments=sentiments)
    with Store(path) as store:
        return insights.rank_discovered_themes(store, scope, limit=40)


def theme_marker(path: str) -> tuple[Any, ...]:
    with Store(path) as store:
        return tuple(themes.themes(store).values())


@st.fragment(run_every=1.0)
def recompute_progress(path: str) -> None:
    """Polls the re-computation's row while it runs; the work itself runs on a thread owned by the server."""
    with Store(path) as store:
        run = themes.latest_run(store)
    if run is None:
        return
    if run["status"] == "running":
        st.progress(float(run["progress"] or 0), text=f"Finding themes: {run['message']}")
    elif run["status"] == "failed":
        st.error(f"Finding themes failed: {run['message']}")
    elif st.session_state.get("themes_run_seen") != run["id"]:
        st.session_state["themes_run_seen"] = run["id"]
        st.cache_data.clear()
        st.success(f"Themes found: {run['message']} in {run['seconds']:.1f} s.")
        st.rerun()


def actions(path: str, report: insights.DemandReport, known: dict[int, themes.ThemeInfo]) -> None:
    with st.expander("Edit themes: rename, pin, hide, merge, split"):
        if not known:
            st.caption("No themes yet.")
            return
        # In the order the page ranks them, then the rest (hidden ones, those quiet in this period).
        ranked_ids = [t.key.theme_id for t in report.themes if t.key.theme_id in known]
        order = [*ranked_ids, *(theme_id for theme_id in known if theme_id not in ranked_ids)]
        names = {theme_id: known[theme_id].name for theme_id in order}
        chosen = st.selectbox("Theme", list(names), format_func=lambda theme_id: names[theme_id], key="theme_edit")
        info = known[chosen]
        left, right = st.columns(2)
        new_name = left.text_input("Name", value=info.name, max_chars=120, key=f"theme_name_{chosen}",
                                   help="Your name for the theme; kept when themes are found again.")
        if left.button("Rename", key="theme_rename"):
            with Store(path) as store:
                themes.rename(store, chosen, new_name)
            st.rerun()
        if right.button("Unpin" if info.pinned else "Pin to the top", key="theme_pin"):
            with Store(path) as store:
                themes.set_flag(store, chosen, "pinned", not info.pinned)
            st.rerun()
        if right.button("Show again" if info.hidden else "Hide from rankings", key="theme_hide"):
            with Store(path) as store:
                themes.set_flag(store, chosen, "hidden", not info.hidden)
            st.rerun()
        others = [theme_id for theme_id in names if theme_id != chosen]
        if others:
            target = st.selectbox("Merge into", others, format_func=lambda theme_id: names[theme_id],
                                  key="theme_merge_target")
            if st.button("Merge", key="theme_merge"):
                with Store(path) as store:
                    moved = themes.merge(store, chosen, target)
                st.toast(f"Moved {moved:,} records")
                st.rerun()
        if st.button("Split in two", key="theme_split", help="Groups this theme's records in two by their words."):
            try:
                with Store(path) as store:
                    themes.split(store, chosen)
            except themes.ThemeError as error:
                st.warning(str(error))
            else:
                st.rerun()


def theme_card(path: str, theme: insights.Theme, info: themes.ThemeInfo | None, covers: bool,
               scope: insights.DemandScope) -> None:
    box = st.container(border=True)
    head = box.columns([3, 1, 1, 1, 1])
    head[0].text(("📌 " if theme.pinned else "") + theme.key.label)
    head[1].metric("Accounts", f"{theme.accounts:,}", help="Distinct accounts that wrote about it.")
    head[2].metric("Weighted demand", f"{theme.score:,.0f}",
                   help="Each account counts once, more for bigger plans (the tier weights on the Demand page).")
    head[3].metric("Change", theme.honest_trend(covers),
                   help="Weighted demand against the period of the same length just before.")
    head[4].metric("Negative", f"{theme.negative_share:.0%}", help="Share of its records with negative sentiment.")
    if info is not None:
        box.caption("Defined by: " + info.defining_words.replace("*", "").replace("_", " "))
    sources = ", ".join(f"{source_label(source)} {count:,}" for source, count in theme.records_by_source)
    box.caption(f"{theme.records:,} records · {sources}")
    start = scope.start.isoformat()
    end = (scope.end + timedelta(days=1)).isoformat()
    with Store(path) as store:
        quoted = themes.quotes(store, theme.key.theme_id or 0, start=start, end=end)
    for quote in quoted:
        words = " ".join(str(quote["content"] or quote["title"] or "").split())
        box.text(f"“{words[:280]}{'…' if len(words) > 280 else ''}” — {source_label(quote['source'])}, "
                 f"{quote['created_at'][:10]}")
    params = insights.theme_explore_params(scope, theme.key)
    if box.button("See its records in Explore", key=f"theme_open_{theme.key.theme_id}", icon=":material/open_in_new:"):
        # Explore keeps its filters in session state once visited: set them, then the URL follows.
        set_view(view_from_query_params(params))
        st.switch_page(EXPLORE, query_params=params)


def main() -> None:
    mode = current_mode()
    path = str(db_path(mode))
    st.title("Themes")
    st.caption("What customers write about, grouped by their own words. Each theme lists the words that define it "
               "and three representative quotes; your names, pins, merges and splits are kept.")
    with Store(path) as store:
        has_model = themes.has_model(store)
        run = themes.latest_run(store)
    running = run is not None and run["status"] == "running"
    top = st.columns([2, 1])
    if top[1].button("Find themes again" if has_model else "Find themes", disabled=running,
                     type="secondary" if has_model else "primary",
                     help="Groups every record again; runs in the background, the app stays usable."):
        themes.start_recompute(path)
        st.rerun()
    recompute_progress(path)
    if not has_model:
        st.info("No themes yet. Sync some feedback, then press **Find themes**.")
        return
    period = top[0].radio("Period", list(PERIOD_DAYS), horizontal=True, key="themes_period")
    filters = st.columns(2)
    tiers = filters[0].multiselect("Account tier", insights.TIER_RANKS, key="themes_tiers",
                                   format_func=lambda t: t.capitalize())
    sentiments = filters[1].multiselect("Sentiment", ["negative", "neutral", "positive"], key="themes_sentiments",
                                        format_func=str.capitalize)
    version = data_version(db_path(mode))
    report = ranked(path, version, PERIOD_DAYS[period], tuple(tiers), tuple(sentiments), theme_marker(path))
    with Store(path) as store:
        known = themes.themes(store)
    actions(path, report, known)
    if not report.themes:
        st.info("No themed feedback in this period and filter.")
    rows = pd.DataFrame(
        [{"Theme": t.key.label, "Accounts": t.accounts, "Records": t.records, "Weighted demand": round(t.score),
          "Change": t.honest_trend(report.history_covers_previous), "Negative": f"{t.negative_share:.0%}"}
         for t in report.themes]
    )
    if not rows.empty:
        st.dataframe(rows, hide_index=True, use_container_width=True)
    for theme in report.themes[:10]:
        theme_card(path, theme, known.get(theme.key.theme_id or 0), report.history_covers_previous, report.scope)
    if report.untagged_records:
        st.caption(f"{report.untagged_records:,} records in this period are near no theme.")


main()
