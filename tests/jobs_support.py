"""What the sync-job tests share: another process that holds a store's sync lock, as the CLI or cron would."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

# Holds the lock and a running job until the job is cancelled (then it ends as "cancelled") or two minutes pass.
HOLDER = """
import sys
from feedback_sources.jobs import JobSpec, exclusive_sync
spec = JobSpec(sources=("zendesk", "intercom"), label="the last 7 days", demo=True)
with exclusive_sync(sys.argv[1], spec, origin="cli") as job:
    print("held", flush=True)
    print("cancelled" if job.cancel.wait(120) else "not cancelled", flush=True)
"""


@contextmanager
def lock_holder(db: Path) -> Iterator[subprocess.Popen[str]]:
    """Another process syncing this store: it holds the lock and its job row until cancelled or killed."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    process = subprocess.Popen([sys.executable, "-c", HOLDER, str(db)], stdout=subprocess.PIPE, text=True, env=env)
    try:
        assert process.stdout is not None and process.stdout.readline().strip() == "held"
        yield process
    finally:
        if process.poll() is None:
            process.kill()
        process.wait(timeout=10)
