"""Demand: themes ranked by the accounts behind them (weighted by tier), the accounts one click away, emerging topics,
saved searches as themes, and manual account merges.

Tags, account names, terms and searches come from feedback: they are shown with st.dataframe and st.text only, never
through markdown.
"""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

import pandas as pd
import streamlit as st

from app_pages._shared import current_mode, data_version, db_path, filters_digest, set_view, source_label, today
from feedback_sources import accounts, insights
from feedback_sources import themes as found_themes
from feedback_sources.store import Filters, Store
from feedback_sources.ui.explore_view import view_from_query_params
from feedback_sources.ui.labels import CATEGORY_VALUES, TIER_VALUES, human_label, SENTIMENT_VALUES
from feedback_sources.ui.periods import PERIODS, period_dates
from feedback_sources.ui.text import md_escape, readable_date
from feedback_sources.sources import source_names

EXPLORE = "app_pages/explore.py"
VIEWS = {"themes": "Themes", "emerging": "Emerging topics", "saved": "Saved themes", "merges": "Account merges"}
KINDS = {"discovered": "Customers' words", "tag": "Category × tag", "saved": "Saved searches"}
PRESET_LABEL = "Top feature requests from enterprise accounts this quarter"
UNHAPPY_LABEL = "What are enterprise customers unhappy about this month?"
DEFAULTS: dict[str, Any] = {
    "demand_view": "themes",
    "demand_period": "this_quarter",
    "demand_categories": list(insights.DEMAND_CATEGORIES),
    "demand_tiers": [],
    "demand_sources": [],
    "demand_sentiments": [],
}
ROW_HEIGHT = 35


# -- cached computations ----------------------------------------------------------------------------------------------


@st.cache_data(show_spinner=False, max_entries=64)
def _computed(path: str, version: Any, settings: Any, function: str, args: tuple[Any, ...],
              kwargs: tuple[tuple[str, Any], ...]) -> Any:
    # `version` and `settings` only key the cache: a sync, a saved theme or a merge changes them.
    with Store(path) as store:
        return getattr(insights, function)(store, *args, **dict(kwargs))


def computed(path: Any, version: Any, settings: Any, function: str, *args: Any, **kwargs: Any) -> Any:
    return _computed(str(path), version, settings, function, args, tuple(sorted(kwargs.items())))


def settings_marker(path: Any) -> tuple[Any, ...]:
    """What besides the records changes the results: the saved themes and the merges (two small tables)."""
    with Store(path) as store:
        return (tuple(insights.saved_themes(store)), tuple(accounts.merges(store)))


# -- controls -------------------------------------------------------------------------------------------------------


def apply_preset() -> None:
    state = st.session_state
    state.update(demand_view="themes", demand_kind=_theme_kind(), demand_period="this_quarter",
                 demand_categories=["feature_request"], demand_tiers=["enterprise"], demand_sources=[],
                 demand_sentiments=[])
    for tier, weight in insights.DEFAULT_WEIGHTS.items():
        state[f"demand_weight_{tier}"] = float(weight)


def apply_unhappy() -> None:
    """Every category this month, enterprise accounts, negative words only, ranked by the themes of their words."""
    state = st.session_state
    state.update(demand_view="themes", demand_kind=_theme_kind(), demand_period="this_month", demand_categories=[],
                 demand_tiers=["enterprise"], demand_sources=[], demand_sentiments=["negative"])
    for tier, weight in insights.DEFAULT_WEIGHTS.items():
        state[f"demand_weight_{tier}"] = float(weight)


def _widen() -> None:
    st.session_state["demand_period"] = "90d"


def _theme_kind() -> str:
    """Themes found in the words when there are any, else the category × tag themes."""
    with Store(db_path()) as store:
        return "discovered" if found_themes.has_model(store) else "tag"


def keep_choices() -> None:
    """Streamlit forgets a widget's value on a run that does not draw it (another view, another page); writing the
    values back marks them as the app's own, so the person's choices survive."""
    state = st.session_state
    kept = [*DEFAULTS, "demand_kind", "demand_dates", "demand_min_records",
            *(f"demand_weight_{tier}" for tier in insights.DEFAULT_WEIGHTS)]
    for key in kept:
        if key in state:
            state[key] = state[key]


