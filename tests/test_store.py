from __future__ import annotations

import json
import sqlite3
import threading
import time
from datetime import date, datetime, timezone

import pytest

from feedback_sources.store import SCHEMA_VERSION, Filters, Store, StoreError, _MIGRATION_1
from tests.conftest import make_record


def test_upsert_stores_whole_row(fresh_store: Store) -> None:
    result = fresh_store.upsert_records([make_record("1")], synced_at="2026-03-02T00:00:00Z")
    assert (result.new, result.updated, result.unchanged) == (1, 0, 0)
    assert fresh_store.rows() == [
        {
            "source": "zendesk",
            "source_id": "1",
            "title": "Title 1",
            "content": "Content of 1",
            "customer_id": "c1",
            "customer_email": "ana@acme.example",
            "customer_name": "Ana",
            "customer_tier": "enterprise",
            "category": "bug_report",
            "created_at": "2026-03-01T12:00:00Z",
            "updated_at": "2026-03-01T12:00:00Z",
            "synced_at": "2026-03-02T00:00:00Z",
            "url": "https://x.example/1",
            "tags": '["bug"]',
            "metadata": '{"updated_at":"2026-03-01T12:00:00+00:00","tags":["bug"],"url":"https://x.example/1"}',
        }
    ]


def test_same_record_twice_is_stored_once(fresh_store: Store) -> None:
    fresh_store.upsert_records([make_record("1"), make_record("2")])
    second = fresh_store.upsert_records([make_record("1"), make_record("2")])
    assert (second.new, second.unchanged) == (0, 2)
    keys = [(r["source"], r["source_id"]) for r in fresh_store.rows(limit=None)]
    assert len(keys) == len(set(keys)) == 2


def test_duplicates_within_one_page_keep_newest(fresh_store: Store) -> None:
    old = make_record("1", title="old")
    new = make_record("1", title="new", metadata={"updated_at": "2026-03-05T00:00:00+00:00"})
    result = fresh_store.upsert_records([new, old])
    assert result.new == 1
    assert fresh_store.get_record("zendesk", "1")["title"] == "new"


@pytest.mark.parametrize("order", ["newer_first", "older_first"])
def test_newest_version_wins_in_either_order(fresh_store: Store, order: str) -> None:
    t1 = make_record("7", title="T1 version", metadata={"updated_at": "2026-03-02T00:00:00+00:00"})
    t2 = make_record("7", title="T2 version", metadata={"updated_at": "2026-03-03T00:00:00+00:00"})
    batches = [[t2], [t1]] if order == "newer_first" else [[t1], [t2]]
    results = [fresh_store.upsert_records(batch) for batch in batches]
    stored = fresh_store.get_record("zendesk", "7")
    assert stored["title"] == "T2 version"
    assert stored["updated_at"] == "2026-03-03T00:00:00Z"
    if order == "newer_first":
        assert results[1].skipped_stale == 1
    else:
        assert results[1].updated == 1


def test_page_and_cursor_commit_together(fresh_store: Store) -> None:
    fresh_store.begin_state("zendesk", "incremental", {"start": None}, {"after_cursor": "a"})

    class NotJson:
        pass

    with pytest.raises(TypeError):
        fresh_store.upsert_records([make_record("1")], cursor_update=("zendesk", "incremental", {"bad": NotJson()}))
    assert fresh_store.count() == 0
    assert fresh_store.get_state("zendesk", "incremental").cursor == {"after_cursor": "a"}

    fresh_store.upsert_records([make_record("1")], cursor_update=("zendesk", "incremental", {"after_cursor": "b"}))
    assert fresh_store.count() == 1
    assert fresh_store.get_state("zendesk", "incremental").cursor == {"after_cursor": "b"}


def test_key_columns_are_not_null(fresh_store: Store) -> None:
    with pytest.raises(sqlite3.IntegrityError):
        fresh_store.conn.execute(
            "INSERT INTO feedback (source, source_id, category, created_at, updated_at, synced_at) "
            "VALUES ('zendesk', NULL, 'other', 'x', 'x', 'x')"
        )
    with pytest.raises(sqlite3.IntegrityError):
        fresh_store.conn.execute(
            "INSERT INTO feedback (source, source_id, category, created_at, updated_at, synced_at) "
            "VALUES ('zendesk', '', 'other', 'x', 'x', 'x')"
        )


def test_filters_select_exactly(fresh_store: Store) -> None:
    fresh_store.upsert_records(
        [
            make_record("1", customer_tier="enterprise", category="bug_report",
                        created_at=datetime(2026, 3, 1, tzinfo=timezone.utc)),
            make_record("2", customer_tier="free", category="bug_report",
                        created_at=datetime(2026, 3, 10, tzinfo=timezone.utc)),
            make_record("3", source="intercom", customer_tier=None, category="feature_request",
                        content="Please add CSV export", created_at=datetime(2026, 3, 31, 23, 59, tzinfo=timezone.utc)),
        ]
    )

    def ids(filters: Filters) -> list[str]:
        return sorted(r["source_id"] for r in fresh_store.rows(filters, limit=None))

    assert ids(Filters(tiers=("enterprise",))) == ["1"]
    assert ids(Filters(tiers=("unknown",))) == ["3"]
    assert ids(Filters(sources=("intercom",))) == ["3"]
    assert ids(Filters(categories=("bug_report",), start=date(2026, 3, 2))) == ["2"]
    assert ids(Filters(start=date(2026, 3, 31), end=date(2026, 3, 31))) == ["3"]
    assert ids(Filters(end=date(2026, 3, 1))) == ["1"]
    assert ids(Filters(text="csv export")) == ["3"]
    assert ids(Filters(text='"add csv"')) == ["3"]
    assert ids(Filters(text="content -csv")) == ["1", "2"]
    assert ids(Filters(tag="bug")) == ["1", "2", "3"]


