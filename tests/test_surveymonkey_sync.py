"""SurveyMonkey sync: rate-limit headers, error bodies, the cursor, and full syncs against the emulator over HTTP."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import httpx
import pytest

from feedback_sources.emulator import DEMO_SURVEYMONKEY_TOKEN, Emulator, EmulatorConfig, run_emulator_server
from feedback_sources.integrations.base import ConfigError, ConnectionResult, Page, parse_iso
from feedback_sources.integrations.http import ErrorKind, SourceError
from feedback_sources.sources.surveymonkey.cursor import CLOCK_SKEW_ALLOWANCE, SyncCursor
from feedback_sources.sources.surveymonkey.api import api_datetime, describe_error, read_rate_limits
from feedback_sources.sources.surveymonkey.integration import SurveyMonkeyIntegration
from feedback_sources.sources.surveymonkey.mapping import map_response
from feedback_sources.models import NormalizedRecord, RemovalReason, Tier
from feedback_sources.overrides import override_record
from feedback_sources.rules import DEFAULT_RULES
from feedback_sources.store import Store
from feedback_sources.sync import sync
from tests.helpers import RecordingSleep
from tests.reliability_support import past_config

UTC = timezone.utc
WALL_NOW = datetime(2024, 5, 2, 22, 0, tzinfo=UTC).timestamp()  # two hours before the daily reset


def sm_response(status: int, path: str, body: Any = None, headers: dict[str, str] | None = None) -> httpx.Response:
    request = httpx.Request("GET", f"https://api.surveymonkey.com/v3{path}")
    if body is None:
        return httpx.Response(status, headers=headers, request=request)
    return httpx.Response(status, json=body, headers=headers, request=request)


def limit_headers(minute: tuple[int, int, int], day: tuple[int, int, int] | None) -> dict[str, str]:
    headers = {}
    windows = {"Minute": minute, **({"Day": day} if day else {})}
    for name, (limit, remaining, reset) in windows.items():
        headers[f"X-Ratelimit-App-Global-{name}-Limit"] = str(limit)
        headers[f"X-Ratelimit-App-Global-{name}-Remaining"] = str(remaining)
        headers[f"X-Ratelimit-App-Global-{name}-Reset"] = str(reset)
    return headers


def sm_error(error_id: str, status: int, message: str) -> dict[str, Any]:
    return {
        "error": {
            "id": error_id,
            "name": "Error",
            "docs": "https://developer.surveymonkey.com/api/v3/#error-codes",
            "message": message,
            "http_status_code": status,
        }
    }


# -- configuration ---------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("config", "base_url"),
    [
        ({}, "https://api.surveymonkey.com/v3"),
        ({"region": "EU"}, "https://api.eu.surveymonkey.com/v3"),
        ({"region": "ca"}, "https://api.surveymonkey.ca/v3"),
        ({"region": "eu", "base_url": "http://127.0.0.1:9/surveymonkey/v3"}, "http://127.0.0.1:9/surveymonkey/v3"),
    ],
)
def test_base_url_follows_the_region_unless_given(
    config: dict[str, str], base_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("SURVEYMONKEY_BASE_URL", raising=False)
    assert SurveyMonkeyIntegration({"access_token": "t", **config}).base_url == base_url


def test_the_environment_overrides_the_region_default(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SURVEYMONKEY_BASE_URL", "http://127.0.0.1:9/surveymonkey/v3")
    integration = SurveyMonkeyIntegration({"access_token": "t", "region": "eu"})
    assert integration.base_url == "http://127.0.0.1:9/surveymonkey/v3"


@pytest.mark.parametrize(
    ("config", "missing"), [({}, ["access_token"]), ({"access_token": " "}, ["access_token"]),
                            ({"access_token": "t", "region": "au"}, ["region"])]
)
def test_bad_configuration_names_the_field(config: dict[str, str], missing: list[str]) -> None:
    with pytest.raises(ConfigError) as raised:
        SurveyMonkeyIntegration(config)
    assert raised.value.missing == missing


# -- rate-limit headers ----------------------------------------------------------------------------------------------


def test_both_windows_are_read() -> None:
    response = sm_response(200, "/surveys", {"data": []}, limit_headers((120, 87, 41), (500, 312, 7200)))
    # The day's reset is left out while requests remain: a minute's 429 must not wait until midnight.
    assert read_rate_limits(response, WALL_NOW) == [("minute", 120, 87, 41.0), ("day", 500, 312, 0.0)]


def test_missing_headers_are_not_required() -> None:
    assert read_rate_limits(sm_response(200, "/surveys", {"data": []}), WALL_NOW) == []
    only_day = {"X-Ratelimit-App-Global-Day-Remaining": "0"}
    # Without a reset header the day window ends at midnight UTC (two hours away); the minute one in 60 s.
    assert read_rate_limits(sm_response(200, "/surveys", {}, only_day), WALL_NOW) == [("day", None, 0, 7200.0)]


def test_a_429_with_the_day_spent_fails_at_once() -> None:
    response = sm_response(429, "/surveys/1/responses/bulk", sm_error("1040", 429, "Too many requests"),
                           limit_headers((120, 90, 30), (500, 0, 7260)))
    with pytest.raises(SourceError) as raised:
        read_rate_limits(response, WALL_NOW)
    assert raised.value.kind == ErrorKind.rate_limited
    assert str(raised.value) == (
        "surveymonkey: SurveyMonkey's daily request budget (500 requests) is spent; it resets in 2 h 1 min "
        "(at midnight UTC). The next sync continues where this one stopped (HTTP 429)"
    )


def test_a_429_from_the_minute_window_is_left_to_the_retries() -> None:
    response = sm_response(429, "/surveys", sm_error("1040", 429, "Too many requests"),
                           limit_headers((120, 0, 12), (500, 200, 7200)))
    assert read_rate_limits(response, WALL_NOW) == [("minute", 120, 0, 12.0), ("day", 500, 200, 0.0)]


# -- error bodies ----------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "path", "body", "kind", "message"),
    [
        (401, "/users/me", sm_error("1011", 401, "The authorization token provided was invalid."), ErrorKind.auth,
         "the access token was rejected — SurveyMonkey says: The authorization token provided was invalid."),
        (401, "/users/me", sm_error("1012", 401, "The authorization token provided has expired."), ErrorKind.auth,
         "the access token has expired — SurveyMonkey says: The authorization token provided has expired."),
        (403, "/surveys/9/responses/bulk", sm_error("1014", 403, "Permission has not been granted."),
         ErrorKind.forbidden,
         "the app was not granted the `responses_read_detail` (View Response Details) permission"
         " — SurveyMonkey says: Permission has not been granted."),
        (403, "/surveys", sm_error("1014", 403, "Permission has not been granted."), ErrorKind.forbidden,
         "the app was not granted the `surveys_read` (View Surveys) permission"
         " — SurveyMonkey says: Permission has not been granted."),
        (403, "/surveys/9/responses/bulk", sm_error("1015", 403, "Upgrade required."), ErrorKind.forbidden,
         "the account's plan does not allow `responses_read_detail` (View Response Details) through the API"
         " — SurveyMonkey says: Upgrade required."),
        (403, "/users/me", sm_error("1018", 403, "Wrong host for this region."), ErrorKind.config,
         "this account is hosted in another SurveyMonkey region — SurveyMonkey says: Wrong host for this region."),
        (404, "/surveys/9/details", sm_error("1020", 404, "Resource not found."), ErrorKind.not_found,
         "SurveyMonkey did not find this resource — SurveyMonkey says: Resource not found."),
        (404, "/users/me", None, ErrorKind.bad_response, "the base URL did not answer like SurveyMonkey's API"),
        (503, "/surveys", sm_error("1051", 503, "Service unreachable."), ErrorKind.server,
         "SurveyMonkey's server kept failing — SurveyMonkey says: Service unreachable."),
        (400, "/surveys", sm_error("1003", 400, "Invalid URL parameters."), ErrorKind.client,
         "SurveyMonkey refused the request — SurveyMonkey says: Invalid URL parameters."),
    ],
)
def test_error_bodies_become_actionable_errors(
    status: int, path: str, body: Any, kind: ErrorKind, message: str
) -> None:
    error = describe_error(sm_response(status, path, body))
    assert (error.kind, error.message, error.status, error.source) == (kind, message, status, "surveymonkey")
    assert error.hint


def test_forbidden_hint_lists_every_scope_to_grant() -> None:
    error = describe_error(sm_response(403, "/surveys", sm_error("1014", 403, "No.")))
    assert error.hint == (
        "In the developer portal, set these scopes to Required: View Users (users_read), View Surveys "
        "(surveys_read), View Responses (responses_read), View Response Details (responses_read_detail); "
        "then copy the access token again."
    )


def test_error_messages_never_repeat_the_token() -> None:
    body = sm_error("1011", 401, "Token sk-live-123 is invalid")
    error = describe_error(sm_response(401, "/users/me", body), secrets=("sk-live-123",))
    assert "sk-live-123" not in str(error)
    assert error.message.endswith("Token [redacted] is invalid")


# -- cursor ----------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "cursor",
    [
        "2024-01-01",
        ["survey"],
        {"after_cursor": "abc"},
        {"modified_after": 1714600000},
        {"modified_after": "last tuesday"},
        {"surveys": "1,2"},
        {"surveys": ["1"], "survey_id": None},
        {"survey_id": "1"},
        {"survey_id": "1", "page": 0},
        {"survey_id": "1", "page": "2"},
        {"survey_id": 1, "page": 2},
    ],
)
def test_a_corrupted_cursor_is_a_client_error(cursor: Any) -> None:
    with pytest.raises(SourceError) as raised:
        SyncCursor.parse(cursor)
    assert raised.value.kind == ErrorKind.client
    assert raised.value.message.startswith("the saved SurveyMonkey sync position is not valid (")


def test_cursor_round_trips_through_json() -> None:
    cursor = {
        "modified_after": "2024-05-01T00:00:00+00:00",
        "created_start": "2024-04-01T00:00:00+00:00",
        "created_end": None,
        "surveys": ["12", "13"],
        "survey_id": "11",
        "page": 3,
        "high_water": "2024-05-02T10:00:00+00:00",
        "pass_started_at": "2024-05-02T10:05:00+00:00",
    }
    assert SyncCursor.parse(cursor).to_json() == cursor


PASS_START = datetime(2024, 5, 2, 12, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("modified_after", "high_water", "expected"),
    [
        # The latest change seen, less a second so a record tied with it comes again.
        (None, datetime(2024, 5, 2, 9, 0, 0, tzinfo=UTC), datetime(2024, 5, 2, 8, 59, 59, tzinfo=UTC)),
        # Changes seen after the pass began are capped at its start (less the clock allowance).
        (None, PASS_START + timedelta(minutes=1), PASS_START - CLOCK_SKEW_ALLOWANCE - timedelta(seconds=1)),
        # Nothing seen: the saved point stays where it was, also when it lies in the future.
        (datetime(2100, 1, 1, tzinfo=UTC), None, datetime(2100, 1, 1, tzinfo=UTC)),
        (None, None, None),
        # Never backwards.
        (datetime(2024, 5, 2, 9, 0, 0, tzinfo=UTC), datetime(2024, 5, 2, 9, 0, 0, tzinfo=UTC),
         datetime(2024, 5, 2, 9, 0, 0, tzinfo=UTC)),
    ],
)
def test_a_finished_pass_saves_where_the_next_sync_continues(
    modified_after: datetime | None, high_water: datetime | None, expected: datetime | None
) -> None:
    in_pass = SyncCursor(modified_after=modified_after, survey_id="1", page=4, high_water=high_water,
                         pass_started_at=PASS_START, created_start=PASS_START - timedelta(days=3))
    assert in_pass.next_survey() == SyncCursor(modified_after=expected)


# -- against the emulator, over HTTP on 127.0.0.1 --------------------------------------------------------------------


@pytest.fixture
def emulator() -> Emulator:
    return Emulator(EmulatorConfig(seed=11))


@pytest.fixture
def base_url(emulator: Emulator) -> Iterator[str]:
    with run_emulator_server(emulator) as root:
        yield emulator.base_urls(root)["surveymonkey"]


@pytest.fixture
def sleep() -> RecordingSleep:
    return RecordingSleep()


@pytest.fixture
def make(base_url: str, sleep: RecordingSleep):
    def build(token: str = DEMO_SURVEYMONKEY_TOKEN, **kwargs: Any) -> SurveyMonkeyIntegration:
        options: dict[str, Any] = {"sleep": sleep, **kwargs}
        return SurveyMonkeyIntegration({"access_token": token, "base_url": base_url}, **options)

    return build


async def collect(integration: SurveyMonkeyIntegration, **kwargs: Any) -> list[Page]:
    return [page async for page in integration.iter_pages(**kwargs)]


def records_of(pages: list[Page]) -> list[NormalizedRecord]:
    return [record for page in pages for record in page.records]


def calls(emulator: Emulator) -> list[tuple[str, str | None]]:
    return [(request.endpoint, request.query.get("page")) for request in emulator.requests]


def survey_calls(survey_id: str, pages: int, details_after: int | None = 1) -> list[tuple[str, str | None]]:
    sequence: list[tuple[str, str | None]] = []
    for page in range(1, pages + 1):
        sequence.append((f"/surveys/{survey_id}/responses/bulk", str(page)))
        if page == details_after:
            sequence.append((f"/surveys/{survey_id}/details", None))
    # Once the last page is read: one look at what changed while the survey was being paged.
    sequence.append((f"/surveys/{survey_id}/responses/bulk", "1"))
    return sequence


async def test_connection_names_the_account(make, emulator: Emulator) -> None:
    assert await make().test_connection() == ConnectionResult(
        ok=True,
        kind="ok",
        message="Connected to SurveyMonkey as acme_research",
        account="acme_research",
        details={
            "username": "acme_research",
            "email": "pat.morgan@acmecloud.example",
            "surveys": 3,
            "account_type": "enterprise_platinum",
            "rate_limit": {},
            "day_requests_remaining": None,
        },
    )
    first = emulator.surveymonkey.survey_ids()[0]
    # users/me, then one survey and one response: proves the scopes a sync needs, for two small requests.
    assert calls(emulator) == [("/users/me", None), ("/surveys", None), (f"/surveys/{first}/responses/bulk", None)]


async def test_a_bad_token_is_an_auth_failure(make) -> None:
    result = await make(token="not-a-token").test_connection()
    assert result == ConnectionResult(
        ok=False,
        kind="auth",
        message="surveymonkey: the access token was rejected — SurveyMonkey says: "
        "The authorization token provided was invalid. (HTTP 401)",
        hint="Copy the access token again from your app's Settings in the SurveyMonkey developer portal.",
    )


async def test_a_wrong_base_url_says_so(emulator: Emulator, sleep: RecordingSleep) -> None:
    with run_emulator_server(emulator) as root:
        integration = SurveyMonkeyIntegration({"access_token": DEMO_SURVEYMONKEY_TOKEN, "base_url": f"{root}/v3"},
                                              sleep=sleep)
        result = await integration.test_connection()
    assert (result.ok, result.kind, result.message) == (
        False, "bad_response", "surveymonkey: the base URL did not answer like SurveyMonkey's API (HTTP 404)")


async def test_a_token_without_read_scopes_names_the_missing_scope() -> None:
    emulator = Emulator(EmulatorConfig(seed=11, surveymonkey_scopeless_tokens={"scopeless"}))
    with run_emulator_server(emulator) as root:
        integration = SurveyMonkeyIntegration(
            {"access_token": "scopeless", "base_url": emulator.base_urls(root)["surveymonkey"]}, sleep=RecordingSleep())
        result = await integration.test_connection()  # users/me answers, but the survey scope is missing
        assert (result.ok, result.kind) == (False, "forbidden")
        assert "surveys_read" in result.message
        with pytest.raises(SourceError) as raised:
            await collect(integration)
    assert raised.value.kind == ErrorKind.forbidden
    assert raised.value.message.startswith("the app was not granted the `surveys_read` (View Surveys) permission")


async def test_full_sync_fetches_every_response_once_and_details_once_per_survey(make, emulator: Emulator) -> None:
    integration = make()
    pages = await collect(integration)

    ids = [record.source_id for record in records_of(pages)]
    assert sorted(ids) == emulator.surveymonkey.responses_in_range()
    # Disqualified responses come as removals, not records: every listed response is one or the other, once.
    removals = [removal for page in pages for removal in page.removals]
    removed = [removal.source_id for removal in removals]
    assert removed and sorted(removed) == emulator.surveymonkey.disqualified_ids()
    assert {removal.reason for removal in removals} == {RemovalReason.disqualified}
    assert len(ids) + len(removed) == len(set(ids) | set(removed)) == 750
    first, second, third = emulator.surveymonkey.survey_ids()
    assert calls(emulator) == [
        ("/surveys", "1"), *survey_calls(first, 3), *survey_calls(second, 3), *survey_calls(third, 3)
    ]
    # The API's totals (250 a survey) less the disqualified responses seen so far: what the store should hold.
    totals = [page.vendor_total for page in pages]
    assert totals[0] <= 250 and totals[3] <= 500 and totals[-1] == len(ids)
    dataset = emulator.surveymonkey
    assert totals[2::3] == [len(dataset.responses_in_range(first)),
                            len(dataset.responses_in_range(first) + dataset.responses_in_range(second)), len(ids)]
    bulk = next(r for r in emulator.requests if r.endpoint.endswith("/bulk"))
    assert bulk.query == {"per_page": "100", "sort_by": "date_modified", "sort_order": "DESC", "page": "1"}
    listing = emulator.requests[0]
    assert listing.query == {"per_page": "1000", "include": "response_count", "page": "1"}

    last = pages[-1].cursor
    high_water = max(record.updated_at for record in records_of(pages))
    assert last == {
        "modified_after": last["modified_after"], "created_start": None, "created_end": None, "surveys": [],
        "survey_id": None, "page": None, "high_water": None, "pass_started_at": None,
    }
    assert parse_iso(last["modified_after"]) <= high_water - timedelta(seconds=1)
    assert integration.last_stats["requests"] == 16


async def test_mapped_records_read_like_the_survey(make, emulator: Emulator) -> None:
    records = records_of(await collect(make()))
    with_nps = [record for record in records if record.metadata["nps"] is not None]
    assert with_nps and all(record.title == "Customer satisfaction (NPS)" for record in with_nps)
    sample = with_nps[0]
    vendor = emulator.surveymonkey.response(sample.metadata["survey_id"], sample.source_id)
    assert vendor is not None
    assert sample.created_at == parse_iso(vendor["date_created"])
    assert sample.metadata["url"] == vendor["analyze_url"]
    heading = "How likely are you to recommend Acme Cloud to a friend or colleague?"
    assert sample.metadata["answers"][heading] == sample.metadata["nps"]
    assert sample.metadata["nps_question"] == heading

    def leaves(value: Any) -> list[Any]:
        if isinstance(value, dict):
            return [leaf for key, item in value.items() for leaf in [key, *leaves(item)]]
        return [leaf for item in value for leaf in leaves(item)] if isinstance(value, list) else [value]

    # Every id was joined with the survey's details: no answer falls back to naming one.
    found = [leaf for record in records for leaf in leaves(record.metadata["answers"])]
    assert not [leaf for leaf in found if isinstance(leaf, str) and leaf.startswith(("choice ", "row ", "column ",
                                                                                      "question "))]


async def test_a_date_range_is_sent_to_the_api_and_checked_again(make, emulator: Emulator) -> None:
    # Fractions of a second: the API takes whole seconds, so the window sent is widened and the records re-checked.
    end = (datetime.now(UTC) - timedelta(days=10)).replace(microsecond=250_000)
    start = end - timedelta(days=30)
    pages = await collect(make(), start=start, end=end)

    ids = sorted(record.source_id for record in records_of(pages))
    assert ids == emulator.surveymonkey.responses_in_range(start=start, end=end)
    assert all(start <= record.created_at < end for record in records_of(pages))
    assert pages[-1].vendor_total == len(ids)
    bulk = [r for r in emulator.requests if r.endpoint.endswith("/bulk")]
    assert {(r.query["start_created_at"], r.query["end_created_at"]) for r in bulk} == {
        (api_datetime(start), api_datetime(end + timedelta(seconds=1)))
    }
    assert api_datetime(start) == start.strftime("%Y-%m-%dT%H:%M:%S")


async def test_details_are_fetched_only_for_surveys_with_responses_in_range(make, emulator: Emulator) -> None:
    first = emulator.surveymonkey.survey_ids()[0]
    one = emulator.surveymonkey.response(first, emulator.surveymonkey.responses_in_range(first)[0])
    assert one is not None
    start = parse_iso(one["date_created"])
    assert start is not None
    end = start + timedelta(seconds=1)
    pages = await collect(make(), start=start, end=end)

    dataset = emulator.surveymonkey
    answered = [s for s in dataset.survey_ids() if dataset.responses_in_range(s, start, end)]
    assert first in answered
    assert [r.endpoint for r in emulator.requests if r.endpoint.endswith("/details")] == [
        f"/surveys/{s}/details" for s in answered
    ]
    assert sorted(r.source_id for r in records_of(pages)) == emulator.surveymonkey.responses_in_range(
        start=start, end=end)


async def test_surveys_nobody_answered_cost_no_request(sleep: RecordingSleep) -> None:
    emulator = Emulator(EmulatorConfig(seed=11, surveymonkey_responses_per_survey=0))
    with run_emulator_server(emulator) as root:
        integration = SurveyMonkeyIntegration(
            {"access_token": DEMO_SURVEYMONKEY_TOKEN, "base_url": emulator.base_urls(root)["surveymonkey"]},
            sleep=sleep)
        pages = await collect(integration)
    assert [(page.records, page.vendor_total) for page in pages] == [([], 0)]
    assert pages[0].cursor["modified_after"] is None
    assert calls(emulator) == [("/surveys", "1")]


async def test_a_resumed_sync_continues_after_the_last_stored_page(make, emulator: Emulator) -> None:
    full = await collect(make())
    first, second, third = emulator.surveymonkey.survey_ids()
    # Stop after the second survey's first page, as if the process were killed once that page was stored.
    cursor = full[3].cursor
    assert (cursor["survey_id"], cursor["page"], cursor["surveys"]) == (second, 2, [third])
    emulator.clear_requests()

    resumed = await collect(make(), cursor=cursor)

    assert [r.source_id for r in records_of(resumed)] == [r.source_id for r in records_of(full[4:])]
    assert calls(emulator) == [*survey_calls(second, 3, details_after=2)[1:], *survey_calls(third, 3)]
    assert resumed[-1].cursor == full[-1].cursor | {"modified_after": resumed[-1].cursor["modified_after"]}


async def test_an_incremental_sync_picks_up_changed_and_new_responses(make, emulator: Emulator) -> None:
    first_run = records_of(pages := await collect(make()))
    cursor = pages[-1].cursor
    since = parse_iso(cursor["modified_after"])
    assert since is not None
    survey = emulator.surveymonkey.survey_ids()[1]
    changed_id = emulator.surveymonkey.responses_in_range(survey)[0]
    emulator.surveymonkey.update_response(survey, changed_id, custom_variables={"plan": "Enterprise"})
    added = emulator.surveymonkey.add_response(survey)
    emulator.clear_requests()

    second_run = records_of(await collect(make(), cursor=cursor))

    by_id = {record.source_id: record for record in second_run}
    recently_changed = {record.source_id for record in first_run if record.updated_at >= since}
    assert set(by_id) == recently_changed | {changed_id, added["id"]}
    assert by_id[changed_id].customer_tier == Tier.enterprise
    bulk = [r for r in emulator.requests if r.endpoint.endswith("/bulk")]
    paging = [r for r in bulk if r.query["start_modified_at"] == api_datetime(since)]
    catch_up = [r for r in bulk if r.query["start_modified_at"] != api_datetime(since)]
    assert len(catch_up) == len({r.endpoint for r in bulk})  # one look per survey at changes made while paging
    assert all(r.query["start_modified_at"] > api_datetime(since) for r in catch_up) and paging


async def test_a_record_tied_with_the_saved_point_comes_again(make) -> None:
    # With the pass start far away, the saved point is the latest change seen, less the one-second overlap.
    late_clock = lambda: datetime(2100, 1, 1, tzinfo=UTC)  # noqa: E731
    first_run = records_of(pages := await collect(make(clock=late_clock)))
    newest = max(first_run, key=lambda record: record.updated_at)
    assert parse_iso(pages[-1].cursor["modified_after"]) == newest.updated_at - timedelta(seconds=1)

    second_run = records_of(await collect(make(clock=late_clock), cursor=pages[-1].cursor))
    assert newest.source_id in {record.source_id for record in second_run}


async def test_a_cursor_from_the_future_yields_nothing_and_stays(make, emulator: Emulator) -> None:
    future = {"modified_after": "2100-01-01T00:00:00+00:00"}
    pages = await collect(make(), cursor=future)
    assert records_of(pages) == []
    assert pages[-1].cursor["modified_after"] == "2100-01-01T00:00:00+00:00"
    assert not [r for r in emulator.requests if r.endpoint.endswith("/details")]


async def test_server_errors_throttling_and_broken_bodies_are_retried(
    make, emulator: Emulator, sleep: RecordingSleep
) -> None:
    emulator.faults.inject("surveymonkey", r"^/surveys$", "malformed")
    emulator.faults.inject("surveymonkey", r"/responses/bulk", 503, times=2)
    emulator.faults.inject("surveymonkey", r"/details", "retry_after_seconds", seconds=7)
    emulator.faults.inject("surveymonkey", r"/responses/bulk", "truncated")
    emulator.faults.inject("surveymonkey", r"/responses/bulk", "reset")
    integration = make()

    ids = sorted(r.source_id for r in records_of(await collect(integration)))

    assert ids == emulator.surveymonkey.responses_in_range()
    # The server's Retry-After (7 s) plus up to 1 s of jitter, among the backoff waits.
    assert len(sleep.waits) == 6 and any(7.0 <= wait <= 8.0 for wait in sleep.waits)
    assert integration.last_stats["retries"] == 6
    assert integration.last_stats["throttled"] == 1


async def test_odd_paging_answers_lose_no_response(make, emulator: Emulator) -> None:
    first, second, third = emulator.surveymonkey.survey_ids()
    # Empty pages whose next link is the same page; then, for the second survey, page 2 answered with page 1's body
    # (the first repeat_page has no earlier body to repeat), whose next link points back to page 2.
    emulator.faults.inject("surveymonkey", r"/responses/bulk", "empty_page_with_next", times=2)
    emulator.faults.inject("surveymonkey", rf"/surveys/{second}/responses/bulk", "repeat_page", times=2)

    ids = [r.source_id for r in records_of(await collect(make()))]

    assert sorted(set(ids)) == emulator.surveymonkey.responses_in_range()
    # The repeated page (the 100 last changed, disqualified ones aside) comes twice, deduplicated by the store.
    survey = emulator.surveymonkey.survey(second)
    newest = sorted(survey.responses.all_entries(), reverse=True)[:100]
    repeated = [entry[1] for entry in newest if not survey.is_disqualified(entry[1])]
    assert len(ids) == len(set(ids)) + len(repeated)
    bulk = f"/surveys/{second}/responses/bulk"
    assert [(r.endpoint, r.query.get("page"), r.fault) for r in emulator.requests] == [
        ("/surveys", "1", None),
        (f"/surveys/{first}/responses/bulk", "1", "empty_page_with_next"),
        (f"/surveys/{first}/responses/bulk", "1", "empty_page_with_next"),
        *[(endpoint, page, None) for endpoint, page in survey_calls(first, 3)],
        (bulk, "1", "repeat_page"),
        (f"/surveys/{second}/details", None, None),
        (bulk, "2", "repeat_page"),
        (bulk, "2", None),
        (bulk, "3", None),
        (bulk, "1", None),
        *[(endpoint, page, None) for endpoint, page in survey_calls(third, 3)],
    ]


async def test_a_next_link_that_never_moves_on_is_a_bad_response(make, emulator: Emulator) -> None:
    emulator.faults.inject("surveymonkey", r"/responses/bulk", "empty_page_with_next", times=None)
    with pytest.raises(SourceError) as raised:
        await collect(make())
    first = emulator.surveymonkey.survey_ids()[0]
    assert raised.value.kind == ErrorKind.bad_response
    assert raised.value.message == f"SurveyMonkey kept answering survey {first} responses page 1 without moving on"
    assert emulator.request_count("surveymonkey", r"/responses/bulk") == 6


async def test_a_survey_whose_details_are_gone_keeps_answer_ids(make, emulator: Emulator) -> None:
    first = emulator.surveymonkey.survey_ids()[0]
    emulator.faults.inject("surveymonkey", rf"/surveys/{first}/details", 404)
    records = [r for r in records_of(await collect(make())) if r.metadata["survey_id"] == first]
    assert sorted(r.source_id for r in records) == emulator.surveymonkey.responses_in_range(first)
    assert {record.title for record in records} == {"Customer satisfaction (NPS)"}  # from the survey list
    assert all(heading.startswith("question ") for r in records for heading in r.metadata["answers"])
    assert all(block.startswith("question ") for r in records if r.content for block in r.content.split("\n\n"))


async def test_a_survey_deleted_during_the_sync_is_stepped_over(make, emulator: Emulator) -> None:
    first, second, third = emulator.surveymonkey.survey_ids()
    emulator.faults.inject("surveymonkey", rf"/surveys/{second}/responses/bulk", 404)
    ids = sorted(r.source_id for r in records_of(await collect(make())))
    dataset = emulator.surveymonkey
    assert ids == sorted(dataset.responses_in_range(first) + dataset.responses_in_range(third))


async def test_a_resumed_sync_against_a_wrong_address_fails_instead_of_skipping(
    emulator: Emulator, sleep: RecordingSleep
) -> None:
    second, third = emulator.surveymonkey.survey_ids()[1:]
    cursor = {"survey_id": second, "page": 2, "surveys": [third], "high_water": "2024-05-01T00:00:00+00:00"}
    with run_emulator_server(emulator) as root:
        integration = SurveyMonkeyIntegration({"access_token": DEMO_SURVEYMONKEY_TOKEN, "base_url": f"{root}/v3"},
                                              sleep=sleep)
        with pytest.raises(SourceError) as raised:
            await collect(integration, cursor=cursor)
    assert raised.value.kind == ErrorKind.bad_response


async def test_range_bounds_without_a_timezone_are_utc(make, emulator: Emulator) -> None:
    end = datetime.now(UTC).replace(microsecond=0) - timedelta(days=5)
    start = end - timedelta(days=20)
    naive = records_of(await collect(make(), start=start.replace(tzinfo=None), end=end.replace(tzinfo=None)))
    assert sorted(r.source_id for r in naive) == emulator.surveymonkey.responses_in_range(start=start, end=end)


async def test_persistent_failures_give_up_with_the_cursor_of_the_last_good_page(make, emulator: Emulator) -> None:
    third = emulator.surveymonkey.survey_ids()[2]
    emulator.faults.inject("surveymonkey", rf"/surveys/{third}/responses/bulk", 500, times=None)
    pages: list[Page] = []
    with pytest.raises(SourceError) as raised:
        async for page in make().iter_pages():
            pages.append(page)
    assert raised.value.kind == ErrorKind.server
    assert raised.value.message.endswith("gave up after 6 attempts")
    assert (pages[-1].cursor["survey_id"], pages[-1].cursor["page"]) == (third, 1)


async def test_a_refused_request_is_not_retried(make, emulator: Emulator) -> None:
    emulator.faults.inject("surveymonkey", r"/responses/bulk", 400)
    with pytest.raises(SourceError) as raised:
        await collect(make())
    assert raised.value.kind == ErrorKind.client
    assert emulator.request_count("surveymonkey", r"/responses/bulk") == 1


async def test_a_token_revoked_mid_sync_is_an_auth_failure(make, emulator: Emulator) -> None:
    emulator.faults.inject("surveymonkey", r"/details", "expire_token")
    with pytest.raises(SourceError) as raised:
        await collect(make())
    assert raised.value.kind == ErrorKind.auth


# -- rate limits on the emulator's clock -----------------------------------------------------------------------------


async def test_the_remaining_day_budget_is_in_the_stats() -> None:
    emulator = Emulator(EmulatorConfig(seed=11, time_scale=60.0))
    with run_emulator_server(emulator) as root:
        integration = SurveyMonkeyIntegration(
            {"access_token": DEMO_SURVEYMONKEY_TOKEN, "base_url": emulator.base_urls(root)["surveymonkey"]},
            sleep=RecordingSleep())
        await collect(integration)
    assert integration.last_stats["rate_limit"] == {
        "minute": {"limit": 120, "remaining": 104},
        "day": {"limit": 500, "remaining": 484},
    }


async def test_a_spent_day_budget_stops_the_sync_at_once() -> None:
    emulator = Emulator(EmulatorConfig(seed=11, time_scale=60.0, surveymonkey_day_limit=4))
    sleep = RecordingSleep()
    pages: list[Page] = []
    with run_emulator_server(emulator) as root:
        integration = SurveyMonkeyIntegration(
            {"access_token": DEMO_SURVEYMONKEY_TOKEN, "base_url": emulator.base_urls(root)["surveymonkey"]},
            sleep=sleep)
        with pytest.raises(SourceError) as raised:
            async for page in integration.iter_pages():
                pages.append(page)
    assert raised.value.kind == ErrorKind.rate_limited
    assert raised.value.message.startswith("SurveyMonkey's daily request budget (4 requests) is spent; it resets in")
    assert sleep.waits == []
    assert [request.status for request in emulator.requests] == [200, 200, 200, 200, 429]
    first = emulator.surveymonkey.survey_ids()[0]
    assert (pages[-1].cursor["survey_id"], pages[-1].cursor["page"]) == (first, 3)


async def test_requests_are_paced_by_the_minute_headers_before_any_429() -> None:
    # A vendor minute lasts 0.2 s here, with room for 4 requests: the sync must wait for each new window.
    emulator = Emulator(EmulatorConfig(seed=11, time_scale=0.2, surveymonkey_minute_limit=4))
    with run_emulator_server(emulator) as root:
        integration = SurveyMonkeyIntegration(
            {"access_token": DEMO_SURVEYMONKEY_TOKEN, "base_url": emulator.base_urls(root)["surveymonkey"]})
        records = records_of(await collect(integration))
    assert sorted(r.source_id for r in records) == emulator.surveymonkey.responses_in_range()
    assert integration.last_stats["throttled"] == 0
    assert integration.last_stats["wait_seconds"] > 0
    assert [request.status for request in emulator.requests] == [200] * 16


# -- real shapes: every question family, web-link collectors, removals ---------------------------------------------


def _details(emulator: Emulator, base_url: str, survey_id: str) -> dict[str, Any]:
    """A survey's details as the emulator serves them, read with a plain client (not the code under test)."""
    answer = httpx.get(f"{base_url}/surveys/{survey_id}/details",
                       headers={"Authorization": f"Bearer {DEMO_SURVEYMONKEY_TOKEN}"}, timeout=10)
    answer.raise_for_status()
    return answer.json()


