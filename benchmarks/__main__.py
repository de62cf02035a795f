"""`python -m benchmarks` runs every figure and writes docs/benchmarks.md; `--quick` runs them small."""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections.abc import Sequence
from pathlib import Path

from . import FIGURES, figure_module
from .harness import DEFAULT_OUTPUT, DEFAULT_WORK_DIR, Context, FigureResult, Row, machine
from .report import render


def _load() -> str:
    try:
        return f"{os.getloadavg()[0]:.1f}"
    except OSError:
        return "n/a"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="small N: checks that every figure runs, in seconds")
    parser.add_argument("--output", type=Path, default=None,
                        help=f"markdown file to write (default: {DEFAULT_OUTPUT}; with --quick, nothing unless given)")
    parser.add_argument("--work-dir", type=Path, default=None,
                        help=f"databases and exports (default: {DEFAULT_WORK_DIR}; the 1M store is cached there)")
    parser.add_argument("--only", action="append", choices=sorted(FIGURES), help="run only these figures")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    work_dir = args.work_dir or (DEFAULT_WORK_DIR / "quick" if args.quick else DEFAULT_WORK_DIR)
    work_dir.mkdir(parents=True, exist_ok=True)
    output = args.output or (None if args.quick else DEFAULT_OUTPUT)

    def log(message: str) -> None:
        print(message, file=sys.stderr, flush=True)

    ctx = Context(quick=args.quick, work_dir=work_dir, log=log)
    host = machine()
    results: list[FigureResult] = []
    started = time.perf_counter()
    for key in args.only or list(FIGURES):
        module = figure_module(key)
        log(f"figure {key}: {module.__name__}")
        figure_started = time.perf_counter()
        load_before = _load()
        try:
            result = module.run(ctx)
        except Exception as error:  # one broken figure still leaves the others' numbers in the report
            log(f"figure {key} failed: {type(error).__name__}: {error}")
            result = FigureResult(key, module.__doc__.splitlines()[0] if module.__doc__ else key, [
                Row(key, "figure failed to run", f"{type(error).__name__}: {error}", met=False)
            ])
        result.seconds = time.perf_counter() - figure_started
        result.load = f"{load_before} → {_load()}"
        if args.quick:
            for row in result.rows:  # small N says nothing about the targets
                row.met = None if row.met is not False or row.name != "figure failed to run" else False
        results.append(result)
        log(f"figure {key} took {result.seconds:.1f} s")
    text = render(results, host, quick=args.quick, total_seconds=time.perf_counter() - started)
    if output is not None:
        output.parent.mkdir(parents=True, exist_ok=True)
        output.write_text(text, encoding="utf-8")
        log(f"wrote {output}")
    else:
        print(text)
    return 0 if all(row.met is not False for result in results for row in result.rows) else 1


if __name__ == "__main__":
    sys.exit(main())
