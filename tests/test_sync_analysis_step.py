"""The themes and sentiment step after a sync runs when there is work for it, and only then.

A cron'd sync that finds no changes must not import the themes module (tests/test_startup_imports.py checks the
import graph); one that stores records, or finds records from before sentiment existed, still gets the step.
"""

from __future__ import annotations

from pathlib import Path

from feedback_sources.store import Store
from feedback_sources.sync import SourceResult, _analysis_due
from tests.conftest import make_record


def _results(**counts: int) -> dict[str, SourceResult]:
    return {"zendesk": SourceResult(source="zendesk", status="complete", mode="incremental", **counts)}


def test_a_sync_that_stored_records_runs_the_step(tmp_path: Path) -> None:
    with Store(tmp_path / "feedback.db") as store:
        assert _analysis_due(store, _results(new=1))
        assert _analysis_due(store, _results(updated=2))


def test_a_no_change_sync_over_scored_records_skips_it(tmp_path: Path) -> None:
    with Store(tmp_path / "feedback.db") as store:
        store.upsert_records([make_record(source_id="1"), make_record(source_id="2")])
        assert not _analysis_due(store, _results(unchanged=2))
        assert not _analysis_due(store, {})


def test_records_from_before_sentiment_existed_still_get_scored(tmp_path: Path) -> None:
    with Store(tmp_path / "feedback.db") as store:
        store.upsert_records([make_record(source_id="1")])
        with store.write() as conn:
            conn.execute("UPDATE feedback SET sentiment = NULL, sentiment_label = NULL")
        assert _analysis_due(store, _results(unchanged=1))
