"""The connector acceptance suite: the same checks for every registered integration, over real HTTP.

Parametrized over `available_integrations()`, so integrations registered through the entry-point group run here
too. Each built-in source has a harness that knows how to point it at the emulator and read the emulator's ground
truth; an integration without one gets the configuration check only and skips the rest, saying why.
"""

from __future__ import annotations

import asyncio
import copy
import json
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from feedback_sources.emulator import Emulator, create_app, run_emulator_server
from feedback_sources.integrations import ConfigError, RetryPolicy, SourceError, available_integrations
from feedback_sources.integrations.base import BaseIntegration, parse_iso
from feedback_sources.models import NormalizedRecord
from feedback_sources.sources.surveymonkey.cursor import SyncCursor
from feedback_sources.store import Store
from feedback_sources.sync import INCREMENTAL_SCOPE, SourceResult, sync
from tests.helpers import RecordingSleep, free_port
from tests.reliability_support import (
    duplicate_keys,
    ground_truth,
    integration_configs,
    latest_runs,
    past_config,
    rows_without_sync_time,
    stored_ids,
)

INTEGRATIONS = sorted(available_integrations())
YEAR_2100 = datetime(2100, 1, 1, tzinfo=timezone.utc)
SCOPELESS_INTERCOM_TOKEN = "intercom-token-without-read-scopes"
SCOPELESS_SURVEYMONKEY_TOKEN = "surveymonkey-token-without-read-scopes"


@dataclass(frozen=True)
class Harness:
    """What the acceptance suite needs to know about one integration to test it against the emulator."""

    # Bad configurations derived from a good one: label -> (change to the config, the error kind it must give).
    bad_credentials: Callable[[dict[str, str], str], dict[str, tuple[dict[str, str], str]]]
    # Change one stored record at the source; returns its id and a check that the stored row shows the change.
    touch: Callable[[Emulator, list[str]], tuple[str, Callable[[dict[str, Any]], bool]]]
    # The cursor's high-water mark, comparable across syncs.
    high_water: Callable[[dict[str, Any]], Any]
    future_cursor: dict[str, Any]
    corrupted_cursors: tuple[Any, ...]


def nothing_listening() -> str:
    return f"http://127.0.0.1:{free_port()}"


def zendesk_bad(good: dict[str, str], root: str) -> dict[str, tuple[dict[str, str], str]]:
    return {
        "wrong API token": ({**good, "api_token": "not-the-token"}, "auth"),
        "wrong email": ({**good, "email": "someone.else@demo.example"}, "auth"),
        "unknown subdomain": ({**good, "subdomain": "nosuchdesk", "base_url": f"{root}/zendesk/{{subdomain}}"},
                              "wrong_subdomain"),
        "address of another service": ({**good, "base_url": f"{root}/not-an-api"}, "wrong_subdomain"),
        "nothing listening": ({**good, "base_url": f"{nothing_listening()}/zendesk/demo"}, "network"),
    }


def intercom_bad(good: dict[str, str], root: str) -> dict[str, tuple[dict[str, str], str]]:
    return {
        "wrong access token": ({**good, "access_token": "not-the-token"}, "auth"),
        "token without read permissions": ({**good, "access_token": SCOPELESS_INTERCOM_TOKEN}, "forbidden"),
        "address of another service": ({**good, "base_url": f"{root}/not-an-api"}, "not_found"),
        "nothing listening": ({**good, "base_url": f"{nothing_listening()}/intercom"}, "network"),
    }


def surveymonkey_bad(good: dict[str, str], root: str) -> dict[str, tuple[dict[str, str], str]]:
    return {
        "wrong access token": ({**good, "access_token": "not-the-token"}, "auth"),
        "token without read scopes": ({**good, "access_token": SCOPELESS_SURVEYMONKEY_TOKEN}, "forbidden"),
        "address of another service": ({**good, "base_url": f"{root}/not-an-api"}, "bad_response"),
        "nothing listening": ({**good, "base_url": f"{nothing_listening()}/surveymonkey/v3"}, "network"),
    }


def touch_ticket(emulator: Emulator, stored: list[str]) -> tuple[str, Callable[[dict[str, Any]], bool]]:
    ticket_id = stored[0]
    emulator.zendesk.update_ticket(int(ticket_id), subject="Updated at the source")
    return ticket_id, lambda row: row["title"] == "Updated at the source"


def touch_conversation(emulator: Emulator, stored: list[str]) -> tuple[str, Callable[[dict[str, Any]], bool]]:
    conversation_id = stored[0]
    # Two seconds back: a sync's window ends at the second it starts, so a change stamped that same second would
    # (correctly) wait for the following sync.
    emulator.intercom.update_conversation(conversation_id, updated_at=int(time.time()) - 2, state="touched-at-source")
    return conversation_id, lambda row: row["metadata"]["state"] == "touched-at-source"