def scope_dates(period: str, custom: list[date] | None, bounds: tuple[str | None, str | None]) -> tuple[date, date]:
    """The inclusive days of a period: the same presets as Explore; "All time" spans the stored records."""
    if period == "custom":
        if not custom:
            raise ValueError("Pick a start and an end date.")
        first, last = custom[0], custom[-1]
        return (first, last) if first <= last else (last, first)
    if period == "all":
        first_day, last_day = (date.fromisoformat(b[:10]) if b else None for b in bounds)
        return first_day or today(), max(last_day or today(), today())
    start, end = period_dates(period, today())
    assert start is not None and end is not None
    return start, end


def controls(known_sources: list[str], bounds: tuple[str | None, str | None]) -> insights.DemandScope | None:
    state = st.session_state
    for key, value in DEFAULTS.items():
        state.setdefault(key, list(value) if isinstance(value, list) else value)
    if state.get("demand_kind") not in KINDS:
        state["demand_kind"] = _theme_kind()
    if state["demand_period"] not in PERIODS:  # a value kept from an older version of the page
        state["demand_period"] = DEFAULTS["demand_period"]
    for tier, weight in insights.DEFAULT_WEIGHTS.items():
        state.setdefault(f"demand_weight_{tier}", float(weight))
    presets = st.columns(2)
    presets[0].button(PRESET_LABEL, on_click=apply_preset, type="primary", icon=":material/star:",
                      key="demand_preset", width="stretch")
    presets[1].button(UNHAPPY_LABEL, on_click=apply_unhappy, icon=":material/sentiment_dissatisfied:",
                      key="demand_unhappy", width="stretch")
    top = st.columns([1, 1.3, 1, 1, 1])
    top[0].selectbox("Period", list(PERIODS), format_func=PERIODS.get, key="demand_period")
    top[1].multiselect("Categories", list(CATEGORY_VALUES), format_func=human_label, key="demand_categories",
                       placeholder="All categories")
    top[2].multiselect("Account tier", list(TIER_VALUES), format_func=human_label, key="demand_tiers",
                       placeholder="All tiers", help="An account's tier is the highest plan seen on its feedback in "
                                                     "the period.")
    top[3].multiselect("Source", list(dict.fromkeys([*source_names(), *known_sources])), format_func=source_label,
                       key="demand_sources", placeholder="All sources")
    top[4].multiselect("Sentiment", list(SENTIMENT_VALUES), format_func=human_label, key="demand_sentiments",
                       placeholder="Any sentiment", help="The records' own sentiment, from their words.")
    custom: list[date] | None = None
    if state["demand_period"] == "custom":
        state.setdefault("demand_dates", (today() - timedelta(days=89), today()))
        picked = st.date_input("Dates", key="demand_dates", format="YYYY-MM-DD")
        custom = list(picked) if isinstance(picked, (list, tuple)) else [picked]
    weights: dict[str, float] = {}
    with st.expander("Tier weights"):
        st.caption("Each account counts once per theme, at the weight of its tier.")
        columns = st.columns(len(insights.DEFAULT_WEIGHTS))
        for column, tier in zip(columns, insights.DEFAULT_WEIGHTS):
            weights[tier] = float(column.number_input(human_label(tier), min_value=0.0, max_value=1000.0, step=1.0,
                                                       key=f"demand_weight_{tier}"))
    try:
        start, end = scope_dates(state["demand_period"], custom, bounds)
    except ValueError as error:
        st.info(str(error))
        return None
    scope = insights.DemandScope(start=start, end=end, sources=tuple(state["demand_sources"]),
                                 categories=tuple(state["demand_categories"]), tiers=tuple(state["demand_tiers"]),
                                 sentiments=tuple(state["demand_sentiments"]))
    return scope.with_weights(weights)


def open_in_explore(params: dict[str, str], key: str, label: str = "Open these records in Explore") -> None:
    if st.button(label, key=key, icon=":material/manage_search:"):
        # Explore keeps its filters in session state once visited: set them, then the URL follows.
        set_view(view_from_query_params(params))
        st.switch_page(EXPLORE, query_params=params)


# -- views ------------------------------------------------------------------------------------------------------------


