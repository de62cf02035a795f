"""The vendor emulator served over real HTTP on 127.0.0.1 from a separate process.

Throughput figures run the server in its own process so that it and the client under test do not share one GIL on a
2-core machine. The parent talks to it over a pipe: start, mutate records (for incremental re-syncs), read the
request log's counts, stop.
"""

from __future__ import annotations

import multiprocessing
import multiprocessing.connection
from dataclasses import asdict
from typing import Any

from feedback_sources.emulator import EmulatorConfig

START_TIMEOUT_SECONDS = 60.0


def _serve(config_fields: dict[str, Any], pipe: multiprocessing.connection.Connection) -> None:
    from feedback_sources.emulator import Emulator, run_emulator_server

    emulator = Emulator(EmulatorConfig(**config_fields))
    # The request log holds one entry per request; at hundreds of thousands of requests only the counts matter.
    with run_emulator_server(emulator) as url:
        pipe.send(("ready", url, emulator.base_urls(url)))
        while True:
            command, *args = pipe.recv()
            if command == "stop":
                pipe.send(("stopped",))
                return
            try:
                pipe.send(("ok", _COMMANDS[command](emulator, *args)))
            except Exception as error:  # the parent raises it; the server keeps serving
                pipe.send(("error", f"{type(error).__name__}: {error}"))


def _update_tickets(emulator: Any, ids: list[int]) -> int:
    for ticket_id in ids:
        emulator.zendesk.update_ticket(ticket_id, priority="urgent")
    return len(ids)


def _request_counts(emulator: Any) -> dict[str, int]:
    counts: dict[str, int] = {}
    statuses: dict[str, int] = {}
    for record in list(emulator.requests):
        counts[record.vendor] = counts.get(record.vendor, 0) + 1
        if record.status == 429:
            statuses[record.vendor] = statuses.get(record.vendor, 0) + 1
    return {**{f"requests:{k}": v for k, v in counts.items()}, **{f"429:{k}": v for k, v in statuses.items()}}


def _endpoint_counts(emulator: Any, vendor: str) -> dict[str, int]:
    """Requests per endpoint shape (ids replaced by {id}), for requests-per-record accounting."""
    import re

    counts: dict[str, int] = {}
    for record in list(emulator.requests):
        if record.vendor == vendor:
            shape = re.sub(r"/[0-9a-f]{8,}|/\d+", "/{id}", record.endpoint)
            counts[shape] = counts.get(shape, 0) + 1
    return counts


def _distinct_contacts(emulator: Any) -> int:
    return len({r.endpoint for r in list(emulator.requests) if r.vendor == "intercom"
                and r.endpoint.startswith("/contacts/") and r.status == 200})


def _cpu_seconds(emulator: Any) -> float:
    import time

    return time.process_time()


def _clear_requests(emulator: Any) -> None:
    emulator.clear_requests()


def _reset_rate_limits(emulator: Any) -> None:
    emulator.reset_rate_limits()


_COMMANDS = {
    "update_tickets": _update_tickets,
    "request_counts": _request_counts,
    "endpoint_counts": _endpoint_counts,
    "distinct_contacts": _distinct_contacts,
    "clear_requests": _clear_requests,
    "cpu_seconds": _cpu_seconds,
    "reset_rate_limits": _reset_rate_limits,
}


def _context() -> multiprocessing.context.BaseContext:
    """A forkserver: each emulator forks from a clean process that already imported the emulator and uvicorn.

    Cheaper than spawning (no fresh interpreter and imports per server) and safer than forking the benchmark
    process itself, which may hold threads and open databases.
    """
    if "forkserver" not in multiprocessing.get_all_start_methods():
        return multiprocessing.get_context("spawn")
    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload(["feedback_sources.emulator", "uvicorn", "benchmarks.emulator_process"])
    return context


class EmulatorProcess:
    """`with EmulatorProcess(config) as emu:` serves `config` until the block ends; emu.base_urls per vendor."""

    def __init__(self, config: EmulatorConfig):
        self.config = config
        self.url = ""
        self.base_urls: dict[str, str] = {}
        self._process: multiprocessing.process.BaseProcess | None = None
        self._pipe: multiprocessing.connection.Connection | None = None

    def __enter__(self) -> EmulatorProcess:
        context = _context()
        parent, child = context.Pipe()
        fields = asdict(self.config)
        self._process = context.Process(target=_serve, args=(fields, child), name="emulator-server", daemon=True)
        self._process.start()
        self._pipe = parent
        if not parent.poll(START_TIMEOUT_SECONDS):
            self._kill()
            raise RuntimeError("the emulator process did not start")
        _, self.url, self.base_urls = parent.recv()
        return self

    def call(self, command: str, *args: Any) -> Any:
        assert self._pipe is not None
        self._pipe.send((command, *args))
        status, *payload = self._pipe.recv()
        if status == "error":
            raise RuntimeError(f"emulator command {command} failed: {payload[0]}")
        return payload[0] if payload else None

    def __exit__(self, *exc_info: object) -> None:
        try:
            if self._pipe is not None and self._process is not None and self._process.is_alive():
                self._pipe.send(("stop",))
                self._pipe.poll(10)
        finally:
            self._kill()

    def _kill(self) -> None:
        if self._process is not None:
            self._process.join(timeout=5)
            if self._process.is_alive():
                self._process.terminate()
                self._process.join(timeout=5)
            self._process = None
