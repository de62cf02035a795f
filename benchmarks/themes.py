"""Figure 8: themes and sentiment: their quality on labelled feedback, and their speed on the 1,000,000-record store.

Quality comes from benchmarks/data/theme_eval.json (twelve topics, hand-written, kept apart from the demo generator;
theme_quality.py derives greetings, typos and near-duplicates with a fixed seed). Nothing was tuned on the demo data.

Speed is measured on the cached 1M store: a full re-computation in its own process (as the CLI runs it: time and
peak memory, sentiment of unscored records included), placing 1,000 records whose text changed (their theme reset,
then `assign_new`), and the Demand ranking of themes for the quarter and for "what are enterprise customers unhappy
about this month".
"""

from __future__ import annotations

import re
import subprocess
import sys
import time
from pathlib import Path


from feedback_sources import insights, themes
from feedback_sources.store import Store

from .explore_data import ensure_store
from .harness import Context, FigureResult, Row, median, spread
from .theme_quality import evaluate, items, records

ASSIGN_TARGET_MS = 50  # per 1,000 records
DEMAND_TARGET_MS = 1_000


def time_placing(path: Path, repeats: int) -> list[float]:
    """Milliseconds to place a page of 1,000 records just stored (as a sync's last step does), per run. The page is
    deleted again afterwards, so the cached store keeps its million records."""
    samples = []
    for attempt in range(repeats):
        page = [r.model_copy(update={"source": "benchmark", "source_id": f"{attempt}-{r.source_id}"})
                for r in records(items(seed=attempt))[:1_000]]
        page = (page * 3)[:1_000]
        page = [r.model_copy(update={"source_id": f"{attempt}-{n}"}) for n, r in enumerate(page)]
        with Store(path) as store:
            store.upsert_records(page)
            themes.load_model(store)  # a sync has the model in memory after its first page
            started = time.perf_counter()
            placed = themes.assign_new(store, limit=1_000)
            samples.append((time.perf_counter() - started) * 1000 * 1000 / max(1, placed))
            with store.write() as conn:
                conn.execute("DELETE FROM feedback WHERE source = 'benchmark'")
    return samples


def run(ctx: Context) -> FigureResult:
    rows: list[Row] = []
    quality = evaluate()
    rows += [
        Row("8", "theme purity (labelled set)", f"{quality.purity:.2f}",
            note=f"{quality.records} records, {quality.topics} topics, {quality.themes} themes found"),
        Row("8", "adjusted mutual information", f"{quality.ami:.2f}"),
        Row("8", "near-duplicates in the same theme", f"{quality.near_duplicates_same_theme:.0%}",
            note=f"same duplicate key (\"similar feedback\"): {quality.near_duplicates_same_key:.0%}"),
        Row("8", "sentiment agreement with labels", f"{quality.sentiment_agreement:.0%}",
            note=", ".join(f"{label} {share:.0%}" for label, share in quality.sentiment_by_label.items())),
    ]
    count = ctx.size(1_000_000, 2_000)
    path, today, _ = ensure_store(ctx.work_dir, count, ctx.log)
    ctx.log(f"  finding themes in {count:,} records")
    started = time.perf_counter()
    finished = subprocess.run([sys.executable, "-m", "feedback_sources", "themes", "find", "--db", str(path)],
                              capture_output=True, text=True, check=True)
    wall = time.perf_counter() - started
    found = re.search(r"(\d+) themes from ([\d,]+) records in ([\d.]+) s \(peak memory (\d+) MB\)", finished.stdout)
    assert found is not None, finished.stdout
    rows.append(Row("8", f"full re-computation, {count:,} records", f"{wall:.0f} s wall, {found.group(4)} MB peak",
                    note=f"{found.group(1)} themes; includes scoring sentiment of records stored before it existed"))

    samples = time_placing(path, ctx.repeats(5))
    assign_ms = median(samples)
    rows.append(Row("8", "place 1,000 new records in themes", f"{assign_ms:.0f} ms", f"≤ {ASSIGN_TARGET_MS} ms",
                    assign_ms <= ASSIGN_TARGET_MS,
                    note=f"a page just stored; median of {spread(samples, 0)} ms (the first run of a process also "
                         "builds the vectorizer)"))

    start, end = insights.this_quarter(today)
    scopes = {
        "Demand themes, every category this quarter": insights.DemandScope(start=start, end=end, categories=()),
        "enterprise customers unhappy this month": insights.unhappy_enterprise_this_month(today),
    }
    for label, scope in scopes.items():
        timings = []
        for _ in range(ctx.repeats(3)):
            started = time.perf_counter()
            with Store(path) as store:
                report = insights.rank_discovered_themes(store, scope)
            timings.append((time.perf_counter() - started) * 1000)
        ms = median(timings)
        rows.append(Row("8", label, f"{ms:.0f} ms", f"≤ {DEMAND_TARGET_MS} ms", ms <= DEMAND_TARGET_MS,
                        note=f"{len(report.themes)} themes ranked; {spread(timings, 0)} ms"))
    return FigureResult("8", "Themes and sentiment: quality on labelled feedback, speed at 1M", rows)


