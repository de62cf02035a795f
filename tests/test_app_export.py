"""Export page (AppTest): the file holds exactly the filtered rows, chosen columns, neutralized formulas, BOM."""

from __future__ import annotations

import csv
import io
from app_fixtures import (
    XSS_TITLE,
    AppEnv,
    Download,
    app_env,  # noqa: F401  (fixture)
    day,
    downloads,  # noqa: F401  (fixture)
    run_page,
    seed,
)
from streamlit.testing.v1 import AppTest

from feedback_sources.export import DEFAULT_EXPORT_COLUMNS

EXPORT = "app_pages/export.py"


def parse(data: bytes) -> tuple[list[str], list[dict[str, str]]]:
    assert data.startswith("\ufeff".encode())  # Excel reads UTF-8 only with the BOM
    reader = csv.DictReader(io.StringIO(data.decode("utf-8-sig"), newline=""))
    rows = list(reader)
    return list(reader.fieldnames or []), rows


def row_count_metric(at: AppTest) -> str:
    return {m.label: m.value for m in at.metric}["Rows in the file"]


def test_export_of_a_filter_holds_exactly_its_rows(app_env: AppEnv, downloads: list[Download]) -> None:
    seed(app_env.demo_db)
    at = run_page(app_env, EXPORT, query={"source": "surveymonkey,intercom", "tier": "business,free"})
    assert row_count_metric(at) == "4"
    assert [b.label for b in at.get("download_button")] == ["Download CSV (4 rows)"]
    latest = downloads[-1]
    assert latest.mimetype == "text/csv"
    assert latest.filename == f"feedback_all_to_{day(0).isoformat()}_surveymonkey-intercom_business-free.csv"
    columns, rows = parse(latest.data)
    assert columns == list(DEFAULT_EXPORT_COLUMNS)
    assert [(r["source"], r["source_id"], r["customer_tier"]) for r in rows] == [
        ("intercom", "c1", "business"),
        ("surveymonkey", "r1", "business"),
        ("surveymonkey", "r2", "free"),
        ("intercom", "c4", "business"),
    ]
    by_id = {r["source_id"]: r for r in rows}
    assert by_id["r1"]["content"] == "'=HYPERLINK(\"http://evil\")"  # formula neutralized
    assert by_id["r2"]["content"] == "'+1 for exports"
    assert by_id["c1"]["tags"] == '["performance"]'


def test_changing_a_filter_on_the_export_page_changes_the_file(app_env: AppEnv, downloads: list[Download]) -> None:
    seed(app_env.demo_db)
    at = run_page(app_env, EXPORT)
    assert row_count_metric(at) == "12"
    at.multiselect(key="export_categories").set_value(["bug_report"]).run()
    assert row_count_metric(at) == "3"
    assert at.query_params == {"category": "bug_report"}
    _, rows = parse(downloads[-1].data)
    assert sorted(r["title"] for r in rows) == sorted(["Export crashes", "Old bug", XSS_TITLE])


def test_chosen_columns_only(app_env: AppEnv, downloads: list[Download]) -> None:
    seed(app_env.demo_db)
    at = run_page(app_env, EXPORT, query={"source": "zendesk", "period": "7d"})
    at.multiselect(key="export_columns").set_value(["created_at", "source_id", "title"]).run()
    columns, rows = parse(downloads[-1].data)
    assert columns == ["source_id", "title", "created_at"]  # the store's column order
    assert rows == [
        {"source_id": "1", "title": "Export crashes", "created_at": f"{day(-1).isoformat()}T12:00:00Z"},
        {"source_id": "2", "title": "Dark mode please", "created_at": f"{day(-2).isoformat()}T12:00:00Z"},
        {"source_id": "3", "title": "How do I invite teammates?", "created_at": f"{day(-3).isoformat()}T12:00:00Z"},
    ]
    assert downloads[-1].filename == f"feedback_{day(-6).isoformat()}_to_{day(0).isoformat()}_zendesk.csv"


def test_explore_filters_carry_over_to_export(app_env: AppEnv, downloads: list[Download]) -> None:
    seed(app_env.demo_db)
    at = run_page(app_env, "app_pages/explore.py")
    at.multiselect(key="explore_sources").set_value(["intercom"]).run()
    at.switch_page(EXPORT).run()
    assert at.multiselect(key="export_sources").value == ["intercom"]
    assert row_count_metric(at) == "4"
    assert at.query_params == {"source": "intercom"}


def test_empty_store_and_empty_result(app_env: AppEnv, downloads: list[Download]) -> None:
    at = run_page(app_env, EXPORT)
    assert [i.value for i in at.info] == ["The store is empty: sync some feedback first."]
    assert not at.get("download_button")
    seed(app_env.demo_db)
    at = run_page(app_env, EXPORT, query={"q": "zebra"})
    assert [i.value for i in at.info] == ["No rows match these filters, so there is nothing to export."]
    assert not at.get("download_button")
    assert downloads == []


def test_malformed_search_blocks_the_export(app_env: AppEnv, downloads: list[Download]) -> None:
    seed(app_env.demo_db)
    at = run_page(app_env, EXPORT, query={"q": "export OR"})
    assert [e.value for e in at.error] == ["Search not understood: OR needs a term on both sides, e.g. `export OR csv`."]
    assert not at.get("download_button")
