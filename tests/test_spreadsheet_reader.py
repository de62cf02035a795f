"""Reading CSV and XLSX exports: encodings, delimiters, quoted line breaks, headers, bad files named by row/column."""

from __future__ import annotations

import codecs
from datetime import datetime
from pathlib import Path

import pytest
from openpyxl import Workbook

from feedback_sources.sources.spreadsheet.errors import SpreadsheetError
from feedback_sources.sources.spreadsheet.reader import ReadOptions, Table, detect_encoding, sniff_delimiter

FIXTURES = Path(__file__).parent / "fixtures" / "spreadsheet"


def rows(table: Table) -> list[tuple[int, dict]]:
    return list(table.rows())


def test_g2_csv_with_bom_crlf_and_quoted_newline() -> None:
    table = Table(FIXTURES / "g2_reviews.csv")
    assert table.encoding == "utf-8-sig"
    assert table.delimiter == ","
    assert table.headers[0] == "Review ID"  # the BOM is not part of the first header
    read = rows(table)
    assert [number for number, _ in read] == [2, 3, 4]
    assert read[0][1]["What do you like best?"] == "Fast search across tickets.\r\nTags are easy."
    assert read[2][1]["Review Title"] == '=HYPERLINK("http://evil.example","click")'


def test_app_store_semicolons_and_utf8_without_bom() -> None:
    table = Table(FIXTURES / "app_store_reviews.csv")
    assert (table.encoding, table.delimiter) == ("utf-8", ";")
    read = rows(table)
    assert read[0][1]["Review"] == "Since the last update the app crashes when I open a report; please fix"
    assert read[0][1]["Nickname"] == "käsefan"
    assert read[2][1]["Review"] == "Would love an iPad layout.\nTwo columns would be great"
    assert [number for number, _ in read] == [2, 3, 4]


def test_typeform_header_with_hash_and_commas_in_questions() -> None:
    table = Table(FIXTURES / "typeform_responses.csv")
    assert table.headers == ["#", "What could we improve?", "How likely are you to recommend us? (0-10)",
                             "What plan are you on?", "Email", "Submitted At", "Network ID"]
    assert rows(table)[2][1]["What could we improve?"] == "@SUM(A1:A2) is what I typed in the survey"


def test_utf16_with_bom_and_tabs(tmp_path: Path) -> None:
    path = tmp_path / "export.csv"
    path.write_bytes(codecs.BOM_UTF16_LE + "id\tbody\n1\tcafé ☕\n".encode("utf-16-le"))
    table = Table(path)
    assert (table.encoding, table.delimiter) == ("utf-16", "\t")
    assert rows(table) == [(2, {"id": "1", "body": "café ☕"})]


def test_cp1252_is_refused_with_row_and_column_then_read_when_chosen(tmp_path: Path) -> None:
    path = tmp_path / "windows.csv"
    path.write_bytes("id,body\n1,fine\n2,caf\u00e9 cr\u00e8me\n".encode("cp1252"))
    with pytest.raises(SpreadsheetError) as caught:
        rows(Table(path))
    problem = caught.value.problems[0]
    assert (problem.row, problem.column) == (3, "body")
    assert "0xE9" in problem.message and "CP1252" in problem.message
    assert rows(Table(path, ReadOptions(encoding="cp1252")))[1] == (3, {"id": "2", "body": "café crème"})


def test_utf16_without_bom_is_a_clear_message(tmp_path: Path) -> None:
    path = tmp_path / "nobom.csv"
    path.write_bytes("id,body\n1,x\n".encode("utf-16-le"))
    with pytest.raises(SpreadsheetError, match="UTF-16 text without a byte-order mark"):
        Table(path)


@pytest.mark.parametrize("content", [b"", b"   \n\n", b"\xef\xbb\xbf"])
def test_empty_file(tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "empty.csv"
    path.write_bytes(content)
    with pytest.raises(SpreadsheetError, match="empty"):
        Table(path)


def test_duplicate_header_named(tmp_path: Path) -> None:
    path = tmp_path / "dup.csv"
    path.write_text("id,Comment,Comment\n1,a,b\n", encoding="utf-8")
    with pytest.raises(SpreadsheetError) as caught:
        Table(path)
    assert (caught.value.problems[0].row, caught.value.problems[0].column) == (1, "Comment")


def test_row_with_more_cells_than_header_names_the_row(tmp_path: Path) -> None:
    path = tmp_path / "extra.csv"
    path.write_text("id,body\n1,ok\n2,one,two\n", encoding="utf-8")
    with pytest.raises(SpreadsheetError) as caught:
        rows(Table(path))
    assert caught.value.problems[0].row == 3


def test_blank_rows_keep_their_row_numbers(tmp_path: Path) -> None:
    path = tmp_path / "blank.csv"
    path.write_text("id,body\n1,a\n,\n\n3,c\n", encoding="utf-8")
    assert [number for number, _ in rows(Table(path))] == [2, 5]


@pytest.mark.parametrize(("sample", "expected"), [
    ("a,b,c\n1,2,3\n", ","), ("a;b;c\n1;2;3\n", ";"), ("a\tb\n1\t2\n", "\t"), ("a|b\n1|2\n", "|"),
    ("only\nvalue\n", ","), ('title;body\n"x, y";"1, 2, 3"\n', ";"),
])
def test_sniff_delimiter(sample: str, expected: str) -> None:
    assert sniff_delimiter(sample) == expected


def test_detect_encoding_choices() -> None:
    assert detect_encoding(b"abc", "cp1252") == "cp1252"
    assert detect_encoding(codecs.BOM_UTF8 + b"abc", "cp1252") == "utf-8-sig"  # the mark wins over a wrong choice
    with pytest.raises(SpreadsheetError, match="unknown encoding"):
        detect_encoding(b"abc", "ebcdic")


def test_xlsx_values_dates_numbers_and_formula_text(tmp_path: Path) -> None:
    workbook = Workbook()
    sheet = workbook.active
    sheet.append(["Call ID", "Notes", "Date", "Seats"])
    sheet.append(["c-1", "Wants SSO", datetime(2026, 3, 4, 9, 30), 25])
    sheet.append([None, None, None, None])
    sheet.append(["c-2", "'=cmd|' /C calc'!A0", 46085, 3.0])
    sheet["B4"].data_type = "s"
    path = tmp_path / "calls.xlsx"
    workbook.save(path)
    table = Table(path)
    assert table.kind == "xlsx" and table.headers == ["Call ID", "Notes", "Date", "Seats"]
    read = rows(table)
    assert read[0] == (2, {"Call ID": "c-1", "Notes": "Wants SSO", "Date": datetime(2026, 3, 4, 9, 30), "Seats": 25})
    assert read[1][0] == 4 and read[1][1]["Date"] == 46085
    assert read[1][1]["Notes"] == "'=cmd|' /C calc'!A0"


def test_not_a_workbook(tmp_path: Path) -> None:
    path = tmp_path / "broken.xlsx"
    path.write_bytes(b"PK\x03\x04 this is not a zip")
    with pytest.raises(SpreadsheetError, match="not a readable XLSX"):
        Table(path)
