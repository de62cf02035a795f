"""Absurd sync ranges get a clear one-line reason, no traceback, and change nothing (exit code 2): the command line and
the app's Sync page share one check (`feedback_sources.ranges.sync_range`)."""

from __future__ import annotations

import hashlib
import io
import subprocess
import sys
from datetime import date, datetime, timedelta, timezone
from pathlib import Path

import pytest
from app_fixtures import AppEnv, app_env, day, run_page  # noqa: F401  (fixture)

from feedback_sources.cli import EXIT_USAGE, main
from feedback_sources.ranges import EARLIEST_START, RangeError, sync_range
from feedback_sources.ui.sync_view import sync_window
from tests.reliability_support import ROOT

NOW = datetime(2026, 12, 4, 15, 30, tzinfo=timezone.utc)
MOST_DAYS = (NOW.date() - EARLIEST_START.date()).days


def test_sensible_ranges_become_the_sync_arguments() -> None:
    assert sync_range(now=NOW) == (None, None)
    assert sync_range(days=7, now=NOW) == (NOW - timedelta(days=7), None)
    assert sync_range(days=MOST_DAYS, now=NOW) == (NOW - timedelta(days=MOST_DAYS), None)
    assert sync_range(since=date(2000, 1, 1), until=date(2026, 12, 5), now=NOW) == (
        EARLIEST_START, datetime(2026, 12, 6, tzinfo=timezone.utc))
    assert sync_range(since=NOW.date(), until=NOW.date(), now=NOW) == (
        datetime(2026, 12, 4, tzinfo=timezone.utc), datetime(2026, 12, 5, tzinfo=timezone.utc))


@pytest.mark.parametrize(
    "arguments, field, message",
    [
        ({"days": 100_000_000}, "days",
         f"100000000 days back is before 2000-01-01, the earliest a sync reaches; use at most {MOST_DAYS} days, "
         "or a full sync for the whole history."),
        ({"days": MOST_DAYS + 1}, "days", None),
        ({"days": 0}, "days", "The number of days must be at least 1 (got 0)."),
        ({"days": -3}, "days", "The number of days must be at least 1 (got -3)."),
        ({"since": date(1, 1, 1)}, "since",
         "The range starts on 0001-01-01, before 2000-01-01, the earliest a sync reaches; for the whole history "
         "run a full sync."),
        ({"since": date(2027, 6, 1)}, "since", "The range starts in the future (2027-06-01; today is 2026-12-04 UTC)."),
        ({"since": date(2026, 1, 1), "until": date(9999, 12, 31)}, "until",
         "The range ends on 9999-12-31, in the future (today is 2026-12-04 UTC); end it today at the latest."),
        ({"since": date(2026, 3, 3), "until": date(2026, 3, 1)}, "until", "The end date is before the start date."),
        ({"until": date(2026, 3, 1)}, "until", "An end date needs a start date."),
        ({"since": date(2026, 3, 3), "days": 4}, "days", "Choose a start date or a number of days, not both."),
    ],
)
def test_absurd_ranges_are_refused_with_a_reason(arguments: dict, field: str, message: str | None) -> None:
    with pytest.raises(RangeError) as raised:
        sync_range(now=NOW, **arguments)
    assert raised.value.field == field
    assert message is None or raised.value.message == message
    assert "\n" not in raised.value.message


ABSURD_COMMANDS = [
    (["--days", "100000000"], "--days: 100000000 days back is before 2000-01-01"),
    (["--days", "0"], "--days: The number of days must be at least 1 (got 0)."),
    (["--days", "-5"], "--days: The number of days must be at least 1 (got -5)."),
    (["--since", "0001-01-01"], "--since: The range starts on 0001-01-01, before 2000-01-01"),
    (["--since", "2026-01-01", "--until", "9999-12-31"], "--until: The range ends on 9999-12-31, in the future"),
    (["--until", "2026-01-01"], "--until: An end date needs a start date."),
    (["--since", "2026-01-01", "--rate-limit-wait", "0"], "--rate-limit-wait must be more than 0"),
]


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.mark.parametrize("arguments, expected", ABSURD_COMMANDS, ids=[" ".join(a) for a, _ in ABSURD_COMMANDS])
def test_the_cli_refuses_absurd_ranges_in_one_line_and_changes_nothing(tmp_path: Path, arguments: list[str],
                                                                        expected: str) -> None:
    fresh = tmp_path / "fresh.db"
    out, err = io.StringIO(), io.StringIO()
    assert main(["sync", "--demo", "--db", str(fresh), *arguments], out, err) == EXIT_USAGE
    lines = err.getvalue().splitlines()
    assert len(lines) == 1 and lines[0].startswith(expected), err.getvalue()
    assert "Traceback" not in err.getvalue() and out.getvalue() == ""
    assert not fresh.exists()

    # A store with records in it: the refused command leaves every byte as it was.
    existing = tmp_path / "existing.db"
    assert main(["sync", "--demo", "--db", str(existing), "--days", "2", "--source", "surveymonkey"],
                io.StringIO(), io.StringIO()) == 0
    before = digest(existing)
    assert main(["sync", "--demo", "--db", str(existing), *arguments], io.StringIO(), io.StringIO()) == EXIT_USAGE
    assert digest(existing) == before


def test_the_installed_command_prints_no_traceback(tmp_path: Path) -> None:
    completed = subprocess.run(
        [sys.executable, "-m", "feedback_sources", "sync", "--demo", "--db", str(tmp_path / "x.db"),
         "--since", "2026-01-01", "--until", "9999-12-31"],
        capture_output=True, text=True, timeout=60, cwd=ROOT,
    )
    assert completed.returncode == 2
    assert completed.stdout == "" and "Traceback" not in completed.stderr
    assert completed.stderr.count("\n") == 1 and completed.stderr.startswith("--until: The range ends on 9999-12-31")
    assert not (tmp_path / "x.db").exists()


def test_the_sync_page_uses_the_same_check() -> None:
    with pytest.raises(ValueError, match="^The range starts on 1999-12-31, before 2000-01-01"):
        sync_window("custom", NOW, (date(1999, 12, 31), date(2026, 1, 1)))
    with pytest.raises(ValueError, match="^The range ends on 2026-12-09, in the future"):
        sync_window("custom", NOW, (date(2026, 12, 1), date(2026, 12, 9)))
    assert sync_window("custom", NOW, (date(2026, 12, 1), date(2026, 12, 5))).end == datetime(
        2026, 12, 6, tzinfo=timezone.utc)


def test_the_sync_page_refuses_a_range_into_the_future_before_anything_runs(app_env: AppEnv) -> None:  # noqa: F811
    at = run_page(app_env, "app_pages/sync.py")
    at.radio(key="sync_preset").set_value("custom")
    at.date_input(key="sync_custom").set_value((day(-3), day(30)))
    at.button(key="FormSubmitter:sync_form-Run sync").click().run()
    assert len(at.error) == 1
    assert at.error[0].value.startswith(f"The range ends on {day(30).isoformat()}, in the future")
    assert not at.status
    assert not app_env.real_db.exists() or "No sync has run in this workspace yet." in [c.value for c in at.caption]
