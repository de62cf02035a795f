"""An emulator of the registered sources' vendor APIs, with their real wire formats.

Used by the integration tests (over HTTP on 127.0.0.1), by the benchmarks and by the app's demo mode (in-process
through httpx.ASGITransport). It serves a deterministic, lazily generated dataset and can inject faults, enforce
scaled rate limits, mutate records for incremental-sync tests, register webhooks and send signed webhook events
(`Emulator.send_event`). Each vendor is a source's `EmulatorVendor` (`SourceSpec.emulator`), mounted in one app
under its own base path, `{root}/<vendor>/...`.
"""

from typing import Any

from .app import ConnectionDropped, create_app
from .config import EmulatorConfig, FixedWindowLimit
from .core import Emulator, RequestRecord
from .faults import FAULT_KINDS, Fault, FaultQueue
from .server import run_emulator_server
from .vendor import EmulatorVendor, EmulatorWebhooks, RateLimitProfile, emulator_vendors, vendor_attribute, vendor_names
from .webhooks import Delivery


def __getattr__(name: str) -> Any:
    # `VENDORS` is read from the registry when first used; each vendor's demo credentials (`DEMO_<VENDOR>_...`)
    # live in its own emulator module.
    if name == "VENDORS":
        return vendor_names()
    return vendor_attribute(name)


__all__ = [
    "FAULT_KINDS", "ConnectionDropped", "Delivery", "Emulator", "EmulatorConfig", "EmulatorVendor", "EmulatorWebhooks",
    "Fault", "FixedWindowLimit", "FaultQueue", "RateLimitProfile", "RequestRecord", "create_app", "emulator_vendors",
    "run_emulator_server",
]
