"""Sync: pull feedback from the chosen sources over a date range, with live progress, results and run history."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pandas as pd
import streamlit as st

from app_pages._shared import (
    DEMO,
    SYNC_RESULTS_KEY,
    current_mode,
    db_path,
    run_sync,
    source_label,
    today,
    workspace,
)
from feedback_sources.store import Store
from feedback_sources.ui_support import SYNC_PRESETS, history_rows, md_escape, result_rows, sync_window
from feedback_sources.workspace import SOURCES

NUMBER = st.column_config.NumberColumn
RESULT_CONFIG = {
    "source": st.column_config.TextColumn("Source"),
    "status": st.column_config.TextColumn("Status"),
    "mode": st.column_config.TextColumn("Mode"),
    "fetched": NUMBER("Fetched"),
    "new": NUMBER("New"),
    "updated": NUMBER("Updated"),
    "errors": st.column_config.TextColumn("Errors", width="large"),
    "duration_seconds": NUMBER("Duration (s)", format="%.1f"),
}


def results_section() -> None:
    outcome = st.session_state.get(SYNC_RESULTS_KEY)
    if not outcome:
        return
    st.subheader("Last run")
    st.caption(f"Finished {outcome['finished_at']} · {outcome['window']}")
    rows = result_rows(outcome["results"])
    st.dataframe(pd.DataFrame(rows), hide_index=True, width="stretch", column_config=RESULT_CONFIG,
                 key="sync_results_table")
    for result in outcome["results"]:
        if result["status"] != "complete":
            st.error(f"{source_label(result['source'])} failed: {md_escape(result.get('errors') or 'unknown error')}",
                     icon=":material/error:")


def history_section(path: object) -> None:
    with Store(path) as store:  # type: ignore[arg-type]
        runs = store.recent_runs(limit=25)
    st.subheader("History")
    if not runs:
        st.caption("No sync has run in this workspace yet.")
        return
    config = dict(RESULT_CONFIG)
    config["started_at"] = st.column_config.DatetimeColumn("Started", format="YYYY-MM-DD HH:mm:ss", timezone="UTC")
    st.dataframe(pd.DataFrame(history_rows(runs)), hide_index=True, width="stretch", column_config=config,
                 key="sync_history_table")


def main() -> None:
    mode = current_mode()
    path = db_path(mode)
    st.title("Sync")
    try:
        ws = workspace(mode)
    except ValueError as error:
        st.error(f"A saved or environment setting is invalid: {md_escape(error)}. Fix it on the Connections page.")
        return
    configured = ws.configured_sources()
    if not configured:
        st.warning("No source is connected yet: add credentials on the Connections page, or switch to the demo "
                   "workspace in the sidebar.", icon=":material/link_off:")
        st.page_link("app_pages/connections.py", label="Connections", icon=":material/key:")
    with st.form("sync_form", border=True):
        sources = st.multiselect("Sources", list(SOURCES), default=configured, format_func=source_label,
                                 key="sync_sources")
        preset = st.radio("Date range", list(SYNC_PRESETS), format_func=SYNC_PRESETS.get, horizontal=True,
                          key="sync_preset")
        custom = st.date_input("Custom range (used when 'Custom range' is chosen)",
                               value=(today() - timedelta(days=30), today()), format="YYYY-MM-DD",
                               key="sync_custom")
        submitted = st.form_submit_button("Run sync", type="primary", icon=":material/sync:")
    if mode == DEMO:
        st.caption("Demo workspace: the sync talks to the built-in emulator and writes to the demo database only.")
    if submitted:
        if not sources:
            st.warning("Choose at least one source.")
        else:
            try:
                window = sync_window(preset, datetime.now(timezone.utc),
                                     tuple(custom) if isinstance(custom, (tuple, list)) else None)  # type: ignore[arg-type]
            except ValueError as error:
                st.error(str(error))
            else:
                run_sync(ws, sources, window)
    results_section()
    history_section(path)


main()
