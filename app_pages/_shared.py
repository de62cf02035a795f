"""What the app frame and the pages share: which workspace is active, cached store queries, the filter bar and sync.

A Store is opened per query and closed at once (sqlite connections must not cross threads or reruns); query results
are cached by database path and the store's data-version marker, so a new sync invalidates them and nothing else does.
"""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Callable, Sequence
from dataclasses import asdict, replace
from datetime import date, datetime, timezone
from pathlib import Path
from typing import Any, Concatenate, ParamSpec, TypeVar

import streamlit as st

from feedback_sources.credentials import CredentialStore
from feedback_sources.integrations.base import ConfigError
from feedback_sources.rules_store import rules_at
from feedback_sources.search import MAX_QUERY_CHARS, MAX_TERMS, SearchSyntaxError, to_fts_query
from feedback_sources.store import Store, StoreDamaged, StoreError, default_db_path, store_error_from
from feedback_sources.sync import SourceProgress, SourceResult, sync
from feedback_sources.ui.explore_view import ExploreView, view_from_query_params, view_to_query_params
from feedback_sources.ui.labels import CATEGORY_VALUES, SENTIMENT_VALUES, TIER_VALUES, human_label, source_label
from feedback_sources.ui.periods import PERIODS
from feedback_sources.ui.sync_view import SyncWindow, progress_fraction, progress_text
from feedback_sources.ui.text import md_escape
from feedback_sources.sources import source_names
from feedback_sources.workspace import Workspace, demo_workspace, has_any_credentials, real_workspace

MODE_KEY = "workspace_mode"
DEMO, REAL = "demo", "real"
MODE_LABELS = {DEMO: "Demo workspace", REAL: "My accounts"}
VIEW_KEY = "explore_view"
SYNC_RESULTS_KEY = "sync_results"
FLASH_KEY = "flash_messages"

# -- workspace -----------------------------------------------------------------------------------------------------


def credential_store() -> CredentialStore:
    return CredentialStore()


def current_mode() -> str:
    """Demo when nothing is configured on first load; afterwards whatever the person picked."""
    if st.session_state.get(MODE_KEY) not in (DEMO, REAL):
        try:
            configured = has_any_credentials(credential_store())
        except ValueError:
            configured = False
        st.session_state[MODE_KEY] = REAL if configured else DEMO
    return str(st.session_state[MODE_KEY])


def db_path(mode: str | None = None) -> Path:
    return default_db_path(demo=(mode or current_mode()) == DEMO)


def workspace(mode: str | None = None) -> Workspace:
    """The active workspace; raises ValueError when a configured value is malformed (the message names it)."""
    if (mode or current_mode()) == DEMO:
        return demo_workspace(db_path(DEMO))
    return real_workspace(credential_store(), db_path(REAL))


# -- flash messages (survive one st.rerun) --------------------------------------------------------------------------


def flash(kind: str, message: str) -> None:
    st.session_state.setdefault(FLASH_KEY, []).append((kind, message))


def show_flashes() -> None:
    for kind, message in st.session_state.pop(FLASH_KEY, []):
        {"success": st.success, "error": st.error, "warning": st.warning}.get(kind, st.info)(message)


# -- opening the store ------------------------------------------------------------------------------------------------


def store_problem(path: Path) -> StoreError | None:
    """Why the active store cannot be used, or None. The frame asks once per run, before any page opens it: a damaged
    or unusable file gets one clear message instead of a traceback, and nothing is written to it. Opening also
    migrates an older store, after backing it up; the page says so once."""
    try:
        with Store(path) as store:
            backup = store.migration_backup
    except StoreError as error:
        return error
    if backup is not None:
        st.info(f"The store needed a schema migration. The store as it was is backed up to {md_escape(backup)}.",
                icon=":material/backup:")
    return None


def database_problem(error: BaseException, path: Path) -> StoreError | None:
    """The typed store error behind a SQLite error met in the middle of a page (damage past the open check)."""
    return store_error_from(error, path)


