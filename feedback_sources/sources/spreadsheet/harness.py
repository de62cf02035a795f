"""The spreadsheet source's harness for the standard contract (tests/test_source_contract.py), with no HTTP at all.

A file source has no vendor to serve: the harness writes a CSV export of its own into a temporary folder and the
integration reads it as it reads a PM's file. The HTTP-only cases (a revoked token, 429 and 5xx retries) skip for sources
of kind "file". An unreadable stored position is not refused here but read past: the file is read again from the
top and each row's version keeps the store as it was (`corrupted_cursor_policy = "read_again"`).
"""

from __future__ import annotations

import hashlib
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .integration import SpreadsheetIntegration
from .mapping import ColumnMap

DATASET = "contract"
ROWS = 25
PAGE_SIZE = 10  # three pages: mid-file positions are exercised
MAPPING = ColumnMap(id="Id", title="Title", content="Feedback", email="Email", date="Date")


def export_bytes(rows: int = ROWS) -> bytes:
    """The same export every time, so the position past its last row is known before the file is written."""
    lines = ["Id,Title,Feedback,Email,Date"]
    for number in range(1, rows + 1):
        lines.append(f"r{number:03d},Row {number},Feedback number {number} about exports,"
                     f"pm{number % 7}@example.com,2026-0{1 + number % 9}-{10 + number % 18:02d}")
    return ("\n".join(lines) + "\n").encode("utf-8")


def _complete_position(data: bytes, rows: int) -> dict[str, Any]:
    return {"datasets": {DATASET: {"size": len(data), "sha256": hashlib.sha256(data).hexdigest(), "rows": rows,
                                   "complete": True, "ends_with_newline": True}}}


@dataclass
class _Opened:
    """What the contract asks of a running source, for a file on disk."""

    path: Path

    def integration(self, **options: Any) -> SpreadsheetIntegration:
        config = {"path": str(self.path), "dataset": DATASET, "mapping": MAPPING.model_dump_json()}
        return SpreadsheetIntegration(config, page_size=PAGE_SIZE, **options)

    def expected_ids(self) -> list[str]:
        return sorted(f"{DATASET}:r{number:03d}" for number in range(1, ROWS + 1))

    def revoke_token(self) -> None:
        raise NotImplementedError("a file source has no token")

    def fail_next(self, status: int, times: int) -> None:
        raise NotImplementedError("a file source has no server to fail")


@dataclass(frozen=True)
class FileHarness:
    source: str = "spreadsheet"
    # Positions count rows as a spreadsheet numbers them (the header is row 1): the last data row is ROWS + 1.
    future_cursor: dict[str, Any] = field(default_factory=lambda: _complete_position(export_bytes(), ROWS + 1))
    # Cursors this source reads past (the whole file again) rather than refuses: not an object, a list, an object
    # of unknown keys, a position that is not one.
    corrupted_cursors: tuple[Any, ...] = ("not an object", ["a", "list"], {"unexpected": 1},
                                          {"datasets": {DATASET: {"size": -1, "rows": "many"}}})
    corrupted_cursor_policy: str = "read_again"
    dataset: dict[str, Any] = field(default_factory=dict)

    @contextmanager
    def running(self, config: Any = None) -> Iterator[_Opened]:
        with tempfile.TemporaryDirectory(prefix="feedback-hub-contract-") as folder:
            path = Path(folder) / "contract-export.csv"
            path.write_bytes(export_bytes())
            yield _Opened(path)


HARNESS = FileHarness()