async def test_every_question_family_lands_as_content_or_structured_answers(make, emulator: Emulator,
                                                                           base_url: str) -> None:
    records = {record.source_id: record for record in records_of(await collect(make()))}
    free_text_kinds = {("open_ended", "single"), ("open_ended", "multi"), ("open_ended", "essay")}
    seen: set[tuple[str, str]] = set()
    for survey_id in emulator.surveymonkey.survey_ids():
        questions = {q["id"]: q for page in _details(emulator, base_url, survey_id)["pages"] for q in page["questions"]}
        for response_id in emulator.surveymonkey.responses_in_range(survey_id):
            record, vendor = records[response_id], emulator.surveymonkey.response(survey_id, response_id)
            assert vendor is not None
            for answered in (q for page in vendor["pages"] for q in page["questions"]):
                question = questions[answered["id"]]
                kind, heading = (question["family"], question["subtype"]), question["headings"][0]["heading"]
                seen.add(kind)
                typed = [a["text"] for a in answered["answers"] if "text" in a]
                if kind in free_text_kinds:
                    # What the customer wrote, verbatim, under its question; nothing of it in the answers.
                    assert heading in record.content.split("\n")
                    assert all(text in record.content for text in typed)
                    assert heading not in record.metadata["answers"]
                else:
                    assert heading in record.metadata["answers"]
                    other = [a["text"] for a in answered["answers"] if "other_id" in a]
                    assert all(text in record.content for text in other)
                    # Numbers, dates and contact details are data, never a line of the searchable text.
                    lines = record.content.split("\n")
                    assert not [text for text in typed if text not in other
                                and any(line == text or line.endswith(f": {text}") for line in lines)]
    answerable = {kind for kind in seen if kind[0] != "presentation"}
    assert answerable == {
        ("single_choice", "vertical"), ("single_choice", "horizontal"), ("single_choice", "menu"),
        ("multiple_choice", "vertical"),
        ("matrix", "single"), ("matrix", "multi"), ("matrix", "rating"), ("matrix", "menu"), ("matrix", "ranking"),
        ("open_ended", "single"), ("open_ended", "multi"), ("open_ended", "essay"), ("open_ended", "numerical"),
        ("datetime", "date_only"), ("datetime", "time_only"), ("datetime", "both"),
        ("demographic", "international"), ("demographic", "us"),
    }
    assert seen == answerable  # presentation blocks are never answered


