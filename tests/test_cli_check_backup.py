"""`check` and `backup`: the full check's verdict and exit code, and a consistent copy of the store, taken even while
a sync writes to it."""

from __future__ import annotations

import io
import re
import shutil
import sqlite3
import threading
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from damage_support import build_real_store, damage, snapshot
from helpers import wait_for

from feedback_sources.cli import main
from feedback_sources.models import NormalizedRecord
from feedback_sources.store import Store, check_store


@pytest.fixture(scope="module")
def template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_real_store(tmp_path_factory.mktemp("template") / "feedback.db")


@pytest.fixture
def db(template: Path, tmp_path: Path) -> Path:
    path = tmp_path / "store" / "feedback.db"
    path.parent.mkdir()
    shutil.copyfile(template, path)
    return path


def run(*args: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    code = main(list(args), out=out, err=err)
    return code, out.getvalue(), err.getvalue()


def rows(path: Path) -> tuple[list[tuple[object, ...]], list[tuple[object, ...]], int]:
    """Records, tags and schema version, read straight from the file."""
    with sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True) as conn:
        records = conn.execute("SELECT * FROM feedback ORDER BY id").fetchall()
        tags = conn.execute("SELECT * FROM feedback_tags ORDER BY feedback_id, tag").fetchall()
        version = int(conn.execute("PRAGMA user_version").fetchone()[0])
    conn.close()
    return records, tags, version


def test_check_of_a_sound_store_says_ok_for_every_part(db: Path) -> None:
    before = snapshot(db)
    code, out, err = run("check", "--db", str(db))
    assert (code, err) == (0, "")
    records = rows(db)[0]
    assert f"{len(records):,} records" in out
    for part in ("header", "integrity", "foreign keys", "full-text index"):
        assert re.search(rf"^  {part} +ok$", out, re.MULTILINE), out
    assert "verdict: OK, the store is sound" in out
    assert snapshot(db)[0] == before[0]


def test_check_finds_random_pages_in_the_middle_and_changes_nothing(db: Path, template: Path) -> None:
    db.unlink()
    damage(db, "garbage_pages", template)
    before = snapshot(db)
    code, out, _ = run("check", "--db", str(db))
    assert code == 1
    assert re.search(r"^  integrity +DAMAGED: \d+ problem\(s\)$", out, re.MULTILINE), out
    assert "verdict: DAMAGED" in out and "what to do:" in out and "restore a backup" in out
    assert snapshot(db) == before


def test_check_reports_an_index_out_of_step_with_its_rows(db: Path) -> None:
    with Store(db) as store:
        store.conn.execute("DELETE FROM feedback_fts WHERE rowid = (SELECT MIN(id) FROM feedback)")
    report = check_store(db)
    assert report.damaged
    assert [p.name for p in report.parts if p.problems] == ["full-text index"]
    code, out, _ = run("check", "--db", str(db))
    assert code == 1 and "full-text index  DAMAGED" in out


def test_check_of_a_missing_store_creates_nothing(tmp_path: Path) -> None:
    missing = tmp_path / "nowhere" / "feedback.db"
    code, out, err = run("check", "--db", str(missing))
    assert code == 1 and "There is no store at" in err and "what to do:" in err
    assert not missing.parent.exists()


def test_backup_beside_the_store_is_a_dated_self_contained_copy(db: Path) -> None:
    code, out, err = run("backup", "--db", str(db))
    assert code == 0, err
    copies = sorted(db.parent.glob("feedback.db.*.bak"))
    assert len(copies) == 1 and re.fullmatch(r"feedback\.db\.\d{8}-\d{6}\.bak", copies[0].name)
    assert f"Backed up {len(rows(db)[0]):,} records to {copies[0]}" in out and "quick_check ok" in out
    assert rows(copies[0]) == rows(db)
    # One file: a copy out of WAL mode opens without leaving -wal or -shm beside it.
    assert sorted(p.name for p in db.parent.iterdir() if p.name.startswith(copies[0].name)) == [copies[0].name]
    assert check_store(copies[0]).damaged is False


def test_backup_to_a_path_refuses_to_overwrite(db: Path, tmp_path: Path) -> None:
    target = tmp_path / "mine.bak"
    assert run("backup", "--db", str(db), str(target))[0] == 0
    assert rows(target) == rows(db)
    kept = target.read_bytes()
    code, _, err = run("backup", "--db", str(db), str(target))
    assert code == 2 and "already exists" in err
    assert target.read_bytes() == kept


def test_a_restored_backup_is_a_working_store(db: Path, tmp_path: Path) -> None:
    target = tmp_path / "copy.bak"
    assert run("backup", "--db", str(db), str(target))[0] == 0
    restored = tmp_path / "restored" / "feedback.db"
    restored.parent.mkdir()
    shutil.copyfile(target, restored)
    code, out, _ = run("status", "--demo", "--db", str(restored))
    assert code == 0 and "FRESH" in out


# -- a backup while a sync writes ------------------------------------------------------------------------------------

PAGE = 50


def page_of(number: int) -> list[NormalizedRecord]:
    start = datetime(2026, 1, 1, tzinfo=timezone.utc)
    return [
        NormalizedRecord(source="zendesk", source_id=f"w{number}-{i}", title=f"page {number}", content=f"word{i} text",
                         created_at=start + timedelta(minutes=number * PAGE + i))
        for i in range(PAGE)
    ]


@pytest.fixture
def writer(tmp_path: Path) -> Iterator[tuple[Path, threading.Event, list[int]]]:
    """A sync-like writer on its own connection: pages of records, each committed with its cursor (the page
    number), the way sync commits a page and its resume position together."""
    path = tmp_path / "busy" / "feedback.db"
    with Store(path) as store:
        store.begin_state("zendesk", "tickets", {}, {"page": 0})
    stop = threading.Event()
    written: list[int] = []

    def write() -> None:
        with Store(path) as store:
            number = 0
            while not stop.is_set() and number < 2000:
                number += 1
                store.upsert_records(page_of(number), cursor_update=("zendesk", "tickets", {"page": number}))
                written.append(number)

    thread = threading.Thread(target=write)
    thread.start()
    try:
        yield path, stop, written
    finally:
        stop.set()
        thread.join(timeout=60)


def test_backups_taken_while_a_sync_writes_are_each_one_consistent_moment(
    writer: tuple[Path, threading.Event, list[int]], tmp_path: Path
) -> None:
    path, stop, written = writer
    seen: list[int] = []
    for attempt in range(5):
        before = len(written)
        wait_for(lambda: len(written) >= before + 3, timeout=60)  # some pages land between two backups
        target = tmp_path / f"copy-{attempt}.bak"
        code, out, err = run("backup", "--db", str(path), str(target))
        assert code == 0, err
        with sqlite3.connect(target) as copy:
            records = copy.execute("SELECT COUNT(*) FROM feedback").fetchone()[0]
            cursor = copy.execute("SELECT cursor FROM sync_state").fetchone()[0]
        copy.close()
        page = int(re.search(r'"page": (\d+)', cursor).group(1))
        # Every page in the copy came with its cursor, and no cursor without its page: one commit's view.
        assert records == page * PAGE
        report = check_store(target)
        assert not report.damaged and report.complete, report
        seen.append(page)
    stop.set()
    assert seen == sorted(seen) and len(set(seen)) == len(seen)  # the sync kept writing through every backup
    assert written[-1] > seen[-1]
