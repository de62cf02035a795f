"""The app on a damaged or unusable store (AppTest): every page says what is wrong and what to do instead of raising,
nothing calls a source fresh, and the file is left as it was. A migration's backup is announced."""

from __future__ import annotations

from pathlib import Path

import pytest
from app_fixtures import (
    AppEnv,
    app_env,  # noqa: F401  (fixture)
    markdown_bodies,
    run_page,
)
from damage_support import EXPECTED, FILE_KINDS, build_real_store, damage, damage_unseen, old_store, snapshot

from feedback_sources.store import SCHEMA_VERSION

PAGES = (
    "app_pages/explore.py", "app_pages/demand.py", "app_pages/rules.py", "app_pages/sync.py", "app_pages/health.py",
    "app_pages/webhooks.py", "app_pages/export.py", "app_pages/connections.py",
)


@pytest.fixture(scope="module")
def template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_real_store(tmp_path_factory.mktemp("template") / "demo.db")


def said(at: object) -> str:
    return "\n".join(markdown_bodies(at)).replace("\\", "")  # md_escape's backslashes


def assert_store_problem_shown(at: object, kind: str) -> None:
    text = said(at)
    assert EXPECTED[kind] in text.lower(), text
    assert "What to do:" in text
    assert "Fresh" not in text and "fresh" not in text.replace("refresh", "")


@pytest.mark.parametrize("page", PAGES)
def test_every_page_shows_the_damage_instead_of_running(app_env: AppEnv, template: Path, page: str) -> None:
    app_env.demo_db.parent.mkdir(parents=True, exist_ok=True)
    damage(app_env.demo_db, "garbage_header", template)
    before = snapshot(app_env.demo_db)
    at = run_page(app_env, page)  # asserts that no exception reached the page
    assert_store_problem_shown(at, "garbage_header")
    assert [e.value for e in at.error][0].startswith("**The store is damaged.**")
    assert snapshot(app_env.demo_db) == before


@pytest.mark.parametrize("page", ("app_pages/explore.py", "app_pages/health.py"))
@pytest.mark.parametrize("kind", FILE_KINDS)
def test_each_kind_of_damage_is_named_on_explore_and_health(
    app_env: AppEnv, template: Path, kind: str, page: str
) -> None:
    app_env.demo_db.parent.mkdir(parents=True, exist_ok=True)
    damage(app_env.demo_db, kind, template)
    before = snapshot(app_env.demo_db)
    at = run_page(app_env, page)
    assert_store_problem_shown(at, kind)
    assert not at.metric  # no figures read from a store that cannot be read
    assert snapshot(app_env.demo_db) == before


def test_the_healthy_store_shows_pages_and_fresh_sources(app_env: AppEnv, template: Path) -> None:
    """The control: the same store undamaged shows the page, the health badges, and no store problem."""
    app_env.demo_db.parent.mkdir(parents=True, exist_ok=True)
    app_env.demo_db.write_bytes(template.read_bytes())
    at = run_page(app_env, "app_pages/health.py")
    text = said(at)
    assert "What to do:" not in text and "Fresh" in text
    assert at.metric


def test_damage_met_in_the_middle_of_a_page_gets_the_same_message(app_env: AppEnv, template: Path) -> None:
    """Damage past what the open check read (here: written after a check the process remembers): the page's
    queries meet it, and the frame shows the store message instead of the SQLite error."""
    app_env.demo_db.parent.mkdir(parents=True, exist_ok=True)
    app_env.demo_db.write_bytes(template.read_bytes())
    damage_unseen(app_env.demo_db)
    before = snapshot(app_env.demo_db)
    at = run_page(app_env, "app_pages/explore.py")
    text = said(at)
    assert "is damaged: SQLite reports" in text and "What to do:" in text
    assert snapshot(app_env.demo_db) == before


def test_a_migration_is_backed_up_and_announced(app_env: AppEnv) -> None:
    old_store(app_env.demo_db, SCHEMA_VERSION - 1)
    at = run_page(app_env, "app_pages/explore.py")
    copy = app_env.demo_db.parent / f"demo.db.before-migration-{SCHEMA_VERSION}.bak"
    assert copy.exists()
    assert any("backed up to" in info.value and copy.name in info.value.replace("\\", "") for info in at.info)
    at = run_page(app_env, "app_pages/explore.py")  # once: the next session finds the store current
    assert not any("backed up to" in info.value for info in at.info)
