"""Figure 2: ingest overhead, records per second end to end (HTTP, parse, normalize, upsert) with no rate limit.

Besides the end-to-end rate this figure takes one sample of Zendesk export pages apart, stage by stage, on the same
bytes: the server answering, JSON decoding, mapping to records, the store's upsert, and SQLite alone writing the
same rows (with and without the full-text index and tags). A cProfile of a sync names the functions behind each.
"""

from __future__ import annotations

import asyncio
import cProfile
import json
import pstats
import subprocess
import sys
import time
from datetime import datetime
from typing import Any

from feedback_sources.emulator import EmulatorConfig

from .emulator_process import EmulatorProcess
from .harness import REPO_ROOT, Context, FigureResult, Row, median, spread
from .sources import fresh_store, integration_config, make_integration, timed_sync

TARGET_ZENDESK_RATE = 20_000
PAGE = 1000


def zendesk_config(tickets: int) -> EmulatorConfig:
    return EmulatorConfig(seed=21, zendesk_tickets=tickets, intercom_conversations=10, surveymonkey_surveys=1,
                          surveymonkey_responses_per_survey=10)


def intercom_config(conversations: int) -> EmulatorConfig:
    return EmulatorConfig(seed=22, zendesk_tickets=10, intercom_conversations=conversations, surveymonkey_surveys=1,
                          surveymonkey_responses_per_survey=10)


# -- end to end ----------------------------------------------------------------------------------------------------


def end_to_end(ctx: Context, source: str, emulator: EmulatorProcess, repeats: int) -> tuple[list[float], list[Any]]:
    rates, runs = [], []
    for attempt in range(repeats):
        with fresh_store(ctx.work_dir / f"ingest-{source}.db") as store:
            run = timed_sync(store, source, emulator)
        rates.append(run.result.fetched / run.seconds)
        runs.append(run)
        ctx.log(f"  {source} run {attempt + 1}: {run.result.fetched:,} records in {run.seconds:.1f} s "
                f"({rates[-1]:,.0f}/s; client CPU {run.client_cpu:.1f} s, server CPU {run.server_cpu:.1f} s)")
    return rates, runs


# -- stage by stage ------------------------------------------------------------------------------------------------


async def _fetch_pages(base_url: str, pages: int) -> tuple[list[bytes], float]:
    """Export pages as raw bytes, as fast as the server hands them out (no parsing beyond the cursor)."""
    import httpx

    config = integration_config("zendesk", base_url)
    bodies: list[bytes] = []
    params: dict[str, Any] = {"start_time": 0, "per_page": PAGE, "include": "users,organizations",
                              "exclude_deleted": "true"}
    async with httpx.AsyncClient(base_url=base_url, auth=(f"{config['email']}/token", config["api_token"])) as client:
        started = time.perf_counter()
        for _ in range(pages):
            response = await client.get("/api/v2/incremental/tickets/cursor.json", params=params)
            response.raise_for_status()
            bodies.append(response.content)
            # The cursor sits at the end of the body; a regex would do, but the body is parsed again below anyway.
            tail = json.loads(response.content)
            if tail["end_of_stream"]:
                break
            params = {**params, "cursor": tail["after_cursor"]}
            params.pop("start_time", None)
        elapsed = time.perf_counter() - started
    return bodies, elapsed


