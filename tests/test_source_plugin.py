"""A source installed from outside the project works everywhere a built-in one does, with no edit to the core.

The example plugin in tests/plugins/example_source is installed the way pip installs any distribution (offline,
into a directory of its own) and found only through its `feedback_hub.sources` entry point: by the CLI's choices,
`sync --source`, `status`, and the Connections, Sync and Health pages. The built-in sources' names appear nowhere
in the plugin, and the core names the plugin nowhere.
"""

from __future__ import annotations

import importlib
import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from app_fixtures import (
    AppEnv,
    app_env,  # noqa: F401  (fixture)
    finish_sync,
    markdown_bodies,
    run_page,
)

from feedback_sources.credentials import CredentialStore, InMemoryKeyring
from feedback_sources.integrations import base as integrations_base
from feedback_sources.sources import ENTRY_POINT_GROUP, registry, reset_registry
from feedback_sources.ui.charts import OTHER_COLOR, SOURCE_FALLBACK_COLORS, color_for
from feedback_sources.ui.labels import source_label

ROOT = Path(__file__).resolve().parent.parent
PLUGIN_SOURCE = ROOT / "tests" / "plugins" / "example_source"
NAME = "example_notes"
LABEL = "Example Notes"
NOTES = 3  # the notes the plugin keeps in memory


