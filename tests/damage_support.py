"""Damaged and unusable stores, made from a real one: what the store, CLI, app and browser tests of damage share.

Every kind starts from a healthy store written by the real sync (demo emulator) and closed, so its WAL is folded in
and the file on disk is the whole store. `snapshot` reads what is at the path afterwards (bytes, or a folder's
listing), so a test can assert that a command wrote nothing into it.
"""

from __future__ import annotations

import os
import random
import shutil
import sqlite3
import stat
import subprocess
import sys
from pathlib import Path

from feedback_sources.cli import main
from feedback_sources.store import MIGRATIONS, Store

ROOT = Path(__file__).resolve().parent.parent
PAGE = 4096
SEED = 20261204

# Kinds any process can see; the read-only ones are real only for a process without CAP_DAC_OVERRIDE (see run_cli).
FILE_KINDS = ("truncated_half", "truncated_to_50_bytes", "garbage_header", "garbage_pages", "directory")
READ_ONLY_KINDS = ("read_only_file", "read_only_folder")
KINDS = FILE_KINDS + READ_ONLY_KINDS
# What a command says for each kind (lower case), besides "what to do".
EXPECTED = {
    "truncated_half": "is damaged: it is truncated",
    "truncated_to_50_bytes": "is damaged: it is truncated: 50 bytes",
    "garbage_header": "is damaged: its first bytes are not a sqlite header",
    "garbage_pages": "is damaged: sqlite",
    "directory": "is a folder, not a database file",
    "read_only_file": "is read-only",
    "read_only_folder": "is read-only, and sqlite needs to create",
}


def build_real_store(path: Path, days: int = 60) -> Path:
    """A store filled by the real CLI sync against the demo emulator (a few hundred records over many pages)."""
    assert main(["sync", "--demo", "--db", str(path), "--days", str(days)]) == 0
    with Store(path) as store:
        assert store.count() > 100
    assert not Path(f"{path}-wal").exists()  # closed: the WAL was checkpointed into the file and removed
    return path


def old_store(path: Path, version: int) -> Path:
    """A store as an older Feedback Hub left it: the first `version` migrations, two records and a tag."""
    path.parent.mkdir(parents=True, exist_ok=True)
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA journal_mode = WAL")
    for number in range(version):
        conn.executescript(f"BEGIN;\n{MIGRATIONS[number]}\nPRAGMA user_version = {number + 1};\nCOMMIT;")
    for source_id, content in (("41", "invoices export twice"), ("42", "dark mode please")):
        conn.execute(
            "INSERT INTO feedback (source, source_id, title, content, category, created_at, updated_at, synced_at, "
            "tags) VALUES ('zendesk', ?, 'Old', ?, 'bug_report', '2025-01-01T00:00:00Z', '2025-01-01T00:00:00Z', "
            "'2025-01-01T00:00:00Z', '[\"billing\"]')",
            (source_id, content),
        )
    conn.execute("INSERT INTO feedback_tags (feedback_id, tag) SELECT id, 'billing' FROM feedback")
    conn.close()
    return path


def damage(path: Path, kind: str, template: Path) -> None:
    """Put a store of the given kind at `path` (its folder exists), made from the healthy `template`."""
    data = template.read_bytes()
    if kind == "directory":
        path.mkdir()
        (path / "something.txt").write_text("a folder where the store should be")
        return
    if kind == "truncated_half":
        # Whole pages, so only the header's page count tells: what a copy cut short or a full disk leaves.
        data = data[: (len(data) // 2 // PAGE) * PAGE]
    elif kind == "truncated_to_50_bytes":
        data = data[:50]
    elif kind == "garbage_header":
        data = random.Random(SEED).randbytes(100) + data[100:]
    elif kind == "garbage_pages":
        data = overwrite_middle_pages(data)
    path.write_bytes(data)
    if kind == "read_only_file":
        path.chmod(stat.S_IRUSR | stat.S_IRGRP | stat.S_IROTH)
    elif kind == "read_only_folder":
        path.parent.chmod(stat.S_IRUSR | stat.S_IXUSR | stat.S_IRGRP | stat.S_IXGRP | stat.S_IROTH | stat.S_IXOTH)


def overwrite_middle_pages(data: bytes, pages: int = 3) -> bytes:
    """`pages` consecutive pages from the middle of the file replaced by seeded random bytes; the header and the
    schema on page 1 stay intact, so only SQLite's own checks can tell."""
    count = len(data) // PAGE
    assert count >= 8, "the template store is too small to damage in the middle"
    first = count // 2
    damaged = bytearray(data)
    damaged[first * PAGE : (first + pages) * PAGE] = random.Random(SEED).randbytes(pages * PAGE)
    return bytes(damaged)


def damage_unseen(db: Path, fraction: float = 0.4) -> None:
    """Damage the open check cannot have seen: pages overwritten after a passed check, with the file's size and
    modification time put back, so the check remembered for that file is trusted. What a command meets then is
    what it would meet past the bound on a store too big to check whole on open."""
    with Store(db) as store:
        assert store.open_check in ("full", "remembered")
    before = db.stat()
    data = db.read_bytes()
    db.write_bytes(overwrite_middle_pages(data, pages=int(len(data) // PAGE * fraction)))
    os.utime(db, ns=(before.st_atime_ns, before.st_mtime_ns))
    with Store(db) as store:
        assert store.open_check == "remembered"


def restore_permissions(path: Path) -> None:
    """Make a read-only folder writable again so pytest can clean it up."""
    path.parent.chmod(0o755)
    if path.exists() and not path.is_dir():
        path.chmod(0o644)


def snapshot(path: Path) -> object:
    """What is at `path` and beside it: a file's bytes, a folder's listing, and which -wal/-shm/-journal exist."""
    if path.is_dir():
        content: object = sorted(p.name for p in path.iterdir())
    else:
        content = path.read_bytes() if path.exists() else None
    companions = sorted(p.name for p in path.parent.iterdir() if p.name.startswith(path.name) and p != path)
    return content, companions


def needs_unprivileged_process() -> bool:
    return os.geteuid() == 0


def run_cli(args: list[str], *, cwd: Path, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    """`python -m feedback_sources ARGS` in a subprocess. As root, without the capabilities that let root ignore
    file permissions (setpriv drops them from the bounding set), so a read-only file or folder is read-only to it."""
    command = [sys.executable, "-m", "feedback_sources", *args]
    if needs_unprivileged_process():
        setpriv = shutil.which("setpriv")
        assert setpriv is not None, "util-linux setpriv is needed to run as root without CAP_DAC_OVERRIDE"
        command = [setpriv, "--bounding-set=-dac_override,-dac_read_search", *command]
    env = {**os.environ, "PYTHONPATH": str(ROOT), "HOME": str(cwd)}
    return subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)


