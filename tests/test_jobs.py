"""Sync jobs (feedback_sources/jobs.py): one sync per store, liveness, cancel at a page boundary, resume after kill -9.

The lock holder and the jobs run in real child processes, as they do when the app, the CLI and cron share a store.
"""

from __future__ import annotations

import io
import os
import signal
import subprocess
import sys
from datetime import timedelta
from pathlib import Path

import pytest
from helpers import wait_for
from jobs_support import lock_holder

from feedback_sources import cli
from feedback_sources.emulator import DEMO_SURVEYMONKEY_TOKEN, Emulator, EmulatorConfig, run_emulator_server
from feedback_sources.sources.surveymonkey.integration import SurveyMonkeyIntegration
from feedback_sources.jobs import (
    EXIT_BUSY,
    Job,
    JobSpec,
    SyncBusy,
    active_job,
    create_job,
    exclusive_sync,
    get_job,
    get_schedule,
    is_alive,
    latest_job,
    lock_path,
    next_scheduled,
    pid_alive,
    request_cancel,
    resume_spec,
    set_schedule,
    spawn,
    start_if_due,
)
from feedback_sources.store import Store, iso_utc, now_utc
from feedback_sources.sync import SourceProgress, sync
from feedback_sources.workspace import demo_workspace

def test_a_second_sync_is_refused_and_told_what_runs(tmp_path: Path) -> None:
    db = tmp_path / "feedback.db"
    with lock_holder(db) as holder:
        with pytest.raises(SyncBusy) as refused:
            with exclusive_sync(db, JobSpec(sources=("surveymonkey",)), origin="app"):
                pytest.fail("a second sync ran while another held the store")
        running = refused.value.job
        assert running is not None
        assert (running.pid, running.status, running.origin, running.sources) == (
            holder.pid, "running", "cli", ("zendesk", "intercom"))
        message = str(refused.value)
        assert "zendesk, intercom (the last 7 days), started from the command line at" in message
        assert f"(process {holder.pid})" in message

        # The CLI says the same and exits with its own code, so cron can tell "busy" from "failed".
        err = io.StringIO()
        code = cli.main(["sync", "--demo", "--db", str(db), "--source", "zendesk"], out=io.StringIO(), err=err)
        assert code == EXIT_BUSY == 75
        assert "Another sync is already running on this store: a sync of zendesk, intercom" in err.getvalue()
        with Store(db) as store:
            assert store.count() == 0
            assert [j.status for j in _jobs(store)] == ["running"]


def test_a_killed_holder_leaves_no_lock_and_its_job_reads_interrupted(tmp_path: Path) -> None:
    db = tmp_path / "feedback.db"
    with lock_holder(db) as holder:
        with Store(db) as store:
            job = active_job(store)
            assert job is not None and job.pid == holder.pid
            run_group = job.run_group
            store.start_run(run_group, "zendesk", "since", None, None)  # a source it was syncing
        os.kill(holder.pid, signal.SIGKILL)
        holder.wait(timeout=10)
    with Store(db) as store:
        shown = latest_job(store)
        assert shown is not None and (shown.id, shown.status) == (job.id, "interrupted")
        assert "Resume continues" in (shown.message or "")
        assert [(r["status"], r["run_group"]) for r in store.recent_runs()] == [("interrupted", run_group)]
    # The kernel dropped the lock with the process: the next sync takes it at once.
    with exclusive_sync(db, JobSpec(sources=("zendesk",)), origin="cli") as handle:
        handle.record([])
    with Store(db) as store:
        assert [j.status for j in _jobs(store)] == ["interrupted", "complete"]


def _jobs(store: Store) -> list[Job]:
    rows = store.conn.execute("SELECT id FROM sync_jobs ORDER BY id").fetchall()
    return [job for (job_id,) in rows if (job := get_job(store, job_id)) is not None]


