"""Sync as a job that belongs to the store, not to whoever started it.

A sync started from the app runs in its own OS process (`python -m feedback_sources.jobs`), so leaving the page,
closing the tab or restarting the app does not stop it; the CLI and cron run the same sync in their own process.
Whoever syncs, one store has one sync at a time:

- The lock is an OS file lock on `<store>.sync.lock`, held by the syncing process for as long as it runs. The kernel
  drops it when the process ends in any way (kill -9, a closed laptop's killed process, a crash), so no dead process
  can leave it held.
- The `sync_jobs` table says what the lock holder is doing: pid, when it started, a heartbeat written every second,
  the sources and window, live per-source progress, the outcome, and a cancel flag that the app sets and the sync
  reads between pages. Every page shows it, and a second start says what is already running.
- A job row that says "running" but whose process is gone (pid missing or a zombie) or silent (stale heartbeat) is
  shown, and then recorded, as "interrupted"; its sync_runs rows too. Resume starts the same spec again, and
  sync.plan_source continues each interrupted scope from its last committed cursor.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import signal
import subprocess
import sys
import threading
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import IO, Any

from pydantic import BaseModel, ConfigDict, field_validator

from .store import Store, iso_utc, now_utc

logger = logging.getLogger("feedback_sources.jobs")

HEARTBEAT_SECONDS = 1.0
# A heartbeat older than this means the process is stuck or gone, even if some process still has its pid.
STALE_AFTER = timedelta(seconds=30)
ACTIVE = ("starting", "running")
FINISHED = ("complete", "failed", "cancelled", "interrupted")
ORIGINS = ("app", "cli", "schedule")
SCHEDULE_KEY = "schedule_hours"

try:  # POSIX (Linux, macOS): flock is released by the kernel when its holder dies
    import fcntl
except ImportError:  # pragma: no cover - Windows
    fcntl = None  # type: ignore[assignment]

# The sync_jobs and sync_settings tables are part of the store's schema (store/schema.py).


class JobSpec(BaseModel):
    """What a job syncs. No sources means every configured source (what a schedule or cron asks for)."""

    model_config = ConfigDict(frozen=True)

    sources: tuple[str, ...] = ()
    start: datetime | None = None
    end: datetime | None = None
    incremental: bool = True
    demo: bool = False
    label: str = "since the last sync"

    @field_validator("start", "end")
    @classmethod
    def _aware(cls, value: datetime | None) -> datetime | None:
        if value is not None and value.tzinfo is None:
            raise ValueError("times must carry a timezone")
        return value


@dataclass(frozen=True)
class Job:
    id: int
    origin: str
    status: str  # starting | running | complete | failed | cancelled | interrupted | rejected
    spec: JobSpec
    pid: int | None
    created_at: datetime
    started_at: datetime | None
    heartbeat_at: datetime | None
    finished_at: datetime | None
    cancel_requested: bool
    run_group: str | None
    progress: dict[str, dict[str, Any]] = field(default_factory=dict)
    results: list[dict[str, Any]] | None = None
    message: str | None = None
    log_path: str | None = None

    @property
    def active(self) -> bool:
        return self.status in ACTIVE

    @property
    def sources(self) -> tuple[str, ...]:
        return self.spec.sources or tuple(self.progress)

    def fetched(self) -> int:
        rows = self.results if self.results is not None else list(self.progress.values())
        return sum(int(row.get("fetched") or 0) for row in rows)

    def describe(self) -> str:
        names = ", ".join(self.sources) or "every configured source"
        since = self.started_at or self.created_at
        return (f"a sync of {names} ({self.spec.label}), started from the {_origin_words(self.origin)} at "
                f"{since:%Y-%m-%d %H:%M:%S} UTC (process {self.pid})")


def _origin_words(origin: str) -> str:
    return {"app": "app", "cli": "command line", "schedule": "app's schedule"}.get(origin, origin)


class NoSourceConnected(RuntimeError):
    """A job for "every connected source" found none."""


class SyncBusy(RuntimeError):
    """Another sync holds this store. `job` is what it is doing, when the store knows."""

    def __init__(self, job: Job | None):
        self.job = job
        what = job.describe() if job is not None else "a sync that has not reported in yet"
        super().__init__(f"Another sync is already running on this store: {what}. "
                         "Wait for it, watch it on the app's Sync page, or cancel it there.")


# -- schema and rows ----------------------------------------------------------------------------------------------------


def _parse(text: str | None) -> datetime | None:
    if not text:
        return None
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def _job(row: Mapping[str, Any]) -> Job:
    created = _parse(row["created_at"])
    assert created is not None
    return Job(
        id=int(row["id"]),
        origin=row["origin"],
        status=row["status"],
        spec=JobSpec.model_validate_json(row["spec"]),
        pid=row["pid"],
        created_at=created,
        started_at=_parse(row["started_at"]),
        heartbeat_at=_parse(row["heartbeat_at"]),
        finished_at=_parse(row["finished_at"]),
        cancel_requested=bool(row["cancel_requested"]),
        run_group=row["run_group"],
        progress=json.loads(row["progress"] or "{}"),
        results=json.loads(row["results"]) if row["results"] else None,
        message=row["message"],
        log_path=row["log_path"],
    )


def get_job(store: Store, job_id: int) -> Job | None:
    row = store.job_row(job_id)
    return _job(row) if row else None


def create_job(store: Store, spec: JobSpec, origin: str, *, log_path: Path | None = None) -> Job:
    """A job row in state "starting"; the process that takes the lock claims it."""
    if origin not in ORIGINS:
        raise ValueError(f"unknown origin {origin!r}; expected one of {ORIGINS}")
    now = iso_utc(now_utc())
    job_id = store.insert_job(origin=origin, sources=json.dumps(list(spec.sources)), spec=spec.model_dump_json(),
                              created_at=now, log_path=str(log_path) if log_path else None)
    job = get_job(store, job_id)
    assert job is not None
    return job


def set_pid(store: Store, job_id: int, pid: int) -> None:
    store.set_job_pid(job_id, pid)


def request_cancel(store: Store, job_id: int) -> bool:
    """Ask a job to stop at its next page boundary. False when it is no longer active."""
    return store.request_job_cancel(job_id)


# -- liveness --------------------------------------------------------------------------------------------------------


def pid_alive(pid: int | None) -> bool:
    """Whether a process with this pid exists and has not exited (a zombie waiting to be reaped has exited)."""
    if not pid or pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # someone else's process: it exists
    stat = Path(f"/proc/{pid}/stat")
    try:
        # The state letter follows the parenthesised command name, which may itself contain spaces or ")".
        state = stat.read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return True  # no /proc (macOS): the signal check is all there is
    return state not in ("Z", "X")


def is_alive(job: Job, now: datetime | None = None) -> bool:
    if not job.active:
        return False
    now = now or now_utc()
    beat = job.heartbeat_at or job.created_at
    if now - beat > STALE_AFTER:
        return False
    if job.pid is None:
        return True  # the app created the row and is starting the process this very moment
    return pid_alive(job.pid)


def _mark_dead(store: Store, job: Job, now: datetime) -> None:
    status = "interrupted" if job.status == "running" else "failed"
    reason = ("the sync process stopped without finishing (killed, crashed or the machine slept); Resume continues "
              "from the last stored page" if status == "interrupted" else "the sync process stopped before it started")
    stamp = iso_utc(now)
    store.end_dead_job(job.id, was=job.status, status=status, finished_at=stamp, message=reason,
                       run_group=job.run_group, run_error="interrupted: the sync process stopped")


def reconcile(store: Store, now: datetime | None = None) -> None:
    """Record every job whose process is gone as interrupted (or failed, when it never started)."""
    now = now or now_utc()
    for row in store.active_job_rows():
        job = _job(row)
        if not is_alive(job, now):
            _mark_dead(store, job, now)


def active_job(store: Store, now: datetime | None = None) -> Job | None:
    reconcile(store, now)
    row = store.newest_active_job_row()
    return _job(row) if row else None


def latest_job(store: Store, now: datetime | None = None) -> Job | None:
    """The newest job that ran or runs (a start refused because another sync held the lock does not count)."""
    reconcile(store, now)
    row = store.newest_job_row()
    return _job(row) if row else None


# -- the lock --------------------------------------------------------------------------------------------------------


def lock_path(db_path: str | Path) -> Path:
    path = Path(db_path)
    return path.with_name(path.name + ".sync.lock")


def log_path(db_path: str | Path) -> Path:
    path = Path(db_path)
    return path.with_name(path.name + ".sync.log")


class SyncLock:
    """The store's one-sync-at-a-time lock: an exclusive flock that the kernel releases when its holder dies."""

    def __init__(self, db_path: str | Path):
        self.path = lock_path(db_path)
        self._file: IO[bytes] | None = None

    def acquire(self) -> bool:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        handle = self.path.open("a+b")
        if fcntl is not None:
            try:
                fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                handle.close()
                return False
        self._file = handle
        return True

    def release(self) -> None:
        if self._file is not None:
            if fcntl is not None:
                fcntl.flock(self._file.fileno(), fcntl.LOCK_UN)
            self._file.close()
            self._file = None


