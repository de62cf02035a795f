"""A re-pull from a chosen day never moves the incremental high-water mark beyond what was actually fetched.

`sync --since 2027-06-01` used to store its (future) position as the incremental cursor, and every later plain sync
then skipped new records until that day; a `--since` later than where the incremental sync stood skipped what
changed in between. Over real HTTP against the emulator, for all three vendors at once.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest

from feedback_sources.emulator import Emulator, run_emulator_server
from feedback_sources.integrations.base import get_integration_class
from feedback_sources.store import Store
from feedback_sources.sync import INCREMENTAL_SCOPE, SourceResult, plan_source, sync
from tests.reliability_support import SOURCES, duplicate_keys, ground_truth, integration_configs, past_config, stored_ids

FUTURE = datetime(2027, 6, 1, tzinfo=timezone.utc)


class World:
    def __init__(self, emulator: Emulator, configs: dict[str, dict[str, str]], store: Store):
        self.emulator, self.configs, self.store = emulator, configs, store

    def sync(self, **options: Any) -> dict[str, SourceResult]:
        integrations = {source: get_integration_class(source)(self.configs[source]) for source in SOURCES}
        results = sync(self.store, integrations, **options)
        assert {source: result.status for source, result in results.items()} == {s: "complete" for s in SOURCES}, {
            source: result.errors for source, result in results.items()
        }
        return results

    def cursors(self) -> dict[str, Any]:
        return {source: (state.cursor if (state := self.store.get_state(source, INCREMENTAL_SCOPE)) else None)
                for source in SOURCES}

    def add_one_record_each(self, at: datetime) -> dict[str, str]:
        """A new record at each vendor, created and changed at `at`."""
        emulator = self.emulator
        survey_id = emulator.surveymonkey.survey_ids()[0]
        return {
            "zendesk": str(emulator.zendesk.add_ticket(created_at=at, updated_at=at)["id"]),
            "intercom": str(emulator.intercom.add_conversation(created_at=at, updated_at=at)["id"]),
            "surveymonkey": str(emulator.surveymonkey.add_response(survey_id, date_created=at, date_modified=at)["id"]),
        }

    def assert_holds_everything(self) -> None:
        assert stored_ids(self.store.conn) == ground_truth(self.emulator)
        assert duplicate_keys(self.store.conn) == []


@pytest.fixture
def world(tmp_path: Path) -> Iterator[World]:
    emulator = Emulator(past_config(zendesk_tickets=60, intercom_conversations=40, surveymonkey_surveys=1,
                                    surveymonkey_responses_per_survey=40))
    with run_emulator_server(emulator) as root:
        with Store(tmp_path / "feedback.db") as store:
            yield World(emulator, integration_configs(emulator, root), store)


def now() -> datetime:
    return datetime.now(timezone.utc).replace(microsecond=0)


def test_a_first_sync_from_the_future_leaves_no_mark_and_the_next_plain_sync_gets_everything(world: World) -> None:
    results = world.sync(start=FUTURE)
    assert {source: result.fetched for source, result in results.items()} == {source: 0 for source in SOURCES}
    assert world.cursors() == {source: None for source in SOURCES}

    added = world.add_one_record_each(now() - timedelta(minutes=2))
    world.sync()
    world.assert_holds_everything()
    stored = stored_ids(world.store.conn)
    assert all(record_id in stored[source] for source, record_id in added.items())


def test_a_sync_from_the_future_after_plain_syncs_keeps_the_mark_and_new_records_still_arrive(world: World) -> None:
    world.sync()
    before = world.cursors()
    assert all(before.values())

    results = world.sync(start=FUTURE)
    assert {source: result.fetched for source, result in results.items()} == {source: 0 for source in SOURCES}
    assert world.cursors() == before  # the incremental position did not move

    added = world.add_one_record_each(now() - timedelta(minutes=2))
    results = world.sync()
    assert {source: result.new for source, result in results.items()} == {source: 1 for source in SOURCES}
    stored = stored_ids(world.store.conn)
    assert all(record_id in stored[source] for source, record_id in added.items())
    world.assert_holds_everything()


def test_a_since_past_the_incremental_position_does_not_skip_what_changed_in_between(world: World) -> None:
    world.sync()
    # Changed after the last plain sync, but before the day a re-pull is then asked from.
    between = world.add_one_record_each(now() - timedelta(minutes=30))
    results = world.sync(start=now() - timedelta(minutes=10))
    assert {source: result.fetched for source, result in results.items()} == {source: 0 for source in SOURCES}

    results = world.sync()
    stored = stored_ids(world.store.conn)
    assert {source: record_id in stored[source] for source, record_id in between.items()} == {
        source: True for source in SOURCES
    }
    world.assert_holds_everything()


def test_a_since_run_in_its_own_scope_resumes_after_a_crash(tmp_path: Path) -> None:
    at = datetime(2026, 6, 1, tzinfo=timezone.utc)
    with Store(tmp_path / "plan.db") as store:
        store.begin_state("x", INCREMENTAL_SCOPE, {"start": None}, {"page": 7})
        store.finish_state("x", INCREMENTAL_SCOPE, "complete")
        since = at - timedelta(days=2)
        plan = plan_source(store, "x", start=since, end=None, incremental=True, now=at)
        assert (plan.scope, plan.mode, plan.cursor, plan.resumed) == ("since:2026-05-30T00:00:00Z", "since", None, False)
        store.begin_state("x", plan.scope, plan.params, {"page": 2})  # ... and the process dies here
        again = plan_source(store, "x", start=since, end=None, incremental=True, now=at)
        assert (again.scope, again.cursor, again.resumed) == (plan.scope, {"page": 2}, True)
        # The plain sync still continues from the incremental position.
        plain = plan_source(store, "x", start=None, end=None, incremental=True, now=at)
        assert (plain.scope, plain.mode, plain.cursor) == (INCREMENTAL_SCOPE, "incremental", {"page": 7})
        # A first ever since-run (no incremental position yet) that starts in the past seeds the incremental scope.
        fresh = plan_source(store, "y", start=since, end=None, incremental=True, now=at)
        assert (fresh.scope, fresh.mode) == (INCREMENTAL_SCOPE, "since")
        future = plan_source(store, "y", start=at + timedelta(days=1), end=None, incremental=True, now=at)
        assert future.scope == "since:2026-06-02T00:00:00Z"
