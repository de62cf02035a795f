"""Serving an emulator over real HTTP on a local port, in a background thread."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

import uvicorn

from .app import create_app
from .core import Emulator

STARTUP_TIMEOUT_SECONDS = 10.0


@contextmanager
def run_emulator_server(emulator: Emulator | None = None, host: str = "127.0.0.1", port: int = 0,
                        log_level: str = "warning") -> Iterator[str]:
    """Serve `emulator` with uvicorn in a daemon thread; yields its root URL, e.g. "http://127.0.0.1:53124".

    port=0 picks a free port. The server stops (and the port is released) when the block exits.
    """
    app = create_app(emulator)
    # An explicit IPPROTO_TCP matters: asyncio only switches Nagle off (TCP_NODELAY) on sockets that say they are
    # TCP, and without it every keep-alive response waits ~40 ms for the client's delayed ACK.
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    listener.bind((host, port))
    bound_port = listener.getsockname()[1]
    config = uvicorn.Config(app, log_level=log_level, access_log=False, http="h11", ws="none", lifespan="off",
                            timeout_graceful_shutdown=1)
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [listener]}, name=f"emulator-{bound_port}",
                              daemon=True)
    thread.start()
    deadline = time.monotonic() + STARTUP_TIMEOUT_SECONDS
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            server.should_exit = True
            listener.close()
            raise RuntimeError("the emulator server did not start")
        time.sleep(0.005)
    try:
        yield f"http://{host}:{bound_port}"
    finally:
        server.should_exit = True
        thread.join(timeout=5)
        listener.close()
