"""The frame in app.py (AppTest): navigation, the demo/real workspace switch, the per-source sidebar status."""

from __future__ import annotations

import logging
import tomllib
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from app_fixtures import (
    ROOT,
    AppEnv,
    Download,
    app_env,  # noqa: F401  (fixture)
    downloads,  # noqa: F401  (fixture)
    finish_sync,
    run_page,
    seed,
    visible_strings,
)
from streamlit.testing.v1 import AppTest

from feedback_sources.credentials import SERVICE_NAME
from feedback_sources.store import Store, iso_utc, now_utc

PAGES = {
    "app_pages/explore.py": "Explore",
    "app_pages/sync.py": "Sync",
    "app_pages/export.py": "Export",
    "app_pages/connections.py": "Connections",
}


def sidebar_cards(at: AppTest) -> list[tuple[str, ...]]:
    """(source, badge, caption) per source card in the sidebar."""
    heads = [m.value.split(" ", 1) for m in at.sidebar.markdown if m.value.startswith("**")]
    captions = [c.value for c in at.sidebar.caption if "records" in c.value]
    return [(name, badge, caption) for (name, badge), caption in zip(heads, captions)]


def banner_shown(at: AppTest) -> bool:
    return any("Demo data" in m.value for m in at.markdown)


@pytest.mark.parametrize("page, title", PAGES.items())
def test_every_page_renders(app_env: AppEnv, page: str, title: str) -> None:
    seed(app_env.demo_db)
    at = run_page(app_env, page)
    # Explore with data has no title: the sidebar names it, and its first screen is for the KPIs and the chart.
    assert [t.value for t in at.title] == ([] if page == "app_pages/explore.py" else [title])


def test_first_run_without_credentials_opens_the_demo_workspace(app_env: AppEnv) -> None:
    at = run_page(app_env, "app_pages/explore.py")
    assert at.radio(key="workspace_mode").value == "demo"
    assert banner_shown(at)
    assert sidebar_cards(at) == [
        ("**Zendesk**", ":gray-badge[Never synced]", "0 records · synced never"),
        ("**Intercom**", ":gray-badge[Never synced]", "0 records · synced never"),
        ("**SurveyMonkey**", ":gray-badge[Never synced]", "0 records · synced never"),
        ("**Spreadsheet**", ":gray-badge[Never synced]", "0 records · synced never"),
    ]