def _stage_rows(ctx: Context, emulator: EmulatorProcess,
                sample_pages: int) -> tuple[list[Row], list[str], dict[str, float]]:
    from feedback_sources.sources.zendesk.mapping import index_by_id, map_ticket
    from feedback_sources.rules import DEFAULT_RULES
    from feedback_sources.store import _FTS_INSERT, _UPSERT_SQL, FEEDBACK_COLUMNS, record_values

    bodies, _ = asyncio.run(_fetch_pages(emulator.base_urls["zendesk"], sample_pages))
    # The fetch above also parsed each body for its cursor; time the server alone in a second pass.
    bodies, fetch_seconds = asyncio.run(_fetch_pages(emulator.base_urls["zendesk"], len(bodies)))
    fetch_seconds_without_parse = fetch_seconds - _time(lambda: [json.loads(b) for b in bodies])

    parse_seconds, parsed = _best_of(3, lambda: [json.loads(body) for body in bodies])

    def map_all() -> list[list[Any]]:
        pages = []
        for body in parsed:
            users, organizations = index_by_id(body.get("users")), index_by_id(body.get("organizations"))
            pages.append([
                map_ticket(ticket, users, subdomain="demo", rules=DEFAULT_RULES, organizations_by_id=organizations)
                for ticket in body["tickets"] if ticket.get("status") != "deleted"
            ])
        return pages

    map_seconds, mapped = _best_of(3, map_all)
    records = sum(len(page) for page in mapped)

    def upsert_all() -> float:
        with fresh_store(ctx.work_dir / "ingest-stage.db") as store:
            return _time(lambda: [store.upsert_records(page) for page in mapped])

    upsert_seconds = min(upsert_all() for _ in range(3))
    prepared = [[record_values(record, "2026-01-01T00:00:00Z") for record in page] for page in mapped]

    def sqlite_alone(with_index: bool) -> float:
        with fresh_store(ctx.work_dir / "ingest-sqlite.db") as store:
            conn = store.conn
            next_id = 1
            started = time.perf_counter()
            for page in prepared:
                with store.write():
                    rows = [(next_id + n, *values) for n, (values, _) in enumerate(page)]
                    conn.executemany(
                        f"INSERT INTO feedback (id, {', '.join(FEEDBACK_COLUMNS)}) "
                        f"VALUES (?, {', '.join('?' * len(FEEDBACK_COLUMNS))}) "
                        + _UPSERT_SQL[_UPSERT_SQL.index("ON CONFLICT"):],
                        rows,
                    )
                    if with_index:
                        conn.executemany(_FTS_INSERT, [(row[0], row[3], row[4], row[7], row[14]) for row in rows])
                        conn.executemany(
                            "INSERT OR IGNORE INTO feedback_tags (feedback_id, tag) VALUES (?, ?)",
                            [(next_id + n, tag) for n, (_, tags) in enumerate(page) for tag in dict.fromkeys(tags)],
                        )
                next_id += len(page)
            return time.perf_counter() - started

    sqlite_full = min(sqlite_alone(True) for _ in range(3))
    sqlite_rows_only = min(sqlite_alone(False) for _ in range(3))
    megabytes = sum(len(b) for b in bodies) / len(bodies) / 1e6

    def per(seconds: float) -> str:
        return f"{seconds / records * 1e6:.0f} µs/record ({records / seconds:,.0f}/s)"

    rows = [
        Row("2", "SQLite alone: the store's rows + full-text index + tags, 1,000 per transaction",
            f"{records / sqlite_full:,.0f} rows/s", note=f"{per(sqlite_full)}; reference for the store's floor"),
        Row("2", "SQLite alone: rows only (no full-text index, no tags), 1,000 per transaction",
            f"{records / sqlite_rows_only:,.0f} rows/s", note=per(sqlite_rows_only)),
        Row("2", "Stage: Store.upsert_records (rows, index, tags, stale checks)", per(upsert_seconds),
            note="feedback_sources/store/records.py"),
        Row("2", "Stage: JSON decoding of the export pages", per(parse_seconds),
            note=f"{megabytes:.2f} MB per 1,000-ticket page (users and organizations side-loaded)"),
        Row("2", "Stage: mapping tickets to records (map_ticket)", per(map_seconds),
            note="sources/zendesk/mapping.py, rules.py, models.py"),
        Row("2", "Stage: the emulator serving export pages (other process)", per(fetch_seconds_without_parse),
            note="HTTP round trip and server-side generation and encoding"),
    ]
    notes = [
        f"Stage costs are the best of 3 over the same {records:,} tickets ({len(bodies)} pages); they add up to more "
        "than the end-to-end time per record because the sync overlaps the store's write of one page with the "
        "fetching and mapping of the next (sync.py), and the server works in its own process."
    ]
    costs = {
        "json": parse_seconds / records * 1e6,
        "map": map_seconds / records * 1e6,
        "store": upsert_seconds / records * 1e6,
        "sqlite": sqlite_full / records * 1e6,
        "server": fetch_seconds_without_parse / records * 1e6,
    }
    return rows, notes, costs


