"""Figure 10: the facet counts Explore needs, Datasette against the project's Store on the same 1M-record file.

Datasette is the usual way to browse a SQLite file; its table page counts rows per value of a column ("facets").
Both sides answer the same question on the same file in the same run: how many records per source, per tier
(`customer_tier`) and per category, over all records and over a filter (source zendesk, tier enterprise, category
bug_report, the 90 days ending on the store's last day). Datasette is asked through its JSON API,
`/<db>/feedback.json?_facet=source&_facet=customer_tier&_facet=category&_size=0` (plus the filter's arguments),
in this process through httpx's ASGI transport, with the file opened immutable as `datasette serve --immutable`
would. The project answers with what Explore runs for its source × tier and category × tier charts: two
Store.breakdown calls, whose margins are the three facets, and Store.count.

Datasette's time limits (facets 200 ms, queries 1 s by default) are raised so every facet completes, and its
suggested facets are turned off: both choices only make Datasette faster or make it finish. Datasette is a
benchmark-only dependency (requirements-dev.txt); without it this figure reports one skipped row.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import Callable
from datetime import date, timedelta
from pathlib import Path
from typing import Any

from feedback_sources.store import Filters, Store

from .explore_data import ensure_store
from .harness import Context, FigureResult, Row, median, spread

FACETS = ("source", "customer_tier", "category")


def scenarios(today: date) -> list[tuple[str, Filters, dict[str, str]]]:
    """(label, the Store's filter, Datasette's query arguments for the same records)."""
    start = today - timedelta(days=89)
    return [
        ("all records", Filters(), {}),
        ("filtered (zendesk, enterprise, bug_report, 90 days)",
         Filters(sources=("zendesk",), tiers=("enterprise",), categories=("bug_report",), start=start, end=today),
         # created_at is an ISO timestamp; the Store's end day is inclusive, so Datasette gets "before the next day".
         {"source": "zendesk", "customer_tier": "enterprise", "category": "bug_report",
          "created_at__gte": start.isoformat(), "created_at__lt": (today + timedelta(days=1)).isoformat()}),
    ]


def project_facets(store: Store, filters: Filters) -> dict[str, Any]:
    """The three facets from Explore's two breakdown charts, and the count."""
    counts: dict[str, Counter[str]] = {facet: Counter() for facet in FACETS}
    for row in store.breakdown(filters, "source", "tier"):
        counts["source"][row["source"]] += row["records"]
        counts["customer_tier"][row["tier"]] += row["records"]
    for row in store.breakdown(filters, "category", "tier"):
        counts["category"][row["category"]] += row["records"]
    return {"count": store.count(filters), **{facet: dict(c) for facet, c in counts.items()}}


def datasette_facets(body: dict[str, Any]) -> dict[str, Any]:
    results = body["facet_results"]
    results = results.get("results", results)  # 1.0 nests them under "results"
    return {"count": body["filtered_table_rows_count"],
            **{facet: {item["value"]: item["count"] for item in results[facet]["results"]} for facet in FACETS}}


def _comparable(facets: dict[str, Any]) -> dict[str, Any]:
    """Datasette leaves out NULL values, which the Store groups as tier "unknown": compare what both report."""
    return {key: ({k: v for k, v in value.items() if k not in (None, "unknown")} if isinstance(value, dict)
                  else value) for key, value in facets.items()}


async def _measure(path: Path, today: date, runs: int, log: Callable[[str], None]) -> list[dict[str, Any]]:
    import httpx
    from datasette.app import Datasette

    datasette = Datasette(immutables=[str(path)], settings={
        "facet_time_limit_ms": 600_000, "sql_time_limit_ms": 600_000, "suggest_facets": False})
    name = path.stem
    transport = httpx.ASGITransport(app=datasette.app())
    measured = []
    async with httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1", timeout=600) as client:
        await client.get(f"/{name}.json")  # Datasette's start-up work (inspecting the file) is not a facet request
        with Store(path) as store:
            for label, filters, query in scenarios(today):
                params = [("_facet", facet) for facet in FACETS] + [("_size", "0")] + list(query.items())
                ours, theirs = [], []
                answers: dict[str, Any] = {}
                # One untimed call each first: the Store's first query imports its query helpers, Datasette's
                # first request for a table reads its schema; neither is what a facet request costs.
                project_facets(store, filters)
                (await client.get(f"/{name}/feedback.json", params=params)).raise_for_status()
                for attempt in range(runs):  # interleaved, alternating which goes first
                    order = ("datasette", "project") if attempt % 2 == 0 else ("project", "datasette")
                    for side in order:
                        started = time.perf_counter()
                        if side == "datasette":
                            response = await client.get(f"/{name}/feedback.json", params=params)
                            response.raise_for_status()
                            answers[side] = datasette_facets(response.json())
                            theirs.append(time.perf_counter() - started)
                        else:
                            answers[side] = project_facets(store, filters)
                            ours.append(time.perf_counter() - started)
                    log(f"  {label} run {attempt + 1}: datasette {theirs[-1] * 1000:.0f} ms, "
                        f"project {ours[-1] * 1000:.0f} ms")
                same = _comparable(answers["datasette"]) == _comparable(answers["project"])
                measured.append({"label": label, "datasette": theirs, "project": ours, "same": same,
                                 "count": answers["project"]["count"]})
    return measured


def run(ctx: Context) -> FigureResult:
    title = "Facet counts against Datasette on the same file"
    try:
        import datasette
    except ImportError:
        ctx.log("figure 10 skipped: datasette is not installed (pip install -r requirements-dev.txt)")
        return FigureResult("10", title, [
            Row("10", f"Facets source, tier, category, {label}: Datasette / project Store",
                "skipped: datasette not installed", "reported (no target)", None,
                "pip install -r requirements-dev.txt to run it") for label, _, _ in scenarios(date.today())])
    count = ctx.size(1_000_000, 10_000)
    runs = ctx.repeats(5)
    path, today, _built = ensure_store(ctx.work_dir, count, ctx.log)
    measured = asyncio.run(_measure(path, today, runs, ctx.log))
    rows = []
    for item in measured:
        theirs, ours = median(item["datasette"]), median(item["project"])
        rows.append(Row(
            "10", f"Facets source, tier, category, {item['label']}: Datasette / project Store",
            f"{theirs / ours:.1f}× ({theirs * 1000:.0f} ms vs {ours * 1000:.0f} ms)", "reported (no target)", None,
            f"{item['count']:,} records; Datasette {spread([s * 1000 for s in item['datasette']], 0)} ms, project "
            f"{spread([s * 1000 for s in item['project']], 0)} ms; same counts: {'yes' if item['same'] else 'NO'}",
        ))
    notes = [
        f"Datasette {datasette.__version__}, in process (httpx ASGI transport), the file opened immutable; "
        f"{count:,} generated records (explore_data.py). Medians of {runs} interleaved runs, Datasette and the "
        "project alternating which goes first; the machine is shared (2 cores), so read the ratios, not the times.",
        "Datasette runs one `GROUP BY` per facet over the filtered rows plus a count; the project runs Explore's "
        "two breakdown queries (source × tier, category × tier) on the facets index and a count, one warm "
        "connection for the run as Datasette keeps its own.",
    ]
    return FigureResult("10", title, rows, notes)
