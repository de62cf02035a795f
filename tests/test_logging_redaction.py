"""No credential reaches log output: messages, arguments, tracebacks, and httpx/httpcore DEBUG records."""

from __future__ import annotations

import asyncio
import base64
import io
import logging
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import quote

import httpx
import pytest

from feedback_sources.credentials import CredentialStore, InMemoryKeyring
from feedback_sources.logging_setup import SecretRedactingFilter, configure_logging

ZD_EMAIL = "pm@acme.example"
ZD_TOKEN = "canary-zd-7f3a91"
IC_TOKEN = "canary-ic-2b8e44"
SM_TOKEN = "canary-sm-91d0c7"
SM_CLIENT_SECRET = "canary-smcs-0c55d2"
CANARIES = (ZD_TOKEN, IC_TOKEN, SM_TOKEN, SM_CLIENT_SECRET)
ZD_BASIC = base64.b64encode(f"{ZD_EMAIL}/token:{ZD_TOKEN}".encode()).decode()


def canary_forms() -> list[str]:
    """Each canary as it could appear in output: raw, URL-encoded, base64 alone and inside Zendesk's Basic pair."""
    forms = [ZD_BASIC]
    for canary in CANARIES:
        forms += [canary, quote(canary, safe=""), base64.b64encode(canary.encode()).decode()]
    return forms


def hits(text: str) -> list[str]:
    return [form for form in canary_forms() if form in text]


@pytest.fixture
def restore_logging() -> Iterator[None]:
    """configure_logging changes process-wide state; put it back after each test."""
    root = logging.getLogger()
    saved_handlers, saved_level = list(root.handlers), root.level
    saved_http = {name: logging.getLogger(name).level for name in ("httpx", "httpcore")}
    yield
    root.handlers[:] = saved_handlers
    root.setLevel(saved_level)
    for name, level in saved_http.items():
        logging.getLogger(name).setLevel(level)


@pytest.fixture
def credential_store(tmp_path: Path) -> CredentialStore:
    keyring = InMemoryKeyring()
    store = CredentialStore(
        environ={"ZENDESK_API_TOKEN": ZD_TOKEN, "ZENDESK_EMAIL": ZD_EMAIL, "ZENDESK_SUBDOMAIN": "acme"},
        dotenv_path=tmp_path / "absent.env",
        keyring_backend=keyring,
    )
    store.set("intercom", {"access_token": IC_TOKEN})
    store.set("surveymonkey", {"access_token": SM_TOKEN, "client_secret": SM_CLIENT_SECRET})
    return store


def capture(redactor: SecretRedactingFilter) -> tuple[logging.Logger, io.StringIO]:
    """A private logger whose only handler carries the filter, as configure_logging arranges it."""
    output = io.StringIO()
    handler = logging.StreamHandler(output)
    handler.setFormatter(logging.Formatter("%(levelname)s %(message)s"))
    handler.addFilter(redactor)
    logger = logging.getLogger(f"test.redaction.{id(output)}")
    logger.propagate = False
    logger.handlers[:] = [handler]
    logger.setLevel(logging.DEBUG)
    return logger, output


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        ("Authorization: Basic dXNlcjpwYXNz", "Authorization: Basic ***"),
        ("authorization=Token abc", "authorization=Token ***"),
        ("Proxy-Authorization: opaque-value", "Proxy-Authorization: ***"),
        ("{'authorization': 'Bearer abc.def-123'}", "{'authorization': 'Bearer ***'}"),
        (
            "[(b'Host', b'x'), (b'Authorization', b'Basic Zm9vOmJhcg==')]",
            "[(b'Host', b'x'), (b'Authorization', b'Basic ***')]",
        ),
        ("sent Bearer abcdefgh12 upstream", "sent Bearer *** upstream"),
        ("GET /v3/surveys?access_token=tok123&page=2", "GET /v3/surveys?access_token=***&page=2"),
        ("form api_token=abc&x=1", "form api_token=***&x=1"),
        ('{"access_token": "abc", "token_type": "bearer"}', '{"access_token": "***", "token_type": "bearer"}'),
        ("client_secret=s3cr3t", "client_secret=***"),
        # Ordinary prose stays readable.
        ("basic setup done; bearer of news", "basic setup done; bearer of news"),
        ("next_page_token=abc page=2", "next_page_token=abc page=2"),
    ],
)
def test_credential_shapes_are_redacted_without_knowing_the_value(line: str, expected: str) -> None:
    assert SecretRedactingFilter().redact(line) == expected


