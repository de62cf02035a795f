from __future__ import annotations

import asyncio
import socket
import threading
import time
from email.utils import format_datetime
from datetime import datetime, timedelta, timezone

import httpx
import pytest

from feedback_sources.integrations.http import (
    ErrorKind,
    HttpClient,
    RetryPolicy,
    SourceError,
    full_jitter_delay,
    parse_retry_after,
)

WALL_NOW = 1_800_000_000.0


class Script:
    """A transport that answers from a list of responses (or exceptions) and records each request."""

    def __init__(self, *answers):
        self.answers = list(answers)
        self.seen: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.seen.append(request)
        answer = self.answers.pop(0)
        if isinstance(answer, Exception):
            raise answer
        return answer


def client_for(script: Script, sleeps: list[float], **options) -> HttpClient:
    async def fake_sleep(seconds: float) -> None:
        sleeps.append(seconds)

    return HttpClient(
        source="test",
        base_url="https://vendor.example",
        transport=httpx.MockTransport(script),
        sleep=fake_sleep,
        rand=lambda: 1.0,
        wall_clock=lambda: WALL_NOW,
        retry_policy=options.pop("retry_policy", RetryPolicy(max_attempts=4, base_delay=0.5, max_delay=30)),
        **options,
    )


async def fetch(client: HttpClient, url: str = "/items"):
    async with client:
        return await client.get_json(url)


@pytest.mark.parametrize("status", [429, 500, 502, 503, 504])
async def test_retryable_statuses_are_retried_with_backoff(status: int) -> None:
    script = Script(httpx.Response(status), httpx.Response(status), httpx.Response(200, json={"ok": True}))
    sleeps: list[float] = []
    assert await fetch(client_for(script, sleeps)) == {"ok": True}
    assert len(script.seen) == 3
    assert sleeps == [0.5, 1.0]  # rand pinned to 1.0: the top of each full-jitter interval


@pytest.mark.parametrize("status,kind", [(400, ErrorKind.client), (401, ErrorKind.auth), (403, ErrorKind.forbidden),
                                         (404, ErrorKind.not_found), (422, ErrorKind.client)])
async def test_client_errors_are_not_retried(status: int, kind: ErrorKind) -> None:
    script = Script(httpx.Response(status, json={"error": "no"}))
    sleeps: list[float] = []
    with pytest.raises(SourceError) as raised:
        await fetch(client_for(script, sleeps))
    assert (raised.value.kind, raised.value.status, len(script.seen), sleeps) == (kind, status, 1, [])


async def test_retry_after_seconds_is_honoured() -> None:
    script = Script(httpx.Response(429, headers={"Retry-After": "7"}), httpx.Response(200, json=[]))
    sleeps: list[float] = []
    await fetch(client_for(script, sleeps))
    assert sleeps == [7.0]


async def test_retry_after_http_date_is_honoured() -> None:
    when = datetime.fromtimestamp(WALL_NOW, tz=timezone.utc) + timedelta(seconds=12)
    script = Script(httpx.Response(503, headers={"Retry-After": format_datetime(when, usegmt=True)}),
                    httpx.Response(200, json=[]))
    sleeps: list[float] = []
    await fetch(client_for(script, sleeps))
    assert sleeps == [12.0]


async def test_a_wait_longer_than_the_cap_fails_fast_and_says_when() -> None:
    script = Script(httpx.Response(429, headers={"Retry-After": "86400"}), httpx.Response(200, json=[]))
    sleeps: list[float] = []
    with pytest.raises(SourceError) as raised:
        await fetch(client_for(script, sleeps, retry_policy=RetryPolicy(max_attempts=3, max_server_wait=60)))
    assert raised.value.kind == ErrorKind.rate_limited
    assert "wait 86400s" in str(raised.value)
    assert (sleeps, len(script.seen)) == ([], 1)


