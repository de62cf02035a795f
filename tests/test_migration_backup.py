"""An open that migrates an existing store backs it up first, beside it, keeps only the newest few such copies, and
says so; a new store or one already current takes none. Written against MIGRATIONS as it stands: the list grows."""

from __future__ import annotations

import io
import os
import sqlite3
from pathlib import Path

import pytest
from damage_support import old_store

from feedback_sources.cli import main
from feedback_sources.store import KEEP_MIGRATION_BACKUPS, SCHEMA_VERSION, Store


def contents(path: Path) -> tuple[int, list[tuple[object, ...]], list[tuple[object, ...]]]:
    with sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True) as conn:
        version = int(conn.execute("PRAGMA user_version").fetchone()[0])
        records = conn.execute("SELECT source, source_id, content, created_at FROM feedback ORDER BY id").fetchall()
        tags = conn.execute("SELECT feedback_id, tag FROM feedback_tags ORDER BY 1, 2").fetchall()
    conn.close()
    return version, records, tags


def backups(path: Path) -> list[str]:
    return sorted(p.name for p in path.parent.glob(f"{path.name}.before-migration-*.bak"))


@pytest.mark.parametrize("version", sorted({1, SCHEMA_VERSION - 1}))
def test_a_sync_that_migrates_backs_the_old_store_up_first_and_says_so(tmp_path: Path, version: int) -> None:
    db = old_store(tmp_path / "store" / "feedback.db", version)
    before = contents(db)
    out, err = io.StringIO(), io.StringIO()
    assert main(["sync", "--demo", "--days", "2", "--db", str(db)], out=out, err=err) == 0, err.getvalue()
    copy = db.parent / f"feedback.db.before-migration-{SCHEMA_VERSION}.bak"
    assert f"backed up to {copy}" in err.getvalue()
    assert backups(db) == [copy.name]
    assert contents(copy) == before  # the store exactly as it was, at its old schema
    with Store(db) as store:
        assert store.schema_version == SCHEMA_VERSION
        assert {("zendesk", "41"), ("zendesk", "42")} <= {(r["source"], r["source_id"]) for r in store.rows(limit=None)}


def test_only_the_newest_migration_backups_are_kept(tmp_path: Path) -> None:
    db = old_store(tmp_path / "store" / "feedback.db", SCHEMA_VERSION - 1)
    stale = [db.parent / f"feedback.db.before-migration-{n}.bak" for n in range(1, KEEP_MIGRATION_BACKUPS + 2)]
    for age, path in enumerate(reversed(stale), start=1):
        path.write_bytes(b"an older copy")
        moment = 1_700_000_000 - age * 86_400
        os.utime(path, (moment, moment))
    other = db.parent / "notes.before-migration-1.bak"  # another file's copies are not this store's to prune
    other.write_bytes(b"keep me")
    with Store(db) as store:
        assert store.migration_backup == db.parent / f"feedback.db.before-migration-{SCHEMA_VERSION}.bak"
    kept = backups(db)
    assert len(kept) == KEEP_MIGRATION_BACKUPS
    assert f"feedback.db.before-migration-{SCHEMA_VERSION}.bak" in kept
    newest_stale = sorted(stale, key=lambda p: p.stat().st_mtime if p.exists() else 0)[-(KEEP_MIGRATION_BACKUPS - 1):]
    assert set(kept) == {f"feedback.db.before-migration-{SCHEMA_VERSION}.bak", *(p.name for p in newest_stale)}
    assert other.read_bytes() == b"keep me"


def test_a_new_or_current_store_takes_no_backup(tmp_path: Path) -> None:
    db = tmp_path / "store" / "feedback.db"
    with Store(db) as store:
        assert store.migration_backup is None  # new: nothing to lose
    with Store(db) as store:
        assert store.migration_backup is None  # current: no migration
    assert backups(db) == []


def test_a_backup_that_cannot_be_written_stops_the_migration(tmp_path: Path) -> None:
    db = old_store(tmp_path / "store" / "feedback.db", SCHEMA_VERSION - 1)
    before = contents(db)
    # A folder where the copy would go: the backup fails, so the store must stay at its old schema.
    (db.parent / f"feedback.db.before-migration-{SCHEMA_VERSION}.bak").mkdir()
    out, err = io.StringIO(), io.StringIO()
    assert main(["status", "--db", str(db)], out=out, err=err) == 1
    assert "could not be backed up" in err.getvalue() and "Nothing was changed" in err.getvalue()
    assert contents(db) == before
