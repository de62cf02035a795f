"""The webhook receiver under a flood: forged deliveries, half-sent requests, trickled heads and bodies.

Every test runs a real receiver on 127.0.0.1 (uvicorn with the receiver's connection guard) and talks to it over
real sockets. Counts and timeouts are bounded; nothing asserts on wall time.
"""

from __future__ import annotations

import json
import os
import resource
import signal
import socket
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest

from feedback_sources.webhooks.app import ClientLimiter, create_receiver_app
from feedback_sources.webhooks.server import (
    FD_RESERVE,
    ConnectionGuard,
    ConnectionLimits,
    connection_cap,
    raise_fd_limit,
    serving,
)
from scripts.webhook_load import (
    ReceiverOptions,
    ReceiverProcess,
    Signing,
    close_all,
    closed_by_server,
    half_open_connections,
    intercom_event,
    zendesk_event,
)
from tests.helpers import free_port, wait_for

HALF_OPEN = 1_100
DEFAULT_FD_LIMIT = 1_024


class FixedClock:
    def __init__(self) -> None:
        self.now = time.time()

    def __call__(self) -> float:
        return self.now


def stored_ids(db_path: Path) -> set[tuple[str, str]]:
    with sqlite3.connect(db_path) as conn:
        return {tuple(row) for row in conn.execute("SELECT source, source_id FROM feedback")}  # type: ignore[misc]


@contextmanager
def flood_receiver(
    tmp_path: Path, signing: Signing, *, limits: ConnectionLimits = ConnectionLimits(), **options: Any
) -> Iterator[tuple[httpx.Client, ConnectionGuard, Path]]:
    db_path = tmp_path / "feedback.db"
    options.setdefault("heartbeat_interval", 60.0)
    app = create_receiver_app(db_path, signing.receiver_secrets(), **options)
    with serving(app, limits=limits) as (url, guard), httpx.Client(base_url=url, timeout=5.0) as http:
        yield http, guard, db_path


def deliver(http: httpx.Client, signing: Signing, source: str, body: bytes, **headers: str) -> httpx.Response:
    return http.post(f"/webhooks/{source}", content=body, headers={**signing.headers(source, body), **headers})


# -- forged floods -----------------------------------------------------------------------------------------------------


def forged_requests(signing: Signing, count: int) -> Iterator[tuple[dict[str, str], bytes]]:
    """Unsigned, wrongly signed, and signed-for-other-bytes Zendesk deliveries, in turn."""
    for number in range(count):
        body = zendesk_event(900 + number, int(time.time())).body
        kind = number % 3
        if kind == 0:
            yield {"Content-Type": "application/json"}, body
        elif kind == 1:
            headers = signing.headers("zendesk", body)
            headers["X-Zendesk-Webhook-Signature"] = "bm90IGEgc2lnbmF0dXJl"
            yield headers, body
        else:
            yield signing.headers("zendesk", body), body.replace(b"Load ticket", b"Evil ticket")


def test_a_forged_flood_never_costs_a_valid_delivery_its_token(tmp_path: Path):
    signing = Signing.random()
    failures_allowed, flood = 10, 40
    # The source allows 5 deliveries a minute: if the forged flood spent its tokens, the valid one would get 429.
    with flood_receiver(tmp_path, signing, rate_per_minute=5, failed_per_minute=failures_allowed) as (http, _, db):
        answers = [
            http.post("/webhooks/zendesk", content=body, headers=headers) for headers, body in forged_requests(signing, flood)
        ]
        # Another client (a tunnel on this machine names it in X-Forwarded-For) still gets its own allowance.
        other_client = deliver(http, signing, "zendesk", b"{}", **{"X-Forwarded-For": "203.0.113.7",
                                                                    "X-Zendesk-Webhook-Signature": "Zm9yZ2Vk"})
        valid = zendesk_event(1, int(time.time()))
        accepted = deliver(http, signing, "zendesk", valid.body)
        valid_from_the_flooded_address = [
            deliver(http, signing, "zendesk", zendesk_event(n, int(time.time())).body).status_code for n in range(2, 6)
        ]
        sixth = deliver(http, signing, "zendesk", zendesk_event(6, int(time.time())).body)
        stored = stored_ids(db)

    statuses = [answer.status_code for answer in answers]
    assert statuses == [401] * failures_allowed + [429] * (flood - failures_allowed)
    assert {answer.json()["error"] for answer in answers[failures_allowed:]} == {"too many failed signatures"}
    assert all(int(answer.headers["retry-after"]) >= 1 for answer in answers[failures_allowed:])
    assert other_client.status_code == 401
    assert (accepted.status_code, accepted.json()) == (200, {"ok": True, "verdict": "stored"})
    # The source's own limit still holds for valid deliveries: five a minute, the sixth waits.
    assert valid_from_the_flooded_address == [200] * 4
    assert sixth.status_code == 429
    assert stored == {("zendesk", str(1_000_000 + n)) for n in range(1, 6)}


