"""The local SQLite store: schema and migrations, the one upsert every writer uses, sync state, and queries.

Every write runs in a `BEGIN IMMEDIATE` transaction: it takes the write lock up front, so a writer waits (busy
timeout) instead of failing with "database is locked" when a read would turn into a write, and a page of records
commits together with its resume cursor or not at all.
"""

from __future__ import annotations

import glob
import json
import logging
import os
import shlex
import sqlite3
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from functools import cached_property
from datetime import date, datetime, timedelta, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from platformdirs import user_data_dir

from .accounts import ACCOUNT_KEY_MIGRATION
from .models import NormalizedRecord, Removal
from . import sentiment
from .overrides import reapply_overrides
from .search import to_fts_query

if TYPE_CHECKING:
    import sqlite_utils

APP_NAME = "feedback-hub"
BUSY_TIMEOUT_MS = 15_000

FEEDBACK_COLUMNS = (
    "source",
    "source_id",
    "title",
    "content",
    "customer_id",
    "customer_email",
    "customer_name",
    "customer_tier",
    "category",
    "created_at",
    "updated_at",
    "synced_at",
    "url",
    "tags",
    "metadata",
)


def default_db_path(demo: bool = False) -> Path:
    """`FEEDBACK_DB` wins; otherwise the user's data directory. Demo data lives in its own file."""
    override = os.environ.get("FEEDBACK_DEMO_DB" if demo else "FEEDBACK_DB")
    if override:
        return Path(override).expanduser()
    return Path(user_data_dir(APP_NAME, appauthor=False)) / ("demo.db" if demo else "feedback.db")


def iso_utc(moment: datetime) -> str:
    """The one text form of a timestamp in the store: sortable, second precision, UTC."""
    if moment.tzinfo is None:
        raise ValueError("naive datetime")
    # isoformat is twice as fast as strftime, and always writes four year digits (strftime drops them before 1000).
    return moment.astimezone(timezone.utc).isoformat(timespec="seconds")[:19] + "Z"


def now_utc() -> datetime:
    return datetime.now(timezone.utc)


_First = TypeVar("_First")
_Second = TypeVar("_Second")


# -- schema --------------------------------------------------------------------------------------------------------

_MIGRATION_1 = """
        CREATE TABLE feedback (
            id INTEGER PRIMARY KEY,
            source TEXT NOT NULL CHECK (source <> ''),
            source_id TEXT NOT NULL CHECK (source_id <> ''),
            title TEXT,
            content TEXT NOT NULL DEFAULT '',
            customer_id TEXT,
            customer_email TEXT,
            customer_name TEXT,
            customer_tier TEXT,
            category TEXT NOT NULL,
            created_at TEXT NOT NULL,
            updated_at TEXT NOT NULL,
            synced_at TEXT NOT NULL,
            url TEXT,
            tags TEXT NOT NULL DEFAULT '[]',
            metadata TEXT NOT NULL DEFAULT '{}',
            UNIQUE (source, source_id)
        );
        CREATE INDEX idx_feedback_created ON feedback (created_at);
        CREATE INDEX idx_feedback_source_created ON feedback (source, created_at);
        CREATE INDEX idx_feedback_category_created ON feedback (category, created_at);
        CREATE INDEX idx_feedback_tier_created ON feedback (customer_tier, created_at);
        CREATE INDEX idx_feedback_customer ON feedback (customer_email);

        CREATE TABLE feedback_tags (
            feedback_id INTEGER NOT NULL REFERENCES feedback(id) ON DELETE CASCADE,
            tag TEXT NOT NULL,
            PRIMARY KEY (feedback_id, tag)
        ) WITHOUT ROWID;
        CREATE INDEX idx_feedback_tags_tag ON feedback_tags (tag);

        CREATE TABLE sync_state (
            source TEXT NOT NULL,
            scope TEXT NOT NULL,
            cursor TEXT,
            status TEXT NOT NULL,
            params TEXT NOT NULL DEFAULT '{}',
            started_at TEXT,
            updated_at TEXT,
            last_success_at TEXT,
            PRIMARY KEY (source, scope)
        );

        CREATE TABLE sync_runs (
            id INTEGER PRIMARY KEY,
            run_group TEXT NOT NULL,
            source TEXT NOT NULL,
            mode TEXT NOT NULL,
            range_start TEXT,
            range_end TEXT,
            started_at TEXT NOT NULL,
            finished_at TEXT,
            status TEXT NOT NULL,
            pages INTEGER NOT NULL DEFAULT 0,
            fetched INTEGER NOT NULL DEFAULT 0,
            new INTEGER NOT NULL DEFAULT 0,
            updated INTEGER NOT NULL DEFAULT 0,
            unchanged INTEGER NOT NULL DEFAULT 0,
            skipped_stale INTEGER NOT NULL DEFAULT 0,
            errors TEXT,
            error_kind TEXT,
            duration_seconds REAL,
            requests INTEGER NOT NULL DEFAULT 0,
            wait_seconds REAL NOT NULL DEFAULT 0,
            vendor_total INTEGER,
            rate_limit TEXT
        );
        CREATE INDEX idx_sync_runs_source ON sync_runs (source, started_at);
"""


# Full-text index over the words a PM searches, kept in step by triggers (rebuilt for existing rows).
_MIGRATION_2 = """
        CREATE VIRTUAL TABLE feedback_fts USING fts5(
            title, content, customer_name, tags,
            content='feedback', content_rowid='id', tokenize='unicode61 remove_diacritics 2'
        );
        CREATE TRIGGER feedback_fts_insert AFTER INSERT ON feedback BEGIN
            INSERT INTO feedback_fts (rowid, title, content, customer_name, tags)
            VALUES (new.id, new.title, new.content, new.customer_name, new.tags);
        END;
        CREATE TRIGGER feedback_fts_delete AFTER DELETE ON feedback BEGIN
            INSERT INTO feedback_fts (feedback_fts, rowid, title, content, customer_name, tags)
            VALUES ('delete', old.id, old.title, old.content, old.customer_name, old.tags);
        END;
        CREATE TRIGGER feedback_fts_update AFTER UPDATE OF title, content, customer_name, tags ON feedback
        WHEN old.title IS NOT new.title OR old.content IS NOT new.content
          OR old.customer_name IS NOT new.customer_name OR old.tags IS NOT new.tags
        BEGIN
            INSERT INTO feedback_fts (feedback_fts, rowid, title, content, customer_name, tags)
            VALUES ('delete', old.id, old.title, old.content, old.customer_name, old.tags);
            INSERT INTO feedback_fts (rowid, title, content, customer_name, tags)
            VALUES (new.id, new.title, new.content, new.customer_name, new.tags);
        END;
        INSERT INTO feedback_fts (feedback_fts) VALUES ('rebuild');
"""


