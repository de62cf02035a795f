"""Source health: per source, whether its data is fresh and complete, where days are missing, and how its last run went.

Vendor error messages are shown with st.code; everything else here is the app's own wording and numbers.
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Any

import pandas as pd
import streamlit as st

from app_pages._shared import current_mode, data_version, db_path, source_label
from feedback_sources import health
from feedback_sources.store import Store
from feedback_sources.ui.text import md_escape, readable_date, readable_datetime
from feedback_sources.sources import registry, source_names

BADGES = {
    "fresh": ":green-badge[:material/check: Fresh]",
    "stale": ":orange-badge[:material/schedule: Stale]",
    "failing": ":red-badge[:material/error: Last sync failed]",
    "never": ":gray-badge[Never synced]",
}
COMPLETENESS_BADGES = {
    "complete": ":green-badge[Complete]",
    "missing": ":red-badge[Records missing]",
    "upper_bound": ":blue-badge[Cannot tell exactly]",
    "unknown": ":gray-badge[No vendor total yet]",
}


@st.cache_data(show_spinner=False, max_entries=32)
def _report(
    path: str, marker: Any, minute: str, stale_hours: float, min_gap_median: float, sources: tuple[str, ...]
) -> list[health.SourceHealth]:
    # `marker` (records and newest run) and `minute` only key the cache: ages move with the clock. The registered
    # sources are part of the key, so a source plugin installed or removed shows at once.
    with Store(path) as store:
        return health.health_report(store, sources, now=datetime.fromisoformat(minute),
                                    stale_after=timedelta(hours=stale_hours), min_gap_median=min_gap_median)


def run_marker(path: Any) -> Any:
    with Store(path) as store:
        runs = store.recent_runs(limit=1)
    return tuple(runs[0].items()) if runs else None


def source_panel(facts: health.SourceHealth, now: datetime) -> None:
    box = st.container(border=True)
    spec = registry().get(facts.source)
    from_file = spec is not None and spec.kind == "file"  # a file source counts the file's rows, not a vendor's
    completeness_badge = (":gray-badge[No row count yet]" if from_file and facts.completeness.status == "unknown"
                          else COMPLETENESS_BADGES[facts.completeness.status])
    box.markdown(f"**{source_label(facts.source) if spec is not None else 'Other source'}** "
                 f"{BADGES[facts.status]} {completeness_badge}")
    if spec is None:
        box.text(facts.source)
    columns = box.columns(4)
    # The report is cached for a minute; the age is read off the clock now.
    success = health.parse_moment(facts.last_success_at)
    age = (now - success).total_seconds() if success is not None else None
    columns[0].metric("Last successful sync", health.age_text(age),
                      help=f"On {readable_datetime(success)}" if success else "No sync has completed.")
    columns[1].metric("Records stored", f"{facts.records:,}",
                      help=f"Newest record created {readable_date(facts.newest_record)}" if facts.newest_record else None)
    completeness = facts.completeness
    vendor = f"{completeness.vendor_total:,}" if completeness.vendor_total is not None else "n/a"
    if from_file:
        columns[2].metric("Rows in the file", vendor, help="The rows the last completed import read from the file.")
    else:
        columns[2].metric("Vendor's total", vendor,
                          help="What the vendor reported for the range of the last full or dated sync.")
    columns[3].metric("Empty days (gaps)", f"{facts.gap_days:,}",
                      help="Days in the synced range with no record while the days around them have many.")
    notice = {"complete": box.success, "missing": box.error, "upper_bound": box.info}.get(completeness.status, box.info)
    notice(md_escape(completeness.message))
    if facts.gaps:
        box.dataframe(
            pd.DataFrame([{"from": readable_date(g.first_day), "to": readable_date(g.last_day), "days": g.days,
                           "neighbours_median": g.neighbour_median} for g in facts.gaps]),
            hide_index=True, width="stretch", key=f"health_gaps_{facts.source}",
            column_config={"neighbours_median": st.column_config.NumberColumn("Records/day around", format="%g")},
        )
    elif facts.synced_from is not None:
        box.caption(f"No gaps from {readable_date(facts.synced_from)} to {readable_date(facts.synced_to)}.")
    run = facts.last_run
    if run is None:
        box.caption("No sync has run for this source.")
    else:
        columns = box.columns(4)
        started = readable_datetime(health.parse_moment(run.started_at))
        columns[0].metric("Last run", run.status.capitalize(), help=f"{run.mode.capitalize()} sync started {started}")
        columns[1].metric("Requests", f"{run.requests:,}")
        columns[2].metric("Waited on rate limits", f"{run.wait_seconds:.1f} s")
        columns[3].metric("Fetched", f"{run.fetched:,}", help=f"{run.new:,} new, {run.updated:,} updated")
        if run.errors:
            box.caption("Last run's error")
            box.code(run.errors, language=None, wrap_lines=True)
    if facts.budget is not None:
        box.caption("Daily request budget")
        box.text(facts.budget.message)


def main() -> None:
    mode = current_mode()
    path = db_path(mode)
    st.title("Source health")
    st.caption("Fresh, complete and without holes? Computed from what each sync recorded; nothing here calls a "
               "vendor.")
    cols = st.columns(2)
    stale_hours = float(cols[0].number_input("Stale after (hours)", min_value=1.0, max_value=24.0 * 365, value=24.0,
                                             step=1.0, key="health_stale_hours"))
    min_median = float(cols[1].number_input("Gap: records a day around an empty day", min_value=1.0,
                                            max_value=100_000.0, value=5.0, step=1.0, key="health_min_median"))
    now = datetime.now(timezone.utc)
    minute = now.replace(second=0, microsecond=0).isoformat()
    marker = (data_version(path), run_marker(path))
    for facts in _report(str(path), marker, minute, stale_hours, min_median, source_names()):
        source_panel(facts, now)


main()
