"""Opening a store: default paths, the checks made before anything is written (damage, availability), the typed
errors they raise, migration with a backup first, transactions, and the Store class that joins the writers and
readers of records.py, state.py, queries.py and the *_sql.py modules of each concern.
"""

from __future__ import annotations

import glob
import logging
import os
import shlex
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from platformdirs import user_data_dir

from .accounts_sql import AccountTables
from .health_sql import HealthReads
from .insights_sql import DemandReads
from .jobs_sql import JobTables
from .overrides_sql import OverrideTables
from .queries import Queries
from .search_sql import SearchReads
from .records import RecordWrites
from .rules_sql import RuleTables
from .schema import MIGRATIONS, SCHEMA_VERSION, _statements
from .state import SyncBookkeeping
from .themes_sql import ThemeTables
from .webhooks_sql import WebhookTables

if TYPE_CHECKING:
    import sqlite_utils


APP_NAME = "feedback-hub"
BUSY_TIMEOUT_MS = 15_000


def default_db_path(demo: bool = False) -> Path:
    """`FEEDBACK_DB` wins; otherwise the user's data directory. Demo data lives in its own file."""
    override = os.environ.get("FEEDBACK_DEMO_DB" if demo else "FEEDBACK_DB")
    if override:
        return Path(override).expanduser()
    return Path(user_data_dir(APP_NAME, appauthor=False)) / ("demo.db" if demo else "feedback.db")


_First = TypeVar("_First")
_Second = TypeVar("_Second")

class StoreError(RuntimeError):
    """The store cannot be used as it is. `hint` says what to do about it; str() gives both."""

    def __init__(self, message: str, hint: str = "", *, path: str | None = None):
        super().__init__(message)
        self.message = message
        self.hint = hint
        self.path = path

    def __str__(self) -> str:
        return f"{self.message} {self.hint}".strip()


class StoreDamaged(StoreError):
    """The file is not a sound SQLite store: truncated, overwritten, or failing SQLite's own checks."""


class StoreUnavailable(StoreError):
    """The file cannot be opened for writing: a folder in its place, read-only, no room beside it for -wal/-shm."""


# -- damage and availability -----------------------------------------------------------------------------------------
#
# A store is checked every time it is opened, before anything is written to it: where it is (a folder in its place,
# read-only file or folder), its 100-byte header (truncated, overwritten), that its schema reads, and SQLite's
# `quick_check` bounded to OPEN_CHECK_SECONDS — the whole of a store up to about ten thousand records, the first
# part of a bigger one. The full `integrity_check`, foreign keys and the full-text index are the `check`
# command's job (check_store): minutes on a million records is no price for every page of the app to pay.
# A passed check is remembered per process for as long as the file's size and modification time stay the same, so
# the app, which opens a store per query, pays for it once per change of the file, not once per query.

SQLITE_MAGIC = b"SQLite format 3\x00"
HEADER_BYTES = 100
OPEN_CHECK_SECONDS = 0.3
KEEP_MIGRATION_BACKUPS = 3
_DAMAGED_CODES = {sqlite3.SQLITE_CORRUPT, sqlite3.SQLITE_NOTADB}
_UNAVAILABLE_CODES = {sqlite3.SQLITE_READONLY, sqlite3.SQLITE_CANTOPEN, sqlite3.SQLITE_PERM, sqlite3.SQLITE_IOERR,
                      sqlite3.SQLITE_FULL, sqlite3.SQLITE_AUTH}

_verified_lock = threading.Lock()
_verified: dict[str, tuple[int, int, int, int]] = {}  # real path -> (device, inode, size, mtime_ns) that passed

# POSIX drops every lock a process holds on a file when the process closes any descriptor of it. SQLite keeps its own
# descriptors open for that reason; a plain open() and close() of the header here, while a connection of this process
# has the file open, would drop that connection's locks: another process closing its last connection would then
# checkpoint and delete the -wal under it, and its later commits would be lost. So the header is read only while this
# process has no connection to the file (SQLite checks the pages it reads on the connections that are open).
_connections_lock = threading.Lock()
_connections: dict[str, int] = {}  # real path -> connections of this process that have it open


def _file_key(path: str | Path) -> str:
    return str(Path(path).expanduser().resolve())