# The full-text index is written by upsert_records, a page at a time, instead of by row triggers: FTS5 flushes its
# pending terms at every statement savepoint, and a trigger opens one per row, so trigger upkeep cost five times what
# the same rows cost in one set-based insert (benchmarks/ingest.py). Deletes stay on a trigger: they are rare.
_MIGRATION_3 = """
        DROP TRIGGER feedback_fts_insert;
        DROP TRIGGER feedback_fts_update;
"""


# Explore's charts group and count by these columns over a date range: with all of them in one index keyed by date,
# each chart reads the index alone instead of a wide row (content, metadata) per record.
# `writes` changes with every write to `feedback`, so data_version need not scan for the newest synced_at.
_MIGRATION_4 = """
        CREATE INDEX idx_feedback_facets
            ON feedback (created_at, source, category, customer_tier, customer_email, customer_id);
        CREATE TABLE store_meta (key TEXT PRIMARY KEY, value INTEGER NOT NULL) WITHOUT ROWID;
        INSERT INTO store_meta (key, value) VALUES ('writes', 0);
"""


# Provenance and manual overrides (issue 7). Why each record has its category and tier moves out of the metadata JSON
# into columns, so the Rules page counts them and rule re-application rewrites them in SQL. Overrides are keyed by
# (source, source_id) and keep the rules' decision underneath (see overrides.py); rules live in versions.
_MIGRATION_5 = """
        ALTER TABLE feedback ADD COLUMN category_reason TEXT;
        ALTER TABLE feedback ADD COLUMN tier_reason TEXT;
        UPDATE feedback SET category_reason = json_extract(metadata, '$.category_reason'),
                            tier_reason = json_extract(metadata, '$.tier_reason')
        WHERE json_valid(metadata);
        CREATE TABLE feedback_overrides (
            source TEXT NOT NULL,
            source_id TEXT NOT NULL,
            field TEXT NOT NULL CHECK (field IN ('category', 'customer_tier')),
            value TEXT,
            reason TEXT NOT NULL,
            rule_value TEXT,
            rule_reason TEXT,
            batch INTEGER NOT NULL,
            created_at TEXT NOT NULL,
            PRIMARY KEY (source, source_id, field)
        ) WITHOUT ROWID;
        CREATE INDEX idx_feedback_overrides_batch ON feedback_overrides (batch);
        CREATE TABLE override_batches (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            created_at TEXT NOT NULL,
            field TEXT NOT NULL,
            value TEXT,
            description TEXT NOT NULL DEFAULT ''
        );
        CREATE TABLE classification_rules (
            version INTEGER PRIMARY KEY,
            rules TEXT NOT NULL,
            created_at TEXT NOT NULL,
            note TEXT NOT NULL DEFAULT '',
            applied_at TEXT
        );
        UPDATE store_meta SET value = value + 1 WHERE key = 'writes';
"""


# Each record's account (accounts.py: the rule, and why it is an indexed column) for the Demand view.
_MIGRATION_6 = ACCOUNT_KEY_MIGRATION

# Rule re-application (rules_store.py) reads these small indexes instead of every wide row: who decided each
# category and tier, and each Zendesk ticket's type. A plan over a million records then takes seconds, not tens.
_MIGRATION_7 = """
        CREATE INDEX IF NOT EXISTS idx_feedback_category_reason ON feedback (category_reason, category, source);
        CREATE INDEX IF NOT EXISTS idx_feedback_tier_reason ON feedback (tier_reason, customer_tier);
        CREATE INDEX IF NOT EXISTS idx_feedback_vendor_type ON feedback (json_extract(metadata, '$.type')) WHERE source = 'zendesk';
"""

# What the vendors removed (deleted or spam tickets, deleted conversations, deleted or disqualified responses): one
# tombstone per record, so a late webhook redelivery or a replayed older page never brings the text back. The record
# itself is deleted (its full-text entries by the delete trigger, its tags by cascade, its overrides with it).
_MIGRATION_8 = """
        CREATE TABLE feedback_removals (
            source TEXT NOT NULL,
            source_id TEXT NOT NULL,
            reason TEXT NOT NULL,
            removed_at TEXT NOT NULL,
            recorded_at TEXT NOT NULL,
            PRIMARY KEY (source, source_id)
        ) WITHOUT ROWID;
        ALTER TABLE sync_runs ADD COLUMN removed INTEGER NOT NULL DEFAULT 0;
"""

