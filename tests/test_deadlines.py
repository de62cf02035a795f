"""Every wait has an end: each request has an overall deadline, not only httpx's per-read timeout.

A server that answers one byte a second never trips a read timeout (each read gets its byte in time), and one that
accepts the connection and says nothing trips it only after the full read timeout, on every attempt. Both now end the
source within the deadline with an error naming the host; the other sources finish and what was stored stays. The
servers are tiny raw asyncio servers on 127.0.0.1; the deadline is set to about a second, the read timeout to 30 s.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import pytest

from feedback_sources.emulator import Emulator, run_emulator_server
from feedback_sources.integrations.base import get_integration_class
from feedback_sources.integrations.http import ErrorKind, HttpClient, RetryPolicy, SourceError
from feedback_sources.store import Store
from feedback_sources.sync import INCREMENTAL_SCOPE, sync, sync_all
from tests.reliability_support import SOURCES, ground_truth, integration_configs, past_config, stored_ids

DEADLINE = 1.2
READ_TIMEOUT = 30.0
# The bound the tests wait before calling a request hung: far above the deadline, far below the read timeout.
BOUND = 15.0
RESPONSE = b'HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 200\r\n\r\n{"conversations": [' + b" " * 181 + b"]}"


@asynccontextmanager
async def tiny_server(behaviour: str) -> AsyncIterator[tuple[str, list[int]]]:
    """A raw server on 127.0.0.1: "silent" accepts and never answers; "trickle" sends its whole answer (from the
    status line on) one byte a second; "trickle_body" sends the headers at once and the body one byte a second.
    Yields its root URL and a list that counts connections."""
    connections: list[int] = []
    handlers: set[asyncio.Task[None]] = set()

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        handlers.add(asyncio.current_task())  # type: ignore[arg-type]
        connections.append(1)
        try:
            await reader.readuntil(b"\r\n\r\n")
            if behaviour == "silent":
                await asyncio.Event().wait()
            answer = RESPONSE
            if behaviour == "trickle_body":
                head, _, answer = RESPONSE.partition(b"\r\n\r\n")
                writer.write(head + b"\r\n\r\n")
            for index in range(len(answer)):
                writer.write(answer[index:index + 1])
                await writer.drain()
                await asyncio.sleep(1.0)
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        yield f"http://127.0.0.1:{port}", connections
    finally:
        server.close()
        for task in handlers:
            task.cancel()
        await asyncio.gather(*handlers, return_exceptions=True)
        await server.wait_closed()


@pytest.mark.parametrize("behaviour", ["silent", "trickle", "trickle_body"])
async def test_a_request_ends_at_its_deadline_with_an_error_naming_the_host(behaviour: str) -> None:
    async with tiny_server(behaviour) as (root, connections):
        client = HttpClient(source="test", base_url=root, timeout=READ_TIMEOUT,
                            retry_policy=RetryPolicy(max_attempts=6, request_deadline=DEADLINE))
        with pytest.raises(SourceError) as raised:
            async with client:
                await asyncio.wait_for(client.get_json("/conversations/search"), BOUND)
    assert raised.value.kind == ErrorKind.timeout
    assert str(raised.value) == f"test: 127.0.0.1 did not answer within {DEADLINE:g} s"
    assert "FEEDBACK_REQUEST_DEADLINE" in raised.value.hint
    # One attempt: a deadline is not retried (six of them would be six deadlines of a sync that looks hung).
    assert (client.stats.requests, len(connections)) == (1, 1)


async def test_without_a_deadline_a_trickle_outlasts_the_read_timeout() -> None:
    async with tiny_server("trickle_body") as (root, _):
        client = HttpClient(source="test", base_url=root, timeout=READ_TIMEOUT,
                            retry_policy=RetryPolicy(request_deadline=None))
        async with client:
            # Without a deadline only the bound below ends the trickle: proof that the read timeout alone never would.
            with pytest.raises(TimeoutError):
                await asyncio.wait_for(client.get_json("/conversations/search"), 2.5)


def test_a_trickling_source_fails_alone_and_what_was_stored_stays(tmp_path: Path,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    emulator = Emulator(past_config(zendesk_tickets=40, intercom_conversations=30, surveymonkey_surveys=1,
                                    surveymonkey_responses_per_survey=30))
    with run_emulator_server(emulator) as emulator_root, Store(tmp_path / "feedback.db") as store:
        configs = integration_configs(emulator, emulator_root)
        first = sync(store, {s: get_integration_class(s)(configs[s]) for s in SOURCES})
        assert {s: r.status for s, r in first.items()} == {s: "complete" for s in SOURCES}
        stored_before = stored_ids(store.conn)
        intercom_cursor = store.get_state("intercom", INCREMENTAL_SCOPE).cursor
        emulator.zendesk.add_ticket()

        # The deadline from the environment, as a user would set it; Intercom now answers one byte a second.
        monkeypatch.setenv("FEEDBACK_REQUEST_DEADLINE", str(DEADLINE))

        async def second_sync() -> dict:
            async with tiny_server("trickle_body") as (trickle_root, _):
                configs["intercom"]["base_url"] = trickle_root
                integrations = {s: get_integration_class(s)(configs[s], timeout=READ_TIMEOUT) for s in SOURCES}
                return await asyncio.wait_for(sync_all(store, integrations), BOUND * 2)

        results = asyncio.run(second_sync())
        assert {s: (r.status, r.error_kind) for s, r in results.items()} == {
            "zendesk": ("complete", None), "intercom": ("failed", "timeout"), "surveymonkey": ("complete", None),
        }
        assert results["intercom"].errors == f"intercom: 127.0.0.1 did not answer within {DEADLINE:g} s"
        assert results["zendesk"].new == 1
        after = stored_ids(store.conn)
        assert after["intercom"] == stored_before["intercom"] == ground_truth(emulator)["intercom"]
        assert after["zendesk"] == ground_truth(emulator)["zendesk"]
        assert store.get_state("intercom", INCREMENTAL_SCOPE).cursor == intercom_cursor
