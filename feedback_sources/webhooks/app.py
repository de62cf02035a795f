"""The webhook receiver: a small Starlette app with one POST route per source that has webhooks, and a health check.

The routes come from the source registry: every source whose spec names a `WebhookHandler` gets
`/webhooks/<source>`; a source without one has no route at all. Each delivery goes through the cheap checks first
and the expensive ones last, so junk costs almost nothing: signature headers (401: missing, malformed, or a
signature timestamp outside the window, decided before a body byte is read) → body size, streamed and cut off at
the cap (413) and read within a deadline (408) → signature over the raw bytes (401) → the source's rate limit (429)
→ JSON (400) → deduplication by event id → the sync's own mapper → the store's upsert (newest version wins). What an event only points at is queued and fetched by a background worker, so
the vendor gets its 200 in milliseconds.

The source's rate-limit token is spent only by a delivery whose signature holds: a flood of unsigned or forged
requests can never make the real vendor's deliveries answer 429. Failed signatures have their own limit per client
address instead (401, then 429 for that client once it is spent); it only ever changes how a failure is answered,
never whether a valid delivery is accepted, because behind a tunnel the vendor and an attacker can share an address.

There are no other routes: no /docs, /redoc or /openapi.json, and GET on a webhook path answers 405. HEAD on a
webhook path answers 200 because some vendors check a subscription URL with HEAD before they accept it.
"""

from __future__ import annotations

import asyncio
import logging
import math
import os
import time
from collections import Counter, OrderedDict
from collections.abc import AsyncIterator, Callable, Mapping
from contextlib import asynccontextmanager, suppress
from pathlib import Path
from typing import Any

from starlette.applications import Starlette
from starlette.requests import ClientDisconnect, Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from ..integrations.base import ConfigError
from ..rules import DEFAULT_RULES, Rules
from ..store import Store
from .events import (
    EventEntry,
    StoreRunner,
    add_counts,
    is_known_event,
    log_event,
    note_redelivery,
    utc_text,
    write_heartbeat,
)
from .fetch import FetchPolicy, FetchWorker, IntegrationsFactory
from .handler import webhook_handlers
from .payloads import Interpretation, MalformedEvent, MappingContext, interpret, parse_json
from .signatures import SignatureError, check_headers, missing_secret_fields, verify

logger = logging.getLogger("feedback_sources.webhooks")

DEFAULT_MAX_BODY = 2_000_000
DEFAULT_RATE_PER_MINUTE = 600
DEFAULT_BODY_TIMEOUT = 10.0
DEFAULT_FAILED_PER_MINUTE = 60
# Clients whose failure buckets are remembered; the least recently seen is forgotten first, so a flood from many
# addresses costs bounded memory (a forgotten client starts again with a full bucket, which only means more 401s).
MAX_TRACKED_CLIENTS = 10_000
DEFAULT_HEARTBEAT_INTERVAL = 5.0


class TokenBucket:
    """`rate_per_minute` tokens a minute, holding at most `capacity` (default: one minute's worth) for bursts."""

    def __init__(self, rate_per_minute: float, clock: Callable[[], float], capacity: float | None = None):
        if rate_per_minute <= 0:
            raise ValueError("rate_per_minute must be positive")
        self.rate = rate_per_minute / 60.0
        self.capacity = float(capacity if capacity is not None else rate_per_minute)
        self.clock = clock
        self.tokens = self.capacity
        self.updated = clock()

    def take(self) -> float:
        """Spend a token: 0.0 when allowed, else the seconds until the next token."""
        now = self.clock()
        self.tokens = min(self.capacity, self.tokens + max(0.0, now - self.updated) * self.rate)
        self.updated = now
        if self.tokens >= 1.0:
            self.tokens -= 1.0
            return 0.0
        return (1.0 - self.tokens) / self.rate


class ClientLimiter:
    """One TokenBucket per client address, for requests that failed their signature check."""

    def __init__(
        self,
        rate_per_minute: float,
        clock: Callable[[], float],
        *,
        max_clients: int = MAX_TRACKED_CLIENTS,
    ):
        if max_clients < 1:
            raise ValueError("max_clients must be at least 1")
        TokenBucket(rate_per_minute, clock)  # the same argument checks as every bucket
        self.rate_per_minute = rate_per_minute
        self.clock = clock
        self.max_clients = max_clients
        self.buckets: OrderedDict[str, TokenBucket] = OrderedDict()

    def take(self, client: str) -> float:
        """Spend one of `client`'s failure tokens: 0.0 when it still had one, else the seconds until the next."""
        bucket = self.buckets.pop(client, None)
        if bucket is None:
            bucket = TokenBucket(self.rate_per_minute, self.clock)
            while len(self.buckets) >= self.max_clients:
                self.buckets.popitem(last=False)
        self.buckets[client] = bucket  # most recently seen last
        return bucket.take()