def test_known_secrets_are_redacted_in_message_args_and_encoded_forms() -> None:
    logger, output = capture(SecretRedactingFilter([ZD_TOKEN, "tok/with+specials="]))
    logger.info("token %s in %r", ZD_TOKEN, {"t": ZD_TOKEN})
    logger.info("encoded %s and %s", quote("tok/with+specials=", safe=""), base64.b64encode(ZD_TOKEN.encode()).decode())
    assert output.getvalue() == "INFO token *** in {'t': '***'}\nINFO encoded *** and ***\n"


def test_secret_added_at_runtime_is_redacted_from_then_on() -> None:
    redactor = SecretRedactingFilter()
    logger, output = capture(redactor)
    logger.info("before %s", SM_TOKEN)
    redactor.add_secret(SM_TOKEN)
    logger.info("after %s", SM_TOKEN)
    assert output.getvalue() == f"INFO before {SM_TOKEN}\nINFO after ***\n"


def test_callable_source_is_reread_and_its_failures_do_not_break_logging() -> None:
    current = [IC_TOKEN]
    failing = {"now": False}

    def source() -> list[str]:
        if failing["now"]:
            raise RuntimeError("keyring locked")
        return list(current)

    redactor = SecretRedactingFilter(source, refresh_seconds=0)
    logger, output = capture(redactor)
    logger.info("%s %s", IC_TOKEN, SM_TOKEN)
    current.append(SM_TOKEN)
    logger.info("%s %s", IC_TOKEN, SM_TOKEN)
    failing["now"] = True
    logger.info("%s %s", IC_TOKEN, SM_TOKEN)  # keeps the last known secrets
    assert output.getvalue() == f"INFO *** {SM_TOKEN}\nINFO *** ***\nINFO *** ***\n"


def test_exception_text_and_stack_are_redacted() -> None:
    logger, output = capture(SecretRedactingFilter([ZD_TOKEN]))
    try:
        try:
            raise KeyError(f"no tenant for {ZD_TOKEN}")
        except KeyError as inner:
            raise RuntimeError(f"request with api_token={ZD_TOKEN} failed") from inner
    except RuntimeError:
        logger.exception("sync failed for %s", ZD_TOKEN)
    logger.warning("where", stack_info=True, extra={"unused": 1})
    text = output.getvalue()
    assert hits(text) == []
    assert "ERROR sync failed for ***\nTraceback (most recent call last):" in text
    assert "KeyError: 'no tenant for ***'" in text
    assert "RuntimeError: request with api_token=*** failed" in text
    assert "Stack (most recent call last):" in text


def test_filter_freezes_the_record_so_later_formatting_cannot_leak() -> None:
    redactor = SecretRedactingFilter([ZD_TOKEN])
    try:
        raise ValueError(ZD_TOKEN)
    except ValueError:
        record = logging.LogRecord("x", logging.ERROR, __file__, 1, "got %s", (ZD_TOKEN,), sys.exc_info())
    assert redactor.filter(record) is True
    assert (record.msg, record.args, record.exc_info) == ("got ***", None, None)
    assert record.exc_text.endswith("ValueError: ***")