def touch_response(emulator: Emulator, stored: list[str]) -> tuple[str, Callable[[dict[str, Any]], bool]]:
    survey_id = emulator.surveymonkey.survey_ids()[0]
    response_id = emulator.surveymonkey.responses_in_range(survey_id)[0]
    emulator.surveymonkey.update_response(survey_id, response_id, response_status="partial")
    return response_id, lambda row: row["metadata"]["response_status"] == "partial"


GENERALLY_CORRUPTED: tuple[Any, ...] = ("not an object", ["a", "list"], {"unexpected": 1})

HARNESSES: dict[str, Harness] = {
    "zendesk": Harness(
        bad_credentials=zendesk_bad,
        touch=touch_ticket,
        high_water=lambda cursor: cursor["start_time"],
        future_cursor={"after_cursor": None, "start_time": int(YEAR_2100.timestamp())},
        corrupted_cursors=(*GENERALLY_CORRUPTED, {"after_cursor": 7, "start_time": "yesterday"}),
    ),
    "intercom": Harness(
        bad_credentials=intercom_bad,
        touch=touch_conversation,
        high_water=lambda cursor: cursor["high_water"],
        future_cursor={"updated_after": int(YEAR_2100.timestamp()), "updated_before": None, "starting_after": None,
                       "high_water": int(YEAR_2100.timestamp())},
        corrupted_cursors=(*GENERALLY_CORRUPTED, {"updated_after": -5, "updated_before": None,
                                                  "starting_after": None, "high_water": "x"}),
    ),
    "surveymonkey": Harness(
        bad_credentials=surveymonkey_bad,
        touch=touch_response,
        high_water=lambda cursor: parse_iso(cursor["modified_after"]),
        future_cursor=SyncCursor(modified_after=YEAR_2100).to_json(),
        corrupted_cursors=(*GENERALLY_CORRUPTED, {"modified_after": "not a date", "surveys": [], "survey_id": None,
                                                  "page": None}),
    ),
}


def harness_for(name: str) -> Harness:
    harness = HARNESSES.get(name)
    if harness is None:
        from feedback_sources.sources import registry

        if registry()[name].kind == "file":
            pytest.skip(f"{name} reads files the PM provides, not the emulator: the standard contract "
                        "(test_source_contract.py) and its own import tests cover it")
        pytest.skip(f"{name} is a third-party integration with no emulator harness here; only its configuration "
                    "check runs")
    return harness


@dataclass
class Bench:
    name: str
    emulator: Emulator
    root: str
    store: Store
    sleep: RecordingSleep

    @property
    def good_config(self) -> dict[str, str]:
        return integration_configs(self.emulator, self.root)[self.name]

    def integration(self, config: dict[str, str] | None = None) -> BaseIntegration:
        cls = available_integrations()[self.name]
        return cls(config or self.good_config, sleep=self.sleep)

    def sync(self, **kwargs: Any) -> SourceResult:
        return sync(self.store, {self.name: self.integration()}, **kwargs)[self.name]

    def ids(self) -> list[str]:
        return stored_ids(self.store.conn, [self.name])[self.name]

    def cursor(self) -> dict[str, Any]:
        state = self.store.get_state(self.name, INCREMENTAL_SCOPE)
        assert state is not None and state.cursor is not None
        return state.cursor

    def set_cursor(self, cursor: Any) -> None:
        """Save `cursor` as the position a completed incremental sync left behind."""
        self.store.begin_state(self.name, INCREMENTAL_SCOPE, {"start": None}, cursor)
        self.store.finish_state(self.name, INCREMENTAL_SCOPE, "complete")


@pytest.fixture(params=INTEGRATIONS)
def bench(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Bench]:
    name = request.param
    harness_for(name)
    emulator = Emulator(past_config(
        intercom_scopeless_tokens={SCOPELESS_INTERCOM_TOKEN},
        surveymonkey_scopeless_tokens={SCOPELESS_SURVEYMONKEY_TOKEN},
    ))
    with run_emulator_server(emulator) as root, Store(tmp_path / "feedback.db") as store:
        yield Bench(name, emulator, root, store, RecordingSleep())


# -- configuration and connection ------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", INTEGRATIONS)
def test_missing_configuration_is_a_typed_error_naming_the_fields(name: str) -> None:
    cls = available_integrations()[name]
    if not cls.required_fields:
        pytest.skip(f"{name} needs no configuration")
    with pytest.raises(ConfigError) as raised:
        cls({})
    assert (raised.value.source, raised.value.missing) == (name, list(cls.required_fields))


async def test_connection_check_succeeds_with_good_credentials(bench: Bench) -> None:
    result = await bench.integration().test_connection()
    assert (result.ok, result.kind) == (True, "ok")
    assert result.message.startswith("Connected to ")