def test_liveness_needs_a_live_process_and_a_fresh_heartbeat(tmp_path: Path) -> None:
    with Store(tmp_path / "feedback.db") as store:
        job = create_job(store, JobSpec(sources=("zendesk",)), "app")
    now = now_utc()
    assert is_alive(job, now)  # just created, its process being started: alive
    mine = Job(**{**job.__dict__, "status": "running", "pid": os.getpid(), "heartbeat_at": now})
    assert is_alive(mine, now)
    assert not is_alive(mine, now + timedelta(minutes=5))  # silent for minutes: stuck or gone
    exited = subprocess.Popen([sys.executable, "-c", "pass"])
    exited.wait()
    assert not is_alive(Job(**{**mine.__dict__, "pid": exited.pid}), now)
    assert not is_alive(Job(**{**mine.__dict__, "status": "complete"}), now)


def test_a_zombie_is_not_alive() -> None:
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    wait_for(lambda: Path(f"/proc/{child.pid}/stat").read_text().rsplit(")", 1)[1].split()[0] == "Z")
    try:
        assert not pid_alive(child.pid)  # exited, not yet reaped: a job process killed under the app looks like this
    finally:
        child.wait()
    assert not pid_alive(child.pid)
    assert pid_alive(os.getpid())


def test_cancel_stops_at_a_page_boundary_and_resume_completes(tmp_path: Path) -> None:
    db = tmp_path / "demo.db"
    ws = demo_workspace(db)
    spec = JobSpec(sources=("surveymonkey",), start=now_utc() - timedelta(days=200), demo=True)
    committed: list[int] = []
    pages_stored: list[int] = []
    with exclusive_sync(db, spec, origin="app") as handle:
        with Store(db) as other:  # the app, on its own connection
            assert request_cancel(other, handle.job_id)
        wait_for(handle.cancel.is_set, timeout=10)  # the heartbeat picked the flag up

        def stop_once_a_page_is_stored() -> bool:
            if not pages_stored:
                return False
            with Store(db) as reader:
                committed.append(reader.count())
            return handle.should_stop()

        def on_progress(progress: SourceProgress) -> None:
            if progress.pages:
                pages_stored.append(progress.pages)

        with Store(db) as store:
            results = sync(store, ws.integrations(["surveymonkey"]), start=spec.start, on_progress=on_progress,
                           should_stop=stop_once_a_page_is_stored, run_group=handle.run_group)
        handle.record([r.as_dict() for r in results.values()])
    result = results["surveymonkey"]
    assert (result.status, result.pages) == ("cancelled", 1)
    with Store(db) as store:
        # The page in hand when the flag was seen is stored with its cursor; nothing after it.
        assert committed == [result.fetched] == [store.count()] and set(pages_stored) == {1}
        job = get_job(store, handle.job_id)
        assert job is not None and job.status == "cancelled"
        [run] = store.recent_runs()
        assert (run["status"], run["fetched"], run["run_group"]) == ("cancelled", result.fetched, handle.run_group)
        [state] = store.states()
        assert state.status == "interrupted" and state.cursor

    with exclusive_sync(db, resume_spec(job), origin="app") as handle:
        with Store(db) as store:
            resumed = sync(store, ws.integrations(["surveymonkey"]), start=spec.start,
                           should_stop=handle.should_stop, run_group=handle.run_group)["surveymonkey"]
        handle.record([resumed.as_dict()])
    assert (resumed.status, resumed.mode, resumed.resumed) == ("complete", "resume", True)
    fresh_db = tmp_path / "fresh.db"
    with Store(fresh_db) as fresh:
        whole = sync(fresh, demo_workspace(fresh_db).integrations(["surveymonkey"]), start=spec.start)["surveymonkey"]
        expected = fresh.count()
    assert result.fetched + resumed.fetched == whole.fetched == expected
    with Store(db) as store:
        assert store.count() == expected