@pytest.fixture
def local_server() -> Iterator[str]:
    """A real HTTP server on 127.0.0.1, so httpcore's own DEBUG records are produced."""

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 (http.server naming)
            body = b'{"ok": true}'
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def test_debug_http_logging_shows_requests_but_no_canary(
    restore_logging: None, credential_store: CredentialStore, local_server: str
) -> None:
    output = io.StringIO()
    redactor = configure_logging(debug=True, secrets=credential_store.secret_values, stream=output)
    wire = logging.getLogger("httpcore.http11")
    seen_authorization: list[str] = []

    def vendor(request: httpx.Request) -> httpx.Response:
        # What a wire-level trace would print: the raw header list and the full URL.
        wire.debug("send_request_headers.complete headers=%r", request.headers.raw)
        wire.debug("request url=%s headers=%s", request.url, dict(request.headers))
        seen_authorization.append(request.headers["authorization"])
        return httpx.Response(200, json={"echo": str(request.url)})

    async def sync_all() -> None:
        transport = httpx.MockTransport(vendor)
        async with httpx.AsyncClient(transport=transport, timeout=5) as client:
            await client.get(
                "https://acme.zendesk.com/api/v2/incremental/tickets/cursor.json",
                auth=(f"{ZD_EMAIL}/token", ZD_TOKEN),
            )
            await client.get("https://api.intercom.io/conversations", headers={"Authorization": f"Bearer {IC_TOKEN}"})
            response = await client.get(
                "https://api.surveymonkey.com/v3/surveys",
                params={"access_token": SM_TOKEN},
                headers={"Authorization": f"Bearer {SM_TOKEN}"},
            )
            logging.getLogger("feedback_sources.sync").debug("page body %s", response.text)
        async with httpx.AsyncClient(timeout=5) as client:
            await client.get(f"{local_server}/zendesk/acme/api/v2/tickets", auth=(f"{ZD_EMAIL}/token", ZD_TOKEN))

    asyncio.run(sync_all())
    try:
        raise httpx.HTTPStatusError(
            f"401 for https://api.surveymonkey.com/v3/surveys?access_token={SM_TOKEN}",
            request=httpx.Request("GET", "https://api.surveymonkey.com"),
            response=httpx.Response(401),
        )
    except httpx.HTTPStatusError:
        logging.getLogger("feedback_sources.sync").exception("surveymonkey failed (secret %s)", SM_CLIENT_SECRET)

    text = output.getvalue()
    # The secrets really travelled, so a missing redaction would show up below.
    assert seen_authorization == [f"Basic {ZD_BASIC}", f"Bearer {IC_TOKEN}", f"Bearer {SM_TOKEN}"]
    assert "INFO httpx: HTTP Request: GET https://acme.zendesk.com/api/v2/incremental/tickets/cursor.json" in text
    assert "DEBUG httpcore.connection: connect_tcp.started host='127.0.0.1'" in text
    assert "(b'Authorization', b'Basic ***')" in text
    assert "access_token=***" in text
    assert "surveymonkey failed (secret ***)" in text
    assert hits(text) == []
    assert redactor is configure_logging(debug=True)


def test_configure_logging_is_idempotent_and_sets_levels(restore_logging: None) -> None:
    first_output, second_output = io.StringIO(), io.StringIO()
    first = configure_logging(debug=False, secrets=[IC_TOKEN], stream=first_output)
    second = configure_logging(debug=True, secrets=[SM_TOKEN], stream=second_output)
    root = logging.getLogger()
    ours = [h for h in root.handlers if any(isinstance(f, SecretRedactingFilter) for f in h.filters)]
    assert second is first
    assert ours == [root.handlers[0]]
    assert (root.level, logging.getLogger("httpx").level, logging.getLogger("httpcore").level) == (
        logging.DEBUG,
        logging.DEBUG,
        logging.DEBUG,
    )
    logging.getLogger("feedback_sources.test").info("%s and %s", IC_TOKEN, SM_TOKEN)
    assert second_output.getvalue().endswith("INFO feedback_sources.test: *** and ***\n")
    assert first_output.getvalue() == ""

    configure_logging(debug=False)
    assert (root.level, logging.getLogger("httpx").level, logging.getLogger("httpcore").level) == (
        logging.INFO,
        logging.WARNING,
        logging.WARNING,
    )


def test_handlers_installed_earlier_also_receive_redacted_records(restore_logging: None) -> None:
    earlier_output = io.StringIO()
    earlier = logging.StreamHandler(earlier_output)
    logging.getLogger().addHandler(earlier)
    configure_logging(secrets=[ZD_TOKEN], stream=io.StringIO())
    logging.getLogger("feedback_sources.test").warning("token %s", ZD_TOKEN)
    assert earlier_output.getvalue() == "token ***\n"
