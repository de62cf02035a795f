"""The receiver's process supervision, without a page: start, stop, a start that fails at once, and a pid that is
not a receiver."""

from __future__ import annotations

import os
import socket
import subprocess
from pathlib import Path

from feedback_sources.webhooks import supervisor
from tests.helpers import free_port


def test_start_then_stop_a_receiver(tmp_path: Path) -> None:
    db = tmp_path / "feedback.db"
    children: dict[int, subprocess.Popen[bytes]] = {}
    started = supervisor.start_receiver(db, free_port(), demo=True, children=children)
    try:
        assert (started.outcome, started.pid in children) == ("running", True)
        assert supervisor.current_status(db)["heartbeat"]["pid"] == started.pid
        assert supervisor.stop_receiver(db, started.pid, children=children) == "stopped"
    finally:
        if children.get(started.pid) is not None and children[started.pid].poll() is None:
            children[started.pid].kill()
    assert children == {}  # its exit status was collected
    assert supervisor.current_status(db)["running"] is False
    assert supervisor.stop_receiver(db, started.pid, children=children) in ("already_stopped", "not_a_receiver")


def test_a_receiver_that_cannot_listen_stops_at_once_and_its_log_says_why(tmp_path: Path) -> None:
    db = tmp_path / "feedback.db"
    children: dict[int, subprocess.Popen[bytes]] = {}
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        started = supervisor.start_receiver(db, taken.getsockname()[1], demo=True, children=children)
    assert started.outcome == "exited" and started.returncode not in (0, None)
    assert started.log_tail and started.log_path == tmp_path / supervisor.LOG_NAME


def test_a_pid_that_is_not_a_receiver_is_never_signalled(tmp_path: Path) -> None:
    assert supervisor.stop_receiver(tmp_path / "feedback.db", os.getpid(), children={}) == "not_a_receiver"
    with subprocess.Popen(["sleep", "30"]) as other:
        try:
            assert supervisor.stop_receiver(tmp_path / "feedback.db", other.pid, children={}) == "not_a_receiver"
            assert other.poll() is None  # untouched
        finally:
            other.kill()
