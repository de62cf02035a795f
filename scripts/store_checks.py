"""What the store's damage checks cost on a given store file: the open check (first open in a process, then an
unchanged file), the full `check`, and a `backup`. Used for the figures in docs/reliability.md ("Damaged stores").

    python scripts/store_checks.py PATH      # e.g. the 1M-record store benchmarks/explore_data.py caches
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from feedback_sources.store import OPEN_CHECK_SECONDS, Store, check_store  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("path", type=Path)
    args = parser.parse_args()
    size = args.path.stat().st_size
    started = time.perf_counter()
    with Store(args.path, migrate=False) as store:
        first = time.perf_counter() - started
        how, records = store.open_check, store.count()
    started = time.perf_counter()
    with Store(args.path, migrate=False) as store:
        again = time.perf_counter() - started
        how_again = store.open_check
    print(f"store: {args.path} ({size / 1e6:,.0f} MB, {records:,} records)")
    print(f"open check, first open in a process: {first:.2f} s ({how}; bound {OPEN_CHECK_SECONDS} s)")
    print(f"open check, unchanged file: {again * 1000:.1f} ms ({how_again})")
    report = check_store(args.path)
    print(f"check: {report.seconds:.1f} s, damaged={report.damaged}, "
          + ", ".join(f"{p.name}: {'ok' if p.ok else (p.skipped or p.problems[0])}" for p in report.parts))
    with tempfile.TemporaryDirectory(dir=args.path.parent) as folder:
        started = time.perf_counter()
        with Store(args.path, migrate=False) as store:
            store.backup(Path(folder) / "copy.bak")
        print(f"backup: {time.perf_counter() - started:.1f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
