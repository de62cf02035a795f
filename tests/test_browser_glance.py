"""The app read at a glance, in a real browser at a laptop's 1280×800 (and 1920×1080): headless Chromium drives
`streamlit run app.py` on 127.0.0.1.

The first screen shows the answer (KPIs and the volume chart), KPI labels are not cut, the records table fits without a
horizontal scroll, each category keeps its colour when the filters change, typed custom dates apply when the field
loses focus, and Test connection diagnoses the values typed on the Connections page without saving them.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from app_fixtures import RunningApp, emulator_url, running_app  # noqa: F401  (emulator_url is a fixture)
from browser_support import CHROMIUM, browser, open_page, requires_chromium, wait_idle  # noqa: F401

from feedback_sources.emulator import DEMO_ZENDESK_EMAIL
from feedback_sources.store import Store
from feedback_sources.ui.charts import CATEGORY_COLORS
from feedback_sources.ui.labels import human_label

pytestmark = requires_chromium

if CHROMIUM is not None:
    from playwright.sync_api import Browser, Page, expect

CANARY = "canary-typed-not-saved-3e9b"


@pytest.fixture(scope="module")
def app(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningApp]:
    with running_app(tmp_path_factory.mktemp("glance")) as running:
        yield running


@pytest.fixture(scope="module")
def loaded(browser: Browser, app: RunningApp) -> RunningApp:
    """The demo data, loaded once through Explore's button as a new user would."""
    with open_page(browser, app, height=800, width=1280) as page:
        page.goto(app.url)
        page.get_by_role("button", name="Load demo data").click()
        # A few thousand records through the in-process emulator: longer than one page's usual wait.
        expect(page.get_by_test_id("stVegaLiteChart")).to_have_count(5, timeout=180_000)
    return app


@pytest.fixture
def laptop(browser: Browser, loaded: RunningApp) -> Iterator[Page]:
    with open_page(browser, loaded, height=800, width=1280) as opened:
        yield opened


def explore(page: Page, app: RunningApp, query: str = "") -> None:
    page.goto(f"{app.url}/{query}")
    try:
        expect(page.get_by_test_id("stVegaLiteChart")).to_have_count(5, timeout=90_000)
    except AssertionError:
        page.screenshot(path=str(app.log.parent / "explore-failure.png"))
        raise AssertionError(f"Explore did not draw its charts; see {app.log} and explore-failure.png") from None
    wait_idle(page)


def category_colours(page: Page) -> dict[str, str]:
    """Legend name → bar colour of the volume chart, as drawn: each bar's category (its tooltip's) and its fill."""
    bars: list[dict[str, Any]] = page.get_by_test_id("stVegaLiteChart").first.locator(
        "g.mark-rect.role-mark path").evaluate_all(
        "paths => paths.map(bar => ({name: (bar.getAttribute('aria-label') || '').match(/Category: ([^;]*)/)[1],"
        " color: bar.getAttribute('fill')}))"
    )
    return {bar["name"]: bar["color"] for bar in bars}


@pytest.mark.parametrize("width, height", [(1280, 800), (1920, 1080)])
def test_first_screen_shows_the_kpis_and_the_volume_chart_with_whole_labels(
    browser: Browser, loaded: RunningApp, width: int, height: int
) -> None:
    with open_page(browser, loaded, height=height, width=width) as page:
        explore(page, loaded)
        # The app's name tops the sidebar: its logo is the name, drawn from the app's own file.
        logo = page.get_by_test_id("stSidebar").get_by_role("img", name="Logo")
        expect(logo).to_be_visible()
        drawn = logo.evaluate("async image => await (await fetch(image.src)).text()")
        assert ">Feedback Hub</text>" in drawn
        metrics = page.get_by_test_id("stMetric")
        expect(metrics).to_have_count(4)
        labels = page.get_by_test_id("stMetricLabel")
        assert labels.all_inner_texts() == ["Records", "Customers", "Enterprise", "Change"]
        for index in range(4):
            label = labels.nth(index)
            # Not cut: the label's text is as wide as the room it has, or narrower.
            assert label.evaluate("element => element.scrollWidth <= element.clientWidth"), label.inner_text()
            box = metrics.nth(index).bounding_box()
            assert box is not None and box["y"] + box["height"] <= height
        chart = page.get_by_test_id("stVegaLiteChart").first.bounding_box()
        assert chart is not None and chart["y"] + chart["height"] <= height, chart