class BodyRefused(Exception):
    def __init__(self, status: int, verdict: str, message: str):
        super().__init__(message)
        self.status = status
        self.verdict = verdict
        self.message = message


async def read_capped_body(request: Request, max_body: int, timeout: float) -> bytes:
    """The raw body, refused (413) as soon as it is known to exceed `max_body`: before reading it when the
    Content-Length says so, otherwise as soon as the streamed bytes pass the cap, without reading the rest."""
    declared = request.headers.get("content-length")
    if declared is not None:
        if not declared.strip().isdigit():
            raise BodyRefused(400, "malformed", "invalid Content-Length")
        if int(declared) > max_body:
            raise BodyRefused(413, "too_large", f"body larger than {max_body} bytes")
    received = bytearray()
    try:
        async with asyncio.timeout(timeout):
            async for chunk in request.stream():
                received += chunk
                if len(received) > max_body:
                    raise BodyRefused(413, "too_large", f"body larger than {max_body} bytes")
    except TimeoutError:
        raise BodyRefused(408, "malformed", "body not received in time") from None
    return bytes(received)


def _loggable(value: str | None, limit: int = 80) -> str:
    if not value:
        return "-"
    cleaned = "".join(ch if ch.isprintable() and not ch.isspace() else "_" for ch in value)
    return cleaned[:limit]


def _apply_event(
    store: Store, source: str, interpretation: Interpretation, *, received_at: str, now: float, started: float
) -> str:
    """Dedupe, store and log one event. Runs on the store thread."""
    if is_known_event(store, source, interpretation.event_id):
        note_redelivery(store, source, interpretation.event_id, received_at)
        return "duplicate"
    # The record first, then the log row: a crash in between means the redelivery is processed again (the upsert
    # is idempotent) instead of an event marked seen whose record never landed.
    records = interpretation.records
    if records and interpretation.combine is not None:
        records = interpretation.combine(store, records)
    if records or interpretation.removals:
        store.upsert_records(records, removals=interpretation.removals)
    entry = EventEntry(
        source=source,
        event_id=interpretation.event_id,
        event_type=interpretation.event_type,
        verdict=interpretation.verdict,
        record_id=interpretation.record_id,
        detail=interpretation.detail,
        received_at=received_at,
        latency_ms=round((time.perf_counter() - started) * 1000, 3),
        fetches=tuple(interpretation.fetches),
    )
    return interpretation.verdict if log_event(store, entry, now=now) else "duplicate"