def test_a_spawned_job_killed_mid_sync_is_interrupted_and_resume_finishes_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FEEDBACK_DEMO_LATENCY", "0.5")  # a slow vendor, so the sync is mid-way when it is killed
    db = tmp_path / "demo.db"
    spec = JobSpec(sources=("surveymonkey",), start=now_utc() - timedelta(days=200), demo=True,
                   label="the last 200 days")  # wider than the demo data: this process's emulator holds the same
    job = spawn(db, spec, cwd=tmp_path)
    assert job.status == "starting" and job.pid is not None and job.log_path == str(db) + ".sync.log"

    def some_pages_stored() -> Job | None:
        with Store(db) as store:
            seen = get_job(store, job.id)
        return seen if seen and seen.progress.get("surveymonkey", {}).get("pages", 0) >= 2 else None

    running = wait_for(some_pages_stored, timeout=60)
    assert running.status == "running" and running.pid == job.pid
    with pytest.raises(SyncBusy):  # and a second start meanwhile is refused
        spawn(db, spec, cwd=tmp_path)
    os.kill(job.pid, signal.SIGKILL)

    def shown_interrupted() -> Job | None:
        with Store(db) as store:
            seen = latest_job(store)
        return seen if seen and seen.status == "interrupted" else None

    killed = wait_for(shown_interrupted, timeout=30)
    with Store(db) as store:
        stored_before = store.count()
        assert [r["status"] for r in store.recent_runs()] == ["interrupted"]
    assert stored_before >= running.progress["surveymonkey"]["fetched"] > 0

    monkeypatch.setenv("FEEDBACK_DEMO_LATENCY", "0")
    again = spawn(db, resume_spec(killed), cwd=tmp_path)

    def finished() -> Job | None:
        with Store(db) as store:
            seen = get_job(store, again.id)
        return seen if seen and not seen.active else None

    done = wait_for(finished, timeout=120)
    assert done.status == "complete", Path(str(db) + ".sync.log").read_text()
    [result] = done.results or []
    assert (result["status"], result["mode"], result["resumed"]) == ("complete", "resume", True)
    fresh_db = tmp_path / "fresh.db"
    with Store(fresh_db) as fresh:
        sync(fresh, demo_workspace(fresh_db).integrations(["surveymonkey"]), start=spec.start)
        expected = fresh.count()
    with Store(db) as store:
        assert store.count() == expected  # every record, none twice
        assert stored_before + result["new"] == expected


def test_schedule_starts_a_sync_when_due_and_only_then(tmp_path: Path) -> None:
    db = tmp_path / "feedback.db"
    started: list[JobSpec] = []

    def fake_start(spec: JobSpec) -> Job:
        started.append(spec)
        with Store(db) as store:
            return create_job(store, spec, "schedule")

    now = now_utc()
    assert start_if_due(db, False, now=now, start=fake_start) is None  # no schedule: nothing
    with Store(db) as store:
        with pytest.raises(ValueError, match="between 0 and 720"):
            set_schedule(store, 0)
        set_schedule(store, 6)
        assert get_schedule(store) == 6.0
        assert next_scheduled(store, now) == now  # never synced: due at once
    job = start_if_due(db, False, now=now, start=fake_start)
    assert job is not None and job.origin == "schedule"
    assert started == [JobSpec(label="since the last sync (scheduled)")]  # every configured source, incremental
    # While it runs, and within six hours of it, nothing more starts.
    assert start_if_due(db, False, now=now, start=fake_start) is None
    with Store(db) as store, store.write() as conn:
        conn.execute("UPDATE sync_jobs SET status = 'complete', finished_at = ?", (iso_utc(now),))
    assert start_if_due(db, False, now=now + timedelta(hours=5), start=fake_start) is None
    assert start_if_due(db, False, now=now + timedelta(hours=6, seconds=1), start=fake_start) is not None
    assert len(started) == 2
    with Store(db) as store:
        set_schedule(store, None)
        assert get_schedule(store) is None and next_scheduled(store) is None


def test_job_spec_rejects_naive_times_and_lock_sits_beside_the_store(tmp_path: Path) -> None:
    from datetime import datetime

    with pytest.raises(ValueError, match="timezone"):
        JobSpec(start=datetime(2026, 1, 1))
    assert lock_path(tmp_path / "feedback.db") == tmp_path / "feedback.db.sync.lock"