# -- running a job ---------------------------------------------------------------------------------------------------


class JobHandle:
    """What the sync inside a job uses: its run group, the cancel check and the progress sink."""

    def __init__(self, job_id: int, run_group: str):
        self.job_id = job_id
        self.run_group = run_group
        self.cancel = threading.Event()
        self.progress: dict[str, dict[str, Any]] = {}
        self.results: list[dict[str, Any]] | None = None
        self._lock = threading.Lock()

    def should_stop(self) -> bool:
        return self.cancel.is_set()

    def on_progress(self, progress: Any) -> None:
        data = asdict(progress) if not isinstance(progress, Mapping) else dict(progress)
        with self._lock:
            self.progress[str(data["source"])] = data

    def snapshot(self) -> str:
        with self._lock:
            return json.dumps(self.progress, default=str)

    def record(self, results: Sequence[Mapping[str, Any]]) -> None:
        self.results = [dict(r) for r in results]

    def outcome(self) -> str:
        statuses = {str(r.get("status")) for r in self.results or []}
        if "cancelled" in statuses or (self.cancel.is_set() and self.results is None):
            return "cancelled"
        if statuses - {"complete"}:
            return "failed"
        return "complete"


class _Heartbeat(threading.Thread):
    """Writes the heartbeat and the progress every second on its own connection, and picks up a cancel request."""

    def __init__(self, db_path: str | Path, handle: JobHandle):
        super().__init__(name=f"sync-job-{handle.job_id}-heartbeat", daemon=True)
        self.db_path = db_path
        self.handle = handle
        self.stopped = threading.Event()
        # Opened here, by the thread that starts the job, not concurrently with the sync's own connection.
        self.store = Store(db_path, migrate=False)

    def beat(self, store: Store) -> None:
        if store.beat_job(self.handle.job_id, at=iso_utc(now_utc()), progress=self.handle.snapshot()):
            self.handle.cancel.set()

    def run(self) -> None:
        try:
            while not self.stopped.wait(HEARTBEAT_SECONDS):
                try:
                    self.beat(self.store)
                except Exception:  # a busy store for a moment must not end the heartbeat
                    logger.exception("heartbeat failed")
        finally:
            self.store.close()


