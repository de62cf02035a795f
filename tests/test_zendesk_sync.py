"""Zendesk sync: configuration, rate-limit headers, errors, the export cursor, and full runs against the emulator."""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from typing import Any

import httpx
import pytest

from feedback_sources.emulator import (
    DEMO_ZENDESK_EMAIL,
    DEMO_ZENDESK_SUBDOMAIN,
    DEMO_ZENDESK_TOKEN,
    Emulator,
    EmulatorConfig,
    RequestRecord,
    run_emulator_server,
)
from feedback_sources.integrations.base import ConfigError, Page
from feedback_sources.integrations.http import ErrorKind, RetryPolicy, SourceError
from feedback_sources.integrations.ratelimits import parse_limit_header
from feedback_sources.sources.zendesk.cursor import ExportPosition
from feedback_sources.sources.zendesk.api import DEFAULT_BASE_URL, describe_error, read_rate_limits
from feedback_sources.sources.zendesk.integration import ZendeskIntegration
from feedback_sources.sources.zendesk.mapping import SEVERITY_BY_PRIORITY as SEVERITY
from tests.helpers import RecordingSleep

CONFIG = {"subdomain": "acme", "email": "pm@acme.example", "api_token": "canary-token-5f3a9e"}


# -- configuration ---------------------------------------------------------------------------------------------------


