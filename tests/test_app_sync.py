"""Sync page (AppTest): a sync against the emulator updates the status, the result table and the history."""

from __future__ import annotations

from datetime import timedelta

import pandas as pd
import pytest
from app_fixtures import (
    AppEnv,
    app_env,  # noqa: F401  (fixture)
    day,
    emulator_url,  # noqa: F401  (fixture)
    finish_sync,
    run_page,
)
from streamlit.testing.v1 import AppTest

from feedback_sources.emulator import DEMO_INTERCOM_TOKEN, DEMO_ZENDESK_EMAIL
from feedback_sources.store import Store

SYNC = "app_pages/sync.py"
RUN = "FormSubmitter:sync_form-Run sync"
RESULT_COLUMNS = ["source", "status", "mode", "fetched", "new", "updated", "errors", "duration_seconds"]


def tables(at: AppTest) -> list[pd.DataFrame]:
    return [frame.value for frame in at.dataframe]


def last_run(at: AppTest) -> pd.DataFrame:
    frame = tables(at)[0]
    assert list(frame.columns) == RESULT_COLUMNS
    return frame


def test_demo_sync_fills_the_demo_store_and_reports_each_source(app_env: AppEnv) -> None:
    at = run_page(app_env, SYNC)
    assert at.multiselect(key="sync_sources").value == ["zendesk", "intercom", "surveymonkey", "spreadsheet"]
    at.radio(key="sync_preset").set_value("90d")
    at.button(key=RUN).click().run()
    finish_sync(at, app_env.demo_db)  # the sync runs in the background now: the page shows it once it ends
    assert not at.exception
    [status] = at.status
    assert status.state == "complete", last_run(at).to_dict("records")
    assert [p.value for p in status.get("progress")] == [100, 100, 100, 100]
    results = last_run(at)
    assert list(results["source"]) == ["zendesk", "intercom", "surveymonkey", "spreadsheet"]
    assert list(results["status"]) == ["complete"] * 4
    assert list(results["mode"]) == ["since"] * 4
    assert (results["fetched"] > 0).all() and (results["new"] == results["fetched"]).all()
    assert results["errors"].isna().all()
    with Store(app_env.demo_db) as store:
        assert store.count() == int(results["new"].sum())
        # The API sources pull the range; a file is imported whole (its rows go back 120 days).
        oldest = store.conn.execute("SELECT MIN(created_at) FROM feedback WHERE source != 'spreadsheet'").fetchone()[0]
        whole_file = store.conn.execute("SELECT MIN(created_at) FROM feedback WHERE source = 'spreadsheet'").fetchone()[0]
    assert oldest is not None and oldest[:10] >= (day(0) - timedelta(days=91)).isoformat()
    assert whole_file is not None and whole_file[:10] < (day(0) - timedelta(days=91)).isoformat()
    assert status.label == f"Sync complete: {int(results['fetched'].sum()):,} records fetched"
    history = tables(at)[1]
    assert sorted(history["source"]) == ["intercom", "spreadsheet", "surveymonkey", "zendesk"]
    assert list(history["status"]) == ["complete"] * 4
    badges = [m.value.split(" ", 1)[1] for m in at.sidebar.markdown if m.value.startswith("**")]
    assert badges == [":green-badge[:material/check: Fresh]"] * 4
    assert not app_env.real_db.exists() or Store(app_env.real_db).count() == 0

    # The result table survives reruns; a second sync adds nothing new.
    at.run()
    assert last_run(at).equals(results)
    at.button(key=RUN).click().run()
    again = last_run(finish_sync(at, app_env.demo_db))
    assert list(again["new"]) == [0, 0, 0, 0]
    assert len(tables(at)[1]) == 8


def test_a_failing_source_does_not_hide_the_others(
    app_env: AppEnv, emulator_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ZENDESK_SUBDOMAIN", "demo")
    monkeypatch.setenv("ZENDESK_EMAIL", DEMO_ZENDESK_EMAIL)
    monkeypatch.setenv("ZENDESK_API_TOKEN", "canary-zd-sync-91ab")
    monkeypatch.setenv("ZENDESK_BASE_URL", f"{emulator_url}/zendesk/demo")
    monkeypatch.setenv("INTERCOM_ACCESS_TOKEN", DEMO_INTERCOM_TOKEN)
    monkeypatch.setenv("INTERCOM_BASE_URL", f"{emulator_url}/intercom")
    at = run_page(app_env, SYNC)
    assert at.radio(key="workspace_mode").value == "real"
    assert at.multiselect(key="sync_sources").value == ["zendesk", "intercom"]
    at.multiselect(key="sync_sources").set_value(["zendesk", "intercom", "surveymonkey"])
    at.button(key=RUN).click().run()
    finish_sync(at, app_env.real_db)
    [status] = at.status
    assert status.state == "error"
    assert status.label.startswith("Sync finished with errors in zendesk, surveymonkey")
    results = last_run(at).set_index("source")
    assert list(results["status"]) == ["failed", "complete", "failed"]
    assert results.loc["intercom", "new"] > 0
    assert results.loc["surveymonkey", "errors"] == "not configured: missing access_token"
    assert "401" in results.loc["zendesk", "errors"]
    errors = [e.value.replace("\\", "") for e in at.error]
    assert len(errors) == 2
    assert errors[0].startswith("Zendesk failed: zendesk: Zendesk did not accept the email and API token")
    assert errors[1] == "SurveyMonkey failed: not configured: missing access_token"
    with Store(app_env.real_db) as store:
        assert store.count() == results.loc["intercom", "new"]
        assert store.distinct_values("source") == ["intercom"]
    assert not app_env.demo_db.exists()
    assert not [e for e in errors if "canary" in e]


def test_custom_range_is_checked_before_anything_runs(app_env: AppEnv) -> None:
    at = run_page(app_env, SYNC)
    at.radio(key="sync_preset").set_value("custom")
    at.date_input(key="sync_custom").set_value((day(-1), day(-5)))
    at.button(key=RUN).click().run()
    assert [e.value for e in at.error] == ["The end date is before the start date."]
    assert not at.status
    assert [c.value for c in at.caption if "No sync" in c.value] == ["No sync has run in this workspace yet."]


def test_custom_range_syncs_only_that_range(app_env: AppEnv) -> None:
    at = run_page(app_env, SYNC)
    at.multiselect(key="sync_sources").set_value(["intercom"])
    at.radio(key="sync_preset").set_value("custom")
    at.date_input(key="sync_custom").set_value((day(-20), day(-11)))
    at.button(key=RUN).click().run()
    results = last_run(finish_sync(at, app_env.demo_db))
    assert list(results["mode"]) == ["range"] and list(results["status"]) == ["complete"]
    with Store(app_env.demo_db) as store:
        first, last = store.date_bounds()
    assert first is not None and last is not None
    assert (first[:10], last[:10]) >= (day(-20).isoformat(), "") and last[:10] <= day(-11).isoformat()


def test_choosing_no_source_asks_for_one(app_env: AppEnv) -> None:
    at = run_page(app_env, SYNC)
    at.multiselect(key="sync_sources").set_value([])
    at.button(key=RUN).click().run()
    assert [w.value for w in at.warning] == ["Choose at least one source."]
    assert not at.status


def test_real_workspace_without_credentials_points_to_connections(app_env: AppEnv) -> None:
    at = run_page(app_env, SYNC, mode="real")
    assert at.warning[0].value.startswith("No source is connected yet")
    assert at.multiselect(key="sync_sources").value == []
