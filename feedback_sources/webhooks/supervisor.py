"""Starting and stopping the webhook receiver process for a workspace, apart from any page that offers the buttons.

The receiver runs as its own process (`python -m feedback_sources serve-webhooks`) so it outlives the page and the
app's reruns; it is found again through the heartbeat it writes into the workspace's database. This module knows
processes and that heartbeat, nothing of Streamlit: the Webhooks page turns each outcome into a message, and keeps
the `Popen` objects of the receivers it started in `children` so their exit status is collected (no zombies).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, MutableMapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from ..store import Store
from .events import receiver_status

ROOT = Path(__file__).resolve().parent.parent.parent
LOG_NAME = "webhook-receiver.log"
START_TIMEOUT_SECONDS = 20.0
STOP_TIMEOUT_SECONDS = 10.0

Children = MutableMapping[int, "subprocess.Popen[bytes]"]


@dataclass(frozen=True)
class Started:
    """How a start went: `running` (it reported in), `exited` (it stopped at once: `returncode`, `log_tail`), or
    `silent` (alive, but no heartbeat yet)."""

    outcome: Literal["running", "exited", "silent"]
    pid: int
    port: int
    log_path: Path
    returncode: int | None = None
    log_tail: str = ""


StopOutcome = Literal["stopped", "still_running", "already_stopped", "not_allowed", "not_a_receiver"]


def current_status(db_path: Path) -> dict[str, Any]:
    with Store(db_path) as store:
        return receiver_status(store)


def log_tail(path: Path, lines: int = 12) -> str:
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return ""
    return "\n".join(text.splitlines()[-lines:])


def wait_until(condition: Callable[[], bool], timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.2)
    return condition()


def reap(children: Children) -> None:
    """Forget (and collect the exit status of) the started receivers that have ended."""
    for pid, process in list(children.items()):
        if process.poll() is not None:
            children.pop(pid, None)


def start_receiver(db_path: Path, port: int, *, demo: bool, children: Children,
                   timeout: float = START_TIMEOUT_SECONDS) -> Started:
    """Start a receiver on `port` for the store at `db_path` and wait until it reports in (or stops)."""
    command = [sys.executable, "-m", "feedback_sources", "serve-webhooks", "--port", str(port), "--db", str(db_path)]
    if demo:
        command.append("--demo")
    db_path.parent.mkdir(parents=True, exist_ok=True)
    log_path = db_path.parent / LOG_NAME
    # The package is importable from the app's own folder whatever directory the app was started in.
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in (str(ROOT), os.environ.get("PYTHONPATH")) if p)}
    with log_path.open("ab") as log:
        process = subprocess.Popen(command, cwd=ROOT, env=env, stdin=subprocess.DEVNULL, stdout=log,
                                   stderr=subprocess.STDOUT)
    children[process.pid] = process

    def reported() -> bool:
        if process.poll() is not None:
            return True
        status = current_status(db_path)
        return bool(status["running"] and (status["heartbeat"] or {}).get("pid") == process.pid)

    wait_until(reported, timeout)
    if process.poll() is not None:
        return Started("exited", process.pid, port, log_path, process.returncode, log_tail(log_path))
    return Started("running" if reported() else "silent", process.pid, port, log_path)


def is_receiver_process(pid: int) -> bool:
    """Whether `pid` is a webhook receiver: checked on its command line where the system shows it (Linux)."""
    if pid == os.getpid():
        return False  # a receiver running inside this process (a test, a tool) is not ours to signal
    cmdline = Path(f"/proc/{pid}/cmdline")
    if cmdline.parent.exists():
        try:
            return b"serve-webhooks" in cmdline.read_bytes()
        except OSError:
            return False
    return True


def stop_receiver(db_path: Path, pid: int, *, children: Children,
                  timeout: float = STOP_TIMEOUT_SECONDS) -> StopOutcome:
    """Ask the receiver `pid` to stop (SIGTERM: it finishes the delivery in hand) and wait until it stops reporting."""
    if not is_receiver_process(pid):
        return "not_a_receiver"
    try:
        os.kill(pid, signal.SIGTERM)
    except ProcessLookupError:
        return "already_stopped"
    except PermissionError:
        return "not_allowed"
    process = children.get(pid)
    if process is not None:
        try:
            process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            pass
    stopped = wait_until(lambda: not current_status(db_path)["running"], timeout)
    reap(children)
    return "stopped" if stopped else "still_running"
