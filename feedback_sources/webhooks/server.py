"""Running the receiver: `python -m feedback_sources serve-webhooks`, and a threaded server for tests and tools."""

from __future__ import annotations

import ipaddress
import signal
import socket
import threading
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any, TextIO

import uvicorn

from ..integrations.base import BaseIntegration, ConfigError
from ..rules_store import rules_at
from .app import WEBHOOK_SOURCES, create_receiver_app
from .signatures import SECRET_ENV_VARS, SECRET_FIELDS

EXIT_OK, EXIT_FAILED = 0, 1


def secrets_from_configs(configs: Mapping[str, Mapping[str, Any]]) -> dict[str, dict[str, str]]:
    """The signing fields (and the Zendesk subdomain, for agent links) out of the workspace's resolved configs."""
    secrets: dict[str, dict[str, str]] = {}
    for source in WEBHOOK_SOURCES:
        config = configs.get(source) or {}
        wanted = (*SECRET_FIELDS[source], "subdomain") if source == "zendesk" else SECRET_FIELDS[source]
        secrets[source] = {name: str(config[name]) for name in wanted if config.get(name)}
    return secrets


def startup_lines(states: Mapping[str, Mapping[str, Any]]) -> list[str]:
    """One line per source: accepted or refused (and which settings would fix it), and whether fetches can run."""
    lines = []
    for source, state in states.items():
        if state["accepting"]:
            fetches = "yes" if state["fetches"] else "no (API credentials missing: id-only events wait in the queue)"
            lines.append(f"{source:<13} accepting signed deliveries; fetches: {fetches}")
        else:
            variables = " and ".join(SECRET_ENV_VARS[source])
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


def serve(workspace: Any, *, host: str = "127.0.0.1", port: int = 8787, out: TextIO, err: TextIO) -> int:
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
    print(f"Webhook receiver on http://{host}:{port}/webhooks/{{zendesk,intercom,surveymonkey}}", file=err)
    print(f"Records go to {workspace.db_path}", file=err)
    for line in startup_lines(receiver.source_states()):
        print(f"  {line}", file=err)
    if not _is_loopback(host):
        print(
            f"Warning: listening on {host}, not only this machine. Put it behind an HTTPS reverse proxy or tunnel.",
            file=err,
        )
    config = uvicorn.Config(
        app,
        host=host,
        port=port,
        lifespan="on",
        log_config=None,  # keep the process's redacting log handler
        access_log=False,  # each delivery is logged once, by the receiver, without its body
        server_header=False,
    )
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
def running_receiver(app: Any, host: str = "127.0.0.1", port: int = 0, *, timeout: float = 10.0) -> Iterator[str]:
    """Serve `app` with uvicorn on a background thread; yields its base URL and stops it on exit."""
    # IPPROTO_TCP explicitly: asyncio only sets TCP_NODELAY on accepted sockets whose proto says TCP, and without
    # it every response (headers and body written separately) waits ~40 ms on Nagle and delayed ACKs.
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    bound_port = sock.getsockname()[1]
    config = uvicorn.Config(app, lifespan="on", log_config=None, access_log=False, server_header=False)
    server = uvicorn.Server(config)
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
        yield f"http://{host}:{bound_port}"
    finally:
        server.should_exit = True
        thread.join(timeout)
        sock.close()
