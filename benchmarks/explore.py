"""Figure 4: Explore on a 1,000,000-record store.

A filter change on the Explore page runs these Store queries (app_pages/explore.py): kpis (with the previous
period's count), volume_by_day by category, top_tags, breakdown source × tier and category × tier, and one page of
rows. Each is timed as the app runs it: a fresh Store (connection) per query, warm OS file cache, median of several
runs. Full-text search is timed as its count plus the first page of rows. The page itself is rendered with
Streamlit's AppTest in a child process, for the time to first render and the app process's peak RSS.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from datetime import date, timedelta
from pathlib import Path
from typing import Any

from feedback_sources.store import Filters, Store

from .explore_data import ensure_store
from .harness import REPO_ROOT, Context, FigureResult, Row, median, run_child

SEARCH_TARGET_MS = 100
QUERY_TARGET_MS = 200
PAGE_SIZE = 50  # the Explore table's page (feedback_sources.ui.records.PAGE_SIZE)

QUERIES: tuple[tuple[str, Callable[[Store, Filters], Any]], ...] = (
    ("kpis (incl. previous period count)", lambda store, f: store.kpis(f)),
    ("volume_by_day by category (volume chart)", lambda store, f: store.volume_by_day(f, by="category")),
    ("top_tags (tags chart)", lambda store, f: store.top_tags(f, limit=12)),
    ("breakdown source × tier (chart)", lambda store, f: store.breakdown(f, "source", "tier")),
    ("breakdown category × tier (heatmap)", lambda store, f: store.breakdown(f, "category", "tier")),
    ("rows: first table page", lambda store, f: store.rows(f, limit=PAGE_SIZE, offset=0)),
    ("count", lambda store, f: store.count(f)),
)
SEARCHES = (
    ("a common word", "export"),
    ("a phrase", '"csv export"'),
    ("a prefix", "notif*"),
    ("two words", "invoice refund"),
    ("an exclusion", "login -sso"),
)


def time_query(path: Path, action: Callable[[Store, Filters], Any], filters: Filters, runs: int) -> float:
    """Median milliseconds of `action` on a freshly opened store, as the app opens one per cached query."""
    samples = []
    for _ in range(runs):
        started = time.perf_counter()
        with Store(path) as store:
            action(store, filters)
        samples.append((time.perf_counter() - started) * 1000)
    return median(samples)


def filter_change(today: date) -> Filters:
    return Filters(sources=("zendesk",), tiers=("enterprise",), categories=("bug_report",),
                   start=today - timedelta(days=89), end=today, text="export")


_APP_CHILD = """
import json, sys, time
from streamlit.testing.v1 import AppTest
started = time.perf_counter()
at = AppTest.from_file(sys.argv[1], default_timeout=600)
for key, value in json.loads(sys.argv[2]).items():
    at.query_params[key] = value
