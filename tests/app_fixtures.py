"""Shared fixtures for the Streamlit app tests: an isolated environment, a seeded store, an AppTest factory."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta, timezone
from pathlib import Path
from typing import Any

import keyring
import pytest
import streamlit as st
from streamlit.runtime.memory_media_file_storage import MemoryMediaFileStorage
from streamlit.testing.v1 import AppTest

from feedback_sources.credentials import SOURCE_FIELDS, InMemoryKeyring
from feedback_sources.models import Category, NormalizedRecord, Tier
from feedback_sources.store import Store
from tests.helpers import free_port, wait_for

ROOT = Path(__file__).resolve().parent.parent
APP = ROOT / "app.py"
TIMEOUT = 30

XSS_TITLE = "<script>window.__pwned = 1</script>"
XSS_CONTENT = "<img src=x onerror=\"window.__pwned=1\"> [click](javascript:alert(1)) ![](http://127.0.0.9/pixel.png)"
XSS_TAG = "<b>bold</b><img src=x onerror=alert(1)>"

VENDOR_ENV_VARS = tuple(spec.env_var for specs in SOURCE_FIELDS.values() for spec in specs)


def day(offset: int) -> date:
    """A calendar day relative to today (UTC): the app's relative periods are computed from today."""
    return datetime.now(timezone.utc).date() + timedelta(days=offset)


def record(
    source: str,
    source_id: str,
    *,
    days_ago: int,
    tier: Tier | None = Tier.business,
    category: Category = Category.feature_request,
    title: str | None = None,
    content: str = "",
    email: str | None = None,
    tags: tuple[str, ...] = (),
    url: str | None = None,
) -> NormalizedRecord:
    created = datetime.combine(day(-days_ago), time(12, 0), tzinfo=timezone.utc)
    metadata: dict[str, Any] = {"tags": list(tags)}
    if url is not None:
        metadata["url"] = url
    return NormalizedRecord(
        source=source,
        source_id=source_id,
        title=title or f"{source} {source_id}",
        content=content or f"content of {source} {source_id}",
        customer_email=email or f"{source_id}@example.com",
        customer_name=f"Customer {source_id}",
        customer_tier=tier,
        category=category,
        created_at=created,
        metadata=metadata,
    )


def sample_records() -> list[NormalizedRecord]:
    """Twelve records: three sources, every tier including none, several categories, tags, links, one hostile."""
    return [
        record("zendesk", "1", days_ago=1, tier=Tier.enterprise, category=Category.bug_report,
               title="Export crashes", content="CSV export crashes on large files", tags=("export", "csv"),
               email="ann@acme.example", url="https://demo.zendesk.com/agent/tickets/1"),
        record("zendesk", "2", days_ago=2, tier=Tier.enterprise, category=Category.feature_request,
               title="Dark mode please", tags=("ui",), email="ann@acme.example",
               url="https://demo.zendesk.com/agent/tickets/2"),
        record("zendesk", "3", days_ago=3, tier=Tier.free, category=Category.question,
               title="How do I invite teammates?", tags=("onboarding",)),
        record("zendesk", "4", days_ago=40, tier=Tier.professional, category=Category.bug_report,
               title="Old bug", tags=("export",)),
        record("intercom", "c1", days_ago=1, tier=Tier.business, category=Category.complaint,
               title="Too slow", content="Dashboard is slow", tags=("performance",),
               url="https://app.intercom.com/a/apps/demo/inbox/conversation/c1"),
        record("intercom", "c2", days_ago=5, tier=None, category=Category.praise, title="Love it"),
        record("intercom", "c3", days_ago=6, tier=Tier.enterprise, category=Category.bug_report,
               title=XSS_TITLE, content=XSS_CONTENT, tags=(XSS_TAG,), url="javascript:alert(1)"),
        record("intercom", "c4", days_ago=35, tier=Tier.business, category=Category.support, title="Billing"),
        record("surveymonkey", "r1", days_ago=2, tier=Tier.business, category=Category.feature_request,
               title="NPS 9", content="=HYPERLINK(\"http://evil\")", tags=("nps",)),
        record("surveymonkey", "r2", days_ago=4, tier=Tier.free, category=Category.other, title="NPS 3",
               content="+1 for exports", tags=("nps",)),
        record("surveymonkey", "r3", days_ago=10, tier=Tier.professional, category=Category.feature_request,
               title="NPS 7", tags=("nps", "export")),
        record("surveymonkey", "r4", days_ago=50, tier=None, category=Category.question, title="NPS 5"),
    ]


