"""SIGKILL the real `python -m feedback_sources sync` process at random points, again and again, then let one run
finish: nothing lost, nothing stored twice, the database intact, and no page before a kill point fetched again.

The emulator serves on 127.0.0.1 from this process (so its request log is at hand); each sync is a subprocess
configured through the environment exactly as a user would. Budget: about 30-45 s on two cores.
"""

from __future__ import annotations

import base64
import json
import os
import random
import sqlite3
import subprocess
import time
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest

from feedback_sources.emulator import Emulator, RequestRecord, run_emulator_server
from tests.reliability_support import CLI, SOURCES, cli_environment, duplicate_keys, ground_truth, past_config, stored_ids

pytestmark = pytest.mark.slow

KILLS = 21
SEED = int(os.environ.get("RELIABILITY_SEED", "20240611"))


@dataclass(frozen=True)
class Committed:
    """What the database held when a sync process was started or had just been killed."""

    ids: dict[str, frozenset[str]]
    cursors: dict[str, Any]
    statuses: dict[str, str]

    @property
    def rows(self) -> int:
        return sum(len(ids) for ids in self.ids.values())


def read_committed(db_path: Path) -> Committed:
    empty = Committed({s: frozenset() for s in SOURCES}, {}, {})
    if not db_path.exists():
        return empty
    conn = sqlite3.connect(f"file:{db_path}?mode=ro", uri=True, timeout=15)
    try:
        tables = {row[0] for row in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        if "sync_state" not in tables:
            return empty
        ids = {s: frozenset(i for (i,) in conn.execute("SELECT source_id FROM feedback WHERE source = ?", (s,)))
               for s in SOURCES}
        states = conn.execute("SELECT source, cursor, status FROM sync_state WHERE scope = 'incremental'").fetchall()
    finally:
        conn.close()
    return Committed(ids, {s: json.loads(c) if c else None for s, c, _ in states}, {s: st for s, _, st in states})


def committed_rows(db_path: Path, source: str | None) -> int:
    """Rows committed so far, of one source or of all."""
    if not db_path.exists():
        return 0
    try:
        conn = sqlite3.connect(f"file:{db_path}?mode=ro", uri=True, timeout=15)
        try:
            if source is None:
                return int(conn.execute("SELECT COUNT(*) FROM feedback").fetchone()[0])
            return int(conn.execute("SELECT COUNT(*) FROM feedback WHERE source = ?", (source,)).fetchone()[0])
        finally:
            conn.close()
    except sqlite3.OperationalError:  # the schema is not there yet
        return 0


def zendesk_position(cursor: str) -> tuple[int, int]:
    """The emulator's export cursors are base64 of "{updated}.0||{id}|", ordered like the export."""
    text = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
    updated, _, rest = text.partition(".0||")
    return int(updated), int(rest.rstrip("|"))


def pages_fetched_again(before: Committed, requests: list[RequestRecord]) -> tuple[list[str], set[str]]:
    """Requests of one run that asked again for a page committed before the run started, and the vendors that
    had a mid-run position to check against."""
    again: list[str] = []
    checked: set[str] = set()

    cursor = before.cursors.get("zendesk")
    if cursor and cursor.get("after_cursor"):
        saved = zendesk_position(cursor["after_cursor"])
        checked.add("zendesk")
        for r in requests:
            if r.vendor == "zendesk" and r.endpoint.endswith("/incremental/tickets/cursor.json"):
                if "cursor" not in r.query or zendesk_position(r.query["cursor"]) < saved:
                    again.append(f"zendesk export {r.query}")

    cursor = before.cursors.get("intercom")
    if cursor and cursor.get("starting_after") and before.statuses.get("intercom") != "complete":
        checked.add("intercom")
        searches = [r for r in requests if r.vendor == "intercom" and r.endpoint == "/conversations/search"]
        if searches and (searches[0].body or {}).get("pagination", {}).get("starting_after") != cursor["starting_after"]:
            again.append("intercom search did not resume at the saved page")
        for r in requests:
            if r.vendor == "intercom" and r.endpoint.startswith("/conversations/") and r.endpoint != "/conversations/search":
                if r.endpoint.rsplit("/", 1)[1] in before.ids["intercom"]:
                    again.append(f"intercom {r.endpoint}")

    cursor = before.cursors.get("surveymonkey")
    if cursor and cursor.get("survey_id") and before.statuses.get("surveymonkey") != "complete":
        pending = {cursor["survey_id"], *cursor["surveys"]}
        checked.add("surveymonkey")
        for r in requests:
            if r.vendor != "surveymonkey":
                continue
            if r.endpoint == "/surveys":
                again.append("surveymonkey survey list asked again mid-pass")
            elif r.endpoint.endswith("/responses/bulk"):
                if is_catch_up_read(r.query, cursor):
                    continue  # the survey's closing look at responses changed while it was paged: not a page again
                survey_id = r.endpoint.split("/")[2]
                page = int(r.query.get("page", "1"))
                if survey_id not in pending or (survey_id == cursor["survey_id"] and page < cursor["page"]):
                    again.append(f"surveymonkey {r.endpoint} page {page}")
    return again, checked


def is_catch_up_read(query: dict[str, str], cursor: dict[str, Any]) -> bool:
    """A responses read bounded by a later modification time than the pass's own lower bound."""
    asked = query.get("start_modified_at")
    bound = (cursor.get("modified_after") or "")[:19]
    return asked is not None and asked > bound


def new_feedback_arrives(emulator: Emulator) -> None:
    """A batch of new tickets, conversations and responses, a little in the past so the next run's window holds it."""
    moment = datetime.now(timezone.utc).replace(microsecond=0) - timedelta(seconds=2)
    for _ in range(150):
        emulator.zendesk.add_ticket(created_at=moment, updated_at=moment)
    for _ in range(160):
        emulator.intercom.add_conversation(created_at=moment, updated_at=moment)
    for survey_id in emulator.surveymonkey.survey_ids():
        for _ in range(30):
            emulator.surveymonkey.add_response(survey_id, date_created=moment, date_modified=moment)


@dataclass
class KillPoint:
    after_seconds: float
    rows_before: int
    rows_after: int
    how: str


@dataclass
class Tally:
    kills: list[KillPoint] = field(default_factory=list)
    finished_on_their_own: int = 0
    refetched: list[str] = field(default_factory=list)
    resumes_checked: dict[str, int] = field(default_factory=lambda: {source: 0 for source in SOURCES})

    def check(self, before: Committed, requests: list[RequestRecord]) -> None:
        again, checked = pages_fetched_again(before, requests)
        self.refetched += again
        for source in checked:
            self.resumes_checked[source] += 1


def start_sync(env: dict[str, str], workdir: Path, number: int) -> subprocess.Popen[bytes]:
    log = (workdir / f"sync-{number:02d}.log").open("wb")
    try:
        return subprocess.Popen([*CLI, "sync"], env=env, cwd=workdir, stdout=log, stderr=subprocess.STDOUT)
    finally:
        log.close()


def test_sigkill_at_random_points_then_one_full_run_loses_and_duplicates_nothing(tmp_path: Path) -> None:
    # Sized so one uninterrupted run takes several seconds and commits about fifty pages across the three vendors.
    end = datetime.now(timezone.utc).replace(microsecond=0) - timedelta(hours=1)
    emulator = Emulator(past_config(
        seed=17, zendesk_tickets=4000, intercom_conversations=2400, surveymonkey_surveys=6,
        surveymonkey_responses_per_survey=250, start=end - timedelta(days=20), end=end,
    ))
    rng = random.Random(SEED)
    db_path = tmp_path / "feedback.db"
    home = tmp_path / "home"
    home.mkdir()
    tally = Tally()
    started = time.monotonic()

    with run_emulator_server(emulator) as root:
        env = cli_environment(emulator, root, db_path, home)
        number = 0
        while len(tally.kills) < KILLS and number < 2 * KILLS:
            before = read_committed(db_path)
            run_started = time.time()
            process = start_sync(env, tmp_path, number)
            launched = time.monotonic()
            if number == 0:
                # While Python is still starting: nothing can have been committed yet.
                how = "during start-up"
                time.sleep(rng.uniform(0.05, 0.3))
            elif number % 4 == 1:
                # Anywhere: mid-request, mid-page, mid-commit.
                how = "random delay"
                try:
                    process.wait(timeout=rng.uniform(0.3, 1.2))
                except subprocess.TimeoutExpired:
                    pass
            else:
                # Just after one vendor's next page is committed (each vendor in turn), give or take a few ms.
                vendor = SOURCES[number % len(SOURCES)]
                if before.statuses.get(vendor) == "complete":
                    vendor = None
                how = f"after {vendor or 'any'} progress"
                already = len(before.ids[vendor]) if vendor else before.rows
                deadline = launched + 20
                while (process.poll() is None and committed_rows(db_path, vendor) <= already
                       and time.monotonic() < deadline):
                    time.sleep(0.005)
                time.sleep(rng.uniform(0.0, 0.12))
            process.kill()  # SIGKILL: no handler runs, no transaction is finished
            if process.wait(timeout=10) == -9:
                after = read_committed(db_path)
                tally.kills.append(KillPoint(round(time.monotonic() - launched, 2), before.rows, after.rows, how))
            else:
                assert process.returncode == 0, (tmp_path / f"sync-{number:02d}.log").read_text()
                tally.finished_on_their_own += 1
                # Everything is in: new feedback arrives, so the next runs have pages to be killed in again.
                new_feedback_arrives(emulator)
            tally.check(before, [r for r in list(emulator.requests) if r.time >= run_started])
            number += 1

        final_log = tmp_path / f"sync-{number:02d}.log"
        before = read_committed(db_path)
        run_started = time.time()
        final = start_sync(env, tmp_path, number)
        try:
            assert final.wait(timeout=60) == 0, final_log.read_text()
        finally:
            if final.poll() is None:
                final.kill()
                final.wait()
        tally.check(before, [r for r in list(emulator.requests) if r.time >= run_started])
        truth = ground_truth(emulator)

    conn = sqlite3.connect(db_path)
    try:
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        assert stored_ids(conn) == truth
        assert duplicate_keys(conn) == []
        assert dict(conn.execute("SELECT source, status FROM sync_state WHERE scope = 'incremental'").fetchall()) == {
            source: "complete" for source in SOURCES
        }
        resumed_runs = conn.execute("SELECT COUNT(*) FROM sync_runs WHERE mode = 'resume'").fetchone()[0]
    finally:
        conn.close()

    progress_levels = sorted({kill.rows_after for kill in tally.kills}) or [0]
    total = sum(len(ids) for ids in truth.values())
    print(
        f"\n{len(tally.kills)} SIGKILLs ({tally.finished_on_their_own} runs finished first), "
        f"{len(progress_levels)} distinct progress levels from {progress_levels[0]} to {progress_levels[-1]} of "
        f"{total} records, {resumed_runs} resumed runs, {len(emulator.requests)} requests, "
        f"{time.monotonic() - started:.1f}s; resumes checked per vendor: {tally.resumes_checked}"
    )
    for kill in tally.kills:
        print(f"  killed after {kill.after_seconds:.2f}s ({kill.how}): {kill.rows_before} -> {kill.rows_after} rows")

    assert tally.refetched == []
    assert min(tally.resumes_checked.values()) >= 1, tally.resumes_checked  # every vendor was resumed mid-run
    assert len(tally.kills) >= 20
    # Kill points spread across the run: before the first commit, through the middle, past the half.
    assert progress_levels[0] == 0 and progress_levels[-1] > total * 0.5 and len(progress_levels) >= 10
    assert resumed_runs >= 10


def test_the_refetch_check_notices_a_page_asked_again() -> None:
    """The check above must be able to fail: feed it one run that starts over for each vendor."""
    def request(vendor: str, endpoint: str, query: dict[str, str] | None = None, body: Any = None) -> RequestRecord:
        return RequestRecord(vendor, "GET", endpoint, endpoint, query or {}, 200, 0.0, None, body)

    saved = base64.urlsafe_b64encode(b"1700000500.0||42|").decode().rstrip("=")
    earlier = base64.urlsafe_b64encode(b"1700000100.0||7|").decode().rstrip("=")
    before = Committed(
        ids={"zendesk": frozenset(), "intercom": frozenset({"101"}), "surveymonkey": frozenset()},
        cursors={
            "zendesk": {"after_cursor": saved, "start_time": 1700000500},
            "intercom": {"updated_after": 5, "updated_before": 99, "starting_after": "page-2", "high_water": 50},
            "surveymonkey": {"survey_id": "s2", "page": 3, "surveys": ["s3"], "modified_after": None},
        },
        statuses={"zendesk": "running", "intercom": "running", "surveymonkey": "running"},
    )
    requests = [
        request("zendesk", "/api/v2/incremental/tickets/cursor.json", {"start_time": "0"}),
        request("zendesk", "/api/v2/incremental/tickets/cursor.json", {"cursor": earlier}),
        request("zendesk", "/api/v2/incremental/tickets/cursor.json", {"cursor": saved}),
        request("intercom", "/conversations/search", body={"pagination": {"per_page": 150}}),
        request("intercom", "/conversations/101"),
        request("intercom", "/conversations/202"),
        request("surveymonkey", "/surveys"),
        request("surveymonkey", "/surveys/s1/responses/bulk", {"page": "1"}),
        request("surveymonkey", "/surveys/s2/responses/bulk", {"page": "2"}),
        request("surveymonkey", "/surveys/s2/responses/bulk", {"page": "3"}),
        request("surveymonkey", "/surveys/s3/responses/bulk", {"page": "1"}),
    ]
    again, checked = pages_fetched_again(before, requests)
    assert checked == set(SOURCES)
    assert again == [
        "zendesk export {'start_time': '0'}",
        f"zendesk export {{'cursor': '{earlier}'}}",
        "intercom search did not resume at the saved page",
        "intercom /conversations/101",
        "surveymonkey survey list asked again mid-pass",
        "surveymonkey /surveys/s1/responses/bulk page 1",
        "surveymonkey /surveys/s2/responses/bulk page 2",
    ]
    assert pages_fetched_again(before, requests[2:3] + requests[5:6] + requests[9:])[0] == []
