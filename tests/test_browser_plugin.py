"""A source plugin installed from outside the project, in a real browser: its tab on Connections, a sync from the
Sync page, its panel on Health and its records in Explore, with no edit to the core.

The example plugin (tests/plugins/example_source) is installed by pip into a directory of its own, and the Streamlit
server finds it only through that directory on its PYTHONPATH and the plugin's entry point.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Iterator

import pytest
from app_fixtures import ROOT, RunningApp, running_app
from browser_support import CHROMIUM, browser, open_page, requires_chromium, wait_idle  # noqa: F401

from feedback_sources.store import Filters, Store

pytestmark = requires_chromium

if CHROMIUM is not None:
    from playwright.sync_api import Browser, Page, expect

NAME = "example_notes"
LABEL = "Example Notes"
NOTES = 3


@pytest.fixture(scope="module")
def app(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningApp]:
    work = tmp_path_factory.mktemp("plugin-browser")
    source = work / "src"
    shutil.copytree(ROOT / "tests" / "plugins" / "example_source", source)
    site = work / "site"
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--no-index", "--no-build-isolation",
         "--disable-pip-version-check", "--target", str(site), str(source)],
        check=True, capture_output=True, timeout=180,
    )
    path = os.pathsep.join([str(ROOT), str(site), *[p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p]])
    with running_app(work / "app", extra_env={"PYTHONPATH": path}) as running:
        yield running


def plugin_records(app: RunningApp) -> int:
    """The plugin's records in either workspace: a source that needs no account counts as configured, so the app
    may open on the real one."""
    found = 0
    for db in (app.demo_db, app.real_db):
        if db.exists():
            with Store(db) as store:
                found += store.count(Filters(sources=(NAME,)))
    return found


def nav(page: Page, name: str) -> None:
    """Go to a page through the sidebar (a page may link to another in its own text too)."""
    page.get_by_test_id("stSidebarNavItems").get_by_role("link", name=name).click()


def test_the_plugin_is_configured_synced_checked_and_explored(browser: Browser, app: RunningApp) -> None:
    with open_page(browser, app, height=1000) as page:
        page.goto(app.url)
        nav(page, "Connections")
        page.get_by_role("tab", name=LABEL).click()
        # Connections sets up the real accounts: the panel reads the real workspace.
        expect(page.get_by_text(f"{LABEL} panel (real workspace): {NOTES} notes to read")).to_be_visible()
        expect(page.get_by_role("textbox", name="Team")).to_be_visible()

        nav(page, "Sync")
        wait_idle(page)
        expect(page.get_by_test_id("stMultiSelect").get_by_text(LABEL)).to_be_visible()
        page.get_by_role("button", name="Run sync").click()
        expect(page.get_by_test_id("stExpander").get_by_text("Sync complete:")).to_be_visible(timeout=120_000)
        assert plugin_records(app) == NOTES

        nav(page, "Health")
        expect(page.get_by_text(LABEL, exact=True).first).to_be_visible()

        page.goto(f"{app.url}/?source={NAME}")
        expect(page.get_by_test_id("stMetricValue").first).to_have_text(str(NOTES), timeout=90_000)
