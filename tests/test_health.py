"""Source health: gaps, staleness, completeness against the vendor's total, the last run and the daily budget, from
recorded runs, and from a real sync against the emulator with its rate-limit headers on."""

from __future__ import annotations

from datetime import date, datetime, time, timedelta, timezone
from typing import Any

import httpx
import pytest

from feedback_sources import health
from feedback_sources.emulator import Emulator, EmulatorConfig, create_app
from feedback_sources.health import Budget, Completeness, Gap, RunFacts, SourceHealth, find_gaps
from feedback_sources.models import NormalizedRecord
from feedback_sources.store import Store, iso_utc
from feedback_sources.sync import sync
from feedback_sources.workspace import Workspace, demo_configs

NOW = datetime(2026, 5, 3, 9, 30, tzinfo=timezone.utc)
APRIL = date(2026, 4, 1)


def day(n: int) -> date:
    return APRIL + timedelta(days=n)


def test_a_gap_is_a_run_of_empty_days_among_busy_ones() -> None:
    counts = {day(n): 10 for n in range(30)}
    for empty in (9, 10, 20):
        counts.pop(day(empty))
    assert find_gaps(counts, day(0), day(29)) == [Gap(day(9), day(10), 10.0), Gap(day(20), day(20), 10.0)]
    assert find_gaps(counts, day(0), day(29), min_median=11) == []


def test_quiet_neighbours_edges_and_long_outages() -> None:
    quiet = {day(n): 2 for n in range(14) if n != 7}
    assert find_gaps(quiet, day(0), day(13)) == []
    # A week without records is found as one gap, judged by the week on either side of it.
    outage = {day(n): 8 for n in range(28) if not 10 <= n <= 16}
    assert find_gaps(outage, day(0), day(27)) == [Gap(day(10), day(16), 8.0)]
    # Empty first days have neighbours on one side only.
    assert find_gaps({day(n): 6 for n in range(2, 10)}, day(0), day(9)) == [Gap(day(0), day(1), 6.0)]
    assert find_gaps({}, day(0), day(3)) == []


def record(source: str, source_id: str, created: datetime) -> NormalizedRecord:
    return NormalizedRecord(source=source, source_id=source_id, title="t", content="c", created_at=created)


def add_run(store: Store, source: str, *, mode: str, status: str, started: datetime, range_start: str | None = None,
            range_end: str | None = None, **fields: Any) -> None:
    run_id = store.start_run("g", source, mode, range_start, range_end)
    store.finish_run(run_id, status=status, started_at=iso_utc(started),
                     finished_at=iso_utc(started + timedelta(minutes=2)), **fields)


@pytest.fixture
def store() -> Store:
    """April: Zendesk ten tickets a day except on the 10th and 11th; Intercom and SurveyMonkey a few records."""
    with Store(":memory:") as opened:
        tickets = [record("zendesk", f"z{n}-{i}", datetime.combine(day(n), time(9 + i), tzinfo=timezone.utc))
                   for n in range(30) if n not in (9, 10) for i in range(10)]
        conversations = [record("intercom", f"i{n}", datetime.combine(day(n), time(12), tzinfo=timezone.utc))
                         for n in range(20, 30)]
        answers = [record("surveymonkey", f"s{n}", datetime.combine(day(n), time(8), tzinfo=timezone.utc))
                   for n in range(5)]
        opened.upsert_records(tickets + conversations + answers)
        yield opened


