"""What every real-browser test shares: Debian's chromium driven by Playwright, pages that may fetch nothing offsite."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from app_fixtures import CHROMIUM_ARGS, RunningApp

CHROMIUM = shutil.which("chromium")
TIMEOUT_MS = 30_000
requires_chromium = pytest.mark.skipif(
    CHROMIUM is None, reason="Debian's chromium is not installed (apt-get install chromium)"
)

if CHROMIUM is not None:
    from playwright.sync_api import Browser, Page, expect, sync_playwright

    expect.set_options(timeout=TIMEOUT_MS)


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield launched
        launched.close()


@contextmanager
def open_page(browser: Browser, app: RunningApp, *, height: int, width: int = 1400,
              **context_options: Any) -> Iterator[Page]:
    """A fresh page; on close, asserts the app never made the browser fetch anything from elsewhere."""
    context = browser.new_context(viewport={"width": width, "height": height}, **context_options)
    opened = context.new_page()
    opened.set_default_timeout(TIMEOUT_MS)
    offsite: list[str] = []
    opened.on("request", lambda request: offsite.append(request.url)
              if not request.url.startswith((app.url, "data:", "blob:", "about:")) else None)
    yield opened
    context.close()
    assert offsite == []


def wait_idle(page: Page) -> None:
    """Until Streamlit has finished the current script run."""
    page.wait_for_timeout(300)
    expect(page.get_by_test_id("stStatusWidget")).to_have_count(0, timeout=TIMEOUT_MS)