async def test_connection_check_fails_with_a_typed_error_for_each_bad_credential(bench: Bench) -> None:
    cases = HARNESSES[bench.name].bad_credentials(bench.good_config, bench.root)
    outcomes = {}
    for label, (config, _) in cases.items():
        result = await bench.integration(config).test_connection()
        secret = config.get("api_token") or config.get("access_token") or ""
        outcomes[label] = (result.ok, result.kind, bool(result.message), bool(result.hint), secret in result.message)
    assert outcomes == {label: (False, kind, True, True, False) for label, (_, kind) in cases.items()}


# -- reading -----------------------------------------------------------------------------------------------------------


def test_a_full_read_of_a_range_returns_exactly_the_vendors_records(bench: Bench) -> None:
    config = bench.emulator.config
    assert config.start is not None and config.end is not None
    span = config.end - config.start
    start = (config.start + span * 0.4).replace(microsecond=0)
    end = (start + span * 0.2).replace(microsecond=0)
    expected = ground_truth(bench.emulator, start, end)[bench.name]

    result = bench.sync(start=start, end=end)

    assert (result.status, result.new) == ("complete", len(expected))
    assert 0 < len(expected) < len(ground_truth(bench.emulator)[bench.name])
    assert bench.ids() == expected
    assert duplicate_keys(bench.store.conn) == []


async def test_range_bounds_without_a_timezone_are_taken_as_utc(bench: Bench) -> None:
    config = bench.emulator.config
    assert config.start is not None and config.end is not None
    start = (config.start + (config.end - config.start) * 0.4).replace(microsecond=0)
    end = start + (config.end - config.start) * 0.2

    async def read(first: datetime, last: datetime) -> list[str]:
        return sorted([r.source_id async for page in bench.integration().iter_pages(first, last) for r in page.records])

    in_utc = await read(start, end)
    assert in_utc and await read(start.replace(tzinfo=None), end.replace(tzinfo=None)) == in_utc


def test_two_incremental_syncs_change_nothing_and_an_update_is_an_update(bench: Bench) -> None:
    harness = HARNESSES[bench.name]
    first = bench.sync(incremental=False)
    assert (first.status, bench.ids()) == ("complete", ground_truth(bench.emulator)[bench.name])
    after_first, mark_first = rows_without_sync_time(bench.store.conn), harness.high_water(bench.cursor())

    second = bench.sync()
    assert (second.status, second.mode, second.new, second.updated) == ("complete", "incremental", 0, 0)
    assert rows_without_sync_time(bench.store.conn) == after_first
    mark_second = harness.high_water(bench.cursor())
    assert mark_second >= mark_first

    touched, shows_change = harness.touch(bench.emulator, bench.ids())
    third = bench.sync()
    assert (third.status, third.mode, third.new, third.updated) == ("complete", "incremental", 0, 1)
    assert bench.ids() == ground_truth(bench.emulator)[bench.name]
    assert duplicate_keys(bench.store.conn) == []
    row = bench.store.get_record(bench.name, touched)
    assert row is not None and shows_change(row), row
    assert harness.high_water(bench.cursor()) >= mark_second


# -- saved positions that cannot be used -------------------------------------------------------------------------------


def test_a_cursor_from_the_future_reads_nothing_and_stays(bench: Bench) -> None:
    future = HARNESSES[bench.name].future_cursor
    bench.set_cursor(future)
    result = bench.sync()
    assert (result.status, result.mode, result.fetched, result.errors) == ("complete", "incremental", 0, None)
    assert bench.cursor() == future
    assert bench.ids() == []

    since_2100 = bench.sync(start=YEAR_2100)
    assert (since_2100.status, since_2100.fetched) == ("complete", 0)


def test_a_corrupted_cursor_fails_with_a_clear_message_and_loses_nothing(bench: Bench) -> None:
    bench.sync(incremental=False)
    before = rows_without_sync_time(bench.store.conn)
    outcomes = {}
    for cursor in HARNESSES[bench.name].corrupted_cursors:
        bench.set_cursor(cursor)
        result = bench.sync()
        run = latest_runs(bench.store.conn)[bench.name]
        outcomes[repr(cursor)] = (result.status, result.error_kind, "sync position" in (result.errors or ""),
                                  run["status"], run["errors"] == result.errors, bench.cursor() == cursor)
    assert outcomes == {
        repr(cursor): ("failed", "client", True, "failed", True, True)
        for cursor in HARNESSES[bench.name].corrupted_cursors
    }
    assert rows_without_sync_time(bench.store.conn) == before


