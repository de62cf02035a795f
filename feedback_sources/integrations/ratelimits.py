"""Rate-limit header readers, declared rather than written: a vendor picks the shapes its API sends.

`HttpClient` takes a reader `(response, wall_now) -> [(bucket, limit, remaining, seconds until reset)]` and paces
each bucket on it. The shapes vendors use are few:

- `HeaderWindow`: one number per header, e.g. `X-RateLimit-Limit/-Remaining/-Reset`, with the reset given as seconds
  from now or as a unix time (`reset="epoch"`), and alternative header names tried in order (a vendor's newer
  `ratelimit-remaining` before its older `X-Rate-Limit-Remaining`).
- `StructuredWindow`: one header holding `total=10; remaining=9; resets=42` (IETF-draft style, `<Vendor>-RateLimit-*`).
- `daily_budget`: a day window such as an `X-Ratelimit-App-Global-Day-*` budget, which resets at midnight UTC
  and, once spent, ends the sync with a typed error instead of a wait of hours.

`RateLimits(reader, reader, ...)` combines them into the one callable the client wants.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Literal, NamedTuple, Protocol

import httpx

from .http import SourceError, header_number

__all__ = [
    "HeaderWindow",
    "RateLimits",
    "StructuredWindow",
    "Window",
    "WindowReader",
    "daily_budget",
    "duration_text",
    "parse_limit_header",
    "seconds_until_utc_midnight",
]


class Window(NamedTuple):
    """What one response says about one bucket (a tuple, as `HttpClient` reads it)."""

    bucket: str
    limit: int | None
    remaining: int
    reset_in: float  # seconds from now


class WindowReader(Protocol):
    def read(self, response: httpx.Response, wall_now: float) -> list[Window]: ...


def seconds_until_utc_midnight(wall_now: float) -> float:
    """Seconds from `wall_now` (unix) to the next midnight UTC: when daily budgets come back."""
    now = datetime.fromtimestamp(wall_now, tz=timezone.utc)
    midnight = (now + timedelta(days=1)).replace(hour=0, minute=0, second=0, microsecond=0)
    return (midnight - now).total_seconds()


def duration_text(seconds: float) -> str:
    """A wait as a PM reads it: "7 min", "3 h 12 min" (rounded up to the minute)."""
    minutes = max(1, math.ceil(seconds / 60))
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes} min" if hours else f"{minutes} min"


def _first_number(headers: Mapping[str, str], names: tuple[str, ...]) -> float | None:
    for name in names:
        value = header_number(headers, name)
        if value is not None:
            return value
    return None


@dataclass(frozen=True)
class HeaderWindow:
    """A bucket read from one header per number; each field lists header names tried in order.

    - `reset`: "seconds" (from now) or "epoch" (a unix time); `default_reset` (seconds, or a function of the wall
      clock) when no reset header is sent.
    - `needs`: "remaining" reads nothing without a remaining count; "remaining_or_reset" also reads a window from a
      reset header alone, taking it as spent.
    - `spent_on_429`: a 429 always means the window is spent, whatever the remaining header says.
    - `reset_only_when_spent`: report a reset of 0 while requests remain, so that after a 429 the client waits for a
      tighter window (the minute) rather than for this one (the day).
    - `when_spent_on_429`: an error to raise when a 429 comes with this window spent (a daily budget: waiting for
      it would hold the sync open for hours).
    """

    bucket: str
    remaining: tuple[str, ...]
    limit: tuple[str, ...] = ()
    reset: tuple[str, ...] = ()
    reset_is: Literal["seconds", "epoch"] = "seconds"
    default_reset: float | Callable[[float], float] = 60.0
    needs: Literal["remaining", "remaining_or_reset"] = "remaining"
    spent_on_429: bool = False
    reset_only_when_spent: bool = False
    when_spent_on_429: Callable[[Window], SourceError] | None = None

    @classmethod
    def prefixed(cls, bucket: str, prefix: str, **options: object) -> HeaderWindow:
        """`prefix + Limit/Remaining/Reset`, e.g. `X-RateLimit-`."""
        return cls(bucket, remaining=(prefix + "Remaining",), limit=(prefix + "Limit",), reset=(prefix + "Reset",),
                   **options)  # type: ignore[arg-type]

    def read(self, response: httpx.Response, wall_now: float) -> list[Window]:
        headers = response.headers
        remaining = _first_number(headers, self.remaining)
        reset = _first_number(headers, self.reset)
        if remaining is None and (self.needs == "remaining" or reset is None):
            return []
        if remaining is None or (self.spent_on_429 and response.status_code == 429):
            remaining = 0
        if reset is None:
            reset_in = self.default_reset(wall_now) if callable(self.default_reset) else self.default_reset
        else:
            reset_in = reset - wall_now if self.reset_is == "epoch" else reset
        limit = _first_number(headers, self.limit)
        window = Window(self.bucket, int(limit) if limit is not None else None, max(0, int(remaining)),
                        max(0.0, reset_in))
        if response.status_code == 429 and window.remaining <= 0 and self.when_spent_on_429 is not None:
            raise self.when_spent_on_429(window)
        if self.reset_only_when_spent and window.remaining > 0:
            window = window._replace(reset_in=0.0)
        return [window]


_LIMIT_FIELD = re.compile(r"\s*([a-zA-Z_]+)\s*=\s*(-?\d+(?:\.\d+)?)\s*")


def parse_limit_header(value: str) -> dict[str, float]:
    """`total=10; remaining=9; resets=42` → {"total": 10.0, "remaining": 9.0, "resets": 42.0}."""
    fields: dict[str, float] = {}
    for part in value.split(";"):
        match = _LIMIT_FIELD.fullmatch(part)
        if match:
            fields[match.group(1).lower()] = float(match.group(2))
    return fields


@dataclass(frozen=True)
class StructuredWindow:
    """A bucket from headers whose name starts with `header_prefix` and whose value is `total=..; remaining=..;
    resets=..` (seconds). When several variants are sent, the one with the fewest requests left decides."""

    bucket: str
    header_prefix: str
    default_reset: float = 60.0

    def read(self, response: httpx.Response, wall_now: float) -> list[Window]:
        prefix = self.header_prefix.lower()
        found = []
        for name, value in response.headers.items():
            if name.lower().startswith(prefix):
                fields = parse_limit_header(value)
                if "remaining" in fields:
                    found.append(Window(
                        self.bucket,
                        int(fields["total"]) if "total" in fields else None,
                        max(0, int(fields["remaining"])),
                        max(0.0, fields.get("resets", self.default_reset)),
                    ))
        return [min(found, key=lambda window: window.remaining)] if found else []


def daily_budget(bucket: str, prefix: str, *, when_spent: Callable[[Window], SourceError]) -> HeaderWindow:
    """A day window (`prefix + Limit/Remaining/Reset`) that resets at midnight UTC when no reset is sent; a 429 with
    it spent raises `when_spent(window)`, and while it has requests left it never sets how long a 429 waits."""
    return HeaderWindow.prefixed(bucket, prefix, default_reset=seconds_until_utc_midnight,
                                 reset_only_when_spent=True, when_spent_on_429=when_spent)


class RateLimits:
    """Several window readers as the one `RateLimitReader` an `HttpClient` takes, in the order given."""

    def __init__(self, *readers: WindowReader) -> None:
        self.readers = readers

    def __call__(self, response: httpx.Response, wall_now: float) -> list[tuple[str, int | None, int, float]]:
        return [window for reader in self.readers for window in reader.read(response, wall_now)]
