"""Opening a store while this process already has it open keeps SQLite's locks (and so the other processes' view).

POSIX drops every lock a process holds on a file when it closes any descriptor of that file. If the open check
read the file's header with a plain open() and close() while a connection of this process was open, the connection
would lose its shared lock; another process closing its last connection would then take the file for its own,
checkpoint and delete the -wal under the open connection, and that connection's later commits would be lost. The
background sync job opens its store twice (the sync and its heartbeat) while the app's pages read it.
"""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
from pathlib import Path

from feedback_sources.store import Store

OTHER_PROCESS = """
import sqlite3, sys
connection = sqlite3.connect(sys.argv[1])
connection.execute("SELECT COUNT(*) FROM feedback_tags").fetchone()
connection.close()  # the last connection, as far as this process can tell, checkpoints and removes the -wal
"""


def add_probes(store: Store, first: int, count: int) -> None:
    with store.write() as conn:
        conn.executemany("INSERT INTO store_meta (key, value) VALUES (?, ?)",
                         [(f"probe-{n}", n) for n in range(first, first + count)])


def test_a_second_open_in_the_same_process_keeps_the_first_connections_commits(tmp_path: Path) -> None:
    db = tmp_path / "feedback.db"
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parent.parent)}
    with Store(db) as writer:
        add_probes(writer, 0, 10)
        for round_ in range(1, 4):
            with Store(db) as reader:  # a page's query, the heartbeat: a second open of the same file
                assert reader.count() == 0
            subprocess.run([sys.executable, "-c", OTHER_PROCESS, str(db)], env=env, check=True, timeout=60)
            add_probes(writer, round_ * 10, 10)
    with sqlite3.connect(db) as fresh:
        probes = fresh.execute("SELECT COUNT(*) FROM store_meta WHERE key LIKE 'probe-%'").fetchone()[0]
        assert fresh.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    assert probes == 40
