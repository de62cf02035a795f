"""Per-vendor rate limiters with the vendors' own headers, on a scaled clock.

Each limit is a window that opens with the first request after the previous window closed (so a burst of N
requests in a fresh window is deterministic) and lasts a scaled vendor minute, ten seconds or day. With
time_scale=60 the numbers in the headers are what the real vendors send (whole seconds); with a smaller scale
they become fractional so that tests can wait for them in milliseconds.
"""

from __future__ import annotations

import math
import threading
from dataclasses import dataclass, field

from .config import EmulatorConfig, FixedWindowLimit

REAL_MINUTE = 60.0


@dataclass
class WindowLimiter:
    limit: int
    window_seconds: float
    _opened_at: float | None = None
    _used: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def _roll(self, now: float) -> None:
        if self._opened_at is not None and now >= self._opened_at + self.window_seconds:
            self._opened_at = None
            self._used = 0

    def remaining(self, now: float) -> int:
        with self._lock:
            self._roll(now)
            return max(0, self.limit - self._used)

    def reset_at(self, now: float) -> float:
        """When the current window closes; a window not yet opened would close one window from now."""
        with self._lock:
            self._roll(now)
            opened = self._opened_at if self._opened_at is not None else now
            return opened + self.window_seconds

    def has_room(self, now: float) -> bool:
        return self.remaining(now) > 0

    def consume(self, now: float) -> None:
        with self._lock:
            self._roll(now)
            if self._opened_at is None:
                self._opened_at = now
            self._used += 1


@dataclass
class RateDecision:
    allowed: bool
    headers: dict[str, str]
    # Seconds until a retry can succeed.
    retry_after: float | None = None
    # Which limit refused the request, in the vendor's words.
    reason: str | None = None


class Scale:
    def __init__(self, time_scale: float) -> None:
        self.seconds_per_minute = time_scale

    @property
    def is_real_time(self) -> bool:
        return self.seconds_per_minute == REAL_MINUTE

    def duration(self, seconds: float) -> str:
        """A wait in seconds as a header value: whole seconds in real time, else rounded up to 0.01 s."""
        if self.is_real_time:
            return str(max(1, math.ceil(seconds - 1e-9)))
        return f"{max(0.01, math.ceil(seconds * 100 - 1e-6) / 100):.2f}"

    def instant(self, unix_time: float) -> str:
        if self.is_real_time:
            return str(math.ceil(unix_time))
        return f"{unix_time:.3f}"


class ZendeskLimiter:
    def __init__(self, config: EmulatorConfig, scale: Scale) -> None:
        self.scale = scale
        minute = scale.seconds_per_minute
        self.account = WindowLimiter(config.zendesk_account_rate_limit, minute)
        self.export = WindowLimiter(config.zendesk_export_rate_limit, minute)

    def check(self, is_export: bool, now: float) -> RateDecision:
        blocked_by: WindowLimiter | None = None
        if not self.account.has_room(now):
            blocked_by = self.account
        elif is_export and not self.export.has_room(now):
            blocked_by = self.export
        if blocked_by is None:
            self.account.consume(now)
            if is_export:
                self.export.consume(now)
        headers = self._headers(is_export, now)
        if blocked_by is not None:
            wait = blocked_by.reset_at(now) - now
            headers["Retry-After"] = self.scale.duration(wait)
            reason = ("Number of allowed incremental export API requests per minute exceeded"
                      if blocked_by is self.export else "Number of allowed API requests per minute exceeded")
            return RateDecision(False, headers, wait, reason)
        return RateDecision(True, headers)

    def _headers(self, is_export: bool, now: float) -> dict[str, str]:
        remaining = str(self.account.remaining(now))
        headers = {
            "X-Rate-Limit": str(self.account.limit),
            "X-Rate-Limit-Remaining": remaining,
            "ratelimit-limit": str(self.account.limit),
            "ratelimit-remaining": remaining,
            "ratelimit-reset": self.scale.duration(self.account.reset_at(now) - now),
        }
        if is_export:
            headers["Zendesk-RateLimit-incremental-exports"] = (
                f"total={self.export.limit}; remaining={self.export.remaining(now)}; "
                f"resets={self.scale.duration(self.export.reset_at(now) - now)}"
            )
        return headers


class IntercomLimiter:
    """Intercom spreads the per-minute allowance over six 10-second windows and sends no Retry-After."""

    def __init__(self, config: EmulatorConfig, scale: Scale) -> None:
        self.scale = scale
        self.window = WindowLimiter(math.ceil(config.intercom_rate_limit / 6), scale.seconds_per_minute / 6)

    def check(self, now: float) -> RateDecision:
        allowed = self.window.has_room(now)
        if allowed:
            self.window.consume(now)
        reset_at = self.window.reset_at(now)
        headers = {
            "X-RateLimit-Limit": str(self.window.limit),
            "X-RateLimit-Remaining": str(self.window.remaining(now)),
            "X-RateLimit-Reset": self.scale.instant(reset_at),
        }
        return RateDecision(allowed, headers, None if allowed else reset_at - now)