def show_store_problem(error: StoreError) -> None:
    """What is wrong with the store and what to do, in the app's own words (the path is escaped)."""
    verdict = "The store is damaged" if isinstance(error, StoreDamaged) else "The store cannot be used"
    st.error(f"**{verdict}.** {md_escape(error.message)}", icon=":material/error:")
    if error.hint:
        st.info(f"What to do: {md_escape(error.hint)}", icon=":material/lightbulb:")


# -- cached store queries -------------------------------------------------------------------------------------------


# The data-version marker costs a scan on a big store, so it is read once per script run (per thread: each session
# runs its script on its own thread) and forgotten whenever the app itself writes (a sync).
_this_run = threading.local()


def forget_data_versions() -> None:
    """Called when a script run starts and after the app writes to a store."""
    _this_run.versions = {}


def data_version(path: Path) -> tuple[int, str | None]:
    versions: dict[str, tuple[int, str | None]] | None = getattr(_this_run, "versions", None)
    if versions is None:
        versions = _this_run.versions = {}
    if str(path) not in versions:
        with Store(path) as store:
            versions[str(path)] = store.data_version()
    return versions[str(path)]


P = ParamSpec("P")
R = TypeVar("R")


@st.cache_data(show_spinner=False, max_entries=128)
def _query(path: str, version: Any, method: str, args: tuple[Any, ...], kwargs: tuple[Any, ...]) -> Any:
    # `version` is only part of the cache key: a sync changes it, which is what invalidates the cached results.
    with Store(path) as store:
        return getattr(store, method)(*args, **dict(kwargs))


def cached(path: Path, version: Any, query: Callable[Concatenate[Store, P], R], *args: P.args, **kwargs: P.kwargs) -> R:
    """A Store query's result, computed once per database file, data version and arguments.

    `query` is the Store method itself (`Store.kpis`), so a type checker sees its arguments and its result; the
    cache keys on its name, which is what Streamlit can hash.
    """
    name = query.__name__
    if getattr(Store, name, None) is not query:
        raise TypeError(f"cached() takes a Store method, not {query!r}")
    return _query(str(path), version, name, args, tuple(sorted(kwargs.items())))


# -- the filter bar (Explore and Export share it) ---------------------------------------------------------------------


def current_view() -> ExploreView:
    """The canonical view: read once from the URL, then kept in session state and written back to the URL."""
    if VIEW_KEY not in st.session_state:
        st.session_state[VIEW_KEY] = view_from_query_params(st.query_params.to_dict())
    view = st.session_state[VIEW_KEY]
    assert isinstance(view, ExploreView)
    return view


def set_view(view: ExploreView) -> None:
    st.session_state[VIEW_KEY] = view


def publish_view(view: ExploreView) -> None:
    wanted = view_to_query_params(view)
    if st.query_params.to_dict() != wanted:
        st.query_params.from_dict(wanted)


def _widget_values(view: ExploreView) -> dict[str, Any]:
    dates: tuple[date, ...] = tuple(d for d in (view.start, view.end) if d is not None)
    return {
        "sources": list(view.sources),
        "tiers": list(view.tiers),
        "categories": list(view.categories),
        "period": view.period,
        "dates": dates,
        "text": view.text,
        "sentiments": list(view.sentiments),
    }


def _view_from_widgets(prefix: str, previous: ExploreView, custom_default: tuple[date, date]) -> ExploreView:
    state = st.session_state
    period = state.get(f"{prefix}_period", previous.period)
    dates = state.get(f"{prefix}_dates") or ()
    if isinstance(dates, date):
        dates = (dates,)
    start = dates[0] if len(dates) >= 1 else None
    end = dates[1] if len(dates) >= 2 else start
    if period == "custom" and previous.period != "custom":
        start, end = custom_default  # switching to a custom range starts from the dates on screen
    elif period == "custom" and start is None:
        start, end = previous.start or custom_default[0], previous.end or custom_default[1]
    return ExploreView(
        sources=tuple(state.get(f"{prefix}_sources", previous.sources)),
        tiers=tuple(state.get(f"{prefix}_tiers", previous.tiers)),
        categories=tuple(state.get(f"{prefix}_categories", previous.categories)),
        period=period,
        start=start if period == "custom" else None,
        end=end if period == "custom" else None,
        text=str(state.get(f"{prefix}_text", previous.text)),
        tag=previous.tag,
        sentiments=tuple(state.get(f"{prefix}_sentiments", previous.sentiments)),
        theme=previous.theme,
    )


