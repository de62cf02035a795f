"""Source health page (AppTest): badges, freshness, completeness, gaps, the last run's error shown as code, and
SurveyMonkey's daily budget; the stale age is a setting."""

from __future__ import annotations

from datetime import datetime, time, timedelta, timezone

from app_fixtures import (
    AppEnv,
    app_env,  # noqa: F401  (fixture)
    markdown_bodies,
    run_page,
    texts,
)
from streamlit.testing.v1 import AppTest

from feedback_sources.models import NormalizedRecord
from feedback_sources.store import Store, iso_utc

HEALTH = "app_pages/health.py"
HOSTILE_ERROR = "<img src=x onerror=alert(1)> **bold** [x](javascript:alert(1))"


def prepare(path: object) -> datetime:
    """Zendesk: synced 30 hours ago, 5 tickets short of the vendor's count, one empty day. SurveyMonkey: failing,
    with a vendor error that carries markup, and its budget. Intercom: never synced."""
    now = datetime.now(timezone.utc).replace(microsecond=0)
    finished = now - timedelta(hours=30)
    first = finished.date() - timedelta(days=10)
    with Store(path) as store:
        store.upsert_records([
            NormalizedRecord(source="zendesk", source_id=f"{n}-{i}", content="c",
                             created_at=datetime.combine(first + timedelta(days=n), time(6 + i), tzinfo=timezone.utc))
            for n in range(10) if n != 4 for i in range(6)
        ])
        run = store.start_run("g", "zendesk", "full", "2000-01-01T00:00:00Z", None)
        store.finish_run(run, status="complete", started_at=iso_utc(finished - timedelta(minutes=1)),
                         finished_at=iso_utc(finished), fetched=54, new=54, requests=4, wait_seconds=2.25,
                         vendor_total=59)
        run = store.start_run("g", "surveymonkey", "since", iso_utc(finished - timedelta(days=30)), None)
        store.finish_run(run, status="failed", requests=9, errors=HOSTILE_ERROR, error_kind="server",
                         rate_limit={"day": {"limit": 500, "remaining": 123}})
    return now


def panels(at: AppTest) -> list[str]:
    return [m.value for m in at.main.markdown if m.value.startswith("**")]


def metrics(at: AppTest) -> list[tuple[str, str]]:
    return [(m.label, m.value) for m in at.metric]


def test_every_source_gets_a_panel_with_its_facts(app_env: AppEnv) -> None:
    prepare(app_env.demo_db)
    at = run_page(app_env, HEALTH)
    assert [t.value for t in at.title] == ["Source health"]
    assert panels(at) == [
        "**Zendesk** :orange-badge[:material/schedule: Stale] :red-badge[Records missing]",
        "**Intercom** :gray-badge[Never synced] :gray-badge[No vendor total yet]",
        "**SurveyMonkey** :red-badge[:material/error: Last sync failed] :gray-badge[No vendor total yet]",
        "**Spreadsheet** :gray-badge[Never synced] :gray-badge[No row count yet]",
    ]
    assert metrics(at) == [
        ("Last successful sync", "1 d 6 h ago"), ("Records stored", "54"), ("Vendor's total", "59"),
        ("Empty days (gaps)", "1"),
        ("Last run", "Complete"), ("Requests", "4"), ("Waited on rate limits", "2.2 s"), ("Fetched", "54"),
        ("Last successful sync", "never"), ("Records stored", "0"), ("Vendor's total", "n/a"),
        ("Empty days (gaps)", "0"),
        ("Last successful sync", "never"), ("Records stored", "0"), ("Vendor's total", "n/a"),
        ("Empty days (gaps)", "0"),
        ("Last run", "Failed"), ("Requests", "9"), ("Waited on rate limits", "0.0 s"), ("Fetched", "0"),
        ("Last successful sync", "never"), ("Records stored", "0"), ("Rows in the file", "n/a"),
        ("Empty days (gaps)", "0"),
    ]
    assert len(at.error) == 1 and at.error[0].value.startswith("5 of 59 records reported by Zendesk")
    gaps = at.dataframe[0].value
    assert gaps[["days", "neighbours_median"]].values.tolist() == [[1, 6.0]]
    # The vendor's error is shown as code, never as markdown; the budget as plain text.
    assert [c.value for c in at.code] == [HOSTILE_ERROR]
    with Store(app_env.demo_db) as store:
        as_of = store.conn.execute("SELECT finished_at FROM sync_runs WHERE source = 'surveymonkey'").fetchone()[0]
    assert texts(at) == [f"123 of 500 requests left today (as of {as_of})"]
    for body in markdown_bodies(at):
        assert "onerror" not in body and "javascript" not in body


def test_the_stale_age_is_a_setting(app_env: AppEnv) -> None:
    prepare(app_env.demo_db)
    at = run_page(app_env, HEALTH)
    at.number_input(key="health_stale_hours").set_value(48.0).run()
    assert panels(at)[0] == "**Zendesk** :green-badge[:material/check: Fresh] :red-badge[Records missing]"
    at.number_input(key="health_min_median").set_value(7.0).run()
    assert ("Empty days (gaps)", "0") == metrics(at)[3]


def test_an_empty_workspace_shows_every_source_as_never_synced(app_env: AppEnv) -> None:
    at = run_page(app_env, HEALTH, mode="real")
    assert panels(at) == [
        "**Zendesk** :gray-badge[Never synced] :gray-badge[No vendor total yet]",
        "**Intercom** :gray-badge[Never synced] :gray-badge[No vendor total yet]",
        "**SurveyMonkey** :gray-badge[Never synced] :gray-badge[No vendor total yet]",
        "**Spreadsheet** :gray-badge[Never synced] :gray-badge[No row count yet]",
    ]
    assert not app_env.demo_db.exists()