@contextmanager
def exclusive_sync(
    db_path: str | Path, spec: JobSpec, *, origin: str, job_id: int | None = None
) -> Iterator[JobHandle]:
    """Hold the store's sync lock and a job row for the duration of one sync; raises SyncBusy if another runs.

    The caller runs the sync with `handle.run_group`, `handle.should_stop` and `handle.on_progress`, then hands the
    per-source results to `handle.record`. The job ends as complete, failed or cancelled; an exception records
    it as failed (KeyboardInterrupt: cancelled), and a killed process is recorded as interrupted by the next reader.
    """
    lock = SyncLock(db_path)
    with Store(db_path) as store:
        if not lock.acquire():
            now = now_utc()
            if job_id is not None:
                store.reject_job(job_id, finished_at=iso_utc(now), pid=os.getpid(), message="another sync was running")
            raise SyncBusy(active_job(store, now))
        try:
            now = now_utc()
            # We hold the lock, so whoever claimed a job before us has ended; unclaimed rows are judged by liveness.
            for row in store.running_job_rows():
                _mark_dead(store, _job(row), now)
            reconcile(store, now)
            run_group = uuid.uuid4().hex
            stamp = iso_utc(now)
            job_id, cancelled = store.claim_job(job_id, origin=origin, sources=json.dumps(list(spec.sources)),
                                                spec=spec.model_dump_json(), pid=os.getpid(), at=stamp,
                                                run_group=run_group)
        except BaseException:
            lock.release()
            raise
    handle = JobHandle(job_id, run_group)
    if cancelled:
        handle.cancel.set()
    heartbeat = _Heartbeat(db_path, handle)
    heartbeat.start()
    status, message = "failed", None
    try:
        yield handle
        status = handle.outcome()
    except KeyboardInterrupt:
        status, message = "cancelled", "stopped by a signal"
        raise
    except BaseException as error:
        message = str(error) if isinstance(error, NoSourceConnected) else f"{type(error).__name__}: {error}"
        raise
    finally:
        heartbeat.stopped.set()
        heartbeat.join(timeout=10)
        try:
            with Store(db_path, migrate=False) as store:
                store.finish_job(handle.job_id, status=status, finished_at=iso_utc(now_utc()),
                                 heartbeat_at=iso_utc(now_utc()), progress=handle.snapshot(),
                                 results=json.dumps(handle.results, default=str) if handle.results is not None else None,
                                 message=message)
        finally:
            lock.release()