def _on_filter_change(prefix: str, custom_default: tuple[date, date]) -> None:
    set_view(_view_from_widgets(prefix, current_view(), custom_default))


def _clear_tag() -> None:
    set_view(replace(current_view(), tag=None))


def _clear_theme() -> None:
    set_view(replace(current_view(), theme=None))


def _reset_view() -> None:
    set_view(ExploreView())


def filter_bar(prefix: str, known_sources: Sequence[str], bounds: tuple[str | None, str | None]) -> ExploreView:
    """Filter widgets bound to the canonical view; returns the view after any change the person just made."""
    view = current_view()
    # Widgets take their value from session state, set here from the view so a chart click or a URL shows up in them.
    for name, value in _widget_values(view).items():
        st.session_state[f"{prefix}_{name}"] = value
    first, last = (date.fromisoformat(b[:10]) if b else None for b in bounds)
    shown_start, shown_end = view.date_range(today())
    custom_default = (shown_start or first or today(), shown_end or last or today())
    change: Callable[[], None] = lambda: _on_filter_change(prefix, custom_default)  # noqa: E731
    source_options = list(dict.fromkeys([*source_names(), *known_sources, *view.sources]))

    top = st.columns([1, 1, 1.3, 1])
    top[0].multiselect("Source", source_options, key=f"{prefix}_sources", on_change=change,
                       format_func=source_label, placeholder="All sources")
    top[1].multiselect("Tier", list(TIER_VALUES), key=f"{prefix}_tiers", on_change=change,
                       format_func=human_label, placeholder="All tiers")
    top[2].multiselect("Category", list(CATEGORY_VALUES), key=f"{prefix}_categories", on_change=change,
                       format_func=human_label, placeholder="All categories")
    top[3].selectbox("Period", list(PERIODS), key=f"{prefix}_period", on_change=change, format_func=PERIODS.get)

    bottom = st.columns([2.2, 1.2, 1.2, 0.6, 0.6], vertical_alignment="bottom")
    bottom[0].text_input("Search", key=f"{prefix}_text", on_change=change, max_chars=MAX_QUERY_CHARS,
                         placeholder='words, "exact phrase", export OR csv, -exclude, prefix*',
                         help=f"Up to {MAX_QUERY_CHARS} characters and {MAX_TERMS} terms.")
    bottom[1].multiselect("Sentiment", list(SENTIMENT_VALUES), key=f"{prefix}_sentiments", on_change=change,
                          format_func=human_label, placeholder="Any sentiment",
                          help="From the customer's own words, greetings left out (the record view shows which "
                               "words decided it).")
    if view.period == "custom":
        bottom[2].date_input("Dates", key=f"{prefix}_dates", on_change=change, format="YYYY-MM-DD",
                             min_value=min(d for d in (first, view.start, date(2000, 1, 1)) if d),
                             max_value=max(d for d in (last, view.end, today()) if d))
    if view.tag:
        bottom[3].button("Tag", key=f"{prefix}_clear_tag", on_click=_clear_tag, icon=":material/close:",
                         help="Remove the tag filter set by clicking the tag chart.", width="stretch")
    elif view.theme:
        bottom[3].button("Theme", key=f"{prefix}_clear_theme", on_click=_clear_theme, icon=":material/close:",
                         help="Remove the theme filter set from the Themes or Demand page.", width="stretch")
    if not view.is_default:
        bottom[4].button("Reset", key=f"{prefix}_reset", on_click=_reset_view, icon=":material/restart_alt:",
                         width="stretch", help="Clear every filter.")
    if view.tag:
        st.text(f"Only records tagged: {view.tag}")
    if view.theme:
        st.text(f"Only records of one theme: {theme_name(view.theme)}")
    publish_view(view)
    return view