class Receiver:
    """The state behind the routes: secrets, rate limits, refusal counts, the store thread and the fetch worker."""

    def __init__(
        self,
        db_path: str | Path,
        secrets: Mapping[str, Mapping[str, str]],
        *,
        integrations_factory: IntegrationsFactory | None,
        max_body: int,
        rate_per_minute: float,
        clock: Callable[[], float],
        rules: Rules | None,
        listen: tuple[str, int] | None,
        heartbeat_interval: float,
        fetch_policy: FetchPolicy,
        body_timeout: float,
        failed_per_minute: float,
    ):
        self.handlers = webhook_handlers()
        self.secrets = {
            source: {k: str(v).strip() for k, v in (secrets.get(source) or {}).items() if v is not None}
            for source in self.handlers
        }
        self.max_body = max_body
        self.clock = clock
        self.listen = listen
        self.heartbeat_interval = heartbeat_interval
        self.body_timeout = body_timeout
        self.buckets = {source: TokenBucket(rate_per_minute, clock) for source in self.handlers}
        self.failures = ClientLimiter(failed_per_minute, clock)
        self.refused: Counter[tuple[str, str]] = Counter()

        factory = integrations_factory or (lambda source: None)
        reachable: dict[str, Any] = {}
        for source in self.handlers:
            try:
                integration = factory(source)
            except ConfigError:
                integration = None
            if integration is not None:
                reachable[source] = integration
        self.fetchable = frozenset(reachable)
        # The settings each interpreter reads: from the configuration, else from the configured integration.
        settings: dict[str, dict[str, str]] = {}
        for source, handler in self.handlers.items():
            values = {}
            for name in handler.context_fields:
                value = self.secrets[source].get(name) or getattr(reachable.get(source), name, None)
                if value:
                    values[name] = str(value)
            settings[source] = values
        self.context = MappingContext(rules=rules or DEFAULT_RULES, fetchable=self.fetchable, settings=settings)

        store = Store(db_path)
        self.runner = StoreRunner(store)
        self.worker = FetchWorker(self.runner, factory, sources=self.fetchable, clock=clock, policy=fetch_policy)
        self.started_at = utc_text(clock())

    # -- start-up facts ------------------------------------------------------------------------------------------

    def source_states(self) -> dict[str, dict[str, Any]]:
        """Per source: whether deliveries are accepted (and if not, which signing fields are missing)."""
        states = {}
        for source in self.handlers:
            missing = missing_secret_fields(source, self.secrets[source])
            states[source] = {"accepting": not missing, "missing": missing, "fetches": source in self.fetchable}
        return states

    # -- requests ------------------------------------------------------------------------------------------------

    async def handle(self, request: Request, source: str) -> Response:
        if request.method == "HEAD":
            return Response(status_code=200)
        started = time.perf_counter()
        try:
            check_headers(source, request.headers, self.secrets[source], now=self.clock())
        except SignatureError as error:
            return self._refuse_signature(request, source, str(error), started)
        try:
            body = await read_capped_body(request, self.max_body, self.body_timeout)
        except BodyRefused as refused:
            return self._refuse(source, refused.status, refused.verdict, refused.message, started)
        except ClientDisconnect:
            return self._refuse(source, 400, "malformed", "client went away", started)
        try:
            verify(source, request.headers, body, self.secrets[source], now=self.clock())
        except SignatureError as error:
            return self._refuse_signature(request, source, str(error), started)
        # Only now, with the sender proven to be the vendor, does the delivery spend the source's token.
        wait = self.buckets[source].take()
        if wait > 0:
            return self._refuse(source, 429, "rate_limited", "rate limited", started, {"Retry-After": str(math.ceil(wait))})
        try:
            interpretation = interpret(source, parse_json(body), self.context)
        except MalformedEvent as error:
            return self._refuse(source, 400, "malformed", str(error), started)
        verdict = await self.runner.call(
            _apply_event,
            source,
            interpretation,
            received_at=utc_text(self.clock()),
            now=self.clock(),
            started=started,
        )
        if interpretation.fetches and verdict != "duplicate":
            self.worker.wake()
        self._log(source, 200, verdict, started, interpretation)
        return JSONResponse({"ok": True, "verdict": verdict})

    def _refuse_signature(self, request: Request, source: str, reason: str, started: float) -> Response:
        """401 while the client has failure tokens left, then 429 until its bucket refills."""
        client = request.client.host if request.client else "unknown"
        wait = self.failures.take(client)
        if wait > 0:
            headers = {"Retry-After": str(math.ceil(wait))}
            return self._refuse(
                source, 429, "rejected", f"{reason}; too many failed signatures from {_loggable(client)}", started,
                headers, public="too many failed signatures",
            )
        return self._refuse(source, 401, "rejected", reason, started, public="signature verification failed")

    def _refuse(
        self,
        source: str,
        status: int,
        verdict: str,
        reason: str,
        started: float,
        headers: Mapping[str, str] | None = None,
        *,
        public: str | None = None,
    ) -> Response:
        self.refused[(source, verdict)] += 1
        self._log(source, status, verdict, started, None, reason)
        return JSONResponse({"ok": False, "error": public or reason}, status_code=status, headers=dict(headers or {}))

    @staticmethod
    def _log(
        source: str,
        status: int,
        verdict: str,
        started: float,
        interpretation: Interpretation | None,
        reason: str = "",
    ) -> None:
        level = logging.WARNING if status == 401 else logging.INFO
        logger.log(
            level,
            "webhook source=%s event=%s type=%s verdict=%s status=%d latency_ms=%.1f%s",
            source,
            _loggable(interpretation.event_id if interpretation else None),
            _loggable(interpretation.event_type if interpretation else None),
            verdict,
            status,
            (time.perf_counter() - started) * 1000,
            f" reason={reason}" if reason else "",
        )

    # -- background ----------------------------------------------------------------------------------------------

    async def flush(self, *, stopped: bool = False) -> None:
        """Write the refusal counts gathered since the last flush, and the heartbeat."""
        counts, self.refused = self.refused, Counter()
        now = self.clock()
        day = utc_text(now)[:10]
        try:
            await self.runner.call(add_counts, dict(counts), day=day)
        except Exception:
            self.refused.update(counts)  # keep them for the next flush
            raise
        host, port = self.listen if self.listen else (None, None)
        await self.runner.call(
            write_heartbeat,
            host=host,
            port=port,
            pid=os.getpid(),
            started_at=self.started_at,
            at=utc_text(now),
            sources=self.source_states(),
            stopped=stopped,
        )

    async def _heartbeat(self) -> None:
        while True:
            await asyncio.sleep(self.heartbeat_interval)
            try:
                await self.flush()
            except Exception:  # a busy database must not stop the receiver; the next beat tries again
                logger.exception("webhook heartbeat failed")

    @asynccontextmanager
    async def lifespan(self, app: Starlette) -> AsyncIterator[None]:
        await self.flush()
        tasks = [asyncio.create_task(self._heartbeat(), name="webhook-heartbeat")]
        if self.fetchable:
            tasks.append(asyncio.create_task(self.worker.run(), name="webhook-fetches"))
        try:
            yield
        finally:
            for task in tasks:
                task.cancel()
            for task in tasks:
                with suppress(asyncio.CancelledError):
                    await task
            try:
                await self.flush(stopped=True)
            finally:
                self.runner.close()


