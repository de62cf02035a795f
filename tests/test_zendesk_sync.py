"""Zendesk sync: configuration, rate-limit headers, errors, the export cursor, and full runs against the emulator."""

from __future__ import annotations

import httpx
import pytest

from feedback_sources.integrations.base import ConfigError
from feedback_sources.integrations.http import ErrorKind, SourceError
from feedback_sources.integrations.zendesk import (
    DEFAULT_BASE_URL,
    ExportPosition,
    ZendeskIntegration,
    describe_error,
    parse_limit_header,
    read_rate_limits,
)

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
    "typed", ["acme", " ACME ", "acme.zendesk.com", "https://acme.zendesk.com/agent/tickets/1", "http://acme.zendesk.com"]
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
    assert (ZendeskIntegration.display_name, ZendeskIntegration.required_fields, ZendeskIntegration.optional_fields) == (
        "Zendesk Support",
        ("subdomain", "email", "api_token"),
        ("base_url",),
    )


# -- rate-limit headers ----------------------------------------------------------------------------------------------


def response(status: int = 200, headers: dict[str, str] | None = None, **kwargs: object) -> httpx.Response:
    return httpx.Response(status, headers=headers or {}, request=httpx.Request("GET", "https://acme.zendesk.com/x"), **kwargs)  # type: ignore[arg-type]


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


def test_404_is_a_wrong_subdomain_whatever_the_body() -> None:
    assert described(404, html="<html><body>Help Center Closed</body></html>") == (
        ErrorKind.wrong_subdomain,
        "Zendesk has no help desk at this address (the answer was not JSON)",
        404,
    )
    assert described(404, json={"error": "InvalidEndpoint"})[0] == ErrorKind.wrong_subdomain


def test_422_quotes_the_description() -> None:
    body = {"error": "InvalidValue", "description": "start_time is too recent"}
    assert described(422, json=body) == (
        ErrorKind.client,
        "Zendesk refused the export parameters (Zendesk said: InvalidValue: start_time is too recent)",
        422,
    )


@pytest.mark.parametrize(
    ("status", "kind"),
    [(403, ErrorKind.forbidden), (429, ErrorKind.rate_limited), (500, ErrorKind.server), (503, ErrorKind.server), (400, ErrorKind.client)],
)
def test_other_statuses(status: int, kind: ErrorKind) -> None:
    error_kind, message, error_status = described(status, json={"error": {"title": "Nope", "message": "not today"}})
    assert (error_kind, error_status) == (kind, status)
    assert message.endswith("(Zendesk said: Nope: not today)")


def test_every_error_carries_a_hint() -> None:
    for status in (401, 403, 404, 422, 429, 500):
        error = describe_error(response(status, json={}))
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


@pytest.mark.asyncio
async def test_iter_pages_rejects_a_corrupted_cursor_before_any_request() -> None:
    calls: list[httpx.Request] = []
    transport = httpx.MockTransport(lambda request: calls.append(request) or httpx.Response(500))
    integration = ZendeskIntegration(CONFIG, transport=transport)
    with pytest.raises(SourceError) as raised:
        async for _ in integration.iter_pages(cursor={"after_cursor": 1, "start_time": "x"}):
            pass
    assert (raised.value.kind, calls) == (ErrorKind.client, [])
