"""The integration contract every source implements, and the registry that finds them.

An integration turns one vendor's API into pages of `NormalizedRecord`s. Each page comes with the cursor to resume
from once that page is stored, so a sync can commit page and cursor together and pick up exactly where it stopped.
A source's integration is found through its `SourceSpec` (the `feedback_hub.sources` entry-point group, see
`feedback_sources.sources`); a bare class under the older `feedback_sources.integrations` group is still accepted.
"""

from __future__ import annotations

import abc
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime, timezone
from importlib.metadata import entry_points
from typing import Any, ClassVar

import httpx

from ..models import NormalizedRecord, Removal
from ..ranges import parse_moment
from ..rules import DEFAULT_RULES, Rules
from .http import ErrorKind, HttpClient, RequestStats, RetryPolicy, SourceError

logger = logging.getLogger("feedback_sources.integrations")

ENTRY_POINT_GROUP = "feedback_sources.integrations"


class ConfigError(ValueError):
    """Configuration that cannot work, with the names of the fields to fix."""

    def __init__(self, source: str, missing: list[str], message: str | None = None):
        self.source = source
        self.missing = missing
        super().__init__(message or f"{source}: missing required configuration: {', '.join(missing)}")


class WebhookSetupRequired(RuntimeError):
    """The vendor has no API to create a webhook: the message says what to do by hand."""

    def __init__(self, source: str, steps: list[str]):
        self.source = source
        self.steps = steps
        super().__init__("\n".join(steps))


@dataclass
class Page:
    """Records from one vendor page and where to resume once they are stored."""

    records: list[NormalizedRecord]
    cursor: dict[str, Any]
    vendor_total: int | None = None
    # Records the vendor removed (deleted, spam, disqualified): dropped from the store with the page.
    removals: list[Removal] = field(default_factory=list)


@dataclass
class ConnectionResult:
    ok: bool
    kind: str  # "ok" or an ErrorKind value
    message: str
    hint: str = ""
    account: str | None = None
    details: dict[str, Any] = field(default_factory=dict)


HINTS: dict[str, str] = {
    ErrorKind.auth: "Check the token (and the email, where the source asks for one) and save it again; tokens can be "
    "revoked or expire.",
    ErrorKind.forbidden: "Give the token the missing permission (scope) in the vendor's developer settings.",
    ErrorKind.wrong_subdomain: "Check the subdomain: for https://acme.example.com it is `acme`.",
    ErrorKind.not_found: "Check the base URL or region setting.",
    ErrorKind.rate_limited: "The vendor is rate limiting this account; wait a minute and try again.",
    ErrorKind.server: "The vendor's service is failing; try again later or check its status page.",
    ErrorKind.network: "Check your internet connection, proxy or VPN.",
    ErrorKind.timeout: "The vendor did not answer in time; check your connection and try again.",
    ErrorKind.bad_response: "The server did not answer like the vendor's API; check the base URL.",
    ErrorKind.client: "The vendor refused the request; check the configuration.",
    ErrorKind.config: "Fill in the missing fields on the Connections page or in the environment.",
}


def parse_iso(value: str | None) -> datetime | None:
    """A vendor's ISO 8601 moment in UTC, None when it is none."""
    moment = parse_moment(value)
    return moment.astimezone(timezone.utc) if moment is not None else None


def utc_bound(moment: datetime | None) -> datetime | None:
    """A caller's range bound in UTC; one without a timezone is taken as UTC, as every vendor sends its times."""
    if moment is None:
        return None
    return moment.replace(tzinfo=timezone.utc) if moment.tzinfo is None else moment.astimezone(timezone.utc)


def in_range(moment: datetime, start: datetime | None, end: datetime | None) -> bool:
    return (start is None or moment >= start) and (end is None or moment < end)


