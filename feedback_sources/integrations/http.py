"""One HTTP layer for every vendor: timeouts, deadlines, retries with full-jitter backoff, rate limits and pacing.

httpx retries only connection setup and never waits, so the policy lives here: which statuses are retried, how long
to wait (the server's `Retry-After` or reset time when given, else exponential backoff with full jitter), and how to
slow down *before* a 429 by reading the rate-limit headers each vendor sends.

A 429 is not a failure but the vendor saying "not yet": it never spends the attempts meant for server errors. The
client waits as long as the vendor asks (plus a little jitter, so concurrent requests do not all come back in the same
instant), lowers its own concurrency while limited (AIMD: halve on a 429, one more slot after a full round of
successes) and gives up only when one request has waited `RetryPolicy.max_rate_limit_wait` in total. Headers that
overstate the limit therefore cost some 429s, never the sync.

Every request also has an overall deadline (`RetryPolicy.request_deadline`) around the whole exchange, body
included: httpx's timeouts bound each read, so a server trickling one byte a second would otherwise never time out.
"""

from __future__ import annotations

import asyncio
import json
import logging
import random
import os
import time
from collections import deque
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timezone
from email.utils import parsedate_to_datetime
from enum import StrEnum
from typing import Any

import httpx
import orjson

from ..models import clean_value

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


MAX_RATE_LIMIT_WAIT_ENV = "FEEDBACK_MAX_RATE_LIMIT_WAIT"
REQUEST_DEADLINE_ENV = "FEEDBACK_REQUEST_DEADLINE"
DEFAULT_MAX_RATE_LIMIT_WAIT = 15 * 60.0
DEFAULT_REQUEST_DEADLINE = 60.0
# Waits at least this long are announced to the wait listener ("waiting for rate limit, 12s"); shorter ones would
# only make the progress display flicker.
ANNOUNCED_WAIT_SECONDS = 1.0


def _env_seconds(name: str, default: float) -> float:
    raw = os.environ.get(name)
    if raw is None or not raw.strip():
        return default
    try:
        value = float(raw)
    except ValueError:
        raise ValueError(f"{name} must be a number of seconds, got {raw!r}") from None
    if not (0 < value < 7 * 24 * 3600):
        raise ValueError(f"{name} must be more than 0 and less than a week (in seconds), got {raw!r}")
    return value


@dataclass
class RetryPolicy:
    max_attempts: int = 6
    base_delay: float = 0.5
    max_delay: float = 30.0
    # A server may ask for a longer wait than our own backoff cap (a rate-limit window); honour it up to this for one
    # wait. A longer request (a daily quota) fails at once and says when to come back.
    max_server_wait: float = 120.0
    # How long one request may keep waiting on 429s in total before the source gives up. 429s never spend
    # `max_attempts`, which is for server errors and broken connections.
    max_rate_limit_wait: float = DEFAULT_MAX_RATE_LIMIT_WAIT
    # Jitter added to a server's wait hint: uniform in 0..min(cap, fraction x hint), so requests told to come back at
    # the same instant spread out a little instead of all colliding with the next window's first slots.
    rate_limit_jitter_fraction: float = 0.25
    rate_limit_jitter_cap: float = 1.0
    # The whole exchange of one attempt (connect, send, headers and body) must end within this; None: no deadline.
    request_deadline: float | None = DEFAULT_REQUEST_DEADLINE

    @classmethod
    def from_env(cls, **overrides: Any) -> RetryPolicy:
        """The defaults, with FEEDBACK_MAX_RATE_LIMIT_WAIT and FEEDBACK_REQUEST_DEADLINE (seconds) applied."""
        values: dict[str, Any] = {
            "max_rate_limit_wait": _env_seconds(MAX_RATE_LIMIT_WAIT_ENV, DEFAULT_MAX_RATE_LIMIT_WAIT),
            "request_deadline": _env_seconds(REQUEST_DEADLINE_ENV, DEFAULT_REQUEST_DEADLINE),
        }
        values.update(overrides)
        return cls(**values)

    def rate_limit_jitter(self, hint: float, rand: Callable[[], float]) -> float:
        return rand() * min(self.rate_limit_jitter_cap, self.rate_limit_jitter_fraction * hint)


