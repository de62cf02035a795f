"""Export: a CSV of exactly the rows the current filters select, formula-safe and readable by Excel (UTF-8 with BOM)."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from app_pages._shared import cached, current_mode, data_version, db_path, filter_bar, search_error, today
from feedback_sources.export import DEFAULT_EXPORT_COLUMNS, export_csv_bytes, export_filename
from feedback_sources.store import FEEDBACK_COLUMNS, Filters, Store
from feedback_sources.ui.explore_view import describe_view
from feedback_sources.ui.labels import human_label

COLUMN_LABELS = {"source_id": "Source ID", "customer_id": "Customer ID", "customer_tier": "Tier", "url": "Link",
                 "created_at": "Created", "updated_at": "Updated"}


def column_label(column: str) -> str:
    return COLUMN_LABELS.get(column, human_label(column))


# Up to this many rows the file is built with the page; above it only when the download is clicked.
EAGER_ROWS = 50_000


def _build(path: str, filters: Filters, columns: tuple[str, ...]) -> bytes:
    with Store(path) as store:
        data, _count = export_csv_bytes(store, filters, columns=columns)
    return data


def main() -> None:
    mode = current_mode()
    path = db_path(mode)
    version = data_version(path)
    st.title("Export")
    if version[0] == 0:
        st.info("The store is empty: sync some feedback first.", icon=":material/inbox:")
        st.page_link("app_pages/sync.py", label="Go to Sync", icon=":material/sync:")
        return

    st.caption("The file holds exactly the rows these filters select, the same filters as on Explore.")
    view = filter_bar("export", cached(path, version, Store.distinct_values, "source"), cached(path, version, Store.date_bounds))
    problem = search_error(view)
    if problem is not None:
        st.error(f"Search not understood: {problem}", icon=":material/search_off:")
        return
    filters = view.to_filters(today())
    st.dataframe(pd.DataFrame(describe_view(view, today()), columns=["Filter", "Value"]), hide_index=True)

    # The file keeps the store's column names (scripts read them); the picker shows them as words.
    chosen = st.multiselect("Columns", list(FEEDBACK_COLUMNS), default=list(DEFAULT_EXPORT_COLUMNS),
                            key="export_columns", format_func=column_label,
                            help="All columns by default; remove the ones you do not need.")
    columns = tuple(c for c in FEEDBACK_COLUMNS if c in chosen)
    count = int(cached(path, version, Store.count, filters))
    if count == 0:
        st.info("No rows match these filters, so there is nothing to export.", icon=":material/filter_alt_off:")
        return
    if not columns:
        st.warning("Choose at least one column.")
        return

    name = export_filename(filters, today())
    if count <= EAGER_ROWS:
        data: bytes | object = _build(str(path), filters, columns)
    else:
        data = lambda: _build(str(path), filters, columns)  # noqa: E731  (built when clicked, not on every rerun)
    left, right = st.columns([1, 3], vertical_alignment="bottom")
    left.metric("Rows in the file", f"{count:,}", border=True)
    with right:
        st.text(name)
        st.download_button(
            f"Download CSV ({count:,} rows)",
            data=data,
            file_name=name,
            mime="text/csv",
            type="primary",
            icon=":material/download:",
            key="export_download",
            on_click="ignore",
        )
    st.caption("Cells that a spreadsheet would run as a formula (starting with =, +, -, @) are prefixed with '.")


main()
