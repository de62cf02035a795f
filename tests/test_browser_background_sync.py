"""A sync outlives the page, in a real browser: headless Chromium drives `streamlit run app.py` in demo mode.

The demo vendors answer every request after FEEDBACK_DEMO_LATENCY seconds (the emulator's own "timeout" fault), so a
sync takes long enough that it is still running while the test navigates, closes the tab or kills its process.
The custom range starts before the demo data does, so a reference sync run here holds exactly the same records.
"""

from __future__ import annotations

import os
import re
import signal
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import date, datetime, timedelta, timezone

import pytest
from browser_support import CHROMIUM, browser, open_page, requires_chromium  # noqa: F401
from app_fixtures import RunningApp, running_app
from helpers import wait_for

from feedback_sources.jobs import Job, active_job, get_job, latest_job
from feedback_sources.store import Store
from feedback_sources.sync import sync
from feedback_sources.workspace import demo_workspace

pytestmark = requires_chromium

if CHROMIUM is not None:
    from playwright.sync_api import Browser, Page, expect

LATENCY_SECONDS = "0.25"
SYNC_TIMEOUT_MS = 180_000
FIRST_DAY = date.today() - timedelta(days=200)  # the demo data spans the last 120 days


@pytest.fixture(scope="module")
def app(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningApp]:
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("FEEDBACK_DEMO_LATENCY", LATENCY_SECONDS)
        with running_app(tmp_path_factory.mktemp("background-sync")) as running:
            yield running


@pytest.fixture(scope="module")
def every_record(tmp_path_factory: pytest.TempPathFactory) -> int:
    """How many records a whole, uninterrupted sync of the demo vendors stores (run here, without latency)."""
    path = tmp_path_factory.mktemp("reference") / "demo.db"

    def whole_sync() -> int:
        with Store(path) as store:
            results = sync(store, demo_workspace(path).integrations(),
                           start=datetime.combine(FIRST_DAY, datetime.min.time(), tzinfo=timezone.utc),
                           end=datetime.now(timezone.utc) + timedelta(days=1), incremental=False)
            assert {r.status for r in results.values()} == {"complete"}
            return store.count()

    # Playwright's sync API keeps an event loop on this thread; the sync runs its own on another.
    with ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(whole_sync).result()


@pytest.fixture
def page(browser: Browser, app: RunningApp) -> Iterator[Page]:
    with open_page(browser, app, height=1600) as opened:
        yield opened


def start_wide_sync(page: Page, app: RunningApp) -> Job:
    """From the Sync page: every source over a custom range that covers all the demo data. Returns the job."""
    page.goto(app.url)
    page.get_by_role("link", name="Sync", exact=True).click()
    page.get_by_text("Custom range", exact=True).click()
    # The range's start date is three spin buttons (year, month, day); typing the digits moves through them.
    page.get_by_role("spinbutton", name=re.compile(r"^year, .* start date$")).click()
    page.keyboard.type(FIRST_DAY.strftime("%Y%m%d"))
    page.locator("h1", has_text="Sync").click()
    expect(page.get_by_test_id("stDateInput").locator("input").first).to_have_value(FIRST_DAY.isoformat())
    with Store(app.demo_db) as store:
        before = latest_job(store)
    page.get_by_role("button", name="Run sync").click()

    def started() -> Job | None:
        if not app.demo_db.exists():
            return None
        with Store(app.demo_db) as store:
            job = latest_job(store)
        return job if job and (before is None or job.id != before.id) else None

    job = wait_for(started, timeout=30)
    assert job.spec.start is not None and job.spec.start.date() == FIRST_DAY
    expect(body(page).get_by_text("Syncing Zendesk, Intercom, SurveyMonkey")).to_be_visible()
    return job


def job_now(app: RunningApp, job_id: int) -> Job:
    with Store(app.demo_db) as store:
        job = get_job(store, job_id)
    assert job is not None
    return job


def sidebar(page: Page):  # type: ignore[no-untyped-def]
    return page.get_by_test_id("stSidebar")


def body(page: Page):  # type: ignore[no-untyped-def]
    """The page itself, without the sidebar (which says much the same about the sync)."""
    return page.get_by_test_id("stMain")


