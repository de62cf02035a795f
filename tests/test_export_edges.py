"""CSV export edges: formulas behind a BOM, spaces or full-width signs are neutralized; NULs are dropped; a cell is
capped at 32,767 characters with a visible marker. The SQL the export runs (`neutralized_sql`) and the Python rule
(`neutralize`) stay equal, cell for cell."""

from __future__ import annotations

import csv
import io
import json
import sqlite3

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from feedback_sources.export import (
    FORMULA_LEAD,
    FORMULA_TRIGGERS,
    MAX_CELL_CHARS,
    TRUNCATED_MARKER,
    export_csv,
    neutralize,
    neutralized_sql,
    register_sql_functions,
)
from feedback_sources.store import Filters, Store
from tests.conftest import make_record

EDGE_CHARACTERS = [*FORMULA_TRIGGERS, *FORMULA_LEAD, "\x00", "'", "a", "1", "é", "🎉", " ", "\u2028"]
EDGE_TEXT = st.text(alphabet=st.sampled_from(EDGE_CHARACTERS), max_size=12)
# Around the cap: a prefix of edge characters, then filler to a length near 32,767.
NEAR_CAP = st.builds(lambda head, n, filler: head + filler * n, EDGE_TEXT,
                     st.integers(MAX_CELL_CHARS - 20, MAX_CELL_CHARS + 20), st.sampled_from(["x", "é", "🎉", "\x00"]))
CELLS = st.one_of(st.text(), EDGE_TEXT, NEAR_CAP, st.integers(min_value=-2**63, max_value=2**63 - 1),
                  st.floats(allow_nan=False), st.none())


def in_sql(value: object) -> object:
    with sqlite3.connect(":memory:") as conn:
        register_sql_functions(conn)
        [(neutralized,)] = conn.execute(f"SELECT {neutralized_sql('cell')} FROM (SELECT ? AS cell)", (value,))
    return neutralized


@settings(max_examples=300)
@given(CELLS)
def test_the_sql_neutralizes_exactly_like_python(value: object) -> None:
    assert in_sql(value) == neutralize(value)


def runs_as_formula(cell: str) -> bool:
    """What a spreadsheet would do: skip the lead characters, then look for a formula sign."""
    return cell.lstrip(FORMULA_LEAD).startswith(FORMULA_TRIGGERS)


@settings(max_examples=300)
@given(st.one_of(st.text(), EDGE_TEXT, NEAR_CAP))
def test_no_cell_runs_as_a_formula_holds_a_nul_or_passes_the_cap(value: str) -> None:
    cell = neutralize(value)
    assert not runs_as_formula(cell)
    assert "\x00" not in cell
    assert len(cell) <= MAX_CELL_CHARS
    without_nul = value.replace("\x00", "")
    expected = ("'" + without_nul) if runs_as_formula(without_nul) else without_nul
    if len(expected) <= MAX_CELL_CHARS:
        assert cell == expected  # nothing else changes
    else:
        assert cell == expected[: MAX_CELL_CHARS - len(TRUNCATED_MARKER)] + TRUNCATED_MARKER


@pytest.mark.parametrize(
    ("value", "cell"),
    [
        ("\ufeff=HYPERLINK(\"http://evil\")", "'\ufeff=HYPERLINK(\"http://evil\")"),
        ("  =1+1", "'  =1+1"),
        ("\u00a0@SUM(A1)", "'\u00a0@SUM(A1)"),
        ("\u3000+1", "'\u3000+1"),
        ("\u200b-2", "'\u200b-2"),
        ("\uff1dcmd|' /C calc'!A0", "'\uff1dcmd|' /C calc'!A0"),
        ("\uff0b1", "'\uff0b1"),
        ("\uff0d1", "'\uff0d1"),
        ("\uff20SUM(A1)", "'\uff20SUM(A1)"),
        ("=a\x00b", "'=ab"),
        ("\x00=1", "'=1"),
        ("plain text", "plain text"),
        ("  plain", "  plain"),
        ("a = b", "a = b"),
    ],
)
def test_formulas_behind_what_a_spreadsheet_skips_are_neutralized(value: str, cell: str) -> None:
    assert neutralize(value) == cell
    assert in_sql(value) == cell


def test_a_cell_over_the_cap_ends_with_a_visible_marker() -> None:
    cell = neutralize("=" + "x" * 40_000)
    assert len(cell) == MAX_CELL_CHARS
    assert cell.startswith("'=x") and cell.endswith("x… [truncated]")
    assert neutralize("y" * MAX_CELL_CHARS) == "y" * MAX_CELL_CHARS  # exactly at the cap: untouched


def test_an_export_holds_no_formula_no_nul_and_no_cell_over_the_cap(fresh_store: Store) -> None:
    fresh_store.upsert_records([
        make_record("1", title="\ufeff=HYPERLINK(\"http://evil\")", content="x" * 1_000_000),
        make_record("2", title="\uff20SUM(A1)", content="fine"),
    ])
    # A row written before records were cleaned, still holding a NUL.
    with fresh_store.write() as conn:
        conn.execute("UPDATE feedback SET content = ? WHERE source_id = '2'", ("=cmd\x00|calc",))
    buffer = io.StringIO()
    assert export_csv(fresh_store, Filters(), buffer, columns=["source_id", "title", "content"]) == 2
    [header, *rows] = list(csv.reader(io.StringIO(buffer.getvalue()[1:], newline="")))
    by_id = {row[0]: row for row in rows}
    assert by_id["1"][1] == "'\ufeff=HYPERLINK(\"http://evil\")"
    assert by_id["1"][2] == "x" * (MAX_CELL_CHARS - len(TRUNCATED_MARKER)) + TRUNCATED_MARKER
    assert by_id["2"][1:] == ["'\uff20SUM(A1)", "'=cmd|calc"]
    assert all(not runs_as_formula(cell) and "\x00" not in cell and len(cell) <= MAX_CELL_CHARS
               for row in rows for cell in row[1:])


@given(st.recursive(st.one_of(st.none(), st.integers(), EDGE_TEXT, st.text()),
                    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(EDGE_TEXT, inner, max_size=3)))
def test_json_columns_skip_the_nul_scan_and_still_match_python(value: object) -> None:
    # tags and metadata are JSON texts: a NUL inside is the escape "\u0000", never a raw NUL.
    text = json.dumps(value, ensure_ascii=False)
    assert "\x00" not in text
    with sqlite3.connect(":memory:") as conn:
        register_sql_functions(conn)
        [(neutralized,)] = conn.execute(f"SELECT {neutralized_sql('metadata')} FROM (SELECT ? AS metadata)", (text,))
    assert neutralized == neutralize(text)
