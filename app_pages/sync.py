"""Sync: start a sync of the chosen sources over a date range, watch it, cancel or resume it, keep the store fresh.

A sync runs as a background job of the store (feedback_sources/jobs.py), not of this page: leave the page, close the
tab or open a second one, and it goes on; come back and the panel shows where it is. Progress, results and history
are read from the store, so a sync started from the command line or cron shows up here the same way.
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pandas as pd
import streamlit as st

from app_pages._shared import (
    DEMO,
    current_mode,
    db_path,
    show_flashes,
    source_label,
    today,
    workspace,
)
from app_pages._sync_status import (
    PANEL_REFRESH_SECONDS,
    SIDEBAR_REFRESH_SECONDS as OUTCOME_REFRESH_SECONDS,
    clock,
    headline,
    job_of,
    progress_bars,
    source_rows,
    start_sync,
)
from feedback_sources.jobs import JobSpec, SyncBusy, get_schedule, next_scheduled, request_cancel, set_schedule
from feedback_sources.store import Store
from feedback_sources.ui.sync_view import SYNC_PRESETS, history_rows, result_rows, sync_window
from feedback_sources.ui.text import md_escape
from feedback_sources.sources import source_names

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


def start(mode: str, spec: JobSpec) -> None:
    try:
        start_sync(mode, spec)
    except SyncBusy as busy:
        what = busy.job.describe() if busy.job else "another sync"
        st.warning(f"Not started: {md_escape(what)} is already running. Watch it above, or cancel it first.",
                   icon=":material/hourglass_top:")
    else:
        # No st.rerun here: the panel above picks the new job up within a second on its own, and a rerun now could
        # swallow a click on another page made in the same moment.
        st.toast("Sync started in the background: leave the page whenever you like.", icon=":material/sync:")


def cancel(mode: str, job_id: int) -> None:
    with Store(db_path(mode)) as store:
        if not request_cancel(store, job_id):
            st.toast("That sync had already finished.", icon=":material/info:")


def job_panel(mode: str) -> None:
    """The newest job: live while it runs (this part redraws itself every second), its outcome once it ends."""
    job = job_of(db_path(mode))
    if job is None:
        return
    label, state = headline(job)
    # Not a `with` block: leaving one marks a running status complete, and this one runs on in the background.
    box = st.status(label, state=state, expanded=job.active or state == "error")  # type: ignore[arg-type]
    origin = {"app": "app", "cli": "command line", "schedule": "schedule"}.get(job.origin, job.origin)
    box.caption(f"Started {clock(job.started_at or job.created_at)} from the {origin} · process {job.pid or '-'}"
                + (f" · ended {clock(job.finished_at)}" if job.finished_at else ""))
    progress_bars(job, box)
    if job.active:
        st.button("Cancel sync", key="sync_cancel", icon=":material/stop_circle:", on_click=cancel,
                  args=(mode, job.id), disabled=job.cancel_requested,
                  help="Stops after the page being stored now; everything stored so far stays, and Resume continues.")
    elif job.status in ("interrupted", "cancelled"):
        st.button("Resume", key="sync_resume", type="primary", icon=":material/play_arrow:", on_click=start,
                  args=(mode, job.spec), help="Continues each source from its last stored page.")


def results_section(mode: str) -> None:
    job = job_of(db_path(mode))
    if job is None or job.active:
        return
    st.subheader("Last run")
    st.caption(f"Finished {job.finished_at.isoformat() if job.finished_at else '-'} · {md_escape(job.spec.label)}")
    rows = source_rows(job)
    st.dataframe(pd.DataFrame(result_rows(rows)), hide_index=True, width="stretch", column_config=RESULT_CONFIG,
                 key="sync_results_table")
    for result in rows:
        if result.get("status") == "failed":
            st.error(f"{source_label(result['source'])} failed: {md_escape(result.get('errors') or 'unknown error')}",
                     icon=":material/error:")


def outcome_sections(mode: str, path: object) -> None:
    results_section(mode)
    history_section(path)


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


def schedule_section(mode: str) -> None:
    path = db_path(mode)
    with Store(path) as store:
        hours = get_schedule(store)
        due = next_scheduled(store)
    st.subheader("Keep fresh")
    with st.form("sync_schedule_form", border=True):
        enabled = st.toggle("Sync every few hours while the app is running", value=hours is not None,
                            key="sync_schedule_on")
        every = st.number_input("Hours between syncs", min_value=1, max_value=168, value=int(hours or 6), step=1,
                                key="sync_schedule_hours")
        saved = st.form_submit_button("Save schedule", icon=":material/schedule:")
    if saved:
        with Store(path) as store:
            set_schedule(store, float(every) if enabled else None)
            hours, due = get_schedule(store), next_scheduled(store)
    if hours is not None and due is not None:
        st.caption(f"Every {hours:g} hours (every connected source, since the last sync); next at "
                   f"{due:%Y-%m-%d %H:%M} UTC or as soon as the app runs after that.")
    else:
        st.caption("Off. To sync while the app is closed, use cron, a systemd timer or launchd with the command "
                   "line (README: Keep it fresh).")


def main() -> None:
    mode = current_mode()
    path = db_path(mode)
    st.title("Sync")
    show_flashes()
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
    st.fragment(job_panel, run_every=PANEL_REFRESH_SECONDS)(mode)
    with st.form("sync_form", border=True):
        sources = st.multiselect("Sources", list(source_names()), default=configured, format_func=source_label,
                                 key="sync_sources")
        preset = st.radio("Date range", list(SYNC_PRESETS), format_func=SYNC_PRESETS.get, horizontal=True,
                          key="sync_preset")
        custom = st.date_input("Custom range (used when 'Custom range' is chosen)",
                               value=(today() - timedelta(days=30), today()), format="YYYY-MM-DD",
                               key="sync_custom")
        submitted = st.form_submit_button("Run sync", type="primary", icon=":material/sync:")
    st.caption("The sync runs in the background: leave this page or close the tab, and it goes on."
               + (" Demo workspace: it talks to the built-in emulator and writes to the demo database only."
                  if mode == DEMO else ""))
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
                start(mode, JobSpec(sources=tuple(sources), start=window.start, end=window.end,
                                    incremental=window.incremental, demo=ws.demo, label=window.label))
    # Results and history follow the job on their own too: a sync that ends while you look shows up here.
    st.fragment(outcome_sections, run_every=OUTCOME_REFRESH_SECONDS)(mode, path)
    schedule_section(mode)


main()