def theme_name(theme_id: int) -> str:
    from feedback_sources import themes

    with Store(db_path()) as store:
        info = themes.themes(store).get(theme_id)
    return info.name if info is not None else f"theme {theme_id} (no longer found)"


def search_error(view: ExploreView) -> str | None:
    try:
        to_fts_query(view.text)
    except SearchSyntaxError as error:
        return str(error)
    return None


def today() -> date:
    return datetime.now(timezone.utc).date()


def filters_digest(*parts: Any) -> str:
    return hashlib.sha1(repr(parts).encode()).hexdigest()[:10]


# -- running a sync with live progress --------------------------------------------------------------------------------


def run_sync(ws: Workspace, sources: Sequence[str], window: SyncWindow) -> list[dict[str, Any]]:
    """Sync the sources inside an st.status with one progress bar each; returns one result dict per source."""
    results: list[dict[str, Any]] = []
    names = ", ".join(source_label(s) for s in sources)
    with st.status(f"Syncing {names} ({window.label})", expanded=True) as status:
        bars = {source: st.progress(0.0, text=f"{source}: waiting") for source in sources}

        def on_progress(progress: SourceProgress) -> None:
            data = asdict(progress)
            bar = bars.get(progress.source)
            if bar is not None:
                bar.progress(progress_fraction(data), text=md_escape(progress_text(data)))

        integrations = {}
        rules = rules_at(ws.db_path)  # the Rules page's current version, else the package's defaults
        for source in sources:
            try:
                integrations[source] = ws.integration(source, rules=rules)
            except ConfigError as error:
                missing = ", ".join(error.missing)
                failed = SourceResult(source, "failed", "not run", errors=f"not configured: missing {missing}",
                                      error_kind="config")
                results.append(failed.as_dict())
                bars[source].progress(1.0, text=md_escape(f"{source}: not configured (missing {missing})"))
        if integrations:
            from feedback_sources.jobs import JobSpec, SyncBusy, exclusive_sync

            spec = JobSpec(sources=tuple(integrations), start=window.start, end=window.end,
                           incremental=window.incremental, demo=ws.demo, label=window.label)
            try:
                # Under the store's one-sync lock and recorded as a job, like every other sync: the sidebar shows it.
                with exclusive_sync(ws.db_path, spec, origin="app") as job, Store(ws.db_path) as store:
                    def on_job_progress(progress: SourceProgress) -> None:
                        job.on_progress(progress)
                        on_progress(progress)

                    outcome = sync(store, integrations, start=window.start, end=window.end,
                                   incremental=window.incremental, on_progress=on_job_progress,
                                   should_stop=job.should_stop, run_group=job.run_group)
                    job.record([result.as_dict() for result in outcome.values()])
            except SyncBusy as busy:
                status.update(label="Not started: another sync is running", state="error", expanded=True)
                flash("warning", md_escape(busy))  # the page may rerun at once; a flash survives that
                return []
            results.extend(result.as_dict() for result in outcome.values())
            forget_data_versions()
        order = {source: index for index, source in enumerate(sources)}
        results.sort(key=lambda r: order.get(r["source"], len(order)))
        failed_sources = [r["source"] for r in results if r["status"] != "complete"]
        fetched = sum(int(r.get("fetched") or 0) for r in results)
        if failed_sources:
            status.update(label=f"Sync finished with errors in {', '.join(failed_sources)} ({fetched:,} records fetched)",
                          state="error", expanded=True)
        else:
            status.update(label=f"Sync complete: {fetched:,} records fetched", state="complete", expanded=False)
    st.session_state[SYNC_RESULTS_KEY] = {
        "finished_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "window": window.label,
        "mode": DEMO if ws.demo else REAL,
        "results": results,
    }
    return results
