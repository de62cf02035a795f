"""One HTTP layer for every vendor: timeouts, retries with full-jitter backoff, server wait hints and pacing.

httpx retries only connection setup and never waits, so the policy lives here: which statuses are retried, how long
to wait (the server's `Retry-After` or reset time when given, else exponential backoff with full jitter), and how to
slow down *before* a 429 by reading the rate-limit headers each vendor sends.
"""

from __future__ import annotations

import asyncio
import json
import logging
import random
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timezone
from email.utils import parsedate_to_datetime
from enum import StrEnum
from typing import Any

import httpx
import orjson

logger = logging.getLogger("feedback_sources.http")

RETRYABLE_STATUSES = frozenset({429, 500, 502, 503, 504})


class ErrorKind(StrEnum):
    auth = "auth"
    forbidden = "forbidden"
    wrong_subdomain = "wrong_subdomain"
    not_found = "not_found"
    rate_limited = "rate_limited"
    server = "server"
    network = "network"
    timeout = "timeout"
    bad_response = "bad_response"
    client = "client"
    config = "config"


class SourceError(Exception):
    """A failure talking to a vendor, typed so the UI and CLI can say what to do about it."""

    def __init__(
        self,
        kind: ErrorKind,
        message: str,
        *,
        status: int | None = None,
        hint: str = "",
        source: str = "",
    ):
        super().__init__(message)
        self.kind = kind
        self.message = message
        self.status = status
        self.hint = hint
        self.source = source

    def __str__(self) -> str:
        prefix = f"{self.source}: " if self.source else ""
        status = f" (HTTP {self.status})" if self.status else ""
        return f"{prefix}{self.message}{status}"


@dataclass
class RetryPolicy:
    max_attempts: int = 6
    base_delay: float = 0.5
    max_delay: float = 30.0
    # A server may ask for a longer wait than our own backoff cap (a rate-limit window); honour it up to this.
    max_server_wait: float = 120.0


@dataclass
class RateLimitWindow:
    """What the last response said about one rate-limit bucket."""

    limit: int | None
    remaining: int
    reset_at: float  # on the client's monotonic clock


@dataclass
class RequestStats:
    requests: int = 0
    retries: int = 0
    throttled: int = 0
    wait_seconds: float = 0.0
    rate_limit: dict[str, dict[str, Any]] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return {
            "requests": self.requests,
            "retries": self.retries,
            "throttled": self.throttled,
            "wait_seconds": round(self.wait_seconds, 3),
            "rate_limit": self.rate_limit,
        }


# Reads a response's rate-limit headers: returns (bucket, limit, remaining, seconds until reset) tuples.
RateLimitReader = Callable[[httpx.Response, float], list[tuple[str, int | None, int, float]]]
ErrorDescriber = Callable[[httpx.Response], SourceError | None]


def parse_retry_after(value: str | None, *, now: float) -> float | None:
    """Seconds to wait from a Retry-After header: delta-seconds (fractions allowed) or an HTTP date."""
    if not value:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        moment = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    return max(0.0, moment.timestamp() - now)


def full_jitter_delay(attempt: int, policy: RetryPolicy, rand: Callable[[], float]) -> float:
    return rand() * min(policy.max_delay, policy.base_delay * (2**attempt))


def header_number(headers: Mapping[str, str], name: str) -> float | None:
    raw = headers.get(name)
    if raw is None:
        return None
    try:
        return float(raw)
    except ValueError:
        return None