async def test_429_without_retry_after_waits_for_the_rate_limit_reset() -> None:
    def reader(response: httpx.Response, wall_now: float):
        reset = response.headers.get("X-RateLimit-Reset")
        return [("default", 100, int(response.headers["X-RateLimit-Remaining"]), float(reset) - wall_now)] if reset else []

    headers = {"X-RateLimit-Remaining": "0", "X-RateLimit-Reset": str(int(WALL_NOW) + 9)}
    script = Script(httpx.Response(429, headers=headers), httpx.Response(200, json=[]))
    sleeps: list[float] = []
    await fetch(client_for(script, sleeps, rate_limit_reader=reader))
    assert sleeps == [9.0]


async def test_paces_before_a_429_when_the_window_is_spent() -> None:
    def reader(response: httpx.Response, wall_now: float):
        return [("default", 10, int(response.headers["remaining"]), 5.0)]

    script = Script(
        httpx.Response(200, json=1, headers={"remaining": "1"}),
        httpx.Response(200, json=2, headers={"remaining": "0"}),
        httpx.Response(200, json=3, headers={"remaining": "9"}),
    )
    sleeps: list[float] = []
    client = client_for(script, sleeps, rate_limit_reader=reader, monotonic=lambda: 100.0)
    async with client:
        assert [await client.get_json("/a"), await client.get_json("/b")] == [1, 2]
        assert sleeps == []
        assert await client.get_json("/c") == 3
    assert sleeps == [5.0]
    assert client.stats.throttled == 0


async def test_connection_errors_are_retried_then_reported() -> None:
    script = Script(*(httpx.ConnectError("refused") for _ in range(4)))
    sleeps: list[float] = []
    with pytest.raises(SourceError) as raised:
        await fetch(client_for(script, sleeps))
    assert raised.value.kind == ErrorKind.network
    assert "gave up after 4 attempts" in str(raised.value)
    assert len(script.seen) == 4 and sleeps == [0.5, 1.0, 2.0]


async def test_connection_reset_then_success() -> None:
    script = Script(httpx.ReadError("connection reset by peer"), httpx.Response(200, json={"n": 1}))
    assert await fetch(client_for(script, [])) == {"n": 1}


async def test_malformed_json_is_retried() -> None:
    script = Script(httpx.Response(200, content=b'{"tickets": [1, 2'), httpx.Response(200, json={"tickets": []}))
    assert await fetch(client_for(script, [])) == {"tickets": []}


async def test_malformed_json_every_time_is_a_typed_error() -> None:
    script = Script(*(httpx.Response(200, content=b"<html>") for _ in range(4)))
    with pytest.raises(SourceError) as raised:
        await fetch(client_for(script, []))
    assert raised.value.kind == ErrorKind.bad_response


def test_full_jitter_stays_inside_its_interval() -> None:
    policy = RetryPolicy(base_delay=0.5, max_delay=8)
    for attempt in range(10):
        ceiling = min(8, 0.5 * 2**attempt)
        assert full_jitter_delay(attempt, policy, lambda: 0.0) == 0.0
        assert full_jitter_delay(attempt, policy, lambda: 0.999999) <= ceiling


def test_parse_retry_after() -> None:
    assert parse_retry_after("3", now=0) == 3.0
    assert parse_retry_after("0.25", now=0) == 0.25
    assert parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT", now=1445412470.0) == 10.0
    assert parse_retry_after("soon", now=0) is None
    assert parse_retry_after(None, now=0) is None


async def test_a_server_that_never_answers_ends_in_a_timeout() -> None:
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen()
    port = listener.getsockname()[1]
    accepted: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        listener.settimeout(0.2)
        while not stop.is_set():
            try:
                accepted.append(listener.accept()[0])
            except OSError:
                continue

    threading.Thread(target=accept, daemon=True).start()
    client = HttpClient(source="test", base_url=f"http://127.0.0.1:{port}", timeout=0.3,
                        retry_policy=RetryPolicy(max_attempts=2, base_delay=0.01))
    started = time.monotonic()
    try:
        with pytest.raises(SourceError) as raised:
            async with client:
                await client.get_json("/never")
    finally:
        stop.set()
        for conn in accepted:
            conn.close()
        listener.close()
    assert raised.value.kind == ErrorKind.timeout
    assert client.stats.requests == 2
    assert time.monotonic() - started < 10  # bounded by the timeout, not by the server
