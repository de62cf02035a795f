"""One import, the same way from the panel and the command line: check, take the store's sync lock, sync.

The file is validated before the store is opened for writing, so a bad file leaves the store exactly as it was
(not even a sync run is recorded). The records then go through `sync.sync_source` like any vendor's pages: each page
committed with its cursor, newest version wins, an interrupted import continues where it stopped.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path

from ...jobs import SyncLock
from ...rules_store import rules_at
from ...store import Store
from ...sync import SourceProgress, SourceResult, sync_source
from .errors import Problem, SpreadsheetError
from .integration import SpreadsheetIntegration
from .mapping import SOURCE
from .settings import SavedImport, save_import


def current_cursor(db_path: str | Path) -> dict | None:
    if not Path(db_path).exists():
        return None
    with Store(db_path) as store:
        state = store.get_state(SOURCE, "incremental")
    return state.cursor if state is not None else None


def check(entry: SavedImport, db_path: str | Path) -> int:
    """Validate what an import of `entry` would store; returns the number of rows it would read."""
    integration = SpreadsheetIntegration(entry.config(), versions_from=db_path)
    _, _, count, _ = integration.validate(current_cursor(db_path))
    return count


def run_import(
    entry: SavedImport,
    db_path: str | Path,
    *,
    on_progress: Callable[[SourceProgress], None] | None = None,
) -> SourceResult:
    """Import the file into the store at `db_path` and save the mapping; raises `SpreadsheetError` when the file
    cannot be imported (nothing stored), or when another sync holds the store."""
    # The store's current rules decide categories and tiers, as they do for a sync of any other source.
    integration = SpreadsheetIntegration(entry.config(), versions_from=db_path, rules=rules_at(db_path))
    integration.validate(current_cursor(db_path))
    lock = SyncLock(db_path)
    if not lock.acquire():
        raise SpreadsheetError([Problem("another sync is running on this store")],
                               hint="Wait until it ends (see the Sync page), then import again.")
    try:
        with Store(db_path) as store:
            result = asyncio.run(sync_source(store, integration, incremental=True, on_progress=on_progress))
        if result.status == "complete":
            save_import(db_path, entry)
            from ...themes import after_sync

            with Store(db_path) as store:
                try:
                    after_sync(store)
                except Exception:  # noqa: BLE001 - the rows are stored; themes catch up on the next sync
                    pass
        return result
    finally:
        lock.release()