@pytest.fixture(scope="module")
def plugin_site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The plugin installed by pip into an empty directory: no index, no network, no build isolation."""
    work = tmp_path_factory.mktemp("plugin")
    source = work / "src"
    shutil.copytree(PLUGIN_SOURCE, source)  # the build writes next to the sources: keep the checkout clean
    site = work / "site"
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--no-index", "--no-build-isolation",
         "--disable-pip-version-check", "--target", str(site), str(source)],
        check=True, capture_output=True, timeout=180,
    )
    assert list(site.glob("feedback_hub_example_source-*.dist-info/entry_points.txt"))
    return site


@pytest.fixture
def installed(plugin_site: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """The plugin importable in this process and in every subprocess, the registry read afresh."""
    monkeypatch.syspath_prepend(str(plugin_site))
    paths = [str(ROOT), str(plugin_site)] + [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p]
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(paths))
    importlib.invalidate_caches()
    reset_registry()
    try:
        yield plugin_site
    finally:
        reset_registry()
        integrations_base._REGISTRY.pop(NAME, None)
        for module in [m for m in sys.modules if m == "feedback_hub_example" or m.startswith("feedback_hub_example.")]:
            del sys.modules[module]


def cli(*args: str, cwd: Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    environment = {**os.environ, "PYTHON_KEYRING_BACKEND": "keyring.backends.null.Keyring", **(env or {})}
    return subprocess.run([sys.executable, "-m", "feedback_sources", *args], capture_output=True, text=True,
                          cwd=cwd, env=environment, timeout=120)


def test_the_plugin_is_not_there_until_it_is_installed() -> None:
    reset_registry()
    assert NAME not in registry()


def test_the_registry_finds_the_plugin_through_its_entry_point(installed: Path) -> None:
    from importlib.metadata import entry_points

    assert [e.value for e in entry_points(group=ENTRY_POINT_GROUP) if e.name == NAME] == ["feedback_hub_example:SPEC"]
    spec = registry()[NAME]
    assert (spec.label, spec.kind, list(registry())[-1]) == (LABEL, "file", NAME)
    # Reading the registry imports the spec only: the integration waits until a sync needs it.
    assert "feedback_hub_example.integration" not in sys.modules
    assert source_label(NAME) == LABEL
    # No colour of its own: one of the fallbacks, the same on every call; a source nobody registers stays grey.
    assert color_for("source", NAME) in SOURCE_FALLBACK_COLORS
    assert color_for("source", NAME) == color_for("source", NAME)
    assert color_for("source", "not_a_source") == OTHER_COLOR


def test_a_file_source_is_configured_without_any_secret(installed: Path, tmp_path: Path) -> None:
    store = CredentialStore(environ={}, dotenv_path=None, keyring_backend=InMemoryKeyring())
    assert store.field_origins(NAME) == {"team": "missing"}
    assert store.is_configured(NAME)
    store.set(NAME, {"team": " core "})
    assert store.get_config(NAME) == {"team": "core"}
    from feedback_sources.workspace import real_workspace

    workspace = real_workspace(store, db_path=tmp_path / "f.db")
    assert NAME in workspace.configured_sources()
    result = workspace.test_connection(NAME)
    assert (result.ok, result.account) == (True, "core")


def test_cli_lists_syncs_and_reports_the_plugin(installed: Path, tmp_path: Path) -> None:
    usage = cli("sync", "--help", cwd=tmp_path)
    assert usage.returncode == 0, usage.stderr
    assert NAME in usage.stdout
    db = tmp_path / "plugin.db"
    synced = cli("sync", "--source", NAME, "--db", str(db), cwd=tmp_path)
    assert synced.returncode == 0, synced.stderr + synced.stdout
    assert NAME in synced.stdout
    again = cli("sync", "--source", NAME, "--db", str(db), cwd=tmp_path)  # the saved cursor: nothing new
    assert again.returncode == 0, again.stderr + again.stdout
    status = cli("status", "--json", "--db", str(db), cwd=tmp_path)
    assert status.returncode == 0, status.stderr
    facts = {fact["source"]: fact for fact in json.loads(status.stdout)["sources"]}
    assert (facts[NAME]["records"], facts[NAME]["configured"], facts[NAME]["completeness"]["status"]) == (
        NOTES, True, "complete")
    shown = cli("status", "--db", str(db), cwd=tmp_path)
    assert f"{NAME}: " in shown.stdout and f"{NOTES} records" in shown.stdout
    unknown = cli("sync", "--source", "not_a_source", "--db", str(db), cwd=tmp_path)
    assert unknown.returncode != 0 and "invalid choice" in unknown.stderr


def test_help_imports_neither_the_plugin_integration_nor_httpx(installed: Path, tmp_path: Path) -> None:
    heavy = {"feedback_hub_example.integration", "httpx", "pydantic", "streamlit", "keyring"}
    run = subprocess.run([sys.executable, "-X", "importtime", "-m", "feedback_sources", "sync", "--help"],
                         capture_output=True, text=True, cwd=tmp_path, timeout=60, env=dict(os.environ))
    assert run.returncode == 0, run.stderr
    assert NAME in run.stdout
    imported = {line.rsplit("|", 1)[-1].strip() for line in run.stderr.splitlines() if line.startswith("import time:")}
    assert "feedback_sources.cli" in imported
    assert not heavy & imported, heavy & imported
    # importtime does not log what importlib.import_module loads (the registry's way in): sys.modules tells.
    script = (
        "import json, sys\n"
        "from feedback_sources.cli import main\n"
        "try:\n    main(['sync', '--help'])\nexcept SystemExit:\n    pass\n"
        "print(json.dumps(sorted(sys.modules)), file=sys.stderr)\n"
    )
    run = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, cwd=tmp_path, timeout=60,
                         env=dict(os.environ))
    assert run.returncode == 0, run.stderr
    loaded = set(json.loads(run.stderr.strip().splitlines()[-1]))
    assert "feedback_hub_example" in loaded  # its spec, through the entry point
    assert not heavy & loaded, heavy & loaded


def test_connections_page_renders_the_plugin_fields_and_its_settings_panel(installed: Path, app_env: AppEnv) -> None:
    at = run_page(app_env, "app_pages/connections.py", mode="real")
    assert [tab.label for tab in at.tabs][-1] == LABEL
    team = at.text_input(key=f"field_{NAME}_team")
    assert team.label == "Team"
    bodies = markdown_bodies(at)
    assert any(body.startswith("Example Notes panel (real workspace): 3 notes to read") for body in bodies), bodies
    assert "All required fields are set." in [s.value for s in at.success]
    team.set_value("growth")
    at.button(key="FormSubmitter:form_example_notes-Save to keyring").click().run()
    assert not at.exception
    assert any("Saved to the keyring: team." in s.value for s in at.success)
    assert any(body.startswith("Example Notes panel (real workspace): 2 notes to read") for body in markdown_bodies(at))


def test_sync_page_runs_the_plugin_in_a_background_job_and_health_shows_it(installed: Path, app_env: AppEnv) -> None:
    at = run_page(app_env, "app_pages/sync.py", mode="real")
    select = at.multiselect(key="sync_sources")
    assert NAME in select.options or LABEL in select.options
    assert select.value == [NAME]  # the only source that needs no credentials
    at.button(key="FormSubmitter:sync_form-Run sync").click().run()
    finish_sync(at, app_env.real_db)
    from feedback_sources.jobs import latest_job
    from feedback_sources.store import Store

    with Store(app_env.real_db) as store:
        job = latest_job(store)
        count = store.conn.execute("SELECT COUNT(*) FROM feedback WHERE source = ?", (NAME,)).fetchone()[0]
    assert job is not None and job.status == "complete", job
    assert count == NOTES
    health = run_page(app_env, "app_pages/health.py", mode="real")
    panels = [m.value for m in health.main.markdown if m.value.startswith("**")]
    assert any(panel.startswith(f"**{LABEL}** :green-badge") for panel in panels), panels
    cards = [m.value for m in health.sidebar.markdown if m.value.startswith(f"**{LABEL}**")]
    assert cards, [m.value for m in health.sidebar.markdown]
    explore = run_page(app_env, "app_pages/explore.py", mode="real")
    source_filter = explore.multiselect(key="explore_sources")
    assert NAME in source_filter.options or LABEL in source_filter.options
    source_filter.set_value([NAME]).run()
    assert not explore.exception
    assert explore.multiselect(key="explore_sources").value == [NAME]
