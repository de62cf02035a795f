"""Run integrations concurrently and commit each page together with its resume cursor.

A source's progress lives in `sync_state` under a scope: "incremental" for open-ended pulls (the cursor is where
the next sync continues), "range:<start>:<end>" for a bounded re-pull, or "since:<start>" for an open-ended re-pull
that must not move the incremental position (see `plan_source`). A scope left "running" by a crash or a
closed laptop is resumed from its last committed cursor, so no page before it is fetched again; because a page and
its cursor commit in one transaction, the store never holds a page whose cursor was lost, or the reverse.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import threading
import time
import uuid
from collections.abc import AsyncIterator, Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta
from typing import Any

from .integrations.base import BaseIntegration, Page, parse_iso, utc_bound
from .integrations.http import SourceError
from .ranges import EARLIEST_START
from .store import Store, UpsertResult, iso_utc, now_utc

logger = logging.getLogger("feedback_sources.sync")

DEFAULT_LOOKBACK_DAYS = 30
FULL_HISTORY_START = EARLIEST_START
INCREMENTAL_SCOPE = "incremental"


@dataclass
class SourceProgress:
    source: str
    status: str = "starting"  # starting | running | complete | failed | cancelled
    pages: int = 0
    fetched: int = 0
    new: int = 0
    updated: int = 0
    unchanged: int = 0
    skipped_stale: int = 0
    removed: int = 0
    requests: int = 0
    wait_seconds: float = 0.0
    vendor_total: int | None = None
    message: str = ""


@dataclass
class SourceResult:
    source: str
    status: str
    mode: str
    fetched: int = 0
    new: int = 0
    updated: int = 0
    unchanged: int = 0
    skipped_stale: int = 0
    removed: int = 0
    pages: int = 0
    errors: str | None = None
    error_kind: str | None = None
    duration_seconds: float = 0.0
    requests: int = 0
    wait_seconds: float = 0.0
    vendor_total: int | None = None
    resumed: bool = False
    rate_limit: dict[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


ProgressCallback = Callable[[SourceProgress], None]
# Asked after each committed page: True stops the source there (status "cancelled"; its scope resumes next time).
StopCheck = Callable[[], bool]


@dataclass(frozen=True)
class Plan:
    scope: str
    mode: str
    cursor: dict[str, Any] | None
    start: datetime | None
    end: datetime | None
    params: dict[str, Any]
    resumed: bool


def _iso_or_none(moment: datetime | None) -> str | None:
    return iso_utc(moment) if moment is not None else None


def plan_source(
    store: Store,
    source: str,
    *,
    start: datetime | None,
    end: datetime | None,
    incremental: bool,
    now: datetime,
) -> Plan:
    """Decide where one source starts: resume a crashed run, continue incrementally, or pull a range afresh."""
    start, end = utc_bound(start), utc_bound(end)
    if end is not None:
        if start is None:
            raise ValueError("a sync with an end date needs a start date")
        if end <= start:
            raise ValueError("the end of the range must be after its start")
        scope = f"range:{iso_utc(start)}:{iso_utc(end)}"
        params = {"start": iso_utc(start), "end": iso_utc(end)}
        state = store.get_state(source, scope)
        if state is not None and state.status != "complete" and state.cursor:
            return Plan(scope, "range", state.cursor, start, end, params, True)
        return Plan(scope, "range", None, start, end, params, False)

    if start is None and not incremental:
        start = FULL_HISTORY_START
    state = store.get_state(source, INCREMENTAL_SCOPE)
    if state is not None and state.cursor:
        interrupted = state.status != "complete"
        same_request = (start is None and incremental) or _iso_or_none(start) == state.params.get("start")
        if interrupted and same_request:
            resumed_start = parse_iso(state.params.get("start"))
            return Plan(INCREMENTAL_SCOPE, "resume", state.cursor, resumed_start, None, state.params, True)
        if incremental and start is None:
            return Plan(INCREMENTAL_SCOPE, "incremental", state.cursor, None, None, {"start": None}, False)
    if start is None:
        start = now - timedelta(days=DEFAULT_LOOKBACK_DAYS)
    mode = "full" if not incremental else "since"
    params = {"start": iso_utc(start)}
    if mode == "since" and (start > now or (state is not None and state.cursor)):
        # A re-pull from a chosen day never replaces the incremental position. Its cursor ends at what *it* fetched:
        # from a start in the future that is a mark in the future, and from a start past where the incremental
        # sync stands it would skip everything changed in between. So it keeps its own scope, and the next plain
        # sync continues from the incremental position (fetching the overlap again costs requests, not records).
        scope = f"since:{iso_utc(start)}"
        own = store.get_state(source, scope)
        if own is not None and own.status != "complete" and own.cursor:
            return Plan(scope, "since", own.cursor, start, None, params, True)
        return Plan(scope, "since", None, start, None, params, False)
    return Plan(INCREMENTAL_SCOPE, mode, None, start, None, params, False)


async def sync_source(
    store: Store,
    integration: BaseIntegration,
    *,
    start: datetime | None = None,
    end: datetime | None = None,
    incremental: bool = True,
    on_progress: ProgressCallback | None = None,
    run_group: str | None = None,
    now: datetime | None = None,
    should_stop: StopCheck | None = None,
) -> SourceResult:
    source = integration.get_source_name()
    run_group = run_group or uuid.uuid4().hex
    progress = SourceProgress(source=source)
    started = time.monotonic()

    def report(status: str | None = None, message: str = "") -> None:
        if status:
            progress.status = status
        progress.message = message
        stats = integration.http_stats
        progress.requests = stats.requests
        progress.wait_seconds = stats.wait_seconds
        if on_progress is not None:
            try:
                on_progress(progress)
            except Exception:  # a broken progress display must not break the sync
                logger.exception("progress callback failed")

    try:
        plan = plan_source(store, source, start=start, end=end, incremental=incremental, now=now or now_utc())
    except ValueError as error:
        result = SourceResult(source, "failed", "invalid", errors=str(error), error_kind="config")
        report("failed", str(error))
        return result

    def rate_limit_wait(seconds: float) -> None:
        # A wait is not a failure: the source stays "running" and says what it is waiting for.
        report(message=f"waiting for rate limit, {seconds:.0f}s" if seconds > 0 else "")

    integration.on_rate_limit_wait = rate_limit_wait
    result = SourceResult(source, "running", plan.mode, resumed=plan.resumed)
    run_id = store.start_run(run_group, source, plan.mode, _iso_or_none(plan.start), _iso_or_none(plan.end))
    store.begin_state(source, plan.scope, plan.params, plan.cursor)
    report("running", "resuming an interrupted sync" if plan.resumed else "")
    cancelled = False
    try:
        attach_store = getattr(integration, "attach_store", None)
        if attach_store is not None:  # a source that keeps vendor data between runs (e.g. contacts cached across runs)
            attach_store(store)
        pages = integration.iter_pages(start=plan.start, end=plan.end, cursor=plan.cursor)
        written = _write_behind(store, pages, source, plan.scope, should_stop)
        async for page, upserted in written:
            result.pages += 1
            result.fetched += len(page.records)
            result.new += upserted.new
            result.updated += upserted.updated
            result.unchanged += upserted.unchanged
            result.skipped_stale += upserted.skipped_stale
            result.removed += upserted.removed
            if page.vendor_total is not None:
                result.vendor_total = page.vendor_total
            for name in ("pages", "fetched", "new", "updated", "unchanged", "skipped_stale", "removed", "vendor_total"):
                setattr(progress, name, getattr(result, name))
            report()
            # A page boundary: this page and its cursor are committed, so stopping here loses nothing.
            if should_stop is not None and should_stop():
                cancelled = True
                break
        await written.aclose()  # after a cancel: the fetch of the next page stops now, unstored
    except _Stopped:  # while a page was on its way: everything committed so far stays, with its cursor
        cancelled = True
        result.status = "cancelled"
    except SourceError as error:
        result.status, result.errors, result.error_kind = "failed", str(error), str(error.kind)
    except Exception as error:  # one source failing must never stop the others
        logger.exception("%s: sync failed", source)
        result.status, result.errors, result.error_kind = "failed", f"{type(error).__name__}: {error}", "internal"
    else:
        result.status = "cancelled" if cancelled else "complete"
    finally:
        integration.on_rate_limit_wait = None
    result.duration_seconds = round(time.monotonic() - started, 3)
    stats = integration.http_stats
    result.requests, result.wait_seconds = stats.requests, round(stats.wait_seconds, 3)
    result.rate_limit = dict(stats.rate_limit)
    store.finish_state(source, plan.scope, "complete" if result.status == "complete" else "interrupted")
    store.finish_run(
        run_id,
        status=result.status,
        pages=result.pages,
        fetched=result.fetched,
        new=result.new,
        updated=result.updated,
        unchanged=result.unchanged,
        skipped_stale=result.skipped_stale,
        removed=result.removed,
        errors=result.errors,
        error_kind=result.error_kind,
        duration_seconds=result.duration_seconds,
        requests=result.requests,
        wait_seconds=result.wait_seconds,
        vendor_total=result.vendor_total,
        rate_limit=result.rate_limit,
    )
    report(result.status, result.errors or ("cancelled: the next sync continues from here" if cancelled else ""))
    return result


@dataclass(frozen=True)
class _Failed:
    error: BaseException


_END = object()


class _Stopped(Exception):
    """The stop check said yes while the next page was still being fetched: that page is dropped, unstored."""


# How often a sync that is waiting for its next page asks the stop check (a Cancel should not wait for a slow page).
STOP_POLL_SECONDS = 0.2
# A sync's writes wait the store's busy timeout for the write lock, then this many times more: another process may
# hold the lock for long stretches (a rules change over a million records, a theme re-computation, a second app),
# and a background sync should outwait it rather than fail. Only the BEGIN is tried again, before anything ran.
LOCKED_RETRIES = 3


async def _write_behind(
    store: Store, pages: AsyncIterator[Page], source: str, scope: str, should_stop: StopCheck | None = None
) -> AsyncIterator[tuple[Page, UpsertResult]]:
    """Store each page, with its cursor, in a worker thread while the source fetches and maps the next one.

    SQLite releases the GIL while it writes, so the next request, its JSON parsing and its mapping overlap the
    previous page's write instead of waiting for it. Pages are still stored one at a time and in order, so after a
    crash the store holds exactly what the plain loop would have stored: every page up to the last committed one.
    The source runs at most one page ahead (plus the one it is fetching).
    """
    ready: asyncio.Queue[Any] = asyncio.Queue(maxsize=1)

    async def fetch() -> None:
        try:
            async for page in pages:
                await ready.put(page)
        except asyncio.CancelledError:
            raise
        except BaseException as error:  # handed to the writer, which raises it after the pages before it
            await ready.put(_Failed(error))
        else:
            await ready.put(_END)

    fetcher = asyncio.ensure_future(fetch())
    try:
        while True:
            if should_stop is None:
                item = await ready.get()
            else:
                while True:
                    try:
                        item = await asyncio.wait_for(ready.get(), STOP_POLL_SECONDS)
                        break
                    except asyncio.TimeoutError:
                        if should_stop():
                            raise _Stopped from None
            if item is _END:
                return
            if isinstance(item, _Failed):
                raise item.error
            upserted = await asyncio.to_thread(
                store.upsert_records, item.records, removals=item.removals, cursor_update=(source, scope, item.cursor)
            )
            yield item, upserted
    finally:
        if not fetcher.done():
            fetcher.cancel()
        await asyncio.gather(fetcher, return_exceptions=True)
        # A fetcher cancelled between pages leaves the integration's generator suspended at its `yield`: close it
        # now, so its own cleanup (closing the HTTP client, stopping its concurrent fetches) runs before the sync
        # returns instead of whenever the event loop gets round to finalizing it.
        close = getattr(pages, "aclose", None)
        if close is not None:
            await close()


async def sync_all(
    store: Store,
    integrations: Mapping[str, BaseIntegration],
    *,
    start: datetime | None = None,
    end: datetime | None = None,
    incremental: bool = True,
    on_progress: ProgressCallback | None = None,
    should_stop: StopCheck | None = None,
    run_group: str | None = None,
) -> dict[str, SourceResult]:
    """Every chosen source at once; each result says what happened to that source alone."""
    run_group = run_group or uuid.uuid4().hex
    now = now_utc()
    with store.patient_writes(LOCKED_RETRIES):
        return await _sync_each(store, integrations, start=start, end=end, incremental=incremental,
                                on_progress=on_progress, should_stop=should_stop, run_group=run_group, now=now)


async def _sync_each(
    store: Store,
    integrations: Mapping[str, BaseIntegration],
    *,
    start: datetime | None,
    end: datetime | None,
    incremental: bool,
    on_progress: ProgressCallback | None,
    should_stop: StopCheck | None,
    run_group: str,
    now: datetime,
) -> dict[str, SourceResult]:
    tasks = [
        asyncio.ensure_future(sync_source(
            store, integration, start=start, end=end, incremental=incremental,
            on_progress=on_progress, run_group=run_group, now=now, should_stop=should_stop,
        ))
        for integration in integrations.values()
    ]
    try:
        results = await asyncio.gather(*tasks)
    except BaseException:
        # gather() gives up at the first source that is cancelled or crashes and leaves the others running: stop
        # them and wait until each has cleaned up, so nothing outlives the sync that started it.
        # A source already told to stop is not told again: a second cancel would cut its cleanup short.
        for task in tasks:
            if not task.done() and not task.cancelling():
                task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        raise
    return {result.source: result for result in results}


def sync(
    store: Store,
    integrations: Mapping[str, BaseIntegration],
    *,
    start: datetime | None = None,
    end: datetime | None = None,
    incremental: bool = True,
    on_progress: ProgressCallback | None = None,
    should_stop: StopCheck | None = None,
    run_group: str | None = None,
) -> dict[str, SourceResult]:
    """Blocking entry point: one event loop for the whole action, closed when it ends. New records are then scored
    for sentiment (if stored before it existed) and placed in the current themes."""
    with fewer_gc_passes():
        results = asyncio.run(
            sync_all(store, integrations, start=start, end=end, incremental=incremental, on_progress=on_progress,
                     should_stop=should_stop, run_group=run_group)
        )
    if not _analysis_due(store, results):
        return results
    from .themes import after_sync

    try:
        after_sync(store)
    except Exception:  # noqa: BLE001 - the records are stored; themes catch up on the next run
        logger.exception("placing new records in themes failed")
    return results


def _analysis_due(store: Store, results: Mapping[str, SourceResult]) -> bool:
    """Whether the themes and sentiment step has work: records stored by this sync, or records from before sentiment
    existed. A cron'd sync that found no changes then never imports the themes module (nor what it pulls in); the
    unscored check is the same query score_unscored starts with, so it costs no more than running the step."""
    if any(result.new or result.updated for result in results.values()):
        return True
    return store.has_unscored_records()


# A sync allocates millions of short-lived, acyclic objects (decoded pages, records, rows); with the default
# threshold (700) the cycle collector runs thousands of times over them and took 15-20 % of a large ticket sync's CPU.
_SYNC_GC_THRESHOLDS = (50_000, 20, 10)
_gc_lock = threading.Lock()
_gc_users = 0
_gc_saved: tuple[int, int, int] | None = None


@contextmanager
def fewer_gc_passes() -> Iterator[None]:
    """Raise the cycle collector's thresholds while any sync runs in this process; the first sync in saves the
    process's own thresholds and the last one out puts them back, so overlapping syncs never leave them raised."""
    global _gc_users, _gc_saved
    with _gc_lock:
        if _gc_users == 0:
            _gc_saved = gc.get_threshold()
            gc.set_threshold(*_SYNC_GC_THRESHOLDS)
        _gc_users += 1
    try:
        yield
    finally:
        with _gc_lock:
            _gc_users -= 1
            if _gc_users == 0 and _gc_saved is not None:
                gc.set_threshold(*_gc_saved)
                _gc_saved = None
