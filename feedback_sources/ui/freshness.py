"""How fresh each source is, for the sidebar's source cards: records held, the last successful sync as a relative
time, and whether it is stale (nothing synced for a day) or its last run failed.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from .text import parse_timestamp, relative_time

STALE_AFTER = timedelta(hours=24)


@dataclass(frozen=True)
class SourceStatus:
    source: str
    connected: bool
    records: int
    last_sync: str  # "never" or a relative time
    stale: bool
    last_failed: bool


def source_status(source: str, connected: bool, summary: Mapping[str, Any] | None, now: datetime) -> SourceStatus:
    summary = summary or {}
    last_success = parse_timestamp(summary.get("last_success"))
    stale = last_success is None or now - last_success > STALE_AFTER
    return SourceStatus(
        source=source,
        connected=connected,
        records=int(summary.get("records") or 0),
        last_sync=relative_time(last_success, now),
        stale=stale,
        last_failed=summary.get("last_status") == "failed",
    )