log = logging.getLogger("feedback_sources.store")


def _command(path: str | Path) -> str:
    return f"python -m feedback_sources {{}} --db {shlex.quote(str(path))}"


def damaged(path: str | Path, problem: str, *, on_open: bool = True) -> StoreDamaged:
    """The one wording of a damaged store: what is wrong, what was written, and the way back. `on_open`: found
    before anything was written; otherwise met by a statement, which SQLite refused and rolled back."""
    name = Path(path).name
    check = _command(path).format("check")
    written = "Nothing was written to it." if on_open else "The statement that met it was refused and rolled back."
    return StoreDamaged(
        f"The store {path} is damaged: {problem}.",
        f"{written} Run `{check}` to see what is damaged, then restore a backup: copy a "
        f"`{name}.before-migration-*.bak` or `{name}.*.bak` file from beside it (made by `backup` or before a schema "
        f"migration) over it, or move the damaged file aside and run a full sync (`sync --full`) to rebuild it from "
        "the vendors.",
        path=str(path),
    )


def store_error_from(error: BaseException, path: str | Path) -> StoreError | None:
    """The typed error for a SQLite error that is about the file rather than the statement, else None."""
    if isinstance(error, StoreError):
        return error
    if not isinstance(error, sqlite3.Error):
        return None
    code = (getattr(error, "sqlite_errorcode", None) or 0) & 0xFF  # the primary code of an extended one
    # The texts too: some wrappers lose the code. Not "malformed" alone: FTS5 says "malformed MATCH expression".
    text = str(error)
    if code in _DAMAGED_CODES or "database disk image is malformed" in text or "file is not a database" in text:
        return damaged(path, f"SQLite reports \"{error}\"", on_open=False)
    if code in _UNAVAILABLE_CODES:
        return StoreUnavailable(
            f"The store {path} cannot be used: SQLite reports \"{error}\".",
            "Check that the file and its folder are writable and the disk has room (SQLite writes "
            f"{Path(path).name}-wal and {Path(path).name}-shm beside it), or point --db / FEEDBACK_DB at another file.",
            path=str(path),
        )
    return None


def location_problem(path: Path) -> StoreUnavailable | None:
    """Why the file cannot be opened read-write, before SQLite tries (its own error says only "unable to open")."""
    where = str(path)
    parent = path.parent
    if path.is_dir():
        return StoreUnavailable(
            f"{where} is a folder, not a database file.",
            "Move the folder out of the way, or point --db / FEEDBACK_DB at a file path.", path=where)
    if parent.exists() and not parent.is_dir():
        return StoreUnavailable(
            f"The store {where} cannot be created: {parent} is a file, not a folder.",
            "Point --db / FEEDBACK_DB at a path inside a folder.", path=where)
    if path.exists():
        if not os.access(path, os.R_OK):
            return StoreUnavailable(
                f"The store {where} cannot be read (permission denied).",
                f"Give yourself read and write access (chmod u+rw {shlex.quote(where)}).", path=where)
        if not os.access(path, os.W_OK):
            return StoreUnavailable(
                f"The store {where} is read-only.",
                f"Make it writable (chmod u+w {shlex.quote(where)}), or copy it to a writable folder and use --db.",
                path=where)
        for suffix in ("-wal", "-shm"):
            companion = Path(f"{where}{suffix}")
            if companion.exists() and not os.access(companion, os.W_OK):
                return StoreUnavailable(
                    f"{companion} beside the store is read-only; SQLite must write to it.",
                    f"Make it writable (chmod u+w {shlex.quote(str(companion))}).", path=where)
    if parent.is_dir() and not os.access(parent, os.W_OK | os.X_OK):
        return StoreUnavailable(
            f"The folder {parent} is read-only, and SQLite needs to create {path.name}-wal and {path.name}-shm "
            "beside the store (and the store itself, when it is new).",
            "Make the folder writable (chmod u+w), or move the store to a writable folder and use --db.", path=where)
    return None


