"""Figure 9: each source's full sync against a bare httpx + sqlite loop on the same data, and start-up time.

The reference is the least a sync can do: fetch the pages with httpx, decode them with the standard library's json,
pick out the fields a record needs, and write them with one plain executemany per page into a table with a
full-text (FTS5) index and a tags table, one transaction per page. It makes the same requests the source's sync makes
(Intercom: the search pages, each conversation and each distinct contact, as concurrently as the integration does)
against the same emulator process, interleaved with the project's sync run by run, so both see the same machine
load. The ratio of the medians is the overhead of everything the project adds: retries and pacing, HTML to text,
rules, validation, overrides, tombstones and the store's indexes.

Start-up: the import time of `feedback-hub --help` (the console script's entry point) and of a no-change
incremental CLI sync (the sum of `python -X importtime`'s own times), and the wall time of that cron'd sync against
a local emulator.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable, Coroutine
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import httpx

from feedback_sources.emulator import EmulatorConfig
from feedback_sources.sync import fewer_gc_passes

from .emulator_process import EmulatorProcess
from .harness import REPO_ROOT, Context, FigureResult, Row, median, spread
from .sources import cli_environment, fresh_store, integration_config, timed_sync

TARGET_ZENDESK_RATIO = 1.5
TARGET_IMPORT_SECONDS = 0.3
TARGET_NO_CHANGE_WALL = 1.0
VENDORS = ("zendesk", "intercom", "surveymonkey")
TITLES = {"zendesk": "Zendesk", "intercom": "Intercom", "surveymonkey": "SurveyMonkey"}
INTERCOM_CONCURRENCY = 8
# What the app and its analyses need and a sync never should (sqlite-utils imports pandas when it is installed).
ANALYSIS_STACK = ("pandas", "streamlit", "sklearn", "vaderSentiment", "sqlite_utils", "numpy")  # the integration's own max_concurrency

_BARE_SCHEMA = """
    CREATE TABLE feedback (
        id INTEGER PRIMARY KEY, source TEXT NOT NULL, source_id TEXT NOT NULL, title TEXT, content TEXT,
        customer_email TEXT, customer_name TEXT, created_at TEXT, updated_at TEXT, tags TEXT,
        UNIQUE (source, source_id)
    );
    CREATE VIRTUAL TABLE feedback_fts USING fts5(title, content, customer_name, tags);
    CREATE TABLE feedback_tags (feedback_id INTEGER NOT NULL, tag TEXT NOT NULL, PRIMARY KEY (feedback_id, tag))
        WITHOUT ROWID;