class BaseIntegration(abc.ABC):
    """One vendor. Subclasses declare their fields and implement `_connection_probe` and `iter_pages`."""

    name: ClassVar[str]
    display_name: ClassVar[str]
    required_fields: ClassVar[tuple[str, ...]]
    optional_fields: ClassVar[tuple[str, ...]] = ("base_url",)
    max_concurrency: ClassVar[int] = 4

    def __init__(
        self,
        config: dict[str, Any],
        *,
        transport: httpx.AsyncBaseTransport | None = None,
        rules: Rules | None = None,
        retry_policy: RetryPolicy | None = None,
        sleep: Callable[[float], Awaitable[None]] | None = None,
        timeout: float = 30.0,
    ):
        cleaned = {k: (v.strip() if isinstance(v, str) else v) for k, v in (config or {}).items()}
        missing = [f for f in self.required_fields if not cleaned.get(f)]
        if missing:
            raise ConfigError(self.name, missing)
        self.config = cleaned
        self.transport = transport
        self.rules = rules or DEFAULT_RULES
        self.retry_policy = retry_policy
        self._sleep = sleep
        self.timeout = timeout
        self.http_stats = RequestStats()
        # Told when the client starts (seconds > 0) and stops (0) waiting on a rate limit; the sync shows it.
        self.on_rate_limit_wait: Callable[[float], None] | None = None

    # -- the guide's contract ------------------------------------------------------------------------------------

    def get_source_name(self) -> str:
        return self.name

    def get_required_config_fields(self) -> list[str]:
        return list(self.required_fields)

    async def authenticate(self) -> bool:
        return (await self.test_connection()).ok

    async def test_connection(self) -> ConnectionResult:
        try:
            async with self.client() as client:
                account, details = await self._connection_probe(client)
        except SourceError as error:
            kind = str(error.kind)
            return ConnectionResult(False, kind, str(error), error.hint or HINTS.get(kind, ""))
        return ConnectionResult(True, "ok", f"Connected to {self.display_name} as {account}", account=account, details=details)

    async def fetch_feedback(
        self,
        start_date: datetime | None = None,
        end_date: datetime | None = None,
        limit: int | None = None,
    ) -> list[dict[str, Any]]:
        collected: list[dict[str, Any]] = []
        async for page in self.iter_pages(start=start_date, end=end_date):
            for record in page.records:
                collected.append(record.model_dump(mode="json"))
                if limit is not None and len(collected) >= limit:
                    return collected
        return collected

    async def register_webhook(self, url: str) -> bool:
        raise NotImplementedError(f"{self.display_name} webhook registration is not available")

    # -- what subclasses provide ---------------------------------------------------------------------------------

    @abc.abstractmethod
    def client(self) -> HttpClient:
        """A new HTTP client configured for this vendor (auth, base URL, rate-limit reader)."""

    @abc.abstractmethod
    async def _connection_probe(self, client: HttpClient) -> tuple[str, dict[str, Any]]:
        """Call the vendor's 'who am I' endpoint; return a display name for the account and details."""

    @abc.abstractmethod
    def iter_pages(
        self,
        start: datetime | None = None,
        end: datetime | None = None,
        cursor: dict[str, Any] | None = None,
    ) -> AsyncIterator[Page]:
        """Yield pages of records created in [start, end), resuming from `cursor` when given.

        The cursor of the last page is where the next incremental sync continues.
        """

    # -- helpers for subclasses -----------------------------------------------------------------------------------

    def _http_client(self, **kwargs: Any) -> HttpClient:
        options: dict[str, Any] = {
            "source": self.name,
            "transport": self.transport,
            "retry_policy": self.retry_policy,
            "max_concurrency": self.max_concurrency,
            "timeout": self.timeout,
        }
        if self._sleep is not None:
            options["sleep"] = self._sleep
        options["on_rate_limit_wait"] = self._rate_limit_wait
        options.update(kwargs)
        client = HttpClient(**options)
        # The sync reads request counts and rate-limit waits from here while pages stream in.
        self.http_stats = client.stats
        return client


    def _rate_limit_wait(self, seconds: float) -> None:
        if self.on_rate_limit_wait is not None:
            self.on_rate_limit_wait(seconds)


class FileIntegration(BaseIntegration):
    """A source that reads files the PM provides (a CSV or XLSX export): no HTTP client and no vendor to probe.

    `test_connection` is the subclass's own check that the file is readable and mapped; the HTTP parts of the
    contract say plainly that they do not apply instead of being faked.
    """

    optional_fields: ClassVar[tuple[str, ...]] = ()

    def client(self) -> HttpClient:
        raise TypeError(f"{self.display_name} reads files; it has no HTTP client")

    async def _connection_probe(self, client: HttpClient) -> tuple[str, dict[str, Any]]:
        raise TypeError(f"{self.display_name} reads files; it has no vendor to probe")

    @abc.abstractmethod
    async def test_connection(self) -> ConnectionResult:
        """Whether the configured file can be read and imported as configured."""


_REGISTRY: dict[str, type[BaseIntegration]] = {}
_ENTRY_POINTS_LOADED = False


def register(cls: type[BaseIntegration]) -> type[BaseIntegration]:
    _REGISTRY[cls.name] = cls
    return cls


def _load_entry_points() -> None:
    global _ENTRY_POINTS_LOADED
    if _ENTRY_POINTS_LOADED:
        return
    _ENTRY_POINTS_LOADED = True
    for entry in entry_points(group=ENTRY_POINT_GROUP):
        try:
            loaded = entry.load()
        except Exception:  # a broken plugin must not take the built-in sources down with it
            logger.exception("could not load integration entry point %s", entry.name)
            continue
        if isinstance(loaded, type) and issubclass(loaded, BaseIntegration):
            _REGISTRY.setdefault(loaded.name, loaded)
        else:
            logger.warning("entry point %s is not a BaseIntegration subclass; ignored", entry.name)


def available_integrations() -> dict[str, type[BaseIntegration]]:
    from ..sources import load_builtin_integrations

    for name, cls in load_builtin_integrations().items():
        # A plugin's class is found through its spec, registered or not.
        if isinstance(cls, type) and issubclass(cls, BaseIntegration):
            _REGISTRY.setdefault(name, cls)

    _load_entry_points()
    return dict(_REGISTRY)


def get_integration_class(name: str) -> type[BaseIntegration]:
    integrations = available_integrations()
    try:
        return integrations[name]
    except KeyError:
        known = ", ".join(sorted(integrations))
        raise ValueError(f"unknown source {name!r}; known sources: {known}") from None
