"""The app in a real browser: headless Chromium drives `streamlit run app.py` on 127.0.0.1.

One server per module (starting one takes seconds): the first test loads the demo data through the Sync page, the
later ones reuse it. Nothing leaves the machine: the demo workspace talks to the in-process emulator.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from browser_support import CHROMIUM, TIMEOUT_MS, browser, open_page, requires_chromium, wait_idle  # noqa: F401
from app_fixtures import XSS_CONTENT, XSS_TAG, XSS_TITLE, RunningApp, record, running_app

from feedback_sources.export import DEFAULT_EXPORT_COLUMNS
from feedback_sources.models import Category, Tier
from feedback_sources.store import Filters, Store

pytestmark = requires_chromium

if CHROMIUM is not None:
    from playwright.sync_api import Browser, Page, expect



@pytest.fixture(scope="module")
def app(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningApp]:
    with running_app(tmp_path_factory.mktemp("browser")) as running:
        yield running


@pytest.fixture
def page(browser: Browser, app: RunningApp) -> Iterator[Page]:
    with open_page(browser, app, height=1800, accept_downloads=True) as opened:
        yield opened


def metric(page: Page, label: str) -> str:
    box = page.get_by_test_id("stMetric").filter(has_text=label)
    return box.get_by_test_id("stMetricValue").inner_text().strip()


def test_fresh_app_demo_sync_charts_filter_and_export(page: Page, app: RunningApp, tmp_path: Path) -> None:
    page.goto(app.url)
    expect(page.get_by_text("No feedback yet")).to_be_visible()
    expect(page.get_by_text("generated demo feedback")).to_be_visible()

    # Run the demo sync from the Sync page.
    page.get_by_role("link", name="Sync").click()
    page.get_by_text("Last 90 days", exact=True).click()
    page.get_by_role("button", name="Run sync").click()
    # The page's status box (the sidebar may say it too, once its own status has caught up).
    expect(page.get_by_test_id("stExpander").get_by_text("Sync complete:")).to_be_visible()
    results = page.get_by_test_id("stDataFrame").first
    expect(results).to_be_visible()
    with Store(app.demo_db) as store:
        total = store.count()
    assert total > 500
    assert not app.real_db.exists() or Store(app.real_db).count() == 0

    # The charts render with the synced data.
    page.get_by_role("link", name="Explore").click()
    expect(page.get_by_test_id("stMetricValue").first).to_have_text(f"{total:,}")
    charts = page.get_by_test_id("stVegaLiteChart")
    expect(charts).to_have_count(5)  # volume, tags, source × tier, category × tier, negative share
    for index in range(5):
        expect(charts.nth(index).locator("g.role-mark path").first).to_be_attached()
    expect(page.get_by_test_id("stDataFrame")).to_have_count(1)

    # Filter with the Source widget; the URL keeps it.
    page.get_by_test_id("stMultiSelect").filter(has_text="Source").click()
    page.get_by_role("option", name="Intercom").click()
    page.get_by_test_id("stMetric").first.click()  # closes the dropdown
    with Store(app.demo_db) as store:
        intercom = store.count(Filters(sources=("intercom",)))
    expect(page.get_by_test_id("stMetricValue").first).to_have_text(f"{intercom:,}")
    assert "source=intercom" in page.url

    # Clicking the biggest bar of the tag chart narrows everything to that tag.
    wait_idle(page)
    tag_bars = charts.nth(1).locator("g.mark-rect.role-mark path")
    top = tag_bars.first.bounding_box()  # the biggest tag is drawn first, on top
    assert top is not None
    page.mouse.click(top["x"] + top["width"] / 2, top["y"] + top["height"] / 2)
    expect(page).to_have_url(re.compile(r"[?&]tag="))
    tag = page.url.split("tag=")[1].split("&")[0]
    chosen = Filters(sources=("intercom",), tag=tag)
    with Store(app.demo_db) as store:
        tagged = store.count(chosen)
        expected_ids = sorted(row["source_id"] for row in store.iter_rows(chosen, columns=("source_id",)))
    assert 0 < tagged < intercom
    expect(page.get_by_test_id("stMetricValue").first).to_have_text(f"{tagged:,}")

    # Export carries the filter over and downloads exactly those rows.
    page.get_by_role("link", name="Export").click()
    button = page.get_by_role("button", name=f"Download CSV ({tagged:,} rows)")
    expect(button).to_be_visible()
    with page.expect_download() as started:
        button.click()
    download = started.value
    assert download.suggested_filename.startswith("feedback_all_to_") and "intercom" in download.suggested_filename
    saved = tmp_path / download.suggested_filename
    download.save_as(saved)
    data = saved.read_bytes()
    assert data.startswith("\ufeff".encode())
    reader = csv.DictReader(io.StringIO(data.decode("utf-8-sig"), newline=""))
    rows = list(reader)
    assert reader.fieldnames == list(DEFAULT_EXPORT_COLUMNS)
    assert sorted(row["source_id"] for row in rows) == expected_ids
    assert {row["source"] for row in rows} == {"intercom"}
    assert all(tag in row["tags"] for row in rows)


def test_hostile_feedback_renders_inert(page: Page, app: RunningApp) -> None:
    with Store(app.demo_db) as store:
        store.upsert_records([
            # A source of its own (a web form wired through the plugin group, say): the demo data never shares it, so
            # the filtered view holds this record alone whatever the generator's shapes are.
            record("webform", "xss-1", days_ago=0, tier=Tier.enterprise, category=Category.complaint,
                   title=XSS_TITLE, content=XSS_CONTENT, tags=(XSS_TAG,), url="javascript:window.__pwned=1"),
        ])
    dialogs: list[str] = []
    page.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.dismiss()))
    page.goto(f"{app.url}/?source=webform&category=complaint&tier=enterprise&period=7d")
    expect(page.get_by_test_id("stMetricValue").first).to_have_text("1")
    wait_idle(page)

    # Select the only row: its checkbox sits in the first column of the grid.
    grid = page.get_by_test_id("stDataFrame").first
    box = grid.bounding_box()
    assert box is not None
    page.mouse.click(box["x"] + 18, box["y"] + 35 + 17)
    expect(page.get_by_text("Selected record")).to_be_visible()
    expect(page.get_by_test_id("stText").filter(has_text=XSS_TITLE)).to_be_visible()
    expect(page.get_by_test_id("stCode").filter(has_text="onerror")).to_be_visible()

    # The hostile tag shows as visible characters in the chart and in its tooltip, not as markup.
    tags_chart = page.get_by_test_id("stVegaLiteChart").nth(1)
    expect(tags_chart).to_contain_text("<img src=x onerror=alert(1)>")
    bar = tags_chart.locator("g.mark-rect.role-mark path").first.bounding_box()
    assert bar is not None
    page.mouse.move(bar["x"] + bar["width"] / 2, bar["y"] + bar["height"] / 2)
    expect(page.locator("#vg-tooltip-element")).to_contain_text("<img src=x onerror=alert(1)>")
    page.wait_for_timeout(500)
    assert page.evaluate("() => window.__pwned") is None
    assert page.locator("img[src='x']").count() == 0
    assert page.locator("script", has_text="__pwned").count() == 0
    assert page.locator("a[href^='javascript']").count() == 0
    assert dialogs == []