"""


def figure_config(ctx: Context) -> EmulatorConfig:
    return EmulatorConfig(
        seed=31,
        zendesk_tickets=ctx.size(20_000, 300),
        intercom_conversations=ctx.size(1_500, 40),
        surveymonkey_surveys=ctx.size(4, 2),
        surveymonkey_responses_per_survey=ctx.size(2_500, 40),
    )


# -- the bare loop -------------------------------------------------------------------------------------------------


class BareWriter:
    """Rows straight into SQLite: one transaction and three executemany calls per page, nothing else."""

    def __init__(self, path: Path):
        for suffix in ("", "-wal", "-shm"):
            Path(f"{path}{suffix}").unlink(missing_ok=True)
        self.conn = sqlite3.connect(path, isolation_level=None)
        self.conn.execute("PRAGMA journal_mode = WAL")
        self.conn.execute("PRAGMA synchronous = NORMAL")
        self.conn.executescript(_BARE_SCHEMA)
        self.next_id = 1
        self.seen: set[tuple[str, str]] = set()
        self.records = 0

    def write(self, source: str, rows: list[tuple[str, str | None, str, str | None, str | None, str, str, list[str]]]):
        """rows: (source_id, title, content, email, name, created_at, updated_at, tags)."""
        feedback, fts, tags = [], [], []
        for source_id, title, content, email, name, created, updated, tag_list in rows:
            if (source, source_id) in self.seen:  # a record repeated across a page edge
                continue
            self.seen.add((source, source_id))
            rowid = self.next_id
            self.next_id += 1
            tags_json = json.dumps(tag_list)
            feedback.append((rowid, source, source_id, title, content, email, name, created, updated, tags_json))
            fts.append((rowid, title, content, name, tags_json))
            tags.extend((rowid, tag) for tag in dict.fromkeys(tag_list))
        self.conn.execute("BEGIN IMMEDIATE")
        self.conn.executemany("INSERT INTO feedback VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", feedback)
        self.conn.executemany("INSERT INTO feedback_fts (rowid, title, content, customer_name, tags) "
                              "VALUES (?, ?, ?, ?, ?)", fts)
        self.conn.executemany("INSERT OR IGNORE INTO feedback_tags VALUES (?, ?)", tags)
        self.conn.execute("COMMIT")
        self.records += len(feedback)

    def close(self) -> None:
        self.conn.close()


def _client(source: str, base_url: str) -> httpx.AsyncClient:
    config = integration_config(source, base_url)
    if source == "zendesk":
        return httpx.AsyncClient(base_url=base_url, auth=(f"{config['email']}/token", config["api_token"]), timeout=60)
    headers = {"Authorization": f"Bearer {config['access_token']}", "Accept": "application/json"}
    if source == "intercom":
        headers["Intercom-Version"] = "2.14"
    return httpx.AsyncClient(base_url=base_url, headers=headers, timeout=60)


def _iso(unix: Any) -> str:
    return datetime.fromtimestamp(unix, tz=timezone.utc).isoformat() if isinstance(unix, int | float) else ""


async def bare_zendesk(base_url: str, writer: BareWriter) -> int:
    params: dict[str, Any] = {"start_time": 0, "per_page": 1000, "include": "users,organizations"}
    requests = 0
    async with _client("zendesk", base_url) as client:
        while True:
            response = await client.get("/api/v2/incremental/tickets/cursor.json", params=params)
            response.raise_for_status()
            requests += 1
            body = json.loads(response.content)
            users = {user["id"]: user for user in body.get("users", [])}
            rows = []
            for ticket in body["tickets"]:
                if ticket.get("status") == "deleted":
                    continue
                user = users.get(ticket.get("requester_id"), {})
                rows.append((str(ticket["id"]), ticket.get("subject"), ticket.get("description") or "",
                             user.get("email"), user.get("name"), ticket["created_at"], ticket["updated_at"],
                             ticket.get("tags") or []))
            writer.write("zendesk", rows)
            if body["end_of_stream"]:
                return requests
            params = {"cursor": body["after_cursor"], "per_page": 1000, "include": "users,organizations"}


async def bare_intercom(base_url: str, writer: BareWriter) -> int:
    requests = 0
    contacts: dict[str, asyncio.Task[dict[str, Any]]] = {}
    slots = asyncio.Semaphore(INTERCOM_CONCURRENCY)
    async with _client("intercom", base_url) as client:

        async def get(path: str) -> dict[str, Any]:
            nonlocal requests
            async with slots:
                response = await client.get(path)
            response.raise_for_status()
            requests += 1
            return json.loads(response.content)

        async def contact_of(contact_id: str) -> dict[str, Any]:
            if contact_id not in contacts:
                contacts[contact_id] = asyncio.ensure_future(get(f"/contacts/{contact_id}"))
            return await contacts[contact_id]

        async def full(item: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
            conversation = await get(f"/conversations/{item['id']}")
            listed = conversation.get("contacts", {}).get("contacts") or [{}]
            contact = await contact_of(str(listed[0]["id"])) if listed[0].get("id") else {}
            return conversation, contact

        pagination: dict[str, Any] = {"per_page": 150}
        until = int(time.time()) + 1
        while True:
            response = await client.post("/conversations/search", json={
                "query": {"operator": "AND", "value": [{"field": "updated_at", "operator": ">", "value": 0},
                                                       {"field": "updated_at", "operator": "<", "value": until}]},
                "pagination": pagination, "sort": {"field": "updated_at", "order": "ascending"}})
            response.raise_for_status()
            requests += 1
            body = json.loads(response.content)
            details = await asyncio.gather(*(full(item) for item in body.get("conversations", [])))
            rows = []
            for conversation, contact in details:
                parts = conversation.get("conversation_parts", {}).get("conversation_parts", [])
                source = conversation.get("source") or {}
                content = "\n".join(
                    [source.get("body") or "", *(part.get("body") or "" for part in parts if part.get("body"))])
                tags = [tag.get("name") for tag in conversation.get("tags", {}).get("tags", []) if tag.get("name")]
                rows.append((str(conversation["id"]), conversation.get("title") or source.get("subject"), content,
                             contact.get("email"), contact.get("name"), _iso(conversation.get("created_at")),
                             _iso(conversation.get("updated_at")), tags))
            writer.write("intercom", rows)
            following = (body.get("pages") or {}).get("next") or {}
            if not following.get("starting_after"):
                return requests
            pagination = {"per_page": 150, "starting_after": following["starting_after"]}


async def bare_surveymonkey(base_url: str, writer: BareWriter) -> int:
    requests = 0
    async with _client("surveymonkey", base_url) as client:

        async def get(url: str, params: dict[str, Any]) -> dict[str, Any]:
            nonlocal requests
            response = await client.get(url, params=params)
            response.raise_for_status()
            requests += 1
            return json.loads(response.content)

        surveys, page = [], 1
        while True:
            body = await get("/surveys", {"per_page": 1000, "page": page})
            surveys.extend(str(item["id"]) for item in body.get("data", []))
            if not (body.get("links") or {}).get("next"):
                break
            page += 1
        for survey_id in surveys:
            page = 1
            while True:
                body = await get(f"/surveys/{survey_id}/responses/bulk", {"per_page": 100, "page": page})
                rows = []
                for response in body.get("data", []):
                    texts = [answer["text"] for survey_page in response.get("pages", [])
                             for question in survey_page.get("questions", [])
                             for answer in question.get("answers", []) if isinstance(answer.get("text"), str)]
                    rows.append((str(response["id"]), None, "\n".join(texts), None, None,
                                 response.get("date_created") or "", response.get("date_modified") or "", []))
                writer.write("surveymonkey", rows)
                if not (body.get("links") or {}).get("next"):
                    break
                page += 1
    return requests


BARE_LOOPS: dict[str, Callable[[str, BareWriter], Coroutine[Any, Any, int]]] = {
    "zendesk": bare_zendesk, "intercom": bare_intercom, "surveymonkey": bare_surveymonkey,
}


def run_bare(ctx: Context, source: str, emulator: EmulatorProcess) -> dict[str, float]:
    writer = BareWriter(ctx.work_dir / f"bare-{source}.db")
    emulator.call("clear_requests")
    cpu = time.process_time()
    started = time.perf_counter()
    try:
        requests = asyncio.run(BARE_LOOPS[source](emulator.base_urls[source], writer))
    finally:
        writer.close()
    return {"seconds": time.perf_counter() - started, "cpu": time.process_time() - cpu,
            "records": writer.records, "requests": requests}


def run_project(ctx: Context, source: str, emulator: EmulatorProcess) -> dict[str, float]:
    with fresh_store(ctx.work_dir / f"project-{source}.db") as store:
        run = timed_sync(store, source, emulator)
    return {"seconds": run.seconds, "cpu": run.client_cpu, "records": run.result.fetched, "requests": run.requests}


# -- start-up ------------------------------------------------------------------------------------------------------

_IMPORT_LINE = re.compile(r"import time:\s+(\d+) \|\s+\d+ \| (\s*)(\S+)")


# What the `feedback-hub` console script runs (pyproject.toml: feedback_sources.cli:entry), spelled out so the
# figure measures this tree even where the installed script would import another checkout.
CONSOLE_SCRIPT = "import sys; sys.argv[0] = 'feedback-hub'; from feedback_sources.cli import entry; entry()"


def import_profile(args: list[str], env: dict[str, str], cwd: Path) -> tuple[float, float, list[str], set[str]]:
    """(seconds importing, wall seconds, the heaviest top-level imports, every module imported) of one
    `python -X importtime` run of the console script."""
    started = time.perf_counter()
    completed = subprocess.run([sys.executable, "-X", "importtime", "-c", CONSOLE_SCRIPT, *args], cwd=cwd,
                               env={**os.environ, **env}, capture_output=True, text=True, timeout=300)
    wall = time.perf_counter() - started
    if completed.returncode != 0:
        raise RuntimeError(f"`feedback-hub {' '.join(args)}` failed: {completed.stderr[-1500:]}")
    total, top, names = 0, {}, set()
    for line in completed.stderr.splitlines():
        found = _IMPORT_LINE.match(line)
        if found:
            total += int(found.group(1))
            names.add(found.group(3))
            if not found.group(2):  # a top-level import: its cumulative time, the packages under it included
                cumulative = int(line.split("|")[1])
                top[found.group(3)] = max(top.get(found.group(3), 0), cumulative)
    heaviest = sorted(top, key=top.__getitem__, reverse=True)
    return total / 1e6, wall, [f"{name} {top[name] / 1e3:.0f} ms" for name in heaviest], names


def startup_rows(ctx: Context) -> tuple[list[Row], list[str]]:
    runs = ctx.size(5, 2)
    cwd = ctx.work_dir
    env = {"PYTHONPATH": str(REPO_ROOT), "PYTHON_KEYRING_BACKEND": "keyring.backends.null.Keyring"}
    help_runs = [import_profile(["--help"], env, cwd) for _ in range(runs)]
    interpreter = []
    for _ in range(runs):
        started = time.perf_counter()
        subprocess.run([sys.executable, "-c", "pass"], check=True, cwd=cwd)
        interpreter.append(time.perf_counter() - started)
    rows = [Row(
        "9", "Start-up: imports of `feedback-hub --help` (the console script)",
        f"{median([r[0] for r in help_runs]):.3f} s", f"≤ {TARGET_IMPORT_SECONDS} s",
        median([r[0] for r in help_runs]) <= TARGET_IMPORT_SECONDS,
        f"sum of `-X importtime` own times, median of {runs}; process wall "
        f"{median([r[1] for r in help_runs]):.2f} s against {median(interpreter):.2f} s for `python -c pass`",
    )]
    config = EmulatorConfig(seed=32, zendesk_tickets=ctx.size(2_000, 60), intercom_conversations=ctx.size(300, 10),
                            surveymonkey_surveys=2, surveymonkey_responses_per_survey=ctx.size(200, 10))
    with EmulatorProcess(config) as emulator:
        db = cwd / "no-change.db"
        for suffix in ("", "-wal", "-shm"):
            Path(f"{db}{suffix}").unlink(missing_ok=True)
        sync_env = {**env, **cli_environment(emulator.base_urls), "FEEDBACK_DB": str(db)}
        first = subprocess.run([sys.executable, "-m", "feedback_sources", "sync", "--full"], cwd=cwd,
                               env={**os.environ, **sync_env}, capture_output=True, text=True, timeout=600)
        if first.returncode != 0:
            raise RuntimeError(f"the first CLI sync failed: {first.stderr[-1500:]}")
        walls = []
        for _ in range(runs):
            started = time.perf_counter()
            again = subprocess.run([sys.executable, "-m", "feedback_sources", "sync"], cwd=cwd,
                                   env={**os.environ, **sync_env}, capture_output=True, text=True, timeout=600)
            walls.append(time.perf_counter() - started)
            if again.returncode != 0:
                raise RuntimeError(f"the no-change CLI sync failed: {again.stderr[-1500:]}")
        sync_imports = [import_profile(["sync"], sync_env, cwd) for _ in range(runs)]
    heavy = sorted({name.split(".")[0] for *_, names in sync_imports for name in names
                    if name.split(".")[0] in ANALYSIS_STACK})
    rows.append(Row(
        "9", "Start-up: imports of a no-change incremental CLI sync",
        f"{median([r[0] for r in sync_imports]):.3f} s", f"≤ {TARGET_IMPORT_SECONDS} s",
        median([r[0] for r in sync_imports]) <= TARGET_IMPORT_SECONDS,
        f"median of {runs}; analysis stack imported: {', '.join(heavy) or 'none'}",
    ))
    rows.append(Row(
        "9", "No-change incremental CLI sync of all three sources (cron), wall time",
        f"{median(walls):.2f} s", f"≤ {TARGET_NO_CHANGE_WALL:.0f} s", median(walls) <= TARGET_NO_CHANGE_WALL,
        f"{spread(walls)} s; a process per run against a local emulator process holding "
        f"{config.zendesk_tickets:,} tickets, {config.intercom_conversations:,} conversations and "
        f"{config.surveymonkey_surveys * config.surveymonkey_responses_per_survey:,} responses, all synced before",
    ))
    notes = [f"Start-up: the heaviest top-level imports of a no-change sync (cumulative, one run) are "
             f"{', '.join(sync_imports[-1][2][:8])}; of `--help`: {', '.join(help_runs[-1][2][:4])}."]
    return rows, notes


# -- where the Zendesk gap goes --------------------------------------------------------------------------------------


def _cpu_best_of(times: int, action: Callable[[], Any]) -> tuple[float, Any]:
    best, value = float("inf"), None
    for _ in range(times):
        started = time.process_time()
        value = action()
        best = min(best, time.process_time() - started)
    return best, value


def zendesk_stages(ctx: Context, emulator: EmulatorProcess) -> tuple[Row, str]:
    """Client CPU per record of each stage, in this process, on the same export pages: best of 3."""
    from feedback_sources import sentiment
    from feedback_sources.integrations.http import decode_json
    from feedback_sources.sources.zendesk.mapping import index_by_id, map_ticket
    from feedback_sources.rules import DEFAULT_RULES

    async def fetch(pages: int) -> list[bytes]:
        bodies: list[bytes] = []
        params: dict[str, Any] = {"start_time": 0, "per_page": 1000, "include": "users,organizations"}
        async with _client("zendesk", emulator.base_urls["zendesk"]) as client:
            for _ in range(pages):
                response = await client.get("/api/v2/incremental/tickets/cursor.json", params=params)
                response.raise_for_status()
                bodies.append(response.content)
                body = json.loads(response.content)
                if body["end_of_stream"]:
                    break
                params = {"cursor": body["after_cursor"], "per_page": 1000, "include": "users,organizations"}
        return bodies

    bodies = asyncio.run(fetch(ctx.size(5, 1)))
    stdlib_seconds, _ = _cpu_best_of(3, lambda: [json.loads(body) for body in bodies])
    decode_seconds, decoded = _cpu_best_of(3, lambda: [decode_json(body) for body in bodies])

    def map_all() -> list[list[Any]]:
        pages = []
        for body in decoded:
            users, organizations = index_by_id(body.get("users")), index_by_id(body.get("organizations"))
            pages.append([map_ticket(ticket, users, subdomain="demo", rules=DEFAULT_RULES,
                                     organizations_by_id=organizations)
                          for ticket in body["tickets"] if ticket.get("status") != "deleted"])
        return pages

    map_seconds, pages = _cpu_best_of(3, map_all)
    records = sum(len(page) for page in pages)

    def upsert(drop_indexes: bool) -> float:
        """CPU seconds of the upserts alone (opening and migrating the fresh store is not part of a sync's pages)."""
        with fresh_store(ctx.work_dir / "stages.db") as store:
            if drop_indexes:
                for (name,) in store.conn.execute("SELECT name FROM sqlite_master WHERE type = 'index' AND "
                                                  "tbl_name = 'feedback' AND sql IS NOT NULL").fetchall():
                    store.conn.execute(f'DROP INDEX "{name}"')
            started = time.process_time()
            for page in pages:
                store.upsert_records(page)
            return time.process_time() - started

    def bare() -> float:
        writer = BareWriter(ctx.work_dir / "stages-bare.db")
        started = time.process_time()
        for page in pages:
            writer.write("zendesk", [(r.source_id, r.title, r.content, r.customer_email, r.customer_name,
                                      r.created_at.isoformat(), r.metadata["updated_at"], r.metadata["tags"])
                                     for r in page])
        seconds = time.process_time() - started
        writer.close()
        return seconds

    sentiment.score("warm", "up")  # the analyzer and its lexicon load once per process, not per record
    sentiment_seconds, _ = _cpu_best_of(3, lambda: [sentiment.score(r.title, r.content) for page in pages
                                                    for r in page])
    upsert_seconds = min(upsert(False) for _ in range(3))
    unindexed_seconds = min(upsert(True) for _ in range(3))
    bare_seconds = min(bare() for _ in range(3))

    def per(seconds: float) -> str:
        return f"{seconds / records * 1e6:.0f} µs"

    row = Row(
        "9", "Sentiment scoring of new or changed text (VADER, inside Store.upsert_records), per record",
        per(sentiment_seconds), "reported (no target)", None,
        f"{sentiment_seconds / upsert_seconds:.0%} of Store.upsert_records' CPU on the same {records:,} Zendesk "
        f"records; the analyzer is built once per process, pleasantry lines are not scored, and it runs in the "
        f"sync's writer thread",
    )
    return row, (
        f"Where the Zendesk client's CPU goes, per record ({records:,} tickets in {len(bodies)} export pages, this "
        f"process, best of 3): JSON decoding {per(decode_seconds)} (the standard library's json: "
        f"{per(stdlib_seconds)}); map_ticket {per(map_seconds)}; Store.upsert_records {per(upsert_seconds)}, of "
        f"which the feedback table's secondary indexes cost {per(upsert_seconds - unindexed_seconds)} (the same "
        f"upsert with them dropped: {per(unindexed_seconds)}), sentiment scoring included ({per(sentiment_seconds)}); "
        f"the bare loop's writer on the same records {per(bare_seconds)}."
    )


# -- the figure ----------------------------------------------------------------------------------------------------


def run(ctx: Context) -> FigureResult:
    config = figure_config(ctx)
    repeats = ctx.repeats(3)
    measured: dict[str, dict[str, list[dict[str, float]]]] = {v: {"bare": [], "project": []} for v in VENDORS}
    with EmulatorProcess(config) as emulator:
        for attempt in range(repeats):
            for source in VENDORS:
                # Alternate which goes first, so neither always runs on a warmer machine.
                order = ("bare", "project") if attempt % 2 == 0 else ("project", "bare")
                for kind in order:
                    result = (run_bare if kind == "bare" else run_project)(ctx, source, emulator)
                    measured[source][kind].append(result)
                    ctx.log(f"  {source} {kind} run {attempt + 1}: {result['records']:,.0f} records, "
                            f"{result['requests']:,.0f} requests in {result['seconds']:.2f} s "
                            f"(client CPU {result['cpu']:.2f} s)")
        with fewer_gc_passes():  # the collector's settings of a sync, so each stage costs what it costs there
            sentiment_row, stages = zendesk_stages(ctx, emulator)
    rows: list[Row] = []
    notes: list[str] = []
    for source in VENDORS:
        bare, project = measured[source]["bare"], measured[source]["project"]
        bare_s, project_s = median([r["seconds"] for r in bare]), median([r["seconds"] for r in project])
        bare_cpu, project_cpu = median([r["cpu"] for r in bare]), median([r["cpu"] for r in project])
        ratio = project_s / bare_s
        records = int(project[0]["records"])
        target = f"≤ {TARGET_ZENDESK_RATIO}×" if source == "zendesk" else "reported (no target)"
        rows.append(Row(
            "9", f"{TITLES[source]}: full sync of {records:,} records, project / bare httpx + sqlite loop",
            f"{ratio:.2f}× ({project_s:.2f} s vs {bare_s:.2f} s)", target,
            ratio <= TARGET_ZENDESK_RATIO if source == "zendesk" else None,
            f"medians of {len(bare)} interleaved runs each; client CPU {project_cpu:.2f} s vs {bare_cpu:.2f} s "
            f"({project_cpu / bare_cpu:.2f}×); project {spread([r['seconds'] for r in project])} s, bare "
            f"{spread([r['seconds'] for r in bare])} s; requests {project[0]['requests']:,.0f} vs "
            f"{bare[0]['requests']:,.0f}; bare stored {bare[0]['records']:,.0f} records",
        ))
    rows.append(sentiment_row)
    start_rows, start_notes = startup_rows(ctx)
    rows.extend(start_rows)
    notes.append(
        "Each ratio compares wall times measured in the same run against the same emulator process, the project's "
        "sync and the bare loop alternating; client CPU (both threads of the client process) is given beside it "
        "because on a shared 2-core machine it is the steadier of the two. The bare loop decodes with the standard "
        "library's json and writes rows, an FTS5 index and tags per page; it does no HTML to text, rules, "
        "validation, retries, overrides, tombstones or secondary indexes."
    )
    notes.append(stages)
    notes.extend(start_notes)
    return FigureResult("9", "Sync against a bare loop, and start-up", rows, notes)