def create_receiver_app(
    db_path: str | Path,
    secrets: Mapping[str, Mapping[str, str]],
    *,
    integrations_factory: IntegrationsFactory | None = None,
    max_body: int = DEFAULT_MAX_BODY,
    rate_per_minute: float = DEFAULT_RATE_PER_MINUTE,
    clock: Callable[[], float] = time.time,
    rules: Rules | None = None,
    listen: tuple[str, int] | None = None,
    heartbeat_interval: float = DEFAULT_HEARTBEAT_INTERVAL,
    fetch_policy: FetchPolicy = FetchPolicy(),
    body_timeout: float = DEFAULT_BODY_TIMEOUT,
    failed_per_minute: float = DEFAULT_FAILED_PER_MINUTE,
) -> Starlette:
    """The receiver app.

    `secrets` maps each source to its signing fields (its handler's `secret_fields`, plus the `context_fields` its
    interpreter reads); a source missing any signing field rejects every delivery. `integrations_factory(source)` returns a configured integration, or None when the source's API
    credentials are missing; without one, fetches for that source wait in the queue. `clock` gives unix seconds
    (rate limits, signature replay windows, the fetch schedule). `listen` is the (host, port) for the heartbeat.
    `rate_per_minute` limits each source's signed deliveries; `failed_per_minute` limits failed signatures per client
    address (the address uvicorn reports: behind a tunnel on this machine, the one in X-Forwarded-For).
    """
    receiver = Receiver(
        db_path,
        secrets,
        integrations_factory=integrations_factory,
        max_body=max_body,
        rate_per_minute=rate_per_minute,
        clock=clock,
        rules=rules,
        listen=listen,
        heartbeat_interval=heartbeat_interval,
        fetch_policy=fetch_policy,
        body_timeout=body_timeout,
        failed_per_minute=failed_per_minute,
    )

    async def healthz(request: Request) -> Response:
        return JSONResponse({"ok": True})

    def webhook_endpoint(source: str) -> Callable[[Request], Any]:
        async def endpoint(request: Request) -> Response:
            return await receiver.handle(request, source)

        endpoint.__name__ = f"webhook_{source}"
        return endpoint

    routes = [Route("/healthz", healthz, methods=["GET"])]
    routes += [
        Route(f"/webhooks/{source}", webhook_endpoint(source), methods=["POST", "HEAD"]) for source in receiver.handlers
    ]
    app = Starlette(routes=routes, lifespan=receiver.lifespan)
    app.state.receiver = receiver
    return app


def __getattr__(name: str) -> Any:
    # The sources with a route, read from the registry when first asked for.
    if name == "WEBHOOK_SOURCES":
        return tuple(webhook_handlers())
    raise AttributeError(name)


__all__ = ["ClientLimiter", "Receiver", "TokenBucket", "create_receiver_app"]
