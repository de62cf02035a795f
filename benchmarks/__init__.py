"""Performance figures for Feedback Hub, measured against the vendor emulator over real HTTP on 127.0.0.1.

`python -m benchmarks` runs them all and writes docs/benchmarks.md; `--quick` runs each with small N (the smoke
test uses it). One module per figure, each with `run(ctx) -> FigureResult`:

1. rate_limits  sync time against the rate-limit lower bound, per source
2. ingest       records per second end to end with the emulator unthrottled, and where the time goes
3. incremental  a re-sync after 1 % of 200k records changed
4. explore      Explore's queries on a 1,000,000-record store
5. export_csv   CSV export of 1M filtered rows: time and peak memory
6. sync_memory  peak memory of a 200k-record sync through the CLI
7. insights     search with highlights, rule re-application and Demand on the 1M store
8. themes       themes and sentiment: quality on labelled feedback, speed on the 1M store
9. sync_overhead  each source's full sync against a bare httpx + sqlite loop; start-up and a no-change sync
10. datasette_side  facet counts (source, tier, category) against Datasette on the same 1M-record file
11. explore_browser  Explore in headless chromium on the 1M store: first render, a filter change, server peak RSS
"""

from __future__ import annotations

import importlib
from types import ModuleType

# Imported on demand: the emulator's server process imports this package too, and needs none of them.
FIGURES: dict[str, str] = {
    "1": "rate_limits",
    "2": "ingest",
    "3": "incremental",
    "4": "explore",
    "5": "export_csv",
    "6": "sync_memory",
    "7": "insights",
    "8": "themes",
    "9": "sync_overhead",
    "10": "datasette_side",
    "11": "explore_browser",
}


def figure_module(key: str) -> ModuleType:
    return importlib.import_module(f"{__name__}.{FIGURES[key]}")
