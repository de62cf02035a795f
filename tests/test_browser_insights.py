"""Search with highlights and a rule change in a real browser: headless Chromium drives `streamlit run app.py`.

The demo data is loaded through Explore's button, as a new user would. Hostile feedback that matches the search must
reach the page as visible characters inside the highlight markup: no link, image, script or dialog.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import datetime, timezone

import pytest
from browser_support import CHROMIUM, TIMEOUT_MS, browser, open_page, requires_chromium, wait_idle  # noqa: F401
from app_fixtures import RunningApp, running_app

from feedback_sources.models import Category, NormalizedRecord, Tier
from feedback_sources.store import Store

pytestmark = requires_chromium

if CHROMIUM is not None:
    from playwright.sync_api import Browser, Page, expect

HOSTILE_TITLE = "export <script>window.__pwned = 1</script> :streamlit: www.evil.example"
HOSTILE_CONTENT = ("export [click](javascript:window.__pwned=1) ![](http://127.0.0.9/pixel.png) "
                   "<img src=x onerror=\"window.__pwned=1\"> **bold** =SUM(A1) ann@evil.example")


def hostile_record() -> NormalizedRecord:
    """As the Intercom mapper would leave it: no rule matches its text, so the source's default decides."""
    return NormalizedRecord(
        source="intercom", source_id="hostile-1", title=HOSTILE_TITLE, content=HOSTILE_CONTENT,
        customer_tier=Tier.enterprise, category=Category.other, created_at=datetime.now(timezone.utc),
        metadata={"tags": [], "category_reason": "default for this source",
                  "tier_reason": "plan `Enterprise` matches `enterprise`"},
    )


@pytest.fixture(scope="module")
def app(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningApp]:
    with running_app(tmp_path_factory.mktemp("browser_insights")) as running:
        yield running


@pytest.fixture
def page(browser: Browser, app: RunningApp) -> Iterator[Page]:
    with open_page(browser, app, height=2200) as opened:
        yield opened


def test_search_export_csv_shows_highlighted_matches_and_hostile_text_stays_inert(page: Page, app: RunningApp) -> None:
    page.goto(app.url)
    page.get_by_role("button", name="Load demo data").click()
    expect(page.get_by_test_id("stMetricValue").first).not_to_have_text("0")
    wait_idle(page)
    with Store(app.demo_db) as store:
        store.upsert_records([hostile_record()])
    dialogs: list[str] = []
    page.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.dismiss()))

    page.goto(f"{app.url}/?q=export+csv")
    expect(page.get_by_text("Best matches")).to_be_visible()
    wait_idle(page)
    highlights = page.locator(".stMarkdownColoredBackground")
    expect(highlights.first).to_be_visible()
    assert {text.strip().lower() for text in highlights.all_inner_texts()} == {"export", "csv"}
    assert highlights.count() >= 20  # ten hits, each with its matches marked in title and snippet

    # The hostile record is the only one with "pixel": its text shows character for character, none of it as markup.
    page.goto(f"{app.url}/?q=export+pixel")
    expect(page.get_by_text("Best matches (1, most relevant first)")).to_be_visible()
    wait_idle(page)
    title = page.get_by_test_id("stMarkdownContainer").filter(has_text="window.__pwned = 1")
    snippet = page.get_by_test_id("stMarkdownContainer").filter(has_text="pixel.png")
    expect(title).to_have_count(1)
    expect(snippet).to_have_count(1)
    assert title.inner_text().strip() == HOSTILE_TITLE
    assert snippet.inner_text().strip() == HOSTILE_CONTENT
    assert [t.strip() for t in title.locator(".stMarkdownColoredBackground").all_inner_texts()] == ["export"]
    assert [t.strip() for t in snippet.locator(".stMarkdownColoredBackground").all_inner_texts()] == ["export", "pixel"]
    for container in (title, snippet):
        assert container.locator("a, img, script, strong, em, code, svg").count() == 0
    page.wait_for_timeout(500)
    assert page.evaluate("() => window.__pwned") is None
    assert page.locator("img[src='x'], a[href^='javascript'], a[href*='evil']").count() == 0
    assert dialogs == []


def test_a_rule_change_is_previewed_and_applied(page: Page, app: RunningApp) -> None:
    with Store(app.demo_db) as store:
        if store.count() == 0:
            pytest.skip("runs after the search test has loaded the demo data")
        decided_by_bug = store.conn.execute(
            "SELECT COUNT(*) FROM feedback WHERE category_reason = 'tag `bug`'").fetchone()[0]
        complaints = store.conn.execute(
            "SELECT COUNT(*) FROM feedback WHERE category = 'complaint'").fetchone()[0]
    page.goto(app.url)
    page.get_by_role("link", name="Rules").click()
    expect(page.get_by_role("heading", name="Rules")).to_be_visible()
    page.get_by_role("textbox", name="Tag").fill("bug")
    page.get_by_test_id("stSelectbox").filter(has_text="Category").first.click()
    page.get_by_role("option", name="Complaint").click()
    page.get_by_role("button", name="Set tag rule").click()
    expect(page.get_by_text(re.compile(rf"Applying the draft moves {decided_by_bug:,} records"))).to_be_visible()
    wait_idle(page)
    page.get_by_role("button", name=f"Apply to the store ({decided_by_bug:,} moves)").click()
    expect(page.get_by_text(f"Rules version 1 applied: {decided_by_bug:,} records moved")).to_be_visible()
    with Store(app.demo_db) as store:
        assert store.conn.execute("SELECT COUNT(*) FROM feedback WHERE category = 'complaint'").fetchone()[0] == (
            complaints + decided_by_bug)