def _time(action: Any) -> float:
    started = time.perf_counter()
    action()
    return time.perf_counter() - started


def _best_of(times: int, action: Any) -> tuple[float, Any]:
    best, value = float("inf"), None
    for _ in range(times):
        started = time.perf_counter()
        value = action()
        best = min(best, time.perf_counter() - started)
    return best, value


# -- profile -------------------------------------------------------------------------------------------------------


AREAS = (
    ("waiting (network, the store's writer thread)", ("select.epoll", "_thread.lock", "_thread.RLock")),
    ("imports at run time (almost all httpcore's failing `import sniffio`, per request)", ("<frozen importlib",)),
    ("JSON decoding", ("json/",)),
    ("mapping vendor payloads to records", ("/mapping.py", "/answers.py", "/parts.py",
                                           "feedback_sources/integrations/coerce.py",
                                           "feedback_sources/rules.py", "feedback_sources/models.py",
                                           "pydantic", "html/parser.py", "_markupbase.py")),
    ("HTTP client (httpx, httpcore, h11, anyio, asyncio, ssl, sockets)", (
        "httpx/", "httpcore/", "h11/", "anyio/", "asyncio/", "ssl", "socket", "feedback_sources/integrations/http.py",
        "feedback_sources/integrations/base.py", "email/", "urllib/", "idna/", "certifi/")),
    ("store and sync (store/, sync.py, sqlite3)", ("feedback_sources/store/", "feedback_sources/sync.py",
                                                   "sqlite3", "sqlite_utils")),
)


def _area(function: tuple[str, int, str]) -> str | None:
    filename, _, name = function
    text = f"{filename}:{name}"
    for area, markers in AREAS:
        if any(marker in text for marker in markers):
            return area
    return None if filename == "~" else "other"


def recent_start(config: EmulatorConfig, share: float) -> datetime:
    """A sync start that covers about `share` of the emulator's records (their updates are spread evenly)."""
    assert config.start is not None and config.end is not None
    return config.end - (config.end - config.start) * share


def profile_sync(ctx: Context, source: str, emulator: EmulatorProcess, start: datetime, top: int = 8) -> tuple[str, int]:
    """A cProfile of one sync from `start` (event-loop thread): own time by area and top functions, as markdown."""
    profiler = cProfile.Profile()
    with fresh_store(ctx.work_dir / f"profile-{source}.db") as store:
        from feedback_sources.sync import sync

        integration = make_integration(source, emulator)
        profiler.enable()
        result = sync(store, {source: integration}, start=start, incremental=False)[source]
        profiler.disable()
    stats = pstats.Stats(profiler)
    table: dict[tuple[str, int, str], tuple[Any, ...]] = stats.stats  # type: ignore[attr-defined]
    total = sum(entry[2] for entry in table.values())
    by_area: dict[str, float] = {}
    for function, (_, _, own, _, callers) in table.items():
        area = _area(function)
        if area is not None:
            by_area[area] = by_area.get(area, 0.0) + own
            continue
        # A C function (dict.get, isinstance, ...) is charged to whoever called it, in proportion.
        caller_time = sum(entry[2] for entry in callers.values()) or 1.0
        for caller, entry in callers.items():
            caller_area = _area(caller) or "other"
            by_area[caller_area] = by_area.get(caller_area, 0.0) + own * entry[2] / caller_time
    lines = [f"  - {area}: {seconds:.2f} s ({seconds / total:.0%})"
             for area, seconds in sorted(by_area.items(), key=lambda item: item[1], reverse=True)]
    lines.append(f"  - top functions by own time (of {total:.1f} s):")
    entries = sorted(table.items(), key=lambda item: item[1][2], reverse=True)[:top]
    for (filename, line, function), (_, calls, own, cumulative, _) in entries:
        lines.append(f"    - {own:.2f} s own, {cumulative:.2f} s cumulative, {calls:,} calls: "
                     f"`{_short_path(filename)}:{line} {function}`")
    return "\n".join(lines), result.fetched


