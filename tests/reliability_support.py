"""Shared pieces of the reliability tests: a small emulator in the past, workspaces pointed at it, ground truth,
and the checks every test repeats (each key once, compared as tuples; stored ids equal the vendor's)."""

from __future__ import annotations

import os
import sqlite3
import sys
from collections.abc import Iterable
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

from feedback_sources.emulator import Emulator, EmulatorConfig

ROOT = Path(__file__).resolve().parent.parent
SOURCES: tuple[str, ...] = ("zendesk", "intercom", "surveymonkey")


def past_config(**overrides: Any) -> EmulatorConfig:
    """A small dataset that ended an hour ago: every record is settled before a sync starts, so a run's fixed
    upper bound (Intercom's `updated_before`, Zendesk's one-minute margin) never cuts a record off."""
    end = datetime.now(timezone.utc).replace(microsecond=0) - timedelta(hours=1)
    fields: dict[str, Any] = {
        "seed": 5,
        "zendesk_tickets": 160,
        "intercom_conversations": 160,
        "surveymonkey_surveys": 2,
        "surveymonkey_responses_per_survey": 120,
        "start": end - timedelta(days=20),
        "end": end,
    }
    fields.update(overrides)
    return EmulatorConfig(**fields)


def integration_configs(emulator: Emulator, root_url: str) -> dict[str, dict[str, str]]:
    """Good credentials for each vendor of `emulator`, served at `root_url`."""
    config = emulator.config
    urls = emulator.base_urls(root_url)
    return {
        "zendesk": {
            "subdomain": config.zendesk_subdomain,
            "email": config.zendesk_email,
            "api_token": config.zendesk_token,
            "base_url": urls["zendesk"],
        },
        "intercom": {"access_token": config.intercom_token, "base_url": urls["intercom"]},
        "surveymonkey": {"access_token": config.surveymonkey_token, "base_url": urls["surveymonkey"]},
    }


def cli_environment(emulator: Emulator, root_url: str, db_path: Path, home: Path) -> dict[str, str]:
    """The environment `python -m feedback_sources` reads its credentials and database from (nothing else leaks in:
    no keyring, no developer HOME, no vendor variables of the calling shell)."""
    configs = integration_configs(emulator, root_url)
    env = {key: value for key, value in os.environ.items() if not key.startswith(("ZENDESK_", "INTERCOM_", "SURVEYMONKEY_"))}
    env.update(
        {
            "ZENDESK_SUBDOMAIN": configs["zendesk"]["subdomain"],
            "ZENDESK_EMAIL": configs["zendesk"]["email"],
            "ZENDESK_API_TOKEN": configs["zendesk"]["api_token"],
            "ZENDESK_BASE_URL": configs["zendesk"]["base_url"],
            "INTERCOM_ACCESS_TOKEN": configs["intercom"]["access_token"],
            "INTERCOM_BASE_URL": configs["intercom"]["base_url"],
            "SURVEYMONKEY_ACCESS_TOKEN": configs["surveymonkey"]["access_token"],
            "SURVEYMONKEY_BASE_URL": configs["surveymonkey"]["base_url"],
            "FEEDBACK_DB": str(db_path),
            "HOME": str(home),
            "XDG_CACHE_HOME": str(home / ".cache"),
            "XDG_DATA_HOME": str(home / ".local" / "share"),
            "PYTHON_KEYRING_BACKEND": "keyring.backends.fail.Keyring",
            "PYTHONPATH": os.pathsep.join([str(ROOT), env.get("PYTHONPATH", "")]).rstrip(os.pathsep),
            "PYTHONUNBUFFERED": "1",
        }
    )
    return env


CLI = (sys.executable, "-m", "feedback_sources")


# -- ground truth and what the store holds -----------------------------------------------------------------------------


def ground_truth(emulator: Emulator, start: datetime | None = None, end: datetime | None = None) -> dict[str, list[str]]:
    """The ids each vendor holds for records created in [start, end), as sorted strings (deleted tickets excluded)."""
    return {
        "zendesk": sorted(str(i) for i in emulator.zendesk.tickets_in_range(start, end)),
        "intercom": sorted(emulator.intercom.conversations_in_range(start, end)),
        "surveymonkey": sorted(emulator.surveymonkey.responses_in_range(start=start, end=end)),
    }


def stored_keys(conn: sqlite3.Connection) -> list[tuple[str, str]]:
    return [(source, source_id) for source, source_id in conn.execute("SELECT source, source_id FROM feedback")]


def stored_ids(conn: sqlite3.Connection, sources: Iterable[str] = SOURCES) -> dict[str, list[str]]:
    keys = stored_keys(conn)
    return {source: sorted(i for s, i in keys if s == source) for source in sources}


def duplicate_keys(conn: sqlite3.Connection) -> list[tuple[str, str]]:
    """Keys stored more than once. Tuples, not a set of generator expressions (which never has duplicates)."""
    keys = stored_keys(conn)
    seen: set[tuple[str, str]] = set()
    duplicates = []
    for key in keys:
        if key in seen:
            duplicates.append(key)
        seen.add(key)
    distinct = conn.execute("SELECT COUNT(*) - COUNT(DISTINCT source || char(0) || source_id) FROM feedback").fetchone()[0]
    assert distinct == len(duplicates)
    return duplicates


def rows_without_sync_time(conn: sqlite3.Connection) -> dict[tuple[str, str], tuple[Any, ...]]:
    """Every stored row by key, minus `synced_at` (which records when a record was last seen, not what it says)."""
    columns = [row[1] for row in conn.execute("PRAGMA table_info(feedback)") if row[1] not in ("id", "synced_at")]
    return {
        (row[0], row[1]): tuple(row)
        for row in conn.execute(f"SELECT source, source_id, {', '.join(columns)} FROM feedback")
    }


def latest_runs(conn: sqlite3.Connection) -> dict[str, dict[str, Any]]:
    """The newest sync_runs row of each source."""
    conn.row_factory = sqlite3.Row
    try:
        rows = conn.execute("SELECT * FROM sync_runs WHERE id IN (SELECT MAX(id) FROM sync_runs GROUP BY source)").fetchall()
    finally:
        conn.row_factory = None
    return {row["source"]: dict(row) for row in rows}


def memory_backed_directory() -> str | None:
    """A RAM-backed temporary directory when the system has one (Linux's /dev/shm), else the default temp dir.

    For tests that create many small databases: the store's logic is the same on any disk, and a disk's fsyncs
    would only add seconds.
    """
    shm = Path("/dev/shm")
    return str(shm) if shm.is_dir() and os.access(shm, os.W_OK) else None


