"""Feedback Hub: run with `streamlit run app.py`.

The entry point is the frame around every page (navigation, workspace switch, demo banner, per-source status) and
the router to the pages in app_pages/. That folder is deliberately not called pages/: a pages/ folder next to the
entry point switches on Streamlit's legacy multipage mode, which runs a page file without this frame on a first
request for its URL.

Without credentials the app opens the demo workspace, backed by the built-in vendor emulator and its own database
file, so nothing demo ever lands in the real store.
"""

from __future__ import annotations

import sqlite3
from datetime import datetime, timezone
from pathlib import Path

import streamlit as st

from app_pages._shared import (
    DEMO,
    MODE_KEY,
    MODE_LABELS,
    REAL,
    cached,
    credential_store,
    current_mode,
    data_version,
    database_problem,
    db_path,
    forget_data_versions,
    show_store_problem,
    source_label,
    store_problem,
)
from app_pages._sync_status import SIDEBAR_REFRESH_SECONDS, scheduler, sidebar_status
from feedback_sources.store import Store, StoreError
from feedback_sources.ui.freshness import SourceStatus, source_status
from feedback_sources.sources import source_names
from feedback_sources.workspace import demo_sources

SIDEBAR_SEEN_KEY = "sidebar_sync_seen"

PAGES = [
    st.Page("app_pages/explore.py", title="Explore", icon=":material/insights:", default=True),
    st.Page("app_pages/demand.py", title="Demand", icon=":material/leaderboard:"),
    st.Page("app_pages/themes.py", title="Themes", icon=":material/category:"),
    st.Page("app_pages/rules.py", title="Rules", icon=":material/rule:"),
    st.Page("app_pages/sync.py", title="Sync", icon=":material/sync:"),
    st.Page("app_pages/health.py", title="Source health", icon=":material/monitor_heart:"),
    st.Page("app_pages/webhooks.py", title="Webhooks", icon=":material/webhook:"),
    st.Page("app_pages/export.py", title="Export", icon=":material/download:"),
    st.Page("app_pages/connections.py", title="Connections", icon=":material/key:"),
]


def connected_sources(mode: str) -> set[str]:
    if mode == DEMO:
        return set(demo_sources())
    creds = credential_store()
    return {source for source in source_names() if creds.is_configured(source)}


def source_cards(container: st.delta_generator.DeltaGenerator, mode: str) -> None:
    path = db_path(mode)
    with Store(path) as store:
        runs = store.recent_runs(limit=1)
    # A run that stored nothing new still changes "last synced", so the newest run is part of the cache key.
    marker = (data_version(path), tuple(runs[0].items()) if runs else None)
    summary = cached(path, marker, Store.source_summary)
    connected = connected_sources(mode)
    now = datetime.now(timezone.utc)
    container.caption("Sources")
    for source in source_names():
        status = source_status(source, source in connected, summary.get(source), now)
        box = container.container(border=True)
        # Name and badge share one line of the app's own markdown; a narrow sidebar wraps the badge, not the name.
        box.markdown(f"**{source_label(source)}** {status_badge(status)}")
        box.caption(f"{status.records:,} records · synced {status.last_sync}")


def status_badge(status: SourceStatus) -> str:
    if not status.connected:
        return ":gray-badge[Not connected]"
    if status.last_failed:
        return ":red-badge[:material/error: Failing]"
    if status.last_sync == "never":
        return ":gray-badge[Never synced]"
    if status.stale:
        return ":orange-badge[:material/schedule: Stale]"
    return ":green-badge[:material/check: Fresh]"


def sidebar_live(mode: str) -> None:
    """The background sync's status and the per-source cards, redrawn every few seconds on every page.

    A sync runs in its own process, so nothing else tells this page that records arrived: the fragment reads the
    store again on its own, without rerunning (and so without disturbing) the page around it.
    """
    try:
        job = sidebar_status(mode)
        seen = (job.id, job.status, job.fetched()) if job else None
        if st.session_state.get(SIDEBAR_SEEN_KEY) != seen:
            # A sync moved on: count the records again. Otherwise the marker read by the last run still holds, and a
            # quiet sidebar costs no scan of a big store every few seconds.
            forget_data_versions()
            st.session_state[SIDEBAR_SEEN_KEY] = seen
        source_cards(st.container(), mode)
    except (sqlite3.DatabaseError, StoreError):  # the store broke since the page was drawn: the page says why
        st.caption("Sources: unavailable while the store cannot be read.")


def switch_to(mode: str) -> None:
    st.session_state[MODE_KEY] = mode


def demo_banner() -> None:
    banner = st.container(border=True)
    columns = banner.columns([4, 1.2], vertical_alignment="center")
    # One line at 1280 px: the first screen is for the page's answer.
    columns[0].markdown(
        ":violet-badge[:material/science: Demo data] **Generated demo feedback**, kept apart from your accounts.",
        help="It comes from the built-in vendor emulator and lives in its own database file.",
    )
    columns[1].button("Use my accounts", on_click=switch_to, args=(REAL,), icon=":material/swap_horiz:",
                      key="banner_switch_real")


# An emoji favicon is inlined by the browser; a :material: one would be fetched from a CDN.
st.set_page_config(page_title="Feedback Hub", page_icon="💬", layout="wide")
# The app's name on top of the sidebar, above the page list (a local file: nothing is fetched from elsewhere).
st.logo(str(Path(__file__).parent / "app_pages" / "assets" / "logo.svg"), size="large")
forget_data_versions()  # the data-version marker is read afresh once per run
current_mode()  # settles the first-run default (demo unless credentials exist) before the switch is drawn
st.sidebar.radio(
    "Workspace",
    [DEMO, REAL],
    key=MODE_KEY,
    format_func=MODE_LABELS.get,
    horizontal=True,
    help="The demo workspace keeps generated data in its own database file, apart from your real feedback.",
)
mode = current_mode()
page = st.navigation(PAGES)
if mode == DEMO:
    demo_banner()
scheduler()  # starts the scheduled sync of each workspace when it is due, while this app process runs
cards = st.sidebar.container()
# A damaged or unusable store is said so on every page, before any page reads from or writes to it.
problem = store_problem(db_path(mode))
if problem is None:
    try:
        page.run()
        # Drawn after the page so whatever the page just changed shows up at once; then redrawn every few seconds.
        with cards:
            st.fragment(sidebar_live, run_every=SIDEBAR_REFRESH_SECONDS)(mode)
    except sqlite3.DatabaseError as error:
        problem = database_problem(error, db_path(mode))
        if problem is None:
            raise
if problem is not None:
    show_store_problem(problem)
    cards.caption("Sources: unavailable while the store cannot be read.")
