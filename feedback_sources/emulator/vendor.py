"""What a source contributes to the emulator: one `EmulatorVendor`, named by `SourceSpec.emulator`.

The emulator's core (clock, people, request log, faults, outages, rate-limit windows, webhook registry) knows no
vendor: it iterates the registry and asks each vendor for its dataset, its HTTP API, where it is mounted, its
rate-limit headers and how it builds and signs webhook deliveries. A source without an emulator part is not served.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from importlib import import_module
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .config import EmulatorConfig
    from .core import Emulator
    from .data import People
    from .ratelimit import RateDecision, Scale
    from .webhooks import RegisteredWebhook
    from .wire import Call, Reply, VendorApi


class VendorLimiter:
    """A vendor's usual rate limits (the protocol its `RateLimitProfile.limiter` returns)."""

    def check(self, is_export: bool, now: float) -> RateDecision:  # pragma: no cover - protocol
        raise NotImplementedError


@dataclass(frozen=True)
class RateLimitProfile:
    """How a vendor limits requests and says so in its headers.

    `limiter(config, scale)` builds the vendor's usual limiter. A tight fixed window (`FixedWindowLimit`) replaces
    it in tests; then `fixed_headers(is_export, limit, remaining, reset_at, reset_in)` are the vendor's headers for
    it, `fixed_retry_after` whether a 429 carries `Retry-After`, and `fixed_reason` the 429's message.
    `injected_429_headers(reset_at)` are what an injected 429 fault adds (None: nothing).
    """

    limiter: Callable[[EmulatorConfig, Scale], VendorLimiter]
    fixed_headers: Callable[[bool, str, int, float, float], dict[str, str]]
    fixed_retry_after: bool = False
    fixed_reason: str | None = None
    injected_429_headers: Callable[[float], dict[str, str]] | None = None


@dataclass(frozen=True)
class BuiltDelivery:
    """A vendor's event about one record: the payload, the exact bytes and headers, and the webhook it is for."""

    payload: dict[str, Any]
    body: bytes
    headers: dict[str, str]
    hook: RegisteredWebhook | None


class RegistrationApi:
    """A vendor's webhook registration endpoints (the protocol `EmulatorWebhooks.registration` returns)."""

    def serves(self, call: Call) -> bool:  # pragma: no cover - protocol
        raise NotImplementedError

    def handle(self, call: Call) -> Awaitable[Reply]:  # pragma: no cover - protocol
        raise NotImplementedError


@dataclass(frozen=True)
class EmulatorWebhooks:
    """How a vendor registers webhooks and sends signed events.

    `build(emulator, kind, record_id, hooks, event_id, at)` makes the delivery (hooks: the vendor's webhooks, newest
    first; LookupError when the record does not exist). `registration(emulator, api)` serves the vendor's
    registration endpoints, None when the vendor has no API for it: then `Emulator.add_webhook` stands for the
    person setting one up in the vendor's console, with `manual_name`, `manual_events` and `manual_api_version`.
    """

    new_webhook_id: Callable[[int], str]
    new_event_id: Callable[[], str]
    build: Callable[[Emulator, str, str | int, list[RegisteredWebhook], str, float], BuiltDelivery]
    newest_record_ids: Callable[[Emulator, int], list[str]]
    registration: Callable[[Emulator, VendorApi], RegistrationApi] | None = None
    manual_name: str = "Webhook"
    manual_events: tuple[str, ...] = ()
    manual_api_version: str | None = None


@dataclass(frozen=True)
class EmulatorVendor:
    """One vendor of the emulator.

    `settings` are the vendor's `EmulatorConfig` options and their defaults (dataset size, demo credentials, rate
    limits), set as keyword arguments and read as attributes of the config. `record_count(config)` is how many
    feedback records the vendor's dataset holds (it sizes the shared customer base). `dataset(config, people, now)`
    and `api(config, dataset, now, token_expired)` build the data and the wire format; `base_path(config)` is where
    the API is mounted ("/<name>/..."). `misaddressed()` answers a path under "/<name>/" that misses the base path
    (None: a plain 404).
    """

    name: str
    dataset: Callable[[EmulatorConfig, People, Callable[[], int]], Any]
    api: Callable[[EmulatorConfig, Any, Callable[[], int], Callable[[], bool]], VendorApi]
    base_path: Callable[[EmulatorConfig], str]
    record_count: Callable[[EmulatorConfig], int]
    settings: Mapping[str, Any] = field(default_factory=dict)
    rate_limits: RateLimitProfile | None = None
    webhooks: EmulatorWebhooks | None = None
    misaddressed: Callable[[], Reply] | None = None


_VENDORS: tuple[object, dict[str, EmulatorVendor]] | None = None


def emulator_vendors() -> dict[str, EmulatorVendor]:
    """The emulator vendor of every registered source that has one, in registry order (loaded once per registry)."""
    global _VENDORS
    from ..sources import registry

    specs = registry()
    if _VENDORS is not None and _VENDORS[0] is specs:
        return _VENDORS[1]
    vendors: dict[str, EmulatorVendor] = {}
    for name, spec in specs.items():
        if spec.emulator is None:
            continue
        vendor = spec.load("emulator")
        if not isinstance(vendor, EmulatorVendor):
            raise TypeError(f"{spec.emulator} is not an EmulatorVendor")
        vendors[name] = vendor
    _VENDORS = (specs, vendors)
    return vendors


def vendor_names() -> tuple[str, ...]:
    return tuple(emulator_vendors())


def emulator_vendor(name: str) -> EmulatorVendor:
    vendors = emulator_vendors()
    try:
        return vendors[name]
    except KeyError:
        raise ValueError(f"unknown vendor {name!r}; expected one of {tuple(vendors)}") from None


def vendor_attribute(name: str) -> Any:
    """A name defined by one of the vendors' emulator modules (keeps the demo credentials, signers and the like
    importable from the shared modules). AttributeError when none defines it."""
    if name.startswith("__"):
        raise AttributeError(name)
    from ..sources import registry

    for spec in registry().values():
        if spec.emulator is None:
            continue
        module = import_module(spec.emulator.partition(":")[0])
        if hasattr(module, name):
            return getattr(module, name)
        webhooks = getattr(spec.load("emulator"), "webhooks", None)
        if webhooks is not None:
            module = import_module(webhooks.build.__module__)
            if hasattr(module, name):
                return getattr(module, name)
    raise AttributeError(name)
