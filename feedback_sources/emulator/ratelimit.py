"""Rate-limit windows on a scaled clock; each vendor's limits and headers come from its `RateLimitProfile`.

Each limit is a window that opens with the first request after the previous window closed (so a burst of N
requests in a fresh window is deterministic) and lasts a scaled vendor minute, ten seconds or day. With
time_scale=60 the numbers in the headers are what the real vendors send (whole seconds); with a smaller scale
they become fractional so that tests can wait for them in milliseconds.
"""

from __future__ import annotations

import math
import threading
from dataclasses import dataclass, field

from typing import TYPE_CHECKING, Any

from .vendor import emulator_vendor, emulator_vendors

if TYPE_CHECKING:
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


class RateLimiters(dict[str, Any]):
    """Each vendor's usual limiter by vendor name (also readable as an attribute: `limiters.<vendor>`)."""

    def __getattr__(self, name: str) -> Any:
        try:
            return self[name]
        except KeyError:
            raise AttributeError(name) from None


def build_rate_limiters(config: EmulatorConfig) -> RateLimiters | None:
    if config.time_scale is None:
        return None
    scale = Scale(config.time_scale)
    return RateLimiters({name: vendor.rate_limits.limiter(config, scale)
                         for name, vendor in emulator_vendors().items() if vendor.rate_limits is not None})


class FixedWindowVendorLimiter:
    """One vendor behind a tight fixed window (e.g. 8 requests a second) that every request to it shares.

    The headers are the vendor's own (its `RateLimitProfile.fixed_headers`), with the advertised limit (which may be
    a lie) and the real reset time; a 429 carries what that vendor sends with one. Times are fractional so that a
    one-second window can be waited for precisely.
    """

    def __init__(self, vendor: str, spec: FixedWindowLimit) -> None:
        self.vendor = vendor
        self.spec = spec
        profile = emulator_vendor(vendor).rate_limits
        if profile is None:
            raise ValueError(f"vendor {vendor!r} has no rate limits to replace")
        self.profile = profile
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
        headers = self.profile.fixed_headers(is_export, str(self.advertised), remaining, reset_at, reset_in)
        if allowed:
            return RateDecision(True, headers)
        if self.profile.fixed_retry_after:
            headers["Retry-After"] = f"{reset_in:.2f}"
        return RateDecision(False, headers, reset_at - now, self.profile.fixed_reason)


def build_fixed_window_limiters(config: EmulatorConfig) -> dict[str, FixedWindowVendorLimiter]:
    return {vendor: FixedWindowVendorLimiter(vendor, spec) for vendor, spec in config.fixed_window_limits.items()}
