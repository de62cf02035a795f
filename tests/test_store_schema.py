"""The store package: one schema for every table, safe on stores earlier versions left behind, and no import of the
app's domain modules (they import the store, never the other way round)."""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
from pathlib import Path

from damage_support import old_store

from feedback_sources.store import MIGRATIONS, SCHEMA_VERSION, Store

# The tables accounts.py, insights.py, webhooks/events.py and jobs.py created on first use before they were part of
# the schema, as those versions created them.
LAZY_TABLES = {
    "account_merges": """CREATE TABLE IF NOT EXISTS account_merges (
        alias TEXT PRIMARY KEY, account TEXT NOT NULL CHECK (account <> alias), created_at TEXT NOT NULL
    ) WITHOUT ROWID""",
    "saved_themes": """CREATE TABLE IF NOT EXISTS saved_themes (
        id INTEGER PRIMARY KEY, name TEXT NOT NULL UNIQUE CHECK (name <> ''), query TEXT NOT NULL CHECK (query <> ''),
        created_at TEXT NOT NULL)""",
    "sync_settings": "CREATE TABLE IF NOT EXISTS sync_settings (key TEXT PRIMARY KEY, value TEXT NOT NULL)",
    "webhook_counters": """CREATE TABLE IF NOT EXISTS webhook_counters (
        source TEXT NOT NULL, day TEXT NOT NULL, verdict TEXT NOT NULL, count INTEGER NOT NULL DEFAULT 0,
        PRIMARY KEY (source, day, verdict)) WITHOUT ROWID""",
}
SCHEMA_TABLES = {"account_merges", "saved_themes", "webhook_events", "webhook_fetches", "webhook_counters",
                 "webhook_receiver", "sync_jobs", "sync_settings"}


def tables(path: Path | str) -> set[str]:
    with sqlite3.connect(path) as conn:
        names = {row[0] for row in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    conn.close()
    return names


def test_importing_the_store_imports_no_domain_module() -> None:
    code = ("import sys, json, feedback_sources.store; "
            "print(json.dumps(sorted(m for m in sys.modules if m.startswith('feedback_sources'))))")
    loaded = json.loads(subprocess.run([sys.executable, "-c", code], check=True, capture_output=True,
                                       text=True).stdout)
    allowed = {"feedback_sources", "feedback_sources.models", "feedback_sources.search", "feedback_sources.sentiment"}
    assert [m for m in loaded if m not in allowed and not m.startswith("feedback_sources.store")] == []


def test_a_new_store_has_every_table_of_the_app(tmp_path: Path) -> None:
    with Store(tmp_path / "new.db") as store:
        assert store.schema_version == SCHEMA_VERSION == len(MIGRATIONS)
    assert SCHEMA_TABLES <= tables(tmp_path / "new.db")


def test_a_store_whose_tables_were_made_on_first_use_migrates_and_keeps_their_rows(tmp_path: Path) -> None:
    db = old_store(tmp_path / "old.db", 9)
    with sqlite3.connect(db) as conn:
        for statement in LAZY_TABLES.values():
            conn.execute(statement)
        conn.execute("INSERT INTO account_merges VALUES ('b.com', 'a.com', '2025-01-01T00:00:00Z')")
        conn.execute("INSERT INTO saved_themes (name, query, created_at) VALUES ('Exports', 'export', 'x')")
        conn.execute("INSERT INTO sync_settings VALUES ('schedule', '{}')")
    conn.close()
    with Store(db) as store:
        assert store.schema_version == SCHEMA_VERSION
        assert store.migration_backup is not None and store.migration_backup.exists()
        assert store.query("SELECT alias, account FROM account_merges") == [{"alias": "b.com", "account": "a.com"}]
        assert store.query("SELECT name FROM saved_themes") == [{"name": "Exports"}]
        assert store.query("SELECT value FROM sync_settings") == [{"value": "{}"}]
        assert store.count() == 2
    assert SCHEMA_TABLES <= tables(db)


def test_a_store_without_those_tables_gains_them(tmp_path: Path) -> None:
    db = old_store(tmp_path / "old.db", 9)
    assert not SCHEMA_TABLES & tables(db)
    with Store(db) as store:
        assert store.schema_version == SCHEMA_VERSION
    assert SCHEMA_TABLES <= tables(db)


def test_the_frozen_migrations_agree_with_the_source_registry() -> None:
    from feedback_sources.sources import vendor_type_index_source

    assert f"WHERE source = '{vendor_type_index_source()}'" in MIGRATIONS[6]
