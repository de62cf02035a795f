"""Write docs/screenshots/*.png: the main pages of the app on the demo data, in headless Chromium.

    .venv/bin/python docs/take_screenshots.py

Starts `streamlit run app.py` on a free 127.0.0.1 port with its databases and HOME in a temporary directory, loads the
demo data through the Sync page and photographs each page. Needs Debian's chromium (apt-get install chromium).
"""

from __future__ import annotations

import shutil
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]

from app_fixtures import CHROMIUM_ARGS, running_app  # noqa: E402
from playwright.sync_api import Page, expect, sync_playwright  # noqa: E402

OUT = ROOT / "docs" / "screenshots"
# A laptop's screen: every picture is what a PM sees first, without scrolling.
WIDTH, HEIGHT = 1280, 800


def settle(page: Page) -> None:
    page.wait_for_timeout(400)
    expect(page.get_by_test_id("stStatusWidget")).to_have_count(0, timeout=60_000)
    page.wait_for_timeout(800)  # charts animate in


def shoot(page: Page, name: str) -> None:
    settle(page)
    page.screenshot(path=str(OUT / f"{name}.png"))
    print(f"wrote {OUT / f'{name}.png'}")


def main() -> None:
    chromium = shutil.which("chromium")
    if chromium is None:
        sys.exit("chromium is not installed: apt-get install chromium")
    OUT.mkdir(parents=True, exist_ok=True)
    expect.set_options(timeout=60_000)
    with tempfile.TemporaryDirectory() as scratch, running_app(Path(scratch)) as app, sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium, args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": WIDTH, "height": HEIGHT})
        page.goto(app.url)
        expect(page.get_by_text("No feedback yet")).to_be_visible()
        shoot(page, "explore-empty")

        page.get_by_role("link", name="Sync").click()
        page.get_by_text("Last 90 days", exact=True).click()
        page.get_by_role("button", name="Run sync").click()
        # The sync runs as a background job; its panel says when it is done.
        expect(page.get_by_test_id("stMain").get_by_text("Sync complete:").first).to_be_visible(timeout=180_000)
        shoot(page, "sync")

        page.get_by_role("link", name="Themes").click()
        page.get_by_role("button", name="Find themes").click()
        expect(page.get_by_text("See its records in Explore").first).to_be_visible(timeout=180_000)
        shoot(page, "themes")

        page.get_by_role("link", name="Explore", exact=True).click()
        expect(page.get_by_test_id("stVegaLiteChart")).to_have_count(5)
        shoot(page, "explore")

        page.goto(f"{app.url}/?tier=enterprise&period=30d")
        expect(page.get_by_test_id("stVegaLiteChart")).to_have_count(5)
        grid = page.get_by_test_id("stDataFrame").last  # the records (the themes table comes first)
        settle(page)
        grid.scroll_into_view_if_needed()  # below the first screen at 1280×800
        box = grid.bounding_box()
        assert box is not None
        page.mouse.click(box["x"] + 18, box["y"] + 35 + 17)  # the first row's selection box
        expect(page.get_by_text("Selected record")).to_be_visible()
        page.get_by_text("Selected record").evaluate("element => element.scrollIntoView({block: 'start'})")
        shoot(page, "explore-filtered-detail")

        page.get_by_role("link", name="Export").click()
        expect(page.get_by_role("button", name="Download CSV", exact=False)).to_be_visible()
        shoot(page, "export")

        page.get_by_role("link", name="Connections").click()
        expect(page.get_by_text("Keyring unavailable", exact=False).first).to_be_visible()
        shoot(page, "connections")
        browser.close()


if __name__ == "__main__":
    main()
