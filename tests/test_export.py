from __future__ import annotations

import csv
import io
import sqlite3
from datetime import date

from hypothesis import given
from hypothesis import strategies as st

from feedback_sources.export import (
    DEFAULT_EXPORT_COLUMNS,
    FORMULA_TRIGGERS,
    export_csv,
    export_filename,
    neutralize,
    neutralized_sql,
    register_sql_functions,
    write_values,
)
from feedback_sources.store import Filters, Store
from tests.conftest import make_record


def read_csv(data: str) -> list[list[str]]:
    assert data.startswith("\ufeff")
    return list(csv.reader(io.StringIO(data[1:])))


def test_export_writes_exactly_the_filtered_rows(fresh_store: Store) -> None:
    fresh_store.upsert_records([
        make_record("1", customer_tier="enterprise", title="=HYPERLINK(\"http://evil\")"),
        make_record("2", customer_tier="free"),
    ])
    buffer = io.StringIO()
    count = export_csv(fresh_store, Filters(tiers=("enterprise",)), buffer, columns=["source_id", "title", "customer_tier"])
    assert count == 1
    assert read_csv(buffer.getvalue()) == [
        ["source_id", "title", "customer_tier"],
        ["1", "'=HYPERLINK(\"http://evil\")", "enterprise"],
    ]


def test_export_to_a_file_is_utf8_with_bom(fresh_store: Store, tmp_path) -> None:
    fresh_store.upsert_records([make_record("1", content="Café — naïve ✓")])
    path = tmp_path / "out.csv"
    assert export_csv(fresh_store, Filters(), path) == 1
    rows = read_csv(path.read_text(encoding="utf-8"))
    assert rows[0] == list(DEFAULT_EXPORT_COLUMNS)
    assert rows[1][DEFAULT_EXPORT_COLUMNS.index("content")] == "Café — naïve ✓"
    assert not (tmp_path / "out.csv.part").exists()


SPREADSHEET_VALUES = st.one_of(st.text(), st.integers(min_value=-2**63, max_value=2**63 - 1),
                                st.floats(allow_nan=False), st.none())


@given(SPREADSHEET_VALUES)
def test_sqlite_neutralizes_exactly_like_python(value: object) -> None:
    # Exports neutralize in SQL (neutralized_sql); neutralize() is the rule it must follow, cell for cell.
    with sqlite3.connect(":memory:") as conn:
        register_sql_functions(conn)
        [(neutralized,)] = conn.execute(f"SELECT {neutralized_sql('cell')} FROM (SELECT ? AS cell)", (value,))
    assert neutralized == neutralize(value)


@given(st.text())
def test_no_text_cell_can_start_a_formula(value: str) -> None:
    with sqlite3.connect(":memory:") as conn:
        register_sql_functions(conn)
        rows = conn.execute(f"SELECT {neutralized_sql('cell')} FROM (SELECT ? AS cell)", (value,))
        buffer = io.StringIO()
        assert write_values(buffer, ["text"], rows) == 1
    [header, row] = list(csv.reader(io.StringIO(buffer.getvalue()[1:], newline="")))
    assert not row[0].startswith(FORMULA_TRIGGERS)
    assert row[0] == neutralize(value)


@given(st.one_of(st.integers(), st.floats(allow_nan=False)))
def test_numbers_are_untouched(value: float) -> None:
    assert neutralize(value) == value


def test_filename_names_the_range_and_filters() -> None:
    name = export_filename(Filters(sources=("zendesk",), tiers=("enterprise",), start=date(2026, 1, 1), end=date(2026, 1, 31)))
    assert name == "feedback_2026-01-01_to_2026-01-31_zendesk_enterprise.csv"
    assert export_filename(Filters(), today=date(2026, 2, 2)) == "feedback_all_to_2026-02-02.csv"