def seed(path: Path, records: list[NormalizedRecord] | None = None) -> None:
    with Store(path) as store:
        store.upsert_records(records if records is not None else sample_records())


@dataclass
class AppEnv:
    root: Path
    real_db: Path
    demo_db: Path
    keyring: InMemoryKeyring

    def app(self) -> AppTest:
        return AppTest.from_file(str(APP), default_timeout=TIMEOUT)


@pytest.fixture
def app_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[AppEnv]:
    """Databases in tmp_path, no vendor variables, no .env, an in-memory keyring and empty Streamlit caches."""
    for name in VENDOR_ENV_VARS:
        monkeypatch.delenv(name, raising=False)
    env = AppEnv(tmp_path, tmp_path / "real" / "feedback.db", tmp_path / "demo" / "demo.db", InMemoryKeyring())
    monkeypatch.setenv("FEEDBACK_DB", str(env.real_db))
    monkeypatch.setenv("FEEDBACK_DEMO_DB", str(env.demo_db))
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.chdir(tmp_path)  # CredentialStore reads ./.env: there is none here
    previous = keyring.get_keyring()
    keyring.set_keyring(env.keyring)
    st.cache_data.clear()
    try:
        yield env
    finally:
        keyring.set_keyring(previous)
        st.cache_data.clear()


def run_page(env: AppEnv, page: str, *, mode: str | None = None, query: dict[str, Any] | None = None) -> AppTest:
    """A fresh session opened on one page (e.g. "app_pages/explore.py"), optionally in a given workspace."""
    at = env.app()
    if mode is not None:
        at.session_state["workspace_mode"] = mode
    if query:
        at.query_params.update(query)
    at.run()
    if page != "app_pages/explore.py":
        at.switch_page(page).run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def finish_sync(at: AppTest, db: Path, timeout: float = 120.0) -> AppTest:
    """After the Sync page started a sync: wait for its background job to end, then draw the page again."""
    from feedback_sources.jobs import latest_job

    def ended() -> bool:
        if not db.exists():
            return False
        with Store(db) as store:
            job = latest_job(store)
        return job is not None and not job.active

    wait_for(ended, timeout)
    return at.run()


def texts(at: AppTest) -> list[str]:
    return [t.value for t in at.text]


def markdown_bodies(at: AppTest) -> list[str]:
    """Every string that went through markdown: titles, captions, alerts, metrics' labels."""
    bodies = [m.value for m in at.markdown] + [c.value for c in at.caption]
    bodies += [e.value for e in at.error] + [w.value for w in at.warning] + [i.value for i in at.info]
    bodies += [s.value for s in at.success] + [t.value for t in at.title] + [h.value for h in at.subheader]
    return bodies


def env_without(*names: str) -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if k not in names}


@pytest.fixture
def emulator_url() -> Iterator[str]:
    """The vendor emulator served over HTTP on 127.0.0.1, for the real-workspace paths (they use the network)."""
    from feedback_sources.emulator import Emulator, EmulatorConfig, run_emulator_server

    with run_emulator_server(Emulator(EmulatorConfig())) as url:
        yield url


@dataclass
class Download:
    data: bytes
    mimetype: str
    filename: str | None


