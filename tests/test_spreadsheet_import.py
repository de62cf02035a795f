"""Importing through the sync path: idempotent re-imports, updates on change, extended files, bad files that change
nothing, formula-looking cells verbatim in the store and neutralized on export, XLSX, the module's command line."""

from __future__ import annotations

import csv
import io
import os
import shutil
import sqlite3
import subprocess
import sys
from datetime import datetime, timezone
from pathlib import Path

import pytest
from openpyxl import Workbook

from feedback_sources.export import export_csv
from feedback_sources.integrations.base import FileIntegration, get_integration_class
from feedback_sources.sources.spreadsheet import SPEC
from feedback_sources.sources.spreadsheet.errors import SpreadsheetError
from feedback_sources.sources.spreadsheet.importer import run_import
from feedback_sources.sources.spreadsheet.integration import PAGE_SIZE, SpreadsheetIntegration
from feedback_sources.sources.spreadsheet.mapping import ColumnMap
from feedback_sources.sources.spreadsheet.settings import SavedImport, load_imports
from feedback_sources.store import Filters, Store

FIXTURES = Path(__file__).parent / "fixtures" / "spreadsheet"
ROOT = Path(__file__).resolve().parent.parent
G2_MAP = ColumnMap(id="Review ID", title="Review Title", content="What do you dislike?", customer="Reviewer Name",
                   email="Reviewer Email", tier="Market Segment", date="Review Date")
DUMP_COLUMNS = ("source", "source_id", "title", "content", "customer_id", "customer_email", "customer_name",
                "customer_tier", "category", "created_at", "updated_at", "metadata", "category_reason", "tier_reason")


def dump(db: Path) -> list[tuple]:
    """Every stored record, whole, in key order (synced_at aside: it says when, not what)."""
    conn = sqlite3.connect(db)
    try:
        return conn.execute(f"SELECT {', '.join(DUMP_COLUMNS)} FROM feedback ORDER BY source, source_id").fetchall()
    finally:
        conn.close()


def entry(path: Path, mapping: ColumnMap = G2_MAP, dataset: str = "g2", **options: str) -> SavedImport:
    return SavedImport(dataset=dataset, path=str(path), mapping=mapping, **options)


def counts(result) -> tuple[int, int, int, int]:
    return result.fetched, result.new, result.updated, result.unchanged


@pytest.fixture
def g2(tmp_path: Path) -> Path:
    path = tmp_path / "g2_reviews.csv"
    shutil.copy(FIXTURES / "g2_reviews.csv", path)
    return path


def test_registered_as_a_file_source() -> None:
    assert (SPEC.name, SPEC.kind) == ("spreadsheet", "file")
    assert not SPEC.secret_fields and SPEC.required_fields == ("path", "mapping")
    assert SPEC.integration_class() is SpreadsheetIntegration
    assert get_integration_class("spreadsheet") is SpreadsheetIntegration
    assert issubclass(SpreadsheetIntegration, FileIntegration)
    with pytest.raises(TypeError, match="reads files"):
        SpreadsheetIntegration(entry(FIXTURES / "g2_reviews.csv").config()).client()


def test_import_then_reimport_is_idempotent(tmp_path: Path, g2: Path) -> None:
    db = tmp_path / "feedback.db"
    first = run_import(entry(g2), db)
    assert (first.status, counts(first)) == ("complete", (3, 3, 0, 0))
    stored = dump(db)
    assert [row[1] for row in stored] == ["g2:g2-1001", "g2:g2-1002", "g2:g2-1003"]
    assert stored[0][2:10] == ("Great for triage", "Export crashes on large files", "ana@acme.example",
                               "ana@acme.example", "Ana Lima", "enterprise", "bug_report", "2026-03-04T00:00:00Z")
    again = run_import(entry(g2), db)
    assert (again.status, counts(again)) == ("complete", (0, 0, 0, 0))
    assert dump(db) == stored
    assert load_imports(db)["g2"].mapping == G2_MAP