def test_aggregates(fresh_store: Store) -> None:
    fresh_store.upsert_records(
        [
            make_record("1", customer_email="a@x.example"),
            make_record("2", customer_email="b@x.example", customer_tier="free",
                        metadata={"tags": ["bug", "export"], "updated_at": "2026-03-01T12:00:00+00:00"}),
        ]
    )
    assert fresh_store.kpis(Filters(start=date(2026, 3, 1), end=date(2026, 3, 1))) == {
        "records": 2, "customers": 2, "enterprise_share": 0.5, "previous_records": 0,
    }
    assert fresh_store.top_tags() == [{"tag": "bug", "records": 2}, {"tag": "export", "records": 1}]
    assert fresh_store.volume_by_day() == [{"day": "2026-03-01", "grp": "bug_report", "records": 2}]
    assert fresh_store.breakdown(Filters(), "source", "customer_tier") == [
        {"source": "zendesk", "customer_tier": "enterprise", "records": 1},
        {"source": "zendesk", "customer_tier": "free", "records": 1},
    ]


def test_fts_follows_updates(fresh_store: Store) -> None:
    fresh_store.upsert_records([make_record("1", content="login is slow")])
    fresh_store.upsert_records(
        [make_record("1", content="billing page crashes", metadata={"updated_at": "2026-04-01T00:00:00+00:00"})]
    )
    assert fresh_store.count(Filters(text="login")) == 0
    assert fresh_store.count(Filters(text="billing")) == 1


def test_old_schema_migrates_without_loss(tmp_path) -> None:
    path = tmp_path / "old.db"
    conn = sqlite3.connect(path)
    conn.executescript(_MIGRATION_1 + "PRAGMA user_version = 1;")
    conn.execute(
        "INSERT INTO feedback (source, source_id, title, content, category, created_at, updated_at, synced_at, tags) "
        "VALUES ('zendesk', '42', 'Old', 'exported invoices are wrong', 'bug_report', '2025-01-01T00:00:00Z', "
        "'2025-01-01T00:00:00Z', '2025-01-01T00:00:00Z', '[]')"
    )
    conn.commit()
    conn.close()
    with Store(path) as store:
        assert store.schema_version == SCHEMA_VERSION
        assert store.count() == 1
        assert store.count(Filters(text="invoices")) == 1
        assert store.integrity_check() == "ok"


def test_newer_schema_is_refused(tmp_path) -> None:
    path = tmp_path / "future.db"
    conn = sqlite3.connect(path)
    conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 5}")
    conn.close()
    with pytest.raises(StoreError, match="newer Feedback Hub"):
        Store(path)


def test_a_locked_database_waits_instead_of_failing(tmp_path) -> None:
    path = tmp_path / "shared.db"
    Store(path).close()
    holder = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    holder.execute("BEGIN IMMEDIATE")
    released = threading.Event()

    def release_later() -> None:
        time.sleep(0.5)
        holder.execute("COMMIT")
        released.set()

    threading.Thread(target=release_later, daemon=True).start()
    with Store(path) as store:
        result = store.upsert_records([make_record("1")])
        assert released.is_set()
        assert result.new == 1
        assert store.integrity_check() == "ok"
    holder.close()


def test_sync_state_and_runs(fresh_store: Store) -> None:
    fresh_store.begin_state("intercom", "incremental", {"start": "2026-01-01T00:00:00Z"}, None)
    fresh_store.upsert_records([make_record("1", source="intercom")],
                               cursor_update=("intercom", "incremental", {"updated_after": 5}))
    fresh_store.finish_state("intercom", "incremental", "complete")
    state = fresh_store.get_state("intercom", "incremental")
    assert (state.cursor, state.status, state.params) == (
        {"updated_after": 5}, "complete", {"start": "2026-01-01T00:00:00Z"})
    assert state.last_success_at is not None
    run = fresh_store.start_run("g", "intercom", "since", None, None)
    fresh_store.finish_run(run, status="complete", fetched=1, new=1, rate_limit={"default": {"remaining": 3}})
    [stored] = fresh_store.recent_runs()
    assert (stored["status"], stored["fetched"], json.loads(stored["rate_limit"])) == (
        "complete", 1, {"default": {"remaining": 3}})
    assert fresh_store.source_summary()["intercom"]["records"] == 1


def test_two_processes_opening_a_new_file_at_once_both_succeed(tmp_path) -> None:
    path = tmp_path / "race.db"
    errors: list[BaseException] = []
    start = threading.Barrier(4)

    def open_store() -> None:
        start.wait()
        try:
            Store(path).close()
        except BaseException as error:  # noqa: BLE001 - the test reports whatever escaped
            errors.append(error)

    threads = [threading.Thread(target=open_store) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    with Store(path) as store:
        assert store.schema_version == SCHEMA_VERSION and store.integrity_check() == "ok"
