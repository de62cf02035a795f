"""Read a CSV or XLSX export row by row: encoding and delimiter detection, header checks, streaming.

A PM's export can be a million rows, so nothing here holds more than one row (plus a 64 KB sample for sniffing).
Row numbers are the ones a spreadsheet program shows: the header is row 1, the first data row is row 2, and a CSV
record with a quoted line break is still one row.

Encodings: UTF-8 with or without a byte-order mark and UTF-16 with one are recognised; Windows "ANSI" exports
(CP1252 / Latin-1) cannot be told apart from damaged UTF-8 reliably, so they are read only when chosen, and a file
that is not UTF-8 gets a message naming the first row and column with a byte that is not.
"""

from __future__ import annotations

import codecs
import csv
import re
import sys
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, datetime, time
from pathlib import Path
from typing import Any, Literal

from .errors import Problem, SpreadsheetError

ENCODINGS: tuple[str, ...] = ("auto", "utf-8", "utf-16", "cp1252", "latin-1")
DELIMITERS: dict[str, str] = {",": "comma", ";": "semicolon", "\t": "tab", "|": "pipe"}
SAMPLE_BYTES = 64 * 1024
XLSX_SUFFIXES = (".xlsx", ".xlsm")
_UNDECODABLE = re.compile("[\udc80-\udcff]")

# A sales-call note can be long; the csv module's default cap (128 KB) would fail it with an obscure message.
csv.field_size_limit(min(sys.maxsize, 2**31 - 1))

Cell = str | int | float | bool | datetime | date | time | None


@dataclass(frozen=True)
class ReadOptions:
    """How to read the file: "auto" detects what can be detected safely."""

    encoding: str = "auto"
    delimiter: str | None = None  # None: sniffed from the first 64 KB
    sheet: str | None = None  # XLSX: a sheet name; None is the first sheet


def file_kind(path: str | Path) -> Literal["csv", "xlsx"]:
    """XLSX by its suffix or by its zip signature (an export renamed to .csv by mistake is still read right)."""
    path = Path(path)
    if path.suffix.lower() in XLSX_SUFFIXES:
        return "xlsx"
    with path.open("rb") as handle:
        return "xlsx" if handle.read(4) == b"PK\x03\x04" else "csv"


def detect_encoding(head: bytes, choice: str = "auto") -> str:
    """The codec to read a CSV with, from its first bytes and the PM's choice."""
    if choice not in ENCODINGS:
        raise SpreadsheetError([Problem(f"unknown encoding {choice!r}; choose one of {', '.join(ENCODINGS)}")])
    if head.startswith(codecs.BOM_UTF8):
        return "utf-8-sig"
    if head.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        return "utf-16"
    if choice != "auto":
        return choice
    if head[:2000].count(b"\x00") > len(head[:2000]) // 4:
        raise SpreadsheetError([Problem(
            "the file looks like UTF-16 text without a byte-order mark, which cannot be read safely"
        )], hint="Save it again as CSV UTF-8 (Excel: File > Save As > CSV UTF-8).")
    return "utf-8"


def sniff_delimiter(sample: str) -> str:
    """csv.Sniffer on the sample, checked against the header line; the most frequent candidate when it guesses
    wrong or gives up (it does on one-column files and on samples cut inside a quoted note)."""
    lines = sample.splitlines()
    header = lines[0] if lines else ""
    try:
        sniffed = csv.Sniffer().sniff(sample, delimiters="".join(DELIMITERS)).delimiter
    except csv.Error:
        sniffed = None
    if sniffed in DELIMITERS and header.count(sniffed) > 0:
        return sniffed
    counts = {candidate: header.count(candidate) for candidate in DELIMITERS}
    best = max(counts, key=lambda candidate: counts[candidate])
    return best if counts[best] > 0 else ","


