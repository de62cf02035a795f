"""The Connections page's spreadsheet section: file, column mapping, preview, problems, Import.

`render(context)` takes what the page hands every source panel: `context.mode` ("demo" or "real"),
`context.db_path` (the store the rows go to) and `context.credentials` (a credential store; a spreadsheet has no
secrets, so it is not read). Every cell is shown as data (st.dataframe, st.text), never as markdown: a review
can hold anything.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import streamlit as st

from ...integrations.base import ConfigError
from .errors import Problem, SpreadsheetError
from .importer import run_import
from .mapping import FIELD_LABELS, FIELDS, ColumnMap, RowProblem, check_dataset, guess_mapping, map_row, slug
from .reader import DELIMITERS, ENCODINGS, ReadOptions, Table
from .settings import SavedImport, load_imports

PREVIEW_ROWS = 10
NONE = "(not in this file)"
KEY = "spreadsheet_"


def uploads_dir(db_path: str | Path) -> Path:
    """Uploaded files are kept beside the store, so a re-import (or the command line) can read them again."""
    path = Path(db_path)
    return path.with_name(path.name + ".spreadsheet-files")


def _save_upload(uploaded: Any, db_path: str | Path) -> Path:
    data = uploaded.getvalue()
    digest = hashlib.sha256(data).hexdigest()[:12]
    name = Path(uploaded.name).name or "upload.csv"
    target = uploads_dir(db_path) / digest / name
    if not target.exists():
        target.parent.mkdir(parents=True, exist_ok=True)
        temporary = target.with_suffix(target.suffix + ".part")
        temporary.write_bytes(data)
        temporary.replace(target)
    return target


def _show_problems(error: SpreadsheetError) -> None:
    st.error("This file cannot be imported as it is. Nothing stored has changed.")
    st.dataframe(
        [{"row": p.row if p.row is not None else "", "column": p.column or "", "problem": p.message}
         for p in error.problems],
        hide_index=True, use_container_width=True,
    )
    if error.total > len(error.problems):
        st.text(f"… and {error.total - len(error.problems)} more problems.")
    if error.hint:
        st.text(error.hint)


def render(context: Any) -> None:
    db_path = Path(context.db_path)
    saved = load_imports(db_path)
    st.subheader("Import a spreadsheet")
    st.caption("A CSV or XLSX export: G2 or App Store reviews, Typeform responses, sales-call notes. "
               "Importing the same file again, or with rows added, stores only new and changed rows.")
    if saved:
        choice = st.selectbox("Saved imports", ["(a new file)", *saved], key=KEY + "saved")
    else:
        choice = "(a new file)"
    previous = saved.get(choice)
    uploaded = st.file_uploader("Upload a CSV or XLSX file", type=["csv", "tsv", "txt", "xlsx", "xlsm"],
                                key=KEY + "upload")
    typed = st.text_input("…or the path of a file on this computer", value=previous.path if previous else "",
                          key=KEY + "path_" + (previous.dataset if previous else "new"))
    path: Path | None = None
    if uploaded is not None:
        path = _save_upload(uploaded, db_path)
    elif typed.strip():
        path = Path(typed.strip()).expanduser()
    if path is None:
        st.info("Choose a file to map its columns.")
        return

    dataset_default = previous.dataset if previous else slug(uploaded.name if uploaded is not None else path.name)
    left, middle, right = st.columns(3)
    dataset = left.text_input("Dataset name", value=dataset_default, key=KEY + "dataset_" + dataset_default)
    encoding = middle.selectbox("Encoding", ENCODINGS, key=KEY + "encoding",
                                index=ENCODINGS.index(previous.encoding) if previous else 0)
    delimiter_labels = ["detect", *DELIMITERS.values()]
    delimiter_label = right.selectbox("Delimiter", delimiter_labels, key=KEY + "delimiter")
    delimiter = next((d for d, label in DELIMITERS.items() if label == delimiter_label), None)
    try:
        check_dataset(dataset)
    except ValueError as error:
        st.text(str(error))
        return
    options = ReadOptions(encoding=encoding, delimiter=delimiter)
    try:
        table = Table(path, options)
    except SpreadsheetError as error:
        _show_problems(error)
        return
    where = f"{table.kind.upper()}, {len(table.headers)} columns"
    if table.kind == "csv":
        where += f", {table.encoding}, {DELIMITERS.get(table.delimiter or ',', table.delimiter)}-separated"
    st.text(f"{path.name}: {where}")

    st.markdown("**Columns**")
    guessed = guess_mapping(table.headers)
    current = previous.mapping.columns() if previous else {}
    chosen: dict[str, str | None] = {}
    grid = st.columns(4)
    choices = [NONE, *table.headers]
    for index, field in enumerate(FIELDS):
        default = current.get(field) if previous else guessed.get(field)
        position = choices.index(default) if default in choices else 0
        picked = grid[index % 4].selectbox(FIELD_LABELS[field], choices, index=position,
                                           key=f"{KEY}map_{field}_{dataset}")
        chosen[field] = None if picked == NONE else picked
    day_first = st.checkbox("Dates are day first (03/04/2026 is 3 April)", key=KEY + "day_first",
                            value=previous.mapping.day_first if previous else False)
    if not chosen["content"]:
        st.warning("Choose the column that holds the feedback text.")
        return
    mapping = ColumnMap(**{k: v for k, v in chosen.items() if v}, day_first=day_first)

    st.markdown("**Preview**")
    preview: list[dict[str, Any]] = []
    problems: list[Problem] = []
    try:
        for number, row in table.rows():
            try:
                record = map_row(row, number, mapping, dataset=dataset, file_name=path.name,
                                 default_created=_modified(path))
            except RowProblem as problem:
                problems.append(problem.problem)
            else:
                preview.append({
                    "row": number, "id": record.source_id, "date": record.created_at.isoformat(),
                    "title": record.title or "", "content": record.content, "customer": record.customer_name or "",
                    "email": record.customer_email or "", "tier": record.customer_tier or "",
                    "category": record.category.value,
                })
            if len(preview) + len(problems) >= PREVIEW_ROWS:
                break
    except SpreadsheetError as error:
        _show_problems(error)
        return
    st.dataframe(preview, hide_index=True, use_container_width=True)
    if problems:
        _show_problems(SpreadsheetError(problems))

    entry = SavedImport(dataset=dataset, path=str(path.resolve()), mapping=mapping, encoding=encoding,
                        delimiter=delimiter, sheet=None)
    if st.button("Import", type="primary", key=KEY + "import"):
        _import(entry, db_path)


def _modified(path: Path) -> Any:
    from datetime import datetime, timezone

    return datetime.fromtimestamp(path.stat().st_mtime, tz=timezone.utc)


def _import(entry: SavedImport, db_path: Path) -> None:
    try:
        with st.spinner("Checking every row, then importing…"):
            result = run_import(entry, db_path)
    except SpreadsheetError as error:
        _show_problems(error)
        return
    except ConfigError as error:
        st.text(str(error))
        return
    if result.status != "complete":
        st.error("The import stopped; the rows stored so far stay, and importing again continues from there.")
        st.text(result.errors or result.status)
        return
    st.success(f"Imported: {result.fetched} rows read, {result.new} new, {result.updated} updated, "
               f"{result.unchanged} unchanged.")


__all__ = ["render", "uploads_dir"]
