"""`python -m feedback_sources status`: the source health facts on the command line, as text and as JSON."""

from __future__ import annotations

import io
import json
from datetime import date, datetime, time, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest

from feedback_sources.cli import EXIT_OK, EXIT_USAGE, main
from feedback_sources.models import NormalizedRecord, Removal, RemovalReason
from feedback_sources.store import Store, iso_utc


def run(*argv: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    code = main(list(argv), out=out, err=err)
    return code, out.getvalue(), err.getvalue()


def add_run(store: Store, source: str, started: datetime, **fields: Any) -> None:
    run_id = store.start_run("g", source, fields.pop("mode"), fields.pop("range_start", None), None)
    store.finish_run(run_id, started_at=iso_utc(started), finished_at=iso_utc(started + timedelta(minutes=1)),
                     **fields)


@pytest.fixture
def prepared(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[Path, date]:
    """Zendesk synced three days ago with a day missing; SurveyMonkey failing on its budget; Intercom never synced."""
    monkeypatch.chdir(tmp_path)  # no .env
    path = tmp_path / "feedback.db"
    finished = datetime.now(timezone.utc).replace(microsecond=0) - timedelta(days=3)
    started = finished - timedelta(minutes=1)
    first = finished.date() - timedelta(days=10)
    with Store(path) as store:
        store.upsert_records([
            NormalizedRecord(source="zendesk", source_id=f"{n}-{i}", content="c",
                             created_at=datetime.combine(first + timedelta(days=n), time(6 + i), tzinfo=timezone.utc))
            for n in range(10) if n != 4 for i in range(6)
        ])
        add_run(store, "zendesk", started, mode="full", range_start="2000-01-01T00:00:00Z", status="complete",
                fetched=54, new=54, requests=3, wait_seconds=1.5, vendor_total=54)
        add_run(store, "surveymonkey", started, mode="since", range_start=iso_utc(started - timedelta(days=30)),
                status="failed", requests=7, errors="SurveyMonkey's daily request budget (500 requests) is spent",
                error_kind="rate_limited", rate_limit={"day": {"limit": 500, "remaining": 0}})
    return path, first


def test_status_prints_the_health_of_every_source(prepared: tuple[Path, date]) -> None:
    path, first = prepared
    code, out, err = run("status", "--db", str(path))
    with Store(path) as store:
        schema = store.schema_version
        started, finished = store.conn.execute(
            "SELECT started_at, finished_at FROM sync_runs WHERE source = 'zendesk'").fetchone()
    last = first + timedelta(days=9)  # the day before the sync finished: the end of the synced range
    assert (code, err) == (EXIT_OK, "")
    assert out.splitlines() == [
        f"store: {path} (schema {schema})",
        f"zendesk: STALE - 54 records, newest {last}T11:00:00Z (not configured)",
        f"  last successful sync: {finished} (3 d 0 h ago); stale after 24 h",
        f"  completeness: complete - 54 stored of 54 reported by Zendesk for all history until "
        f"{started[:16].replace('T', ' ')} UTC.",
        f"  gaps: 1 empty day(s) in {first}..{last}: {first + timedelta(days=4)} (neighbours' median 6/day)",
        f"  last run: complete (full) at {started}: 54 fetched, 54 new, 3 requests, 1.5 s waited on rate limits",
        "intercom: NEVER - 0 records, newest none (not configured)",
        "  last successful sync: never; stale after 24 h",
        "  completeness: unknown - No completed sync has reported Intercom's own total yet.",
        "  gaps: no completed sync to check against",
        "  last run: none",
        "surveymonkey: FAILING - 0 records, newest none (not configured)",
        "  last successful sync: never; stale after 24 h",
        "  completeness: unknown - No completed sync has reported SurveyMonkey's own total yet.",
        "  gaps: no completed sync to check against",
        f"  last run: failed (since) at {started}: 0 fetched, 0 new, 7 requests, 0.0 s waited on rate limits",
        "  last error: SurveyMonkey's daily request budget (500 requests) is spent",
        "  daily request budget: reset at midnight UTC since the last sync (0 of 500 were left then): "
        "500 requests today",
        "spreadsheet: NEVER - 0 records, newest none (not configured)",
        "  last successful sync: never; stale after 24 h",
        "  completeness: unknown - No completed import has counted the file's rows yet.",
        "  gaps: no completed sync to check against",
        "  last run: none",
    ]


def test_status_as_json_and_with_a_longer_stale_age(prepared: tuple[Path, date]) -> None:
    path, _ = prepared
    code, out, _ = run("status", "--db", str(path), "--json", "--stale-after", "100")
    facts = json.loads(out)
    assert code == EXIT_OK
    assert {s["source"]: (s["status"], s["stale"], s["configured"], s["completeness"]["status"], len(s["gaps"]))
            for s in facts["sources"]} == {
        "zendesk": ("fresh", False, False, "complete", 1),
        "intercom": ("never", True, False, "unknown", 0),
        "surveymonkey": ("failing", True, False, "unknown", 0),
        "spreadsheet": ("never", True, False, "unknown", 0),
    }
    assert facts["sources"][2]["budget"] == {"limit": 500, "remaining": 0,
                                            "as_of": facts["sources"][2]["last_run"]["finished_at"],
                                            "reset_since": True}


def test_status_refuses_a_stale_age_of_zero(prepared: tuple[Path, date]) -> None:
    path, _ = prepared
    assert run("status", "--db", str(path), "--stale-after", "0") == (
        EXIT_USAGE, "", "--stale-after must be a positive number of hours\n")


def test_status_after_a_demo_sync(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    path = tmp_path / "demo.db"
    assert run("sync", "--demo", "--db", str(path), "--full")[0] == EXIT_OK
    code, out, _ = run("status", "--demo", "--db", str(path))
    headers = [line for line in out.splitlines() if not line.startswith((" ", "store:"))]
    assert code == EXIT_OK
    assert [line.split(" - ")[0] for line in headers] == ["zendesk: FRESH", "intercom: FRESH", "surveymonkey: FRESH",
                                                             "spreadsheet: FRESH"]
    assert all(line.endswith("(configured)") for line in headers)
    assert len([line for line in out.splitlines() if line.startswith("  completeness: complete - ")]) == 4


def test_status_counts_what_the_vendors_removed(prepared: tuple[Path, date]) -> None:
    path, first = prepared
    removed_at = datetime.combine(first + timedelta(days=20), time(0), tzinfo=timezone.utc)
    with Store(path) as store:
        store.upsert_records([], removals=[
            Removal(source="zendesk", source_id="0-0", reason=RemovalReason.deleted, removed_at=removed_at),
            Removal(source="zendesk", source_id="0-1", reason=RemovalReason.spam, removed_at=removed_at),
            Removal(source="zendesk", source_id="0-2", reason=RemovalReason.spam, removed_at=removed_at),
        ])
    code, out, _ = run("status", "--db", str(path))
    lines = out.splitlines()
    zendesk = lines.index(next(line for line in lines if line.startswith("zendesk: ")))
    assert code == EXIT_OK
    assert lines[zendesk].startswith("zendesk: STALE - 51 records")
    assert "  removed by the vendor and forgotten here: 1 deleted, 2 spam" in lines[zendesk:lines.index(
        next(line for line in lines if line.startswith("intercom: ")))]
    facts = json.loads(run("status", "--db", str(path), "--json")[1])
    assert {s["source"]: s["removed"] for s in facts["sources"]} == {
        "zendesk": {"deleted": 1, "spam": 2}, "intercom": {}, "surveymonkey": {}, "spreadsheet": {}}
