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
    # A 429's wait is the hint plus jitter (rand pinned to 1.0: the top, min(1 s, 25 % of the hint)).
    assert sleeps == [7.0 + 1.0]


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
    assert sleeps == [9.0 + 1.0]  # the reset, plus the top of the jitter


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


# -- rate limits: wait as long as the vendor says, never give up early ---------------------------------------------


def always(response_factory):
    """A transport handler that answers every request the same way, and counts them."""
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return response_factory()

    handler.seen = seen  # type: ignore[attr-defined]
    return handler


async def test_429s_do_not_spend_the_attempts_meant_for_server_errors() -> None:
    # Two attempts for server errors, yet twenty 429s in a row are waited out and the request succeeds.
    script = Script(*(httpx.Response(429, headers={"Retry-After": "2"}) for _ in range(20)),
                    httpx.Response(503), httpx.Response(200, json={"ok": True}))
    sleeps: list[float] = []
    client = client_for(script, sleeps, retry_policy=RetryPolicy(max_attempts=2, base_delay=0.5))
    assert await fetch(client) == {"ok": True}
    assert len(script.seen) == 22
    assert sleeps == [2.0 + 0.5] * 20 + [0.5]  # each hint plus its jitter (25 % of 2 s at rand 1.0), then backoff
    assert (client.stats.throttled, client.stats.retries) == (20, 21)
    assert client.stats.rate_limit_wait_seconds == pytest.approx(50.0)


async def test_keeps_waiting_while_the_vendor_says_wait_then_gives_up_at_the_cap() -> None:
    handler = always(lambda: httpx.Response(429, headers={"Retry-After": "60"}))
    sleeps: list[float] = []
    client = HttpClient(source="test", base_url="https://vendor.example", transport=httpx.MockTransport(handler),
                        sleep=RecordingSleepList(sleeps), rand=lambda: 0.5, wall_clock=lambda: WALL_NOW,
                        retry_policy=RetryPolicy(max_attempts=2, max_rate_limit_wait=300))
    with pytest.raises(SourceError) as raised:
        await fetch(client)
    # 60 s + 0.5 s of jitter each: four waits fit in 300 s, a fifth would not.
    assert sleeps == [60.5] * 4
    assert len(handler.seen) == 5
    assert raised.value.kind == ErrorKind.rate_limited
    assert "still rate limited after waiting 242s over 4 tries" in str(raised.value)
    assert "the limit for one request is 300s" in str(raised.value)
    assert "FEEDBACK_MAX_RATE_LIMIT_WAIT" in raised.value.hint


async def test_429s_without_any_hint_back_off_and_still_reach_the_cap() -> None:
    # rand pinned to 0.0: every draw waits nothing, yet each 429 counts its backoff ceiling against the cap.
    handler = always(lambda: httpx.Response(429))
    sleeps: list[float] = []
    client = HttpClient(source="test", base_url="https://vendor.example", transport=httpx.MockTransport(handler),
                        sleep=RecordingSleepList(sleeps), rand=lambda: 0.0, wall_clock=lambda: WALL_NOW,
                        retry_policy=RetryPolicy(base_delay=0.5, max_delay=30, max_rate_limit_wait=100))
    with pytest.raises(SourceError) as raised:
        await fetch(client)
    # Ceilings 0.5, 1, 2, 4, 8, 16, 30, 30 add up to 91.5; the next 30 would pass 100.
    assert len(handler.seen) == 9 and sleeps == []  # zero-second waits are not slept at all
    assert raised.value.kind == ErrorKind.rate_limited


async def test_jitter_spreads_requests_told_to_come_back_at_the_same_moment() -> None:
    draws = iter([0.0, 0.5, 0.99, 0.25])
    script = Script(*(httpx.Response(429, headers={"Retry-After": "4"}) for _ in range(4)),
                    httpx.Response(200, json=[]))
    sleeps: list[float] = []
    client = HttpClient(source="test", base_url="https://vendor.example", transport=httpx.MockTransport(script),
                        sleep=RecordingSleepList(sleeps), rand=lambda: next(draws), wall_clock=lambda: WALL_NOW,
                        retry_policy=RetryPolicy())
    await fetch(client)
    assert sleeps == pytest.approx([4.0, 4.5, 4.99, 4.25])  # 4 s + uniform 0..min(1 s, 25 % of 4 s)
    assert all(4.0 <= wait <= 5.0 for wait in sleeps)


class RecordingSleepList:
    def __init__(self, waits: list[float]):
        self.waits = waits

    async def __call__(self, seconds: float) -> None:
        self.waits.append(seconds)


def test_the_adaptive_limit_halves_once_per_round_and_grows_back() -> None:
    from feedback_sources.integrations.http import AdaptiveConcurrency

    async def scenario() -> list[int]:
        limit = AdaptiveConcurrency(8)
        tickets = [await limit.acquire() for _ in range(8)]
        for _ in tickets:
            limit.release()
        seen = [limit.limit]
        for ticket in tickets:  # eight 429s from one round of requests: one decrease
            limit.rate_limited(ticket)
        seen.append(limit.limit)
        later = await limit.acquire()  # sent after the decrease: its 429 is news
        limit.release()
        limit.rate_limited(later)
        seen.append(limit.limit)
        for _ in range(2 + 3 + 4 + 5 + 6 + 7):  # a full round of successes per added slot
            limit.succeeded()
        seen.append(limit.limit)
        seen.append(limit.lowest)
        return seen

    assert asyncio.run(scenario()) == [8, 4, 2, 8, 2]


