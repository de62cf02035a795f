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
from .sources import SOURCES
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
                for vendor in SOURCES:  # the emulator's own "timeout" fault: wait, then answer normally
                    _demo_emulator.faults.inject(vendor, ".", "timeout", times=None, seconds=latency)
        return _demo_emulator


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
    from .emulator import (
        DEMO_INTERCOM_CLIENT_SECRET,
        DEMO_INTERCOM_TOKEN,
        DEMO_SURVEYMONKEY_CLIENT_ID,
        DEMO_SURVEYMONKEY_CLIENT_SECRET,
        DEMO_SURVEYMONKEY_TOKEN,
        DEMO_ZENDESK_EMAIL,
        DEMO_ZENDESK_SUBDOMAIN,
        DEMO_ZENDESK_TOKEN,
        DEMO_ZENDESK_WEBHOOK_SECRET,
    )

    # The webhook signing fields are the emulator's own, so a receiver run on the demo workspace
    # (`serve-webhooks --demo`) accepts the events the emulator signs.
    return {
        "zendesk": {
            "subdomain": DEMO_ZENDESK_SUBDOMAIN,
            "email": DEMO_ZENDESK_EMAIL,
            "api_token": DEMO_ZENDESK_TOKEN,
            "webhook_secret": DEMO_ZENDESK_WEBHOOK_SECRET,
            "base_url": f"{base_url}/zendesk/{{subdomain}}",
        },
        "intercom": {
            "access_token": DEMO_INTERCOM_TOKEN,
            "client_secret": DEMO_INTERCOM_CLIENT_SECRET,
            "base_url": f"{base_url}/intercom",
        },
        "surveymonkey": {
            "access_token": DEMO_SURVEYMONKEY_TOKEN,
            "client_id": DEMO_SURVEYMONKEY_CLIENT_ID,
            "client_secret": DEMO_SURVEYMONKEY_CLIENT_SECRET,
            "base_url": f"{base_url}/surveymonkey/v3",
        },
    }


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
        return [s for s in SOURCES if self.is_configured(s)]

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
        configs={source: credentials.get_config(source) for source in SOURCES},
    )


def has_any_credentials(credentials: Any = None) -> bool:
    from .credentials import CredentialStore

    credentials = credentials or CredentialStore()
    return any(credentials.is_configured(source) for source in SOURCES)