# Themes found in the text and sentiment (themes.py, sentiment.py). Sentiment is scored when a record's text is
# written; a record's theme is placed after it lands (NULL: not placed yet; 0: near no theme). The accounts index
# gains both columns, so Demand ranks themes and sentiment from the index alone.
_MIGRATION_9 = """
        ALTER TABLE feedback ADD COLUMN sentiment REAL;
        ALTER TABLE feedback ADD COLUMN sentiment_label TEXT;
        ALTER TABLE feedback ADD COLUMN theme_id INTEGER;
        ALTER TABLE feedback ADD COLUMN theme_score REAL;
        ALTER TABLE feedback ADD COLUMN dup_key TEXT;
        CREATE INDEX idx_feedback_sentiment ON feedback (sentiment_label, created_at);
        CREATE INDEX idx_feedback_theme ON feedback (theme_id, created_at);
        CREATE INDEX idx_feedback_dup ON feedback (dup_key) WHERE dup_key IS NOT NULL;
        DROP INDEX idx_feedback_accounts;
        CREATE INDEX idx_feedback_accounts
            ON feedback (created_at, account_key, customer_tier, category, source, theme_id, sentiment_label);
        CREATE TABLE themes (
            id INTEGER PRIMARY KEY,
            auto_name TEXT NOT NULL,
            name TEXT,
            terms TEXT NOT NULL DEFAULT '[]',
            centroid TEXT NOT NULL DEFAULT '{}',
            pinned INTEGER NOT NULL DEFAULT 0,
            hidden INTEGER NOT NULL DEFAULT 0,
            merged_into INTEGER,
            split_from INTEGER,
            retired INTEGER NOT NULL DEFAULT 0,
            created_at TEXT NOT NULL,
            updated_at TEXT NOT NULL
        );
        CREATE TABLE theme_model (
            id INTEGER PRIMARY KEY CHECK (id = 1),
            terms TEXT NOT NULL,
            idf TEXT NOT NULL,
            built_at TEXT NOT NULL,
            records INTEGER NOT NULL,
            k INTEGER NOT NULL
        );
        CREATE TABLE theme_runs (
            id INTEGER PRIMARY KEY,
            started_at TEXT NOT NULL,
            finished_at TEXT,
            status TEXT NOT NULL,
            progress REAL NOT NULL DEFAULT 0,
            message TEXT,
            pid INTEGER,
            heartbeat REAL,
            records INTEGER,
            themes INTEGER,
            seconds REAL,
            peak_rss_mb REAL
        );
"""

# intercom_contacts: Intercom contacts kept between syncs, so a re-sync asks only for the ones that changed
# (feedback_sources/sources/intercom/contacts.py); `updated_at` is Intercom's, `fetched_at` when we asked.
_MIGRATION_INTERCOM_CONTACTS = """
        CREATE TABLE intercom_contacts (
            contact_id TEXT PRIMARY KEY,
            contact TEXT NOT NULL,
            updated_at INTEGER,
            fetched_at INTEGER NOT NULL
        ) WITHOUT ROWID;
"""

# Each migration is one script; it runs with the version bump inside one transaction.
MIGRATIONS: tuple[str, ...] = (
    _MIGRATION_1, _MIGRATION_2, _MIGRATION_3, _MIGRATION_4, _MIGRATION_5, _MIGRATION_6, _MIGRATION_7, _MIGRATION_8,
    _MIGRATION_9, _MIGRATION_INTERCOM_CONTACTS,
)

# With more full-text matches than this, queries scan an index and check ids against the matches instead of reading
# every matching row by id (a row read costs a few microseconds: rows carry content and metadata).
TEXT_DRIVE_LIMIT = 20_000
SCHEMA_VERSION = len(MIGRATIONS)


def _statements(script: str) -> Iterator[str]:
    """The statements of a migration script, one at a time (a trigger's body stays whole)."""
    pending = ""
    for line in script.splitlines(keepends=True):
        pending += line
        if sqlite3.complete_statement(pending):
            yield pending.strip()
            pending = ""
    if pending.strip():
        raise ValueError(f"incomplete statement in a migration: {pending.strip()[:80]}")


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


# -- filters -------------------------------------------------------------------------------------------------------

UNKNOWN_TIER = "unknown"


@dataclass(frozen=True)
class Filters:
    """What Explore, export and the CLI narrow the store down to. Dates are inclusive calendar days in UTC."""

    sources: tuple[str, ...] = ()
    tiers: tuple[str, ...] = ()  # may include "unknown" for records with no tier
    categories: tuple[str, ...] = ()
    start: date | None = None
    end: date | None = None
    text: str = ""
    tag: str | None = None
    sentiments: tuple[str, ...] = ()  # negative | neutral | positive
    theme_ids: tuple[int, ...] = ()

    def where(self, alias: str = "feedback", *, text_as_filter: bool = False) -> tuple[str, list[Any]]:
        """The SQL condition and its parameters.

        `text_as_filter` keeps SQLite from starting at the full-text matches: with many matches, reading each
        matching row by id costs more than scanning an index and checking ids against the match list.
        """
        clauses: list[str] = []
        params: list[Any] = []
        if self.sources:
            clauses.append(f"{alias}.source IN ({', '.join('?' * len(self.sources))})")
            params.extend(self.sources)
        if self.tiers:
            known = [t for t in self.tiers if t != UNKNOWN_TIER]
            parts = []
            if known:
                parts.append(f"{alias}.customer_tier IN ({', '.join('?' * len(known))})")
                params.extend(known)
            if UNKNOWN_TIER in self.tiers:
                parts.append(f"{alias}.customer_tier IS NULL")
            clauses.append("(" + " OR ".join(parts) + ")")
        if self.categories:
            clauses.append(f"{alias}.category IN ({', '.join('?' * len(self.categories))})")
            params.extend(self.categories)
        if self.start is not None:
            clauses.append(f"{alias}.created_at >= ?")
            params.append(self.start.isoformat())
        if self.end is not None:
            clauses.append(f"{alias}.created_at < ?")
            params.append((self.end + timedelta(days=1)).isoformat())
        if self.tag:
            clauses.append(f"{alias}.id IN (SELECT feedback_id FROM feedback_tags WHERE tag = ?)")
            params.append(self.tag)
        if self.sentiments:
            clauses.append(f"{alias}.sentiment_label IN ({', '.join('?' * len(self.sentiments))})")
            params.extend(self.sentiments)
        if self.theme_ids:
            clauses.append(f"{alias}.theme_id IN ({', '.join('?' * len(self.theme_ids))})")
            params.extend(int(t) for t in self.theme_ids)
        fts = to_fts_query(self.text) if self.text and self.text.strip() else None
        if fts:
            column = f"+{alias}.id" if text_as_filter else f"{alias}.id"  # unary + hides the rowid from the planner
            clauses.append(f"{column} IN (SELECT rowid FROM feedback_fts WHERE feedback_fts MATCH ?)")
            params.append(fts)
        return (" AND ".join(clauses) or "1 = 1"), params

    def previous_period(self) -> Filters | None:
        if self.start is None or self.end is None:
            return None
        length = (self.end - self.start).days + 1
        return replace(self, start=self.start - timedelta(days=length), end=self.start - timedelta(days=1))