async def test_web_link_responses_name_the_customer_only_from_what_they_typed(make, emulator: Emulator) -> None:
    records = records_of(await collect(make()))
    shapes: set[str] = set()
    for record in records:
        vendor = emulator.surveymonkey.response(record.metadata["survey_id"], record.source_id)
        assert vendor is not None
        if vendor["metadata"].get("contact"):
            continue  # an email collector: the contact names the customer
        shapes.add(json.dumps(vendor["metadata"]))
        assert (vendor["first_name"], vendor["last_name"], vendor["recipient_id"]) == ("", "", "")
        typed = {a["row_id"]: a["text"] for page in vendor["pages"] for q in page["questions"]
                 for a in q["answers"] if "row_id" in a and "text" in a}
        contact = next((value for key, value in record.metadata["answers"].items()
                        if key.startswith(("If you'd like us to follow up", "Your contact details"))), {})
        assert record.customer_email == contact.get("Email Address")
        assert record.customer_name == contact.get("Name")
        assert record.customer_id == record.customer_email
        assert set(contact.values()) <= set(typed.values())
        assert record.metadata["custom_variables"] == {k: v for k, v in vendor["custom_variables"].items() if v}
    assert shapes == {"{}", '{"contact": {}}'}
    anonymous = [r for r in records if r.customer_email is None]
    named = [r for r in records if r.customer_email is not None and r.customer_id == r.customer_email]
    assert anonymous and named


