"""The Demand page in a real browser: one click on "top feature requests from enterprise accounts this quarter" shows
the ranked themes and the accounts behind the top one, and the view follows new feedback.

The demo workspace is filled in-process from the emulator before the page opens; nothing leaves the machine.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from browser_support import CHROMIUM, TIMEOUT_MS, browser, open_page, requires_chromium, wait_idle  # noqa: F401
from app_fixtures import RunningApp, day, load_demo, record, running_app

from feedback_sources import insights
from feedback_sources.models import Category, Tier
from feedback_sources.store import Store

pytestmark = requires_chromium

if CHROMIUM is not None:
    from playwright.sync_api import Browser, Page, expect

PRESET = "Top feature requests from enterprise accounts this quarter"


@pytest.fixture(scope="module")
def app(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningApp]:
    with running_app(tmp_path_factory.mktemp("browser-demand")) as running:
        load_demo(running)
        yield running


@pytest.fixture
def page(browser: Browser, app: RunningApp) -> Iterator[Page]:
    with open_page(browser, app, height=2200) as opened:
        yield opened


def account_column(page: Page):  # type: ignore[no-untyped-def]
    return page.get_by_test_id("stDataFrame").nth(1).locator('td[data-testid^="glide-cell-0-"]')


def expected(app: RunningApp) -> tuple[list[insights.Theme], list[insights.AccountRow]]:
    scope = insights.top_enterprise_feature_requests(day(0))
    with Store(app.demo_db) as store:
        themes = list(insights.rank_tag_themes(store, scope).themes)
        accounts = insights.theme_accounts(store, scope, themes[0].key)
    return themes, accounts


def test_one_click_shows_the_enterprise_accounts_behind_the_top_request(page: Page, app: RunningApp) -> None:
    themes, accounts = expected(app)
    assert themes and accounts and {a.tier for a in accounts} == {"enterprise"}

    page.goto(app.url)
    page.get_by_role("link", name="Demand").click()
    expect(page.locator("h1", has_text="Demand")).to_be_visible()
    page.get_by_role("button", name=PRESET).click()
    wait_idle(page)
    expect(page.get_by_text("Accounts behind the theme")).to_be_visible()
    expect(page.get_by_test_id("stText").filter(has_text=f"Feature request · {themes[0].key.tag}")).to_be_visible()
    expect(page.get_by_text(f"{len(accounts):,} accounts.", exact=False)).to_be_visible()
    # The accounts table draws on a canvas; the grid keeps its cells in a hidden table too: the first column, in order.
    expect(account_column(page)).to_have_text([account.label for account in accounts])

    # New enterprise feedback on the top theme from a new account shows up on the next visit.
    top = themes[0].key
    with Store(app.demo_db) as store:
        store.upsert_records([
            record("zendesk", "browser-new", days_ago=0, tier=Tier.enterprise, category=Category.feature_request,
                   email="pm@newcustomer.example", tags=(top.tag,) if top.tag else ()),
        ])
    page.reload()
    wait_idle(page)
    page.get_by_role("button", name=PRESET).click()
    wait_idle(page)
    _, after = expected(app)
    assert len(after) == len(accounts) + 1
    expect(page.get_by_text(f"{len(after):,} accounts.", exact=False)).to_be_visible()
    expect(account_column(page)).to_have_text([account.label for account in after])
    assert "newcustomer.example" in [account.label for account in after]
