"""Webhooks: the registry of webhooks each vendor holds, and sending signed events built from the dataset.

Each vendor's part lives in its package (`EmulatorVendor.webhooks`): its registration endpoints (served behind the
vendor's usual authentication, faults and rate limits), or, for a vendor that has no API for it, what a person does
in its console (`Emulator.add_webhook`); its payloads; its signature. Deliveries carry the vendor's payload and are
signed as the vendor signs them. The signing is written in the vendors' emulator modules on its own rather than
imported from the receiver (the emulator imports nothing from the rest of the package), so tests that run one
against the other show that both follow the vendors' rules.
"""

from __future__ import annotations

import itertools
import json
import threading
import time
from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import httpx

from .data import to_unix
from .vendor import EmulatorWebhooks, emulator_vendor, emulator_vendors, vendor_attribute

if TYPE_CHECKING:
    from .core import Emulator


# -- registrations ---------------------------------------------------------------------------------------------------


@dataclass
class RegisteredWebhook:
    """One webhook, the same fields for every vendor: `events` are the vendor's subscriptions, event types or
    topics; `object_ids` the objects (surveys, collectors, ...) a webhook is limited to, empty for all."""

    vendor: str
    id: str
    name: str
    url: str
    events: tuple[str, ...]
    created_at: str
    status: str = "active"
    object_type: str | None = None
    object_ids: tuple[str, ...] = ()
    http_method: str = "POST"
    request_format: str = "json"
    # The API version deliveries are made in, for a vendor whose console sets one.
    api_version: str | None = None

    def as_dict(self) -> dict[str, Any]:
        found = asdict(self)
        found["events"] = list(self.events)
        found["object_ids"] = list(self.object_ids)
        if self.api_version is None:
            found.pop("api_version")  # a setting only some vendors' consoles have
        return found


class WebhookRegistry:
    """The webhooks registered with each vendor, in the order they were created."""

    def __init__(self) -> None:
        self._hooks: dict[str, dict[str, RegisteredWebhook]] = {vendor: {} for vendor in emulator_vendors()}
        self._numbers = itertools.count(1)
        self._lock = threading.Lock()

    def new_id(self, vendor: str) -> str:
        with self._lock:
            number = next(self._numbers)
        return vendor_webhooks(vendor).new_webhook_id(number)

    def add(self, webhook: RegisteredWebhook) -> RegisteredWebhook:
        with self._lock:
            self._hooks[webhook.vendor][webhook.id] = webhook
        return webhook

    def get(self, vendor: str, webhook_id: str) -> RegisteredWebhook | None:
        with self._lock:
            return self._hooks[vendor].get(webhook_id)

    def remove(self, vendor: str, webhook_id: str) -> RegisteredWebhook | None:
        with self._lock:
            return self._hooks[vendor].pop(webhook_id, None)

    def list(self, vendor: str) -> list[RegisteredWebhook]:
        with self._lock:
            return list(self._hooks[vendor].values())

    def clear(self) -> None:
        with self._lock:
            for hooks in self._hooks.values():
                hooks.clear()


def vendor_webhooks(vendor: str) -> EmulatorWebhooks:
    """The vendor's webhook part; ValueError for a vendor without one."""
    webhooks = emulator_vendor(vendor).webhooks
    if webhooks is None:
        raise ValueError(f"the {vendor} emulator has no webhooks")
    return webhooks


def is_web_url(value: Any) -> bool:
    """An absolute http(s) URL with a host, without surrounding blanks."""
    if not isinstance(value, str) or not value.strip() or value != value.strip():
        return False
    parts = urlsplit(value)
    return parts.scheme in ("http", "https") and bool(parts.hostname)


def strings_of(value: Any) -> list[str] | None:
    """A list of non-empty strings (ids may come as numbers), or None when it is anything else."""
    if not isinstance(value, list):
        return None
    found = []
    for item in value:
        if isinstance(item, bool) or not isinstance(item, str | int) or not str(item).strip():
            return None
        found.append(str(item).strip())
    return found


async def answers_head(url: str, timeout: float) -> bool:
    """Whether `url` answers HEAD with 200, the check some vendors make before they accept a webhook URL."""
    # Straight to the address given, like the vendor's own check: no proxies from the environment, no redirects.
    try:
        async with httpx.AsyncClient(timeout=timeout, follow_redirects=False, trust_env=False) as client:
            response = await client.head(url)
    except httpx.HTTPError:
        return False
    return response.status_code == 200


def subscribed(hook: RegisteredWebhook, event: str, object_ids: tuple[str, ...] = ()) -> bool:
    """Whether an active `hook` wants `event` about an object among `object_ids`."""
    if hook.status != "active" or event not in hook.events:
        return False
    return not hook.object_ids or any(object_id in hook.object_ids for object_id in object_ids)


# -- deliveries ------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Delivery:
    """A signed event ready to post: the exact bytes and headers the vendor would send."""

    vendor: str
    url: str
    event_id: str
    payload: dict[str, Any]
    body: bytes
    headers: dict[str, str] = field(default_factory=dict)


def encode_payload(payload: dict[str, Any]) -> bytes:
    return json.dumps(payload, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


def moment_of(at: datetime | float | int | None) -> float:
    # Real time by default: the receiver checks signature timestamps against its own clock.
    if at is None:
        return time.time()
    if isinstance(at, datetime):
        return float(to_unix(at))
    return float(at)


def build_delivery(emulator: Emulator, vendor: str, kind: str, record_id: str | int, *, url: str | None = None,
                   event_id: str | None = None, at: datetime | float | int | None = None) -> Delivery:
    """The signed event about one of the emulator's records, addressed to `url` or else to the newest webhook
    registered for it. LookupError when the record does not exist or no webhook wants the event."""
    webhooks = vendor_webhooks(vendor)
    moment = moment_of(at)
    event_id = event_id or webhooks.new_event_id()
    hooks = list(reversed(emulator.webhooks.list(vendor)))
    built = webhooks.build(emulator, kind, record_id, hooks, event_id, moment)
    target = url or (built.hook.url if built.hook else None)
    if target is None:
        raise LookupError(f"no {vendor} webhook is registered for {kind!r} events; register one or pass url=")
    return Delivery(vendor=vendor, url=target, event_id=event_id, payload=built.payload, body=built.body,
                    headers=built.headers)


def newest_record_ids(emulator: Emulator, vendor: str, limit: int = 50) -> list[str]:
    """Ids of the vendor's most recently created records (removed ones left out), newest first."""
    return vendor_webhooks(vendor).newest_record_ids(emulator, limit)


def __getattr__(name: str) -> Any:
    # Each vendor's signers and payload builders live in its own package.
    return vendor_attribute(name)