def theme_label(key: insights.ThemeKey) -> str:
    """"Feature request · export": the category as a PM reads it, the tag as the vendor sent it."""
    if key.kind in ("saved", "discovered"):
        return key.name
    return f"{human_label(key.category or '')} · {key.tag if key.tag is not None else insights.NO_TAG}"


def theme_table(themes: tuple[insights.Theme, ...], sources: list[str], covers: bool = True) -> pd.DataFrame:
    rows = []
    for rank, theme in enumerate(themes, start=1):
        counts = dict(theme.records_by_source)
        row: dict[str, Any] = {
            "rank": rank,
            "theme": theme_label(theme.key),
            "score": theme.score,
            "accounts": theme.accounts,
            "records": theme.records,
        }
        for source in sources:
            row[source] = counts.get(source, 0)
        row.update(previous_score=theme.previous_score, trend=theme.honest_trend(covers),
                   negative=f"{theme.negative_share:.0%}" if theme.key.kind == "discovered" else "",
                   tiers=", ".join(f"{human_label(tier)} {count}" for tier, count in theme.accounts_by_tier))
        rows.append(row)
    columns = ["rank", "theme", "score", "accounts", "records", *sources, "previous_score", "trend", "negative",
               "tiers"]
    return pd.DataFrame(rows, columns=columns)


def history_covered(path: Any, scope: insights.DemandScope) -> bool:
    with Store(path) as store:
        return insights.history_covers(store, scope)


def quotes_section(path: Any, scope: insights.DemandScope, theme: insights.Theme) -> None:
    """Three of the theme's records in the customers' own words (plain text), with the words that define it."""
    conditions, values = [], []
    if scope.sentiments:
        conditions.append(f"sentiment_label IN ({', '.join('?' * len(scope.sentiments))})")
        values.extend(scope.sentiments)
    with Store(path) as store:
        info = found_themes.themes(store).get(theme.key.theme_id or 0)
        quoted = found_themes.quotes(store, theme.key.theme_id or 0, start=scope.start.isoformat(),
                                     end=(scope.end + timedelta(days=1)).isoformat(),
                                     extra_where=" AND ".join(conditions), params=values)
    st.subheader("In their words")
    if info is not None:
        st.text(f"{info.name} — defined by: {info.defining_words}")
    for quote in quoted:
        words = " ".join(str(quote["content"] or quote["title"] or "").split())
        st.text(f"“{words[:280]}{'…' if len(words) > 280 else ''}” — {source_label(quote['source'])}, "
                f"{readable_date(quote['created_at'])}")


def accounts_section(path: Any, version: Any, settings: Any, scope: insights.DemandScope,
                     theme: insights.Theme) -> None:
    st.subheader("Accounts behind the theme")
    st.text(theme_label(theme.key))
    rows = computed(path, version, settings, "theme_accounts", scope, theme.key)
    frame = pd.DataFrame(
        [{"account": r.label, "kind": r.kind, "tier": human_label(r.tier), "weight": r.weight, "records": r.records,
          "people": r.people, "sources": ", ".join(source_label(s) for s in r.sources),
          "last_feedback": readable_date(r.last_feedback), "key": r.account} for r in rows],
        columns=["account", "kind", "tier", "weight", "records", "people", "sources", "last_feedback", "key"],
    )
    st.dataframe(frame, hide_index=True, width="stretch", key="demand_accounts",
                 column_config={"account": st.column_config.TextColumn("Account", width="medium"),
                                "kind": st.column_config.TextColumn("Kind"),
                                "tier": st.column_config.TextColumn("Tier"),
                                "weight": st.column_config.NumberColumn("Weight", format="%g"),
                                "records": st.column_config.NumberColumn("Records"),
                                "people": st.column_config.NumberColumn("People"),
                                "sources": st.column_config.TextColumn("Sources"),
                                "last_feedback": st.column_config.TextColumn("Last feedback"),
                                "key": st.column_config.TextColumn("Account key", help="Use it to merge accounts.")})
    st.caption(f"{len(rows):,} accounts. Explore filters on each record's own tier, so it may list a different "
               "number of records than the theme counts when accounts mix plans.")
    open_in_explore(insights.theme_explore_params(scope, theme.key), "demand_open_theme")


