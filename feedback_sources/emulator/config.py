"""Settings of one emulator instance: dataset span, seed, rate-limit scale, and each vendor's own options.

The shared options are fields of `EmulatorConfig`; each vendor adds its own (dataset size, demo credentials, rate
limits) through `EmulatorVendor.settings`. Both kinds are keyword arguments of the constructor and attributes of the
config (`EmulatorConfig(seed=3, <vendor>_<option>=10).<vendor>_<option>`), and `dataclasses.asdict` keeps the
vendor options in `vendor_settings`, so a config can be rebuilt in another process with `EmulatorConfig(**fields)`.
"""

from __future__ import annotations

from dataclasses import MISSING, dataclass, field, fields
from datetime import datetime, timedelta, timezone
from typing import Any

from .vendor import emulator_vendors, vendor_attribute, vendor_names

DEFAULT_SPAN = timedelta(days=120)


@dataclass(frozen=True)
class FixedWindowLimit:
    """A vendor limit of `requests` per `seconds` of real time, in fixed windows shared by every request to it.

    It replaces the vendor's usual limiter (and works with time_scale None). `advertised`, when given, is the limit
    the headers claim instead of the real one, with `remaining` counted down from it: a vendor whose headers
    disagree with what it enforces (a shared workspace quota, another app spending the same budget), so a client
    that trusts them runs into 429s it was not warned about.
    """

    requests: int
    seconds: float = 1.0
    advertised: int | None = None

    def __post_init__(self) -> None:
        if self.requests < 1:
            raise ValueError("FixedWindowLimit.requests must be at least 1")
        if not self.seconds > 0:
            raise ValueError("FixedWindowLimit.seconds must be positive")
        if self.advertised is not None and self.advertised < 1:
            raise ValueError("FixedWindowLimit.advertised must be at least 1, or None")


@dataclass(init=False)
class EmulatorConfig:
    """What the emulator serves. Defaults: a demo-sized dataset over the 120 days ending now.

    time_scale is the number of real seconds that stand for one vendor minute in the rate limiters (60.0 is real
    time, 0.5 makes a minute pass in half a second); None switches rate limiting and its headers off.
    """

    seed: int = 7
    start: datetime | None = None
    end: datetime | None = None
    time_scale: float | None = None
    # Distinct customers behind the feedback; None derives it from the dataset size.
    customers: int | None = None
    # How long a vendor's check of a webhook URL (a HEAD request) may take before the URL counts as unreachable.
    webhook_check_timeout: float = 5.0
    # Per vendor, a tight fixed-window limit in real seconds that replaces the vendor's usual limiter (see
    # FixedWindowLimit); Emulator.set_rate_limit changes it while serving.
    fixed_window_limits: dict[str, FixedWindowLimit] = field(default_factory=dict)
    # Every vendor's own options (see EmulatorVendor.settings), also readable as attributes.
    vendor_settings: dict[str, Any] = field(default_factory=dict)

    def __init__(self, **options: Any) -> None:
        shared = {f.name: f for f in fields(self)}
        defaults: dict[str, Any] = {}
        for vendor in emulator_vendors().values():
            defaults.update(vendor.settings)
        given_vendor = dict(options.pop("vendor_settings", None) or {})
        unknown = sorted(name for name in {*options, *given_vendor} if name not in shared and name not in defaults)
        if unknown:
            raise TypeError(f"EmulatorConfig got unknown option(s) {unknown}")
        for name, spec in shared.items():
            if name == "vendor_settings":
                continue
            if name in options:
                value = options[name]
            elif spec.default_factory is not MISSING:
                value = spec.default_factory()
            else:
                value = spec.default
            object.__setattr__(self, name, value)
        settings: dict[str, Any] = {}
        for name, default in defaults.items():
            value = options.get(name, given_vendor.get(name, default))
            if isinstance(default, frozenset):
                value = frozenset(value)
            settings[name] = value
        object.__setattr__(self, "vendor_settings", settings)
        for name, value in settings.items():
            object.__setattr__(self, name, value)
        self.__post_init__()

    def __setattr__(self, name: str, value: Any) -> None:
        settings = self.__dict__.get("vendor_settings")
        if settings is not None and name in settings:
            settings[name] = value
        object.__setattr__(self, name, value)

    def __post_init__(self) -> None:
        if self.end is None:
            self.end = datetime.now(timezone.utc).replace(microsecond=0)
        elif self.end.tzinfo is None:
            self.end = self.end.replace(tzinfo=timezone.utc)
        if self.start is None:
            self.start = self.end - DEFAULT_SPAN
        elif self.start.tzinfo is None:
            self.start = self.start.replace(tzinfo=timezone.utc)
        if self.start > self.end:
            raise ValueError("EmulatorConfig.start must not be after end")
        if self.time_scale is not None and self.time_scale <= 0:
            raise ValueError("EmulatorConfig.time_scale must be positive or None")
        vendors = vendor_names()
        unknown = sorted(set(self.fixed_window_limits) - set(vendors))
        if unknown:
            raise ValueError(f"EmulatorConfig.fixed_window_limits: unknown vendor(s) {unknown}; expected {vendors}")
        self.fixed_window_limits = dict(self.fixed_window_limits)

    @property
    def start_ts(self) -> int:
        assert self.start is not None
        return int(self.start.timestamp())

    @property
    def end_ts(self) -> int:
        assert self.end is not None
        return int(self.end.timestamp())

    @property
    def customer_count(self) -> int:
        if self.customers is not None:
            return max(1, self.customers)
        records = sum(vendor.record_count(self) for vendor in emulator_vendors().values())
        return max(60, records // 4)


def __getattr__(name: str) -> Any:
    # `VENDORS` is read from the registry when first used; the demo credentials live with each vendor.
    if name == "VENDORS":
        return vendor_names()
    return vendor_attribute(name)
