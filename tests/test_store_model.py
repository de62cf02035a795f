"""A state machine mixing every way records reach the store, checked against a model that is one dict.

Sync runs (through the real sync engine, page and cursor committed together) crash between pages and resume;
webhook-style single upserts arrive with random `updated_at`, and some are delivered again; a writer dies in the
middle of a transaction; an exception strikes between a page's upsert and its cursor write; the process restarts.
After every step the store must equal the model: for each key, the newest version seen, stored once, and the
saved cursor exactly where the last committed page left it.
"""

from __future__ import annotations

import asyncio
import shutil
import sqlite3
import tempfile
from collections.abc import AsyncIterator
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import hypothesis.strategies as st
from hypothesis import HealthCheck, settings
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from feedback_sources.integrations.base import BaseIntegration, Page
from feedback_sources.integrations.http import HttpClient
from feedback_sources.models import NormalizedRecord
from feedback_sources.store import _MIGRATION_1, _UPSERT_SQL, FEEDBACK_COLUMNS, SCHEMA_VERSION, Filters, Store, record_row
from feedback_sources.sync import INCREMENTAL_SCOPE, sync_all
from tests.reliability_support import duplicate_keys, memory_backed_directory

BASE = datetime(2026, 3, 1, tzinfo=timezone.utc)
SYNC_SOURCE = "vendor"  # the sync_state name of the fake integration below

Key = tuple[str, str]


def version(key: Key, minute: int) -> NormalizedRecord:
    """The record `key` as it reads at version `minute`: same version, same content, as at a real vendor."""
    source, source_id = key
    return NormalizedRecord(
        source=source,
        source_id=source_id,
        title=f"{source} {source_id}",
        content=f"{source}:{source_id}@{minute}",
        created_at=BASE,
        metadata={"updated_at": (BASE + timedelta(minutes=minute)).isoformat(), "tags": [f"v{minute % 3}"]},
    )


keys = st.tuples(st.sampled_from(["zendesk", "intercom"]), st.sampled_from(["1", "2", "3", "4", "5"]))
records = st.builds(version, keys, st.integers(min_value=0, max_value=9))
pages = st.lists(st.lists(records, max_size=4), min_size=1, max_size=4)


class Crash(BaseException):
    """The process dying between two pages: not an Exception, so nothing on the way catches it."""


class PagedVendor(BaseIntegration):
    """A vendor whose current export is `pages`; the cursor names the export and the next page to fetch."""

    name = SYNC_SOURCE
    display_name = "Paged vendor"
    required_fields = ()

    def __init__(self, export: int, pages: list[list[NormalizedRecord]], crash_after: int | None):
        super().__init__({})
        self.export, self.pages, self.crash_after = export, pages, crash_after
        self.fetched = 0

    def client(self) -> HttpClient:
        raise NotImplementedError

    async def _connection_probe(self, client: HttpClient) -> tuple[str, dict[str, Any]]:
        return "vendor", {}

    async def iter_pages(self, start=None, end=None, cursor=None) -> AsyncIterator[Page]:
        index = cursor["next_page"] if cursor and cursor.get("export") == self.export else 0
        while index < len(self.pages):
            if self.fetched == self.crash_after:
                raise Crash()
            self.fetched += 1
            index += 1
            await asyncio.sleep(0)
            yield Page(list(self.pages[index - 1]), {"export": self.export, "next_page": index})


def newest(model: dict[Key, int], batch: list[NormalizedRecord]) -> None:
    for record in batch:
        key = (record.source, record.source_id)
        minute = int(record.content.rsplit("@", 1)[1])
        model[key] = max(model.get(key, minute), minute)