def test_changed_row_is_updated_and_others_unchanged(tmp_path: Path, g2: Path) -> None:
    db = tmp_path / "feedback.db"
    run_import(entry(g2), db)
    before = {row[1]: row for row in dump(db)}
    text = g2.read_bytes().replace(b"Please add dark mode", b"Please add dark mode and a light one")
    g2.write_bytes(text)
    os.utime(g2, (g2.stat().st_atime, g2.stat().st_mtime + 5))
    result = run_import(entry(g2), db)
    assert (result.status, counts(result)) == ("complete", (3, 0, 1, 2))
    after = {row[1]: row for row in dump(db)}
    assert after["g2:g2-1001"] == before["g2:g2-1001"] and after["g2:g2-1003"] == before["g2:g2-1003"]
    changed = after["g2:g2-1002"]
    assert changed[3] == "Please add dark mode and a light one"
    assert changed[10] > before["g2:g2-1002"][10]  # a newer updated_at: newest version wins
    assert changed[:3] + changed[4:10] == before["g2:g2-1002"][:3] + before["g2:g2-1002"][4:10]


def test_extended_file_adds_only_the_new_rows(tmp_path: Path, g2: Path) -> None:
    db = tmp_path / "feedback.db"
    run_import(entry(g2), db)
    before = dump(db)
    with g2.open("ab") as handle:
        handle.write(b"g2-1004,Slow sync,Fast,Sync takes minutes,Dee Ray,dee@x.example,Enterprise,2,2026-03-07\r\n")
    result = run_import(entry(g2), db)
    assert (result.status, counts(result)) == ("complete", (1, 1, 0, 0))
    after = dump(db)
    assert after[:3] == before
    assert after[3][1:4] == ("g2:g2-1004", "Slow sync", "Sync takes minutes")


def test_content_hash_dedupes_without_id(tmp_path: Path) -> None:
    db = tmp_path / "feedback.db"
    path = tmp_path / "calls.csv"
    path.write_text("Account,Notes\nAcme,Wants SSO\nGlobex,Wants audit log\n", encoding="utf-8")
    mapping = ColumnMap(customer="Account", content="Notes")
    assert counts(run_import(entry(path, mapping, "calls"), db)) == (2, 2, 0, 0)
    path.write_text("Account,Notes\nGlobex,Wants audit log\nAcme,Wants SSO\nInitech,Wants SAML\n", encoding="utf-8")
    result = run_import(entry(path, mapping, "calls"), db)
    assert counts(result) == (3, 1, 0, 2)
    assert len(dump(db)) == 3


BAD_FILES = {
    "missing column": (b"Review ID,Title,Review Date\r\ng2-9,x,2026-01-01\r\n", "column 'What do you dislike?'", 1),
    "bad date": (b"Review ID,Review Title,What do you dislike?,Reviewer Name,Reviewer Email,Market Segment,"
                 b"Review Date\r\ng2-1,t,ok,A,a@x,Free,2026-01-01\r\ng2-2,t,ok,B,b@x,Free,someday\r\n",
                 "row 3, column 'Review Date'", 3),
    "wrong encoding": (b"Review ID,Review Title,What do you dislike?,Reviewer Name,Reviewer Email,Market Segment,"
                       b"Review Date\r\ng2-1,t,caf\xe9,A,a@x,Free,2026-01-01\r\n",
                       "row 2, column 'What do you dislike?'", 2),
    "empty": (b"", "the file is empty", None),
    "header only": (b"Review ID,Review Title,What do you dislike?,Reviewer Name,Reviewer Email,Market Segment,"
                    b"Review Date\r\n", "no data rows", 2),
}


@pytest.mark.parametrize("case", sorted(BAD_FILES))
def test_bad_file_names_row_and_column_and_changes_nothing(tmp_path: Path, g2: Path, case: str) -> None:
    db = tmp_path / "feedback.db"
    run_import(entry(g2), db)
    before = dump(db)
    runs_before = sqlite3.connect(db).execute("SELECT count(*) FROM sync_runs").fetchone()
    content, message, row = BAD_FILES[case]
    bad = tmp_path / "bad.csv"
    bad.write_bytes(content)
    with pytest.raises(SpreadsheetError) as caught:
        run_import(entry(bad, dataset="g2"), db)
    assert message in str(caught.value)
    assert caught.value.problems[0].row == row
    assert dump(db) == before
    assert sqlite3.connect(db).execute("SELECT count(*) FROM sync_runs").fetchone() == runs_before


