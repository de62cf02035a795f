"""Where an import of a dataset stands: the file it read (size and SHA-256) and how many rows it stored.

The sync keeps one cursor per source, so the spreadsheet cursor holds every dataset's position:
`{"datasets": {"g2-reviews": {"size": ..., "sha256": ..., "rows": ..., "complete": true}}}`. Each page's cursor is
the whole dict with its own dataset moved on, committed with the page, so an interrupted import resumes at the
next row and a second dataset's position is never lost.

An *extended* file (the same export with rows appended) starts with exactly the bytes that were imported, so the
rows already stored are skipped instead of read again. A file that changed anywhere else is read in full and each
row's version decides whether it is new, changed or unchanged.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

CHUNK = 1024 * 1024


class DatasetPosition(BaseModel):
    model_config = ConfigDict(extra="ignore")

    size: int = Field(ge=0)
    sha256: str
    rows: int = Field(ge=0)  # data rows consumed (blank rows included), in file order
    complete: bool = False
    ends_with_newline: bool = True


@dataclass(frozen=True)
class Fingerprint:
    size: int
    sha256: str
    ends_with_newline: bool


def fingerprint(path: str | Path, *, prefix_size: int | None = None) -> tuple[Fingerprint, str | None]:
    """The file's fingerprint and, when `prefix_size` is given, the SHA-256 of its first `prefix_size` bytes,
    both in one streaming pass."""
    whole = hashlib.sha256()
    prefix = hashlib.sha256() if prefix_size is not None else None
    read = 0
    last = b""
    with Path(path).open("rb") as handle:
        while chunk := handle.read(CHUNK):
            if prefix is not None and prefix_size is not None and read < prefix_size:
                prefix.update(chunk[: prefix_size - read])
            whole.update(chunk)
            read += len(chunk)
            last = chunk[-1:]
    prefix_digest = prefix.hexdigest() if prefix is not None and prefix_size is not None and read >= prefix_size else None
    return Fingerprint(read, whole.hexdigest(), last in (b"\n", b"\r")), prefix_digest


def _datasets(cursor: Any) -> dict[str, Any]:
    """The per-dataset positions of a stored cursor; {} for a cursor that is not the object this source writes."""
    datasets = cursor.get("datasets") if isinstance(cursor, dict) else None
    return dict(datasets) if isinstance(datasets, dict) else {}


def position(cursor: Any, dataset: str) -> DatasetPosition | None:
    raw = _datasets(cursor).get(dataset)
    if not isinstance(raw, dict):
        return None
    try:
        return DatasetPosition.model_validate(raw)
    except ValidationError:
        return None  # an unreadable position: the whole file is read again, row versions keep it idempotent


def with_position(cursor: Any, dataset: str, moved: DatasetPosition) -> dict[str, Any]:
    """The cursor with `dataset` moved on; an unreadable cursor (not an object) is replaced, not kept."""
    datasets = _datasets(cursor)
    datasets[dataset] = moved.model_dump()
    return {**(cursor if isinstance(cursor, dict) else {}), "datasets": datasets}


def rows_to_skip(previous: DatasetPosition | None, current: Fingerprint, prefix_sha256: str | None, kind: str) -> int:
    """How many data rows of the current file are already stored unchanged.

    - Same file, import complete: all of them.
    - Same file, import interrupted: the rows of the committed pages.
    - A CSV that starts with every byte of a completely imported file ending in a line break: the old rows.
    - Anything else: none (read it all; unchanged rows are recognised by their version).
    """
    if previous is None:
        return 0
    if previous.size == current.size and previous.sha256 == current.sha256:
        return previous.rows
    if (kind == "csv" and previous.complete and previous.ends_with_newline and current.size > previous.size
            and prefix_sha256 == previous.sha256):
        return previous.rows
    return 0