async def test_concurrency_drops_while_limited_and_comes_back_after_successes() -> None:
    """A server that allows three requests at once and answers 429 beyond that: the client backs off to what the
    server takes, then returns to its configured concurrency once the 429s stop."""
    in_flight = 0
    peak_by_phase: dict[str, int] = {"limited": 0, "after": 0}
    phase = "limited"
    served = 0

    async def handler(request: httpx.Request) -> httpx.Response:
        nonlocal in_flight, served
        in_flight += 1
        try:
            peak_by_phase[phase] = max(peak_by_phase[phase], in_flight)
            for _ in range(3):
                await asyncio.sleep(0)
            if phase == "limited" and in_flight > 3:
                return httpx.Response(429, headers={"Retry-After": "1"})
            served += 1
            return httpx.Response(200, json=served)
        finally:
            in_flight -= 1

    sleeps: list[float] = []
    client = HttpClient(source="test", base_url="https://vendor.example", transport=httpx.MockTransport(handler),
                        sleep=RecordingSleepList(sleeps), rand=lambda: 0.5, wall_clock=lambda: WALL_NOW,
                        max_concurrency=8, retry_policy=RetryPolicy(max_attempts=2))
    async with client:
        first = await asyncio.gather(*(client.get_json(f"/a/{i}") for i in range(40)))
        lowest = client.concurrency.lowest
        phase = "after"
        for _ in range(6):
            await asyncio.gather(*(client.get_json(f"/b/{i}") for i in range(8)))
    assert len(first) == 40  # every request got its answer; 429s spent no attempts (max_attempts=2)
    assert client.stats.throttled > 0 and lowest <= 4
    assert client.concurrency.limit == 8 and peak_by_phase["after"] == 8
    assert client.stats.lowest_concurrency == lowest


async def test_long_rate_limit_waits_are_announced_once_and_cleared() -> None:
    script = Script(httpx.Response(429, headers={"Retry-After": "30"}), httpx.Response(429, headers={"Retry-After": "0.2"}),
                    httpx.Response(200, json=[]))
    announced: list[float] = []
    client = client_for(script, [], on_rate_limit_wait=announced.append)
    await fetch(client)
    assert announced == [31.0, 0.0]  # the 0.2 s wait is too short to mention


@pytest.mark.parametrize("vendor", ["zendesk", "intercom", "surveymonkey"])
async def test_each_vendors_own_429_signal_sets_the_wait(vendor: str) -> None:
    """Zendesk's Retry-After, Intercom's X-RateLimit-Reset (a unix time, no Retry-After) and SurveyMonkey's
    X-Ratelimit-App-Global-Minute-Reset (seconds), read by each integration's own header reader."""
    from feedback_sources.sources.intercom import integration as intercom
    from feedback_sources.sources.surveymonkey import api as surveymonkey
    from feedback_sources.sources.zendesk import api as zendesk

    headers, reader = {
        "zendesk": ({"Retry-After": "17", "X-Rate-Limit": "700", "X-Rate-Limit-Remaining": "0"},
                    zendesk.read_rate_limits),
        "intercom": ({"X-RateLimit-Limit": "166", "X-RateLimit-Remaining": "0",
                      "X-RateLimit-Reset": str(int(WALL_NOW) + 17)}, intercom.read_rate_limits),
        "surveymonkey": ({"X-Ratelimit-App-Global-Minute-Limit": "120", "X-Ratelimit-App-Global-Minute-Remaining": "0",
                          "X-Ratelimit-App-Global-Minute-Reset": "17", "X-Ratelimit-App-Global-Day-Limit": "500",
                          "X-Ratelimit-App-Global-Day-Remaining": "300",
                          "X-Ratelimit-App-Global-Day-Reset": "40000"}, surveymonkey.read_rate_limits),
    }[vendor]
    script = Script(httpx.Response(429, headers=headers), httpx.Response(200, json=[]))
    sleeps: list[float] = []
    await fetch(client_for(script, sleeps, rate_limit_reader=reader, retry_policy=RetryPolicy(max_attempts=1)))
    assert sleeps == [17.0 + 1.0]  # the vendor's reset plus the top of the jitter; max_attempts=1 spent nothing


def test_the_rate_limit_cap_and_the_deadline_come_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FEEDBACK_MAX_RATE_LIMIT_WAIT", "1800")
    monkeypatch.setenv("FEEDBACK_REQUEST_DEADLINE", "5")
    policy = RetryPolicy.from_env(max_attempts=3)
    assert (policy.max_rate_limit_wait, policy.request_deadline, policy.max_attempts) == (1800.0, 5.0, 3)
    monkeypatch.setenv("FEEDBACK_MAX_RATE_LIMIT_WAIT", "forever")
    with pytest.raises(ValueError, match="FEEDBACK_MAX_RATE_LIMIT_WAIT must be a number of seconds"):
        RetryPolicy.from_env()
    monkeypatch.setenv("FEEDBACK_MAX_RATE_LIMIT_WAIT", "-1")
    with pytest.raises(ValueError, match="more than 0"):
        RetryPolicy.from_env()
    monkeypatch.delenv("FEEDBACK_MAX_RATE_LIMIT_WAIT")
    monkeypatch.delenv("FEEDBACK_REQUEST_DEADLINE")
    assert (RetryPolicy.from_env().max_rate_limit_wait, RetryPolicy.from_env().request_deadline) == (900.0, 60.0)