class HttpClient:
    """An async client for one vendor. Create it inside the action's event loop; never keep it across actions."""

    def __init__(
        self,
        *,
        source: str,
        base_url: str,
        headers: Mapping[str, str] | None = None,
        auth: httpx.Auth | tuple[str, str] | None = None,
        timeout: float | httpx.Timeout = 30.0,
        transport: httpx.AsyncBaseTransport | None = None,
        max_concurrency: int = 4,
        retry_policy: RetryPolicy | None = None,
        rate_limit_reader: RateLimitReader | None = None,
        describe_error: ErrorDescriber | None = None,
        sleep: Callable[[float], Awaitable[None]] | None = None,
        rand: Callable[[], float] = random.random,
        monotonic: Callable[[], float] = time.monotonic,
        wall_clock: Callable[[], float] = time.time,
    ):
        self.source = source
        self.base_url = base_url.rstrip("/")
        self._headers = dict(headers or {})
        self._auth = auth
        self._timeout = timeout if isinstance(timeout, httpx.Timeout) else httpx.Timeout(timeout, connect=min(10.0, timeout))
        self._transport = transport
        self._semaphore = asyncio.Semaphore(max_concurrency)
        self.policy = retry_policy or RetryPolicy()
        self._read_rate_limits = rate_limit_reader
        self._describe_error = describe_error
        self._sleep = sleep or asyncio.sleep
        self._rand = rand
        self._monotonic = monotonic
        self._wall_clock = wall_clock
        self._windows: dict[str, RateLimitWindow] = {}
        self._in_flight: dict[str, int] = {}
        self._client: httpx.AsyncClient | None = None
        self.stats = RequestStats()

    async def __aenter__(self) -> HttpClient:
        self._client = httpx.AsyncClient(
            base_url=self.base_url,
            headers=self._headers,
            auth=self._auth,
            timeout=self._timeout,
            transport=self._transport,
            follow_redirects=False,
        )
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        if self._client is not None:
            await self._client.aclose()
            self._client = None

    async def _wait(self, seconds: float) -> None:
        if seconds <= 0:
            return
        self.stats.wait_seconds += seconds
        await self._sleep(seconds)

    async def _pace(self, bucket: str) -> None:
        """Wait for the window to reset when the last response said this bucket is spent."""
        window = self._windows.get(bucket)
        if window is None:
            return
        now = self._monotonic()
        if window.reset_at <= now:
            self._windows.pop(bucket, None)
            return
        if window.remaining > 0:
            window.remaining -= 1  # count the request we are about to send
            return
        delay = min(window.reset_at - now, self.policy.max_server_wait)
        logger.debug("%s: pacing %.3fs for bucket %s", self.source, delay, bucket)
        await self._wait(delay)
        self._windows.pop(bucket, None)

    def _remember_limits(self, response: httpx.Response) -> None:
        if self._read_rate_limits is None:
            return
        now = self._monotonic()
        for bucket, limit, remaining, reset_in in self._read_rate_limits(response, self._wall_clock()):
            # Requests still in flight were sent after the server counted this one: they spend the window too.
            remaining = max(0, remaining - self._in_flight.get(bucket, 0))
            self._windows[bucket] = RateLimitWindow(limit=limit, remaining=remaining, reset_at=now + max(0.0, reset_in))
            self.stats.rate_limit[bucket] = {"limit": limit, "remaining": remaining}

    def _server_wait_hint(self, response: httpx.Response) -> float | None:
        hint = parse_retry_after(response.headers.get("Retry-After"), now=self._wall_clock())
        if hint is not None:
            return hint
        if response.status_code == 429 and self._read_rate_limits is not None:
            resets = [reset_in for _, _, _, reset_in in self._read_rate_limits(response, self._wall_clock())]
            if resets:
                return max(resets)
        return None

    def _error_for(self, response: httpx.Response) -> SourceError:
        if self._describe_error is not None:
            described = self._describe_error(response)
            if described is not None:
                described.source = described.source or self.source
                return described
        status = response.status_code
        if status == 401:
            kind, message = ErrorKind.auth, "the credentials were rejected"
        elif status == 403:
            kind, message = ErrorKind.forbidden, "the token lacks a required permission (scope)"
        elif status == 404:
            kind, message = ErrorKind.not_found, "the API address was not found"
        elif status == 429:
            kind, message = ErrorKind.rate_limited, "still rate limited after every retry"
        elif status >= 500:
            kind, message = ErrorKind.server, "the vendor's server kept failing"
        else:
            kind, message = ErrorKind.client, "the request was refused"
        return SourceError(kind, message, status=status, source=self.source)

    async def request(
        self,
        method: str,
        url: str,
        *,
        params: Mapping[str, Any] | None = None,
        json_body: Any = None,
        bucket: str = "default",
    ) -> httpx.Response:
        if self._client is None:
            raise RuntimeError("HttpClient must be used as an async context manager")
        attempt = 0
        while True:
            async with self._semaphore:
                # Pace inside the slot so requests queued behind the semaphore see the newest window.
                await self._pace(bucket)
                self.stats.requests += 1
                logger.debug("%s: %s %s params=%s", self.source, method, url, dict(params or {}))
                self._in_flight[bucket] = self._in_flight.get(bucket, 0) + 1
                try:
                    response = await self._client.request(method, url, params=params, json=json_body)
                except httpx.TimeoutException as error:
                    failure: SourceError | None = SourceError(
                        ErrorKind.timeout, f"the request timed out ({type(error).__name__})", source=self.source
                    )
                    response = None
                except httpx.TransportError as error:
                    failure = SourceError(
                        ErrorKind.network, f"could not reach the server ({type(error).__name__})", source=self.source
                    )
                    response = None
                else:
                    failure = None
                finally:
                    self._in_flight[bucket] -= 1
            if response is not None:
                self._remember_limits(response)
                if response.status_code < 400:
                    return response
                if response.status_code not in RETRYABLE_STATUSES:
                    raise self._error_for(response)
                if response.status_code == 429:
                    self.stats.throttled += 1
                failure = self._error_for(response)
            attempt += 1
            if attempt >= self.policy.max_attempts:
                assert failure is not None
                failure.message = f"{failure.message}; gave up after {attempt} attempts"
                raise failure
            hint = self._server_wait_hint(response) if response is not None else None
            if hint is not None and hint > self.policy.max_server_wait and response is not None:
                # Waiting this long (a daily quota, say) would look like a hang: say when to come back instead.
                assert failure is not None
                failure.message = f"{failure.message}; the server asks to wait {hint:.0f}s before trying again"
                failure.kind = ErrorKind.rate_limited if response.status_code == 429 else failure.kind
                raise failure
            delay = (
                min(hint, self.policy.max_server_wait)
                if hint is not None
                else full_jitter_delay(attempt - 1, self.policy, self._rand)
            )
            self.stats.retries += 1
            logger.info("%s: retrying %s %s in %.2fs after %s", self.source, method, url, delay, failure)
            await self._wait(delay)
            if hint is not None:
                # The server's own wait covered the window reset; do not wait for it a second time.
                self._windows.pop(bucket, None)

    async def get_json(
        self,
        url: str,
        *,
        params: Mapping[str, Any] | None = None,
        bucket: str = "default",
        method: str = "GET",
        json_body: Any = None,
    ) -> Any:
        """A request whose body must be JSON; a malformed or truncated body is retried like a server error."""
        attempt = 0
        while True:
            response = await self.request(method, url, params=params, json_body=json_body, bucket=bucket)
            try:
                return decode_json(response.content)
            except (json.JSONDecodeError, UnicodeDecodeError):
                attempt += 1
                if attempt >= self.policy.max_attempts:
                    raise SourceError(
                        ErrorKind.bad_response,
                        f"the server kept answering {url} with a body that is not valid JSON",
                        status=response.status_code,
                        source=self.source,
                    ) from None
                self.stats.retries += 1
                await self._wait(full_jitter_delay(attempt - 1, self.policy, self._rand))


def decode_json(body: bytes) -> Any:
    """A response body as Python values: orjson first (several times faster on export pages of megabytes), then the
    standard library for what orjson refuses but JSON allows and vendors send, such as an escaped lone surrogate
    (`"\\udcff"`, text cut in the middle of an emoji) or a UTF-16 body; the records then come out exactly as
    `response.json()` would have made them. Raises json.JSONDecodeError or UnicodeDecodeError when neither can read it.
    """
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError:
        return json.loads(body)


def utc_from_unix(value: float) -> datetime:
    return datetime.fromtimestamp(value, tz=timezone.utc)
