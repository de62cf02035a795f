"""What every figure shares: the run context, result rows, medians, the machine description and child processes."""

from __future__ import annotations

import os
import platform
import sqlite3
import statistics
import subprocess
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_OUTPUT = REPO_ROOT / "docs" / "benchmarks.md"
DEFAULT_WORK_DIR = REPO_ROOT / "benchmarks" / "out"


@dataclass
class Context:
    """How a run is configured: quick mode shrinks every N so the whole suite takes seconds."""

    quick: bool
    work_dir: Path
    log: Callable[[str], None] = print

    def size(self, full: int, quick: int) -> int:
        return quick if self.quick else full

    def repeats(self, full: int = 3) -> int:
        return 1 if self.quick else full


@dataclass
class Row:
    """One line of the results table."""

    figure: str
    name: str
    measured: str
    target: str = ""
    met: bool | None = None  # None: reported, no target
    note: str = ""


@dataclass
class FigureResult:
    figure: str
    title: str
    rows: list[Row]
    notes: list[str] = field(default_factory=list)
    seconds: float = 0.0
    load: str = ""  # 1-minute load average at the figure's start and end


def median(values: Sequence[float]) -> float:
    return float(statistics.median(values))


def spread(values: Sequence[float], digits: int = 2) -> str:
    """"median (min–max, n runs)" for a note."""
    if len(values) == 1:
        return f"{values[0]:.{digits}f} (1 run)"
    return f"{median(values):.{digits}f} (range {min(values):.{digits}f}–{max(values):.{digits}f}, {len(values)} runs)"


def machine() -> dict[str, str]:
    pages = os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    try:
        load = " / ".join(f"{x:.2f}" for x in os.getloadavg())
    except OSError:
        load = "n/a"
    return {
        "date": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "cores": str(os.cpu_count()),
        "ram": f"{pages / 2**30:.1f} GiB",
        "python": platform.python_version(),
        "sqlite": sqlite3.sqlite_version,
        "platform": platform.platform(terse=True),
        "load": load,
    }


@dataclass
class ChildRun:
    seconds: float
    peak_rss_mb: float
    returncode: int
    stdout: str
    stderr: str


def run_child(args: Sequence[str], *, env: dict[str, str] | None = None, timeout: float = 900) -> ChildRun:
    """Run a Python child process and measure its wall time and peak RSS.

    The peak comes from a tiny wrapper that runs the command as its own child and reports that child's
    ru_maxrss (RUSAGE_CHILDREN), so earlier children of this process cannot inflate it.
    """
    wrapper = (
        "import resource, subprocess, sys, time\n"
        "started = time.perf_counter()\n"
        "code = subprocess.call([sys.executable, *sys.argv[1:]])\n"
        "elapsed = time.perf_counter() - started\n"
        "peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss\n"
        "print(f'@@child {elapsed:.6f} {peak} {code}', file=sys.stderr)\n"
        "sys.exit(code)\n"
    )
    completed = subprocess.run(
        [sys.executable, "-c", wrapper, *args],
        env={**os.environ, **(env or {})},
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    marker = [line for line in completed.stderr.splitlines() if line.startswith("@@child ")]
    if not marker:
        raise RuntimeError(f"child did not report its usage: {completed.stderr[-2000:]}")
    _, seconds, peak_kib, code = marker[-1].split()
    stderr = "\n".join(line for line in completed.stderr.splitlines() if not line.startswith("@@child "))
    return ChildRun(float(seconds), int(peak_kib) / 1024, int(code), completed.stdout, stderr)