class StoreAgainstModel(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.directory = Path(tempfile.mkdtemp(prefix="store-model-", dir=memory_backed_directory()))
        self.path = self.directory / "feedback.db"
        self.store = Store(self.path)
        self.model: dict[Key, int] = {}
        self.cursor: dict[str, Any] | None = None
        self.delivered: list[NormalizedRecord] = []
        self.export = 0
        self.pending: list[list[NormalizedRecord]] | None = None
        self.crashed = False  # the last sync run died: the next one resumes from the saved cursor

    def teardown(self) -> None:
        self.store.close()
        shutil.rmtree(self.directory, ignore_errors=True)

    # -- sync runs ---------------------------------------------------------------------------------------------------

    @precondition(lambda self: self.pending is None)
    @rule(export=pages)
    def vendor_has_new_pages(self, export: list[list[NormalizedRecord]]) -> None:
        self.export += 1
        self.pending = export

    @precondition(lambda self: self.pending is not None)
    @rule(crash_after=st.one_of(st.none(), st.integers(min_value=0, max_value=3)))
    def sync_runs(self, crash_after: int | None) -> None:
        assert self.pending is not None
        start = self.cursor["next_page"] if self.cursor and self.cursor["export"] == self.export else 0
        resumes = self.crashed and self.cursor is not None
        vendor = PagedVendor(self.export, self.pending, crash_after)
        try:
            results = asyncio.run(sync_all(self.store, {SYNC_SOURCE: vendor}))
        except Crash:
            results = None
        for batch in self.pending[start:start + vendor.fetched]:
            newest(self.model, batch)
        if vendor.fetched:
            self.cursor = {"export": self.export, "next_page": start + vendor.fetched}
        self.crashed = results is None
        if results is not None:
            assert (results[SYNC_SOURCE].status, results[SYNC_SOURCE].resumed) == ("complete", resumes)
            self.pending = None

    # -- webhooks ----------------------------------------------------------------------------------------------------

    @rule(record=records)
    def webhook_delivers(self, record: NormalizedRecord) -> None:
        self.store.upsert_records([record])
        self.delivered.append(record)
        newest(self.model, [record])

    @precondition(lambda self: self.delivered)
    @rule(data=st.data())
    def webhook_redelivers(self, data: st.DataObject) -> None:
        record = data.draw(st.sampled_from(self.delivered))
        self.store.upsert_records([record])
        newest(self.model, [record])

    # -- failures ----------------------------------------------------------------------------------------------------

    @rule(batch=st.lists(records, min_size=1, max_size=4))
    def writer_dies_mid_transaction(self, batch: list[NormalizedRecord]) -> None:
        """Another process writes rows and a cursor, then dies before COMMIT: none of it may become visible."""
        dying = sqlite3.connect(self.path, isolation_level=None, timeout=15)
        dying.execute("BEGIN IMMEDIATE")
        dying.executemany(_UPSERT_SQL, [(*(record_row(r, "now")[c] for c in FEEDBACK_COLUMNS), 0.0, "neutral") for r in batch])
        dying.execute("UPDATE sync_state SET cursor = '{\"export\": -1, \"next_page\": 99}'")
        dying.close()  # no COMMIT: SQLite rolls back, as it does for a process killed here

    @rule(batch=st.lists(records, min_size=1, max_size=4))
    def cursor_write_fails_after_the_upsert(self, batch: list[NormalizedRecord]) -> None:
        unserializable = {"export": self.export, "next_page": object()}
        try:
            self.store.upsert_records(batch, cursor_update=(SYNC_SOURCE, INCREMENTAL_SCOPE, unserializable))
        except TypeError:
            pass
        else:
            raise AssertionError("a cursor that cannot be saved must fail the page")

    @rule()
    def process_restarts(self) -> None:
        self.store.close()
        self.store = Store(self.path)

    # -- the model -----------------------------------------------------------------------------------------------------

    @invariant()
    def store_equals_model(self) -> None:
        stored = {
            (source, source_id): (updated_at, content)
            for source, source_id, updated_at, content in self.store.conn.execute(
                "SELECT source, source_id, updated_at, content FROM feedback")
        }
        expected = {
            key: ((BASE + timedelta(minutes=minute)).strftime("%Y-%m-%dT%H:%M:%SZ"), f"{key[0]}:{key[1]}@{minute}")
            for key, minute in self.model.items()
        }
        assert stored == expected
        assert duplicate_keys(self.store.conn) == []

    @invariant()
    def cursor_is_where_the_last_committed_page_left_it(self) -> None:
        state = self.store.get_state(SYNC_SOURCE, INCREMENTAL_SCOPE)
        assert (state.cursor if state else None) == self.cursor

    @invariant()
    def tags_follow_the_stored_version(self) -> None:
        tags = dict(self.store.conn.execute(
            "SELECT f.source || ':' || f.source_id, t.tag FROM feedback_tags t JOIN feedback f ON f.id = t.feedback_id"))
        assert tags == {f"{k[0]}:{k[1]}": f"v{m % 3}" for k, m in self.model.items()}


StoreAgainstModel.TestCase.settings = settings(
    max_examples=35, stateful_step_count=25, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
TestStoreAgainstModel = StoreAgainstModel.TestCase


def test_the_model_check_notices_a_lost_update(tmp_path: Path) -> None:
    """The invariant must be able to fail: a row rolled back to an older version is caught."""
    machine = StoreAgainstModel()
    try:
        machine.webhook_delivers(version(("zendesk", "1"), 5))
        machine.store.conn.execute("UPDATE feedback SET updated_at = '2026-03-01T00:01:00Z'")
        try:
            machine.store_equals_model()
        except AssertionError:
            pass
        else:
            raise AssertionError("the invariant missed a lost update")
    finally:
        machine.teardown()


# -- an older database ---------------------------------------------------------------------------------------------


def version_1_database(path: Path) -> None:
    """A database as the first release left it: records with tags, an interrupted sync, its run log."""
    conn = sqlite3.connect(path)
    conn.executescript(_MIGRATION_1 + "PRAGMA user_version = 1;")
    columns = [row[1] for row in conn.execute("PRAGMA table_info(feedback)") if row[1] != "id"]
    for minute, key in enumerate([("zendesk", "1"), ("intercom", "2"), ("zendesk", "3")]):
        row = record_row(version(key, minute), "2026-03-02T00:00:00Z")
        conn.execute(f"INSERT INTO feedback ({', '.join(columns)}) VALUES ({', '.join('?' * len(columns))})",
                     [row[c] for c in columns])
        conn.execute("INSERT INTO feedback_tags (feedback_id, tag) VALUES (last_insert_rowid(), ?)", (f"v{minute % 3}",))
    conn.execute("INSERT INTO sync_state (source, scope, cursor, status, params, started_at, updated_at) VALUES "
                 "(?, 'incremental', ?, 'running', '{\"start\": null}', '2026-03-02T00:00:00Z', '2026-03-02T00:00:00Z')",
                 (SYNC_SOURCE, '{"export": 1, "next_page": 1}'))
    conn.execute("INSERT INTO sync_runs (run_group, source, mode, started_at, status, pages, fetched, new) VALUES "
                 "('g1', ?, 'full', '2026-03-02T00:00:00Z', 'running', 1, 3, 3)", (SYNC_SOURCE,))
    conn.commit()
    conn.close()


OLD_TABLES = ("feedback", "feedback_tags", "sync_state", "sync_runs")


def old_columns(path: Path) -> dict[str, list[str]]:
    conn = sqlite3.connect(path)
    try:
        return {t: [r[1] for r in conn.execute(f"PRAGMA table_info({t})")] for t in OLD_TABLES}
    finally:
        conn.close()


def old_contents(path: Path, columns: dict[str, list[str]]) -> dict[str, list[tuple[Any, ...]]]:
    """Every row of the version-1 tables, in the version-1 columns (later migrations may add columns)."""
    conn = sqlite3.connect(path)
    try:
        return {t: conn.execute(f"SELECT {', '.join(columns[t])} FROM {t} ORDER BY 1, 2").fetchall() for t in OLD_TABLES}
    finally:
        conn.close()


def test_a_version_1_database_migrates_without_losing_rows_tags_cursors_or_runs(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    version_1_database(path)
    columns = old_columns(path)
    before = old_contents(path, columns)

    with Store(path) as store:
        assert (store.schema_version, store.integrity_check()) == (SCHEMA_VERSION, "ok")
        assert store.count(Filters(text="zendesk")) == 2  # the new full-text index covers the old rows
    assert old_contents(path, columns) == before

    # The sync interrupted before the upgrade resumes from its saved page.
    export = [[version(("zendesk", "1"), 0)], [version(("intercom", "9"), 4)], [version(("zendesk", "3"), 7)]]
    with Store(path) as store:
        vendor = PagedVendor(1, export, None)
        result = asyncio.run(sync_all(store, {SYNC_SOURCE: vendor}))[SYNC_SOURCE]
        assert (result.status, result.mode, result.resumed, vendor.fetched, result.new, result.updated) == (
            "complete", "resume", True, 2, 1, 1)


def test_a_migration_that_fails_leaves_the_old_database_as_it_was(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    version_1_database(path)
    conn = sqlite3.connect(path)
    conn.execute("CREATE TABLE feedback_fts (x)")  # makes migration 2 fail halfway through its script
    conn.commit()
    conn.close()
    columns = old_columns(path)
    before = old_contents(path, columns)

    try:
        Store(path)
    except sqlite3.Error:
        pass
    else:
        raise AssertionError("the migration was expected to fail")

    conn = sqlite3.connect(path)
    try:
        assert conn.execute("PRAGMA user_version").fetchone()[0] == 1
        assert conn.execute("SELECT COUNT(*) FROM sqlite_master WHERE name LIKE 'feedback_fts_%'").fetchone()[0] == 0
        conn.execute("DROP TABLE feedback_fts")
        conn.commit()
    finally:
        conn.close()
    assert old_contents(path, columns) == before
    with Store(path) as store:
        assert (store.schema_version, store.count()) == (SCHEMA_VERSION, 3)