def _short_path(filename: str) -> str:
    for marker in ("site-packages/", "feedback_sources/", "lib/python3"):
        if marker in filename:
            return filename[filename.index(marker):].replace("site-packages/", "")
    return filename


# -- httpcore's per-request import of sniffio ------------------------------------------------------------------------

_CHILD = """
import json, sys, time
from datetime import datetime, timezone
if sys.argv[1] == "short-circuit":
    sys.modules["sniffio"] = None
from benchmarks.sources import fresh_store, integration_config
from feedback_sources.sources.intercom.integration import IntercomIntegration
from feedback_sources.sync import sync
from pathlib import Path
with fresh_store(Path(sys.argv[3])) as store:
    integration = IntercomIntegration(integration_config("intercom", sys.argv[2]))
    cpu, started = time.process_time(), time.perf_counter()
    start = datetime.fromtimestamp(float(sys.argv[4]), timezone.utc)
    result = sync(store, {"intercom": integration}, start=start, incremental=False)["intercom"]
    print(json.dumps({"seconds": time.perf_counter() - started, "cpu": time.process_time() - cpu,
                      "requests": result.requests, "records": result.fetched}))
"""


def sniffio_probe(ctx: Context, emulator: EmulatorProcess, start: datetime,
                  repeats: int) -> dict[str, list[dict[str, float]]]:
    """The same Intercom sync in child processes, as is and with `import sniffio` failing fast."""
    found: dict[str, list[dict[str, float]]] = {"as-is": [], "short-circuit": []}
    for _ in range(repeats):
        for variant in found:
            completed = subprocess.run(
                [sys.executable, "-c", _CHILD, variant, emulator.base_urls["intercom"],
                 str(ctx.work_dir / "ingest-sniffio.db"), str(start.timestamp())],
                cwd=REPO_ROOT, capture_output=True, text=True, timeout=600, check=True,
            )
            found[variant].append(json.loads(completed.stdout.strip().splitlines()[-1]))
    return found


def sniffio_installed() -> bool:
    try:
        import sniffio  # noqa: F401
    except ImportError:
        return False
    return True


def _verdict(costs: dict[str, float], budget: float) -> str:
    outside = costs["json"] + costs["map"]
    if outside >= budget:
        return (f"JSON decoding and mapping alone ({outside:.0f} µs) exceed the {budget:.0f} µs budget, so no change "
                "to the store or the sync loop can reach the target on this machine.")
    floor = outside + costs["sqlite"]
    if floor >= budget:
        return (f"JSON decoding and mapping ({outside:.0f} µs) plus SQLite's own floor for the rows "
                f"({costs['sqlite']:.0f} µs) already exceed the {budget:.0f} µs budget.")
    return (f"JSON decoding, mapping and SQLite's floor add up to {floor:.0f} µs, under the {budget:.0f} µs budget: "
            "the rest is HTTP handling, the store's Python and the 2 cores shared with the emulator.")


def _store_share(costs: dict[str, float]) -> str:
    extra = costs["store"] - costs["sqlite"]
    floor = f"SQLite alone needs {costs['sqlite']:.0f} µs for the same rows, full-text index and tags"
    if extra < 0.1 * costs["sqlite"]:
        return f"Store.upsert_records is within measurement noise of its floor: {floor}."
    return f"Store.upsert_records adds {extra:.0f} µs of Python to its floor: {floor}."


# -- the figure ----------------------------------------------------------------------------------------------------


