"""The spreadsheet panel in Streamlit's AppTest: guessed mapping, preview as data, problems with rows, Import.

The panel is rendered by a tiny script calling `render(context)` with the context the Connections page hands
every source panel (mode, db_path, credentials), so it is tested on its own.
"""

from __future__ import annotations

import shutil
import sqlite3
from pathlib import Path

from streamlit.testing.v1 import AppTest

FIXTURES = Path(__file__).parent / "fixtures" / "spreadsheet"
TIMEOUT = 60


def script(db: str) -> None:
    from types import SimpleNamespace

    from feedback_sources.sources.spreadsheet.panel import render

    render(SimpleNamespace(mode="real", db_path=db, credentials=None))


def panel(db: Path) -> AppTest:
    at = AppTest.from_function(script, args=(str(db),), default_timeout=TIMEOUT)
    return at.run()


def selectbox(at: AppTest, label: str):
    return next(box for box in at.selectbox if box.label == label)


def stored(db: Path) -> list[tuple]:
    conn = sqlite3.connect(db)
    try:
        return conn.execute("SELECT source_id, title, content, customer_tier, created_at FROM feedback "
                            "ORDER BY source_id").fetchall()
    finally:
        conn.close()


def test_path_guesses_preview_and_import(tmp_path: Path) -> None:
    source = tmp_path / "g2_reviews.csv"
    shutil.copy(FIXTURES / "g2_reviews.csv", source)
    db = tmp_path / "feedback.db"
    at = panel(db)
    assert not at.exception
    assert "Choose a file to map its columns." in [info.value for info in at.info]
    at.text_input[0].input(str(source)).run()
    assert not at.exception
    assert selectbox(at, "Feedback text").value == "What do you dislike?"
    assert selectbox(at, "Row id (for updates)").value == "Review ID"
    assert selectbox(at, "Date").value == "Review Date"
    assert at.text_input[1].value == "g2-reviews"
    preview = at.dataframe[0].value
    assert list(preview["id"]) == ["g2-reviews:g2-1001", "g2-reviews:g2-1002", "g2-reviews:g2-1003"]
    assert preview["title"][2] == '=HYPERLINK("http://evil.example","click")'  # shown as data, verbatim
    assert not db.exists()  # a preview writes nothing
    at.button[0].click().run()
    assert not at.exception
    assert [s.value for s in at.success] == ["Imported: 3 rows read, 3 new, 0 updated, 0 unchanged."]
    rows = stored(db)
    assert [row[0] for row in rows] == ["g2-reviews:g2-1001", "g2-reviews:g2-1002", "g2-reviews:g2-1003"]
    assert rows[0][1:] == ("Great for triage", "Export crashes on large files", "enterprise", "2026-03-04T00:00:00Z")

    again = panel(db)  # the saved import comes back with its mapping
    assert selectbox(again, "Saved imports").options == ["(a new file)", "g2-reviews"]
    selectbox(again, "Saved imports").select("g2-reviews").run()
    assert selectbox(again, "Feedback text").value == "What do you dislike?"
    again.button[0].click().run()
    assert [s.value for s in again.success] == ["Imported: 0 rows read, 0 new, 0 updated, 0 unchanged."]
    assert stored(db) == rows


def test_problems_listed_with_rows_and_nothing_stored(tmp_path: Path) -> None:
    source = tmp_path / "apps.csv"
    source.write_text("Date;Review;Review ID\n2026-03-04;fine;a\n13/04/2026;<b>bold</b> **stars**;b\n",
                      encoding="utf-8")
    db = tmp_path / "feedback.db"
    at = panel(db)
    at.text_input[0].input(str(source)).run()
    assert not at.exception
    problems = at.dataframe[1].value
    assert list(problems["row"]) == [3] and list(problems["column"]) == ["Date"]
    assert "day first" in problems["problem"][0]
    at.button[0].click().run()
    assert [e.value for e in at.error][-1] == "This file cannot be imported as it is. Nothing stored has changed."
    assert not db.exists() or stored(db) == []
    at.checkbox[0].check().run()  # day first: 13/04/2026 is 13 April
    assert len(at.dataframe) == 1
    preview = at.dataframe[0].value
    assert preview["content"][1] == "<b>bold</b> **stars**"
    at.button[0].click().run()
    assert [s.value for s in at.success] == ["Imported: 2 rows read, 2 new, 0 updated, 0 unchanged."]
    assert stored(db)[1] == ("apps:b", None, "<b>bold</b> **stars**", None, "2026-04-13T00:00:00Z")


def test_unreadable_file_is_a_message(tmp_path: Path) -> None:
    source = tmp_path / "windows.csv"
    source.write_bytes("Notes\ncaf\u00e9\n".encode("cp1252"))
    at = panel(tmp_path / "feedback.db")
    at.text_input[0].input(str(source)).run()
    assert not at.exception
    problems = at.dataframe[-1].value
    assert list(problems["row"]) == [2] and "CP1252" in problems["problem"][0]
    selectbox(at, "Encoding").select("cp1252").run()
    assert at.dataframe[0].value["content"][0] == "café"