def test_unsigned_junk_is_refused_before_its_body_is_read(tmp_path: Path):
    signing = Signing.random()
    with flood_receiver(tmp_path, signing) as (http, _, _db):
        host, port = str(http.base_url).removeprefix("http://").rstrip("/").split(":")
        # A head promising a body that never comes: without a signature header it is answered at once.
        with socket.create_connection((host, int(port)), timeout=5) as sock:
            sock.sendall(b"POST /webhooks/surveymonkey HTTP/1.1\r\nHost: x\r\nContent-Length: 500000\r\n\r\n{")
            head, body = read_response(sock)
    assert head.startswith(b"HTTP/1.1 401 ")
    assert json.loads(body) == {"ok": False, "error": "signature verification failed"}


def read_response(sock: socket.socket) -> tuple[bytes, bytes]:
    """One whole HTTP/1.1 response with a Content-Length: its head and its body."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        assert chunk, "the connection closed before the answer's head"
        data += chunk
    head, body = data.split(b"\r\n\r\n", 1)
    length = next(int(line.split(b":", 1)[1]) for line in head.split(b"\r\n") if line.lower().startswith(b"content-length:"))
    while len(body) < length:
        chunk = sock.recv(65536)
        assert chunk, "the connection closed before the answer's body"
        body += chunk
    return head, body


def test_the_failure_limiter_forgets_the_least_recent_client_first():
    clock = FixedClock()
    limiter = ClientLimiter(2, clock, max_clients=3)
    spent = {client: [limiter.take(client) for _ in range(3)] for client in ("a", "b", "c")}
    assert [waits[-1] > 0 for waits in spent.values()] == [True, True, True]  # two failures a minute, then a wait
    limiter.take("a")  # "a" seen again: "b" is now the least recent
    limiter.take("d")
    assert list(limiter.buckets) == ["c", "a", "d"]
    assert limiter.take("b") == 0.0  # forgotten, so it starts again with a full bucket


# -- slow and half-sent requests ---------------------------------------------------------------------------------------


def trickle_until_closed(sock: socket.socket, head: bytes, byte: bytes, *, interval: float, most: int) -> tuple[int, bytes]:
    """Send `head`, then one `byte` every `interval` seconds until the server ends the stream or `most` were sent.

    Returns how many bytes were trickled, and what the server answered before closing (b"" if it never closed).
    """
    sock.sendall(head)
    sock.settimeout(interval)
    answer = b""
    for sent in range(most):
        try:
            chunk = sock.recv(65536)
            if not chunk:
                return sent, answer
            answer += chunk
            continue
        except TimeoutError:
            pass
        except OSError:
            return sent, answer
        try:
            sock.sendall(byte)
        except OSError:
            return sent, answer
    return most, b""


def test_a_head_trickled_a_byte_at_a_time_is_cut_off_at_the_header_deadline(tmp_path: Path):
    signing = Signing.random()
    limits = ConnectionLimits(header_timeout=1.0)
    with flood_receiver(tmp_path, signing, limits=limits) as (http, guard, _db):
        host, port = str(http.base_url).removeprefix("http://").rstrip("/").split(":")
        with socket.create_connection((host, int(port)), timeout=5) as sock:
            # 40 bytes at 0.2 s would take 8 s: a deadline moved by each byte would never close it.
            sent, answer = trickle_until_closed(
                sock, b"POST /webhooks/intercom HTTP/1.1\r\nHost: x\r\nX-Padding: ", b"a", interval=0.2, most=40
            )
        health = http.get("/healthz")
    assert sent < 40, "the trickled head was never cut off"
    assert answer == b""
    assert guard.stats()["header_timeouts"] == 1
    assert health.status_code == 200


def test_a_trickled_body_gets_408_from_the_app_and_the_connection_is_closed(tmp_path: Path):
    signing = Signing.random()
    limits = ConnectionLimits(header_timeout=1.0, body_timeout=30.0)
    with flood_receiver(tmp_path, signing, limits=limits, body_timeout=1.0) as (http, guard, _db):
        host, port = str(http.base_url).removeprefix("http://").rstrip("/").split(":")
        head = (
            b"POST /webhooks/intercom HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            b"X-Hub-Signature: sha1=" + b"0" * 40 + b"\r\nContent-Length: 400\r\n\r\n{"
        )
        with socket.create_connection((host, int(port)), timeout=5) as sock:
            sent, answer = trickle_until_closed(sock, head, b" ", interval=0.2, most=60)
    assert sent < 60, "the trickled body was never cut off"
    assert answer.startswith(b"HTTP/1.1 408 ")
    # The app answered; the connection, with the rest of the body still owed, then missed its next head's deadline.
    assert guard.stats()["header_timeouts"] == 1


def test_a_body_the_app_never_finishes_reading_is_cut_off_by_the_protocol(tmp_path: Path):
    signing = Signing.random()
    # The app would wait 60 s for the body; the connection's own body deadline (1 s) ends it first.
    limits = ConnectionLimits(header_timeout=5.0, body_timeout=1.0)
    with flood_receiver(tmp_path, signing, limits=limits, body_timeout=60.0) as (http, guard, db):
        host, port = str(http.base_url).removeprefix("http://").rstrip("/").split(":")
        head = (
            b"POST /webhooks/intercom HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            b"X-Hub-Signature: sha1=" + b"0" * 40 + b"\r\nContent-Length: 400\r\n\r\n{"
        )
        with socket.create_connection((host, int(port)), timeout=5) as sock:
            sent, answer = trickle_until_closed(sock, head, b" ", interval=0.2, most=60)
        valid = deliver(http, signing, "intercom", intercom_event(7, int(time.time())).body)
        stored = stored_ids(db)
    assert sent < 60, "the trickled body was never cut off"
    assert answer == b""
    assert guard.stats()["body_timeouts"] == 1
    assert valid.status_code == 200
    assert stored == {("intercom", "2000007")}


def test_the_cap_closes_the_longest_waiting_connection_to_make_room(tmp_path: Path):
    signing = Signing.random()
    limits = ConnectionLimits(header_timeout=60.0, max_connections=20)
    with flood_receiver(tmp_path, signing, limits=limits) as (http, guard, db):
        held = half_open_connections(str(http.base_url).rstrip("/"), 50)
        try:
            health = http.get("/healthz")
            valid = deliver(http, signing, "zendesk", zendesk_event(3, int(time.time())).body)
            stats = guard.stats()
            closed = closed_by_server(held)
            closed_flags = [_closed(sock) for sock in held]
        finally:
            close_all(held)
        stored = stored_ids(db)
    assert (health.status_code, valid.status_code) == (200, 200)
    assert stored == {("zendesk", "1000003")}
    assert stats["cap"] == 20
    assert stats["most_open"] == 20
    assert stats["refused"] == 0
    # 50 held + the client's connection, 20 at a time: at least 31 closed, the client's never; the oldest go first.
    assert closed >= 31
    assert closed_flags[:30] == [True] * 30
    assert closed_flags[-15:] == [False] * 15


def _closed(sock: socket.socket) -> bool:
    try:
        return sock.recv(1, socket.MSG_PEEK) == b""
    except BlockingIOError:
        return False
    except OSError:
        return True


def test_the_cap_fits_under_the_file_descriptor_limit():
    limits = ConnectionLimits(max_connections=1000, backlog=128)
    assert connection_cap(limits, None) == 1000
    assert connection_cap(limits, 100_000) == 1000
    assert connection_cap(limits, DEFAULT_FD_LIMIT) == DEFAULT_FD_LIMIT - 2 * 128 - FD_RESERVE
    assert limits.fds_needed() == 1000 + 2 * 128 + FD_RESERVE
    with pytest.raises(ValueError, match="ulimit -n"):
        connection_cap(limits, 256)


def _open_fds(pid: int) -> int | None:
    fd_dir = Path(f"/proc/{pid}/fd")
    return len(os.listdir(fd_dir)) if fd_dir.is_dir() else None


def test_1100_half_sent_requests_under_a_1024_fd_limit_leave_the_receiver_answering(tmp_path: Path):
    """The receiver in its own process under a soft limit of 1,024 file descriptors, as a default shell gives."""
    fd_limit = raise_fd_limit(HALF_OPEN + 256)
    if fd_limit is not None and fd_limit < HALF_OPEN + 256:
        pytest.skip(f"this process may open only {fd_limit} files, too few for {HALF_OPEN} sockets (hard limit)")
    signing = Signing.random()
    db_path = tmp_path / "feedback.db"
    # Deadlines far beyond the test, so the held connections stay held and only the cap makes room.
    options = ReceiverOptions(
        fd_limit=DEFAULT_FD_LIMIT, body_timeout=120.0, limits=ConnectionLimits(header_timeout=120.0, body_timeout=125.0)
    )
    receiver = ReceiverProcess(db_path, signing, options)
    with receiver as url:
        held = half_open_connections(url, HALF_OPEN)
        try:
            receiver_fds = _open_fds(receiver.pid or 0)
            with httpx.Client(base_url=url, timeout=5.0) as http:
                health = http.get("/healthz")
                deliveries = [
                    deliver(http, signing, source, event.body)
                    for source, event in (("zendesk", zendesk_event(11, int(time.time()))),
                                          ("intercom", intercom_event(12, int(time.time()))))
                ]
            closed = closed_by_server(held)
        finally:
            close_all(held)
    stats = receiver.stats
    assert health.status_code == 200
    assert [response.status_code for response in deliveries] == [200, 200]
    assert stored_ids(db_path) == {("zendesk", "1000011"), ("intercom", "2000012")}
    assert stats["accept_errors"] == 0  # asyncio never hit "too many open files"
    assert stats["most_open"] <= stats["cap"]
    assert stats["refused"] == 0
    assert closed >= HALF_OPEN - stats["cap"]
    assert stats["evicted"] >= HALF_OPEN - stats["cap"]
    if receiver_fds is not None:
        assert receiver_fds < DEFAULT_FD_LIMIT
    assert stats["cap"] == DEFAULT_FD_LIMIT - 2 * options.limits.backlog - FD_RESERVE


def _serve_webhooks_with_fd_limit(tmp_path: Path, soft: int, hard: int) -> tuple[str, int | None]:
    """Run `serve-webhooks` started under the given RLIMIT_NOFILE; its stderr and the soft limit it then ran under."""
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ZENDESK_", "INTERCOM_", "SURVEYMONKEY_"))}
    env.update(PYTHON_KEYRING_BACKEND="keyring.backends.null.Keyring", PYTHONPATH=str(Path(__file__).resolve().parents[1]))

    def limit_files() -> None:
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))

    process = subprocess.Popen(
        [sys.executable, "-m", "feedback_sources", "serve-webhooks", "--port", str(port), "--db", str(tmp_path / "cli.db")],
        cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, preexec_fn=limit_files,
    )
    try:
        def healthy() -> bool:
            try:
                return httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200
            except httpx.HTTPError:
                return False

        wait_for(healthy, timeout=20)
        limits_file = Path(f"/proc/{process.pid}/limits")
        running_soft = None
        if limits_file.exists():
            line = next(line for line in limits_file.read_text().splitlines() if line.startswith("Max open files"))
            running_soft = int(line.split()[3])
    finally:
        process.send_signal(signal.SIGINT)
        _, err = process.communicate(timeout=30)
    assert process.returncode == 0, err
    return err, running_soft


@pytest.mark.skipif(not Path("/proc/self/limits").exists(), reason="reads the process's limits from /proc")
def test_serve_webhooks_raises_a_default_1024_fd_limit_and_says_when_it_cannot(tmp_path: Path):
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    needed = ConnectionLimits().fds_needed()
    if hard != resource.RLIM_INFINITY and hard < needed:
        pytest.skip(f"the hard file-descriptor limit ({hard}) is below the {needed} the receiver asks for")
    raised_err, raised_soft = _serve_webhooks_with_fd_limit(tmp_path, DEFAULT_FD_LIMIT, needed)
    capped_err, capped_soft = _serve_webhooks_with_fd_limit(tmp_path, DEFAULT_FD_LIMIT, DEFAULT_FD_LIMIT)

    assert raised_soft == needed
    assert "open connections" not in raised_err
    assert capped_soft == DEFAULT_FD_LIMIT
    cap = DEFAULT_FD_LIMIT - 2 * ConnectionLimits().backlog - FD_RESERVE
    assert f"At most {cap} open connections (file-descriptor limit {DEFAULT_FD_LIMIT}; `ulimit -n {needed}`" in capped_err
