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

from .config import VENDORS, EmulatorConfig, FixedWindowLimit
from .data import People
from .faults import FaultQueue
from ..sources.intercom.emulator import IntercomDataset
from .ratelimit import FixedWindowVendorLimiter, RateLimiters, build_fixed_window_limiters, build_rate_limiters
from ..sources.surveymonkey.emulator import SurveyMonkeyDataset
from .webhooks import (
    INTERCOM_DEFAULT_TOPICS, INTERCOM_WEBHOOK_VERSION, Delivery, RegisteredWebhook, WebhookRegistry, build_delivery, newest_record_ids,
)
from ..sources.zendesk.emulator import ZendeskDataset


@dataclass(frozen=True)
class RequestRecord:
    vendor: str
    method: str
    path: str                  # the full request path, e.g. "/zendesk/demo/api/v2/users/me.json"
    endpoint: str              # the path below the vendor base URL, e.g. "/api/v2/users/me.json"
    query: dict[str, str]
    status: int | None         # None when the connection was dropped without a response
    time: float                # unix time (real clock) when the request arrived
    fault: str | None = None   # the injected fault kind that shaped the answer, if any
    body: Any = None           # the parsed JSON request body (Intercom search), if any


class Emulator:
    """Holds everything the emulated APIs serve; create_app(emulator) puts it on the wire."""

    def __init__(self, config: EmulatorConfig | None = None) -> None:
        self.config = config or EmulatorConfig()
        # The data clock (Zendesk's start_time rule, updated_at of mutations). May return a unix time or a datetime.
        self.clock: Callable[[], float | datetime] = time.time
        # The rate limiters' clock: real time, so that clients can sleep on the reset headers.
        self.rate_clock: Callable[[], float] = time.time
        self.people = People(self.config.seed, self.config.customer_count)
        self.zendesk = ZendeskDataset(self.config, self.people, self.now_ts)
        self.intercom = IntercomDataset(self.config, self.people, self.now_ts)
        self.surveymonkey = SurveyMonkeyDataset(self.config, self.people, self.now_ts)
        self.faults = FaultQueue()
        self.requests: list[RequestRecord] = []
        self.rate_limiters: RateLimiters | None = build_rate_limiters(self.config)
        self.fixed_window_limiters: dict[str, FixedWindowVendorLimiter] = build_fixed_window_limiters(self.config)
        self.webhooks = WebhookRegistry()
        self._down: set[str] = set()
        self._expired_tokens: set[str] = set()
        self._last_bodies: dict[tuple[str, str], tuple[bytes, str]] = {}
        self._lock = threading.Lock()

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

    def add_intercom_webhook(self, url: str, topics: Iterable[str] = INTERCOM_DEFAULT_TOPICS,
                             api_version: str = INTERCOM_WEBHOOK_VERSION) -> dict[str, Any]:
        """What a person does in Intercom's Developer Hub (there is no API for it): send these topics to `url`, in
        the payload shape of `api_version` (before 2.0: `conversation_message` and `user`)."""
        hook = self.webhooks.add(RegisteredWebhook(
            vendor="intercom", id=self.webhooks.new_id("intercom"), name="Developer Hub webhook", url=url,
            events=tuple(topics), created_at=time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(self.now_ts())),
            api_version=api_version,
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

        `kind`: Zendesk "created", "comment_added", "status_changed" (any ticket event type); Intercom a topic such as
        "user.created" or "conversation.user.replied"; SurveyMonkey "response_completed" (or another event_type).
        The event goes to `url`, or else to the newest webhook registered for it (LookupError when there is none).
        Sending again with the same `event_id` (and `at`) is a redelivery of the same event. `at` (default: now, on
        the real clock) is the event's time and Zendesk's signature timestamp.
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
        return {
            "zendesk": f"{root}/zendesk/{self.config.zendesk_subdomain}",
            "intercom": f"{root}/intercom",
            "surveymonkey": f"{root}/surveymonkey/v3",
        }


def _check_vendor(vendor: str) -> None:
    if vendor not in VENDORS:
        raise ValueError(f"unknown vendor {vendor!r}; expected one of {VENDORS}")