def test_bad_file_inside_the_sync_fails_before_a_write(tmp_path: Path, g2: Path) -> None:
    """The integration checks the whole file itself, so a sync that skips the import's pre-check stores nothing."""
    from feedback_sources.sync import sync

    db = tmp_path / "feedback.db"
    run_import(entry(g2), db)
    before = dump(db)
    bad = tmp_path / "bad.csv"
    lines = ["Review ID,Review Title,What do you dislike?,Reviewer Name,Reviewer Email,Market Segment,Review Date"]
    lines += [f"n-{i},t,fine {i},A,a@x,Free,2026-01-01" for i in range(PAGE_SIZE + 10)]
    lines.append("n-last,t,fine,A,a@x,Free,not a date")
    bad.write_text("\n".join(lines) + "\n", encoding="utf-8")
    with Store(db) as store:
        results = sync(store, {"spreadsheet": SpreadsheetIntegration(entry(bad).config(), versions_from=db)})
    result = results["spreadsheet"]
    assert result.status == "failed" and result.error_kind == "config"
    assert f"row {PAGE_SIZE + 12}, column 'Review Date'" in (result.errors or "")
    assert dump(db) == before


def test_many_problems_are_counted_and_listed(tmp_path: Path) -> None:
    path = tmp_path / "dates.csv"
    path.write_text("body,when\n" + "".join(f"x{i},never\n" for i in range(30)), encoding="utf-8")
    with pytest.raises(SpreadsheetError) as caught:
        run_import(entry(path, ColumnMap(content="body", date="when"), "dates"), tmp_path / "f.db")
    assert caught.value.total == 30 and len(caught.value.problems) == 20
    assert [p.row for p in caught.value.problems] == list(range(2, 22))
    assert "and 10 more problems" in str(caught.value)


def test_large_file_streams_in_pages_and_resumes(tmp_path: Path) -> None:
    """2.5 pages of rows: three pages plus the closing cursor; a stop after the first page resumes at its end."""
    from feedback_sources.sync import sync

    path = tmp_path / "big.csv"
    total = PAGE_SIZE * 2 + PAGE_SIZE // 2
    path.write_text("id,body,date\n" + "".join(f"r{i},row {i} text,2026-01-02\n" for i in range(total)),
                    encoding="utf-8")
    config = entry(path, ColumnMap(id="id", content="body", date="date"), "big").config()
    db = tmp_path / "feedback.db"
    stored_pages: list[int] = []
    with Store(db) as store:
        # Stop at the first page boundary (not while the first page is still being checked and read).
        stopped = sync(store, {"spreadsheet": SpreadsheetIntegration(config, versions_from=db)},
                       on_progress=lambda progress: stored_pages.append(progress.pages),
                       should_stop=lambda: bool(stored_pages) and stored_pages[-1] >= 1)
    assert stopped["spreadsheet"].status == "cancelled"
    assert stopped["spreadsheet"].fetched == PAGE_SIZE and len(dump(db)) == PAGE_SIZE
    with Store(db) as store:
        resumed = sync(store, {"spreadsheet": SpreadsheetIntegration(config, versions_from=db)})
    assert resumed["spreadsheet"].status == "complete"
    assert (resumed["spreadsheet"].fetched, resumed["spreadsheet"].new) == (total - PAGE_SIZE, total - PAGE_SIZE)
    assert resumed["spreadsheet"].pages == 3  # two pages of rows and the page that marks the file done
    assert len(dump(db)) == total


def test_two_datasets_keep_their_own_positions(tmp_path: Path, g2: Path) -> None:
    db = tmp_path / "feedback.db"
    run_import(entry(g2), db)
    app = entry(FIXTURES / "app_store_reviews.csv",
                ColumnMap(id="Review ID", title="Title", content="Review", customer="Nickname", date="Date"), "apps")
    assert counts(run_import(app, db)) == (3, 3, 0, 0)
    assert counts(run_import(entry(g2), db)) == (0, 0, 0, 0)
    assert counts(run_import(app, db)) == (0, 0, 0, 0)
    rows = {row[1]: row for row in dump(db)}
    assert rows["apps:as-9001"][9] == "2026-03-04T00:00:00Z"  # 04.03.2026 is day first
    assert rows["apps:as-9002"][6] == "Zoë"