def test_configured_credentials_open_the_real_workspace(app_env: AppEnv, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("INTERCOM_ACCESS_TOKEN", "canary-ic-frame")
    app_env.keyring.set_password(SERVICE_NAME, "surveymonkey.access_token", "canary-sm-frame")
    at = run_page(app_env, "app_pages/explore.py")
    assert at.radio(key="workspace_mode").value == "real"
    assert not banner_shown(at)
    assert [card[1] for card in sidebar_cards(at)] == [
        ":gray-badge[Not connected]",
        ":gray-badge[Never synced]",
        ":gray-badge[Never synced]",
        ":gray-badge[Not connected]",  # no file chosen yet
    ]


def test_switching_workspaces_never_mixes_the_databases(app_env: AppEnv) -> None:
    seed(app_env.demo_db)
    at = run_page(app_env, "app_pages/explore.py")
    assert {m.label: m.value for m in at.metric}["Records"] == "12"
    at.button(key="banner_switch_real").click().run()
    assert at.radio(key="workspace_mode").value == "real"
    assert not banner_shown(at)
    assert [s.value for s in at.subheader] == ["No feedback yet"]
    with Store(app_env.real_db) as real:
        assert real.count() == 0
    at.radio(key="workspace_mode").set_value("demo").run()
    assert {m.label: m.value for m in at.metric}["Records"] == "12"


def test_sidebar_shows_counts_freshness_and_failures(app_env: AppEnv) -> None:
    seed(app_env.demo_db)
    with Store(app_env.demo_db) as store:
        done = store.start_run("g1", "zendesk", "full", None, None)
        store.finish_run(done, status="complete")
        old = store.start_run("g1", "intercom", "full", None, None)
        store.finish_run(old, status="complete", finished_at=iso_utc(now_utc() - timedelta(days=3)))
        failed = store.start_run("g2", "surveymonkey", "full", None, None)
        store.finish_run(failed, status="failed", errors="auth: bad token")
    at = run_page(app_env, "app_pages/sync.py")
    assert sidebar_cards(at) == [
        ("**Zendesk**", ":green-badge[:material/check: Fresh]", "4 records · synced just now"),
        ("**Intercom**", ":orange-badge[:material/schedule: Stale]", "4 records · synced 3 d ago"),
        ("**SurveyMonkey**", ":red-badge[:material/error: Failing]", "4 records · synced never"),
        ("**Spreadsheet**", ":gray-badge[Never synced]", "0 records · synced never"),
    ]


def test_streamlit_config_is_local_private_and_quiet() -> None:
    config = tomllib.loads((ROOT / ".streamlit" / "config.toml").read_text())
    assert config["server"]["address"] == "127.0.0.1"
    assert config["server"]["enableXsrfProtection"] is True
    assert config["browser"]["gatherUsageStats"] is False
    assert config["client"]["showErrorDetails"] in (False, "none")
    assert config["client"]["toolbarMode"] == "minimal"
    assert config["runner"]["magicEnabled"] is False


def app_sources() -> list[Path]:
    return [ROOT / "app.py", *sorted((ROOT / "app_pages").glob("*.py"))]


def test_no_page_renders_html_or_markdown_from_data() -> None:
    for path in app_sources():
        text = path.read_text()
        assert "unsafe_allow_html" not in text, path
        assert "st.write(" not in text.replace('st.write("")', ""), path
        assert "st.html(" not in text and "components.html" not in text, path


def test_no_legacy_pages_directory_next_to_the_entry_point() -> None:
    # A pages/ folder switches on Streamlit's legacy multipage mode, which can run a page without the frame.
    assert not (ROOT / "pages").exists()
    assert {p.name for p in app_sources()} >= {"app.py", "_shared.py", "explore.py", "sync.py", "export.py",
                                                  "connections.py"}


CANARIES = {
    "zendesk": "canary-zd-frame-3b9e71",
    "intercom": "canary-ic-frame-c04d2f",
    "surveymonkey": "canary-sm-frame-77a1e0",
}


@pytest.fixture
def canary_emulator() -> Iterator[str]:
    """The emulator over HTTP, accepting only the canary tokens."""
    from feedback_sources.emulator import Emulator, EmulatorConfig, run_emulator_server

    config = EmulatorConfig(zendesk_token=CANARIES["zendesk"], intercom_token=CANARIES["intercom"],
                            surveymonkey_token=CANARIES["surveymonkey"])
    with run_emulator_server(Emulator(config)) as url:
        yield url


def test_tokens_typed_into_the_app_leave_no_trace(
    app_env: AppEnv, canary_emulator: str, downloads: list[Download], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    for name in ("httpx", "httpcore", "feedback_sources", "streamlit"):
        logging.getLogger(name).setLevel(logging.DEBUG)
    from feedback_sources.emulator import DEMO_ZENDESK_EMAIL

    at = run_page(app_env, "app_pages/connections.py")
    forms = {
        "zendesk": {"subdomain": "demo", "email": DEMO_ZENDESK_EMAIL, "api_token": CANARIES["zendesk"],
                    "base_url": f"{canary_emulator}/zendesk/demo"},
        "intercom": {"access_token": CANARIES["intercom"], "base_url": f"{canary_emulator}/intercom"},
        "surveymonkey": {"access_token": CANARIES["surveymonkey"], "base_url": f"{canary_emulator}/surveymonkey/v3"},
    }
    seen: list[str] = []
    for source, values in forms.items():
        for field, value in values.items():
            at.text_input(key=f"field_{source}_{field}").input(value)
        at.button(key=f"FormSubmitter:form_{source}-Save to keyring").click().run()
        seen += visible_strings(at)
        at.button(key=f"FormSubmitter:form_{source}-Test connection").click().run()
        assert [s.value for s in at.success if s.value.startswith("Connected")], source
        seen += visible_strings(at)
    at.button(key="connections_switch_real").click().run()

    at.switch_page("app_pages/sync.py").run()
    at.radio(key="sync_preset").set_value("30d")
    at.button(key="FormSubmitter:sync_form-Run sync").click().run()
    finish_sync(at, app_env.real_db)  # the sync runs as a background job (its settings reach it over a pipe)
    assert at.status[0].state == "complete"
    seen += visible_strings(at)
    at.switch_page("app_pages/explore.py").run()
    seen += visible_strings(at)
    at.switch_page("app_pages/export.py").run()
    seen += visible_strings(at)
    assert downloads and downloads[-1].data.count(b"\r\n") > 10

    db = app_env.real_db
    stored_files = [p for p in db.parent.iterdir() if p.name.startswith(db.name)]
    assert db in stored_files
    home_files = [p for p in (app_env.root / "home").rglob("*") if p.is_file()]
    state = [f"{key}={value!r}" for key, value in at.session_state.items()]
    for source, canary in CANARIES.items():
        needle = canary.encode()
        assert [p for p in stored_files + home_files if needle in p.read_bytes()] == [], source
        assert not [d for d in downloads if needle in d.data], source
        assert not [s for s in seen if canary in s], source
        assert not [s for s in state if canary in s], source
        assert canary not in caplog.text, source