at.run()
first = time.perf_counter() - started
problems = [str(e.value) for e in at.exception]
metrics = {m.label: m.value for m in at.metric}
started = time.perf_counter()
at.run()
rerun = time.perf_counter() - started
print(json.dumps({"first": first, "rerun": rerun, "problems": problems, "metrics": metrics}))
"""


def app_render(store: Path, query: dict[str, str]) -> dict[str, Any]:
    """First render and a rerun of the app on the Explore page, in a child process (peak RSS included)."""
    env = {
        "FEEDBACK_DB": str(store),
        "FEEDBACK_DEMO_DB": str(store),  # with no credentials the app opens the demo workspace
        "PYTHON_KEYRING_BACKEND": "keyring.backends.null.Keyring",
    }
    child = run_child(["-c", _APP_CHILD, str(REPO_ROOT / "app.py"), json.dumps(query)], env=env, timeout=900)
    if child.returncode != 0:
        raise RuntimeError(child.stderr[-2000:])
    result = json.loads(child.stdout.strip().splitlines()[-1])
    result["peak_rss_mb"] = child.peak_rss_mb
    return result


def run(ctx: Context) -> FigureResult:
    count = ctx.size(1_000_000, 10_000)
    runs = ctx.repeats(5)
    path, today, built = ensure_store(ctx.work_dir, count, ctx.log)
    with Store(path) as store:  # opening also migrates a cached store built by an older schema
        stored = store.count()
    rows: list[Row] = []
    scenario = filter_change(today)

    total = time_query(path, lambda store, f: [action(store, f) for _, action in QUERIES], scenario, runs)
    rows.append(Row("4", f"Filter change on {stored:,} records (source + tier + category + 90 days + "
                    f"text): every Explore query", f"{total:.0f} ms", "reported (sum of the rows below)", None,
                    f"median of {runs}; {len(QUERIES)} queries, each on a fresh connection"))
    for label, action in QUERIES:
        ms = time_query(path, action, scenario, runs)
        rows.append(Row("4", f"Filter change: {label}", f"{ms:.0f} ms", f"≤ {QUERY_TARGET_MS} ms",
                        ms <= QUERY_TARGET_MS, f"median of {runs}"))

    for label, text in SEARCHES:
        filters = Filters(text=text)
        with Store(path) as store:
            matches = store.count(filters)
        ms = time_query(path, lambda store, f: (store.count(f), store.rows(f, limit=PAGE_SIZE)), filters, runs)
        rows.append(Row("4", f"Full-text search, {label} (`{text}`): count + first page", f"{ms:.0f} ms",
                        f"≤ {SEARCH_TARGET_MS} ms", ms <= SEARCH_TARGET_MS, f"{matches:,} matches; median of {runs}"))

    # The page's first render shows the whole store (period "All time", no filter): the broadest aggregates.
    broad = Filters()
    last_90 = Filters(start=today - timedelta(days=89), end=today)
    broad_worst: list[float] = []
    over_target: list[str] = []
    for label, filters in (("all records (the default view)", broad), ("last 90 days, no other filter", last_90)):
        times = {name: time_query(path, action, filters, runs) for name, action in QUERIES}
        slowest = max(times, key=lambda name: times[name])
        worst = times[slowest]
        broad_worst.append(worst)
        over_target += [f"{name.split(' (')[0]} over {label.split(' (')[0]} ({ms:.0f} ms)"
                        for name, ms in times.items() if ms > QUERY_TARGET_MS]
        rows.append(Row("4", f"Aggregates over {label}: slowest query", f"{worst:.0f} ms ({slowest})",
                        f"≤ {QUERY_TARGET_MS} ms", worst <= QUERY_TARGET_MS,
                        "; ".join(f"{name.split(' (')[0]} {ms:.0f}" for name, ms in times.items())))

    for label, filters_query in (
        ("default view (all time)", {}),
        ("filtered link (source, tier, category, 90 days, text)",
         {"source": "zendesk", "tier": "enterprise", "category": "bug_report", "period": "custom",
          "start": (today - timedelta(days=89)).isoformat(), "end": today.isoformat(), "q": "export"}),
    ):
        try:
            rendered = app_render(path, filters_query)
        except Exception as error:  # the page is someone else's and may be mid-change: say so, keep the figure
            rows.append(Row("4", f"App: first render of Explore, {label}", "not measured", "reported", None,
                            f"AppTest failed: {str(error)[-300:]}"))
            continue
        problems = rendered["problems"]
        within = rendered["first"] <= 2.0 and rendered["peak_rss_mb"] <= 1536
        rows.append(Row(
            "4", f"App: first render of Explore via AppTest, {label}",
            f"{rendered['first']:.1f} s; peak RSS {rendered['peak_rss_mb']:.0f} MB", "render ≤ 2 s, RSS ≤ 1.5 GB",
            within if not problems else False,
            (f"rerun {rendered['rerun']:.2f} s (cached); records shown: {rendered['metrics'].get('Records', '?')}"
             if not problems else f"page raised: {problems[0][:200]}"),
        ))
    notes = [
        f"Store: {stored:,} generated records ({path.stat().st_size / 1e9:.2f} GB with indexes), a year ending "
        f"{today}; generated in {built:.0f} s this run." if built is not None else
        f"Store: {stored:,} generated records ({path.stat().st_size / 1e9:.2f} GB with indexes), a year ending "
        f"{today}; reused from the cache in {ctx.work_dir.name}/ (see explore_data.py).",
        "Filter change = sources zendesk, tier enterprise, category bug_report, the 90 days ending on the store's "
        "last day, search `export` (a word in about 14 % of records).",
        "AppTest times include starting Streamlit's script runner and importing pandas in the child; "
        "its peak RSS is the whole app process.",
    ]
    if max(broad_worst) > QUERY_TARGET_MS:
        notes.append(
            f"**Broad views against the 200 ms target**: the slowest aggregate takes {broad_worst[0]:.0f} ms over all "
            f"records and {broad_worst[1]:.0f} ms over 90 days ({max(broad_worst) / QUERY_TARGET_MS:.1f}× the "
            f"target); over it: {'; '.join(over_target)}. Counts by day, source, tier, category and sentiment come "
            "from the per-day tables the store's triggers keep (feedback_daily, and feedback_daily_tags for the tags "
            "chart), so the charts' totals no longer read a row per record. What cannot come from per-day counts: the "
            "number of distinct customers (a customer seen on two days counts once, so the KPI de-duplicates every "
            "record's customer key, about 0.5 µs each)."
        )
    return FigureResult("4", "Explore at 1M records", rows, notes)
