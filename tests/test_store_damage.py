"""A damaged or unusable store is detected before anything is written to it.

Truncated files, an overwritten header, random bytes over pages in the middle of a real store, a folder where the
file should be, a read-only file and a read-only folder: every CLI command that uses the store says what is wrong
and what to do, exits non-zero, never shows a traceback, never says "fresh", and leaves the file's bytes (and the
folder beside it) exactly as they were. The open check stays cheap; the full checks are the `check` command's.
"""

from __future__ import annotations

import io
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from damage_support import (
    EXPECTED,
    FILE_KINDS,
    READ_ONLY_KINDS,
    build_real_store,
    damage,
    damage_unseen,
    restore_permissions,
    run_cli,
    snapshot,
)
from helpers import free_port

from feedback_sources.cli import main
from feedback_sources.store import Store, StoreDamaged, StoreUnavailable, header_problem

# Every command that opens the store, with what it needs besides --db.
COMMANDS = {
    "sync": ["sync", "--demo", "--days", "3"],
    "status": ["status", "--demo"],
    "export": ["export", "--demo", "--csv", "{tmp}/out.csv"],
    "backup": ["backup", "--demo", "{tmp}/copy.bak"],
    "check": ["check", "--demo"],
    "serve-webhooks": ["serve-webhooks", "--demo", "--port", "{port}"],
}


@pytest.fixture(scope="module")
def template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_real_store(tmp_path_factory.mktemp("template") / "feedback.db")


@pytest.fixture
def store_dir(tmp_path: Path) -> Iterator[Path]:
    folder = tmp_path / "store"
    folder.mkdir()
    folder.chmod(0o755)
    tmp_path.chmod(0o755)  # an unprivileged subprocess must reach it
    yield folder
    restore_permissions(folder / "feedback.db")


def command(name: str, db: Path, tmp: Path) -> list[str]:
    args = [part.format(tmp=tmp, port=free_port()) for part in COMMANDS[name]]
    return [*args, "--db", str(db)]


def run_in_process(args: list[str]) -> tuple[int, str]:
    out, err = io.StringIO(), io.StringIO()
    code = main(args, out=out, err=err)
    return code, out.getvalue() + err.getvalue()


def assert_refused(kind: str, code: int, output: str) -> None:
    said = output.lower()
    assert code == 1, output
    assert EXPECTED[kind] in said, output
    assert "what to do:" in said, output
    assert "traceback" not in said, output
    assert "fresh" not in said, output  # `status` never calls a source fresh on a store it cannot read


@pytest.mark.parametrize("name", [n for n in COMMANDS if n != "serve-webhooks"])
@pytest.mark.parametrize("kind", FILE_KINDS)
def test_every_command_refuses_a_damaged_store_and_writes_nothing(
    template: Path, store_dir: Path, tmp_path: Path, kind: str, name: str
) -> None:
    db = store_dir / "feedback.db"
    damage(db, kind, template)
    before = snapshot(db)
    code, output = run_in_process(command(name, db, tmp_path))
    assert_refused(kind, code, output)
    assert snapshot(db) == before
    assert not (tmp_path / "copy.bak").exists()


@pytest.mark.parametrize("kind", FILE_KINDS + READ_ONLY_KINDS)
def test_the_webhook_receiver_does_not_start_on_a_damaged_or_read_only_store(
    template: Path, store_dir: Path, tmp_path: Path, kind: str
) -> None:
    db = store_dir / "feedback.db"
    damage(db, kind, template)
    before = snapshot(db)
    # A subprocess with a timeout: a receiver that started anyway would serve until killed.
    result = run_cli(command("serve-webhooks", db, tmp_path), cwd=tmp_path, timeout=60)
    assert_refused(kind, result.returncode, result.stdout + result.stderr)
    assert snapshot(db) == before


@pytest.mark.parametrize("name", [n for n in COMMANDS if n != "serve-webhooks"])
@pytest.mark.parametrize("kind", READ_ONLY_KINDS)
def test_every_command_refuses_a_read_only_store_and_writes_nothing(
    template: Path, store_dir: Path, tmp_path: Path, kind: str, name: str
) -> None:
    db = store_dir / "feedback.db"
    damage(db, kind, template)
    before = snapshot(db)
    result = run_cli(command(name, db, tmp_path), cwd=tmp_path)
    assert_refused(kind, result.returncode, result.stdout + result.stderr)
    assert snapshot(db) == before
    if name == "check":  # sound as far as it could be read: the verdict says so, then why it cannot be used
        assert "header           ok" in result.stdout and "integrity        ok" in result.stdout, result.stdout