@dataclass
class UpsertResult:
    new: int = 0
    updated: int = 0
    unchanged: int = 0
    skipped_stale: int = 0
    removed: int = 0  # stored records deleted because the vendor removed them

    def add(self, other: UpsertResult) -> None:
        self.new += other.new
        self.updated += other.updated
        self.unchanged += other.unchanged
        self.skipped_stale += other.skipped_stale
        self.removed += other.removed


@dataclass
class SyncState:
    source: str
    scope: str
    cursor: dict[str, Any] | None
    status: str
    params: dict[str, Any] = field(default_factory=dict)
    started_at: str | None = None
    updated_at: str | None = None
    last_success_at: str | None = None


def record_values(record: NormalizedRecord, synced_at: str) -> tuple[tuple[Any, ...], list[str]]:
    """The record as a `feedback` row in FEEDBACK_COLUMNS order, and its tags."""
    metadata = record.metadata
    tags = [str(t) for t in metadata.get("tags") or [] if t is not None]
    tier = record.customer_tier
    created_at = iso_utc(record.created_at)
    raw_updated = metadata.get("updated_at")
    # Most records carry no separate update time, or one equal to creation: no second parse and format then.
    updated_at = created_at if raw_updated is None else iso_utc(record.updated_at)
    values = (
        record.source,
        record.source_id,
        record.title,
        record.content,
        record.customer_id,
        record.customer_email,
        record.customer_name,
        tier.value if tier is not None else None,
        record.category.value,
        created_at,
        updated_at,
        synced_at,
        metadata.get("url"),
        _TAGS_JSON.encode(tags),
        _METADATA_JSON.encode(metadata),
    )
    return values, tags


# Built once: json.dumps with options builds a new encoder per call.
_TAGS_JSON = json.JSONEncoder(ensure_ascii=False)
_METADATA_JSON = json.JSONEncoder(ensure_ascii=False, default=str, separators=(",", ":"))


def record_row(record: NormalizedRecord, synced_at: str) -> dict[str, Any]:
    return dict(zip(FEEDBACK_COLUMNS, record_values(record, synced_at)[0]))


# Positions in a record_values tuple.
_SOURCE, _SOURCE_ID, _TITLE, _CONTENT, _CUSTOMER_NAME, _UPDATED_AT, _TAGS = 0, 1, 2, 3, 6, 10, 13
# The columns the full-text index holds, in its column order.
_FTS_POSITIONS = (_TITLE, _CONTENT, _CUSTOMER_NAME, _TAGS)
_FTS_INSERT = "INSERT INTO feedback_fts (rowid, title, content, customer_name, tags) VALUES (?, ?, ?, ?, ?)"
_FTS_DELETE = (
    "INSERT INTO feedback_fts (feedback_fts, rowid, title, content, customer_name, tags) "
    "VALUES ('delete', ?, ?, ?, ?, ?)"
)
# Keys looked up per statement; far below SQLite's limit on bound parameters.
_LOOKUP_CHUNK = 900


@dataclass
class _Stored:
    """What the store holds for a key before a write: enough to decide the write and to retract its index entries."""

    id: int
    updated_at: str
    fts: tuple[Any, ...]  # title, content, customer_name, tags


# Why the mapper chose the category and tier is read out of the metadata parameter (?15) by SQLite itself, so the
# bound values stay those of record_values.
_REASON_COLUMNS = ("category_reason", "tier_reason")
_UPSERT_SQL = (
    f"INSERT INTO feedback ({', '.join((*FEEDBACK_COLUMNS, *_REASON_COLUMNS))}) "
    f"VALUES ({', '.join(f'?{n}' for n in range(1, len(FEEDBACK_COLUMNS) + 1))}, "
    f"json_extract(?{len(FEEDBACK_COLUMNS)}, '$.category_reason'), json_extract(?{len(FEEDBACK_COLUMNS)}, '$.tier_reason')) "
    "ON CONFLICT (source, source_id) DO UPDATE SET "
    + ", ".join(f"{c} = excluded.{c}" for c in (*FEEDBACK_COLUMNS, *_REASON_COLUMNS) if c not in ("source", "source_id"))
    + " WHERE excluded.updated_at >= feedback.updated_at"
)


def _chunks_by_source(keys: list[tuple[str, str]]) -> Iterator[tuple[str, list[str]]]:
    by_source: dict[str, list[str]] = {}
    for source, source_id in keys:
        by_source.setdefault(source, []).append(source_id)
    for source, ids in by_source.items():
        for offset in range(0, len(ids), _LOOKUP_CHUNK):
            yield source, ids[offset : offset + _LOOKUP_CHUNK]


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

log = logging.getLogger(__name__)


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


