"""The kit's error table: rows of (status, vendor code, predicate) → typed error with message and hint."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from feedback_sources.integrations.errors import (
    check_webhook_url,
    CLIENT_ERRORS,
    SERVER_ERRORS,
    ErrorRow,
    ErrorTable,
    redact,
    vendor_message,
)
from feedback_sources.integrations.http import ErrorKind, SourceError

TABLE = ErrorTable(
    rows=[
        ErrorRow(ErrorKind.auth, "the token was refused{detail}", "Copy the token again.", status=401),
        ErrorRow(ErrorKind.auth, lambda c: f"token problem {c.code}{{detail}}", "Copy it again.",
                 codes={"1011", "1012"}, status=CLIENT_ERRORS),
        ErrorRow(ErrorKind.wrong_subdomain, "a web page, not the API", "Check the subdomain.", status=404,
                 when=lambda c: not c.is_json),
        ErrorRow(ErrorKind.not_found, "no such record{detail}", status=404),
        ErrorRow(ErrorKind.server, "the vendor is failing{detail}", "Try later.", status=SERVER_ERRORS),
        ErrorRow(ErrorKind.client, "refused{detail}", status=(400, 422)),
    ],
    message_paths=("error.message", "error.title", "errors[].title|detail"),
    code_path="error.id",
    detail=" (Vendor said: {said})",
    secrets=("sk-secret",),
)


def answer(status: int, body: Any = None, *, text: str | None = None) -> httpx.Response:
    if text is not None:
        return httpx.Response(status, text=text)
    return httpx.Response(status, json=body)


def test_first_matching_row_wins_with_the_vendor_words() -> None:
    error = TABLE.describe(answer(401, {"error": {"id": "1011", "message": "Invalid token"}}))
    assert error is not None
    assert (error.kind, error.message, error.hint, error.status) == (
        ErrorKind.auth, "the token was refused (Vendor said: Invalid token)", "Copy the token again.", 401)


def test_a_vendor_code_and_a_message_function() -> None:
    error = TABLE.describe(answer(400, {"error": {"id": 1012, "message": "Expired"}}))
    assert error is not None and error.message == "token problem 1012 (Vendor said: Expired)"
    # The same code on a 5xx is an outage: the code row is limited to client errors.
    outage = TABLE.describe(answer(503, {"error": {"id": "1012"}}))
    assert outage is not None and outage.kind == ErrorKind.server and outage.message == "the vendor is failing"


def test_a_predicate_on_the_body() -> None:
    page = TABLE.describe(answer(404, text="<html>Help center closed</html>"))
    assert page is not None and (page.kind, page.hint) == (ErrorKind.wrong_subdomain, "Check the subdomain.")
    record = TABLE.describe(answer(404, {"error": "RecordNotFound"}))
    assert record is not None and record.kind == ErrorKind.not_found and record.message == "no such record"


def test_no_matching_row_leaves_it_to_the_client() -> None:
    assert TABLE.describe(answer(409, {})) is None
    assert TABLE(answer(422, {})) is not None  # the table is itself a describer


def test_secrets_are_redacted_from_what_the_vendor_said() -> None:
    error = TABLE.describe(answer(401, {"error": {"message": "token sk-secret is not valid"}}))
    assert error is not None and "sk-secret" not in error.message and "[redacted]" in error.message
    other = TABLE.describe(answer(401, {"error": {"message": "key pk-9 bad"}}), secrets=("pk-9",))
    assert other is not None and "pk-9" not in other.message


def test_extended_rows_are_tried_first() -> None:
    webhooks = TABLE.extended(ErrorRow(ErrorKind.forbidden, "only admins manage webhooks{detail}", status=401))
    error = webhooks.describe(answer(401, {"error": {"message": "no"}}))
    assert error is not None and (error.kind, error.message) == (ErrorKind.forbidden, "only admins manage webhooks (Vendor said: no)")
    assert TABLE.describe(answer(401, {})).kind == ErrorKind.auth  # type: ignore[union-attr]


@pytest.mark.parametrize(("body", "said"), [
    ({"error": {"title": "Forbidden", "message": "You cannot"}}, "You cannot: Forbidden"),
    ({"errors": [{"title": "A", "detail": "a"}, {"title": "B", "detail": "b"}, {"title": "C"}, {"title": "D"}]},
     "A: a: B: b: C"),
    ({"error": {"message": "  same  "}, "errors": [{"title": "same"}]}, "same"),
    ({"error": "RecordNotFound"}, ""),
    ([1, 2], ""),
    (None, ""),
])
def test_vendor_message(body: Any, said: str) -> None:
    assert vendor_message(body, ("error.message", "error.title", "errors[].title|detail")) == said


def test_vendor_message_is_cut_short() -> None:
    assert len(vendor_message({"error": "x" * 1000}, ("error",))) == 300


def test_redact() -> None:
    assert redact("a secret and secret", ["secret", ""]) == "a [redacted] and [redacted]"


LISTED = ErrorTable(
    rows=[ErrorRow(ErrorKind.forbidden, "missing scope{detail}", codes={"token_unauthorized"}),
          ErrorRow(ErrorKind.client, "refused{detail}")],
    message_paths=("errors[].message",),
    code_path="errors[].code",
)


def test_a_code_anywhere_in_an_error_list_matches() -> None:
    body = {"type": "error.list", "errors": [{"code": "parameter_invalid", "message": "x"},
                                            {"code": "token_unauthorized", "message": "Not allowed"}]}
    error = LISTED.describe(answer(401, body))
    assert error is not None and (error.kind, error.message) == (ErrorKind.forbidden, "missing scope (x: Not allowed)")
    context = LISTED.context(answer(401, body))
    assert (context.code, context.codes) == ("parameter_invalid", ("parameter_invalid", "token_unauthorized"))


@pytest.mark.parametrize("body", [{"errors": []}, {"errors": [{"code": ""}, {"code": True}]}, [], None, {"errors": "x"}])
def test_no_usable_code_matches_no_code_row(body: Any) -> None:
    error = LISTED.describe(answer(400, body))
    assert error is not None and error.kind == ErrorKind.client
    assert LISTED.context(answer(400, body)).code is None


@pytest.mark.parametrize("url", ["", "receiver.example.com/webhooks", "ftp://receiver.example.com/x", "https://",
                                 "http://\x00/", None, 8787])
def test_a_webhook_address_no_vendor_could_post_to_is_a_config_error_before_any_request(url: Any) -> None:
    with pytest.raises(SourceError) as raised:
        check_webhook_url(url, source="zendesk", vendor="Zendesk")
    error = raised.value
    assert (error.kind, error.source, error.message) == (
        ErrorKind.config, "zendesk", f"{url!r} is not a web address Zendesk can post to")
    assert error.hint.endswith("https://feedback-hooks.example.com/webhooks/zendesk.")


@pytest.mark.parametrize("url", ["https://hooks.example.com/webhooks/zendesk", "http://127.0.0.1:8787/webhooks/x"])
def test_a_web_address_passes(url: str) -> None:
    assert check_webhook_url(url, source="zendesk", vendor="Zendesk") is None
