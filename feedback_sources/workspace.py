"""Where the app and the CLI get their store and integrations: the real accounts, or the demo workspace.

The demo workspace talks to the built-in vendor emulator in-process (an httpx ASGI transport, no port, no account)
and keeps its records in a separate database file, so demo data never mixes with real feedback.
"""

from __future__ import annotations

import asyncio
import os
import threading
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from .integrations.base import BaseIntegration, ConfigError, ConnectionResult, get_integration_class
from .sources import registry, source_names
from .store import Store, default_db_path

DEMO_BASE = "http://emulator.local"
# Seconds every demo request waits before its answer: a slow vendor, for trying (and testing) long syncs.
DEMO_LATENCY_ENV = "FEEDBACK_DEMO_LATENCY"

_demo_lock = threading.Lock()
_demo_emulator: Any = None


def demo_emulator() -> Any:
    """The process-wide demo emulator (deterministic data, no rate limits), created on first use."""
    global _demo_emulator
    with _demo_lock:
        if _demo_emulator is None:
            from .emulator import Emulator, EmulatorConfig

            _demo_emulator = Emulator(EmulatorConfig())
            latency = demo_latency()
            if latency:
                for vendor in _emulated_sources():  # the emulator's own "timeout" fault: wait, then answer normally
                    _demo_emulator.faults.inject(vendor, ".", "timeout", times=None, seconds=latency)
        return _demo_emulator


def _emulated_sources() -> list[str]:
    """The sources the demo emulator answers for: those whose spec names an emulator vendor (a file source has a demo
    configuration but no server to imitate)."""
    return [name for name, spec in registry().items() if spec.emulator is not None]


def demo_sources() -> list[str]:
    """The sources the demo workspace can sync without asking for anything: a demo configuration, or no required
    field at all (a plugin that needs no account)."""
    return [name for name, spec in registry().items() if spec.demo_config is not None or not spec.required_fields]


def demo_latency() -> float:
    raw = os.environ.get(DEMO_LATENCY_ENV, "").strip()
    if not raw:
        return 0.0
    try:
        latency = float(raw)
    except ValueError:
        raise ValueError(f"{DEMO_LATENCY_ENV} must be a number of seconds, not {raw!r}") from None
    if not 0 <= latency <= 60:
        raise ValueError(f"{DEMO_LATENCY_ENV} must be between 0 and 60 seconds")
    return latency


def demo_configs(base_url: str = DEMO_BASE) -> dict[str, dict[str, str]]:
    """Each source's demo configuration against the emulator at `base_url`, from its spec's `demo_config`.

    The webhook signing fields are the emulator's own, so a receiver run on the demo workspace
    (`serve-webhooks --demo`) accepts the events the emulator signs. A source without a demo configuration (a file
    source, or a plugin the emulator does not imitate) gets an empty one.
    """
    configs: dict[str, dict[str, str]] = {}
    for name, spec in registry().items():
        make = spec.load("demo_config")
        configs[name] = dict(make(base_url)) if make is not None else {}
    return configs


@dataclass
class Workspace:
    demo: bool
    db_path: Path
    configs: dict[str, dict[str, str]] = field(default_factory=dict)
    transport_factory: Any = None  # returns a fresh httpx transport per action, or None for the real network

    def store(self) -> Store:
        return Store(self.db_path)

    def is_configured(self, source: str) -> bool:
        try:
            self.integration(source)
        except ConfigError:
            return False
        return True

    def missing_fields(self, source: str) -> list[str]:
        try:
            self.integration(source)
        except ConfigError as error:
            return error.missing
        return []

    def configured_sources(self) -> list[str]:
        return [s for s in source_names() if self.is_configured(s)]

    def integration(self, source: str, **options: Any) -> BaseIntegration:
        cls = get_integration_class(source)
        transport = self.transport_factory() if self.transport_factory is not None else None
        return cls(dict(self.configs.get(source, {})), transport=transport, **options)

    def integrations(self, sources: Iterable[str] | None = None, **options: Any) -> dict[str, BaseIntegration]:
        """Integrations for the chosen sources; raises ConfigError for the first one that is not configured."""
        chosen = list(sources) if sources is not None else self.configured_sources()
        return {source: self.integration(source, **options) for source in chosen}

    def test_connection(self, source: str) -> ConnectionResult:
        try:
            integration = self.integration(source)
        except ConfigError as error:
            from .integrations.base import HINTS

            return ConnectionResult(False, "config", str(error), HINTS["config"])
        return asyncio.run(integration.test_connection())


def demo_workspace(db_path: str | Path | None = None) -> Workspace:
    emulator = demo_emulator()

    def transport() -> httpx.AsyncBaseTransport:
        from .emulator import create_app

        return httpx.ASGITransport(app=create_app(emulator))

    return Workspace(
        demo=True,
        db_path=Path(db_path) if db_path else default_db_path(demo=True),
        configs=demo_configs(),
        transport_factory=transport,
    )


def real_workspace(credentials: Any = None, db_path: str | Path | None = None) -> Workspace:
    from .credentials import CredentialStore

    credentials = credentials or CredentialStore()
    return Workspace(
        demo=False,
        db_path=Path(db_path) if db_path else default_db_path(demo=False),
        configs={source: credentials.get_config(source) for source in source_names()},
    )


def has_any_credentials(credentials: Any = None) -> bool:
    from .credentials import CredentialStore

    credentials = credentials or CredentialStore()
    return any(credentials.is_configured(source) for source in source_names())


def __getattr__(name: str) -> object:
    # `SOURCES` (every registered source's name) reads the registry when first used.
    if name == "SOURCES":
        return source_names()
    raise AttributeError(name)