class Store:
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
    def write(self) -> Iterator[sqlite3.Connection]:
        """An immediate write transaction: all of it commits, or none of it."""
        with self._lock:
            self.conn.execute("BEGIN IMMEDIATE")
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

    # -- writing records ---------------------------------------------------------------------------------------

    def upsert_records(
        self,
        records: Sequence[NormalizedRecord],
        *,
        removals: Sequence[Removal] = (),
        cursor_update: tuple[str, str, dict[str, Any]] | None = None,
        synced_at: str | None = None,
    ) -> UpsertResult:
        """Insert or update records (newest `updated_at` wins), apply the vendor's removals and, in the same
        transaction, save a resume cursor.

        Set-based: one lookup of the stored versions, one executemany for the rows, the full-text index and the tags
        of the page, so a page costs a few statements however many records it holds.

        A removal beats every version updated at or before its time, whether that version is stored already, in the
        same page, or arrives later (a redelivery, a replayed page): the tombstone stays. A version updated after
        the removal (a ticket restored from the trash) is stored again and lifts the tombstone.
        """
        synced_at = synced_at or iso_utc(now_utc())
        # A page may carry the same record twice (vendors repeat rows across page edges): the newest copy wins.
        latest: dict[tuple[str, str], tuple[tuple[Any, ...], list[str]]] = {}
        for record in records:
            values, tags = record_values(record, synced_at)
            key = (values[_SOURCE], values[_SOURCE_ID])
            kept = latest.get(key)
            if kept is None or values[_UPDATED_AT] >= kept[0][_UPDATED_AT]:
                latest[key] = (values, tags)
        removed: dict[tuple[str, str], tuple[str, str]] = {}  # key -> (removed_at, reason), the latest removal wins
        for removal in removals:
            key = (removal.source, removal.source_id)
            at = iso_utc(removal.removed_at)
            if key not in removed or at >= removed[key][0]:
                removed[key] = (at, removal.reason.value)
        result = UpsertResult()
        with self.write() as conn:
            # A removal followed, in the same page, by a newer version of the record (restored): the version wins.
            removed = {k: v for k, v in removed.items() if k not in latest or latest[k][0][_UPDATED_AT] <= v[0]}
            tombstones = self._tombstones(conn, [*latest, *removed])
            for key, (at, reason) in removed.items():
                if key not in tombstones or at >= tombstones[key][0]:
                    tombstones[key] = (at, reason)
            for key in [key for key in latest if key in tombstones]:
                if latest[key][0][_UPDATED_AT] <= tombstones[key][0]:
                    del latest[key]  # a version from before the removal: never brings the text back
                    result.skipped_stale += 1
                elif key not in removed:
                    del tombstones[key]  # restored after its removal
                    conn.execute("DELETE FROM feedback_removals WHERE source = ? AND source_id = ?", key)
            if removed:
                result.removed = self._remove(conn, {key: tombstones[key] for key in removed})
            stored = self._stored_versions(conn, list(latest))
            written: list[tuple[Any, ...]] = []
            new_keys: list[tuple[str, str]] = []
            fts_deletes: list[tuple[Any, ...]] = []
            reindexed: list[tuple[int, tuple[Any, ...]]] = []  # existing rows whose text or tags changed
            retagged: list[tuple[int, list[str]]] = []
            for key, (values, tags) in latest.items():
                before = stored.get(key)
                if before is None:
                    result.new += 1
                    new_keys.append(key)
                    written.append(values)
                    continue
                updated_at = values[_UPDATED_AT]
                if updated_at > before.updated_at:
                    result.updated += 1
                elif updated_at == before.updated_at:
                    result.unchanged += 1
                else:
                    result.skipped_stale += 1
                    continue
                written.append(values)
                fts = tuple(values[i] for i in _FTS_POSITIONS)
                if fts != before.fts:
                    fts_deletes.append((before.id, *before.fts))
                    reindexed.append((before.id, fts))
                    if values[_TAGS] != before.fts[-1]:
                        retagged.append((before.id, tags))
            conn.executemany(_UPSERT_SQL, written)
            # Manual overrides outlive every write of the record: back on top before the transaction commits.
            reapply_overrides(conn, [(values[_SOURCE], values[_SOURCE_ID]) for values in written])
            new_ids = self._ids(conn, new_keys)
            # New or changed words: scored again, and placed in a theme again by the next themes.assign_new().
            rescored = [(new_ids[key], latest[key][0][_TITLE], latest[key][0][_CONTENT]) for key in new_keys]
            rescored.extend((rowid, fts[0], fts[1]) for rowid, fts in reindexed)
            if rescored:
                conn.executemany(
                    "UPDATE feedback SET sentiment = ?, sentiment_label = ?, theme_id = NULL, theme_score = NULL, "
                    "dup_key = NULL WHERE id = ?",
                    [(*sentiment.score(title, content), rowid) for rowid, title, content in rescored],
                )
            fts_rows = [(new_ids[key], *(latest[key][0][i] for i in _FTS_POSITIONS)) for key in new_keys]
            fts_rows.extend((rowid, *fts) for rowid, fts in reindexed)
            conn.executemany(_FTS_DELETE, fts_deletes)
            conn.executemany(_FTS_INSERT, fts_rows)
            # Tags of new rows go straight in; those of existing rows are rewritten only when they changed.
            conn.executemany("DELETE FROM feedback_tags WHERE feedback_id = ?", [(rowid,) for rowid, _ in retagged])
            pairs = [(new_ids[key], tag) for key in new_keys for tag in dict.fromkeys(latest[key][1])]
            pairs.extend((rowid, tag) for rowid, tags in retagged for tag in dict.fromkeys(tags))
            conn.executemany("INSERT OR IGNORE INTO feedback_tags (feedback_id, tag) VALUES (?, ?)", pairs)
            if written or result.removed:
                conn.execute("UPDATE store_meta SET value = value + 1 WHERE key = 'writes'")
            if cursor_update is not None:
                source, scope, cursor = cursor_update
                self._save_cursor(conn, source, scope, cursor)
        return result

    @staticmethod
    def _tombstones(conn: sqlite3.Connection, keys: list[tuple[str, str]]) -> dict[tuple[str, str], tuple[str, str]]:
        """The removals recorded for these keys: key -> (removed_at, reason)."""
        found: dict[tuple[str, str], tuple[str, str]] = {}
        if not keys or conn.execute("SELECT 1 FROM feedback_removals LIMIT 1").fetchone() is None:
            return found  # the common case: nothing was ever removed, one probe instead of a lookup per page
        for source, chunk in _chunks_by_source(keys):
            sql = (
                "SELECT source_id, removed_at, reason FROM feedback_removals "
                f"WHERE source = ? AND source_id IN ({', '.join('?' * len(chunk))})"
            )
            for source_id, removed_at, reason in conn.execute(sql, [source, *chunk]):
                found[(source, source_id)] = (removed_at, reason)
        return found

    @staticmethod
    def _remove(conn: sqlite3.Connection, removals: dict[tuple[str, str], tuple[str, str]]) -> int:
        """Write the tombstones and delete what they cover; returns how many stored records went."""
        recorded_at = iso_utc(now_utc())
        conn.executemany(
            "INSERT INTO feedback_removals (source, source_id, reason, removed_at, recorded_at) VALUES (?, ?, ?, ?, ?) "
            "ON CONFLICT (source, source_id) DO UPDATE SET reason = excluded.reason, removed_at = excluded.removed_at, "
            "recorded_at = excluded.recorded_at WHERE excluded.removed_at >= feedback_removals.removed_at",
            [(source, source_id, reason, at, recorded_at) for (source, source_id), (at, reason) in removals.items()],
        )
        gone = 0
        for (source, source_id), (at, _) in removals.items():
            # A version stored after the removal time (restored, then changed) stays.
            deleted = conn.execute(
                "DELETE FROM feedback WHERE source = ? AND source_id = ? AND updated_at <= ?", (source, source_id, at)
            ).rowcount
            if deleted:
                gone += deleted
                conn.execute(
                    "DELETE FROM feedback_overrides WHERE source = ? AND source_id = ?", (source, source_id)
                )
        return gone

    def removal_counts(self) -> dict[str, dict[str, int]]:
        """Per source and reason, how many records the vendors removed (as learned by sync or webhook)."""
        counts: dict[str, dict[str, int]] = {}
        for source, reason, count in self.conn.execute(
            "SELECT source, reason, COUNT(*) FROM feedback_removals GROUP BY source, reason"
        ):
            counts.setdefault(source, {})[reason] = int(count)
        return counts

    def removal_of(self, source: str, source_id: str) -> dict[str, Any] | None:
        row = self.conn.execute(
            "SELECT reason, removed_at, recorded_at FROM feedback_removals WHERE source = ? AND source_id = ?",
            (source, source_id),
        ).fetchone()
        return None if row is None else {"reason": row[0], "removed_at": row[1], "recorded_at": row[2]}

    @staticmethod
    def _stored_versions(conn: sqlite3.Connection, keys: list[tuple[str, str]]) -> dict[tuple[str, str], _Stored]:
        found: dict[tuple[str, str], _Stored] = {}
        for source, chunk in _chunks_by_source(keys):
            sql = (
                "SELECT source_id, id, updated_at, title, content, customer_name, tags FROM feedback "
                f"WHERE source = ? AND source_id IN ({', '.join('?' * len(chunk))})"
            )
            for source_id, rowid, updated_at, *fts in conn.execute(sql, [source, *chunk]):
                found[(source, source_id)] = _Stored(rowid, updated_at, tuple(fts))
        return found

    @staticmethod
    def _ids(conn: sqlite3.Connection, keys: list[tuple[str, str]]) -> dict[tuple[str, str], int]:
        ids: dict[tuple[str, str], int] = {}
        for source, chunk in _chunks_by_source(keys):
            sql = f"SELECT source_id, id FROM feedback WHERE source = ? AND source_id IN ({', '.join('?' * len(chunk))})"
            for source_id, rowid in conn.execute(sql, [source, *chunk]):
                ids[(source, source_id)] = rowid
        return ids

    # -- sync state ------------------------------------------------------------------------------------------

    @staticmethod
    def _save_cursor(conn: sqlite3.Connection, source: str, scope: str, cursor: dict[str, Any]) -> None:
        conn.execute(
            "UPDATE sync_state SET cursor = ?, updated_at = ? WHERE source = ? AND scope = ?",
            (json.dumps(cursor, sort_keys=True), iso_utc(now_utc()), source, scope),
        )

    def get_state(self, source: str, scope: str) -> SyncState | None:
        row = self.conn.execute(
            "SELECT source, scope, cursor, status, params, started_at, updated_at, last_success_at "
            "FROM sync_state WHERE source = ? AND scope = ?",
            (source, scope),
        ).fetchone()
        if row is None:
            return None
        cursor = json.loads(row[2]) if row[2] else None
        return SyncState(row[0], row[1], cursor, row[3], json.loads(row[4] or "{}"), row[5], row[6], row[7])

    def begin_state(self, source: str, scope: str, params: dict[str, Any], cursor: dict[str, Any] | None) -> None:
        now = iso_utc(now_utc())
        with self.write() as conn:
            conn.execute(
                "INSERT INTO sync_state (source, scope, cursor, status, params, started_at, updated_at) "
                "VALUES (?, ?, ?, 'running', ?, ?, ?) ON CONFLICT (source, scope) DO UPDATE SET "
                "cursor = excluded.cursor, status = 'running', params = excluded.params, "
                "started_at = excluded.started_at, updated_at = excluded.updated_at",
                (source, scope, json.dumps(cursor, sort_keys=True) if cursor is not None else None,
                 json.dumps(params, sort_keys=True), now, now),
            )

    def finish_state(self, source: str, scope: str, status: str) -> None:
        now = iso_utc(now_utc())
        with self.write() as conn:
            conn.execute(
                "UPDATE sync_state SET status = ?, updated_at = ?, "
                "last_success_at = CASE WHEN ? = 'complete' THEN ? ELSE last_success_at END "
                "WHERE source = ? AND scope = ?",
                (status, now, status, now, source, scope),
            )

    def states(self) -> list[SyncState]:
        rows = self.conn.execute("SELECT source, scope FROM sync_state ORDER BY source, scope").fetchall()
        return [s for s in (self.get_state(a, b) for a, b in rows) if s is not None]

    def start_run(self, run_group: str, source: str, mode: str, range_start: str | None, range_end: str | None) -> int:
        with self.write() as conn:
            cursor = conn.execute(
                "INSERT INTO sync_runs (run_group, source, mode, range_start, range_end, started_at, status) "
                "VALUES (?, ?, ?, ?, ?, ?, 'running')",
                (run_group, source, mode, range_start, range_end, iso_utc(now_utc())),
            )
            return int(cursor.lastrowid or 0)

    def finish_run(self, run_id: int, **fields: Any) -> None:
        fields.setdefault("finished_at", iso_utc(now_utc()))
        if "rate_limit" in fields and not isinstance(fields["rate_limit"], str):
            fields["rate_limit"] = json.dumps(fields["rate_limit"])
        assignments = ", ".join(f"{name} = ?" for name in fields)
        with self.write() as conn:
            conn.execute(f"UPDATE sync_runs SET {assignments} WHERE id = ?", [*fields.values(), run_id])

    def query(self, sql: str, params: Sequence[Any] = ()) -> list[dict[str, Any]]:
        """Rows as dicts straight from sqlite3: what the sync's own bookkeeping reads, without importing sqlite-utils
        (and with it pandas) into a cron'd sync."""
        cursor = self.conn.execute(sql, list(params))
        names = [column[0] for column in cursor.description or ()]
        return [dict(zip(names, row)) for row in cursor.fetchall()]

    def recent_runs(self, limit: int = 50) -> list[dict[str, Any]]:
        return list(self.db.query("SELECT * FROM sync_runs ORDER BY id DESC LIMIT ?", [limit]))

    def source_summary(self) -> dict[str, dict[str, Any]]:
        """Per source: records stored, newest record, last successful sync, last run status."""
        summary: dict[str, dict[str, Any]] = {}
        for row in self.db.query(
            "SELECT source, COUNT(*) AS records, MAX(created_at) AS newest FROM feedback GROUP BY source"
        ):
            summary[row["source"]] = {"records": row["records"], "newest": row["newest"]}
        for row in self.db.query(
            "SELECT source, MAX(finished_at) AS last_success FROM sync_runs WHERE status = 'complete' GROUP BY source"
        ):
            summary.setdefault(row["source"], {"records": 0, "newest": None})["last_success"] = row["last_success"]
        for row in self.db.query(
            "SELECT source, status, errors, finished_at FROM sync_runs WHERE id IN (SELECT MAX(id) FROM sync_runs GROUP BY source)"
        ):
            entry = summary.setdefault(row["source"], {"records": 0, "newest": None})
            entry["last_status"] = row["status"]
            entry["last_error"] = row["errors"]
        return summary

    # -- reading -----------------------------------------------------------------------------------------------

    def _where(self, filters: Filters) -> tuple[str, list[Any]]:
        """filters.where(), told whether the full-text matches are few enough to start from."""
        return filters.where(text_as_filter=not self._starts_from_text(filters))

    def _starts_from_text(self, filters: Filters) -> bool:
        fts = to_fts_query(filters.text) if filters.text and filters.text.strip() else None
        return fts is not None and self._text_matches(fts) <= TEXT_DRIVE_LIMIT

    def _aggregate_scope(self, filters: Filters) -> tuple[str, str, list[Any]]:
        """FROM and WHERE for a count or a grouping over the filtered records.

        Unless a few full-text matches are the cheaper start, aggregates read the facets index alone: left to
        itself the planner picks an index that spares it a sort (source, created_at) and then reads a wide row
        per record, several seconds on a million records.
        """
        if self._starts_from_text(filters):
            where, params = filters.where()
            return "feedback", where, params
        where, params = filters.where(text_as_filter=True)
        return "feedback INDEXED BY idx_feedback_facets", where, params

    def _text_matches(self, fts: str) -> int:
        # Milliseconds even for a word in every other record: FTS5 counts from its own index.
        return int(self.conn.execute("SELECT COUNT(*) FROM feedback_fts WHERE feedback_fts MATCH ?", (fts,)).fetchone()[0])

    def count(self, filters: Filters = Filters()) -> int:
        if filters == Filters(text=filters.text):
            fts = to_fts_query(filters.text) if filters.text.strip() else None
            if fts is not None:
                # Text alone: the full-text index holds exactly one entry per record (upsert_records and the delete
                # trigger keep it so), so its count is the answer without reading any row.
                return self._text_matches(fts)
        source, where, params = self._aggregate_scope(filters)
        return int(self.conn.execute(f"SELECT COUNT(*) FROM {source} WHERE {where}", params).fetchone()[0])

    def kpis(self, filters: Filters = Filters()) -> dict[str, Any]:
        source, where, params = self._aggregate_scope(filters)
        row = self.conn.execute(
            "SELECT COUNT(*), COUNT(DISTINCT COALESCE(customer_email, source || ':' || customer_id)), "
            f"SUM(customer_tier = 'enterprise') FROM {source} WHERE {where}",
            params,
        ).fetchone()
        records, customers, enterprise = int(row[0]), int(row[1]), int(row[2] or 0)
        previous = filters.previous_period()
        previous_count = self.count(previous) if previous is not None else None
        return {
            "records": records,
            "customers": customers,
            "enterprise_share": (enterprise / records) if records else 0.0,
            "previous_records": previous_count,
        }

    def volume_by_day(self, filters: Filters = Filters(), by: str = "category") -> list[dict[str, Any]]:
        column = _group_column(by)
        source, where, params = self._aggregate_scope(filters)
        return list(
            self.db.query(
                f"SELECT substr(created_at, 1, 10) AS day, {column} AS grp, COUNT(*) AS records "
                f"FROM {source} WHERE {where} GROUP BY day, grp ORDER BY day",
                params,
            )
        )

    def sentiment_by_day(self, filters: Filters = Filters(), by: str = "source") -> list[dict[str, Any]]:
        """Per day and group: records and how many of them are negative. Reads the accounts index, which holds
        the sentiment label beside the facets (a million records take one index scan, no row reads)."""
        column = _group_column(by)
        if self._starts_from_text(filters):
            where, params = filters.where()
            source = "feedback"
        else:
            where, params = filters.where(text_as_filter=True)
            source = "feedback INDEXED BY idx_feedback_accounts"
        return list(
            self.db.query(
                f"SELECT substr(created_at, 1, 10) AS day, {column} AS grp, COUNT(*) AS records, "
                f"SUM(sentiment_label = 'negative') AS negative FROM {source} WHERE {where} "
                "GROUP BY day, grp ORDER BY day",
                params,
            )
        )

    def theme_counts(self, filters: Filters = Filters(), limit: int = 10) -> list[dict[str, Any]]:
        """The themes of the filtered records: records and negative records per theme, biggest first."""
        where, params = filters.where()
        return list(
            self.db.query(
                f"SELECT theme_id, COUNT(*) AS records, SUM(sentiment_label = 'negative') AS negative FROM feedback "
                f"WHERE {where} AND theme_id > 0 GROUP BY theme_id ORDER BY records DESC LIMIT ?",
                [*params, limit],
            )
        )

    def breakdown(self, filters: Filters, first: str, second: str) -> list[dict[str, Any]]:
        a, b = _group_column(first), _group_column(second)
        source, where, params = self._aggregate_scope(filters)
        return list(
            self.db.query(
                f"SELECT {a} AS {first}, {b} AS {second}, COUNT(*) AS records FROM {source} "
                f"WHERE {where} GROUP BY 1, 2 ORDER BY records DESC",
                params,
            )
        )

    def top_tags(self, filters: Filters = Filters(), limit: int = 15) -> list[dict[str, Any]]:
        if filters == Filters():
            # Every record counts: the tags table alone answers, without a join per tag.
            return list(
                self.db.query(
                    "SELECT tag, COUNT(*) AS records FROM feedback_tags GROUP BY tag ORDER BY records DESC, tag LIMIT ?",
                    [limit],
                )
            )
        where, params = self._where(filters)
        return list(
            self.db.query(
                "SELECT t.tag AS tag, COUNT(*) AS records FROM feedback_tags t JOIN feedback ON feedback.id = t.feedback_id "
                f"WHERE {where} GROUP BY t.tag ORDER BY records DESC, tag LIMIT ?",
                [*params, limit],
            )
        )

    def rows(
        self,
        filters: Filters = Filters(),
        *,
        columns: Sequence[str] = FEEDBACK_COLUMNS,
        limit: int | None = 100,
        offset: int = 0,
        order: str = "created_at DESC, id DESC",
    ) -> list[dict[str, Any]]:
        return list(self.iter_rows(filters, columns=columns, limit=limit, offset=offset, order=order))

    def iter_rows(
        self,
        filters: Filters = Filters(),
        *,
        columns: Sequence[str] = FEEDBACK_COLUMNS,
        limit: int | None = None,
        offset: int = 0,
        order: str = "created_at DESC, id DESC",
    ) -> Iterator[dict[str, Any]]:
        cursor = self._select(filters, columns, limit=limit, offset=offset, order=order)
        names = [d[0] for d in cursor.description]
        for row in cursor:
            yield dict(zip(names, row))

    def iter_values(
        self,
        filters: Filters = Filters(),
        *,
        columns: Sequence[str] = FEEDBACK_COLUMNS,
        expression: Callable[[str], str] | None = None,
        order: str = "created_at DESC, id DESC",
    ) -> Iterator[tuple[Any, ...]]:
        """The filtered rows as plain tuples, each column read through `expression(column)` (SQL) when given: for
        streams of millions of rows, where a dict and a Python call per cell cost more than SQLite's own work."""
        return iter(self._select(filters, columns, expression=expression, order=order))

    def _select(
        self,
        filters: Filters,
        columns: Sequence[str],
        *,
        expression: Callable[[str], str] | None = None,
        limit: int | None = None,
        offset: int = 0,
        order: str,
    ) -> sqlite3.Cursor:
        unknown = [c for c in columns if c not in FEEDBACK_COLUMNS]
        if unknown:
            raise ValueError(f"unknown columns: {', '.join(unknown)}; choose from {', '.join(FEEDBACK_COLUMNS)}")
        if order not in ("created_at DESC, id DESC", "created_at ASC, id ASC"):
            raise ValueError("unsupported order")
        where, params = self._where(filters)
        # No aliases: an alias named like a column would be what WHERE and ORDER BY read, and ORDER BY an expression
        # sorts every row instead of walking the index.
        selected = ", ".join(map(expression, columns)) if expression else ", ".join(columns)
        sql = f"SELECT {selected} FROM feedback WHERE {where} ORDER BY {order}"
        if limit is not None:
            sql += " LIMIT ? OFFSET ?"
            params = [*params, limit, offset]
        return self.conn.execute(sql, params)

    def get_record(self, source: str, source_id: str) -> dict[str, Any] | None:
        cursor = self.conn.execute(
            f"SELECT {', '.join(FEEDBACK_COLUMNS)} FROM feedback WHERE source = ? AND source_id = ?", (source, source_id)
        )
        row = cursor.fetchone()
        if row is None:
            return None
        record = dict(zip(FEEDBACK_COLUMNS, row))
        record["metadata"] = json.loads(record["metadata"])
        record["tags"] = json.loads(record["tags"])
        return record

    def data_version(self) -> tuple[int, str | None]:
        """A cheap marker that changes whenever the data does: for cache keys. (record count, marker)"""
        row = self.conn.execute(
            "SELECT (SELECT COUNT(*) FROM feedback), (SELECT MAX(id) FROM feedback), "
            "(SELECT value FROM store_meta WHERE key = 'writes')"
        ).fetchone()
        return (int(row[0]), f"{row[1]}:{row[2]}")

    def distinct_values(self, column: str) -> list[str]:
        if column not in ("source", "customer_tier", "category"):
            raise ValueError(column)
        # Hop from one value to the next through the column's index: a handful of seeks, not a scan of every row.
        sql = (
            f"WITH RECURSIVE v(value) AS (SELECT MIN({column}) FROM feedback "
            f"UNION ALL SELECT (SELECT MIN({column}) FROM feedback WHERE {column} > v.value) FROM v "
            "WHERE v.value IS NOT NULL) SELECT value FROM v WHERE value IS NOT NULL"
        )
        return [r[0] for r in self.conn.execute(sql)]

    def date_bounds(self) -> tuple[str | None, str | None]:
        # Two subqueries: SQLite reads MIN or MAX from an index end only when the query has a single one of them.
        row = self.conn.execute(
            "SELECT (SELECT MIN(created_at) FROM feedback), (SELECT MAX(created_at) FROM feedback)"
        ).fetchone()
        return row[0], row[1]


_GROUPABLE = {
    "category": "category",
    "category_reason": "COALESCE(category_reason, '')",  # the Rules page says which rule decides a set of records
    "source": "source",
    "customer_tier": f"COALESCE(customer_tier, '{UNKNOWN_TIER}')",
    "tier": f"COALESCE(customer_tier, '{UNKNOWN_TIER}')",
}


def _group_column(name: str) -> str:
    try:
        return _GROUPABLE[name]
    except KeyError:
        raise ValueError(f"cannot group by {name!r}; choose from {', '.join(_GROUPABLE)}") from None


def records_from_rows(rows: Iterable[dict[str, Any]]) -> Iterator[dict[str, Any]]:
    for row in rows:
        yield row


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