class SurveyMonkeyLimiter:
    def __init__(self, config: EmulatorConfig, scale: Scale) -> None:
        self.scale = scale
        self.minute = WindowLimiter(config.surveymonkey_minute_limit, scale.seconds_per_minute)
        self.day = WindowLimiter(config.surveymonkey_day_limit, scale.seconds_per_minute * 1440)

    def check(self, now: float) -> RateDecision:
        blocked_by = None
        if not self.day.has_room(now):
            blocked_by = self.day
        elif not self.minute.has_room(now):
            blocked_by = self.minute
        if blocked_by is None:
            self.minute.consume(now)
            self.day.consume(now)
        headers: dict[str, str] = {}
        for name, limiter in (("Minute", self.minute), ("Day", self.day)):
            headers[f"X-Ratelimit-App-Global-{name}-Limit"] = str(limiter.limit)
            headers[f"X-Ratelimit-App-Global-{name}-Remaining"] = str(limiter.remaining(now))
            headers[f"X-Ratelimit-App-Global-{name}-Reset"] = self.scale.duration(limiter.reset_at(now) - now)
        if blocked_by is not None:
            return RateDecision(False, headers, blocked_by.reset_at(now) - now)
        return RateDecision(True, headers)


@dataclass
class RateLimiters:
    zendesk: ZendeskLimiter
    intercom: IntercomLimiter
    surveymonkey: SurveyMonkeyLimiter


def build_rate_limiters(config: EmulatorConfig) -> RateLimiters | None:
    if config.time_scale is None:
        return None
    scale = Scale(config.time_scale)
    return RateLimiters(ZendeskLimiter(config, scale), IntercomLimiter(config, scale),
                        SurveyMonkeyLimiter(config, scale))


class FixedWindowVendorLimiter:
    """One vendor behind a tight fixed window (e.g. 8 requests a second) that every request to it shares.

    The headers are the vendor's own, with the advertised limit (which may be a lie) and the real reset time. A 429
    carries what that vendor sends with one: Zendesk a `Retry-After`, Intercom only `X-RateLimit-Reset` (a unix time),
    SurveyMonkey `X-Ratelimit-App-Global-Minute-Reset` (seconds). Times are fractional so that a one-second window can
    be waited for precisely.
    """

    def __init__(self, vendor: str, spec: FixedWindowLimit) -> None:
        self.vendor = vendor
        self.spec = spec
        self.window = WindowLimiter(spec.requests, spec.seconds)
        self.refused = 0

    @property
    def advertised(self) -> int:
        return self.spec.advertised if self.spec.advertised is not None else self.spec.requests

    def check(self, is_export: bool, now: float) -> RateDecision:
        allowed = self.window.has_room(now)
        if allowed:
            self.window.consume(now)
        else:
            self.refused += 1
        used = self.window.limit - self.window.remaining(now)
        remaining = max(0, self.advertised - used)
        reset_at = self.window.reset_at(now)
        reset_in = max(0.01, math.ceil((reset_at - now) * 100 - 1e-6) / 100)
        headers = self._headers(is_export, remaining, reset_at, reset_in)
        if allowed:
            return RateDecision(True, headers)
        if self.vendor == "zendesk":
            headers["Retry-After"] = f"{reset_in:.2f}"
        reason = "Number of allowed API requests per minute exceeded" if self.vendor == "zendesk" else None
        return RateDecision(False, headers, reset_at - now, reason)

    def _headers(self, is_export: bool, remaining: int, reset_at: float, reset_in: float) -> dict[str, str]:
        limit = str(self.advertised)
        if self.vendor == "zendesk":
            headers = {
                "X-Rate-Limit": limit,
                "X-Rate-Limit-Remaining": str(remaining),
                "ratelimit-limit": limit,
                "ratelimit-remaining": str(remaining),
                "ratelimit-reset": f"{reset_in:.2f}",
            }
            if is_export:
                headers["Zendesk-RateLimit-incremental-exports"] = (
                    f"total={limit}; remaining={remaining}; resets={reset_in:.2f}"
                )
            return headers
        if self.vendor == "intercom":
            return {
                "X-RateLimit-Limit": limit,
                "X-RateLimit-Remaining": str(remaining),
                "X-RateLimit-Reset": f"{reset_at:.3f}",
            }
        return {
            "X-Ratelimit-App-Global-Minute-Limit": limit,
            "X-Ratelimit-App-Global-Minute-Remaining": str(remaining),
            "X-Ratelimit-App-Global-Minute-Reset": f"{reset_in:.2f}",
        }


def build_fixed_window_limiters(config: EmulatorConfig) -> dict[str, FixedWindowVendorLimiter]:
    return {vendor: FixedWindowVendorLimiter(vendor, spec) for vendor, spec in config.fixed_window_limits.items()}
