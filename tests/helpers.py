"""Small helpers that tests of several features share: a sleep that only records, ports, and waiting on a condition."""

from __future__ import annotations

import socket
import time
from collections.abc import Callable
from typing import Any


class RecordingSleep:
    """Stands in for asyncio.sleep: remembers every wait and returns at once."""

    def __init__(self) -> None:
        self.waits: list[float] = []

    async def __call__(self, seconds: float) -> None:
        self.waits.append(seconds)


def free_port() -> int:
    """A port nothing listens on (bound, then released)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def closed_port_url(path: str = "/webhooks/surveymonkey") -> str:
    """An address on 127.0.0.1 where nothing answers."""
    return f"http://127.0.0.1:{free_port()}{path}"


def wait_for(condition: Callable[[], Any], timeout: float = 10.0) -> Any:
    """`condition()`'s first truthy value, polled until `timeout` seconds have passed."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.02)
    raise AssertionError("condition not met in time")
