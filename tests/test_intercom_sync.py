"""Intercom sync: configuration, error and rate-limit handling, the cursor, and full runs against the emulator."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import datetime, timezone
from typing import Any

import httpx
import pytest

from feedback_sources.emulator import DEMO_INTERCOM_TOKEN, Emulator, EmulatorConfig, run_emulator_server
from feedback_sources.integrations.base import ConfigError, Page
from feedback_sources.integrations.http import ErrorKind, RetryPolicy, SourceError
from feedback_sources.sources.intercom.integration import (
    INTERCOM_VERSION,
    IntercomIntegration,
    SearchCursor,
    describe_error,
    map_conversation,
    read_rate_limits,
    search_body,
)
from feedback_sources.rules import DEFAULT_RULES
from tests.helpers import RecordingSleep

TOKEN = "canary-intercom-token-5f1d"


# -- configuration --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("config", "base_url"),
    [
        ({"access_token": TOKEN}, "https://api.intercom.io"),
        ({"access_token": TOKEN, "region": "us"}, "https://api.intercom.io"),
        ({"access_token": TOKEN, "region": "EU"}, "https://api.eu.intercom.io"),
        ({"access_token": TOKEN, "region": " au "}, "https://api.au.intercom.io"),
        (
            {"access_token": TOKEN, "region": "eu", "base_url": "http://127.0.0.1:9/intercom"},
            "http://127.0.0.1:9/intercom",
        ),
    ],
)
def test_base_url_follows_base_url_then_region(config, base_url):
    assert IntercomIntegration(config).base_url == base_url


def test_environment_base_url_is_used_when_config_has_none(monkeypatch):
    monkeypatch.setenv("INTERCOM_BASE_URL", "http://127.0.0.1:9/intercom")
    assert IntercomIntegration({"access_token": TOKEN, "region": "eu"}).base_url == "http://127.0.0.1:9/intercom"
    explicit = IntercomIntegration({"access_token": TOKEN, "base_url": "http://127.0.0.1:8"})
    assert explicit.base_url == "http://127.0.0.1:8"


def test_missing_token_and_unknown_region_are_config_errors():
    with pytest.raises(ConfigError) as missing:
        IntercomIntegration({"access_token": "  "})
    assert missing.value.missing == ["access_token"]

    with pytest.raises(ConfigError) as region:
        IntercomIntegration({"access_token": TOKEN, "region": "mars"})
    assert (region.value.missing, str(region.value)) == (["region"], "intercom: region must be one of us, eu, au")


def test_registered_with_its_fields():
    from feedback_sources.integrations import get_integration_class

    cls = get_integration_class("intercom")
    assert (cls, cls.display_name, cls.required_fields, cls.optional_fields) == (
        IntercomIntegration,
        "Intercom",
        ("access_token",),
        ("region", "base_url"),
    )


def test_search_body_asks_for_changes_in_the_window_oldest_first():
    assert search_body(100, 200, None) == {
        "query": {
            "operator": "AND",
            "value": [
                {"field": "updated_at", "operator": ">", "value": 100},
                {"field": "updated_at", "operator": "<", "value": 200},
            ],
        },
        "pagination": {"per_page": 150},
        "sort": {"field": "updated_at", "order": "ascending"},
    }
    assert search_body(100, 200, "WzE3MTcyMzYwMDAwMDAsMTIzXQ==")["pagination"] == {
        "per_page": 150,
        "starting_after": "WzE3MTcyMzYwMDAwMDAsMTIzXQ==",
    }


# -- errors and rate limits -----------------------------------------------------------------------------------------


def error_response(status: int, path: str, body: Any = None, **kwargs: Any) -> httpx.Response:
    request = httpx.Request("GET", f"https://api.intercom.io{path}", headers={"Authorization": f"Bearer {TOKEN}"})
    if body is not None:
        kwargs["json"] = body
    return httpx.Response(status, request=request, **kwargs)


def error_list(code: str, message: str) -> dict[str, Any]:
    return {"type": "error.list", "request_id": "b14d75ab", "errors": [{"code": code, "message": message}]}


def described(response: httpx.Response) -> tuple[Any, ...]:
    error = describe_error(response)
    assert error is not None
    assert TOKEN not in f"{error} {error.hint}"
    return (error.kind, error.message, error.status)


def test_bad_token_is_an_auth_error_that_mentions_the_region():
    error = describe_error(error_response(401, "/me", error_list("unauthorized", "Access Token Invalid")))
    assert error is not None
    assert (error.kind, error.message, error.status) == (
        ErrorKind.auth,
        "Intercom rejected the access token (Access Token Invalid)",
        401,
    )
    assert "region" in error.hint


@pytest.mark.parametrize(
    ("path", "code", "permission"),
    [
        ("/conversations/search", "token_unauthorized", "the `Read conversations` permission"),
        ("/conversations/1911149811", "forbidden", "the `Read conversations` permission"),
        ("/intercom/contacts/6762f14a", "token_unauthorized", "the `Read and list users and companies` permission"),
        ("/contacts/search", "token_unauthorized", "the `Read and list users and companies` permission"),
        (
            "/me",
            "forbidden",
            "the `Read conversations` and `Read and list users and companies` permissions",
        ),
    ],
)
def test_missing_scope_names_the_permission_to_grant(path, code, permission):
    response = error_response(403, path, error_list(code, "Not authorized to access resource"))
    assert described(response) == (
        ErrorKind.forbidden,
        f"the Intercom access token lacks {permission} (Not authorized to access resource)",
        403,
    )
    assert permission in describe_error(response).hint


def test_other_failures_are_typed():
    assert described(error_response(403, "/me", error_list("api_plan_restricted", "Active subscription needed."))) == (
        ErrorKind.forbidden,
        "this Intercom workspace's plan does not include API access (Active subscription needed.)",
        403,
    )
    assert described(error_response(404, "/conversations/9", error_list("not_found", "Resource Not Found"))) == (
        ErrorKind.not_found,
        "Intercom could not find the requested object (Resource Not Found)",
        404,
    )
    html_404 = error_response(404, "/v9/me", text="<html>Not Found</html>", headers={"content-type": "text/html"})
    assert described(html_404) == (
        ErrorKind.not_found,
        "the Intercom API address was not found",
        404,
    )
    limited = error_list("rate_limit_exceeded", "Exceeded rate limit of 167 in 10_seconds")
    assert described(error_response(429, "/conversations/search", limited)) == (
        ErrorKind.rate_limited,
        "Intercom's rate limit for this app is used up (Exceeded rate limit of 167 in 10_seconds)",
        429,
    )
    assert described(error_response(503, "/me", text="upstream down")) == (
        ErrorKind.server,
        "Intercom's servers failed to answer",
        503,
    )
    assert describe_error(error_response(400, "/conversations/search", error_list("parameter_invalid", "x"))) is None


def test_integration_redacts_a_token_echoed_in_an_error_message():
    integration = IntercomIntegration({"access_token": TOKEN})
    echoed = error_response(401, "/me", error_list("unauthorized", f"Token {TOKEN} revoked"))
    error = integration._describe_error(echoed)
    assert error is not None and error.message == "Intercom rejected the access token (Token [redacted] revoked)"


def test_rate_limit_headers_become_a_window_with_seconds_until_reset():
    headers = {"X-RateLimit-Limit": "167", "X-RateLimit-Remaining": "12", "X-RateLimit-Reset": "1717236010"}
    assert read_rate_limits(httpx.Response(200, headers=headers), 1717236004.5) == [("default", 167, 12, 5.5)]
    # Intercom's 429 carries no Retry-After: the reset time is the wait, and the window counts as spent.
    assert read_rate_limits(httpx.Response(429, headers=headers), 1717236004.0) == [("default", 167, 0, 6.0)]
    # A reset already in the past means no wait.
    assert read_rate_limits(httpx.Response(200, headers=headers), 1717236099.0) == [("default", 167, 12, 0.0)]
    assert read_rate_limits(httpx.Response(200, headers={"X-RateLimit-Remaining": "3"}), 0.0) == [
        ("default", None, 3, 10.0)
    ]
    assert read_rate_limits(httpx.Response(200), 0.0) == []
    assert read_rate_limits(httpx.Response(200, headers={"X-RateLimit-Remaining": "lots"}), 0.0) == []


# -- the cursor ------------------------------------------------------------------------------------------------------


def test_cursor_round_trips():
    cursor = {"updated_after": 100, "updated_before": 200, "starting_after": "abc", "high_water": 150}
    assert SearchCursor.parse(cursor).as_dict() == cursor
    final = {"updated_after": 149, "updated_before": None, "starting_after": None, "high_water": 150}
    assert SearchCursor.parse(final).as_dict() == final


@pytest.mark.parametrize(
    "cursor",
    [
        "abc",
        [],
        {},
        {"after_cursor": "MTU3NjYxMzUzOS4wfHw0Njd8", "start_time": 1},
        {"updated_after": "100", "updated_before": None, "starting_after": None, "high_water": 100},
        {"updated_after": 100, "updated_before": None, "starting_after": None, "high_water": 1.5},
        {"updated_after": True, "updated_before": None, "starting_after": None, "high_water": 100},
        {"updated_after": -1, "updated_before": None, "starting_after": None, "high_water": 100},
        {"updated_after": 100, "updated_before": None, "starting_after": 7, "high_water": 100},
        {"updated_after": 100, "updated_before": None, "starting_after": "abc", "high_water": 100},
        {"updated_after": 100, "updated_before": 200, "starting_after": None, "high_water": 100, "extra": 1},
    ],
)
def test_corrupted_cursor_is_a_client_error(cursor):
    with pytest.raises(SourceError) as raised:
        SearchCursor.parse(cursor)
    assert raised.value.kind is ErrorKind.client
    assert "reset the Intercom sync state" in raised.value.message


# -- against the emulator, over HTTP on 127.0.0.1 ---------------------------------------------------------------------

CONVERSATIONS = 330  # three search pages of 150, 150 and 30
APP_ID = "demoapp1"
SCOPELESS_TOKEN = "scopeless-intercom-token"
DETAIL = r"^/conversations/\d+$"


class RecordingTransport(httpx.AsyncHTTPTransport):
    """A real HTTP transport that remembers what the client sent and how many requests were in flight at once."""

    def __init__(self) -> None:
        super().__init__()
        self.sent_headers: list[dict[str, str]] = []
        self.in_flight = 0
        self.peak_in_flight = 0

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        self.sent_headers.append(dict(request.headers))
        self.in_flight += 1
        self.peak_in_flight = max(self.peak_in_flight, self.in_flight)
        try:
            return await super().handle_async_request(request)
        finally:
            self.in_flight -= 1


@pytest.fixture
def emulator() -> Emulator:
    return Emulator(
        EmulatorConfig(
            intercom_conversations=CONVERSATIONS,
            zendesk_tickets=10,
            surveymonkey_surveys=1,
            surveymonkey_responses_per_survey=3,
            intercom_scopeless_tokens={SCOPELESS_TOKEN},
        )
    )


@pytest.fixture
def base_url(emulator: Emulator) -> Iterator[str]:
    with run_emulator_server(emulator) as root:
        yield emulator.base_urls(root)["intercom"]


def connect(base_url: str, token: str = DEMO_INTERCOM_TOKEN, **options: Any) -> IntercomIntegration:
    options.setdefault("sleep", RecordingSleep())
    return IntercomIntegration({"access_token": token, "base_url": base_url}, **options)


async def collect(integration: IntercomIntegration, **kwargs: Any) -> list[Page]:
    return [page async for page in integration.iter_pages(**kwargs)]


def source_ids(pages: list[Page]) -> list[str]:
    return [record.source_id for page in pages for record in page.records]


def expected_row(emulator: Emulator, conversation_id: str) -> dict[str, Any]:
    conversation = emulator.intercom.conversation(conversation_id)
    contact_id = conversation["contacts"]["contacts"][0]["id"]
    record = map_conversation(conversation, emulator.intercom.contact(contact_id), app_id=APP_ID, rules=DEFAULT_RULES)
    return record.model_dump(mode="json")


def endpoint_calls(emulator: Emulator, pattern: str, method: str | None = None) -> list[Any]:
    return [
        request
        for request in emulator.requests
        if re.search(pattern, request.endpoint) and (method is None or request.method == method)
    ]


@pytest.mark.asyncio
async def test_full_sync_pages_to_the_end_with_whole_records(emulator, base_url):
    transport = RecordingTransport()
    integration = connect(base_url, transport=transport)

    pages = await collect(integration)

    all_ids = emulator.intercom.all_conversation_ids()
    assert sorted(source_ids(pages)) == all_ids and len(all_ids) == CONVERSATIONS
    assert [len(page.records) for page in pages] == [150, 150, 30]
    assert [page.vendor_total for page in pages] == [CONVERSATIONS] * 3
    for page in pages:
        for record in page.records:
            assert record.model_dump(mode="json") == expected_row(emulator, record.source_id)

    # Mid-run cursors keep the query and the position; the last one continues just below the newest change.
    newest = max(emulator.intercom.conversation(i)["updated_at"] for i in all_ids)
    first, second, last = (page.cursor for page in pages)
    assert (first["updated_after"], second["updated_after"]) == (0, 0)
    assert first["updated_before"] == second["updated_before"] and isinstance(first["updated_before"], int)
    assert first["starting_after"] and second["starting_after"] and first["starting_after"] != second["starting_after"]
    assert first["high_water"] <= second["high_water"] <= newest
    assert last == {"updated_after": newest - 1, "updated_before": None, "starting_after": None, "high_water": newest}

    # One search per page, one detail call per conversation, one call per distinct contact.
    searches = endpoint_calls(emulator, r"^/conversations/search$", "POST")
    assert [call.body["pagination"].get("starting_after") for call in searches] == [
        None,
        first["starting_after"],
        second["starting_after"],
    ]
    assert searches[0].body == search_body(0, first["updated_before"], None)
    details = [call.endpoint for call in endpoint_calls(emulator, DETAIL)]
    assert sorted(details) == sorted(f"/conversations/{i}" for i in all_ids)
    contacts = [call.endpoint for call in endpoint_calls(emulator, r"^/contacts/")]
    distinct_contacts = {
        emulator.intercom.conversation(i)["contacts"]["contacts"][0]["id"] for i in all_ids
    }
    assert sorted(contacts) == sorted(f"/contacts/{c}" for c in distinct_contacts)
    assert len(contacts) < CONVERSATIONS  # customers with several conversations were fetched once
    assert integration.last_stats["contacts_fetched"] == len(distinct_contacts)

    # Headers on every request, and the detail calls really ran side by side within the client's bound.
    assert all(
        (headers["authorization"], headers["accept"], headers["intercom-version"])
        == (f"Bearer {DEMO_INTERCOM_TOKEN}", "application/json", INTERCOM_VERSION)
        for headers in transport.sent_headers
    )
    assert 1 < transport.peak_in_flight <= IntercomIntegration.max_concurrency


@pytest.mark.asyncio
async def test_date_range_filters_on_creation_and_skips_detail_calls_outside_it(emulator, base_url):
    config = emulator.config
    start = config.start + (config.end - config.start) / 3
    end = config.start + (config.end - config.start) * 2 / 3

    pages = await collect(connect(base_url), start=start, end=end)

    wanted = emulator.intercom.conversations_in_range(start, end)
    assert 0 < len(wanted) < CONVERSATIONS
    assert sorted(source_ids(pages)) == wanted
    assert all(start <= record.created_at < end for page in pages for record in page.records)
    assert sorted(call.endpoint for call in endpoint_calls(emulator, DETAIL)) == sorted(
        f"/conversations/{i}" for i in wanted
    )
    # The query starts at `start` (nothing created after it was updated before it) and runs up to now.
    first_query = endpoint_calls(emulator, r"^/conversations/search$")[0].body["query"]["value"]
    assert first_query[0] == {"field": "updated_at", "operator": ">", "value": int(start.timestamp()) - 1}


@pytest.mark.asyncio
async def test_resume_from_a_mid_run_cursor_fetches_nothing_before_it(emulator, base_url):
    full = await collect(connect(base_url))
    emulator.clear_requests()

    resumed = await collect(connect(base_url), cursor=full[0].cursor)

    assert source_ids(resumed) == source_ids(full[1:])
    assert [page.cursor for page in resumed] == [page.cursor for page in full[1:]]
    searches = endpoint_calls(emulator, r"^/conversations/search$")
    assert [call.body["pagination"].get("starting_after") for call in searches] == [
        full[0].cursor["starting_after"],
        full[1].cursor["starting_after"],
    ]
    first_page_ids = {f"/conversations/{record.source_id}" for record in full[0].records}
    assert not first_page_ids & {call.endpoint for call in endpoint_calls(emulator, DETAIL)}


@pytest.mark.asyncio
async def test_incremental_sync_picks_up_changes_and_the_record_tied_at_the_boundary(emulator, base_url):
    full = await collect(connect(base_url))
    cursor = full[-1].cursor
    boundary = cursor["high_water"]
    ids = emulator.intercom.all_conversation_ids()
    # The next query is `updated_at > boundary - 1`: whatever changed in the boundary second comes again.
    at_boundary = {i for i in ids if emulator.intercom.conversation(i)["updated_at"] > boundary - 1}
    assert at_boundary
    later = boundary + 120
    emulator.clock = lambda: later
    replied = ids[5]
    emulator.intercom.add_part(replied, "<p>Also: the <b>mobile app</b> crashes on login.</p>")
    # Changed within the same second as the newest change the last run saw, but after that run read it.
    tied = ids[7]
    emulator.intercom.update_conversation(tied, state="closed", updated_at=boundary)
    started = emulator.intercom.add_conversation()
    emulator.clear_requests()

    pages = await collect(connect(base_url, wall_clock=lambda: later + 1), cursor=cursor)

    records = {record.source_id: record for page in pages for record in page.records}
    assert set(records) == at_boundary | {replied, tied, started["id"]}
    assert records[replied].content.endswith("Also: the mobile app crashes on login.")
    assert records[replied].model_dump(mode="json") == expected_row(emulator, replied)
    assert records[tied].metadata["state"] == "closed"
    assert pages[-1].cursor == {
        "updated_after": later - 1,
        "updated_before": None,
        "starting_after": None,
        "high_water": later,
    }
    query = endpoint_calls(emulator, r"^/conversations/search$")[0].body["query"]["value"]
    assert query == [
        {"field": "updated_at", "operator": ">", "value": boundary - 1},
        {"field": "updated_at", "operator": "<", "value": later + 1},
    ]

    # Nothing changed since: the next run finds only the boundary ties again and the cursor does not move back.
    again = await collect(connect(base_url, wall_clock=lambda: later + 5), cursor=pages[-1].cursor)
    assert pages[-1].cursor == again[-1].cursor


@pytest.mark.asyncio
async def test_cursor_from_the_future_yields_nothing_and_stays(emulator, base_url):
    year_2100 = int(datetime(2100, 1, 1, tzinfo=timezone.utc).timestamp())
    cursor = {"updated_after": year_2100, "updated_before": None, "starting_after": None, "high_water": year_2100}

    pages = await collect(connect(base_url), cursor=cursor)

    assert [(page.records, page.cursor) for page in pages] == [([], cursor)]
    assert endpoint_calls(emulator, r"^/conversations") == []


@pytest.mark.asyncio
async def test_connection_test_reports_the_workspace(emulator, base_url):
    result = await connect(base_url).test_connection()

    assert (result.ok, result.kind, result.account, result.details) == (
        True,
        "ok",
        "Acme Cloud (pat.morgan@acmecloud.example)",
        {
            "app_id": APP_ID,
            "app_name": "Acme Cloud",
            "region": "US",
            "admin_email": "pat.morgan@acmecloud.example",
            "conversations": CONVERSATIONS,
        },
    )


@pytest.mark.asyncio
async def test_bad_token_and_missing_permission_are_told_apart(emulator, base_url):
    bad = await connect(base_url, token="wrong-token").test_connection()
    assert (bad.ok, bad.kind, bad.message) == (
        False,
        "auth",
        "intercom: Intercom rejected the access token (Access Token Invalid) (HTTP 401)",
    )
    assert "region" in bad.hint

    scopeless = await connect(base_url, token=SCOPELESS_TOKEN).test_connection()
    assert (scopeless.ok, scopeless.kind, scopeless.message) == (
        False,
        "forbidden",
        "intercom: the Intercom access token lacks the `Read conversations` permission "
        "(Not authorized to access resource) (HTTP 403)",
    )
    assert "Read conversations" in scopeless.hint
    assert all(call.status in (200, 401, 403) for call in emulator.requests)
    # Neither is retried.
    assert [call.status for call in emulator.requests] == [401, 200, 403]

    with pytest.raises(SourceError) as raised:
        await collect(connect(base_url, token=SCOPELESS_TOKEN))
    assert raised.value.kind is ErrorKind.forbidden


@pytest.mark.asyncio
async def test_throttling_waits_until_intercoms_reset_time(emulator, base_url):
    emulator.faults.inject("intercom", r"^/conversations/search$", 429, times=2, reset_in=3)
    sleep = RecordingSleep()

    pages = await collect(connect(base_url, sleep=sleep))

    assert sorted(source_ids(pages)) == emulator.intercom.all_conversation_ids()
    assert [call.status for call in endpoint_calls(emulator, r"^/conversations/search$")][:3] == [429, 429, 200]
    # No Retry-After on Intercom's 429: the wait is the time left until X-RateLimit-Reset, plus jitter of up to a
    # quarter of it (so that concurrent requests do not all come back in the same instant).
    assert len(sleep.waits) == 2 and all(2.0 < seconds <= 3.0 * 1.25 for seconds in sleep.waits)


@pytest.mark.asyncio
async def test_server_errors_resets_and_bad_bodies_are_retried(emulator, base_url):
    emulator.faults.inject("intercom", DETAIL, 503, times=3)
    emulator.faults.inject("intercom", r"^/conversations/search$", "reset", times=1)
    emulator.faults.inject("intercom", r"^/contacts/", "malformed", times=2)
    emulator.faults.inject("intercom", r"^/conversations/search$", "truncated", times=1)
    sleep = RecordingSleep()
    integration = connect(base_url, sleep=sleep)

    pages = await collect(integration)

    assert sorted(source_ids(pages)) == emulator.intercom.all_conversation_ids()
    assert integration.last_stats["http"]["retries"] == 7
    assert len(sleep.waits) == 7
    assert emulator.faults.pending() == []


@pytest.mark.asyncio
async def test_empty_page_with_a_next_cursor_is_followed(emulator, base_url):
    emulator.faults.inject("intercom", r"^/conversations/search$", "empty_page_with_next", times=1)

    pages = await collect(connect(base_url))

    assert [len(page.records) for page in pages] == [0, 150, 150, 30]
    assert sorted(source_ids(pages)) == emulator.intercom.all_conversation_ids()


@pytest.mark.asyncio
async def test_persistent_failure_gives_up_with_a_typed_error_and_no_page(emulator, base_url):
    emulator.faults.inject("intercom", r"^/conversations/search$", 500, times=None)
    pages: list[Page] = []

    with pytest.raises(SourceError) as raised:
        async for page in connect(base_url, retry_policy=RetryPolicy(max_attempts=3)).iter_pages():
            pages.append(page)

    assert (raised.value.kind, raised.value.status, pages) == (ErrorKind.server, 500, [])
    assert raised.value.message == "Intercom's servers failed to answer (Server Error); gave up after 3 attempts"
    assert len(endpoint_calls(emulator, r"^/conversations/search$")) == 3


@pytest.mark.asyncio
async def test_expired_token_mid_sync_stops_without_retrying(emulator, base_url):
    emulator.faults.inject("intercom", r"^/conversations/search$", "expire_token", times=1)
    pages: list[Page] = []

    with pytest.raises(SourceError) as raised:
        async for page in connect(base_url).iter_pages():
            pages.append(page)

    assert raised.value.kind is ErrorKind.auth
    assert pages == []
    assert [call.status for call in emulator.requests if call.status != 200] == [401]


@pytest.mark.asyncio
async def test_deleted_conversation_is_skipped_and_a_deleted_contact_falls_back(emulator, base_url):
    ids = emulator.intercom.all_conversation_ids()
    gone = ids[3]
    orphan = ids[10]
    orphan_contact = emulator.intercom.conversation(orphan)["contacts"]["contacts"][0]["id"]
    emulator.faults.inject("intercom", rf"^/conversations/{gone}$", 404, times=None)
    emulator.faults.inject("intercom", rf"^/contacts/{orphan_contact}$", 404, times=None)
    integration = connect(base_url)

    pages = await collect(integration)

    records = {record.source_id: record for page in pages for record in page.records}
    assert sorted(records) == sorted(set(ids) - {gone})
    conversation = emulator.intercom.conversation(orphan)
    assert records[orphan].model_dump(mode="json") == map_conversation(
        conversation, None, app_id=APP_ID, rules=DEFAULT_RULES
    ).model_dump(mode="json")
    assert integration.last_stats["skipped"] == {"deleted": 1}
    # Found by the search, gone when fetched: the page removes it from the store, at the time the sync saw it gone.
    removals = [removal for page in pages for removal in page.removals]
    assert [(r.source, r.source_id, r.reason.value) for r in removals] == [("intercom", gone, "deleted")]
    assert removals[0].removed_at.tzinfo is not None


@pytest.mark.asyncio
async def test_a_deleted_conversation_is_neither_found_nor_served(emulator, base_url):
    ids = emulator.intercom.all_conversation_ids()
    emulator.intercom.delete_conversation(ids[0])

    pages = await collect(connect(base_url))

    assert sorted(source_ids(pages)) == ids[1:]
    assert [removal for page in pages for removal in page.removals] == []
    async with httpx.AsyncClient(headers={"Authorization": f"Bearer {DEMO_INTERCOM_TOKEN}"}) as client:
        answer = await client.get(f"{base_url}/conversations/{ids[0]}")
    assert (answer.status_code, answer.json()["errors"][0]["code"]) == (404, "not_found")


def tight_limit_emulator() -> Emulator:
    return Emulator(
        EmulatorConfig(
            intercom_conversations=40,
            zendesk_tickets=10,
            surveymonkey_surveys=1,
            surveymonkey_responses_per_survey=3,
            intercom_rate_limit=60,  # 10 requests per (scaled) 10-second window
            # A vendor minute lasts 3 s, so a window lasts 0.5 s: short enough to wait out several times, long
            # enough that a busy 2-core machine's scheduling jitter does not land a request in the wrong window.
            time_scale=3.0,
        )
    )


async def sync_under_tight_limit() -> tuple[Emulator, IntercomIntegration, list[Page]]:
    emulator = tight_limit_emulator()
    with run_emulator_server(emulator) as root:
        integration = IntercomIntegration(
            {"access_token": DEMO_INTERCOM_TOKEN, "base_url": emulator.base_urls(root)["intercom"]}
        )
        pages = await collect(integration)
    return emulator, integration, pages


@pytest.mark.asyncio
async def test_a_tight_rate_limit_is_waited_out_with_real_sleeps():
    emulator, integration, pages = await sync_under_tight_limit()

    assert sorted(source_ids(pages)) == emulator.intercom.all_conversation_ids()
    stats = integration.last_stats["http"]
    assert stats["rate_limit"]["default"]["limit"] == 10
    assert stats["wait_seconds"] > 0


@pytest.mark.asyncio
async def test_pacing_avoids_429_with_concurrent_detail_calls():
    emulator, integration, pages = await sync_under_tight_limit()

    stats = integration.last_stats["http"]
    assert sorted(source_ids(pages)) == emulator.intercom.all_conversation_ids()
    # Pacing from the headers keeps 429s to the one a fixed window can still give: a request sent as the window
    # turns may be counted in the next one by the server, as Intercom's own windows can (seen in about 1 run in 4 on
    # this machine), never one per window: the sync makes 66 requests through windows of 10.
    assert stats["throttled"] <= 1 and stats["requests"] >= 40


@pytest.mark.asyncio
async def test_a_repeated_page_is_asked_for_again_without_refetching_its_conversations(emulator, base_url):
    pages: list[Page] = []
    async for page in connect(base_url).iter_pages():
        pages.append(page)
        if len(pages) == 1:
            # The next search answer is the first page again, pointing back at the cursor just sent.
            emulator.faults.inject("intercom", r"^/conversations/search$", "repeat_page", times=1)

    assert [len(page.records) for page in pages] == [150, 150, 30]
    assert sorted(source_ids(pages)) == emulator.intercom.all_conversation_ids()
    assert len(endpoint_calls(emulator, r"^/conversations/search$")) == 4
    details = [call.endpoint for call in endpoint_calls(emulator, DETAIL)]
    assert len(details) == len(set(details)) == CONVERSATIONS


@pytest.mark.asyncio
async def test_a_search_stuck_on_an_old_page_is_a_bad_response(emulator, base_url):
    pages: list[Page] = []
    with pytest.raises(SourceError) as raised:
        async for page in connect(base_url).iter_pages():
            pages.append(page)
            emulator.faults.inject("intercom", r"^/conversations/search$", "repeat_page", times=None)

    assert (raised.value.kind, raised.value.message) == (
        ErrorKind.bad_response,
        "the conversation search kept answering with a page it had already sent",
    )
    assert len(pages) == 1
    assert len(endpoint_calls(emulator, r"^/conversations/search$")) == 1 + 4


@pytest.mark.asyncio
async def test_page_size_is_configurable_up_to_intercoms_maximum(emulator, base_url):
    pages = await collect(connect(base_url, page_size=100))

    assert [len(page.records) for page in pages] == [100, 100, 100, 30]
    assert {call.body["pagination"]["per_page"] for call in endpoint_calls(emulator, r"^/conversations/search$")} == {
        100
    }
    assert connect(base_url, page_size=500).page_size == 150