def cell_text(value: Cell) -> str:
    """A cell as the text a PM sees: numbers without a spurious ".0", dates in ISO form, blanks empty."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "TRUE" if value else "FALSE"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, (datetime, date, time)):
        return value.isoformat()
    return str(value)


class Table:
    """One sheet of a file: its header and an iterator over its data rows, read lazily each time `rows()` runs."""

    def __init__(self, path: str | Path, options: ReadOptions = ReadOptions()):
        self.path = Path(path)
        self.options = options
        if not self.path.is_file():
            raise SpreadsheetError([Problem(f"{self.path} is not a file that can be read")],
                                   hint="Check the path, or upload the file again.")
        self.kind = file_kind(self.path)
        self.encoding: str | None = None
        self.delimiter: str | None = None
        if self.kind == "csv":
            with self.path.open("rb") as handle:
                head = handle.read(SAMPLE_BYTES)
            if not head.strip():
                raise SpreadsheetError([Problem("the file is empty")], hint="Export the data again; the file has no rows.")
            self.encoding = detect_encoding(head, options.encoding)
            sample = head.decode(self.encoding, errors="replace")
            self.delimiter = options.delimiter or sniff_delimiter(sample)
            if self.delimiter not in DELIMITERS:
                raise SpreadsheetError([Problem(f"unsupported delimiter {self.delimiter!r}; "
                                                f"use one of {', '.join(map(repr, DELIMITERS))}")])
        self.headers = self._read_headers()

    # -- header ---------------------------------------------------------------------------------------------------

    def _read_headers(self) -> list[str]:
        for number, cells in self._raw_rows():
            if any(cell_text(cell).strip() for cell in cells):
                if number != 1:
                    raise SpreadsheetError([Problem("the header must be the first row", row=number)])
                return self._check_headers([cell_text(cell).strip() for cell in cells])
            break
        raise SpreadsheetError([Problem("the file is empty (no header row)")],
                               hint="Export the data again with a header row naming each column.")

    @staticmethod
    def _check_headers(names: list[str]) -> list[str]:
        while names and not names[-1]:
            names.pop()
        problems: list[Problem] = []
        seen: set[str] = set()
        headers: list[str] = []
        for index, name in enumerate(names, start=1):
            if _UNDECODABLE.search(name):
                problems.append(Problem(_undecodable_message(name), row=1, column=f"#{index}"))
                continue
            name = name or f"Column {index}"
            if name in seen:
                problems.append(Problem("this column name appears twice; rename one of them", row=1, column=name))
            seen.add(name)
            headers.append(name)
        if problems:
            raise SpreadsheetError(problems)
        return headers

    # -- rows -----------------------------------------------------------------------------------------------------

    def rows(self) -> Iterator[tuple[int, dict[str, Cell]]]:
        """(row number, {header: value}) for every non-blank data row. A row with more filled cells than the header
        or with bytes that are not text in the file's encoding raises, naming the row and column."""
        width = len(self.headers)
        iterator = self._raw_rows()
        next(iterator, None)  # the header
        for number, cells in iterator:
            if not any(cell_text(cell).strip() for cell in cells):
                continue
            extra = [cell for cell in cells[width:] if cell_text(cell).strip()]
            if extra:
                raise SpreadsheetError([Problem(
                    f"the row has {width + len(extra)} filled cells but the header names {width} columns "
                    "(a delimiter inside an unquoted value?)", row=number)])
            values: dict[str, Cell] = {}
            for index, header in enumerate(self.headers):
                value = cells[index] if index < len(cells) else None
                if isinstance(value, str) and _UNDECODABLE.search(value):
                    raise SpreadsheetError([Problem(_undecodable_message(value), row=number, column=header)],
                                           hint="Choose the file's encoding (Windows exports are often CP1252) "
                                                "or save it again as CSV UTF-8.")
                values[header] = value
            yield number, values

    def _raw_rows(self) -> Iterator[tuple[int, list[Cell]]]:
        if self.kind == "xlsx":
            yield from self._xlsx_rows()
        else:
            yield from self._csv_rows()

    def _csv_rows(self) -> Iterator[tuple[int, list[Cell]]]:
        assert self.encoding is not None and self.delimiter is not None
        # surrogateescape keeps an undecodable byte in the text as a lone surrogate, so the row and column it sits in
        # can be named instead of failing somewhere in an 8 KB decoding chunk.
        errors = "surrogateescape" if self.encoding.startswith("utf-8") else "strict"
        with self.path.open("r", encoding=self.encoding, errors=errors, newline="") as handle:
            reader = csv.reader(handle, delimiter=self.delimiter, quotechar='"', doublequote=True, strict=False)
            number = 0
            try:
                for cells in reader:
                    number += 1
                    yield number, list(cells)
            except csv.Error as error:
                raise SpreadsheetError([Problem(f"the CSV cannot be read: {error}", row=number + 1)]) from None
            except UnicodeDecodeError as error:
                raise SpreadsheetError([Problem(f"the file is not {self.encoding} text ({error.reason})",
                                                row=number + 1)]) from None

    def _xlsx_rows(self) -> Iterator[tuple[int, list[Cell]]]:
        from openpyxl import load_workbook
        from openpyxl.utils.exceptions import InvalidFileException

        try:
            # data_only: a formula cell gives the value Excel last computed; text that merely starts with "=" stays text.
            workbook = load_workbook(self.path, read_only=True, data_only=True)
        except (InvalidFileException, zipfile.BadZipFile, KeyError, OSError) as error:
            raise SpreadsheetError([Problem(f"the file is not a readable XLSX workbook ({error})")],
                                   hint="Open it in Excel or Sheets and save it again as .xlsx or CSV UTF-8.") from None
        try:
            if self.options.sheet:
                if self.options.sheet not in workbook.sheetnames:
                    raise SpreadsheetError([Problem(f"the workbook has no sheet {self.options.sheet!r}; "
                                                    f"its sheets: {', '.join(workbook.sheetnames)}")])
                sheet = workbook[self.options.sheet]
            else:
                sheet = workbook.worksheets[0]
            for number, cells in enumerate(sheet.iter_rows(values_only=True), start=1):
                yield number, list(cells)
        finally:
            workbook.close()


def _undecodable_message(value: str) -> str:
    byte = ord(_UNDECODABLE.search(value).group()) - 0xDC00  # type: ignore[union-attr]
    return (f"byte 0x{byte:02X} is not UTF-8 text; the file is probably in a Windows encoding: choose CP1252 or "
            "Latin-1 as its encoding, or save it again as CSV UTF-8")


def text_sample(rows: Iterator[tuple[int, dict[str, Cell]]], limit: int) -> list[tuple[int, dict[str, Cell]]]:
    """The first `limit` rows (for a preview), read lazily."""
    taken: list[tuple[int, dict[str, Cell]]] = []
    for item in rows:
        taken.append(item)
        if len(taken) >= limit:
            break
    return taken


__all__ = ["ENCODINGS", "DELIMITERS", "ReadOptions", "Table", "cell_text", "detect_encoding", "file_kind",
           "sniff_delimiter", "text_sample"]