def test_records_table_fits_1280_without_a_horizontal_scroll(laptop: Page, loaded: RunningApp) -> None:
    explore(laptop, loaded)
    table = laptop.get_by_test_id("stDataFrame").last
    table.scroll_into_view_if_needed()
    # The grid draws on a canvas; its accessible table (th, td) holds the same text.
    headers = table.locator("th")
    expect(headers).to_have_count(6)
    assert [h.strip() for h in headers.all_text_contents()] == [
        "Created", "Source", "Title", "Category", "Tier", "Customer"]
    scroller = table.locator(".dvn-scroller")
    sizes = scroller.evaluate("element => [element.scrollWidth, element.clientWidth]")
    assert sizes[0] <= sizes[1], sizes
    # Product names and labels, as a PM reads them (the accessible copy holds the raw date, the canvas the format).
    cells = [c.strip() for c in table.locator("tbody tr").first.locator("td").all_text_contents()]
    assert cells[1] in ("Zendesk", "Intercom", "SurveyMonkey")
    assert cells[3] in {human_label(c) for c in CATEGORY_COLORS}


def test_each_category_keeps_its_colour_across_filter_states(laptop: Page, loaded: RunningApp) -> None:
    explore(laptop, loaded)
    everything = category_colours(laptop)
    expected = {human_label(category): colour for category, colour in CATEGORY_COLORS.items()}
    with Store(loaded.demo_db) as store:
        present = {human_label(c) for c in store.distinct_values("category")}
    assert everything == {name: expected[name] for name in present}

    # Without bug reports and praise (the first and a middle trace): the others keep their colours.
    remaining = sorted(c for c in CATEGORY_COLORS if human_label(c) in present and c not in ("bug_report", "praise"))
    explore(laptop, loaded, f"?category={','.join(remaining)}")
    filtered = category_colours(laptop)
    assert set(filtered) == {human_label(c) for c in remaining}
    assert filtered == {name: everything[name] for name in filtered}


def test_typed_custom_dates_apply_when_the_field_loses_focus(laptop: Page, loaded: RunningApp) -> None:
    explore(laptop, loaded, "?period=custom&start=2026-01-01&end=2026-12-31")
    laptop.get_by_role("spinbutton", name="day, Dates end date").click()
    laptop.keyboard.type("15")
    laptop.get_by_role("spinbutton", name="month, Dates end date").click()
    laptop.keyboard.type("06")
    # No Enter: focus moves to the search field, and the dates apply.
    laptop.get_by_placeholder('words, "exact phrase", export OR csv, -exclude, prefix*').click()
    wait_idle(laptop)
    expect(laptop).to_have_url(f"{loaded.url}/?period=custom&start=2026-01-01&end=2026-06-15")


def test_test_connection_diagnoses_typed_unsaved_values(laptop: Page, loaded: RunningApp, emulator_url: str) -> None:
    laptop.goto(f"{loaded.url}/connections")
    expect(laptop.get_by_text("No keyring here: two ways to keep your credentials")).to_be_visible()
    form = laptop.get_by_test_id("stForm").first
    form.get_by_role("textbox", name="Subdomain *").fill("demo")
    form.get_by_role("textbox", name="Agent email *").fill(DEMO_ZENDESK_EMAIL)
    form.get_by_role("textbox", name="API token *").fill(CANARY)  # not the emulator's token
    form.get_by_role("textbox", name="Base URL override").fill(f"{emulator_url}/zendesk/{{subdomain}}")
    form.get_by_role("button", name="Test connection").click()
    wait_idle(laptop)
    expect(laptop.get_by_text("Bad token or email", exact=False)).to_be_visible()
    expect(laptop.get_by_text("Tested the values typed above (not saved).")).to_be_visible()
    expect(form.get_by_role("textbox", name="API token *")).to_have_value(CANARY)  # still there, to correct or to save
    # Testing saved nothing: no file under the app's directories holds the typed token.
    written = [p for p in loaded.real_db.parent.parent.rglob("*") if p.is_file() and CANARY.encode() in p.read_bytes()]
    assert written == []
