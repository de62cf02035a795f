"""The local SQLite store: schema and migrations, the one upsert every writer uses, sync state, and queries.

Every write runs in a `BEGIN IMMEDIATE` transaction: it takes the write lock up front, so a writer waits (busy
timeout) instead of failing with "database is locked" when a read would turn into a write, and a page of records
commits together with its resume cursor or not at all.

- schema.py: every table and index, as numbered migrations (SQLite's user_version counts those run).
- open.py: opening (damage and availability checks, typed errors, default paths), migration, the Store class.
- records.py: the upsert (newest version wins), removals and tombstones, full text, tags, overrides on top.
- state.py: sync cursors and the runs log.
- queries.py: Filters, Explore's aggregates, search and the rows export reads.
- one module of Store methods per concern, so the rest of the app runs no SQL of its own: overrides_sql.py (with
  the hook every write runs), accounts_sql.py, health_sql.py, themes_sql.py, jobs_sql.py, webhooks_sql.py,
  search_sql.py, insights_sql.py (Demand) and rules_sql.py (rules versions and their re-application).

Importing this package imports no other part of the app beyond models, search and sentiment.
"""

from __future__ import annotations

from .open import (
    APP_NAME,
    BUSY_TIMEOUT_MS,
    HEADER_BYTES,
    KEEP_MIGRATION_BACKUPS,
    OPEN_CHECK_SECONDS,
    SQLITE_MAGIC,
    CheckReport,
    CheckResult,
    Store,
    StoreDamaged,
    StoreError,
    StoreUnavailable,
    check_copy,
    check_store,
    damaged,
    default_db_path,
    header_problem,
    location_problem,
    read_in_parallel,
    store_error_from,
)
from .queries import TEXT_DRIVE_LIMIT, UNKNOWN_TIER, Filters, records_from_rows
from .records import _FTS_INSERT, _UPSERT_SQL, UpsertResult, record_row, record_values
from .schema import _MIGRATION_1, FEEDBACK_COLUMNS, MIGRATIONS, SCHEMA_VERSION, iso_utc, now_utc
from .state import SyncState

__all__ = [
    "APP_NAME", "BUSY_TIMEOUT_MS", "FEEDBACK_COLUMNS", "HEADER_BYTES", "KEEP_MIGRATION_BACKUPS", "MIGRATIONS",
    "OPEN_CHECK_SECONDS", "SCHEMA_VERSION", "SQLITE_MAGIC", "TEXT_DRIVE_LIMIT", "UNKNOWN_TIER", "CheckReport",
    "CheckResult", "Filters", "Store", "StoreDamaged", "StoreError", "StoreUnavailable", "SyncState", "UpsertResult",
    "_FTS_INSERT", "_MIGRATION_1", "_UPSERT_SQL", "check_copy", "check_store", "damaged", "default_db_path", "header_problem",
    "iso_utc", "location_problem", "now_utc", "read_in_parallel", "record_row", "record_values", "records_from_rows",
    "store_error_from",
]