def test_formula_cells_stored_verbatim_and_neutralized_on_export(tmp_path: Path, g2: Path) -> None:
    db = tmp_path / "feedback.db"
    run_import(entry(g2), db)
    typeform = entry(FIXTURES / "typeform_responses.csv",
                     ColumnMap(id="#", content="What could we improve?", email="Email", tier="What plan are you on?",
                               date="Submitted At"), "nps")
    run_import(typeform, db)
    rows = {row[1]: row for row in dump(db)}
    assert rows["g2:g2-1003"][2] == '=HYPERLINK("http://evil.example","click")'
    assert rows["nps:k1l2m3n4o5"][3] == "@SUM(A1:A2) is what I typed in the survey"
    assert rows["nps:f6g7h8i9j0"][7] == "free"
    out = io.StringIO()
    with Store(db) as store:
        export_csv(store, Filters(sources=("spreadsheet",)), out)
    exported = list(csv.DictReader(io.StringIO(out.getvalue().lstrip("\ufeff"))))
    titles = {row["title"] for row in exported}
    contents = {row["content"] for row in exported}
    assert "'=HYPERLINK(\"http://evil.example\",\"click\")" in titles
    assert "'@SUM(A1:A2) is what I typed in the survey" in contents


def test_xlsx_import_with_excel_dates_and_update(tmp_path: Path) -> None:
    workbook = Workbook()
    sheet = workbook.active
    sheet.append(["Call ID", "Account", "Plan", "Notes", "Call date"])
    sheet.append(["c-1", "Acme", "Enterprise", "Needs SSO before renewal", datetime(2026, 3, 4, 9, 30)])
    sheet.append(["c-2", "Globex", "Team", "=not a formula, just notes", 46086])
    sheet["D3"].data_type = "s"  # text that starts with "=", as Excel stores a cell typed as text
    path = tmp_path / "calls.xlsx"
    workbook.save(path)
    mapping = ColumnMap(id="Call ID", customer="Account", tier="Plan", content="Notes", date="Call date")
    db = tmp_path / "feedback.db"
    assert counts(run_import(entry(path, mapping, "calls"), db)) == (2, 2, 0, 0)
    assert counts(run_import(entry(path, mapping, "calls"), db)) == (0, 0, 0, 0)
    rows = {row[1]: row for row in dump(db)}
    assert rows["calls:c-1"][6:10] == ("Acme", "enterprise", "other", "2026-03-04T09:30:00Z")
    assert rows["calls:c-2"][3] == "=not a formula, just notes" and rows["calls:c-2"][9] == "2026-03-05T00:00:00Z"
    sheet.append(["c-3", "Initech", "Free", "Please add SAML", datetime(2026, 3, 6)])
    sheet["D2"] = "Needs SSO and SCIM before renewal"
    workbook.save(path)
    os.utime(path, (path.stat().st_atime, path.stat().st_mtime + 5))
    assert counts(run_import(entry(path, mapping, "calls"), db)) == (3, 1, 1, 1)
    assert {row[1]: row for row in dump(db)}["calls:c-1"][3] == "Needs SSO and SCIM before renewal"


async def test_test_connection_checks_file_and_mapping(tmp_path: Path, g2: Path) -> None:
    ok = await SpreadsheetIntegration(entry(g2).config()).test_connection()
    assert ok.ok and "g2_reviews.csv is readable" in ok.message
    wrong = entry(g2, ColumnMap(content="Body"))
    failed = await SpreadsheetIntegration(wrong.config()).test_connection()
    assert not failed.ok and "column 'Body'" in failed.message
    missing = await SpreadsheetIntegration(entry(tmp_path / "gone.csv").config()).test_connection()
    assert not missing.ok and "is not a file" in missing.message