# -- starting a job from the app -------------------------------------------------------------------------------------


ROOT = Path(__file__).resolve().parent.parent
_children: dict[int, subprocess.Popen[bytes]] = {}


def _reap(process: subprocess.Popen[bytes]) -> None:
    process.wait()
    _children.pop(process.pid, None)


def spawn(
    db_path: str | Path,
    spec: JobSpec,
    *,
    origin: str = "app",
    configs: Mapping[str, Mapping[str, str]] | None = None,
    secrets: Sequence[str] = (),
    cwd: str | Path | None = None,
) -> Job:
    """Start a job in its own session (it outlives the app) and return its row; raises SyncBusy if one runs.

    `configs` (the connection settings the app resolved, tokens included) travel over a pipe to the new process,
    never on its command line or in its environment, where other local users' `ps` could see them.
    """
    with Store(db_path) as store:
        running = active_job(store)
        if running is not None:
            raise SyncBusy(running)
        job = create_job(store, spec, origin, log_path=log_path(db_path))
    command = [sys.executable, "-m", "feedback_sources.jobs", "--db", str(db_path), "--job", str(job.id)]
    if configs is not None:
        command.append("--settings-from-stdin")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in (str(ROOT), os.environ.get("PYTHONPATH")) if p)}
    with log_path(db_path).open("ab") as log:
        process = subprocess.Popen(
            command, cwd=cwd or os.getcwd(), env=env, stdin=subprocess.PIPE if configs is not None else
            subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
        )
    if configs is not None:
        assert process.stdin is not None
        try:
            process.stdin.write(json.dumps({"configs": configs, "secrets": list(secrets)}).encode())
            process.stdin.close()
        except BrokenPipeError:
            pass
    _children[process.pid] = process
    # Collect its exit status when it ends, so a finished or killed job never lingers as a zombie that looks alive.
    threading.Thread(target=_reap, args=(process,), name=f"sync-job-{job.id}-reaper", daemon=True).start()
    with Store(db_path) as store:
        set_pid(store, job.id, process.pid)
        started = get_job(store, job.id)
    assert started is not None
    return started


def resume_spec(job: Job) -> JobSpec:
    """The spec that continues `job`: the very same window, so each source resumes its interrupted scope."""
    return job.spec


# -- the schedule ----------------------------------------------------------------------------------------------------


def get_schedule(store: Store) -> float | None:
    """Hours between automatic syncs while the app runs; None when off."""
    value = store.get_setting(SCHEDULE_KEY)
    if value is None:
        return None
    hours = float(value)
    return hours if hours > 0 else None


def set_schedule(store: Store, hours: float | None) -> None:
    if hours is not None and not (0 < hours <= 24 * 30):
        raise ValueError("The schedule takes a number of hours between 0 and 720.")
    store.set_setting(SCHEDULE_KEY, None if hours is None else repr(float(hours)))


def last_sync_started(store: Store) -> datetime | None:
    """When the newest sync of any origin started (jobs, and runs recorded before jobs existed)."""
    started = store.last_sync_start()
    return _parse(started) if started else None


def next_scheduled(store: Store, now: datetime | None = None) -> datetime | None:
    """When the schedule starts the next sync (now or earlier: due); None when the schedule is off."""
    hours = get_schedule(store)
    if hours is None:
        return None
    last = last_sync_started(store)
    now = now or now_utc()
    return now if last is None else last + timedelta(hours=hours)


