"""The app's side of background sync jobs: starting one, and the live status every page shows.

The job itself runs in its own process (feedback_sources/jobs.py) and writes its progress to the store; these
functions only read the store, so a page left and come back to, a second tab or a reloaded one all show the same
job. Nothing here blocks a script run on a sync.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Mapping
from datetime import datetime
from pathlib import Path
from typing import Any

import streamlit as st

from app_pages._shared import DEMO, REAL, credential_store, db_path, source_label, workspace
from feedback_sources.jobs import Job, JobSpec, latest_job, spawn, start_if_due
from feedback_sources.store import Store
from feedback_sources.ui.sync_view import progress_fraction, progress_text
from feedback_sources.ui.text import md_escape

SIDEBAR_REFRESH_SECONDS = 2.0
PANEL_REFRESH_SECONDS = 1.0
SCHEDULE_CHECK_SECONDS = 60.0


def start_sync(mode: str, spec: JobSpec, origin: str = "app") -> Job:
    """Start a job for the workspace; raises SyncBusy when a sync already runs on its store.

    A real workspace hands the job the settings this app resolved (keyring, environment, .env), so the job syncs
    exactly the accounts the Connections page shows; the demo workspace needs none.
    """
    path = db_path(mode)
    if mode == DEMO:
        return spawn(path, spec, origin=origin)
    ws = workspace(REAL)
    return spawn(path, spec, origin=origin, configs=ws.configs, secrets=credential_store().secret_values())


def job_of(path: Path) -> Job | None:
    if not path.exists():
        return None
    with Store(path) as store:
        return latest_job(store)


def names(job: Job) -> str:
    return ", ".join(source_label(s) for s in job.sources) or "every connected source"


def clock(moment: datetime | None) -> str:
    return f"{moment:%H:%M:%S} UTC" if moment else "-"


def headline(job: Job) -> tuple[str, str]:
    """The one-line status of a job and its st.status state (running, complete or error)."""
    fetched = job.fetched()
    if job.status == "starting":
        return f"Starting a sync of {names(job)} ({job.spec.label})", "running"
    if job.status == "running":
        stopping = " · cancelling at the next page" if job.cancel_requested else ""
        return (f"Syncing {names(job)} ({job.spec.label}) since {clock(job.started_at)}: {fetched:,} fetched so far"
                f"{stopping}"), "running"
    if job.status == "complete":
        return f"Sync complete: {fetched:,} records fetched", "complete"
    if job.status == "cancelled":
        return (f"Sync cancelled at {clock(job.finished_at)} after {fetched:,} records; Resume continues from the "
                "last stored page"), "error"
    if job.status == "interrupted":
        return (f"Sync interrupted: its process stopped at about {clock(job.finished_at)} after {fetched:,} records "
                "were fetched; Resume continues from the last stored page"), "error"
    failed = [r["source"] for r in job.results or [] if r.get("status") != "complete"]
    if failed:
        return f"Sync finished with errors in {', '.join(failed)} ({fetched:,} records fetched)", "error"
    return f"Sync failed: {md_escape(job.message or 'unknown error')}", "error"


def source_rows(job: Job) -> list[dict[str, Any]]:
    """Per source, what the job did: its final results, else its last progress (a killed job has no results)."""
    if job.results is not None:
        return job.results
    rows = []
    for source in job.sources:
        progress: dict[str, Any] = dict(job.progress.get(source) or {"source": source})
        if not job.active and progress.get("status") not in ("complete", "failed", "cancelled"):
            progress["status"] = job.status
        rows.append(progress)
    return rows


def progress_bars(job: Job, place: Any) -> None:
    for row in source_rows(job):
        data: Mapping[str, Any] = row
        if job.results is not None:  # a finished source's bar is full whatever it fetched
            data = {**row, "status": row.get("status") if row.get("status") == "failed" else "complete"}
        place.progress(progress_fraction(data), text=md_escape(progress_text(row)))


# -- the sidebar, on every page ----------------------------------------------------------------------------------------


def sidebar_status(mode: str) -> Job | None:
    """The newest sync job in a few lines: drawn inside the sidebar's self-refreshing fragment (app.py)."""
    job = job_of(db_path(mode))
    if job is None:
        return None
    label, state = headline(job)
    if job.status in ("interrupted", "cancelled"):
        tag = f":orange-badge[:material/pause: {job.status.capitalize()}]"
    elif state == "running":
        tag = ":blue-badge[:material/sync: Syncing]"
    elif state == "complete":
        tag = ":green-badge[:material/check: Synced]"
    else:
        tag = ":red-badge[:material/error: Sync failed]"
    box = st.container(border=True)
    box.markdown(tag)
    box.markdown(label if job.active else label.split(";")[0])
    if job.active or job.status in ("interrupted", "cancelled"):
        box.page_link("app_pages/sync.py", label="Watch on the Sync page" if job.active else "Resume on the Sync page",
                      icon=":material/sync:")
    return job


# -- the schedule, while the app runs -----------------------------------------------------------------------------------


def _scheduler_loop() -> None:
    while True:
        for mode in (DEMO, REAL):
            path = db_path(mode)
            if not path.exists():
                continue
            try:
                start_if_due(path, mode == DEMO, start=lambda spec, m=mode: start_sync(m, spec, origin="schedule"))
            except Exception:  # a bad setting or a busy store this minute; the next check tries again
                pass
        time.sleep(SCHEDULE_CHECK_SECONDS)


@st.cache_resource
def scheduler() -> threading.Thread:
    """One thread per app process that starts the scheduled sync of each workspace when it is due."""
    thread = threading.Thread(target=_scheduler_loop, name="sync-schedule", daemon=True)
    thread.start()
    return thread