def themes_view(path: Any, version: Any, settings: Any, scope: insights.DemandScope, sources: list[str]) -> None:
    kind = st.radio("Themes from", list(KINDS), format_func=KINDS.get, horizontal=True, key="demand_kind",
                    help="Customers' words: themes found in what they wrote (Themes page). Category × tag: the "
                         "vendors' tags. Saved searches: your own.")
    previous = scope.previous()
    covers = True
    if kind == "discovered":
        with Store(path) as store:
            ready = found_themes.has_model(store)
        if not ready:
            st.info("No themes found in the customers' words yet: press Find themes on the Themes page.")
            st.page_link("app_pages/themes.py", label="Themes", icon=":material/category:")
            return
        report = computed(path, version, settings, "rank_discovered_themes", scope)
        themes, covers = report.themes, report.history_covers_previous
    elif kind == "tag":
        report = computed(path, version, settings, "rank_tag_themes", scope)
        themes, covers = report.themes, history_covered(path, scope)
    else:
        themes = computed(path, version, settings, "rank_saved_themes", scope)
    st.caption(f"{readable_date(scope.start)} to {readable_date(scope.end)} ({scope.days} days), compared with "
               f"{readable_date(previous.start)} to {readable_date(previous.end)}. The score counts each account once, "
               "with more weight for higher plans (see Tier weights).")
    if not themes:
        if kind == "saved":
            st.info("No saved themes yet: save a search as a theme under Saved themes.")
        elif kind == "discovered":
            st.info(f"No feedback matches in {readable_date(scope.start)} to {readable_date(scope.end)}: nothing "
                    "to rank. That is an answer too; widen the period to see earlier feedback.")
            st.button("Look at the last 90 days instead", key="demand_widen", on_click=_widen,
                      icon=":material/date_range:")
        else:
            st.info("No tagged feedback matches. Widen the period or the categories, or save a search as a theme.")
        return
    frame = theme_table(themes, sources, covers)
    config: dict[str, Any] = {
        "rank": st.column_config.NumberColumn("#", width="small"),
        "theme": st.column_config.TextColumn("Theme", width="large"),
        "score": st.column_config.NumberColumn("Score", format="%g", help="Distinct accounts weighted by tier"),
        "accounts": st.column_config.NumberColumn("Accounts"),
        "records": st.column_config.NumberColumn("Records"),
        "previous_score": st.column_config.NumberColumn("Previous", format="%g",
                                                        help="The score in the previous period of equal length"),
        "trend": st.column_config.TextColumn("Trend", help="Against the period of equal length just before; "
                                                           "said plainly when there is no data to compare with."),
        "negative": st.column_config.TextColumn("Negative", help="Share of the theme's records whose words read "
                                                                 "negative."),
        "tiers": st.column_config.TextColumn("Accounts by tier"),
    }
    config.update({s: st.column_config.NumberColumn(source_label(s)) for s in sources})
    digest = filters_digest(scope, kind)
    selection = st.dataframe(frame, hide_index=True, width="stretch", key=f"demand_themes_{digest}",
                             on_select="rerun", selection_mode="single-row", column_config=config,
                             height=min(ROW_HEIGHT * (len(frame) + 1) + 3, 600))
    if kind == "discovered" and report.untagged_records:
        st.caption(f"{report.untagged_records:,} records in this period are near no theme.")
    if kind == "tag" and report.untagged_records:
        st.caption(f"{report.untagged_records:,} records from {report.untagged_accounts:,} accounts carry no tag "
                   "(survey answers never do): save a search as a theme to count them.")
    chosen = list(selection.selection.rows) if selection is not None else []
    index = chosen[0] if chosen and chosen[0] < len(themes) else 0
    if not chosen:
        st.caption("Showing the top theme; select another row to see its accounts.")
    if kind == "discovered":
        quotes_section(path, scope, themes[index])
    accounts_section(path, version, settings, scope, themes[index])


