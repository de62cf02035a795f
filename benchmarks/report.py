"""The results as markdown: machine, one table with every figure against its target, then each figure's notes."""

from __future__ import annotations

from .harness import FigureResult


def _status(met: bool | None) -> str:
    return {True: "met", False: "**not met**", None: "—"}[met]


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def render(results: list[FigureResult], host: dict[str, str], *, quick: bool, total_seconds: float) -> str:
    lines = [
        "# Benchmarks",
        "",
        "Produced by `python -m benchmarks` (`make bench`); every number below is from that run. "
        "Medians of the runs stated in each row's notes; ratios are measured within one run.",
        "",
    ]
    if quick:
        lines += ["> **Quick mode** (`--quick`): small N, single runs. These numbers check that each figure runs; "
                  "they are not the figures.", ""]
    lines += [
        "## Machine",
        "",
        f"- Date: {host['date']}",
        f"- CPU cores: {host['cores']}; RAM: {host['ram']}; load average at start (1/5/15 min): {host['load']}",
        f"- Python {host['python']}, SQLite {host['sqlite']}, {host['platform']}",
        f"- Whole run: {total_seconds / 60:.1f} min",
        "",
        "The emulator serves over real HTTP on 127.0.0.1. For every throughput figure it runs in a separate "
        "process, so the server and the client under test do not share one GIL; on 2 cores they still share the "
        "CPU, which is part of what the numbers measure. The machine is shared and noisy: expect run-to-run spread "
        "of 10–30 %, shown in the notes.",
        "",
        "## Results",
        "",
        "| # | Measurement | Result | Target | Status | Notes |",
        "|---|---|---|---|---|---|",
    ]
    for result in results:
        for row in result.rows:
            lines.append(
                f"| {row.figure} | {_cell(row.name)} | {_cell(row.measured)} | {_cell(row.target) or '—'} | "
                f"{_status(row.met)} | {_cell(row.note)} |"
            )
    lines.append("")
    for result in results:
        load = f"; 1-minute load average {result.load} (2 cores)" if result.load else ""
        lines += [f"## {result.figure}. {result.title}", "", f"Took {result.seconds:.0f} s{load}.", ""]
        for note in result.notes:
            lines += [note, ""]
    return "\n".join(lines).rstrip() + "\n"
