"""The emulator's state: datasets, clock, faults, rate limiters, outages and the request log."""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

import httpx

from .config import EmulatorConfig, FixedWindowLimit
from .data import People
from .faults import FaultQueue
from .ratelimit import FixedWindowVendorLimiter, RateLimiters, build_fixed_window_limiters, build_rate_limiters
from .vendor import EmulatorVendor, emulator_vendor, emulator_vendors
from .webhooks import (
    Delivery, RegisteredWebhook, WebhookRegistry, build_delivery, newest_record_ids, vendor_webhooks,
)


@dataclass(frozen=True)
class RequestRecord:
    vendor: str
    method: str
    path: str                  # the full request path, e.g. "/<vendor>/<account>/api/v2/users/me.json"
    endpoint: str              # the path below the vendor base URL, e.g. "/api/v2/users/me.json"
    query: dict[str, str]
    status: int | None         # None when the connection was dropped without a response
    time: float                # unix time (real clock) when the request arrived
    fault: str | None = None   # the injected fault kind that shaped the answer, if any
    body: Any = None           # the parsed JSON request body (a search query), if any


class Emulator:
    """Holds everything the emulated APIs serve; create_app(emulator) puts it on the wire.

    Each registered source with an emulator part (`SourceSpec.emulator`) is a vendor here: `vendor(name)` is its
    dataset, also readable as the attribute `emulator.<name>`.
    """

    def __init__(self, config: EmulatorConfig | None = None) -> None:
        self.config = config or EmulatorConfig()
        # The data clock (incremental exports' start_time rules, updated_at of mutations). May return a unix time or
        # a datetime.
        self.clock: Callable[[], float | datetime] = time.time
        # The rate limiters' clock: real time, so that clients can sleep on the reset headers.
        self.rate_clock: Callable[[], float] = time.time
        self.people = People(self.config.seed, self.config.customer_count)
        self.vendors: dict[str, EmulatorVendor] = dict(emulator_vendors())
        self.datasets: dict[str, Any] = {
            name: vendor.dataset(self.config, self.people, self.now_ts) for name, vendor in self.vendors.items()
        }
        self.faults = FaultQueue()
        self.requests: list[RequestRecord] = []
        self.rate_limiters: RateLimiters | None = build_rate_limiters(self.config)
        self.fixed_window_limiters: dict[str, FixedWindowVendorLimiter] = build_fixed_window_limiters(self.config)
        self.webhooks = WebhookRegistry()
        self._down: set[str] = set()
        self._expired_tokens: set[str] = set()
        self._last_bodies: dict[tuple[str, str], tuple[bytes, str]] = {}
        self._lock = threading.Lock()

    def vendor(self, name: str) -> Any:
        """The vendor's dataset (what its API serves)."""
        _check_vendor(name)
        return self.datasets[name]

    def __getattr__(self, name: str) -> Any:
        # `emulator.<vendor>` is the vendor's dataset; `add_<vendor>_webhook(url, ...)` is `add_webhook(<vendor>, ...)`.
        datasets = self.__dict__.get("datasets")
        if datasets is not None:
            if name in datasets:
                return datasets[name]
            if name.startswith("add_") and name.endswith("_webhook") and name[4:-8] in datasets:
                vendor = name[4:-8]

                def add(url: str, events: Iterable[str] | None = None, **options: Any) -> dict[str, Any]:
                    return self.add_webhook(vendor, url, events, **options)

                return add
        raise AttributeError(name)

    # ---- clock --------------------------------------------------------------------------------------------------

    def now(self) -> datetime:
        value = self.clock()
        if isinstance(value, datetime):
            return value if value.tzinfo else value.replace(tzinfo=timezone.utc)
        return datetime.fromtimestamp(value, timezone.utc)

    def now_ts(self) -> int:
        value = self.clock()
        if isinstance(value, datetime):
            if value.tzinfo is None:
                value = value.replace(tzinfo=timezone.utc)
            return int(value.timestamp())
        return int(value)

    # ---- outages and credentials --------------------------------------------------------------------------------

    def set_down(self, vendor: str, down: bool = True) -> None:
        """While down, every request to the vendor answers 503."""
        _check_vendor(vendor)
        (self._down.add if down else self._down.discard)(vendor)

    def is_down(self, vendor: str) -> bool:
        return vendor in self._down

    def expire_token(self, vendor: str) -> None:
        """The vendor's configured token stops authenticating (401) until restore_token."""
        _check_vendor(vendor)
        self._expired_tokens.add(vendor)

    def restore_token(self, vendor: str) -> None:
        self._expired_tokens.discard(vendor)

    def token_expired(self, vendor: str) -> bool:
        return vendor in self._expired_tokens

    def reset_rate_limits(self) -> None:
        self.rate_limiters = build_rate_limiters(self.config)
        self.fixed_window_limiters = build_fixed_window_limiters(self.config)

    def set_rate_limit(self, vendor: str, requests: int, seconds: float = 1.0, advertised: int | None = None) -> None:
        """From now on the vendor allows `requests` per `seconds` (real time) in fixed windows shared by every
        request, and its headers claim `advertised` instead when given (see FixedWindowLimit)."""
        _check_vendor(vendor)
        spec = FixedWindowLimit(requests, seconds, advertised)
        self.config.fixed_window_limits[vendor] = spec
        self.fixed_window_limiters[vendor] = FixedWindowVendorLimiter(vendor, spec)

    def clear_rate_limit(self, vendor: str) -> None:
        """Back to the vendor's usual limiter (or none, with time_scale None)."""
        _check_vendor(vendor)
        self.config.fixed_window_limits.pop(vendor, None)
        self.fixed_window_limiters.pop(vendor, None)

    def rate_limited_count(self, vendor: str) -> int:
        """429s the vendor's fixed-window limit has answered since it was set."""
        limiter = self.fixed_window_limiters.get(vendor)
        return limiter.refused if limiter is not None else 0

    # ---- request log --------------------------------------------------------------------------------------------

    def log(self, record: RequestRecord) -> None:
        with self._lock:
            self.requests.append(record)

    def request_count(self, vendor: str | None = None, path_regex: str | None = None) -> int:
        """Requests received for a vendor (all vendors if None), optionally only those whose endpoint matches."""
        pattern = re.compile(path_regex) if path_regex else None
        return sum(1 for r in list(self.requests)
                   if (vendor is None or r.vendor == vendor) and (pattern is None or pattern.search(r.endpoint)))

    def clear_requests(self) -> None:
        with self._lock:
            self.requests.clear()

    def remember_body(self, vendor: str, endpoint: str, body: bytes, media_type: str) -> None:
        with self._lock:
            self._last_bodies[(vendor, endpoint)] = (body, media_type)

    def last_body(self, vendor: str, endpoint: str) -> tuple[bytes, str] | None:
        with self._lock:
            return self._last_bodies.get((vendor, endpoint))

    # ---- webhooks -----------------------------------------------------------------------------------------------

    def registered_webhooks(self, vendor: str) -> list[dict[str, Any]]:
        """The vendor's webhooks, oldest first: id, name, url, events, status, object_ids, ... (the same keys for
        every vendor, whatever names the vendor's own API uses for them)."""
        _check_vendor(vendor)
        return [hook.as_dict() for hook in self.webhooks.list(vendor)]

    def add_webhook(self, vendor: str, url: str, events: Iterable[str] | None = None, *,
                    api_version: str | None = None) -> dict[str, Any]:
        """What a person does in the console of a vendor that has no API for webhooks: send these events to `url`
        (default: the vendor's usual set), in the payload shape of `api_version` where the vendor has versions."""
        webhooks = vendor_webhooks(vendor)
        hook = self.webhooks.add(RegisteredWebhook(
            vendor=vendor, id=self.webhooks.new_id(vendor), name=webhooks.manual_name, url=url,
            events=tuple(webhooks.manual_events if events is None else events),
            created_at=time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(self.now_ts())),
            api_version=api_version or webhooks.manual_api_version,
        ))
        return hook.as_dict()

    def newest_record_ids(self, vendor: str, limit: int = 50) -> list[str]:
        """Ids of the vendor's most recently created records, newest first: records to send events about."""
        return newest_record_ids(self, vendor, limit)

    def delivery(self, vendor: str, kind: str, record_id: str | int, *, url: str | None = None,
                 event_id: str | None = None, at: datetime | float | None = None) -> Delivery:
        """The signed event `send_event` would post, without posting it."""
        return build_delivery(self, vendor, kind, record_id, url=url, event_id=event_id, at=at)

    def send_event(self, vendor: str, kind: str, record_id: str | int, *, url: str | None = None,
                   event_id: str | None = None, at: datetime | float | None = None,
                   timeout: float = 10.0) -> httpx.Response:
        """Post the vendor's signed event about one of its records, as the vendor would.

        `kind` is the vendor's event type (its emulator's `build` accepts short forms, e.g. "created" for a ticket
        event). The event goes to `url`, or else to the newest webhook registered for it (LookupError when there is none).
        Sending again with the same `event_id` (and `at`) is a redelivery of the same event. `at` (default: now, on
        the real clock) is the event's time and any signature timestamp.
        """
        delivery = self.delivery(vendor, kind, record_id, url=url, event_id=event_id, at=at)
        with httpx.Client(timeout=timeout, trust_env=False) as client:
            return client.post(delivery.url, content=delivery.body, headers=delivery.headers)

    async def send_event_async(self, vendor: str, kind: str, record_id: str | int, *, url: str | None = None,
                               event_id: str | None = None, at: datetime | float | None = None,
                               timeout: float = 10.0) -> httpx.Response:
        """`send_event` for code that runs in an event loop."""
        delivery = self.delivery(vendor, kind, record_id, url=url, event_id=event_id, at=at)
        async with httpx.AsyncClient(timeout=timeout, trust_env=False) as client:
            return await client.post(delivery.url, content=delivery.body, headers=delivery.headers)

    # ---- addresses ----------------------------------------------------------------------------------------------

    def base_urls(self, emulator_url: str) -> dict[str, str]:
        """The base URL each integration should be configured with, given the emulator's root URL."""
        root = emulator_url.rstrip("/")
        return {name: f"{root}{vendor.base_path(self.config)}" for name, vendor in self.vendors.items()}


def _check_vendor(vendor: str) -> None:
    emulator_vendor(vendor)  # ValueError naming the known vendors