def test_module_command_line(tmp_path: Path, g2: Path) -> None:
    db = tmp_path / "feedback.db"
    command = [sys.executable, "-m", "feedback_sources.sources.spreadsheet", "import", str(g2), "--db", str(db)]
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    mapped = command + ["--map", "id=Review ID,title=Review Title,content=What do you dislike?,date=Review Date"]
    first = subprocess.run(mapped, capture_output=True, text=True, env=env, timeout=120)
    assert first.returncode == 0, first.stderr
    assert "3 rows read, 3 new, 0 updated, 0 unchanged" in first.stdout
    again = subprocess.run(command, capture_output=True, text=True, env=env, timeout=120)  # the saved mapping
    assert again.returncode == 0 and "0 rows read, 0 new" in again.stdout
    bad = subprocess.run(command[:4] + [str(FIXTURES / "app_store_reviews.csv"), "--db", str(db), "--map",
                                        "content=Review,date=Rating"], capture_output=True, text=True, env=env,
                         timeout=120)
    assert bad.returncode == 2 and "row 2, column 'Rating'" in bad.stderr
    wrong = subprocess.run(command + ["--map", "body=Review"], capture_output=True, text=True, env=env, timeout=120)
    assert wrong.returncode == 2 and "--map takes field=Column pairs" in wrong.stderr


async def test_the_integrations_rules_decide_category_and_tier(tmp_path: Path) -> None:
    from feedback_sources.models import Category, Tier
    from feedback_sources.rules import Rules

    path = tmp_path / "calls.csv"
    path.write_text("Notes,Account plan\nWants SSO for the whole org,Gold\n", encoding="utf-8")
    rules = Rules(keyword_categories=(("sso", Category.feature_request),), plan_tiers=(("gold", Tier.enterprise),))
    config = entry(path, ColumnMap(content="Notes", tier="Account plan"), "calls").config()
    pages = [page async for page in SpreadsheetIntegration(config, rules=rules).iter_pages()]
    record = pages[0].records[0]
    assert (record.category, record.customer_tier) == (Category.feature_request, Tier.enterprise)
    assert record.metadata["category_reason"] == "keyword `sso`"
    assert [len(page.records) for page in pages] == [1, 0]
    assert pages[-1].cursor["datasets"]["calls"]["complete"] is True


def test_a_rules_change_re_decides_imported_rows_as_a_fresh_import_would(tmp_path: Path) -> None:
    """A category cell is the row's tag (the tag rules read it, now and after a rules change); a cell that names a
    category outright decides alone; keywords read the title and the text, in the importer and in the store's SQL."""
    from dataclasses import replace

    from feedback_sources.models import Category
    from feedback_sources.rules import DEFAULT_RULES
    from feedback_sources.rules_store import apply_rules, save_rules

    path = tmp_path / "calls.csv"
    path.write_text(
        "Id,Title,Notes,Label\n"
        "1,Weekly call,The export dialog froze twice,bug\n"
        "2,Renewal,Slow but we love it,Praise\n"
        "3,Crash on login,Nothing else to add,\n"
        "4,Check-in,All fine this month,\n",
        encoding="utf-8",
    )
    mapping = ColumnMap(id="Id", title="Title", content="Notes", category="Label")
    changed = replace(DEFAULT_RULES, tag_categories={**DEFAULT_RULES.tag_categories, "bug": Category.complaint},
                      keyword_categories=(("crash", Category.question), ("slow", Category.complaint)) + tuple(
                          (words, category) for words, category in DEFAULT_RULES.keyword_categories
                          if words not in ("crash", "slow")))

    applied = tmp_path / "applied.db"
    run_import(entry(path, mapping, dataset="calls"), applied)
    before = [row[8:9] + row[12:13] for row in dump(applied)]
    assert before == [("bug_report", "tag `bug`"), ("praise", "column `Label` says `Praise`"),
                      ("bug_report", "keyword `crash`"), ("other", "default for this source")]
    with Store(applied) as store:
        apply_rules(store, changed, note="bug is a complaint; crash is a question")

    fresh = tmp_path / "fresh.db"
    with Store(fresh) as store:
        save_rules(store, changed, note="the same rules before the first import")
    run_import(entry(path, mapping, dataset="calls"), fresh)

    after = [row[8:9] + row[12:13] for row in dump(applied)]
    assert after == [("complaint", "tag `bug`"), ("praise", "column `Label` says `Praise`"),
                     ("question", "keyword `crash`"), ("other", "default for this source")]
    assert after == [row[8:9] + row[12:13] for row in dump(fresh)]