@pytest.fixture
def downloads(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[Download]]:
    """Every file the page hands to a download button, as the browser would receive it."""
    captured: list[Download] = []
    original = MemoryMediaFileStorage.load_and_get_id

    def capture(self, path_or_data, mimetype, kind, filename=None):  # type: ignore[no-untyped-def]
        if isinstance(path_or_data, bytes):
            captured.append(Download(path_or_data, mimetype, filename))
        return original(self, path_or_data, mimetype, kind, filename)

    monkeypatch.setattr(MemoryMediaFileStorage, "load_and_get_id", capture)
    yield captured


def visible_strings(at: AppTest) -> list[str]:
    """Everything the page shows as text, including table cells and input values."""
    strings = markdown_bodies(at) + texts(at) + [c.value for c in at.code]
    strings += [str(m.value) for m in at.metric] + [str(t.value) for t in at.text_input]
    for frame in at.dataframe:
        strings += [str(cell) for cell in frame.value.to_numpy().ravel()]
    return strings


# -- a real server for browser tests and screenshots -------------------------------------------------------------

CHROMIUM_ARGS = [
    "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
    "--disable-component-update", "--disable-sync",
]


@dataclass
class RunningApp:
    url: str
    real_db: Path
    demo_db: Path
    log: Path


def app_environment(root: Path) -> dict[str, str]:
    """The server's environment: databases and HOME under root, no vendor variables, a keyring that refuses."""
    env = {k: v for k, v in os.environ.items() if k not in VENDOR_ENV_VARS and not k.startswith("STREAMLIT_")}
    env.update(
        FEEDBACK_DB=str(root / "real" / "feedback.db"),
        FEEDBACK_DEMO_DB=str(root / "demo" / "demo.db"),
        HOME=str(root / "home"),
        XDG_DATA_HOME=str(root / "home" / ".local" / "share"),
        XDG_CONFIG_HOME=str(root / "home" / ".config"),
        PYTHON_KEYRING_BACKEND="keyring.backends.fail.Keyring",
    )
    (root / "home").mkdir(parents=True, exist_ok=True)
    return env


@contextmanager
def running_app(root: Path, startup_seconds: float = 60.0,
                extra_env: dict[str, str] | None = None) -> Iterator[RunningApp]:
    """`streamlit run app.py` on 127.0.0.1 and a free port, from an empty directory (so no .env is read);
    `extra_env` adds to the server's environment (e.g. a PYTHONPATH holding an installed source plugin)."""
    import subprocess
    import sys
    import time

    import httpx

    port = free_port()
    env = {**app_environment(root), **(extra_env or {})}
    work = root / "cwd"
    work.mkdir(parents=True, exist_ok=True)
    log = root / "streamlit.log"
    command = [
        sys.executable, "-m", "streamlit", "run", str(APP),
        "--server.port", str(port), "--server.headless", "true", "--server.address", "127.0.0.1",
        "--server.fileWatcherType", "none",
    ]
    with log.open("wb") as output:
        process = subprocess.Popen(command, cwd=work, env=env, stdout=output, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + startup_seconds
        while True:
            if process.poll() is not None:
                raise RuntimeError(f"streamlit exited early:\n{log.read_text()}")
            try:
                if httpx.get(f"{url}/_stcore/health", timeout=2).text == "ok":
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"streamlit did not start in {startup_seconds} s:\n{log.read_text()}")
            time.sleep(0.2)
        yield RunningApp(url, Path(env["FEEDBACK_DB"]), Path(env["FEEDBACK_DEMO_DB"]), log)
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)


def load_demo(app: RunningApp) -> None:
    """Fill a running app's demo workspace from the emulator, as "Load demo data" would. Playwright's synchronous API
    keeps an event loop running in the test's thread, so the sync gets a thread of its own."""
    from concurrent.futures import ThreadPoolExecutor

    from feedback_sources.sync import sync
    from feedback_sources.workspace import demo_workspace

    workspace = demo_workspace(app.demo_db)

    def load() -> set[str]:
        with workspace.store() as store:
            return {r.status for r in sync(store, workspace.integrations(), incremental=False).values()}

    with ThreadPoolExecutor(1) as pool:
        assert pool.submit(load).result() == {"complete"}