def start_if_due(db_path: str | Path, demo: bool, *, now: datetime | None = None,
                 start: Callable[[JobSpec], Job] | None = None) -> Job | None:
    """Start the scheduled sync (every configured source, since the last sync) when it is due and nothing runs."""
    now = now or now_utc()
    with Store(db_path) as store:
        due = next_scheduled(store, now)
        if due is None or due > now or active_job(store, now) is not None:
            return None
    spec = JobSpec(demo=demo, label="since the last sync (scheduled)")
    try:
        return (start or (lambda s: spawn(db_path, s, origin="schedule")))(spec)
    except SyncBusy:
        return None


# -- the job process -------------------------------------------------------------------------------------------------


def run_job(db_path: str | Path, job_id: int, settings: Mapping[str, Any] | None = None) -> int:
    """Body of `python -m feedback_sources.jobs`: claim the job, sync, record the outcome. Returns an exit code."""
    from .integrations.base import ConfigError
    from .logging_setup import configure_logging
    from .rules_store import rules_at
    from .sync import SourceResult, sync
    from .sources import source_names
    from .workspace import Workspace, demo_workspace, real_workspace

    with Store(db_path) as store:
        job = get_job(store, job_id)
    if job is None:
        print(f"no sync job {job_id} in {db_path}", file=sys.stderr)
        return 2
    spec = job.spec
    if spec.demo:
        workspace = demo_workspace(db_path)
        secrets: list[str] = []
    elif settings is not None:
        configs = {source: dict(settings.get("configs", {}).get(source) or {}) for source in source_names()}
        workspace = Workspace(demo=False, db_path=Path(db_path), configs=configs)
        secrets = [str(s) for s in settings.get("secrets", [])]
    else:
        from .credentials import CredentialStore

        workspace = real_workspace(db_path=db_path)
        secrets = CredentialStore().secret_values()
    configure_logging(debug=False, secrets=secrets)
    # SIGTERM (a stop from systemd, or `kill`) ends the sync at the next page boundary, like Cancel.
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    try:
        with exclusive_sync(db_path, spec, origin=job.origin, job_id=job_id) as handle:
            if stop.is_set():
                handle.cancel.set()
            signal.signal(signal.SIGTERM, lambda *_: handle.cancel.set())
            sources = list(spec.sources) or workspace.configured_sources()
            if not sources:  # a schedule on a workspace whose credentials were removed: say so, do not "succeed"
                raise NoSourceConnected("no source is connected: add credentials on the Connections page")
            results: list[dict[str, Any]] = []
            integrations = {}
            rules = rules_at(db_path)
            for source in sources:
                try:
                    integrations[source] = workspace.integration(source, rules=rules)
                except ConfigError as error:
                    missing = ", ".join(error.missing)
                    failed = SourceResult(source, "failed", "not run", errors=f"not configured: missing {missing}",
                                          error_kind="config")
                    results.append(failed.as_dict())
                    handle.on_progress({"source": source, "status": "failed", "message": failed.errors})
            if integrations:
                with Store(db_path) as store:
                    outcome = sync(store, integrations, start=spec.start, end=spec.end, incremental=spec.incremental,
                                   on_progress=handle.on_progress, should_stop=handle.should_stop,
                                   run_group=handle.run_group)
                results.extend(result.as_dict() for result in outcome.values())
            order = {source: index for index, source in enumerate(sources)}
            results.sort(key=lambda r: order.get(r["source"], len(order)))
            handle.record(results)
    except SyncBusy as busy:
        print(str(busy), file=sys.stderr)
        return EXIT_BUSY
    except NoSourceConnected as error:
        print(str(error), file=sys.stderr)
        return 1
    status = handle.outcome()
    print(f"sync job {job_id}: {status}", file=sys.stderr)
    return 0 if status in ("complete", "cancelled") else 1


# sysexits' EX_TEMPFAIL: "try again later", which is what a cron run should read from a busy store.
EXIT_BUSY = 75


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m feedback_sources.jobs",
                                     description="Run one sync job recorded in the store (started by the app).")
    parser.add_argument("--db", type=Path, required=True)
    parser.add_argument("--job", type=int, required=True)
    parser.add_argument("--settings-from-stdin", action="store_true",
                        help="read the connection settings as JSON from standard input")
    args = parser.parse_args(argv)
    settings = json.loads(sys.stdin.read() or "{}") if args.settings_from_stdin else None
    return run_job(args.db, args.job, settings)


if __name__ == "__main__":
    sys.exit(main())
