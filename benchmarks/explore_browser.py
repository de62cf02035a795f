"""Figure 11: Explore in a real browser on the 1,000,000-record store: first render, a filter change, server memory.

`streamlit run app.py` serves the generated store (explore_data.py) as the demo workspace on 127.0.0.1; headless
Debian chromium, driven by Playwright, opens the app. First render = from `page.goto` to the five charts
drawn (each holds a mark) and the Records metric showing the store's count. Each run starts a new Streamlit
server, so its query cache is cold as after a restart; the same server is then opened again in a new browser
context (a second user: Streamlit's cached queries answer). Filter change = choosing Intercom in the Source
filter, until the Records metric shows the Store's own count for that filter and the script run has finished.
The reference, in the same runs: the same first render on a 10,000-record store, which is the page's fixed cost.
Peak RSS is the Streamlit process's VmHWM (Linux) after all of it. The page measured is whatever app_pages/explore.py
does at the time of the run: pre-aggregated counts, if the store has them, are part of what is measured.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from feedback_sources.store import Filters, Store

from .explore_data import ensure_store
from .harness import REPO_ROOT, Context, FigureResult, Row, median, spread

FIRST_RENDER_TARGET_S = 2.0
FILTER_TARGET_S = 1.0
RSS_TARGET_MB = 1536
REFERENCE_RECORDS = 10_000
CHARTS = 5  # volume, tags, source × tier, category × tier, negative share (app_pages/explore.py)
CHART_TEST_ID = "stVegaLiteChart"  # Streamlit's Vega-Lite element
CHART_MARK = "g.role-mark path"  # a drawn bar, cell, line or point in a chart's SVG
TIMEOUT_MS = 120_000
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]


ROW_NAMES = (
    ("Browser: first render of Explore (cold server cache)", f"≤ {FIRST_RENDER_TARGET_S:.0f} s"),
    ("Browser: first render of Explore, second visit (server cache warm)", "reported"),
    ("Browser: filter change (Source = Intercom)", f"≤ {FILTER_TARGET_S:.0f} s"),
    ("Browser: peak RSS of the Streamlit process", f"≤ {RSS_TARGET_MB / 1024:.1f} GB"),
)


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _peak_rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmHWM in /proc (not Linux?)")


@contextmanager
def streamlit_server(store: Path, work: Path) -> Iterator[tuple[str, subprocess.Popen[bytes]]]:
    """The app on a free port with `store` as its demo workspace, no vendor credentials and a keyring that is
    empty, from an empty directory (no .env)."""
    import httpx

    port = _free_port()
    home = work / "home"
    home.mkdir(parents=True, exist_ok=True)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("STREAMLIT_", "ZENDESK_", "INTERCOM_",
                                                                      "SURVEYMONKEY_"))}
    env.update(FEEDBACK_DB=str(store), FEEDBACK_DEMO_DB=str(store), HOME=str(home),
               PYTHON_KEYRING_BACKEND="keyring.backends.null.Keyring", PYTHONPATH=str(REPO_ROOT))
    log = work / "streamlit.log"
    with log.open("wb") as output:
        process = subprocess.Popen(
            [sys.executable, "-m", "streamlit", "run", str(REPO_ROOT / "app.py"), "--server.port", str(port),
             "--server.headless", "true", "--server.address", "127.0.0.1", "--server.fileWatcherType", "none",
             "--browser.gatherUsageStats", "false"],
            cwd=work, env=env, stdout=output, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while True:
            if process.poll() is not None:
                raise RuntimeError(f"streamlit exited early: {log.read_text()[-1500:]}")
            try:
                if httpx.get(f"{url}/_stcore/health", timeout=2).text == "ok":
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"streamlit did not start: {log.read_text()[-1500:]}")
            time.sleep(0.2)
        yield url, process
    finally:
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def _records_metric(page: Any) -> Any:
    return page.get_by_test_id("stMetric").filter(has_text="Records").get_by_test_id("stMetricValue")


def first_render(browser: Any, url: str, total: int) -> dict[str, float]:
    """Seconds from navigation to: the page loaded (Streamlit's own scripts), the app's navigation drawn (the
    script's first output), the Records metric showing the whole store, and the five charts drawn ("charts", the
    first render)."""
    from playwright.sync_api import expect

    context = browser.new_context(viewport={"width": 1400, "height": 2400})
    try:
        page = context.new_page()
        started = time.perf_counter()
        page.goto(url)  # returns at the load event
        marks = {"loaded": time.perf_counter() - started}
        expect(page.get_by_test_id("stSidebarNav")).to_be_visible(timeout=TIMEOUT_MS)
        marks["navigation"] = time.perf_counter() - started
        expect(_records_metric(page)).to_have_text(f"{total:,}", timeout=TIMEOUT_MS)
        marks["metric"] = time.perf_counter() - started
        charts = page.get_by_test_id(CHART_TEST_ID)
        expect(charts).to_have_count(CHARTS, timeout=TIMEOUT_MS)
        for index in range(CHARTS):
            expect(charts.nth(index).locator(CHART_MARK).first).to_be_attached(timeout=TIMEOUT_MS)
        marks["charts"] = time.perf_counter() - started
        return marks
    finally:
        context.close()


def filter_change(browser: Any, url: str, total: int, expected: int) -> float:
    """Seconds from choosing Intercom in the Source filter to its count shown and the script run finished."""
    from playwright.sync_api import expect

    context = browser.new_context(viewport={"width": 1400, "height": 2400})
    try:
        page = context.new_page()
        page.goto(url)
        expect(_records_metric(page)).to_have_text(f"{total:,}", timeout=TIMEOUT_MS)
        expect(page.get_by_test_id("stStatusWidget")).to_have_count(0, timeout=TIMEOUT_MS)
        page.get_by_test_id("stMultiSelect").filter(has_text="Source").click()
        option = page.get_by_role("option", name="Intercom")
        option.wait_for(timeout=TIMEOUT_MS)
        started = time.perf_counter()
        option.click()
        expect(_records_metric(page)).to_have_text(f"{expected:,}", timeout=TIMEOUT_MS)
        charts = page.get_by_test_id(CHART_TEST_ID)
        expect(charts).to_have_count(CHARTS, timeout=TIMEOUT_MS)
        expect(page.get_by_test_id("stStatusWidget")).to_have_count(0, timeout=TIMEOUT_MS)
        return time.perf_counter() - started
    finally:
        context.close()


def run(ctx: Context) -> FigureResult:
    title = "Explore in a real browser at 1M records"
    chromium = shutil.which("chromium")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        chromium = None
    if chromium is None:
        ctx.log("figure 11 skipped: Debian's chromium or playwright is not installed")
        return FigureResult("11", title, [
            Row("11", name, "skipped: chromium or playwright not installed", target, None,
                "apt-get install chromium; pip install -r requirements-dev.txt") for name, target in ROW_NAMES])
    count = ctx.size(1_000_000, 10_000)
    runs = ctx.repeats(3)
    path, _today, _built = ensure_store(ctx.work_dir, count, ctx.log)
    with Store(path) as store:
        total = store.count()
        intercom = store.count(Filters(sources=("intercom",)))
    work = ctx.work_dir / "browser"
    work.mkdir(parents=True, exist_ok=True)
    # The app gets a copy: opened as the demo workspace it may write to its store (a background demo sync adds
    # records), and the cached store must stay what explore_data.py generated for the other figures.
    served = work / "served.db"
    for suffix in ("-wal", "-shm"):
        Path(f"{served}{suffix}").unlink(missing_ok=True)
    shutil.copyfile(path, served)
    # The reference: the same page on a store of REFERENCE_RECORDS, in the same runs. What the small store also
    # takes is the page's fixed cost (Streamlit, the script's imports, the chart and grid bundles in the browser), not the data's.
    small_path, _, _ = ensure_store(ctx.work_dir, ctx.size(REFERENCE_RECORDS, 2_000), ctx.log)
    small = work / "served-small.db"
    shutil.copyfile(small_path, small)
    with Store(small) as store:
        small_total = store.count()
    reference: list[float] = []
    cold, warm, filtered, peaks = [], [], [], []
    cold_marks: list[dict[str, float]] = []
    warm_marks: list[dict[str, float]] = []
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium, args=CHROMIUM_ARGS)
        try:
            for attempt in range(runs):
                with streamlit_server(small, work) as (url, _process):
                    reference.append(first_render(browser, url, small_total)["charts"])
                with streamlit_server(served, work) as (url, process):
                    cold_marks.append(first_render(browser, url, total))
                    warm_marks.append(first_render(browser, url, total))
                    cold.append(cold_marks[-1]["charts"])
                    warm.append(warm_marks[-1]["charts"])
                    filtered.append(filter_change(browser, url, total, intercom))
                    peaks.append(_peak_rss_mb(process.pid))
                ctx.log(f"  run {attempt + 1}: reference {reference[-1]:.2f} s, first render {cold[-1]:.2f} s "
                        f"(again {warm[-1]:.2f} s), filter change {filtered[-1]:.2f} s, peak RSS {peaks[-1]:.0f} MB")
        finally:
            browser.close()
            with Store(served) as store:
                after = store.count()
            for suffix in ("", "-wal", "-shm"):
                Path(f"{served}{suffix}").unlink(missing_ok=True)
                Path(f"{small}{suffix}").unlink(missing_ok=True)
    rows = [
        Row("11", "Browser: first render of Explore (cold server cache)", f"{median(cold):.2f} s",
            f"≤ {FIRST_RENDER_TARGET_S:.0f} s", median(cold) <= FIRST_RENDER_TARGET_S,
            f"{total:,} records; {spread(cold)} s; navigation to {CHARTS} charts drawn and the Records metric shown; "
            f"a new Streamlit server per run; reference: the same page on {small_total:,} records "
            f"{median(reference):.2f} s ({median(cold) / median(reference):.1f}×), {spread(reference)} s"),
        Row("11", "Browser: first render of Explore, second visit (server cache warm)", f"{median(warm):.2f} s",
            "reported", None, f"{spread(warm)} s; a new browser context on the same server"),
        Row("11", "Browser: filter change (Source = Intercom)", f"{median(filtered):.2f} s",
            f"≤ {FILTER_TARGET_S:.0f} s", median(filtered) <= FILTER_TARGET_S,
            f"{intercom:,} records after the change; {spread(filtered)} s; click to count shown and run finished"),
        Row("11", "Browser: peak RSS of the Streamlit process", f"{max(peaks):.0f} MB",
            f"≤ {RSS_TARGET_MB / 1024:.1f} GB", max(peaks) <= RSS_TARGET_MB,
            f"VmHWM after the three measurements, highest of {runs} servers"),
    ]
    def milestones(marks: list[dict[str, float]]) -> str:
        return ", ".join(f"{name} {median([m[name] for m in marks]):.2f} s" for name in marks[0])

    notes = [
        f"Where the first render's time goes (medians, seconds from navigation): cold server {milestones(cold_marks)}; "
        f"second visit {milestones(warm_marks)}. `loaded` is the page's load event (Streamlit's frontend), "
        "`navigation` the app's first output over the websocket, `metric` the Records count (the page's first "
        "queries done), `charts` all five charts drawn.",
        f"The app served a copy of the store; it held {after:,} records when the runs ended "
        f"({after - total:+,} written by the app itself while it was measured).",
        f"Headless Debian chromium ({chromium}) through Playwright; Streamlit on 127.0.0.1 serving "
        f"{total:,} generated records as the demo workspace. Medians of {runs} runs on a shared 2-core machine "
        "(the browser, the Streamlit server and its queries share the two cores).",
    ]
    return FigureResult("11", title, rows, notes)