def test_a_complete_fresh_source_with_a_gap(store: Store) -> None:
    # A full sync on May 2 that the vendor says covered 285 tickets; the store holds 280.
    add_run(store, "zendesk", mode="full", status="complete", started=datetime(2026, 5, 2, 8, 0, tzinfo=timezone.utc),
            range_start="2000-01-01T00:00:00Z", fetched=280, new=280, requests=3, wait_seconds=12.5,
            vendor_total=285, rate_limit={"account": {"limit": 700, "remaining": 690}})
    facts = health.source_health(store, "zendesk", now=NOW)
    assert facts == SourceHealth(
        source="zendesk",
        records=280,
        newest_record="2026-04-30T18:00:00Z",
        last_success_at="2026-05-02T08:02:00Z",
        age_seconds=(NOW - datetime(2026, 5, 2, 8, 2, tzinfo=timezone.utc)).total_seconds(),
        stale=True,
        stale_after_seconds=86400.0,
        last_run=RunFacts("2026-05-02T08:00:00Z", "2026-05-02T08:02:00Z", "full", "complete", 280, 280, 0, 3, 12.5,
                          None, None, None),
        completeness=Completeness(
            "missing", 285, 280, "2000-01-01T00:00:00Z", "2026-05-02T08:00:00Z", "2026-05-02T08:00:00Z",
            "5 of 285 records reported by Zendesk for all history until 2026-05-02 08:00 UTC are not in the store: "
            "sync that range again."),
        synced_from=date(2026, 4, 1),
        synced_to=date(2026, 5, 1),
        gaps=(Gap(day(9), day(10), 10.0), Gap(date(2026, 5, 1), date(2026, 5, 1), 10.0)),
        budget=None,
    )
    assert (facts.status, facts.gap_days, facts.completeness.missing) == ("stale", 3, 5)
    assert health.source_health(store, "zendesk", now=NOW, stale_after=timedelta(hours=48)).status == "fresh"


def test_completeness_reads_the_vendor_total_for_the_same_range(store: Store) -> None:
    started = datetime(2026, 5, 3, 9, 0, tzinfo=timezone.utc)
    # Intercom counts conversations changed since the start, older ones included: only an upper bound.
    add_run(store, "intercom", mode="since", status="complete", started=started, range_start="2026-04-25T00:00:00Z",
            vendor_total=9)
    assert health.completeness(store, "intercom") == Completeness(
        "upper_bound", 9, 6, "2026-04-25T00:00:00Z", "2026-05-03T09:00:00Z", "2026-05-03T09:00:00Z",
        "6 stored for 2026-04-25 to 2026-05-03 09:00 UTC; Intercom reported 9 conversations changed in the "
        "range (older conversations updated since count too), so the difference need not be missing records. "
        "A full sync gives an exact check.")
    # A later resumed run reports only part of the total: the check stays with the dated run.
    add_run(store, "intercom", mode="resume", status="complete", started=started, vendor_total=1)
    assert health.completeness(store, "intercom").vendor_total == 9
    add_run(store, "intercom", mode="full", status="complete", started=started, range_start="2000-01-01T00:00:00Z",
            vendor_total=10)
    assert health.completeness(store, "intercom").message == (
        "10 stored of 10 reported by Intercom for all history until 2026-05-03 09:00 UTC.")
    # SurveyMonkey's total is exact for a dated range; the range's end is exclusive.
    add_run(store, "surveymonkey", mode="range", status="complete", started=started,
            range_start="2026-04-02T00:00:00Z", range_end="2026-04-04T00:00:00Z", vendor_total=2)
    assert health.completeness(store, "surveymonkey").status == "complete"
    add_run(store, "surveymonkey", mode="range", status="complete", started=started,
            range_start="2026-04-01T00:00:00Z", range_end="2026-04-06T00:00:00Z", vendor_total=7)
    missing = health.completeness(store, "surveymonkey")
    assert (missing.status, missing.stored, missing.missing) == ("missing", 5, 2)
    # More stored than reported: deleted at the vendor, or added by a webhook.
    add_run(store, "surveymonkey", mode="since", status="complete", started=started,
            range_start="2026-04-01T00:00:00Z", vendor_total=4)
    assert health.completeness(store, "surveymonkey").message == (
        "5 stored of 4 reported by SurveyMonkey for 2026-04-01 to 2026-05-03 09:00 UTC (1 more than the vendor "
        "counts: deleted there, or added by webhooks).")
    assert health.completeness(store, "zendesk") == Completeness(
        "unknown", None, None, None, None, None,
        "No completed sync has reported Zendesk's own total yet (Zendesk reports one on a full sync).")


