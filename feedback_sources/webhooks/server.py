"""Running the receiver: `python -m feedback_sources serve-webhooks`, and a threaded server for tests and tools.

uvicorn has no deadline for receiving a request: `timeout_keep_alive` only covers the silence between two requests
and is reset by every byte, so a client that sends half a request line, or headers and half a body, and then stalls
(or trickles a byte every few seconds) holds its connection, and a file descriptor, for ever. 1,024 of them exhaust
a default file-descriptor limit and the receiver stops accepting anyone, the vendor included. So the receiver runs
on uvicorn's h11 protocol with `GuardedH11Protocol` on top, which adds what uvicorn lacks:

- a deadline for each request's headers (from the moment the connection opens, or the previous answer ends) and
  one for its body (from the end of the headers); a connection that misses one is closed;
- a cap on open connections, derived from the process's file-descriptor limit so that accepting can never fail
  with "too many open files". At the cap a new connection does not wait or get refused while stalled ones hold the
  slots: the connection that has waited longest on its client (for headers or for body bytes) is closed to make
  room. A request already handed to the app is never closed for room, so an accepted delivery is always answered.

uvicorn's own `limit_concurrency` is left off: it answers 503 to every new request once that many connections are
open, stalled ones included, which is exactly the outage a flood of half-open connections aims for.
h11 is chosen over httptools because it bounds the size of an unfinished request head
(`h11_max_incomplete_event_size`) and answers 400 past it.
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import signal
import socket
import threading
import time
from collections import OrderedDict
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, TextIO

import uvicorn
from uvicorn.protocols.http.h11_impl import H11Protocol

try:  # not on Windows: there the cap is taken as configured
    import resource
except ImportError:  # pragma: no cover
    resource = None  # type: ignore[assignment]

from ..integrations.base import BaseIntegration, ConfigError
from ..rules_store import rules_at
from .app import DEFAULT_BODY_TIMEOUT, create_receiver_app
from .handler import webhook_handlers

EXIT_OK, EXIT_FAILED = 0, 1

logger = logging.getLogger("feedback_sources.webhooks.server")

# File descriptors kept free for everything that is not a client connection: the listening socket, the database,
# its -wal and -shm, log files, the event loop's own, the fetch worker's HTTP connections.
FD_RESERVE = 64


@dataclass(frozen=True)
class ConnectionLimits:
    """How long a client may take to send a request, and how many connections may be open at once.

    `body_timeout` is a backstop behind the app's own body deadline (which answers 408): it closes connections whose
    body the app never reads. `backlog` is both the kernel's accept queue and how many connections asyncio accepts
    in one go, so it is counted against the file-descriptor limit too.
    """

    header_timeout: float = 10.0
    body_timeout: float = DEFAULT_BODY_TIMEOUT + 5.0
    max_connections: int = 1000
    backlog: int = 128
    keep_alive: float = 5.0
    max_head_bytes: int = 16 * 1024

    def __post_init__(self) -> None:
        if min(self.header_timeout, self.body_timeout, self.keep_alive) <= 0:
            raise ValueError("timeouts must be positive")
        if self.max_connections < 1 or self.backlog < 1 or self.max_head_bytes < 1024:
            raise ValueError("max_connections and backlog must be positive, max_head_bytes at least 1024")

    def fds_needed(self) -> int:
        """File descriptors the receiver may need at its cap: connections, an accept burst in flight, the rest."""
        return self.max_connections + 2 * self.backlog + FD_RESERVE


def fd_soft_limit() -> int | None:
    """The soft RLIMIT_NOFILE, or None when unlimited or unknown."""
    if resource is None:
        return None
    soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    return None if soft == resource.RLIM_INFINITY else int(soft)


def raise_fd_limit(wanted: int) -> int | None:
    """Raise the soft file-descriptor limit towards `wanted` (never above the hard limit, never lowering it).

    Returns the soft limit in force afterwards (None: unlimited or unknown). Many systems start processes with a soft
    limit of 1,024 (macOS: 256) under a much higher hard one; raising it needs no privilege.
    """
    if resource is None:
        return None
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != resource.RLIM_INFINITY and soft < wanted:
        target = wanted if hard == resource.RLIM_INFINITY else min(wanted, hard)
        if target > soft:
            try:
                resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
            except (ValueError, OSError):
                pass  # keep the old limit; the cap below adapts to it
    return fd_soft_limit()


def connection_cap(limits: ConnectionLimits, soft_limit: int | None) -> int:
    """`limits.max_connections`, lowered so the cap, an accept burst and the reserve fit under `soft_limit`."""
    if soft_limit is None:
        return limits.max_connections
    room = soft_limit - 2 * limits.backlog - FD_RESERVE
    if room < 8:
        raise ValueError(
            f"the file-descriptor limit ({soft_limit}) leaves no room for connections; raise it with `ulimit -n` "
            f"to at least {limits.fds_needed()} or lower the backlog"
        )
    return min(limits.max_connections, room)


@dataclass
class ConnectionGuard:
    """The open connections of one server, which of them wait on their client, and what was closed and why."""

    limits: ConnectionLimits
    cap: int
    open: set[GuardedH11Protocol] = field(default_factory=set)
    # Connections waiting on their client, oldest wait first (a wait that starts moves to the end).
    waiting: OrderedDict[GuardedH11Protocol, None] = field(default_factory=OrderedDict)
    evicted: int = 0
    refused: int = 0
    header_timeouts: int = 0
    body_timeouts: int = 0
    most_open: int = 0

    def admit(self, connection: GuardedH11Protocol) -> bool:
        """Make room for `connection` (closing the longest-waiting one at the cap); False if it must be closed."""
        if len(self.open) >= self.cap:
            if not self.waiting:
                self.refused += 1
                return False
            victim = next(iter(self.waiting))
            self.evicted += 1
            victim.close_for("room for a new connection")
        self.open.add(connection)
        self.most_open = max(self.most_open, len(self.open))
        return True

    def wait_started(self, connection: GuardedH11Protocol) -> None:
        self.waiting.pop(connection, None)
        self.waiting[connection] = None

    def wait_ended(self, connection: GuardedH11Protocol) -> None:
        self.waiting.pop(connection, None)

    def forget(self, connection: GuardedH11Protocol) -> None:
        self.open.discard(connection)
        self.waiting.pop(connection, None)

    def stats(self) -> dict[str, int]:
        return {
            "cap": self.cap,
            "open": len(self.open),
            "waiting": len(self.waiting),
            "most_open": self.most_open,
            "evicted": self.evicted,
            "refused": self.refused,
            "header_timeouts": self.header_timeouts,
            "body_timeouts": self.body_timeouts,
        }


_HEADERS, _BODY, _APP = "headers", "body", "app"


class GuardedH11Protocol(H11Protocol):
    """uvicorn's h11 protocol with request deadlines and the guard's connection cap (see the module docstring).

    A connection is in one of three phases, read off uvicorn's own request cycle after every event that can change
    it: waiting for a request's headers, waiting for its body, or with the app. The first two have a deadline, armed
    when the phase starts and not moved by the bytes that trickle in.
    """

    guard: ConnectionGuard  # set on the subclass that `guarded_protocol` makes for each server

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._phase: tuple[str, object] | None = None
        self._deadline: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        if not self.guard.admit(self):
            transport.abort()  # every slot is busy with a request being answered: refuse at once
            return
        self._track()

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        self.guard.forget(self)
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        super().data_received(data)
        self._track()

    def on_response_complete(self) -> None:
        super().on_response_complete()
        self._track()

    def close_for(self, reason: str) -> None:
        """Close for `reason` (a missed deadline, or room for a new connection); the app sees a disconnect."""
        self._disarm()
        self.guard.forget(self)
        if not self.transport.is_closing():
            logger.debug("closing connection from %s: %s", self.client, reason)
            self.transport.close()

    def _track(self) -> None:
        if self.transport is None or self.transport.is_closing():
            self._disarm()
            self.guard.forget(self)
            return
        cycle = self.cycle
        if cycle is None or cycle.response_complete:
            phase = _HEADERS
        elif cycle.more_body:
            phase = _BODY
        else:
            phase = _APP
        if self._phase == (phase, cycle):
            return  # same phase of the same request: a trickle does not move its deadline
        self._phase = (phase, cycle)
        self._disarm()
        if phase == _APP:
            self.guard.wait_ended(self)
            return
        self.guard.wait_started(self)
        timeout = self.guard.limits.header_timeout if phase == _HEADERS else self.guard.limits.body_timeout
        self._deadline = self.loop.call_later(timeout, self._expire, phase)

    def _expire(self, phase: str) -> None:
        self._deadline = None
        if phase == _HEADERS:
            self.guard.header_timeouts += 1
        else:
            self.guard.body_timeouts += 1
        self.close_for(f"{phase} not received in time")

    def _disarm(self) -> None:
        if self._deadline is not None:
            self._deadline.cancel()
            self._deadline = None


def guarded_protocol(limits: ConnectionLimits, *, soft_limit: int | None = None) -> type[GuardedH11Protocol]:
    """A protocol class for one server, with its own guard (capped by `soft_limit`, default: the current limit)."""
    cap = connection_cap(limits, soft_limit if soft_limit is not None else fd_soft_limit())
    guard = ConnectionGuard(limits=limits, cap=cap)
    return type("GuardedH11Protocol", (GuardedH11Protocol,), {"guard": guard})


def uvicorn_config(app: Any, limits: ConnectionLimits, protocol: type[GuardedH11Protocol], **options: Any) -> uvicorn.Config:
    """The one uvicorn configuration of the receiver, for `serve` and `running_receiver` alike."""
    return uvicorn.Config(
        app,
        http=protocol,
        lifespan="on",
        log_config=None,  # keep the process's redacting log handler
        access_log=False,  # each delivery is logged once, by the receiver, without its body
        server_header=False,
        # No route takes a WebSocket; an upgrade handed to uvicorn's WebSocket protocol would leave the guard.
        ws="none",
        backlog=limits.backlog,
        timeout_keep_alive=limits.keep_alive,
        h11_max_incomplete_event_size=limits.max_head_bytes,
        # A request half-answered at shutdown must not keep the process alive past the body deadline.
        timeout_graceful_shutdown=limits.body_timeout,
        # A tunnel (cloudflared, ngrok) on this machine connects from loopback and names the real client in
        # X-Forwarded-For; uvicorn takes the rightmost address it did not add itself, so failed signatures are
        # limited per real client. Spoofed entries further left are ignored.
        proxy_headers=True,
        forwarded_allow_ips="127.0.0.1,::1",
        **options,
    )


def secrets_from_configs(configs: Mapping[str, Mapping[str, Any]]) -> dict[str, dict[str, str]]:
    """The signing fields (and the settings the interpreters read, e.g. for agent links) out of the workspace's
    resolved configs."""
    secrets: dict[str, dict[str, str]] = {}
    for source, handler in webhook_handlers().items():
        config = configs.get(source) or {}
        wanted = (*handler.secret_fields, *handler.context_fields)
        secrets[source] = {name: str(config[name]) for name in wanted if config.get(name)}
    return secrets


def startup_lines(states: Mapping[str, Mapping[str, Any]]) -> list[str]:
    """One line per source: accepted or refused (and which settings would fix it), and whether fetches can run."""
    lines = []
    handlers = webhook_handlers()
    for source, state in states.items():
        if state["accepting"]:
            fetches = "yes" if state["fetches"] else "no (API credentials missing: id-only events wait in the queue)"
            lines.append(f"{source:<13} accepting signed deliveries; fetches: {fetches}")
        else:
            variables = " and ".join(handlers[source].secret_env_vars)
            missing = " and ".join(state["missing"])
            lines.append(
                f"{source:<13} REJECTING every delivery: no {missing} configured. Set {variables} or run "
                f"`python -m feedback_sources credentials set {source}`."
            )
    return lines


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def serve(
    workspace: Any,
    *,
    host: str = "127.0.0.1",
    port: int = 8787,
    out: TextIO,
    err: TextIO,
    limits: ConnectionLimits = ConnectionLimits(),
) -> int:
    """Run the receiver until interrupted. Returns the process exit code."""
    # Events are mapped with the rules the PM saved, like a sync, not with the package's defaults.
    rules = rules_at(workspace.db_path)

    def integrations_factory(source: str) -> BaseIntegration | None:
        try:
            return workspace.integration(source, rules=rules)
        except ConfigError:
            return None

    app = create_receiver_app(
        workspace.db_path,
        secrets_from_configs(workspace.configs),
        integrations_factory=integrations_factory,
        listen=(host, port),
        rules=rules,
    )
    receiver = app.state.receiver
    print(f"Webhook receiver on http://{host}:{port}/webhooks/{{{','.join(receiver.handlers)}}}", file=err)
    print(f"Records go to {workspace.db_path}", file=err)
    for line in startup_lines(receiver.source_states()):
        print(f"  {line}", file=err)
    if not _is_loopback(host):
        print(
            f"Warning: listening on {host}, not only this machine. Put it behind an HTTPS reverse proxy or tunnel.",
            file=err,
        )
    soft_limit = raise_fd_limit(limits.fds_needed())
    try:
        protocol = guarded_protocol(limits, soft_limit=soft_limit)
    except ValueError as error:
        print(f"Cannot start the receiver: {error}", file=err)
        return EXIT_FAILED
    if protocol.guard.cap < limits.max_connections:
        print(
            f"At most {protocol.guard.cap} open connections (file-descriptor limit {soft_limit}; "
            f"`ulimit -n {limits.fds_needed()}` allows {limits.max_connections})",
            file=err,
        )
    config = uvicorn_config(app, limits, protocol, host=host, port=port)
    server = uvicorn.Server(config)
    try:
        with _stop_signals_raise():
            server.run()
    except _Stopped:
        pass  # uvicorn shut down gracefully, then passed the signal on: a normal stop
    except SystemExit:  # uvicorn exits when it cannot bind
        print(f"Could not listen on {host}:{port} (is it already in use?)", file=err)
        return EXIT_FAILED
    if not server.started:
        print(f"The receiver did not start on {host}:{port}", file=err)
        return EXIT_FAILED
    print("Webhook receiver stopped.", file=out)
    return EXIT_OK


class _Stopped(Exception):
    pass


@contextmanager
def _stop_signals_raise() -> Iterator[None]:
    """Turn SIGINT and SIGTERM, which uvicorn re-raises after its graceful shutdown, into `_Stopped`."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def stop(signum: int, frame: Any) -> None:
        raise _Stopped()

    previous = {sig: signal.signal(sig, stop) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


@contextmanager
def serving(
    app: Any,
    host: str = "127.0.0.1",
    port: int = 0,
    *,
    limits: ConnectionLimits = ConnectionLimits(),
    timeout: float = 10.0,
) -> Iterator[tuple[str, ConnectionGuard]]:
    """Serve `app` with uvicorn on a background thread; yields its base URL and its connection guard."""
    # IPPROTO_TCP explicitly: asyncio only sets TCP_NODELAY on accepted sockets whose proto says TCP, and without
    # it every response (headers and body written separately) waits ~40 ms on Nagle and delayed ACKs.
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    bound_port = sock.getsockname()[1]
    protocol = guarded_protocol(limits)
    server = uvicorn.Server(uvicorn_config(app, limits, protocol))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, name="webhook-receiver", daemon=True)
    thread.start()
    deadline = time.monotonic() + timeout
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            server.should_exit = True
            thread.join(timeout)
            sock.close()
            raise RuntimeError("the webhook receiver did not start")
        time.sleep(0.01)
    try:
        yield f"http://{host}:{bound_port}", protocol.guard
    finally:
        server.should_exit = True
        thread.join(timeout + limits.body_timeout)
        sock.close()


@contextmanager
def running_receiver(
    app: Any,
    host: str = "127.0.0.1",
    port: int = 0,
    *,
    limits: ConnectionLimits = ConnectionLimits(),
    timeout: float = 10.0,
) -> Iterator[str]:
    """Serve `app` with uvicorn on a background thread; yields its base URL and stops it on exit."""
    with serving(app, host, port, limits=limits, timeout=timeout) as (url, _guard):
        yield url
