"""Integrations configured against an emulator, and a sync into a fresh store, as the benchmarks use them."""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from feedback_sources.emulator import (
    DEMO_INTERCOM_TOKEN,
    DEMO_SURVEYMONKEY_TOKEN,
    DEMO_ZENDESK_EMAIL,
    DEMO_ZENDESK_SUBDOMAIN,
    DEMO_ZENDESK_TOKEN,
)
from feedback_sources.integrations.base import BaseIntegration, get_integration_class
from feedback_sources.store import Store
from feedback_sources.sync import SourceResult, sync

from .emulator_process import EmulatorProcess


def integration_config(source: str, base_url: str) -> dict[str, str]:
    if source == "zendesk":
        return {"subdomain": DEMO_ZENDESK_SUBDOMAIN, "email": DEMO_ZENDESK_EMAIL, "api_token": DEMO_ZENDESK_TOKEN,
                "base_url": base_url}
    if source == "intercom":
        return {"access_token": DEMO_INTERCOM_TOKEN, "base_url": base_url}
    return {"access_token": DEMO_SURVEYMONKEY_TOKEN, "base_url": base_url}


def cli_environment(base_urls: dict[str, str]) -> dict[str, str]:
    """The environment variables that point the CLI's real (non-demo) workspace at the emulator."""
    return {
        "ZENDESK_SUBDOMAIN": DEMO_ZENDESK_SUBDOMAIN,
        "ZENDESK_EMAIL": DEMO_ZENDESK_EMAIL,
        "ZENDESK_API_TOKEN": DEMO_ZENDESK_TOKEN,
        "ZENDESK_BASE_URL": base_urls["zendesk"],
        "INTERCOM_ACCESS_TOKEN": DEMO_INTERCOM_TOKEN,
        "INTERCOM_BASE_URL": base_urls["intercom"],
        "SURVEYMONKEY_ACCESS_TOKEN": DEMO_SURVEYMONKEY_TOKEN,
        "SURVEYMONKEY_BASE_URL": base_urls["surveymonkey"],
        # Never read a developer's keyring or .env during a benchmark.
        "PYTHON_KEYRING_BACKEND": "keyring.backends.null.Keyring",
    }


def make_integration(source: str, emulator: EmulatorProcess) -> BaseIntegration:
    return get_integration_class(source)(integration_config(source, emulator.base_urls[source]))


@dataclass
class SyncRun:
    seconds: float
    result: SourceResult
    requests: int  # as the emulator counted them, 429s included
    throttled: int  # 429 answers
    client_cpu: float
    server_cpu: float


def fresh_store(path: Path) -> Store:
    for suffix in ("", "-wal", "-shm"):
        Path(f"{path}{suffix}").unlink(missing_ok=True)
    return Store(path)


def timed_sync(store: Store, source: str, emulator: EmulatorProcess, *, incremental: bool = False,
               integration: BaseIntegration | None = None) -> SyncRun:
    """One sync of one source, with the emulator's request count and both processes' CPU time."""
    emulator.call("clear_requests")
    integration = integration or make_integration(source, emulator)
    server_cpu = emulator.call("cpu_seconds")
    client_cpu = time.process_time()
    started = time.perf_counter()
    results = sync(store, {source: integration}, incremental=incremental)
    seconds = time.perf_counter() - started
    client_cpu = time.process_time() - client_cpu
    server_cpu = emulator.call("cpu_seconds") - server_cpu
    counts: dict[str, Any] = emulator.call("request_counts")
    result = results[source]
    if result.status != "complete":
        raise RuntimeError(f"{source} sync did not complete: {result.errors}")
    return SyncRun(seconds, result, counts.get(f"requests:{source}", 0), counts.get(f"429:{source}", 0),
                   client_cpu, server_cpu)