def _store_sync(store: Store, emulator: Emulator, root: str, **options: Any) -> Any:
    config = {"access_token": DEMO_SURVEYMONKEY_TOKEN, "base_url": emulator.base_urls(root)["surveymonkey"]}
    integration = SurveyMonkeyIntegration(config, sleep=RecordingSleep())
    return sync(store, {"surveymonkey": integration}, **options)["surveymonkey"]


def test_a_sync_removes_responses_disqualified_since_and_a_full_resync_keeps_them_out(tmp_path: Path) -> None:
    emulator = Emulator(past_config(surveymonkey_surveys=1, surveymonkey_responses_per_survey=60))
    dataset = emulator.surveymonkey
    survey_id = dataset.survey_ids()[0]
    with run_emulator_server(emulator) as root, Store(tmp_path / "feedback.db") as store:
        first = _store_sync(store, emulator, root, start=emulator.config.start)
        assert first.status == "complete"
        stored = sorted(r[0] for r in store.conn.execute("SELECT source_id FROM feedback"))
        assert stored == dataset.responses_in_range(survey_id)
        # Disqualified before the first sync: never stored, remembered as removed.
        assert store.removal_counts() == {"surveymonkey": {"disqualified": len(dataset.disqualified_ids())}}

        target = stored[3]
        before = dataset.response(survey_id, target)
        override_record(store, "surveymonkey", target, "category", "praise")
        dataset.disqualify_response(survey_id, target)
        again = _store_sync(store, emulator, root)
        assert (again.status, again.removed) == ("complete", 1)
        assert store.get_record("surveymonkey", target) is None
        assert store.conn.execute("SELECT COUNT(*) FROM feedback_overrides").fetchone()[0] == 0

        # The version stored before, replayed (a retried page, a late webhook fetch): the tombstone refuses it.
        replay = map_response(before, None, rules=DEFAULT_RULES)
        assert store.upsert_records([replay]).skipped_stale == 1
        # A full re-sync lists it again, disqualified: still not feedback.
        full = _store_sync(store, emulator, root, start=emulator.config.start, incremental=False)
        assert full.status == "complete" and store.get_record("surveymonkey", target) is None
        assert sorted(r[0] for r in store.conn.execute("SELECT source_id FROM feedback")) == [
            i for i in stored if i != target]