def emerging_view(path: Any, version: Any, settings: Any, scope: insights.DemandScope) -> None:
    # Emerging topics look at records with these filters; the tier here is each record's own.
    filters = Filters(sources=scope.sources, tiers=scope.tiers, categories=scope.categories, start=scope.start,
                      end=scope.end)
    cols = st.columns(2)
    st.session_state.setdefault("demand_min_records", 5)
    min_records = int(cols[0].number_input("Minimum records", min_value=1, max_value=1000, step=1,
                                           key="demand_min_records",
                                           help="A word or phrase must appear in at least this many records."))
    report = computed(path, version, settings, "emerging_topics", filters, limit=15, min_records=min_records)
    sampled = ""
    if report.scanned < report.records or report.previous_scanned < report.previous_records:
        sampled = (f" Read an even sample: {report.scanned:,} of {report.records:,} records and "
                   f"{report.previous_scanned:,} of {report.previous_records:,} before.")
    st.caption(f"Words and two-word phrases whose share of records grew most from "
               f"{readable_date(report.previous_start)} – {readable_date(report.previous_end)} to "
               f"{readable_date(report.start)} – {readable_date(report.end)}.{sampled}")
    if not report.terms:
        st.info("Nothing rose above the minimum number of records. Lower it or widen the period.")
        return
    frame = pd.DataFrame(
        [{"term": t.term, "kind": t.kind, "records": t.records, "previous_records": t.previous_records,
          "share": t.share * 100, "previous_share": t.previous_share * 100, "lift": t.lift,
          "explore": "./?" + "&".join(f"{k}={_quote(v)}" for k, v in insights.term_explore_params(filters, t).items())}
         for t in report.terms],
        columns=["term", "kind", "records", "previous_records", "share", "previous_share", "lift", "explore"],
    )
    selection = st.dataframe(
        frame, hide_index=True, width="stretch", key=f"demand_emerging_{filters_digest(filters, min_records)}",
        on_select="rerun", selection_mode="single-row",
        column_config={
            "term": st.column_config.TextColumn("Term", width="medium"),
            "records": st.column_config.NumberColumn("Records"),
            "previous_records": st.column_config.NumberColumn("Before"),
            "share": st.column_config.NumberColumn("Share %", format="%.1f"),
            "previous_share": st.column_config.NumberColumn("Before %", format="%.1f"),
            "lift": st.column_config.NumberColumn(
                "Growth ×", format="%.1f",
                help="How many times more often the term appears now than in the period before. Rare terms are "
                     "evened out a little, so one or two mentions do not look like a surge."),
            "explore": st.column_config.LinkColumn("Records", display_text="open in Explore ↗"),
        },
    )
    st.caption("A word is left out when a listed phrase holding it covers most of its records.")
    chosen = list(selection.selection.rows) if selection is not None else []
    if chosen and chosen[0] < len(report.terms):
        term = report.terms[chosen[0]]
        st.text(f"{term.term}: {term.explanation()}")
        open_in_explore(insights.term_explore_params(filters, term), "demand_open_term",
                        "Open the matching records in Explore")


def _quote(value: str) -> str:
    from urllib.parse import quote

    return quote(value, safe="")


def saved_view(path: Any) -> None:
    st.caption("A saved search counts as a theme: every record it finds, tagged or not, from every source.")
    with st.form("demand_save_theme", clear_on_submit=True, border=True):
        cols = st.columns([1, 2])
        name = cols[0].text_input("Theme name", key="demand_theme_name")
        query = cols[1].text_input("Search", key="demand_theme_query",
                                   placeholder='words, "exact phrase", export OR csv, -exclude, prefix*')
        if st.form_submit_button("Save as theme", icon=":material/bookmark_add:"):
            try:
                with Store(path) as store:
                    insights.save_theme(store, name, query)
            except insights.ThemeError as error:
                st.error(md_escape(error), icon=":material/error:")
            else:
                st.success("Theme saved.")
    with Store(path) as store:
        themes = insights.saved_themes(store)
    if not themes:
        st.caption("No saved themes yet.")
        return
    st.dataframe(pd.DataFrame([{"name": t.name, "search": t.query, "saved": t.created_at} for t in themes]),
                 hide_index=True, width="stretch", key="demand_saved_table")
    cols = st.columns([2, 1], vertical_alignment="bottom")
    chosen = cols[0].selectbox("Theme", [t.id for t in themes], key="demand_theme_delete_choice",
                               format_func=lambda i: next(t.name for t in themes if t.id == i))
    if cols[1].button("Delete theme", key="demand_theme_delete", icon=":material/delete:"):
        with Store(path) as store:
            insights.delete_theme(store, int(chosen))
        st.rerun()