def test_a_failing_source_shows_its_last_error_and_budget(store: Store) -> None:
    add_run(store, "surveymonkey", mode="since", status="complete",
            started=datetime(2026, 5, 2, 7, 0, tzinfo=timezone.utc),
            range_start="2026-04-01T00:00:00Z", vendor_total=5, requests=14,
            rate_limit={"minute": {"limit": 120, "remaining": 110}, "day": {"limit": 500, "remaining": 420}})
    add_run(store, "surveymonkey", mode="incremental", status="failed",
            started=datetime(2026, 5, 3, 9, 0, tzinfo=timezone.utc),
            requests=2, wait_seconds=0.0, errors="SurveyMonkey's daily request budget (500 requests) is spent",
            error_kind="rate_limited", rate_limit={"day": {"limit": 500, "remaining": 0}})
    facts = health.source_health(store, "surveymonkey", now=NOW)
    assert (facts.status, facts.last_run.status, facts.last_run.error_kind, facts.last_run.errors) == (
        "failing", "failed", "rate_limited", "SurveyMonkey's daily request budget (500 requests) is spent")
    assert facts.budget == Budget(500, 0, "2026-05-03T09:02:00Z", False)
    assert facts.budget.message == "0 of 500 requests left today (as of 2026-05-03T09:02:00Z)"
    tomorrow = health.source_health(store, "surveymonkey", now=NOW + timedelta(days=1))
    assert tomorrow.budget == Budget(500, 0, "2026-05-03T09:02:00Z", True)
    assert tomorrow.budget.message == (
        "reset at midnight UTC since the last sync (0 of 500 were left then): 500 requests today")


def test_a_source_never_synced(store: Store) -> None:
    facts = health.source_health(store, "intercom", now=NOW)
    assert (facts.status, facts.stale, facts.last_success_at, facts.last_run, facts.synced_from, facts.gaps,
            facts.records) == ("never", True, None, None, None, (), 10)
    assert [h.source for h in health.health_report(store, ["zendesk", "intercom"], now=NOW)] == [
        "zendesk", "intercom", "surveymonkey"]


def test_health_after_a_real_sync_against_the_rate_limited_emulator(tmp_path) -> None:
    emulator = Emulator(EmulatorConfig(time_scale=60.0, zendesk_tickets=120, intercom_conversations=40,
                                       surveymonkey_responses_per_survey=30))
    workspace = Workspace(demo=True, db_path=tmp_path / "h.db", configs=demo_configs(),
                          transport_factory=lambda: httpx.ASGITransport(app=create_app(emulator)))
    with workspace.store() as store:
        results = sync(store, workspace.integrations(), incremental=False)
        now = datetime.now(timezone.utc)
        report = {h.source: h for h in health.health_report(store, workspace.configured_sources(), now=now)}
    every = ("zendesk", "intercom", "surveymonkey", "spreadsheet")  # the demo spreadsheet counts its file's rows
    assert {s: r.status for s, r in results.items()} == dict.fromkeys(every, "complete")
    assert {s: (h.status, h.completeness.status, h.completeness.stored == h.completeness.vendor_total == h.records)
            for s, h in report.items()} == dict.fromkeys(every, ("fresh", "complete", True))
    survey = report["surveymonkey"]
    # Every request SurveyMonkey answered came out of its 500 a day.
    assert survey.budget is not None and (survey.budget.limit, survey.budget.remaining, survey.budget.reset_since) == (
        500, 500 - results["surveymonkey"].requests, False)
    assert report["zendesk"].budget is None
    lines = health.health_lines(survey)
    assert lines[2].startswith("  completeness: complete - ") and lines[-1].startswith(
        f"  daily request budget: {500 - results['surveymonkey'].requests} of 500 requests left today")
