"""A damaged store in a real browser: the Explore page shows what is wrong and what to do, not a traceback, and the
file stays as it was. `streamlit run app.py` on 127.0.0.1 with the demo store overwritten in the middle."""

from __future__ import annotations

from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import pytest
from browser_support import CHROMIUM, browser, open_page, requires_chromium, wait_idle  # noqa: F401
from app_fixtures import RunningApp, running_app
from damage_support import build_real_store, damage, snapshot

pytestmark = requires_chromium

if CHROMIUM is not None:
    from playwright.sync_api import Browser, expect


@pytest.fixture(scope="module")
def app(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[RunningApp, object]]:
    # Playwright's synchronous API keeps an event loop running in this thread: the sync gets a thread of its own.
    with ThreadPoolExecutor(1) as pool:
        template = pool.submit(build_real_store, tmp_path_factory.mktemp("template") / "demo.db").result()
    root = tmp_path_factory.mktemp("browser-damage")
    demo_db = root / "demo" / "demo.db"  # where app_environment points the demo workspace
    demo_db.parent.mkdir(parents=True)
    damage(demo_db, "garbage_pages", template)
    before = snapshot(demo_db)
    with running_app(root) as running:
        assert running.demo_db == demo_db
        yield running, before


def test_explore_shows_the_damaged_store_message_instead_of_a_traceback(
    browser: Browser, app: tuple[RunningApp, object]
) -> None:
    running, before = app
    with open_page(browser, running, height=1200) as page:
        page.goto(running.url)
        wait_idle(page)
        alert = page.get_by_test_id("stAlertContentError")
        expect(alert).to_contain_text("The store is damaged.")
        expect(alert).to_contain_text(str(running.demo_db))
        expect(page.get_by_test_id("stAlertContentInfo").filter(has_text="What to do")).to_contain_text(
            "restore a backup")
        expect(page.get_by_test_id("stException")).to_have_count(0)
        expect(page.get_by_text("Traceback")).to_have_count(0)
        expect(page.get_by_text("Fresh")).to_have_count(0)
        expect(page.get_by_text("unavailable while the store cannot be read")).to_be_visible()
    assert snapshot(running.demo_db) == before
