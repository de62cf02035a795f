"""What the standard acceptance suite (tests/test_source_contract.py) needs from a source, and the harness for emulator-served sources.

A source names its harness in `SourceSpec.harness`; each built-in source keeps its own in `harness.py` of its package ("module:attribute"). The harness starts the source's emulator on
127.0.0.1 (real HTTP, as a PM's machine talks to the vendor), builds the integration against it, and can revoke the
token or make the vendor fail, so one contract (cursor round trip, corrupted and future cursors, resuming at a page
boundary, a revoked token, retries on 429 and 5xx) runs unchanged over every source. A third-party source passes the
same suite by shipping an object that satisfies `SourceHarness`.

Only the tests import this module's objects; reading the registry never does.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any, Protocol

from ..emulator import Emulator, EmulatorConfig, run_emulator_server
from ..integrations.base import BaseIntegration
from . import get_spec

YEAR_2100 = int(datetime(2100, 1, 1, tzinfo=timezone.utc).timestamp())
# Cursors no vendor can read: not an object, a list, an object of unknown keys.
GENERALLY_CORRUPTED: tuple[Any, ...] = ("not an object", ["a", "list"], {"unexpected": 1})


class RunningSource(Protocol):
    """A source served over HTTP on 127.0.0.1 for one test."""

    emulator: Emulator

    def integration(self, **options: Any) -> BaseIntegration: ...

    def expected_ids(self) -> list[str]:
        """Every record id the vendor holds, sorted: what a full read must return, each once."""
        ...

    def revoke_token(self) -> None:
        """The configured token stops authenticating (as when an admin revokes it)."""
        ...

    def fail_next(self, status: int, times: int) -> None:
        """The next `times` requests for the paged list answer `status` with the vendor's own error body."""
        ...


class SourceHarness(Protocol):
    source: str
    future_cursor: dict[str, Any]  # a position past every record: a read from it finds nothing and keeps it
    corrupted_cursors: tuple[Any, ...]  # stored positions the source must refuse with a typed error
    # "refuse" (the default when absent), or "read_again": a source that can read everything again at no cost (a
    # file) reads past a bad position and stores each record once.
    corrupted_cursor_policy: str
    dataset: dict[str, Any]  # EmulatorConfig fields sizing the dataset for this source

    def running(self, config: EmulatorConfig) -> Any:
        """A context manager yielding a RunningSource for `config`'s dataset."""
        ...


@dataclass(frozen=True)
class EmulatorHarness:
    """A harness for a source the built-in emulator serves.

    - `list_path`: regex of the paged list endpoint (where faults go);
    - `credentials(emulator, base_url)`: a good configuration; `record_ids(emulator)`: every id the vendor holds;
    - `options`: integration options that make a small dataset span several pages;
    - `dataset`: EmulatorConfig fields sizing the dataset for this source.
    """

    source: str
    list_path: str
    credentials: Callable[[Emulator, str], dict[str, str]]
    record_ids: Callable[[Emulator], list[str]]
    future_cursor: dict[str, Any]
    corrupted_cursors: tuple[Any, ...]
    options: dict[str, Any] = field(default_factory=dict)
    dataset: dict[str, Any] = field(default_factory=dict)
    corrupted_cursor_policy: str = "refuse"  # a vendor's API is not read again for free

    @contextmanager
    def running(self, config: EmulatorConfig) -> Iterator[_Served]:
        emulator = Emulator(config)
        with run_emulator_server(emulator) as root:
            yield _Served(self, emulator, emulator.base_urls(root)[self.source])


@dataclass
class _Served:
    harness: EmulatorHarness
    emulator: Emulator
    base_url: str

    def integration(self, **options: Any) -> BaseIntegration:
        cls = get_spec(self.harness.source).integration_class()
        return cls(self.harness.credentials(self.emulator, self.base_url), **{**self.harness.options, **options})

    def expected_ids(self) -> list[str]:
        return sorted(self.harness.record_ids(self.emulator))

    def revoke_token(self) -> None:
        self.emulator.expire_token(self.harness.source)

    def fail_next(self, status: int, times: int) -> None:
        self.emulator.faults.inject(self.harness.source, self.harness.list_path, status, times=times)