def run(ctx: Context) -> FigureResult:
    tickets = ctx.size(200_000, 3_000)
    conversations = ctx.size(50_000, 150)
    rows: list[Row] = []
    notes: list[str] = []

    with EmulatorProcess(zendesk_config(tickets)) as emulator:
        rates, runs = end_to_end(ctx, "zendesk", emulator, ctx.repeats())
        rate = median(rates)
        stored = runs[0].result.fetched
        cpu = median([r.client_cpu / r.result.fetched * 1e6 for r in runs])
        server = median([r.server_cpu / r.result.fetched * 1e6 for r in runs])
        rows.append(Row(
            "2", f"Zendesk: {stored:,} tickets end to end (HTTP, parse, normalize, upsert)",
            f"{rate:,.0f} records/s", f"≥ {TARGET_ZENDESK_RATE:,} records/s", rate >= TARGET_ZENDESK_RATE,
            f"{spread(rates, 0)}; CPU per record: client {cpu:.0f} µs, emulator {server:.0f} µs; "
            f"{runs[0].requests} requests",
        ))
        stage_rows, stage_notes, costs = _stage_rows(ctx, emulator, ctx.size(20, 3))
        rows.extend(stage_rows)
        notes.extend(stage_notes)
        config = zendesk_config(tickets)
        profile, profiled = profile_sync(ctx, "zendesk", emulator, recent_start(config, ctx.size(10, 40) / 100))
        notes.append(f"cProfile of a {profiled:,}-ticket Zendesk sync (the event-loop thread; the store's writes run "
                     f"in a worker thread and show here as waiting), own time by area:\n\n{profile}")

    config = intercom_config(conversations)
    with EmulatorProcess(config) as emulator:
        rates, runs = end_to_end(ctx, "intercom", emulator, 1)
        run_ = runs[0]
        per_request_cpu = run_.client_cpu / run_.requests * 1e3
        rows.append(Row(
            "2", f"Intercom: {run_.result.fetched:,} conversations end to end",
            f"{rates[0]:,.0f} records/s", "reported (no target)", None,
            f"1 run; {run_.requests:,} requests ({run_.requests / run_.result.fetched:.2f} per record: search page, "
            f"conversation, distinct contacts); {run_.requests / run_.seconds:,.0f} requests/s; client CPU "
            f"{per_request_cpu:.2f} ms per request, emulator {run_.server_cpu / run_.requests * 1e3:.2f} ms",
        ))
        start = recent_start(config, ctx.size(6, 30) / 100)
        profile, profiled = profile_sync(ctx, "intercom", emulator, start)
        notes.append(f"cProfile of a {profiled:,}-conversation Intercom sync, own time by area:\n\n{profile}")
        if not sniffio_installed() and not ctx.quick:  # two extra child processes: full runs only
            found = sniffio_probe(ctx, emulator, start, ctx.repeats(2))
            as_is = median([r["cpu"] / r["requests"] * 1e3 for r in found["as-is"]])
            fast = median([r["cpu"] / r["requests"] * 1e3 for r in found["short-circuit"]])
            rate_as_is = median([r["records"] / r["seconds"] for r in found["as-is"]])
            rate_fast = median([r["records"] / r["seconds"] for r in found["short-circuit"]])
            rows.append(Row(
                "2", "Intercom: client CPU per request, as shipped vs `import sniffio` failing fast",
                f"{as_is:.2f} ms vs {fast:.2f} ms per request", "reported (hot spot outside store/sync)", None,
                f"{profiled:,} conversations in child processes, {len(found['as-is'])} runs each; "
                f"{rate_as_is:,.0f} vs {rate_fast:,.0f} records/s",
            ))
    client = costs["json"] + costs["map"] + costs["store"]
    notes.insert(0, (
        f"**Zendesk against the target**: {rate:,.0f} records/s measured, {TARGET_ZENDESK_RATE:,} wanted "
        f"({TARGET_ZENDESK_RATE / rate:.1f}× short), i.e. {1e6 / rate:.0f} µs per record against a budget of "
        f"{1e6 / TARGET_ZENDESK_RATE:.0f} µs. The client's own stages cost {costs['json']:.0f} µs (JSON decoding, "
        f"httpx/json, {costs['json'] / client:.0%}) + {costs['map']:.0f} µs (mapping, sources/zendesk/mapping.py, "
        f"{costs['map'] / client:.0%}) + {costs['store']:.0f} µs (Store.upsert_records, {costs['store'] / client:.0%}) "
        f"= {client:.0f} µs per record before any HTTP handling, and the emulator needs {costs['server']:.0f} µs per "
        f"record to serve the pages on the same 2 cores. {_verdict(costs, 1e6 / TARGET_ZENDESK_RATE)} "
        f"{_store_share(costs)}"
    ))
    return FigureResult("2", "Ingest overhead", rows, notes)
