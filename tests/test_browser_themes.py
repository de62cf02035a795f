"""The Themes page in a real browser: "Find themes" runs in the background while the page stays usable, then the
ranked themes appear with their defining words and quotes, and a rename sticks.

The demo workspace is filled in-process from the emulator before the page opens; nothing leaves the machine.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from app_fixtures import RunningApp, load_demo, running_app
from browser_support import CHROMIUM, TIMEOUT_MS, browser, open_page, requires_chromium, wait_idle  # noqa: F401

from feedback_sources import themes
from feedback_sources.store import Store
from tests.helpers import wait_for

pytestmark = requires_chromium

if CHROMIUM is not None:
    from playwright.sync_api import Browser, Page, expect


@pytest.fixture(scope="module")
def app(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningApp]:
    with running_app(tmp_path_factory.mktemp("browser-themes")) as running:
        load_demo(running)
        yield running


@pytest.fixture
def page(browser: Browser, app: RunningApp) -> Iterator[Page]:
    with open_page(browser, app, height=2400) as opened:
        yield opened


def test_find_themes_then_read_them_with_quotes_and_rename_one(page: Page, app: RunningApp) -> None:
    page.goto(app.url)
    page.get_by_role("link", name="Themes").click()
    expect(page.locator("h1", has_text="Themes")).to_be_visible()
    page.get_by_role("button", name="Find themes").click()
    # The page polls the background run and draws the themes when it is done.
    expect(page.get_by_text("See its records in Explore").first).to_be_visible(timeout=180_000)
    with Store(app.demo_db) as store:
        run = themes.latest_run(store)
        found = themes.themes(store)
        counts = dict(store.conn.execute(
            "SELECT theme_id, COUNT(*) FROM feedback WHERE theme_id > 0 GROUP BY theme_id").fetchall())
    assert run is not None and run["status"] == "complete" and found
    biggest = max(found.values(), key=lambda info: counts.get(info.id, 0))
    expect(page.get_by_test_id("stText").filter(has_text=biggest.name).first).to_be_visible()
    expect(page.get_by_text("Defined by:").first).to_be_visible()
    quotes = page.get_by_test_id("stText").filter(has_text="“")
    assert quotes.count() >= 3

    page.get_by_text("Edit themes: rename, pin, hide, merge, split").click()
    name = page.get_by_role("textbox", name="Name")
    name.fill("Our renamed theme")
    name.press("Enter")
    wait_idle(page)
    page.get_by_role("button", name="Rename").click()
    wait_idle(page)

    def renamed() -> bool:
        with Store(app.demo_db) as store:
            return "Our renamed theme" in {info.name for info in themes.themes(store).values()}

    wait_for(renamed, timeout=30)
    # The editor starts with the top theme: its card now carries the new name.
    expect(page.get_by_test_id("stText").filter(has_text="Our renamed theme").first).to_be_visible()


def ensure_themes(app: RunningApp) -> None:
    with Store(app.demo_db) as store:
        if not themes.has_model(store):
            themes.recompute(store)


def test_demand_answers_who_is_unhappy_with_quotes(page: Page, app: RunningApp) -> None:
    ensure_themes(app)
    page.goto(app.url)
    page.get_by_role("link", name="Demand").click()
    expect(page.locator("h1", has_text="Demand")).to_be_visible()
    page.get_by_role("button", name="What are enterprise customers unhappy about this month?").click()
    wait_idle(page)
    with Store(app.demo_db) as store:
        from datetime import datetime, timezone

        from feedback_sources import insights

        scope = insights.unhappy_enterprise_this_month(datetime.now(timezone.utc).date())
        this_month = insights.rank_discovered_themes(store, scope).themes
    if not this_month:  # early in a month the demo may hold none: the page says so and offers a wider period
        expect(page.get_by_text("No feedback matches in")).to_be_visible()
        page.get_by_role("button", name="Look at the last 90 days instead").click()
        wait_idle(page)
    expect(page.get_by_role("heading", name="In their words")).to_be_visible()
    quotes = page.get_by_test_id("stText").filter(has_text="“")
    expect(quotes.first).to_be_visible()
    assert quotes.count() >= 1


def test_explore_filters_by_sentiment_and_explains_a_record(page: Page, app: RunningApp) -> None:
    from feedback_sources.store import Filters

    ensure_themes(app)
    with Store(app.demo_db) as store:
        negative = store.count(Filters(sentiments=("negative",)))
    assert negative > 0
    page.goto(f"{app.url}/?sentiment=negative")
    expect(page.get_by_test_id("stMetricValue").first).to_have_text(f"{negative:,}")
    expect(page.get_by_text("Themes in these records")).to_be_visible()
    wait_idle(page)
    # Select the first record: its checkbox sits in the first column of the records grid (the last table).
    grid = page.get_by_test_id("stDataFrame").last
    grid.scroll_into_view_if_needed()
    box = grid.bounding_box()
    assert box is not None
    page.mouse.click(box["x"] + 18, box["y"] + 35 + 17)
    expect(page.get_by_text("Selected record")).to_be_visible()
    expect(page.get_by_test_id("stText").filter(has_text="Sentiment: Negative").first).to_be_visible()


def test_a_theme_opens_its_records_in_explore(page: Page, app: RunningApp) -> None:
    ensure_themes(app)
    page.goto(app.url)  # Explore first: its filters then live in the session, as after any visit
    expect(page.get_by_test_id("stMetricValue").first).to_be_visible()
    page.get_by_role("link", name="Themes", exact=True).click()
    page.get_by_text("Last 12 months", exact=True).click()
    wait_idle(page)
    page.get_by_role("button", name="See its records in Explore").first.click()
    expect(page.get_by_test_id("stText").filter(has_text="Only records of one theme:")).to_be_visible()
