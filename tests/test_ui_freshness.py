"""Source freshness: stale after a day without a successful sync, failing when the last run failed."""

from __future__ import annotations

from datetime import datetime, timezone

from feedback_sources.ui.freshness import SourceStatus, source_status

NOW = datetime(2026, 3, 15, 12, 0, tzinfo=timezone.utc)


def test_source_status_marks_stale_and_failing_sources() -> None:
    fresh = {"records": 12, "last_success": "2026-03-15T11:00:00Z", "last_status": "complete"}
    old = {"records": 3, "last_success": "2026-03-13T11:00:00Z", "last_status": "failed"}
    assert [source_status("zendesk", True, fresh, NOW), source_status("intercom", True, old, NOW),
            source_status("surveymonkey", False, None, NOW)] == [
        SourceStatus("zendesk", True, 12, "1 h ago", False, False),
        SourceStatus("intercom", True, 3, "2 d ago", True, True),
        SourceStatus("surveymonkey", False, 0, "never", True, False),
    ]