def header_problem(path: Path) -> str | None:
    """What is wrong with the file's first 100 bytes and its length, read without SQLite; None when nothing is.

    An empty file is a new store (SQLite writes its header with the first table).
    """
    with _connections_lock:
        if _connections.get(_file_key(path)):
            return None  # read through a plain descriptor now, it would drop this process's SQLite locks
        try:
            size = path.stat().st_size
            with path.open("rb") as file:
                header = file.read(HEADER_BYTES)
        except FileNotFoundError:
            return None
    if size == 0:
        return None
    if len(header) < HEADER_BYTES:
        return f"it is truncated: {size} bytes, shorter than a SQLite header ({HEADER_BYTES} bytes)"
    if not header.startswith(SQLITE_MAGIC):
        return "its first bytes are not a SQLite header (the file was overwritten, or is not a Feedback Hub store)"
    page_size = int.from_bytes(header[16:18], "big")
    page_size = 65536 if page_size == 1 else page_size
    if page_size < 512 or page_size & (page_size - 1) or header[21:24] != b"\x40\x20\x20":
        return "its SQLite header is garbled (impossible page size or layout)"
    if size % page_size:
        return f"it is truncated: {size} bytes, not a whole number of {page_size}-byte pages"
    pages = int.from_bytes(header[28:32], "big")
    # The page count is valid only when written by the same change as the change counter (bytes 24 and 92), and
    # a checkpoint cut short can leave the file shorter than its header says, with the pages still in the WAL.
    wal = Path(f"{path}-wal")
    wal_holds_pages = wal.exists() and wal.stat().st_size > 0
    if header[24:28] == header[92:96] and pages * page_size > size and not wal_holds_pages:
        return f"it is truncated: {size:,} bytes where its header says {pages * page_size:,}"
    return None


def _companions(path: Path) -> list[Path]:
    return [Path(f"{path}{suffix}") for suffix in ("-wal", "-shm")]


def _remove_new_companions(path: Path, existed: list[bool]) -> None:
    """Remove the empty -wal and the -shm a read-only check of a damaged file created, so the check leaves the
    folder as it found it. A WAL with content is never touched."""
    wal, shm = _companions(path)
    if existed[0] or existed[1] or not wal.exists() or wal.stat().st_size:
        return
    wal.unlink(missing_ok=True)
    shm.unlink(missing_ok=True)


def _enter_wal(conn: sqlite3.Connection) -> None:
    """Switch a new file to WAL. The switch takes an exclusive lock without waiting on the busy timeout, so while
    another process opening the same new file reads it (its open check), it is retried up to that timeout."""
    deadline = time.monotonic() + BUSY_TIMEOUT_MS / 1000
    while True:
        try:
            conn.execute("PRAGMA journal_mode = WAL")
            return
        except sqlite3.OperationalError as error:
            if (getattr(error, "sqlite_errorcode", 0) or 0) & 0xFF != sqlite3.SQLITE_BUSY or time.monotonic() > deadline:
                raise
            time.sleep(0.01)


def _signature(path: Path) -> tuple[int, int, int, int]:
    stat = path.stat()
    return (stat.st_dev, stat.st_ino, stat.st_size, stat.st_mtime_ns)


def _bounded_quick_check(conn: sqlite3.Connection, seconds: float) -> tuple[list[str], bool]:
    """SQLite's quick_check for at most `seconds`: (problems found, whether it ran to the end)."""
    timer = threading.Timer(seconds, conn.interrupt)
    timer.start()
    try:
        rows = [str(row[0]) for row in conn.execute("PRAGMA quick_check(20)")]
    except sqlite3.OperationalError as error:
        if "interrupt" not in str(error):
            raise
        return [], False
    finally:
        timer.cancel()
        timer.join()  # an interrupt that fires after this returns could cut a later statement short
    return ([] if rows == ["ok"] else rows), True


@dataclass
class CheckResult:
    """One part of `check`: its name, what it found ([] when sound), or why it could not run."""

    name: str
    problems: list[str] = field(default_factory=list)
    skipped: str | None = None

    @property
    def ok(self) -> bool:
        return not self.problems and self.skipped is None


@dataclass
class CheckReport:
    path: str
    parts: list[CheckResult]
    schema: int | None = None
    records: int | None = None
    size: int = 0
    seconds: float = 0.0

    @property
    def damaged(self) -> bool:
        return any(part.problems for part in self.parts)

    @property
    def complete(self) -> bool:
        return all(part.skipped is None for part in self.parts)