def test_a_killed_sync_reads_interrupted_and_resume_completes_it(page: Page, app: RunningApp,
                                                                 every_record: int) -> None:
    job = start_wide_sync(page, app)
    expect(body(page).get_by_text("Syncing Zendesk, Intercom, SurveyMonkey")).to_be_visible()

    def some_pages() -> Job | None:
        seen = job_now(app, job.id)
        # A source mid-way: it has stored a page and is still running, so Resume has a cursor to continue from.
        midway = [p for p in seen.progress.values() if p.get("status") == "running" and int(p.get("pages") or 0) >= 1]
        return seen if midway else None

    running = wait_for(some_pages, timeout=60)
    assert running.status == "running" and running.pid
    os.kill(running.pid, signal.SIGKILL)  # the sync process dies without a word, as on a crash

    expect(body(page).get_by_text("Sync interrupted: its process stopped")).to_be_visible()
    expect(sidebar(page).get_by_text("Sync interrupted: its process stopped")).to_be_visible()
    expect(body(page).get_by_text("Syncing Zendesk")).to_have_count(0)
    assert job_now(app, job.id).status == "interrupted"
    with Store(app.demo_db) as store:
        stored = store.count()
        assert {r["status"] for r in store.recent_runs()} <= {"interrupted", "complete"}
    assert 0 < stored < every_record

    page.get_by_role("button", name="Resume").click()
    expect(body(page).get_by_text("Sync complete:")).to_be_visible(timeout=SYNC_TIMEOUT_MS)
    with Store(app.demo_db) as store:
        resumed = latest_job(store)
        assert store.count() == every_record  # every record, none twice
    assert resumed is not None and resumed.id != job.id and resumed.spec == job.spec
    assert resumed.results is not None
    assert {r["status"] for r in resumed.results} == {"complete"}
    assert any(r["resumed"] for r in resumed.results)
    assert stored + sum(r["new"] for r in resumed.results) == every_record


def test_a_sync_goes_on_while_you_browse_and_is_done_when_you_come_back(page: Page, app: RunningApp,
                                                                          every_record: int) -> None:
    job = start_wide_sync(page, app)
    page.get_by_role("link", name="Explore").click()
    expect(page.get_by_text("Volume over time by category").or_(page.locator("h1", has_text="Explore"))).to_be_visible()
    expect(sidebar(page).get_by_text("Syncing Zendesk, Intercom, SurveyMonkey")).to_be_visible()
    page.get_by_role("link", name="Source health").click()
    expect(page.locator("h1", has_text="Source health")).to_be_visible()
    assert job_now(app, job.id).active  # it was still going when the page changed twice

    # The sidebar follows it on its own, and says when it is done.
    expect(sidebar(page).get_by_text("Sync complete:")).to_be_visible(timeout=SYNC_TIMEOUT_MS)
    page.get_by_role("link", name="Sync", exact=True).click()
    expect(body(page).get_by_text("Sync complete:")).to_be_visible()
    done = job_now(app, job.id)
    assert done.status == "complete" and done.results is not None
    assert {r["status"] for r in done.results} == {"complete"}
    expect(body(page).get_by_text(f"Sync complete: {done.fetched():,} records fetched")).to_be_visible()
    with Store(app.demo_db) as store:
        assert store.count() == every_record


def test_closing_the_tab_does_not_stop_it_and_a_second_tab_sees_it(browser: Browser, app: RunningApp,
                                                                   every_record: int) -> None:
    with open_page(browser, app, height=1600) as first:
        job = start_wide_sync(first, app)
        expect(body(first).get_by_text("Syncing Zendesk, Intercom, SurveyMonkey")).to_be_visible()
        beat = job_now(app, job.id).heartbeat_at
    # The tab (its whole browser context) is gone; the job keeps beating and syncing.
    wait_for(lambda: job_now(app, job.id).heartbeat_at != beat, timeout=30)
    assert job_now(app, job.id).active

    with open_page(browser, app, height=1600) as second, open_page(browser, app, height=1600) as third:
        second.goto(app.url)
        expect(sidebar(second).get_by_text("Syncing Zendesk, Intercom, SurveyMonkey")).to_be_visible()
        third.goto(app.url)
        third.get_by_role("link", name="Sync", exact=True).click()
        expect(body(third).get_by_text("Syncing Zendesk, Intercom, SurveyMonkey")).to_be_visible()
        # A second start says what is running, and the panel above it is where to watch it.
        third.get_by_role("button", name="Run sync").click()
        expect(body(third).get_by_text("Not started: a sync of zendesk, intercom, surveymonkey")).to_be_visible()
        with Store(app.demo_db) as store:
            running = active_job(store)
        assert running is not None and running.id == job.id

        expect(sidebar(second).get_by_text("Sync complete:")).to_be_visible(timeout=SYNC_TIMEOUT_MS)
        expect(body(third).get_by_text("Sync complete:")).to_be_visible()
    done = job_now(app, job.id)
    assert done.status == "complete"
    with Store(app.demo_db) as store:
        assert store.count() == every_record