def test_the_same_commands_succeed_on_the_healthy_store(template: Path, store_dir: Path, tmp_path: Path) -> None:
    """The control: each refusal above comes from the damage, not from the command or its arguments."""
    db = store_dir / "feedback.db"
    shutil.copyfile(template, db)
    for name in COMMANDS:
        if name == "serve-webhooks":
            continue
        code, output = run_in_process(command(name, db, tmp_path))
        assert code == 0, (name, output)
        assert "what to do" not in output.lower()
    code, output = run_in_process(command("status", db, tmp_path))
    assert "FRESH" in output


def test_damage_is_a_typed_error_with_a_hint(template: Path, store_dir: Path) -> None:
    db = store_dir / "feedback.db"
    damage(db, "garbage_pages", template)
    with pytest.raises(StoreDamaged) as raised:
        Store(db)
    assert raised.value.path == str(db)
    assert "quick_check" in raised.value.message or "malformed" in raised.value.message
    assert f"check --db {db}" in raised.value.hint and "restore a backup" in raised.value.hint
    folder = store_dir / "other.db"
    folder.mkdir()
    with pytest.raises(StoreUnavailable, match="is a folder, not a database file"):
        Store(folder)


def test_a_truncated_file_is_told_from_its_header_alone(template: Path, store_dir: Path) -> None:
    db = store_dir / "feedback.db"
    damage(db, "truncated_half", template)
    problem = header_problem(db)
    assert problem is not None and problem.startswith("it is truncated")
    # An empty file is a store SQLite has not written yet, not a damaged one.
    empty = store_dir / "new.db"
    empty.write_bytes(b"")
    assert header_problem(empty) is None
    with Store(empty) as store:
        assert store.count() == 0


def test_opening_does_not_run_the_full_checks_and_check_does(template: Path, store_dir: Path) -> None:
    """Damage only the full checks see (the full-text index out of step with the rows, a tag row for a missing
    record): opening stays cheap and succeeds, `check` finds both and exits 1."""
    db = store_dir / "feedback.db"
    shutil.copyfile(template, db)
    with Store(db) as store:
        assert store.open_check == "full"  # the whole quick_check fits the open bound on a store this size
        # Raw SQL past the store's own upkeep: the full-text index keeps the old words of this row.
        store.conn.execute("UPDATE feedback SET content = 'words the index never saw' WHERE id = 1")
        store.conn.execute("PRAGMA foreign_keys = OFF")
        store.conn.execute("INSERT INTO feedback_tags (feedback_id, tag) VALUES (99999999, 'orphan')")
    with Store(db) as store:
        assert store.open_check in ("full", "remembered")
    with Store(db) as store:
        assert store.open_check == "remembered"  # unchanged file: the passed check is not paid for again
    before = snapshot(db)
    code, output = run_in_process(["check", "--db", str(db)])
    assert code == 1, output
    assert "foreign keys     DAMAGED: 1 problem(s)" in output
    assert "feedback_tags row" in output
    assert "full-text index  not checked: the store is already damaged" in output
    assert "verdict: DAMAGED" in output and "what to do:" in output
    assert snapshot(db) == before
    with Store(db) as store:
        store.conn.execute("DELETE FROM feedback_tags WHERE feedback_id = 99999999")
    code, output = run_in_process(["check", "--db", str(db)])
    assert code == 1, output
    assert "full-text index  DAMAGED" in output and "foreign keys     ok" in output


@pytest.mark.parametrize("name", ["status", "export"])
def test_damage_met_in_the_middle_of_a_command_gets_the_same_message(
    template: Path, store_dir: Path, tmp_path: Path, name: str
) -> None:
    db = store_dir / "feedback.db"
    shutil.copyfile(template, db)
    damage_unseen(db)
    before = snapshot(db)
    code, output = run_in_process(command(name, db, tmp_path))
    assert code == 1, output
    assert "is damaged: sqlite reports" in output.lower() and "what to do:" in output
    assert "traceback" not in output.lower() and "fresh" not in output.lower()
    assert snapshot(db) == before