def check_store(path: str | Path) -> CheckReport:
    """The full check of a store file, written nothing to: header, integrity_check, foreign keys, full-text index.

    Raises StoreUnavailable when there is nothing to check (no file, a folder, unreadable).
    """
    started = time.perf_counter()
    where = Path(path).expanduser()
    if not where.exists():
        raise StoreUnavailable(f"There is no store at {where}.", "Check --db / FEEDBACK_DB.", path=str(where))
    if where.is_dir():
        raise StoreUnavailable(f"{where} is a folder, not a database file.",
                               "Point --db / FEEDBACK_DB at the store's file.", path=str(where))
    if not os.access(where, os.R_OK):
        raise StoreUnavailable(f"The store {where} cannot be read (permission denied).",
                               f"Give yourself read access (chmod u+r {shlex.quote(str(where))}).", path=str(where))
    report = CheckReport(str(where), [], size=where.stat().st_size)
    names = ("integrity", "foreign keys", "full-text index")
    header = header_problem(where)
    report.parts.append(CheckResult("header", [header] if header else []))
    if header and ("not a SQLite header" in header or "garbled" in header or "shorter than" in header):
        report.parts.extend(CheckResult(name, skipped="the header is unreadable") for name in names)
        report.seconds = time.perf_counter() - started
        return report
    # Read-only for SQLite's own checks: a connection that may write would, on closing, checkpoint a leftover WAL
    # into a damaged file.
    existed = [companion.exists() for companion in _companions(where)]
    # In a read-only folder without a -shm, SQLite cannot open a WAL store even to read it; nothing can write to it
    # either (a writer needs the -wal and -shm beside it), so it is read as the immutable file it is.
    frozen = not os.access(where.parent, os.W_OK) and not existed[1]
    conn = sqlite3.connect(f"{where.resolve().as_uri()}?mode=ro{'&immutable=1' if frozen else ''}", uri=True,
                           isolation_level=None, timeout=BUSY_TIMEOUT_MS / 1000)
    try:
        try:
            report.schema = int(conn.execute("PRAGMA user_version").fetchone()[0])
            tables = {row[0] for row in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        except sqlite3.DatabaseError as error:
            if isinstance(store_error_from(error, ""), StoreUnavailable):
                report.parts.extend(CheckResult(name, skipped=f"SQLite could not open the file: {error}")
                                    for name in names)
            else:
                report.parts.append(CheckResult("integrity", [f"the schema cannot be read: {error}"]))
                report.parts.extend(CheckResult(name, skipped="the schema is unreadable") for name in names[1:])
            return report
        report.parts.append(_run_part("integrity", lambda: [
            str(row[0]) for row in conn.execute("PRAGMA integrity_check(100)") if row[0] != "ok"]))
        report.parts.append(_run_part("foreign keys", lambda: [
            f"{row[0]} row {row[1]} refers to a missing {row[2]} row"
            for row in conn.execute("PRAGMA foreign_key_check")]))
        if "feedback" in tables and not report.damaged:
            report.records = int(conn.execute("SELECT COUNT(*) FROM feedback").fetchone()[0])
    finally:
        conn.close()
        report.seconds = time.perf_counter() - started
        # Only where no other process can be using them: a damaged file, or one nobody may write to.
        if report.damaged or not os.access(where, os.W_OK):
            _remove_new_companions(where, existed)
    report.parts.append(_fts_check(where, tables, report))
    report.seconds = time.perf_counter() - started
    return report


def check_copy(path: str | Path) -> tuple[str, int]:
    """SQLite's quick_check verdict ("ok" when sound) and the records of a copy of a store (a backup just made),
    read on a read-only connection of its own."""
    target = Path(path)
    with sqlite3.connect(f"{target.resolve().as_uri()}?mode=ro", uri=True) as copy:
        verdict = str(copy.execute("PRAGMA quick_check").fetchone()[0])
        records = int(copy.execute("SELECT COUNT(*) FROM feedback").fetchone()[0])
    copy.close()
    return verdict, records


def _fts_check(where: Path, tables: set[str], report: CheckReport) -> CheckResult:
    """FTS5's integrity-check against the `feedback` rows (rank 1). It is an INSERT statement, so it needs a
    connection that may write, though it changes nothing: it runs only on a store whose other checks passed."""
    if "feedback_fts" not in tables:
        return CheckResult("full-text index", skipped="this store has no full-text index")
    if report.damaged:
        return CheckResult("full-text index", skipped="the store is already damaged")
    if not (os.access(where, os.W_OK) and os.access(where.parent, os.W_OK)):
        return CheckResult("full-text index", skipped="the file or its folder is read-only")
    conn = sqlite3.connect(where, isolation_level=None, timeout=BUSY_TIMEOUT_MS / 1000)
    try:
        return _run_part("full-text index", lambda: conn.execute(
            "INSERT INTO feedback_fts (feedback_fts, rank) VALUES ('integrity-check', 1)").fetchall())
    finally:
        conn.close()


def _run_part(name: str, run: Callable[[], list[Any]]) -> CheckResult:
    try:
        return CheckResult(name, [str(problem) for problem in run()])
    except sqlite3.DatabaseError as error:
        if isinstance(store_error_from(error, ""), StoreUnavailable):
            return CheckResult(name, skipped=f"SQLite could not read the file: {error}")
        return CheckResult(name, [f"SQLite reports \"{error}\""])


class Store(RecordWrites, SyncBookkeeping, Queries, OverrideTables, AccountTables, HealthReads, ThemeTables, JobTables,
            WebhookTables, SearchReads, DemandReads, RuleTables):
    """One SQLite file. Cheap to open: make one per action or per Streamlit rerun, never share across threads."""

    def __init__(self, path: str | Path = ":memory:", *, migrate: bool = True):
        """Open (creating when missing) and migrate. A damaged or unusable file raises StoreDamaged or
        StoreUnavailable before any connection that could write to it is made."""
        self.path = str(path)
        self.migration_backup: Path | None = None  # the copy taken before this open migrated the schema
        self.open_check = "memory"  # new | full | bounded | remembered: how far the open check went
        self._key: str | None = None
        if self.path != ":memory:":
            try:
                self._verify_file()
            except BaseException:
                self._release_key()
                raise
            self._register()
        try:
            conn = sqlite3.connect(self.path, timeout=BUSY_TIMEOUT_MS / 1000, isolation_level=None,
                                   check_same_thread=False)
        except BaseException:
            self._release_key()
            raise
        self._lock = threading.RLock()
        self._write_retries = 0
        self.conn = conn
        try:
            conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
            conn.execute("PRAGMA foreign_keys = ON")
            if self.path != ":memory:":
                _enter_wal(conn)
                conn.execute("PRAGMA synchronous = NORMAL")
            if migrate:
                self.migrate()
        except BaseException as error:
            conn.close()
            self._release_key()
            typed = store_error_from(error, self.path)
            if typed is None or typed is error:
                raise
            raise typed from error

    def _verify_file(self) -> None:
        """Where the file is, its header, its schema and a bounded quick_check, on a read-only connection."""
        file = Path(self.path).expanduser()
        problem = location_problem(file)
        if problem is not None:
            raise problem
        try:
            file.parent.mkdir(parents=True, exist_ok=True)
        except OSError as error:
            raise StoreUnavailable(
                f"The folder for the store {file} cannot be created: {error.strerror or error}.",
                "Point --db / FEEDBACK_DB at a path in a writable folder.", path=self.path) from error
        header = header_problem(file)
        if header is not None:
            raise damaged(self.path, header)
        self._register()  # the read-only check below is a connection too
        if not file.exists() or file.stat().st_size == 0:
            self.open_check = "new"
            return
        key, signature = str(file.resolve()), _signature(file)
        with _verified_lock:
            if _verified.get(key) == signature:
                self.open_check = "remembered"
                return
        # Read-only: a connection that may write would, on closing, checkpoint a leftover WAL into a damaged file.
        existed = [companion.exists() for companion in _companions(file)]
        conn = sqlite3.connect(f"{file.resolve().as_uri()}?mode=ro", uri=True, isolation_level=None,
                               timeout=BUSY_TIMEOUT_MS / 1000)
        try:
            conn.execute("SELECT name, type, rootpage, sql FROM sqlite_master").fetchall()
            problems, finished = _bounded_quick_check(conn, OPEN_CHECK_SECONDS)
        except sqlite3.Error as error:
            conn.close()
            typed = store_error_from(error, self.path)
            if typed is None:
                raise
            if isinstance(typed, StoreDamaged):
                _remove_new_companions(file, existed)
                typed = damaged(self.path, f"SQLite reports \"{error}\"")  # read-only: nothing was written
            raise typed from error
        finally:
            conn.close()
        if problems:
            _remove_new_companions(file, existed)
            raise damaged(self.path, "SQLite's quick_check found " + "; ".join(problems[:3]))
        with _verified_lock:
            _verified[key] = signature
        self.open_check = "full" if finished else "bounded"

    @cached_property
    def db(self) -> sqlite_utils.Database:
        """sqlite-utils over the same connection, made on first use: importing sqlite-utils imports pandas (when
        installed), a second of start-up that a sync or `--help` never needs."""
        import sqlite_utils

        return sqlite_utils.Database(self.conn)

    def register_function(self, name: str, arity: int, function: Callable[..., Any]) -> None:
        """A deterministic Python function callable from this connection's SQL (an export's rare cells call back into
        Python this way)."""
        self.conn.create_function(name, arity, function, deterministic=True)

    def close(self) -> None:
        self.conn.close()
        self._release_key()

    def _register(self) -> None:
        """Count this store's connections (the open check's own included) before they open: from then on no header
        read in this process closes a descriptor of the file."""
        if self._key is None:
            self._key = _file_key(self.path)
            with _connections_lock:
                _connections[self._key] = _connections.get(self._key, 0) + 1

    def _release_key(self) -> None:
        key, self._key = self._key, None
        if key is not None:
            with _connections_lock:
                left = _connections.get(key, 0) - 1
                if left > 0:
                    _connections[key] = left
                else:
                    _connections.pop(key, None)

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # -- transactions and migrations ---------------------------------------------------------------------------

    @contextmanager
    def patient_writes(self, retries: int) -> Iterator[None]:
        """While inside: a write that found the store locked for the whole busy timeout waits that long again, up
        to `retries` more times (a background sync outwaits another process's long write instead of failing)."""
        before = self._write_retries
        self._write_retries = max(before, retries)
        try:
            yield
        finally:
            self._write_retries = before

    def _begin(self) -> None:
        for attempt in range(self._write_retries + 1):
            try:
                self.conn.execute("BEGIN IMMEDIATE")
                return
            except sqlite3.OperationalError as error:
                # Only a lock is worth waiting out; nothing of the transaction ran yet, so trying again is safe.
                if "locked" not in str(error) or attempt == self._write_retries:
                    raise
                log.warning("%s stayed locked by another writer for %.0f s; waiting again (%d of %d)", self.path,
                               BUSY_TIMEOUT_MS / 1000, attempt + 1, self._write_retries)

    @contextmanager
    def write(self) -> Iterator[sqlite3.Connection]:
        """An immediate write transaction: all of it commits, or none of it."""
        with self._lock:
            self._begin()
            try:
                yield self.conn
            except BaseException:
                self.conn.execute("ROLLBACK")
                raise
            else:
                self.conn.execute("COMMIT")

    @property
    def schema_version(self) -> int:
        return int(self.conn.execute("PRAGMA user_version").fetchone()[0])

    def migrate(self) -> None:
        version = self.schema_version
        if version > SCHEMA_VERSION:
            raise StoreError(
                f"{self.path} was written by a newer Feedback Hub (schema {version}, this version knows {SCHEMA_VERSION}); "
                "upgrade the app before opening it."
            )
        if 0 < version < SCHEMA_VERSION and self.path != ":memory:":
            # Under the write lock, and only if the store is still behind and holds something: several processes
            # opening a new file at once see it part-built by another one, which is no store to back up.
            with self.write() as conn:
                current = int(conn.execute("PRAGMA user_version").fetchone()[0])
                if 0 < current < SCHEMA_VERSION and conn.execute(
                    "SELECT EXISTS (SELECT 1 FROM feedback) OR EXISTS (SELECT 1 FROM sync_runs)"
                ).fetchone()[0]:
                    self.migration_backup = self._backup_before_migration(current)
        for number in range(version, SCHEMA_VERSION):
            # The version is read again inside the write transaction: two processes opening a new file at once both
            # see the old version, and the second must skip the step the first ran, not run it again (a step that
            # happens to be repeatable would otherwise set the version back).
            with self.write() as conn:
                if int(conn.execute("PRAGMA user_version").fetchone()[0]) != number:
                    continue
                for statement in _statements(MIGRATIONS[number]):
                    conn.execute(statement)
                conn.execute(f"PRAGMA user_version = {number + 1}")

    def integrity_check(self) -> str:
        return str(self.conn.execute("PRAGMA integrity_check").fetchone()[0])

    def backup(self, destination: str | Path, *, overwrite: bool = False) -> Path:
        """A consistent copy of the store at `destination`, through SQLite's online backup API.

        The copy is made in one step, inside one read transaction: it is the store as of one commit, and in WAL mode
        a sync writing meanwhile neither waits for it nor makes it start over. It is written beside the destination
        under a temporary name and renamed into place, so a copy cut short never looks like a backup.
        """
        target = Path(destination).expanduser()
        if target.exists() and not overwrite:
            raise FileExistsError(f"{target} already exists")
        if target.is_dir():
            raise IsADirectoryError(f"{target} is a folder")
        partial = target.with_name(f".{target.name}.{os.getpid()}-{threading.get_ident()}.partial")
        partial.unlink(missing_ok=True)
        copy = sqlite3.connect(partial, isolation_level=None)
        try:
            if self.path == ":memory:":
                with self._lock:
                    self.conn.backup(copy)
            else:
                # From a connection of its own: this one may hold the write lock (a migration about to run), and a
                # backup read through a connection in a write transaction waits on itself forever.
                source = sqlite3.connect(f"{Path(self.path).expanduser().resolve().as_uri()}?mode=ro", uri=True,
                                         isolation_level=None, timeout=BUSY_TIMEOUT_MS / 1000)
                try:
                    source.backup(copy)
                finally:
                    source.close()
            # The copy is one self-contained file: out of WAL mode, so opening it never leaves -wal/-shm beside it.
            # Store switches a restored copy back to WAL on its first open.
            copy.execute("PRAGMA journal_mode = DELETE")
            copy.close()
            os.replace(partial, target)
        except BaseException:
            copy.close()
            partial.unlink(missing_ok=True)
            raise
        return target

    def _backup_before_migration(self, version: int) -> Path:
        """A copy of the store as it was, beside it, before a migration rewrites it; only the newest few are kept."""
        target = Path(f"{Path(self.path).expanduser()}.before-migration-{SCHEMA_VERSION}.bak")
        try:
            self.backup(target, overwrite=True)
        except (OSError, sqlite3.Error) as error:
            raise StoreUnavailable(
                f"The store {self.path} needs a schema migration ({version} to {SCHEMA_VERSION}) and could not be "
                f"backed up to {target} first: {getattr(error, 'strerror', None) or error}.",
                "Nothing was changed. Free some disk space or make the folder writable, then open it again.",
                path=self.path,
            ) from error
        prefix = f"{target.name.split('.before-migration-')[0]}.before-migration-"
        kept = sorted((p for p in target.parent.glob(f"{glob.escape(prefix)}*.bak")),
                      key=lambda p: p.stat().st_mtime_ns, reverse=True)
        for old in kept[KEEP_MIGRATION_BACKUPS:]:
            old.unlink(missing_ok=True)
        log.warning("Backed up %s to %s before migrating its schema from %d to %d", self.path, target, version,
                    SCHEMA_VERSION)
        return target


def read_in_parallel(store: Store, first: Callable[[Store], _First], second: Callable[[Store], _Second]
                     ) -> tuple[_First, _Second]:
    """Two independent reads at once, the second on a connection of its own in a worker thread: SQLite runs a
    statement without holding the GIL, so a second core halves the wait. An in-memory store cannot be opened twice:
    there the two run in turn. Each read sees its own snapshot; a write landing between them can show in one only."""
    if store.path == ":memory:":
        return first(store), second(store)

    def on_own_connection() -> _Second:
        with Store(store.path, migrate=False) as own:
            return second(own)

    with ThreadPoolExecutor(max_workers=1) as pool:
        later = pool.submit(on_own_connection)
        return first(store), later.result()
