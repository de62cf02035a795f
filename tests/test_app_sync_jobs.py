"""The Sync page and the sidebar with background sync jobs (AppTest): watch, refuse a second start, cancel, resume,
schedule; Explore's demo load honours the same lock."""

from __future__ import annotations

import os
import signal
from datetime import timedelta

from app_fixtures import AppEnv, app_env, finish_sync, run_page  # noqa: F401  (fixture)
from jobs_support import lock_holder

from feedback_sources.jobs import JobSpec, active_job, create_job, get_job, get_schedule, latest_job
from feedback_sources.store import Store, iso_utc, now_utc

SYNC = "app_pages/sync.py"
RUN = "FormSubmitter:sync_form-Run sync"


def sidebar_lines(at) -> list[str]:  # type: ignore[no-untyped-def]
    return [m.value for m in at.sidebar.markdown if not m.value.startswith("**")]


def test_a_sync_from_elsewhere_is_shown_refused_a_second_start_and_cancelled(app_env: AppEnv) -> None:
    with lock_holder(app_env.demo_db) as holder:
        at = run_page(app_env, SYNC)
        [status] = at.status
        assert status.label.startswith("Syncing Zendesk, Intercom (the last 7 days) since ")
        assert status.state == "running"
        assert any(c.value.startswith("Started ") and f"from the command line · process {holder.pid}" in c.value
                   for c in at.caption)
        assert sidebar_lines(at)[:2] == [":blue-badge[:material/sync: Syncing]", status.label]

        # The same on any other page: the status belongs to the store, not to this page.
        explore = run_page(app_env, "app_pages/explore.py")
        assert sidebar_lines(explore)[:2] == [":blue-badge[:material/sync: Syncing]", status.label]

        at.button(key=RUN).click().run()
        [warning] = [w.value for w in at.warning]
        assert warning.startswith("Not started: a sync of zendesk, intercom \\(the last 7 days\\), started from the "
                                  "command line at ")
        with Store(app_env.demo_db) as store:
            assert [j.origin for j in [latest_job(store)] if j] == ["cli"]

        at.button(key="sync_cancel").click().run()
        assert holder.stdout is not None and holder.stdout.readline().strip() == "cancelled"
        holder.wait(timeout=30)
    at.run()
    [status] = at.status
    assert status.label.startswith("Sync cancelled at ") and status.state == "error"
    assert [b.label for b in at.button if b.key == "sync_resume"] == ["Resume"]
    with Store(app_env.demo_db) as store:
        job = latest_job(store)
    assert job is not None and job.status == "cancelled" and job.cancel_requested


def test_an_interrupted_sync_is_never_shown_running_and_resume_finishes_it(app_env: AppEnv) -> None:
    spec = JobSpec(sources=("surveymonkey",), start=now_utc() - timedelta(days=200), demo=True,
                   label="the last 200 days")
    with Store(app_env.demo_db) as store:
        dead = create_job(store, spec, "app")
        with store.write() as conn:  # it ran, stored nothing more, and its process is long gone
            conn.execute("UPDATE sync_jobs SET status = 'running', pid = ?, started_at = ?, run_group = 'g' "
                         "WHERE id = ?", (_a_dead_pid(), iso_utc(now_utc()), dead.id))
        store.start_run("g", "surveymonkey", "since", None, None)
    at = run_page(app_env, SYNC)
    [status] = at.status
    assert status.label.startswith("Sync interrupted: its process stopped")
    assert ":orange-badge[:material/pause: Interrupted]" in sidebar_lines(at)
    history = at.dataframe[1].value
    assert list(history["status"]) == ["interrupted"]

    at.button(key="sync_resume").click().run()
    finish_sync(at, app_env.demo_db)
    [status] = at.status
    assert status.state == "complete" and status.label.startswith("Sync complete: ")
    with Store(app_env.demo_db) as store:
        job = latest_job(store)
        assert job is not None and job.id != dead.id and job.spec == spec and job.status == "complete"
        assert store.count() == job.fetched() > 0
        assert (get_job(store, dead.id) or dead).status == "interrupted"


def running_since(env: AppEnv) -> str:
    with Store(env.demo_db) as store:
        job = active_job(store)
    assert job is not None and job.started_at is not None
    return f"{job.started_at:%Y-%m-%d %H:%M:%S}"


def _a_dead_pid() -> int:
    import subprocess
    import sys

    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


def test_the_schedule_is_saved_in_the_store(app_env: AppEnv) -> None:
    at = run_page(app_env, SYNC)
    assert any(c.value.startswith("Off. To sync while the app is closed") for c in at.caption)
    at.toggle(key="sync_schedule_on").set_value(True)
    at.number_input(key="sync_schedule_hours").set_value(4)
    at.button(key="FormSubmitter:sync_schedule_form-Save schedule").click().run()
    with Store(app_env.demo_db) as store:
        assert get_schedule(store) == 4.0
    assert any(c.value.startswith("Every 4 hours (every connected source, since the last sync); next at ")
               for c in at.caption)
    at.toggle(key="sync_schedule_on").set_value(False)
    at.button(key="FormSubmitter:sync_schedule_form-Save schedule").click().run()
    with Store(app_env.demo_db) as store:
        assert get_schedule(store) is None


def test_explore_demo_load_waits_its_turn(app_env: AppEnv) -> None:
    with lock_holder(app_env.demo_db) as holder:
        at = run_page(app_env, "app_pages/explore.py")
        at.button(key="explore_load_demo").click().run()
        # The message is escaped for markdown; read without the escapes, it says what runs, since when and where.
        assert [w.value.replace("\\", "") for w in at.warning] == [
            "Another sync is already running on this store: a sync of zendesk, intercom (the last 7 days), started "
            f"from the command line at {running_since(app_env)} UTC (process {holder.pid}). Wait for it, watch it on "
            "the app's Sync page, or cancel it there."]
        with Store(app_env.demo_db) as store:
            assert store.count() == 0
            running = active_job(store)
        assert running is not None and running.pid == holder.pid
        os.kill(holder.pid, signal.SIGKILL)
        holder.wait(timeout=10)
    at.button(key="explore_load_demo").click().run()
    assert not at.warning
    with Store(app_env.demo_db) as store:
        job = latest_job(store)
        assert job is not None and job.status == "complete" and store.count() == job.fetched() > 0