def test_default_base_url_uses_the_subdomain(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("ZENDESK_BASE_URL", raising=False)
    assert DEFAULT_BASE_URL == "https://{subdomain}.zendesk.com"
    assert ZendeskIntegration(CONFIG).base_url == "https://acme.zendesk.com"


def test_base_url_from_config_wins_and_is_formatted(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ZENDESK_BASE_URL", "http://127.0.0.1:9/env/{subdomain}")
    assert ZendeskIntegration({**CONFIG, "base_url": "http://127.0.0.1:8/zendesk/{subdomain}/"}).base_url == (
        "http://127.0.0.1:8/zendesk/acme"
    )
    assert ZendeskIntegration(CONFIG).base_url == "http://127.0.0.1:9/env/acme"


@pytest.mark.parametrize(
    "typed",
    ["acme", " ACME ", "acme.zendesk.com", "https://acme.zendesk.com/agent/tickets/1", "http://acme.zendesk.com"],
)
def test_subdomain_is_taken_from_what_people_paste(typed: str) -> None:
    assert ZendeskIntegration({**CONFIG, "subdomain": typed}).subdomain == "acme"


@pytest.mark.parametrize("typed", ["acme corp", "acme.example.com", "-acme", "ac/me?x"])
def test_a_subdomain_that_cannot_be_one_is_a_config_error(typed: str) -> None:
    with pytest.raises(ConfigError) as raised:
        ZendeskIntegration({**CONFIG, "subdomain": typed})
    assert raised.value.missing == ["subdomain"]


def test_missing_fields_are_named() -> None:
    with pytest.raises(ConfigError) as raised:
        ZendeskIntegration({"subdomain": "acme", "email": " "})
    assert raised.value.missing == ["email", "api_token"]


def test_registered_under_its_name() -> None:
    from feedback_sources.integrations.base import _REGISTRY

    assert _REGISTRY["zendesk"] is ZendeskIntegration
    cls = ZendeskIntegration
    assert (cls.display_name, cls.required_fields, cls.optional_fields) == (
        "Zendesk Support",
        ("subdomain", "email", "api_token"),
        ("base_url",),
    )


# -- rate-limit headers ----------------------------------------------------------------------------------------------


def response(status: int = 200, headers: dict[str, str] | None = None, **kwargs: object) -> httpx.Response:
    request = httpx.Request("GET", "https://acme.zendesk.com/x")
    return httpx.Response(status, headers=headers or {}, request=request, **kwargs)  # type: ignore[arg-type]


def test_parse_limit_header() -> None:
    assert parse_limit_header("total=10; remaining=9; resets=42") == {"total": 10.0, "remaining": 9.0, "resets": 42.0}
    assert parse_limit_header("total=10;remaining=0;resets=7") == {"total": 10.0, "remaining": 0.0, "resets": 7.0}
    assert parse_limit_header("garbage; remaining=x") == {}


def test_reads_the_export_and_the_newer_account_headers() -> None:
    headers = {
        "x-rate-limit": "700",
        "x-rate-limit-remaining": "699",
        "ratelimit-limit": "700",
        "ratelimit-remaining": "698",
        "ratelimit-reset": "41",
        "Zendesk-RateLimit-incremental-exports": "total=10; remaining=9; resets=42",
    }
    assert read_rate_limits(response(headers=headers), 0.0) == [
        ("default", 700, 698, 41.0),
        ("incremental_exports", 10, 9, 42.0),
    ]


def test_reads_the_older_account_headers_with_a_minute_window() -> None:
    headers = {"X-Rate-Limit": "200", "X-Rate-Limit-Remaining": "0"}
    assert read_rate_limits(response(headers=headers), 0.0) == [("default", 200, 0, 60.0)]


def test_the_stricter_of_two_export_headers_decides() -> None:
    headers = {
        "zendesk-ratelimit-incremental-exports": "total=10; remaining=4; resets=30",
        "zendesk-ratelimit-incremental-exports-cursor": "total=10; remaining=1; resets=12",
    }
    assert read_rate_limits(response(headers=headers), 0.0) == [("incremental_exports", 10, 1, 12.0)]


def test_no_rate_limit_headers_is_fine() -> None:
    assert read_rate_limits(response(headers={"ratelimit-reset": "x"}), 0.0) == []


# -- errors ----------------------------------------------------------------------------------------------------------


def described(status: int, **kwargs: object) -> tuple[ErrorKind, str, int | None]:
    error = describe_error(response(status, **kwargs))
    assert error is not None
    return error.kind, error.message, error.status


def test_401_is_an_auth_error_quoting_zendesk() -> None:
    assert described(401, json={"error": "Couldn't authenticate you"}) == (
        ErrorKind.auth,
        "Zendesk did not accept the email and API token (Zendesk said: Couldn't authenticate you)",
        401,
    )


def test_a_404_web_page_is_a_wrong_subdomain() -> None:
    assert described(404, html="<html><body>Help Center Closed</body></html>") == (
        ErrorKind.wrong_subdomain,
        "Zendesk has no help desk at this address (the answer was a web page, not the API)",
        404,
    )


def test_a_404_from_the_api_is_a_missing_record() -> None:
    # The webhook receiver relies on this to tell a deleted ticket from a broken configuration.
    assert described(404, json={"error": "RecordNotFound", "description": "Not found"}) == (
        ErrorKind.not_found,
        "Zendesk has no such record (Zendesk said: RecordNotFound: Not found)",
        404,
    )


async def test_a_json_404_on_the_probe_still_means_a_wrong_address() -> None:
    transport = httpx.MockTransport(lambda request: httpx.Response(404, json={"error": "InvalidEndpoint"}))
    result = await ZendeskIntegration(CONFIG, transport=transport).test_connection()
    assert (result.ok, result.kind, result.hint) == (
        False,
        "wrong_subdomain",
        "Check the subdomain: for https://acme.zendesk.com it is `acme`.",
    )


def test_422_quotes_the_description() -> None:
    body = {"error": "InvalidValue", "description": "start_time is too recent"}
    assert described(422, json=body) == (
        ErrorKind.client,
        "Zendesk refused the export parameters (Zendesk said: InvalidValue: start_time is too recent)",
        422,
    )


@pytest.mark.parametrize(
    ("status", "kind"),
    [
        (403, ErrorKind.forbidden),
        (429, ErrorKind.rate_limited),
        (500, ErrorKind.server),
        (503, ErrorKind.server),
        (400, ErrorKind.client),
    ],
)
def test_other_statuses(status: int, kind: ErrorKind) -> None:
    error_kind, message, error_status = described(status, json={"error": {"title": "Nope", "message": "not today"}})
    assert (error_kind, error_status) == (kind, status)
    assert message.endswith("(Zendesk said: Nope: not today)")


def test_every_error_carries_a_hint() -> None:
    for status in (401, 403, 404, 422, 429, 500):
        for body in ({"json": {}}, {"html": "<p>down</p>"}):
            error = describe_error(response(status, **body))
            assert error is not None and error.hint


def test_the_token_never_reaches_an_error_message() -> None:
    integration = ZendeskIntegration(CONFIG)
    error = integration._describe_error(response(400, json={"error": f"bad token {CONFIG['api_token']}"}))
    assert error is not None
    assert CONFIG["api_token"] not in error.message
    assert "[redacted]" in error.message


# -- the export cursor -----------------------------------------------------------------------------------------------


def test_cursor_round_trip() -> None:
    cursor = {"after_cursor": "MTU3NjYxMzUzOS4wfHw0Njd8", "start_time": 1576613539}
    assert ExportPosition.from_cursor(cursor).as_cursor() == cursor
    assert ExportPosition.from_cursor({"after_cursor": None, "start_time": 0}) == ExportPosition(None, 0)


@pytest.mark.parametrize(
    "cursor",
    [
        {},
        {"after_cursor": "abc"},
        {"start_time": 5},
        {"after_cursor": 5, "start_time": 5},
        {"after_cursor": "", "start_time": 5},
        {"after_cursor": None, "start_time": "5"},
        {"after_cursor": None, "start_time": True},
        {"after_cursor": None, "start_time": -1},
        {"after_cursor": None, "start_time": 1.5},
        ["after_cursor", "start_time"],
        "MTU3NjYxMzUzOS4wfHw0Njd8",
        {"starting_after": "x", "updated_after": 5},
    ],
)
def test_a_corrupted_cursor_is_a_clear_client_error(cursor: object) -> None:
    with pytest.raises(SourceError) as raised:
        ExportPosition.from_cursor(cursor)
    assert raised.value.kind == ErrorKind.client
    assert "sync position is corrupted" in raised.value.message


# -- against the emulator, over HTTP on 127.0.0.1 ----------------------------------------------------------------------

TIER_OF_PLAN = {"enterprise": "enterprise", "business": "business", "pro": "professional", "free": "free"}


@pytest.fixture
def emulator() -> Emulator:
    return Emulator(EmulatorConfig(seed=11, zendesk_tickets=450))


@pytest.fixture
def root_url(emulator: Emulator) -> Iterator[str]:
    with run_emulator_server(emulator) as root:
        yield root


@pytest.fixture
def sleep() -> RecordingSleep:
    return RecordingSleep()


def demo_integration(root: str, *, sleep: RecordingSleep | None = None, **overrides: Any) -> ZendeskIntegration:
    config = {
        "subdomain": DEMO_ZENDESK_SUBDOMAIN,
        "email": DEMO_ZENDESK_EMAIL,
        "api_token": DEMO_ZENDESK_TOKEN,
        "base_url": f"{root}/zendesk/{{subdomain}}",
    }
    config.update(overrides.pop("config", {}))
    options: dict[str, Any] = {"page_size": 100, "sleep": sleep or RecordingSleep(), "timeout": 5.0}
    options.update(overrides)
    return ZendeskIntegration(config, **options)


async def collect(integration: ZendeskIntegration, **kwargs: Any) -> list[Page]:
    return [page async for page in integration.iter_pages(**kwargs)]


def ids_of(pages: list[Page]) -> list[int]:
    return [int(record.source_id) for page in pages for record in page.records]


def export_requests(emulator: Emulator) -> list[RequestRecord]:
    return [r for r in emulator.requests if r.endpoint == "/api/v2/incremental/tickets/cursor.json"]


async def test_connection_succeeds_as_the_admin(root_url: str) -> None:
    result = await demo_integration(root_url).test_connection()
    assert (result.ok, result.kind, result.message) == (
        True,
        "ok",
        f"Connected to Zendesk Support as {DEMO_ZENDESK_EMAIL} (admin) on demo",
    )
    assert result.details == {
        "subdomain": "demo",
        "user_id": "9000100",
        "name": "Pat Morgan",
        "email": DEMO_ZENDESK_EMAIL,
        "role": "admin",
    }


async def test_wrong_token_is_an_auth_failure_without_retries(emulator: Emulator, root_url: str) -> None:
    result = await demo_integration(root_url, config={"api_token": "canary-wrong-token-77"}).test_connection()
    assert (result.ok, result.kind) == (False, "auth")
    assert "did not accept the email and API token" in result.message
    assert "canary-wrong-token-77" not in result.message + result.hint
    assert [r.status for r in emulator.requests] == [401]


async def test_unknown_subdomain_is_reported_as_such(emulator: Emulator, root_url: str) -> None:
    result = await demo_integration(root_url, config={"subdomain": "nosuchdesk"}).test_connection()
    assert (result.ok, result.kind) == (False, "wrong_subdomain")
    assert result.hint == "Check the subdomain: for https://acme.zendesk.com it is `acme`."
    assert [(r.path, r.status) for r in emulator.requests] == [("/zendesk/nosuchdesk/api/v2/users/me.json", 404)]


@pytest.mark.parametrize(
    ("user", "who"),
    [
        (
            {"id": None, "name": "Anonymous user", "email": "invalid@example.com", "role": "end-user"},
            "an anonymous visitor",
        ),
        ({"id": 42, "name": "Dana", "email": "dana@customer.example", "role": "end-user"}, "an end user"),
    ],
)
async def test_credentials_that_are_not_an_agent_are_refused(user: dict[str, Any], who: str) -> None:
    transport = httpx.MockTransport(lambda request: httpx.Response(200, json={"user": user}))
    result = await ZendeskIntegration(CONFIG, transport=transport).test_connection()
    assert (result.ok, result.kind, result.message) == (
        False,
        "auth",
        f"zendesk: Zendesk treated these credentials as {who}: the email and API token were not accepted as an "
        "agent or admin (HTTP 200)",
    )


async def test_a_web_page_instead_of_json_means_a_wrong_subdomain() -> None:
    transport = httpx.MockTransport(lambda request: httpx.Response(200, html="<html>Zendesk: sign up</html>"))
    result = await ZendeskIntegration(CONFIG, transport=transport).test_connection()
    assert (result.ok, result.kind) == (False, "wrong_subdomain")


async def test_full_sync_pages_through_every_live_ticket(emulator: Emulator, root_url: str) -> None:
    integration = demo_integration(root_url)
    pages = await collect(integration)

    ids = ids_of(pages)
    assert sorted(ids) == emulator.zendesk.all_ticket_ids()  # deleted tickets are not records...
    deleted = set(emulator.zendesk.all_ticket_ids(include_deleted=True)) - set(ids)
    # ...but removals, so a stored copy goes too
    assert deleted and sorted(int(r.source_id) for page in pages for r in page.removals) == sorted(deleted)
    assert len(ids) == len(set(ids))
    assert {page.vendor_total for page in pages} == {len(ids)}
    assert len(pages) == 5  # 450 tickets, a few deleted, 100 a page

    exports = export_requests(emulator)
    assert [r.endpoint for r in emulator.requests] == ["/api/v2/tickets/count.json"] + [r.endpoint for r in exports]
    assert exports[0].query == {
        "start_time": "0",
        "include": "users,organizations",
        "per_page": "100",
    }
    # Every later page continues from the cursor the previous page handed out.
    assert [r.query.get("cursor") for r in exports[1:]] == [page.cursor["after_cursor"] for page in pages[:-1]]
    # start_time follows the newest update seen, so a cursor never moves backwards.
    starts = [page.cursor["start_time"] for page in pages]
    every_ticket = emulator.zendesk.all_ticket_ids(include_deleted=True)
    newest_update = max(emulator.zendesk.tickets.timestamps(ticket_id)[0] for ticket_id in every_ticket)
    assert (starts == sorted(starts), starts[-1]) == (True, newest_update)


async def test_records_carry_the_side_loaded_requester_and_plan(emulator: Emulator, root_url: str) -> None:
    records = [record for page in await collect(demo_integration(root_url)) for record in page.records]
    checked = 0
    for record in records:
        ticket = emulator.zendesk.ticket(int(record.source_id))
        user = emulator.zendesk.user(ticket["requester_id"])
        organization = emulator.zendesk.organization(ticket["organization_id"]) if ticket["organization_id"] else None
        if user is None:  # a requester deleted from the account
            assert (record.customer_id, record.customer_name, record.customer_email) == (
                str(ticket["requester_id"]), None, None
            )
            continue
        organization_plan = organization["organization_fields"]["plan"].lower() if organization else None
        plan = user["user_fields"].get("plan") or organization_plan  # `user_fields` is often {}
        assert (record.customer_id, record.customer_name, record.customer_email, record.customer_tier) == (
            str(user["id"]), user["name"], user["email"], TIER_OF_PLAN.get(plan)
        )
        assert record.metadata["organization_name"] == (organization["name"] if organization else None)
        assert record.metadata["url"] == f"https://demo.zendesk.com/agent/tickets/{ticket['id']}"
        checked += 1
    assert checked > 400


async def test_a_date_range_filters_on_creation_time(emulator: Emulator, root_url: str) -> None:
    config = emulator.config
    start = config.start + (config.end - config.start) * 0.4
    end = config.start + (config.end - config.start) * 0.6
    pages = await collect(demo_integration(root_url), start=start, end=end)

    assert sorted(ids_of(pages)) == emulator.zendesk.tickets_in_range(start, end)
    assert all(start <= record.created_at < end for page in pages for record in page.records)
    assert {page.vendor_total for page in pages} == {None}  # the account total would not be this range's
    assert export_requests(emulator)[0].query["start_time"] == str(int(start.timestamp()))
    assert emulator.request_count("zendesk", r"count\.json") == 0


async def test_resuming_from_a_mid_run_cursor_fetches_no_earlier_page(emulator: Emulator, root_url: str) -> None:
    first_run = await collect(demo_integration(root_url))
    emulator.clear_requests()

    resumed = await collect(demo_integration(root_url), cursor=first_run[1].cursor)

    assert ids_of(resumed) == ids_of(first_run[2:])
    assert [page.cursor for page in resumed] == [page.cursor for page in first_run[2:]]
    asked = [r.query.get("cursor") for r in emulator.requests]
    assert asked == [page.cursor["after_cursor"] for page in first_run[1:-1]]


async def test_the_last_cursor_picks_up_changes_since_the_run(emulator: Emulator, root_url: str) -> None:
    first_run = await collect(demo_integration(root_url))
    changed_id = emulator.zendesk.all_ticket_ids()[10]
    emulator.zendesk.update_ticket(changed_id, subject="Now with more detail", priority="urgent")
    added = emulator.zendesk.add_ticket(subject="Brand new ticket")
    emulator.clear_requests()

    next_run = await collect(demo_integration(root_url), cursor=first_run[-1].cursor)

    assert [(r.source_id, r.title, r.metadata["severity"]) for page in next_run for r in page.records] == [
        (str(changed_id), "Now with more detail", "critical"),
        (str(added["id"]), "Brand new ticket", added["priority"] and SEVERITY[added["priority"]]),
    ]
    assert [r.query.get("cursor") for r in emulator.requests] == [first_run[-1].cursor["after_cursor"]]
    assert next_run[-1].cursor["start_time"] >= first_run[-1].cursor["start_time"]
    assert next_run[-1].cursor["after_cursor"] != first_run[-1].cursor["after_cursor"]


async def test_an_unchanged_account_yields_an_empty_page_and_keeps_its_place(emulator: Emulator, root_url: str) -> None:
    first_run = await collect(demo_integration(root_url))
    again = await collect(demo_integration(root_url), cursor=first_run[-1].cursor)
    assert [(page.records, page.cursor) for page in again] == [([], first_run[-1].cursor)]


async def test_a_deleted_ticket_is_not_synced(emulator: Emulator, root_url: str) -> None:
    first_run = await collect(demo_integration(root_url))
    deleted_id = emulator.zendesk.all_ticket_ids()[3]
    emulator.zendesk.delete_ticket(deleted_id)
    again = await collect(demo_integration(root_url), cursor=first_run[-1].cursor)
    assert ids_of(again) == []
    assert deleted_id not in emulator.zendesk.all_ticket_ids()


@pytest.mark.parametrize(
    ("start", "cursor"),
    [
        (datetime(2100, 1, 1, tzinfo=timezone.utc), None),
        (None, {"after_cursor": None, "start_time": 4102444800}),
    ],
)
async def test_a_position_in_the_future_yields_nothing(
    emulator: Emulator, root_url: str, start: datetime | None, cursor: dict[str, Any] | None
) -> None:
    assert await collect(demo_integration(root_url), start=start, cursor=cursor) == []
    assert emulator.requests == []


async def test_a_range_ending_now_never_asks_for_the_last_minute(emulator: Emulator, root_url: str) -> None:
    now = datetime.now(timezone.utc)
    added = emulator.zendesk.add_ticket(subject="Just now", created_at=now - timedelta(seconds=5))
    pages = await collect(demo_integration(root_url), start=now - timedelta(seconds=10), end=now + timedelta(seconds=1))

    assert [r.status for r in emulator.requests] == [200]  # no 422 for a too recent start_time
    assert int(emulator.requests[0].query["start_time"]) <= now.timestamp() - 60
    assert ids_of(pages) == [added["id"]]


async def test_throttling_server_errors_and_broken_bodies_are_retried(
    emulator: Emulator, root_url: str, sleep: RecordingSleep
) -> None:
    export = r"/incremental/tickets/cursor\.json"
    emulator.faults.inject("zendesk", export, "retry_after_seconds", seconds=7)
    emulator.faults.inject("zendesk", export, 503)
    emulator.faults.inject("zendesk", export, "malformed")
    emulator.faults.inject("zendesk", export, "truncated")
    emulator.faults.inject("zendesk", export, "reset")
    emulator.faults.inject("zendesk", export, 500)

    pages = await collect(demo_integration(root_url, sleep=sleep))

    assert sorted(ids_of(pages)) == emulator.zendesk.all_ticket_ids()
    assert [r.fault for r in export_requests(emulator)][:7] == [
        "retry_after_seconds", "503", "malformed", "truncated", "reset", "500", None
    ]
    assert 7.0 <= sleep.waits[0] <= 8.0  # the server's Retry-After, plus up to 1 s of jitter
    assert len(sleep.waits) == 6 and all(0 <= wait <= 30 for wait in sleep.waits)


async def test_a_request_that_never_answers_times_out_and_is_retried(emulator: Emulator, root_url: str) -> None:
    fault = emulator.faults.inject("zendesk", r"/incremental/", "timeout", seconds=5)
    integration = demo_integration(root_url, timeout=0.3)
    pages = await collect(integration)
    assert sorted(ids_of(pages)) == emulator.zendesk.all_ticket_ids()
    # The emulator logs the abandoned request only once it notices the client left, so count on the fault.
    assert (fault.hits, integration.http_stats.retries) == (1, 1)


async def test_a_failing_export_gives_up_with_a_clear_error(
    emulator: Emulator, root_url: str, sleep: RecordingSleep
) -> None:
    emulator.faults.inject("zendesk", r"/incremental/", 503, times=None)
    integration = demo_integration(root_url, sleep=sleep, retry_policy=RetryPolicy(max_attempts=3))
    with pytest.raises(SourceError) as raised:
        await collect(integration)
    assert (raised.value.kind, raised.value.status) == (ErrorKind.server, 503)
    assert raised.value.message.endswith("gave up after 3 attempts")
    assert len(export_requests(emulator)) == 3


async def test_a_token_revoked_mid_run_stops_the_run_and_the_run_resumes(emulator: Emulator, root_url: str) -> None:
    pages: list[Page] = []
    with pytest.raises(SourceError) as raised:
        async for page in demo_integration(root_url).iter_pages():
            pages.append(page)
            if len(pages) == 2:
                emulator.expire_token("zendesk")
    assert (raised.value.kind, len(pages)) == (ErrorKind.auth, 2)

    emulator.restore_token("zendesk")
    rest = await collect(demo_integration(root_url), cursor=pages[-1].cursor)
    assert sorted(ids_of(pages) + ids_of(rest)) == emulator.zendesk.all_ticket_ids()


async def test_empty_and_repeated_pages_do_not_derail_the_export(emulator: Emulator, root_url: str) -> None:
    first = await collect(demo_integration(root_url))
    emulator.clear_requests()
    export = r"/incremental/tickets/cursor\.json"
    emulator.faults.inject("zendesk", export, "empty_page_with_next")
    emulator.faults.inject("zendesk", export, "repeat_page")

    pages = await collect(demo_integration(root_url), cursor=first[0].cursor)

    assert sorted(set(ids_of(pages))) == sorted(ids_of(first[1:]))
    assert [page.cursor for page in pages][-1] == first[-1].cursor


async def test_an_export_stuck_on_one_cursor_is_an_error(emulator: Emulator, root_url: str) -> None:
    first = await collect(demo_integration(root_url))
    emulator.faults.inject("zendesk", r"/incremental/", "empty_page_with_next", times=None)
    with pytest.raises(SourceError) as raised:
        await collect(demo_integration(root_url), cursor=first[0].cursor)
    assert raised.value.kind == ErrorKind.bad_response
    assert "without moving its cursor" in raised.value.message


async def test_the_export_limit_is_respected_without_a_single_429() -> None:
    # A vendor minute lasts 0.25 s here and the export allows 2 requests per minute: pacing has to wait.
    emulator = Emulator(EmulatorConfig(seed=11, zendesk_tickets=450, time_scale=0.25, zendesk_export_rate_limit=2))
    with run_emulator_server(emulator) as root:
        integration = demo_integration(root, sleep=asyncio.sleep)
        pages = await collect(integration)

    assert sorted(ids_of(pages)) == emulator.zendesk.all_ticket_ids()
    assert [r.status for r in emulator.requests] == [200] * len(emulator.requests)
    assert integration.http_stats.wait_seconds > 0
    assert integration.http_stats.rate_limit["incremental_exports"]["limit"] == 2


async def test_no_secret_reaches_logs_errors_or_records(
    emulator: Emulator, root_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    emulator.faults.inject("zendesk", r"/incremental/", 503)
    pages = await collect(demo_integration(root_url))
    bad = await demo_integration(root_url, config={"api_token": "canary-token-5f3a9e"}).test_connection()

    written = caplog.text + repr(bad) + json.dumps([r.model_dump(mode="json") for p in pages for r in p.records])
    for secret in (DEMO_ZENDESK_TOKEN, "canary-token-5f3a9e"):
        assert secret not in written


def export_transport(*bodies: Any) -> httpx.MockTransport:
    """Answers successive export requests with the given bodies (no network)."""
    queue = list(bodies)

    def answer(request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith("/tickets/count.json"):
            return httpx.Response(200, json={"count": {"value": 1, "refreshed_at": "2024-01-02T00:00:00Z"}})
        return httpx.Response(200, json=queue.pop(0))

    return httpx.MockTransport(answer)


async def test_deleted_and_broken_tickets_are_skipped_and_counted() -> None:
    live = {"id": 3, "subject": "Works", "created_at": "2024-01-02T00:00:00Z", "updated_at": "2024-01-02T00:00:00Z",
            "generated_timestamp": 1704153600}
    body = {
        "tickets": [
            {**live, "id": 1, "status": "deleted"},
            {"subject": "no id", "created_at": "2024-01-01T00:00:00Z"},
            "not a ticket",
            live,
        ],
        "users": [],
        "after_cursor": "c1",
        "end_of_stream": True,
    }
    integration = ZendeskIntegration(CONFIG, transport=export_transport(body))
    pages = await collect(integration, start=datetime(2024, 1, 1, tzinfo=timezone.utc))

    assert [(ids_of(pages), page.cursor) for page in pages] == [([3], {"after_cursor": "c1", "start_time": 1704153600})]
    assert integration.skipped == {"deleted": 1, "malformed": 2, "out_of_range": 0}


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        (["tickets"], "not a JSON object"),
        ({"end_of_stream": True}, "no `tickets` list"),
        ({"tickets": []}, "no `end_of_stream` flag"),
        ({"tickets": [], "end_of_stream": True, "after_cursor": 7}, "`after_cursor` is not a string"),
    ],
)
async def test_an_export_page_of_the_wrong_shape_is_a_bad_response(body: Any, reason: str) -> None:
    with pytest.raises(SourceError) as raised:
        await collect(ZendeskIntegration(CONFIG, transport=export_transport(body)))
    assert (raised.value.kind, raised.value.message) == (
        ErrorKind.bad_response,
        f"the ticket export answered an unexpected page ({reason})",
    )


async def test_more_pages_without_a_cursor_is_a_bad_response() -> None:
    body = {"tickets": [], "after_cursor": None, "end_of_stream": False}
    with pytest.raises(SourceError) as raised:
        await collect(ZendeskIntegration(CONFIG, transport=export_transport(body)))
    assert raised.value.kind == ErrorKind.bad_response
