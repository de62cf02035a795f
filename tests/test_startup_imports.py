"""Start-up: `--help` and a no-change incremental sync import only what they use.

Checked as a property of the import graph (`python -X importtime`), never as a time: pandas, streamlit,
scikit-learn and VADER belong to the app and its analyses, and sqlite-utils imports pandas; a cron'd sync that finds
nothing new must not load any of them.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from benchmarks.sources import cli_environment
from feedback_sources.emulator import Emulator, EmulatorConfig, run_emulator_server

ROOT = Path(__file__).resolve().parent.parent
NEVER_AT_START = ("pandas", "streamlit", "sklearn", "vaderSentiment", "sqlite_utils", "numpy")


def imported_modules(args: list[str], env: dict[str, str] | None = None, cwd: Path = ROOT) -> tuple[set[str], str]:
    completed = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "feedback_sources", *args],
        cwd=cwd, env={**os.environ, **(env or {})}, capture_output=True, text=True, timeout=120,
    )
    assert completed.returncode == 0, completed.stderr[-3000:]
    names = set()
    for line in completed.stderr.splitlines():
        found = re.match(r"import time:\s+\d+ \|\s+\d+ \| (\s*)(\S+)", line)
        if found:
            names.add(found.group(2))
    assert "feedback_sources.cli" in names  # the parse saw the import log
    return names, completed.stdout


def heavy(names: set[str]) -> list[str]:
    return sorted(name for name in names if name.split(".")[0] in NEVER_AT_START)


def test_help_imports_neither_the_analysis_stack_nor_the_integrations() -> None:
    names, out = imported_modules(["--help"])
    assert "sync" in out and "export" in out
    assert heavy(names) == []
    # Printing the usage needs argparse, not the HTTP client, the models or the store.
    assert not names & {"httpx", "pydantic", "feedback_sources.store", "feedback_sources.integrations"}


@pytest.mark.parametrize("args", [["sync", "--help"], ["export", "--help"], ["status", "--help"]])
def test_command_help_imports_no_analysis_stack(args: list[str]) -> None:
    names, out = imported_modules(args)
    assert "usage:" in out
    assert heavy(names) == []


def test_no_change_incremental_sync_imports_no_analysis_stack(tmp_path: Path) -> None:
    emulator = Emulator(EmulatorConfig(seed=3, zendesk_tickets=40, intercom_conversations=5, surveymonkey_surveys=1,
                                       surveymonkey_responses_per_survey=5))
    with run_emulator_server(emulator) as url:
        env = {**cli_environment(emulator.base_urls(url)), "FEEDBACK_DB": str(tmp_path / "feedback.db"),
               "PYTHONPATH": str(ROOT)}
        first = subprocess.run([sys.executable, "-m", "feedback_sources", "sync", "--full"], cwd=tmp_path,
                               env={**os.environ, **env}, capture_output=True, text=True, timeout=120)
        assert first.returncode == 0, first.stderr[-3000:]
        names, out = imported_modules(["sync"], env, cwd=tmp_path)
    rows = {line.split()[0]: line.split() for line in out.splitlines() if line.split()}
    for source in ("zendesk", "intercom", "surveymonkey"):
        assert rows[source][1] == "complete" and rows[source][3] == "0" and rows[source][4] == "0", out  # no change
    assert heavy(names) == []
    assert "feedback_sources.themes" not in names  # nothing new to score or place