SUGGESTIONS_KEY = "demand_merge_suggestions"


def suggestions_section(path: Any) -> None:
    if st.button("Suggest merges", key="demand_suggest", icon=":material/auto_fix_high:",
                 help="Organizations whose other people write from one company domain. Reads every record once."):
        with Store(path) as store:
            st.session_state[SUGGESTIONS_KEY] = accounts.suggested_merges(store)
    suggestions: list[accounts.Suggestion] | None = st.session_state.get(SUGGESTIONS_KEY)
    if suggestions is None:
        return
    if not suggestions:
        st.caption("No suggestions: every organization in use is either merged or has no colleague on a company "
                   "domain.")
        return
    st.dataframe(
        pd.DataFrame([{"merge": s.alias, "into": s.account, "records": s.records,
                       "organization_records": s.organization_records} for s in suggestions]),
        hide_index=True, width="stretch", key="demand_suggestions_table",
        column_config={"records": st.column_config.NumberColumn("Records from that domain"),
                       "organization_records": st.column_config.NumberColumn("From any company domain")},
    )
    if st.button(f"Merge all {len(suggestions)} suggested", key="demand_merge_suggested", icon=":material/merge:"):
        with Store(path) as store:
            accounts.import_merges(store, [(s.alias, s.account) for s in suggestions])
        st.session_state.pop(SUGGESTIONS_KEY, None)
        st.rerun()


def _organization_example() -> str:
    """An organization key as the first source with organizations writes it (org:<source>:<id>)."""
    source = next(iter(accounts.ORGANIZATION_FIELDS), "source")
    return f"org:{source}:123"


def merges_view(path: Any) -> None:
    st.caption("An account is the e-mail domain (free mail aside), else the vendor's organization, else the person. "
               "Merge what no rule can see: a second domain, a vendor's organization whose people use gmail.com. "
               "Use the account keys from the accounts table.")
    with st.form("demand_merge", clear_on_submit=True, border=True):
        cols = st.columns(2)
        alias = cols[0].text_input("Merge this account key", key="demand_merge_alias",
                                   placeholder=f"{_organization_example()} or person:ann@gmail.com")
        into = cols[1].text_input("into this account", key="demand_merge_into", placeholder="acme.com")
        if st.form_submit_button("Merge", icon=":material/merge:"):
            try:
                with Store(path) as store:
                    accounts.merge(store, alias, into)
            except accounts.MergeError as error:
                st.error(md_escape(error), icon=":material/error:")
            else:
                st.success("Merged.")
    suggestions_section(path)
    with Store(path) as store:
        merged = accounts.merges(store)
    if not merged:
        st.caption("No merges yet.")
        return
    st.dataframe(pd.DataFrame([{"alias": m.alias, "account": m.account, "merged": m.created_at} for m in merged]),
                 hide_index=True, width="stretch", key="demand_merges_table")
    cols = st.columns([2, 1], vertical_alignment="bottom")
    chosen = cols[0].selectbox("Merge", [m.alias for m in merged], key="demand_unmerge_choice")
    if cols[1].button("Undo merge", key="demand_unmerge", icon=":material/undo:"):
        with Store(path) as store:
            accounts.unmerge(store, str(chosen))
        st.rerun()


def main() -> None:
    mode = current_mode()
    path = db_path(mode)
    version = data_version(path)
    st.title("Demand")
    if version[0] == 0:
        st.subheader("No feedback yet")
        st.markdown("Load or sync feedback first; the Demand view ranks what is in the store.")
        st.page_link(EXPLORE, label="Explore", icon=":material/insights:")
        return
    with Store(path) as store:
        known_sources = store.distinct_values("source")
        bounds = store.date_bounds()
    keep_choices()
    scope = controls(known_sources, bounds)
    view = st.radio("View", list(VIEWS), format_func=VIEWS.get, horizontal=True, key="demand_view",
                    label_visibility="collapsed")
    if view == "saved":
        saved_view(path)
        return
    if view == "merges":
        merges_view(path)
        return
    if scope is None:
        return
    settings = settings_marker(path)
    if view == "emerging":
        emerging_view(path, version, settings, scope)
    else:
        themes_view(path, version, settings, scope, known_sources)


main()