def test_a_full_sync_gets_past_a_corrupted_cursor(bench: Bench) -> None:
    """The error tells the user to run a full sync; `sync --full` (incremental=False, no start) must then work."""
    bench.set_cursor(HARNESSES[bench.name].corrupted_cursors[-1])
    assert bench.sync().status == "failed"
    recovered = bench.sync(incremental=False)
    assert (recovered.status, recovered.errors) == ("complete", None)
    assert bench.ids() == ground_truth(bench.emulator)[bench.name]


def test_a_range_pulled_twice_stores_the_same_rows_once(bench: Bench) -> None:
    config = bench.emulator.config
    assert config.end is not None
    start, end = config.end - timedelta(days=5), config.end
    bench.sync(start=start, end=end)
    first = rows_without_sync_time(bench.store.conn)
    again = bench.sync(start=start, end=end)
    assert (again.status, again.new, again.updated) == ("complete", 0, 0)
    assert rows_without_sync_time(bench.store.conn) == first
    assert len(first) == len(ground_truth(bench.emulator, start, end)[bench.name])
    assert duplicate_keys(bench.store.conn) == []


# -- damaged pages through the whole integration -------------------------------------------------------------------
# The per-vendor mapping tests fuzz one record at a time; here whole response bodies (pages, details, contacts,
# survey lists) are damaged on the way in, and the integration must still yield valid records or stop with a typed
# SourceError: never another exception, never a hang.

GARBAGE = st.one_of(
    st.none(), st.booleans(), st.integers(min_value=-(2**63), max_value=2**63), st.floats(allow_nan=True),
    st.text(max_size=8), st.lists(st.integers(), max_size=2), st.dictionaries(st.text(max_size=3), st.integers(),
                                                                              max_size=2),
)


def json_paths(value: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    found = [prefix]
    if isinstance(value, dict):
        for key, item in value.items():
            found += json_paths(item, (*prefix, key))
    elif isinstance(value, list):
        for position, item in enumerate(value):
            found += json_paths(item, (*prefix, position))
    return found


def damage(document: Any, data: st.DataObject) -> Any:
    """A few fields removed, nulled or retyped, anywhere in the body (the body itself included)."""
    document = copy.deepcopy(document)
    chooser = data.draw(st.randoms(use_true_random=False))  # uniform over paths, unlike sampled_from's shrinking bias
    for _ in range(data.draw(st.integers(min_value=1, max_value=3))):
        path = chooser.choice(json_paths(document))
        action = data.draw(st.sampled_from(["remove", "null", "retype"]))
        if not path:
            document = None if action == "null" else data.draw(GARBAGE)
            continue
        parent = document
        for step in path[:-1]:
            parent = parent[step]
        if action == "remove":
            del parent[path[-1]]
        else:
            parent[path[-1]] = None if action == "null" else data.draw(GARBAGE)
    return document


class DamagingTransport(httpx.AsyncBaseTransport):
    """The emulator in-process, with some of its JSON answers damaged as hypothesis decides."""

    def __init__(self, emulator: Emulator, data: st.DataObject):
        self.inner = httpx.ASGITransport(app=create_app(emulator))
        self.data = data
        self.damaged = 0

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        response = await self.inner.handle_async_request(request)
        body = await response.aread()
        try:
            payload = json.loads(body)
        except ValueError:
            return httpx.Response(response.status_code, headers=response.headers, content=body, request=request)
        if self.data.draw(st.booleans(), label=f"damage {request.url.path}"):
            payload = damage(payload, self.data)
            self.damaged += 1
        headers = [(k, v) for k, v in response.headers.items() if k.lower() not in ("content-length", "content-encoding")]
        return httpx.Response(response.status_code, headers=headers, content=json.dumps(payload).encode(),
                              request=request)


TINY = {"zendesk_tickets": 6, "intercom_conversations": 4, "surveymonkey_surveys": 1,
        "surveymonkey_responses_per_survey": 5}


@pytest.mark.parametrize("name", sorted(HARNESSES))
@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow,
                                                                 HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_a_damaged_answer_becomes_records_or_a_typed_error(name: str, data: st.DataObject) -> None:
    emulator = Emulator(past_config(**TINY))
    transport = DamagingTransport(emulator, data)
    config = integration_configs(emulator, "http://emulator.local")[name]
    integration = available_integrations()[name](
        config, transport=transport, sleep=RecordingSleep(), retry_policy=RetryPolicy(max_attempts=3))

    async def read_everything() -> list[NormalizedRecord]:
        return [record async for page in integration.iter_pages() for record in page.records]

    try:
        records = asyncio.run(asyncio.wait_for(read_everything(), timeout=20))
    except SourceError as error:
        assert error.kind and str(error)
        return
    assert all(isinstance(record, NormalizedRecord) and record.source == name for record in records)
    with Store(":memory:") as store:  # and the store takes whatever came out
        store.upsert_records(records)
        assert store.count() == len({record.source_id for record in records})