class AdaptiveConcurrency:
    """A semaphore whose size follows the vendor's answers: additive increase, multiplicative decrease (AIMD).

    A 429 halves the limit, but only once per round of requests: the 429s of requests that were already on the wire
    when the limit last dropped say nothing new. After `limit` successes in a row the limit grows by one, back up to
    the configured maximum, so a burst of 429s slows a sync down for a while rather than for the rest of the run.
    """

    def __init__(self, maximum: int) -> None:
        self.maximum = max(1, maximum)
        self.limit = self.maximum
        self.lowest = self.maximum
        self.in_use = 0
        self._waiters: deque[asyncio.Future[None]] = deque()
        self._issued = 0
        self._last_decrease_ticket = 0
        self._successes = 0

    async def acquire(self) -> int:
        """Wait for a slot; returns the request's ticket (its position in sending order)."""
        while self.in_use >= self.limit:
            waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
            self._waiters.append(waiter)
            try:
                await waiter
            except asyncio.CancelledError:
                if waiter.done() and not waiter.cancelled():
                    self._wake()  # the slot it was woken for goes to the next in line
                raise
            finally:
                try:
                    self._waiters.remove(waiter)
                except ValueError:
                    pass
        self.in_use += 1
        self._issued += 1
        return self._issued

    def release(self) -> None:
        self.in_use -= 1
        self._wake()

    def rate_limited(self, ticket: int) -> None:
        if ticket <= self._last_decrease_ticket:
            return
        self._last_decrease_ticket = self._issued
        self._successes = 0
        self.limit = max(1, self.limit // 2)
        self.lowest = min(self.lowest, self.limit)

    def succeeded(self) -> None:
        if self.limit >= self.maximum:
            return
        self._successes += 1
        if self._successes >= self.limit:
            self._successes = 0
            self.limit += 1
            self._wake()

    def _wake(self) -> None:
        free = self.limit - self.in_use
        for waiter in self._waiters:
            if free <= 0:
                break
            if not waiter.done():
                waiter.set_result(None)
                free -= 1


@dataclass
class RateLimitWindow:
    """What the last response said about one rate-limit bucket."""

    limit: int | None
    remaining: int
    reset_at: float  # on the client's monotonic clock
    # Set by a 429's wait hint rather than by headers: whoever waits for it adds jitter, so they do not all return at
    # the same instant.
    after_429: bool = False


@dataclass
class RequestStats:
    requests: int = 0
    retries: int = 0
    throttled: int = 0
    wait_seconds: float = 0.0
    rate_limit: dict[str, dict[str, Any]] = field(default_factory=dict)
    # Seconds spent waiting because of 429s (their hints, backoff and jitter), and the lowest concurrency the
    # adaptive limit went down to.
    rate_limit_wait_seconds: float = 0.0
    lowest_concurrency: int | None = None

    def as_dict(self) -> dict[str, Any]:
        return {
            "requests": self.requests,
            "retries": self.retries,
            "throttled": self.throttled,
            "wait_seconds": round(self.wait_seconds, 3),
            "rate_limit_wait_seconds": round(self.rate_limit_wait_seconds, 3),
            "lowest_concurrency": self.lowest_concurrency,
            "rate_limit": self.rate_limit,
        }


# Reads a response's rate-limit headers: returns (bucket, limit, remaining, seconds until reset) tuples.
RateLimitReader = Callable[[httpx.Response, float], list[tuple[str, int | None, int, float]]]
ErrorDescriber = Callable[[httpx.Response], SourceError | None]
# Told how long the client is about to wait on a rate limit (seconds > 0), and again with 0 when no wait is left.
WaitListener = Callable[[float], None]


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
        on_rate_limit_wait: WaitListener | None = None,
    ):
        self.source = source
        self.base_url = base_url.rstrip("/")
        self.host = httpx.URL(self.base_url).host or self.base_url
        self._headers = dict(headers or {})
        self._auth = auth
        self._timeout = timeout if isinstance(timeout, httpx.Timeout) else httpx.Timeout(timeout, connect=min(10.0, timeout))
        self._transport = transport
        self.concurrency = AdaptiveConcurrency(max_concurrency)
        self.policy = retry_policy or RetryPolicy.from_env()
        self._read_rate_limits = rate_limit_reader
        self._describe_error = describe_error
        self._sleep = sleep or asyncio.sleep
        self._rand = rand
        self._monotonic = monotonic
        self._wall_clock = wall_clock
        self._on_rate_limit_wait = on_rate_limit_wait
        self._announced_waits = 0
        self._windows: dict[str, RateLimitWindow] = {}
        self._in_flight: dict[str, int] = {}
        self._client: httpx.AsyncClient | None = None
        self.stats = RequestStats(lowest_concurrency=self.concurrency.lowest)

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

    async def _wait(self, seconds: float, *, rate_limited: bool = False) -> None:
        if seconds <= 0:
            return
        self.stats.wait_seconds += seconds
        if rate_limited:
            self.stats.rate_limit_wait_seconds += seconds
        announce = rate_limited and seconds >= ANNOUNCED_WAIT_SECONDS and self._on_rate_limit_wait is not None
        if announce:
            # One announcement for overlapping waits: concurrent requests waiting on the same window are one wait.
            self._announced_waits += 1
            if self._announced_waits == 1:
                self._notify_wait(seconds)
        try:
            await self._sleep(seconds)
        finally:
            if announce:
                self._announced_waits -= 1
                if self._announced_waits == 0:
                    self._notify_wait(0.0)

    def _notify_wait(self, seconds: float) -> None:
        assert self._on_rate_limit_wait is not None
        try:
            self._on_rate_limit_wait(seconds)
        except Exception:  # a broken progress display must not break the request
            logger.exception("%s: rate-limit wait listener failed", self.source)

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
        if window.after_429:
            delay += self.policy.rate_limit_jitter(delay, self._rand)
        logger.debug("%s: pacing %.3fs for bucket %s", self.source, delay, bucket)
        await self._wait(delay, rate_limited=window.after_429)
        if self._windows.get(bucket) is window:
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
            kind, message = ErrorKind.rate_limited, "the vendor kept rate limiting the requests"
        elif status >= 500:
            kind, message = ErrorKind.server, "the vendor's server kept failing"
        else:
            kind, message = ErrorKind.client, "the request was refused"
        return SourceError(kind, message, status=status, source=self.source)

    def _deadline_error(self, deadline: float) -> SourceError:
        return SourceError(
            ErrorKind.timeout,
            f"{self.host} did not answer within {deadline:g} s",
            hint=(
                "The server accepted the request but did not finish answering in time. Check the base URL, proxy or "
                f"VPN; raise {REQUEST_DEADLINE_ENV} if the vendor is just slow."
            ),
            source=self.source,
        )

    async def _send(
        self, method: str, url: str, params: Mapping[str, Any] | None, json_body: Any, bucket: str
    ) -> tuple[httpx.Response | None, SourceError | None, int]:
        """One attempt inside a concurrency slot: (response, transport failure, the attempt's ticket)."""
        assert self._client is not None
        ticket = await self.concurrency.acquire()
        try:
            # Pace inside the slot so requests queued behind the slot see the newest window.
            await self._pace(bucket)
            self.stats.requests += 1
            logger.debug("%s: %s %s params=%s", self.source, method, url, dict(params or {}))
            self._in_flight[bucket] = self._in_flight.get(bucket, 0) + 1
            deadline = self.policy.request_deadline
            try:
                # The deadline covers the body too: httpx reads it inside request() unless streaming.
                async with asyncio.timeout(deadline):
                    response = await self._client.request(method, url, params=params, json=json_body)
            except httpx.InvalidURL as error:
                # An id from an answer that no URL can hold (e.g. a megabyte long): nothing can live at that
                # address, so callers treat it like a record that is gone instead of failing the whole source.
                raise SourceError(
                    ErrorKind.not_found, f"the address cannot be requested ({error})", source=self.source
                ) from None
            except httpx.TimeoutException as error:
                return None, SourceError(
                    ErrorKind.timeout, f"{_host_of(error)} did not answer in time ({type(error).__name__})",
                    source=self.source,
                ), ticket
            except httpx.TransportError as error:
                # The host tried, so a typo in a subdomain or base URL shows in the message itself.
                return None, SourceError(
                    ErrorKind.network, f"could not reach {_host_of(error)} ({type(error).__name__})",
                    source=self.source,
                ), ticket
            except TimeoutError:
                assert deadline is not None
                # Not retried: a server that used a whole deadline is not a blip, and more attempts would turn one
                # stuck request into minutes of a sync that looks hung.
                raise self._deadline_error(deadline) from None
            finally:
                self._in_flight[bucket] -= 1
            return response, None, ticket
        finally:
            self.concurrency.release()

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
        # Ids and cursors taken from a vendor's answer go back into URLs and bodies; one holding a lone surrogate
        # cannot be encoded at all, so it is cleaned like stored text and the vendor answers it (404, 400).
        url, params, json_body = clean_value(url), clean_value(params), clean_value(json_body)
        attempt = 0  # failed attempts that were not 429s: server errors, broken connections, timeouts
        limited = 0  # 429s answered to this request
        limited_for = 0.0  # what those 429s cost in waiting, counted against max_rate_limit_wait
        while True:
            response, failure, ticket = await self._send(method, url, params, json_body, bucket)
            if response is not None:
                self._remember_limits(response)
                if response.status_code < 400:
                    self.concurrency.succeeded()
                    self.stats.lowest_concurrency = self.concurrency.lowest
                    return response
                if response.status_code not in RETRYABLE_STATUSES:
                    raise self._error_for(response)
                failure = self._error_for(response)
            assert failure is not None
            if response is not None and response.status_code == 429:
                self.stats.throttled += 1
                self.concurrency.rate_limited(ticket)
                self.stats.lowest_concurrency = self.concurrency.lowest
                delay, charged, marked = self._rate_limit_delay(response, bucket, limited, limited_for, failure)
                limited += 1
                limited_for += charged
                self.stats.retries += 1
                logger.info("%s: rate limited on %s %s; waiting %.2fs (%d so far, %.0fs in all)",
                            self.source, method, url, delay, limited, limited_for)
                await self._wait(delay, rate_limited=True)
                if marked is not None and self._windows.get(bucket) is marked:
                    # This request's own wait covered the window; it goes first, without waiting a second time.
                    self._windows.pop(bucket, None)
                continue
            attempt += 1
            if attempt >= self.policy.max_attempts:
                failure.message = f"{failure.message}; gave up after {attempt} attempts"
                raise failure
            hint = self._server_wait_hint(response) if response is not None else None
            if hint is not None and hint > self.policy.max_server_wait and response is not None:
                # Waiting this long would look like a hang: say when to come back instead.
                failure.message = f"{failure.message}; the server asks to wait {hint:.0f}s before trying again"
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

    def _rate_limit_delay(
        self, response: httpx.Response, bucket: str, limited: int, limited_for: float, failure: SourceError
    ) -> tuple[float, float, RateLimitWindow | None]:
        """How long to wait after this request's 429 number `limited` (from 0), what it counts against the cap, and
        the window it marked spent for the client's other requests (None without a hint).

        The vendor's hint (Retry-After, or the reset header) plus jitter; without a usable hint, exponential backoff
        with full jitter whose ceiling is what counts, so that even zero draws reach the cap after finitely many.
        Raises once the cap would be passed: the source fails, saying how long it waited.
        """
        policy = self.policy
        hint = self._server_wait_hint(response)
        if hint is not None and hint > policy.max_server_wait:
            failure.message = f"{failure.message}; the server asks to wait {hint:.0f}s before trying again"
            raise failure
        marked: RateLimitWindow | None = None
        if hint is not None and hint > 0:
            delay = hint + policy.rate_limit_jitter(hint, self._rand)
            charged = delay
            # Everyone else on this client waits for the same window instead of spending more 429s on it.
            marked = RateLimitWindow(limit=None, remaining=0, reset_at=self._monotonic() + hint, after_429=True)
            self._windows[bucket] = marked
        else:
            ceiling = min(policy.max_delay, policy.base_delay * (2**limited))
            delay = self._rand() * ceiling
            charged = ceiling
        if limited_for + charged > policy.max_rate_limit_wait:
            failure.message = (
                f"{failure.message}; still rate limited after waiting {limited_for:.0f}s over {limited} tries "
                f"(the limit for one request is {policy.max_rate_limit_wait:.0f}s)"
            )
            failure.hint = failure.hint or (
                "Another app may be spending the same rate limit. Sync again later, or let a request wait longer "
                f"with `sync --rate-limit-wait MINUTES` or {MAX_RATE_LIMIT_WAIT_ENV} (seconds)."
            )
            raise failure
        return delay, charged, marked

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
            except json.JSONDecodeError:
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
    (`"\\udcff"`, text cut in the middle of an emoji) or a UTF-16 body, so the values are those `response.json()`
    gives. Bytes that are not UTF-8 inside a string become U+FFFD instead of failing the page: one damaged character
    in a customer's text must not stop a source (a truncated body is still invalid JSON and raises
    json.JSONDecodeError)."""
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError:
        pass
    try:
        return json.loads(body)
    except UnicodeDecodeError:
        return json.loads(body.decode("utf-8", errors="replace"))


def utc_from_unix(value: float) -> datetime:
    return datetime.fromtimestamp(value, tz=timezone.utc)


def _host_of(error: httpx.RequestError) -> str:
    """The host a failed request was sent to (with its port when not the scheme's default), for the message."""
    try:
        url = error.request.url
    except RuntimeError:  # an error raised outside a request carries none
        return "the server"
    return f"{url.host}:{url.port}" if url.port else url.host or "the server"
