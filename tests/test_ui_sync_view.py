"""The Sync page's rules: window presets, bad custom ranges explained, progress bars, result and history tables."""

from __future__ import annotations

from datetime import date, datetime, timedelta, timezone

import pytest

from feedback_sources.ui.sync_view import (
    SyncWindow,
    history_rows,
    progress_fraction,
    progress_text,
    result_rows,
    sync_window,
)

NOW = datetime(2026, 3, 15, 12, 0, tzinfo=timezone.utc)


def test_sync_presets() -> None:
    assert sync_window("since_last", NOW) == SyncWindow(None, None, True, "since the last sync (30 days on a first sync)")
    assert sync_window("7d", NOW) == SyncWindow(NOW - timedelta(days=7), None, True, "the last 7 days")
    assert sync_window("90d", NOW) == SyncWindow(NOW - timedelta(days=90), None, True, "the last 90 days")
    assert sync_window("custom", NOW, (date(2026, 3, 1), date(2026, 3, 3))) == SyncWindow(
        datetime(2026, 3, 1, tzinfo=timezone.utc), datetime(2026, 3, 4, tzinfo=timezone.utc), False,
        "2026-03-01 to 2026-03-03",
    )


@pytest.mark.parametrize(
    "custom, message",
    [
        (None, "Pick a start and an end date."),
        ((date(2026, 3, 1),), "Pick a start and an end date."),
        ((date(2026, 3, 3), date(2026, 3, 1)), "The end date is before the start date."),
        ((date(2026, 4, 1), date(2026, 4, 2)), "The range starts in the future."),
    ],
)
def test_bad_custom_sync_ranges_are_explained(custom: object, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        sync_window("custom", NOW, custom)  # type: ignore[arg-type]


def test_progress_bar_fraction_and_text() -> None:
    assert progress_fraction({"status": "running", "fetched": 50, "vendor_total": 200, "pages": 1}) == 0.25
    assert progress_fraction({"status": "running", "fetched": 500, "vendor_total": 200, "pages": 9}) == 0.99
    assert progress_fraction({"status": "running", "pages": 0}) == 0.02
    assert progress_fraction({"status": "running", "pages": 3}) == 0.75
    assert progress_fraction({"status": "failed", "pages": 1}) == 1.0
    running = {"source": "zendesk", "status": "running", "pages": 3, "fetched": 300, "vendor_total": 1200,
               "wait_seconds": 12.4, "message": ""}
    assert progress_text(running) == "zendesk: running, 3 pages, 300 of 1,200 records, waited 12 s on the rate limit"
    failed = {"source": "intercom", "status": "failed", "pages": 1, "fetched": 0, "message": "401: bad token"}
    assert progress_text(failed) == "intercom: failed, 1 page, 0 records - 401: bad token"


def test_result_and_history_rows_keep_the_table_columns() -> None:
    result = {"source": "zendesk", "status": "complete", "mode": "full", "fetched": 5, "new": 4, "updated": 1,
              "errors": None, "duration_seconds": 0.5, "pages": 1}
    assert result_rows([result]) == [{"source": "zendesk", "status": "complete", "mode": "full", "fetched": 5,
                                      "new": 4, "updated": 1, "errors": None, "duration_seconds": 0.5}]
    run = {**result, "started_at": "2026-03-15T11:00:00Z", "id": 3}
    assert history_rows([run]) == [{"started_at": datetime(2026, 3, 15, 11, tzinfo=timezone.utc), "source": "zendesk",
                                    "mode": "full", "status": "complete", "fetched": 5, "new": 4, "updated": 1,
                                    "errors": None, "duration_seconds": 0.5}]