def test_the_cli_stops_at_a_page_boundary_on_sigterm_and_records_cancelled(tmp_path: Path) -> None:
    db = tmp_path / "demo.db"
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parent.parent), "FEEDBACK_DEMO_LATENCY": "0.5"}
    process = subprocess.Popen(
        [sys.executable, "-m", "feedback_sources", "sync", "--demo", "--db", str(db), "--source", "surveymonkey",
         "--days", "200"], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)

    def running_with_pages() -> Job | None:
        if not db.exists():
            return None
        with Store(db) as store:
            job = active_job(store)
        return job if job and job.progress.get("surveymonkey", {}).get("pages", 0) >= 1 else None

    try:
        job = wait_for(running_with_pages, timeout=60)
        assert (job.origin, job.pid, job.spec.label) == ("cli", process.pid, "the last 200 days")
        process.send_signal(signal.SIGTERM)
        out, err = process.communicate(timeout=60)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    assert process.returncode == 0, err
    assert "cancelled: the next sync continues from the last stored page" in out
    with Store(db) as store:
        done = get_job(store, job.id)
        [run] = store.recent_runs()
        [state] = store.states()
        assert done is not None and done.status == "cancelled"
        assert (run["status"], run["fetched"]) == ("cancelled", store.count())
        assert state.status == "interrupted" and state.cursor


def test_a_sync_taken_for_dead_after_a_long_silence_says_it_runs_when_it_beats_again(tmp_path: Path) -> None:
    db = tmp_path / "feedback.db"
    with exclusive_sync(db, JobSpec(sources=("zendesk",)), origin="cli") as handle:
        with Store(db) as store:
            with store.write() as conn:  # as if the laptop slept: no heartbeat for an hour
                conn.execute("UPDATE sync_jobs SET heartbeat_at = ? WHERE id = ?",
                             (iso_utc(now_utc() - timedelta(hours=1)), handle.job_id))
            seen = latest_job(store)
            assert seen is not None and seen.status == "interrupted"
        wait_for(lambda: _status(db, handle.job_id) == "running", timeout=10)
        handle.record([])
    assert _status(db, handle.job_id) == "complete"


def _status(db: Path, job_id: int) -> str:
    with Store(db) as store:
        job = get_job(store, job_id)
    assert job is not None
    return job.status


def test_a_cancel_while_a_slow_page_is_on_its_way_drops_that_page_and_keeps_the_ones_before(tmp_path: Path) -> None:
    emulator = Emulator(EmulatorConfig(seed=3))
    # The first page of responses comes at once; the second hangs for a minute. A Cancel must not wait for it.
    emulator.faults.inject("surveymonkey", r"/responses/bulk", "timeout", times=1, seconds=0)
    hang = emulator.faults.inject("surveymonkey", r"/responses/bulk", "timeout", times=1, seconds=60)
    asked: list[bool] = []

    def stop_while_waiting() -> bool:
        # Never at the first page boundary: only the checks made while the sync waits for the hung page say stop.
        asked.append(hang.hits >= 1)
        return len(asked) > 1 and asked[-1]

    db = tmp_path / "feedback.db"
    with run_emulator_server(emulator) as root, Store(db) as store:
        integration = SurveyMonkeyIntegration(
            {"access_token": DEMO_SURVEYMONKEY_TOKEN, "base_url": emulator.base_urls(root)["surveymonkey"]})
        result = sync(store, {"surveymonkey": integration}, start=now_utc() - timedelta(days=200),
                      should_stop=stop_while_waiting)["surveymonkey"]
        assert (result.status, result.pages) == ("cancelled", 1)
        assert store.count() == result.fetched > 0  # the first page and its cursor, nothing of the hung one
        [state] = store.states()
        assert state.status == "interrupted" and state.cursor
        # The hung request was abandoned, not waited for: the emulator saw its client go away.
        dropped = wait_for(lambda: [r for r in emulator.requests if r.fault == "timeout" and r.status is None])
        assert len(dropped) == 1


def test_a_job_for_every_connected_source_with_none_connected_fails_and_says_why(tmp_path: Path) -> None:
    db = tmp_path / "feedback.db"
    job = spawn(db, JobSpec(label="since the last sync (scheduled)"), origin="schedule", configs={}, cwd=tmp_path)

    def ended() -> Job | None:
        with Store(db) as store:
            seen = get_job(store, job.id)
        return seen if seen and not seen.active else None

    done = wait_for(ended, timeout=60)
    assert (done.status, done.origin, done.message) == (
        "failed", "schedule", "no source is connected: add credentials on the Connections page")
    with Store(db) as store:
        assert store.recent_runs() == [] and store.count() == 0
