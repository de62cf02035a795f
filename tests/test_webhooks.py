"""The webhook receiver over real HTTP (uvicorn on 127.0.0.1): signed deliveries become records, everything else is
refused and stores nothing, and events that carry only ids are fetched from the emulator, across restarts too."""

from __future__ import annotations

import copy
import inspect
import json
import logging
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from feedback_sources.emulator import Emulator, EmulatorConfig, run_emulator_server
from feedback_sources.sources.intercom.emulator import DEMO_INTERCOM_TOKEN
from feedback_sources.sources.surveymonkey.emulator import DEMO_SURVEYMONKEY_TOKEN
from feedback_sources.sources.zendesk.emulator import (
    DEMO_ZENDESK_EMAIL, DEMO_ZENDESK_SUBDOMAIN, DEMO_ZENDESK_TOKEN,
)
from feedback_sources.integrations.http import RetryPolicy
from feedback_sources.sources.intercom.integration import IntercomIntegration, map_conversation
from feedback_sources.sources.surveymonkey.integration import SurveyMonkeyIntegration
from feedback_sources.sources.surveymonkey.mapping import map_response
from feedback_sources.sources.zendesk.integration import ZendeskIntegration
from feedback_sources.sources.zendesk.mapping import index_by_id, map_ticket
from feedback_sources.rules import DEFAULT_RULES
from feedback_sources.store import Filters, Store, record_row
from feedback_sources.webhooks import receiver_status, recent_events
from feedback_sources.webhooks.app import create_receiver_app
from feedback_sources.webhooks.fetch import FetchPolicy
from feedback_sources.webhooks.server import running_receiver, serve
from feedback_sources.sources.intercom.webhooks import intercom_signature
from feedback_sources.sources.surveymonkey.webhooks import surveymonkey_signature
from feedback_sources.sources.zendesk.webhooks import zendesk_signature
from tests.helpers import wait_for

ZENDESK_SECRET = "zd-signing-secret-canary-81f2"
INTERCOM_SECRET = "ic-client-secret-canary-9c0d"
SM_CLIENT_ID = "sm-client-id-canary-44ab"
SM_CLIENT_SECRET = "sm-client-secret-canary-7e19"
SECRETS = {
    "zendesk": {"webhook_secret": ZENDESK_SECRET, "subdomain": "acme"},
    "intercom": {"client_secret": INTERCOM_SECRET},
    "surveymonkey": {"client_id": SM_CLIENT_ID, "client_secret": SM_CLIENT_SECRET},
}


class FakeClock:
    def __init__(self) -> None:
        self.now = time.time()

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


# -- vendor deliveries -------------------------------------------------------------------------------------------


def zendesk_event(event_id: str = "01HZENDESK0001", ticket_id: str = "35436", **detail: Any) -> dict[str, Any]:
    ticket = {
        "id": ticket_id,
        "subject": "Export button crashes the page",
        "description": "When I click Export the page goes blank and nothing downloads.",
        "status": "Open",
        "priority": "high",
        "type": "problem",
        "tags": ["export", "bug"],
        "requester_id": "20978392",
        "organization_id": None,
        "created_at": "2026-05-02T09:15:00Z",
        "updated_at": "2026-05-02T09:20:00Z",
        "via": {"channel": "web"},
    }
    ticket.update(detail)
    return {
        "type": "zen:event-type:ticket.created",
        "account_id": 88888888,
        "id": event_id,
        "time": "2026-05-02T09:20:00Z",
        "zendesk_event_version": "2022-11-06",
        "subject": f"zen:ticket:{ticket_id}",
        "detail": {k: v for k, v in ticket.items() if v is not None},
        "event": {"current": {"status": "Open"}},
    }


def intercom_conversation(conversation_id: str = "4711") -> dict[str, Any]:
    return {
        "type": "conversation",
        "id": conversation_id,
        "created_at": 1777712100,
        "updated_at": 1777712400,
        "title": None,
        "state": "open",
        "priority": "not_priority",
        "source": {
            "type": "conversation",
            "id": "9001",
            "delivered_as": "customer_initiated",
            "subject": "",
            "body": "<p>Could you add a dark mode? My eyes hurt at night.</p>",
            "author": {"type": "user", "id": "contact-77", "name": "Ana Ruiz", "email": "ana@acme.example"},
        },
        "contacts": {"type": "contact.list", "contacts": [{"type": "contact", "id": "contact-77", "external_id": None}]},
        "tags": {"type": "tag.list", "tags": [{"type": "tag", "id": "1", "name": "feature-request"}]},
        "custom_attributes": {},
        "conversation_parts": {"type": "conversation_part.list", "conversation_parts": [], "total_count": 0},
    }


def intercom_event(event_id: str = "notif_0001", item: dict[str, Any] | None = None,
                   topic: str = "conversation.user.created") -> dict[str, Any]:
    return {
        "type": "notification_event",
        "id": event_id,
        "topic": topic,
        "app_id": "demoapp1",
        "created_at": 1777712400,
        "delivery_attempts": 1,
        "first_sent_at": 1777712400,
        "data": {"type": "notification_event_data", "item": item if item is not None else intercom_conversation()},
    }


def surveymonkey_event(event_id: str = "10001", response_id: str = "5001", survey_id: str = "4001") -> dict[str, Any]:
    return {
        "name": "Feedback hub",
        "filter_type": "survey",
        "filter_id": survey_id,
        "event_type": "response_completed",
        "event_id": event_id,
        "object_type": "response",
        "object_id": response_id,
        "event_datetime": "2026-05-02T09:30:00.000000+00:00",
        "resources": {"respondent_id": response_id, "recipient_id": "0", "survey_id": survey_id,
                      "collector_id": "3001", "user_id": "2001"},
    }


def encode(payload: Any) -> bytes:
    return json.dumps(payload, separators=(",", ":")).encode()


def signed_zendesk(body: bytes, *, at: float, secret: str = ZENDESK_SECRET) -> dict[str, str]:
    timestamp = datetime.fromtimestamp(int(at), tz=timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    return {
        "Content-Type": "application/json",
        "X-Zendesk-Webhook-Signature": zendesk_signature(secret, timestamp, body),
        "X-Zendesk-Webhook-Signature-Timestamp": timestamp,
    }


def signed_intercom(body: bytes, *, secret: str = INTERCOM_SECRET, **_: Any) -> dict[str, str]:
    return {"Content-Type": "application/json", "X-Hub-Signature": intercom_signature(secret, body)}


def signed_surveymonkey(body: bytes, *, client_secret: str = SM_CLIENT_SECRET, **_: Any) -> dict[str, str]:
    return {
        "Content-Type": "application/vnd.surveymonkey.response.v1+json",
        "Sm-Apikey": SM_CLIENT_ID,
        "Sm-Signature": surveymonkey_signature(SM_CLIENT_ID, client_secret, body),
    }


SIGNERS: dict[str, Callable[..., dict[str, str]]] = {
    "zendesk": signed_zendesk,
    "intercom": signed_intercom,
    "surveymonkey": signed_surveymonkey,
}


# -- running receivers -------------------------------------------------------------------------------------------


class Running:
    def __init__(self, base_url: str, db_path: Path, clock: FakeClock):
        self.base_url = base_url
        self.db_path = db_path
        self.clock = clock
        self.http = httpx.Client(base_url=base_url, timeout=10.0)

    def deliver(self, source: str, payload: Any, *, headers: dict[str, str] | None = None) -> httpx.Response:
        body = payload if isinstance(payload, bytes) else encode(payload)
        signed = SIGNERS[source](body, at=self.clock())
        return self.http.post(f"/webhooks/{source}", content=body, headers=headers if headers is not None else signed)

    def counts(self) -> dict[str, int]:
        with Store(self.db_path) as store:
            return {
                table: store.conn.execute(f"SELECT COUNT(*) FROM {table}").fetchone()[0]
                for table in ("feedback", "webhook_events", "webhook_fetches")
            }

    def record(self, source: str, source_id: str) -> dict[str, Any] | None:
        with Store(self.db_path) as store:
            return store.get_record(source, source_id)


@contextmanager
def receiver(tmp_path: Path, *, clock: FakeClock | None = None, db_name: str = "feedback.db", **options: Any) -> Iterator[Running]:
    clock = clock or FakeClock()
    options.setdefault("rate_per_minute", 100_000)
    db_path = tmp_path / db_name
    app = create_receiver_app(db_path, SECRETS, clock=clock, **options)
    with running_receiver(app) as base_url:
        running = Running(base_url, db_path, clock)
        try:
            yield running
        finally:
            running.http.close()


def expected_row(record: Any) -> dict[str, Any]:
    row = record_row(record, "ignored")
    row.pop("synced_at")
    row["metadata"] = json.loads(row["metadata"])
    row["tags"] = json.loads(row["tags"])
    return row


def stored_row(running: Running, source: str, source_id: str) -> dict[str, Any] | None:
    found = running.record(source, source_id)
    if found is not None:
        found.pop("synced_at")
    return found


# -- valid deliveries ----------------------------------------------------------------------------------------------


def test_signed_events_become_normalized_records(tmp_path: Path):
    with receiver(tmp_path) as running:
        zendesk = running.deliver("zendesk", zendesk_event())
        intercom = running.deliver("intercom", intercom_event())
        surveymonkey = running.deliver("surveymonkey", surveymonkey_event())

        assert [r.status_code for r in (zendesk, intercom, surveymonkey)] == [200, 200, 200]
        assert [r.json() for r in (zendesk, intercom, surveymonkey)] == [
            {"ok": True, "verdict": "stored"},
            {"ok": True, "verdict": "stored"},
            {"ok": True, "verdict": "queued"},
        ]
        ticket = stored_row(running, "zendesk", "35436")
        assert ticket == expected_row(
            map_ticket(zendesk_event()["detail"], {}, subdomain="acme", rules=DEFAULT_RULES)
        )
        assert (ticket["title"], ticket["content"], ticket["url"], ticket["category"]) == (
            "Export button crashes the page",
            "When I click Export the page goes blank and nothing downloads.",
            "https://acme.zendesk.com/agent/tickets/35436",
            "bug_report",
        )
        conversation = stored_row(running, "intercom", "4711")
        assert conversation == expected_row(
            map_conversation(intercom_conversation(), None, app_id="demoapp1", rules=DEFAULT_RULES)
        )
        assert (conversation["content"], conversation["customer_email"], conversation["category"]) == (
            "Could you add a dark mode? My eyes hurt at night.",
            "ana@acme.example",
            "feature_request",
        )
        # SurveyMonkey sends ids only: nothing to store until the response is fetched.
        assert running.record("surveymonkey", "5001") is None
        assert running.counts() == {"feedback": 2, "webhook_events": 3, "webhook_fetches": 1}


def test_redelivery_is_stored_once(tmp_path: Path):
    with receiver(tmp_path) as running:
        first = running.deliver("zendesk", zendesk_event())
        again = running.deliver("zendesk", zendesk_event())
        intercom_first = running.deliver("intercom", intercom_event())
        intercom_late = running.deliver("intercom", intercom_event())  # hours late is fine: no freshness window
        sm_first = running.deliver("surveymonkey", surveymonkey_event())
        sm_again = running.deliver("surveymonkey", surveymonkey_event())

        assert [r.json()["verdict"] for r in (first, again, intercom_first, intercom_late, sm_first, sm_again)] == [
            "stored", "duplicate", "stored", "duplicate", "queued", "duplicate",
        ]
        assert running.counts() == {"feedback": 2, "webhook_events": 3, "webhook_fetches": 1}
        with Store(running.db_path) as store:
            events = [(e["source"], e["event_id"], e["deliveries"]) for e in recent_events(store, 10)]
        assert events == [("surveymonkey", "10001", 2), ("intercom", "notif_0001", 2), ("zendesk", "01HZENDESK0001", 2)]


def test_newer_event_for_the_same_ticket_wins_and_an_older_one_does_not(tmp_path: Path):
    with receiver(tmp_path) as running:
        running.deliver("zendesk", zendesk_event("e-new", updated_at="2026-05-03T10:00:00Z", subject="New subject"))
        running.deliver("zendesk", zendesk_event("e-old", updated_at="2026-05-02T10:00:00Z", subject="Old subject"))
        assert running.record("zendesk", "35436")["title"] == "New subject"


@pytest.mark.parametrize(
    ("source", "payload", "detail"),
    [
        ("zendesk", {**zendesk_event("u-1"), "type": "zen:event-type:user.created"}, "not a ticket event"),
        ("intercom", {**intercom_event("ping-1"), "topic": "ping"}, "ping"),
        ("intercom", {**intercom_event("c-1"), "topic": "contact.user.created"}, "not a conversation event"),
        ("surveymonkey", {**surveymonkey_event("col-1"), "event_type": "collector_created"}, "not a response event"),
    ],
)
def test_events_that_are_not_feedback_are_logged_and_ignored(tmp_path: Path, source: str, payload: dict, detail: str):
    with receiver(tmp_path) as running:
        response = running.deliver(source, payload)
        with Store(running.db_path) as store:
            logged = [(e["verdict"], e["detail"]) for e in recent_events(store, 5)]
        assert (response.status_code, response.json()["verdict"]) == (200, "ignored")
        assert logged == [("ignored", detail)]
        assert running.counts() == {"feedback": 0, "webhook_events": 1, "webhook_fetches": 0}


@pytest.mark.parametrize(
    ("event_type", "reason"),
    [
        ("zen:event-type:ticket.soft_deleted", "deleted"),
        ("zen:event-type:ticket.permanently_deleted", "deleted"),
        ("zen:event-type:ticket.marked_as_spam", "spam"),
    ],
)
def test_a_removed_ticket_leaves_the_store_and_a_replay_never_brings_it_back(tmp_path: Path, event_type: str, reason: str):
    removal = {
        **zendesk_event("rm-1"),
        "type": event_type,
        "time": "2026-05-02T10:00:00Z",
        # Zendesk's removal events carry the ticket's last state in `detail`, the description among it.
        "detail": {"id": "35436", "status": "deleted", "updated_at": "2026-05-02T10:00:00Z"},
    }
    with receiver(tmp_path) as running:
        running.deliver("zendesk", zendesk_event("e-1"))
        assert running.record("zendesk", "35436") is not None
        response = running.deliver("zendesk", removal)
        assert (response.status_code, response.json()["verdict"]) == (200, "removed")
        # A late redelivery of the creation event under a new id, and an update from before the removal.
        running.deliver("zendesk", zendesk_event("e-late"))
        running.deliver("zendesk", zendesk_event("e-older-update", updated_at="2026-05-02T09:59:59Z"))
        assert running.record("zendesk", "35436") is None
        with Store(running.db_path) as store:
            assert store.count(Filters(text="blank")) == 0
            assert store.removal_counts() == {"zendesk": {reason: 1}}
            assert [(e["verdict"], e["detail"]) for e in recent_events(store, 5)][2] == ("removed", f"ticket {reason}")
        # Restored from the trash: a version updated after the removal is feedback again.
        running.deliver("zendesk", zendesk_event("e-restored", updated_at="2026-05-02T11:00:00Z"))
        assert running.record("zendesk", "35436")["title"] == "Export button crashes the page"


def test_a_ticket_event_with_status_deleted_removes_the_ticket(tmp_path: Path):
    with receiver(tmp_path) as running:
        running.deliver("zendesk", zendesk_event("e-1"))
        response = running.deliver("zendesk", zendesk_event("e-2", status="deleted", updated_at="2026-05-02T09:30:00Z"))
        assert (response.status_code, response.json()["verdict"]) == (200, "removed")
        assert running.record("zendesk", "35436") is None


@pytest.mark.parametrize("object_id", ["../../users/me", "5001/../../surveys", "", "a b", "..", "%2e%2e"])
def test_ids_that_could_change_the_fetched_path_are_refused(tmp_path: Path, object_id: str):
    with receiver(tmp_path) as running:
        response = running.deliver("surveymonkey", surveymonkey_event("sm-path", object_id))
        assert (response.status_code, response.json()["verdict"]) == (200, "unmappable")
        assert running.counts() == {"feedback": 0, "webhook_events": 1, "webhook_fetches": 0}


# -- forgeries and malformed deliveries ----------------------------------------------------------------------------


def one_byte_changed(body: bytes) -> bytes:
    changed = bytearray(body)
    changed[len(changed) // 2] ^= 0x01
    return bytes(changed)


def forgeries(source: str, clock: FakeClock) -> dict[str, tuple[bytes, dict[str, str]]]:
    payload = {"zendesk": zendesk_event, "intercom": intercom_event, "surveymonkey": surveymonkey_event}[source]()
    body = encode(payload)
    sign = SIGNERS[source]
    good = sign(body, at=clock())
    secret_option = {"zendesk": "secret", "intercom": "secret", "surveymonkey": "client_secret"}[source]
    signature_header = {"zendesk": "X-Zendesk-Webhook-Signature", "intercom": "X-Hub-Signature",
                        "surveymonkey": "Sm-Signature"}[source]
    cases = {
        "wrong secret": (body, sign(body, at=clock(), **{secret_option: "not-the-secret"})),
        "one changed byte": (one_byte_changed(body), good),
        "missing header": (body, {k: v for k, v in good.items() if k != signature_header}),
        "re-serialized json": (json.dumps(payload, indent=2).encode(), good),
        "no headers at all": (body, {"Content-Type": "application/json"}),
    }
    if source == "zendesk":
        cases["stale timestamp"] = (body, sign(body, at=clock() - 301))
        cases["future timestamp"] = (body, sign(body, at=clock() + 301))
        cases["missing timestamp"] = (body, {k: v for k, v in good.items() if "Timestamp" not in k})
    return cases


@pytest.mark.parametrize("source", ["zendesk", "intercom", "surveymonkey"])
def test_forgeries_are_refused_and_store_nothing(tmp_path: Path, source: str):
    with receiver(tmp_path) as running:
        statuses = {
            name: running.http.post(f"/webhooks/{source}", content=body, headers=headers).status_code
            for name, (body, headers) in forgeries(source, running.clock).items()
        }
        assert statuses == {name: 401 for name in statuses}
        assert running.counts() == {"feedback": 0, "webhook_events": 0, "webhook_fetches": 0}


def test_a_source_without_secrets_rejects_every_delivery(tmp_path: Path):
    clock = FakeClock()
    app = create_receiver_app(tmp_path / "f.db", {"zendesk": {"webhook_secret": ZENDESK_SECRET}}, clock=clock)
    with running_receiver(app) as base_url, httpx.Client(base_url=base_url) as http:
        body = encode(intercom_event())
        # Even a delivery signed with the empty secret is refused: no secret means no deliveries, not no check.
        refused = http.post("/webhooks/intercom", content=body, headers=signed_intercom(body, secret=""))
        accepted = http.post("/webhooks/zendesk", content=encode(zendesk_event()),
                             headers=signed_zendesk(encode(zendesk_event()), at=clock()))
    assert (refused.status_code, refused.json()) == (401, {"ok": False, "error": "signature verification failed"})
    assert accepted.status_code == 200
    assert app.state.receiver.source_states() == {
        "zendesk": {"accepting": True, "missing": [], "fetches": False},
        "intercom": {"accepting": False, "missing": ["client_secret"], "fetches": False},
        "surveymonkey": {"accepting": False, "missing": ["client_id", "client_secret"], "fetches": False},
    }


@pytest.mark.parametrize(
    ("source", "body"),
    [
        ("zendesk", b"{not json"),
        ("zendesk", b"[1, 2, 3]"),
        ("zendesk", b'"a string"'),
        ("zendesk", b""),
        ("intercom", b"\xff\xfe{}"),
        ("intercom", b'{"id": NaN}'),
        ("intercom", b'{"topic": "conversation.user.created"}'),
        ("surveymonkey", b'{"event_type": "response_completed", "object_id": "1"}'),
        ("surveymonkey", b"[" * 100_000 + b"]" * 100_000),
    ],
    ids=["broken", "array", "string", "empty", "not-utf8", "nan", "no-event-id", "no-sm-event-id", "deep-nesting"],
)
def test_malformed_signed_bodies_get_400_and_store_nothing(tmp_path: Path, source: str, body: bytes):
    with receiver(tmp_path, max_body=500_000) as running:
        response = running.deliver(source, body)
        assert response.status_code == 400
        assert running.counts() == {"feedback": 0, "webhook_events": 0, "webhook_fetches": 0}


def raw_exchange(base_url: str, request_head: bytes, body_parts: list[bytes]) -> bytes:
    """Send a hand-made request (possibly never finishing its body) and read what the server answers."""
    host, port = base_url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=5) as sock:
        sock.sendall(request_head)
        for part in body_parts:
            sock.sendall(part)
        sock.settimeout(5)
        return sock.recv(65536)


def test_oversize_bodies_get_413_with_and_without_content_length(tmp_path: Path):
    cap = 1000
    with receiver(tmp_path, max_body=cap) as running:
        large = encode(zendesk_event(description="x" * 2000))
        assert len(large) > cap
        declared = running.http.post("/webhooks/zendesk", content=large, headers=signed_zendesk(large, at=running.clock()))

        def chunks() -> Iterator[bytes]:
            for offset in range(0, len(large), 400):
                yield large[offset : offset + 400]

        streamed = running.http.post("/webhooks/zendesk", content=chunks(), headers=signed_zendesk(large, at=running.clock()))
        assert "content-length" not in {k.lower() for k in streamed.request.headers}

        # Signature headers that pass the checks made before the body is read (their digests are for other bytes).
        zendesk_head = "".join(f"{k}: {v}\r\n" for k, v in signed_zendesk(b"{}", at=running.clock()).items()).encode()
        intercom_head = b"X-Hub-Signature: sha1=" + b"0" * 40 + b"\r\n"
        # A declared size over the cap is refused before a single body byte is sent.
        head_only = raw_exchange(
            running.base_url,
            b"POST /webhooks/zendesk HTTP/1.1\r\nHost: x\r\n" + zendesk_head + b"Content-Length: 50000000\r\n\r\n",
            [],
        )
        # A chunked body is cut off at the cap: the answer comes although the body never ends.
        endless = raw_exchange(
            running.base_url,
            b"POST /webhooks/intercom HTTP/1.1\r\nHost: x\r\n" + intercom_head + b"Transfer-Encoding: chunked\r\n\r\n",
            [b"258\r\n" + b"a" * 600 + b"\r\n", b"258\r\n" + b"b" * 600 + b"\r\n"],
        )
        assert (declared.status_code, streamed.status_code) == (413, 413)
        assert head_only.startswith(b"HTTP/1.1 413 ")
        assert endless.startswith(b"HTTP/1.1 413 ")
        assert running.counts() == {"feedback": 0, "webhook_events": 0, "webhook_fetches": 0}

        padding = cap - len(encode(zendesk_event("at-cap", description="")))
        at_cap = encode(zendesk_event("at-cap", description="y" * padding))
        over_cap = encode(zendesk_event("at-cap", description="y" * (padding + 1)))
        assert (len(at_cap), len(over_cap)) == (cap, cap + 1)
        assert (running.deliver("zendesk", at_cap).status_code, running.deliver("zendesk", over_cap).status_code) == (
            200,
            413,
        )


def test_flood_gets_429_then_a_delivery_after_the_window_gets_200(tmp_path: Path):
    clock = FakeClock()
    with receiver(tmp_path, clock=clock, rate_per_minute=5) as running:
        accepted = [running.deliver("intercom", intercom_event(f"notif_{n}")).status_code for n in range(5)]
        flooded = running.deliver("intercom", intercom_event("notif_flood"))
        other_source = running.deliver("zendesk", zendesk_event())  # each source has its own bucket
        clock.advance(60)
        after_window = running.deliver("intercom", intercom_event("notif_after"))

    assert accepted == [200] * 5
    assert (flooded.status_code, flooded.headers["retry-after"]) == (429, "12")
    assert other_source.status_code == 200
    assert after_window.status_code == 200


# -- routes ----------------------------------------------------------------------------------------------------------


def test_only_the_listed_routes_exist(tmp_path: Path):
    with receiver(tmp_path) as running:
        http = running.http
        answers = {
            "GET /healthz": http.get("/healthz").status_code,
            "HEAD /webhooks/surveymonkey": http.head("/webhooks/surveymonkey").status_code,
            "HEAD /webhooks/zendesk": http.head("/webhooks/zendesk").status_code,
            "GET /webhooks/zendesk": http.get("/webhooks/zendesk").status_code,
            "GET /webhooks/intercom": http.get("/webhooks/intercom").status_code,
            "PUT /webhooks/surveymonkey": http.put("/webhooks/surveymonkey", content=b"{}").status_code,
            "POST /webhooks/github": http.post("/webhooks/github", content=b"{}").status_code,
            "GET /webhooks/github": http.get("/webhooks/github").status_code,
            "POST /webhooks": http.post("/webhooks", content=b"{}").status_code,
            "GET /": http.get("/").status_code,
            "GET /docs": http.get("/docs").status_code,
            "GET /redoc": http.get("/redoc").status_code,
            "GET /openapi.json": http.get("/openapi.json").status_code,
        }
    assert answers == {
        "GET /healthz": 200,
        "HEAD /webhooks/surveymonkey": 200,
        "HEAD /webhooks/zendesk": 200,
        "GET /webhooks/zendesk": 405,
        "GET /webhooks/intercom": 405,
        "PUT /webhooks/surveymonkey": 405,
        "POST /webhooks/github": 404,
        "GET /webhooks/github": 404,
        "POST /webhooks": 404,
        "GET /": 404,
        "GET /docs": 404,
        "GET /redoc": 404,
        "GET /openapi.json": 404,
    }


def test_binds_loopback_by_default():
    from feedback_sources.cli import build_parser

    assert build_parser().parse_args(["serve-webhooks"]).host == "127.0.0.1"
    assert inspect.signature(serve).parameters["host"].default == "127.0.0.1"
    assert inspect.signature(running_receiver).parameters["host"].default == "127.0.0.1"


# -- logging and status ----------------------------------------------------------------------------------------------


def test_every_event_is_logged_without_secrets_or_bodies(tmp_path: Path, caplog: pytest.LogCaptureFixture):
    with caplog.at_level(logging.INFO, logger="feedback_sources.webhooks"):
        with receiver(tmp_path) as running:
            running.deliver("zendesk", zendesk_event())
            running.deliver("zendesk", zendesk_event())
            body = encode(intercom_event())
            running.http.post("/webhooks/intercom", content=one_byte_changed(body), headers=signed_intercom(body))
    lines = [r.getMessage() for r in caplog.records if r.name == "feedback_sources.webhooks"]
    deliveries = [line for line in lines if line.startswith("webhook source=")]
    assert [line.split(" latency_ms=")[0] for line in deliveries] == [
        "webhook source=zendesk event=01HZENDESK0001 type=zen:event-type:ticket.created verdict=stored status=200",
        "webhook source=zendesk event=01HZENDESK0001 type=zen:event-type:ticket.created verdict=duplicate status=200",
        "webhook source=intercom event=- type=- verdict=rejected status=401",
    ]
    assert deliveries[2].endswith("reason=signature mismatch")
    text = "\n".join(lines)
    for secret_or_content in (ZENDESK_SECRET, INTERCOM_SECRET, SM_CLIENT_SECRET, "page goes blank", "dark mode"):
        assert secret_or_content not in text


def test_receiver_status_reports_events_refusals_and_heartbeat(tmp_path: Path):
    clock = FakeClock()
    with receiver(tmp_path, clock=clock, heartbeat_interval=0.05) as running:
        running.deliver("zendesk", zendesk_event())
        running.deliver("surveymonkey", surveymonkey_event())
        body = encode(intercom_event())
        for _ in range(3):
            running.http.post("/webhooks/intercom", content=body, headers={"X-Hub-Signature": "sha1=00"})
        with Store(running.db_path) as store:

            def refusals_flushed() -> dict[str, Any] | None:
                current = receiver_status(store)
                return current if current["rejected_today"] == 3 else None

            status = wait_for(refusals_flushed)
        port = int(running.base_url.rsplit(":", 1)[1])
    with Store(running.db_path) as store:
        stopped = receiver_status(store)

    assert status["running"] is True
    assert (status["heartbeat"]["pid"], status["heartbeat"]["stopped_at"]) == (os.getpid(), None)
    assert status["events_today"] == 2
    assert status["events_today_by_source"] == {"zendesk": 1, "surveymonkey": 1}
    assert {source: (e["event_id"], e["verdict"]) for source, e in status["last_event"].items()} == {
        "zendesk": ("01HZENDESK0001", "stored"),
        "surveymonkey": ("10001", "queued"),
    }
    assert (status["rejected_today"], status["refused_today"], status["pending_fetches"]) == (3, {"rejected": 3}, 1)
    assert stopped["running"] is False
    assert stopped["heartbeat"]["stopped_at"] is not None
    assert port > 0


def test_status_of_a_store_the_receiver_never_touched(fresh_store: Store):
    assert receiver_status(fresh_store)["running"] is False
    assert receiver_status(fresh_store)["events_today"] == 0
    assert recent_events(fresh_store, 10) == []
    # The webhook tables are part of the one schema; a store the receiver never touched has nothing in them.
    tables = [row[0] for row in fresh_store.conn.execute(
        "SELECT name FROM sqlite_master WHERE type = 'table' AND name LIKE 'webhook_%'")]
    assert tables
    assert {table: fresh_store.conn.execute(f"SELECT COUNT(*) FROM {table}").fetchone()[0] for table in tables} == {
        table: 0 for table in tables}


def test_serve_webhooks_command_says_which_sources_are_refused(tmp_path: Path):
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ZENDESK_", "INTERCOM_", "SURVEYMONKEY_"))}
    env.update(
        ZENDESK_WEBHOOK_SECRET=ZENDESK_SECRET,
        PYTHON_KEYRING_BACKEND="keyring.backends.null.Keyring",
        PYTHONPATH=str(Path(__file__).resolve().parents[1]),
    )
    db_path = tmp_path / "cli.db"
    process = subprocess.Popen(
        [sys.executable, "-m", "feedback_sources", "serve-webhooks", "--port", str(port), "--db", str(db_path)],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        wait_for(lambda: _healthy(port), timeout=15)
        with Store(db_path) as store:
            running = receiver_status(store)
    finally:
        process.send_signal(signal.SIGINT)
        out, err = process.communicate(timeout=15)
    with Store(db_path) as store:
        stopped = receiver_status(store)

    assert process.returncode == 0
    assert f"Webhook receiver on http://127.0.0.1:{port}/webhooks/" in err
    assert "zendesk       accepting signed deliveries; fetches: no" in err
    assert "intercom      REJECTING every delivery: no client_secret configured. Set INTERCOM_CLIENT_SECRET" in err
    assert "SURVEYMONKEY_CLIENT_ID and SURVEYMONKEY_CLIENT_SECRET" in err
    assert ZENDESK_SECRET not in err + out
    assert (running["running"], running["heartbeat"]["host"], running["heartbeat"]["port"]) == (True, "127.0.0.1", port)
    assert running["heartbeat"]["pid"] == process.pid
    assert stopped["running"] is False


def _healthy(port: int) -> bool:
    try:
        return httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200
    except httpx.HTTPError:
        return False


# -- fetching through the integrations -------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def emulator_urls() -> Iterator[tuple[Emulator, dict[str, str]]]:
    emulator = Emulator(EmulatorConfig(seed=5, zendesk_tickets=30, intercom_conversations=20,
                                       surveymonkey_surveys=1, surveymonkey_responses_per_survey=20))
    with run_emulator_server(emulator) as root:
        yield emulator, emulator.base_urls(root)


def emulator_integrations(urls: dict[str, str]) -> Callable[[str], Any]:
    configs = {
        "zendesk": (ZendeskIntegration, {"subdomain": DEMO_ZENDESK_SUBDOMAIN, "email": DEMO_ZENDESK_EMAIL,
                                         "api_token": DEMO_ZENDESK_TOKEN, "base_url": urls["zendesk"]}),
        "intercom": (IntercomIntegration, {"access_token": DEMO_INTERCOM_TOKEN, "base_url": urls["intercom"]}),
        "surveymonkey": (SurveyMonkeyIntegration, {"access_token": DEMO_SURVEYMONKEY_TOKEN,
                                                   "base_url": urls["surveymonkey"]}),
    }

    def factory(source: str) -> Any:
        cls, config = configs[source]
        return cls(config, retry_policy=RetryPolicy(max_attempts=1), timeout=5.0)

    return factory


def served(urls: dict[str, str], source: str, path: str, params: dict[str, str] | None = None) -> Any:
    """What the emulator serves, read with a plain client (not through the code under test)."""
    auth: Any = None
    headers = {}
    if source == "zendesk":
        auth = (f"{DEMO_ZENDESK_EMAIL}/token", DEMO_ZENDESK_TOKEN)
    else:
        headers["Authorization"] = f"Bearer {DEMO_INTERCOM_TOKEN if source == 'intercom' else DEMO_SURVEYMONKEY_TOKEN}"
    response = httpx.get(urls[source] + path, params=params, auth=auth, headers=headers, timeout=5)
    response.raise_for_status()
    return response.json()


def first_response(emulator: Emulator) -> tuple[str, str]:
    survey_id = emulator.surveymonkey.survey_ids()[0]
    return survey_id, emulator.surveymonkey.responses_in_range(survey_id)[0]


def test_id_only_events_are_fetched_from_the_vendor(tmp_path: Path, emulator_urls):
    emulator, urls = emulator_urls
    survey_id, response_id = first_response(emulator)
    ticket_id = str(emulator.zendesk.all_ticket_ids()[0])
    ticket = emulator.zendesk.ticket(int(ticket_id))

    with receiver(tmp_path, integrations_factory=emulator_integrations(urls)) as running:
        sm = running.deliver("surveymonkey", surveymonkey_event("sm-1", response_id, survey_id))
        # A ticket event whose detail lacks the description: fetched instead of stored half empty.
        zd = running.deliver("zendesk", zendesk_event("zd-1", ticket_id, description=None))
        assert (sm.json()["verdict"], zd.json()["verdict"]) == ("queued", "queued")
        wait_for(lambda: running.counts()["webhook_fetches"] == 0)
        response_row = stored_row(running, "surveymonkey", response_id)
        ticket_row = stored_row(running, "zendesk", ticket_id)

    response = served(urls, "surveymonkey", f"/surveys/{survey_id}/responses/{response_id}/details")
    details = served(urls, "surveymonkey", f"/surveys/{survey_id}/details")
    assert response_row == expected_row(map_response(response, details, rules=DEFAULT_RULES))
    assert response_row["source_id"] == response_id and response_row["title"] == details["title"]

    shown = served(urls, "zendesk", f"/api/v2/tickets/{ticket_id}.json", {"include": "users,organizations"})
    assert ticket_row == expected_row(
        map_ticket(shown["ticket"], index_by_id(shown.get("users")), subdomain=DEMO_ZENDESK_SUBDOMAIN,
                   rules=DEFAULT_RULES, organizations_by_id=index_by_id(shown.get("organizations")))
    )
    assert (ticket_row["title"], ticket_row["content"] != "") == (ticket["subject"], True)


def test_the_vendor_gets_its_answer_before_the_fetch_finishes(tmp_path: Path, emulator_urls):
    emulator, urls = emulator_urls
    survey_id, response_id = first_response(emulator)
    emulator.faults.inject("surveymonkey", rf"/responses/{response_id}/details", "timeout", times=1, seconds=1.0)
    with receiver(tmp_path, integrations_factory=emulator_integrations(urls)) as running:
        started = time.monotonic()
        answer = running.deliver("surveymonkey", surveymonkey_event("sm-slow", response_id, survey_id))
        answered_after = time.monotonic() - started
        stored_at_answer = running.record("surveymonkey", response_id)
        wait_for(lambda: running.counts()["webhook_fetches"] == 0)
        assert running.record("surveymonkey", response_id) is not None
    assert (answer.status_code, stored_at_answer) == (200, None)
    assert answered_after < 0.5


def test_intercom_event_is_completed_with_the_contact(tmp_path: Path, emulator_urls):
    emulator, urls = emulator_urls
    conversation_id = emulator.intercom.all_conversation_ids()[0]
    item = emulator.intercom.conversation(conversation_id)
    with receiver(tmp_path, integrations_factory=emulator_integrations(urls)) as running:
        delivered = running.deliver("intercom", intercom_event("notif_c1", item=item))
        assert delivered.json()["verdict"] == "stored"
        wait_for(lambda: running.counts()["webhook_fetches"] == 0)
        row = stored_row(running, "intercom", conversation_id)

    conversation = served(urls, "intercom", f"/conversations/{conversation_id}")
    contact_id = conversation["contacts"]["contacts"][0]["id"]
    contact = served(urls, "intercom", f"/contacts/{contact_id}")
    assert row == expected_row(map_conversation(conversation, contact, app_id="demoapp1", rules=DEFAULT_RULES))
    assert (row["customer_email"], row["customer_id"]) == (contact["email"], contact_id)


def test_a_restart_completes_pending_fetches(tmp_path: Path, emulator_urls):
    emulator, urls = emulator_urls
    survey_id, response_id = first_response(emulator)
    # First run: the receiver cannot reach SurveyMonkey (no API credentials), so the fetch waits in the table.
    with receiver(tmp_path) as running:
        running.deliver("surveymonkey", surveymonkey_event("sm-restart", response_id, survey_id))
        assert running.counts() == {"feedback": 0, "webhook_events": 1, "webhook_fetches": 1}
    # Second run, same database, with credentials: the queue drains without any new delivery.
    with receiver(tmp_path, integrations_factory=emulator_integrations(urls)) as running:
        wait_for(lambda: running.counts()["webhook_fetches"] == 0)
        assert running.counts() == {"feedback": 1, "webhook_events": 1, "webhook_fetches": 0}
        assert running.record("surveymonkey", response_id)["source_id"] == response_id


def test_failed_fetches_are_retried_with_backoff(tmp_path: Path, emulator_urls, caplog: pytest.LogCaptureFixture):
    emulator, urls = emulator_urls
    survey_id, response_id = first_response(emulator)
    endpoint = rf"/surveys/{survey_id}/responses/{response_id}/details"
    emulator.faults.inject("surveymonkey", endpoint, 500, times=2)
    policy = FetchPolicy(base_delay=0.05, max_delay=0.2, poll_interval=0.02)
    with caplog.at_level(logging.INFO, logger="feedback_sources.webhooks"):
        with receiver(tmp_path, integrations_factory=emulator_integrations(urls), clock=time.time,
                      fetch_policy=policy) as running:
            running.deliver("surveymonkey", surveymonkey_event("sm-retry", response_id, survey_id))
            wait_for(lambda: running.counts()["webhook_fetches"] == 0)
            assert running.record("surveymonkey", response_id) is not None
    outcomes = [
        (line.split(" outcome=")[1].split(" ")[0], line.split(" attempt=")[1].split(" ")[0])
        for line in (r.getMessage() for r in caplog.records)
        if line.startswith("webhook fetch source=surveymonkey")
    ]
    assert outcomes == [("retry", "1"), ("retry", "2"), ("stored", "3")]
    assert emulator.request_count("surveymonkey", endpoint) >= 3


def test_a_fetch_that_cannot_succeed_is_given_up_at_once(tmp_path: Path, emulator_urls):
    emulator, urls = emulator_urls
    survey_id, response_id = first_response(emulator)
    emulator.faults.inject("surveymonkey", rf"/responses/{response_id}/details", 403, times=1)
    with receiver(tmp_path, integrations_factory=emulator_integrations(urls)) as running:
        running.deliver("surveymonkey", surveymonkey_event("sm-forbidden", response_id, survey_id))
        with Store(running.db_path) as store:
            failed = wait_for(lambda: [f for f in _pending(store) if f["status"] == "failed"])
            status = receiver_status(store)
    assert [(f["object_id"], f["attempts"]) for f in failed] == [(response_id, 1)]
    assert "permission" in failed[0]["last_error"]
    assert (status["pending_fetches"], status["failed_fetches"]) == (0, 1)


def _pending(store: Store) -> list[dict[str, Any]]:
    from feedback_sources.webhooks.events import pending_fetches

    return pending_fetches(store)


def test_a_record_the_vendor_no_longer_has_is_dropped_from_the_queue(tmp_path: Path, emulator_urls):
    emulator, urls = emulator_urls
    survey_id, _ = first_response(emulator)
    with receiver(tmp_path, integrations_factory=emulator_integrations(urls)) as running:
        running.deliver("surveymonkey", surveymonkey_event("sm-gone", "999999999", survey_id))
        wait_for(lambda: running.counts()["webhook_fetches"] == 0)
        assert running.counts() == {"feedback": 0, "webhook_events": 1, "webhook_fetches": 0}


@pytest.mark.parametrize(("kind", "reason"), [("response_deleted", "deleted"),
                                              ("response_disqualified", "disqualified")])
def test_a_deleted_or_disqualified_response_leaves_the_store_and_a_late_replay_never_brings_it_back(
        tmp_path: Path, kind: str, reason: str):
    # An emulator of its own: the response is changed for good.
    emulator = Emulator(EmulatorConfig(seed=9, zendesk_tickets=5, intercom_conversations=5, surveymonkey_surveys=1,
                                       surveymonkey_responses_per_survey=12,
                                       surveymonkey_client_id=SM_CLIENT_ID, surveymonkey_client_secret=SM_CLIENT_SECRET))
    survey_id = emulator.surveymonkey.survey_ids()[0]
    response_id = emulator.surveymonkey.responses_in_range(survey_id)[0]
    now = time.time()
    with run_emulator_server(emulator) as root, \
            receiver(tmp_path, integrations_factory=emulator_integrations(emulator.base_urls(root))) as running:
        url = f"{running.base_url}/webhooks/surveymonkey"
        completed = emulator.delivery("surveymonkey", "response_completed", response_id, url=url, at=now - 60)
        assert running.http.post(url, content=completed.body, headers=completed.headers).json()["verdict"] == "queued"
        wait_for(lambda: running.record("surveymonkey", response_id) is not None)
        stored = running.record("surveymonkey", response_id)

        if kind == "response_deleted":
            emulator.surveymonkey.delete_response(survey_id, response_id)
        else:
            emulator.surveymonkey.disqualify_response(survey_id, response_id)
        removal = emulator.delivery("surveymonkey", kind, response_id, url=url, at=now)
        answer = running.http.post(url, content=removal.body, headers=removal.headers)
        assert (answer.status_code, answer.json()) == (200, {"ok": True, "verdict": "removed"})
        assert running.record("surveymonkey", response_id) is None

        # Hours late, SurveyMonkey retries the completed event under a new id: fetched again, it stays out (gone,
        # or disqualified); a sync page from before the removal is refused by the tombstone.
        replay = encode({**completed.payload, "event_id": "late-replay"})
        assert running.deliver("surveymonkey", json.loads(replay)).json()["verdict"] == "queued"
        wait_for(lambda: running.counts()["webhook_fetches"] == 0)
        with Store(running.db_path) as store:
            record = map_response(emulator.surveymonkey.find_response(response_id, include_deleted=True) | {
                "response_status": "completed", "date_modified": stored["metadata"]["updated_at"]},
                None, rules=DEFAULT_RULES)
            assert store.upsert_records([record]).skipped_stale == 1
            assert store.get_record("surveymonkey", response_id) is None
            assert store.removal_counts() == {"surveymonkey": {reason: 1}}
            logged = [(e["verdict"], e["detail"]) for e in recent_events(store, 5)]
        assert ("removed", f"response {reason}") in logged
        assert running.counts()["feedback"] == 0


def test_a_response_found_disqualified_when_fetched_is_removed(tmp_path: Path):
    emulator = Emulator(EmulatorConfig(seed=9, zendesk_tickets=5, intercom_conversations=5, surveymonkey_surveys=1,
                                       surveymonkey_responses_per_survey=12))
    survey_id = emulator.surveymonkey.survey_ids()[0]
    response_id = emulator.surveymonkey.responses_in_range(survey_id)[0]
    details = f"/surveys/{survey_id}/details"
    with run_emulator_server(emulator) as root:
        factory = emulator_integrations(emulator.base_urls(root))
        with receiver(tmp_path, integrations_factory=factory) as running:
            running.deliver("surveymonkey", surveymonkey_event("sm-1", response_id, survey_id))
            wait_for(lambda: running.record("surveymonkey", response_id) is not None)
        # Disqualified by the survey owner; only the update is announced. A restarted receiver (no details cached)
        # fetches the response, sees the status and removes it without reading the survey's details.
        emulator.surveymonkey.disqualify_response(survey_id, response_id)
        details_reads = emulator.request_count("surveymonkey", details)
        with receiver(tmp_path, integrations_factory=factory) as running:
            running.deliver("surveymonkey", {**surveymonkey_event("sm-2", response_id, survey_id),
                                             "event_type": "response_updated"})
            wait_for(lambda: running.counts()["webhook_fetches"] == 0)
            assert running.record("surveymonkey", response_id) is None
            with Store(running.db_path) as store:
                assert store.removal_counts() == {"surveymonkey": {"disqualified": 1}}
        assert emulator.request_count("surveymonkey", details) == details_reads


# -- fuzzing ---------------------------------------------------------------------------------------------------------

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False) | st.text(max_size=12),
    lambda children: st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=8), children, max_size=3),
    max_leaves=12,
)

FUZZ_PATHS = {
    "zendesk": [("id",), ("type",), ("subject",), ("detail",), ("detail", "id"), ("detail", "description"),
                ("detail", "subject"), ("detail", "created_at"), ("detail", "updated_at"), ("detail", "tags"),
                ("detail", "requester_id"), ("detail", "status"), ("detail", "priority"), ("detail", "via"),
                ("detail", "type")],
    "intercom": [("id",), ("topic",), ("app_id",), ("data",), ("data", "item"), ("data", "item", "id"),
                 ("data", "item", "created_at"), ("data", "item", "updated_at"), ("data", "item", "source"),
                 ("data", "item", "source", "body"), ("data", "item", "source", "author"),
                 ("data", "item", "conversation_parts"), ("data", "item", "tags"), ("data", "item", "contacts"),
                 ("data", "item", "conversation_rating")],
    "surveymonkey": [("event_id",), ("event_type",), ("object_id",), ("resources",), ("resources", "survey_id")],
}
BASE_PAYLOADS = {"zendesk": zendesk_event, "intercom": intercom_event, "surveymonkey": surveymonkey_event}


def mutate(payload: dict[str, Any], path: tuple[str, ...], action: str, value: Any) -> dict[str, Any]:
    mutated = copy.deepcopy(payload)
    parent: Any = mutated
    for key in path[:-1]:
        if not isinstance(parent, dict) or not isinstance(parent.get(key), dict):
            return mutated
        parent = parent[key]
    if not isinstance(parent, dict):
        return mutated
    if action == "drop":
        parent.pop(path[-1], None)
    elif action == "null":
        parent[path[-1]] = None
    else:
        parent[path[-1]] = value
    return mutated


@st.composite
def fuzzed_delivery(draw: st.DrawFn) -> tuple[str, bytes]:
    source = draw(st.sampled_from(sorted(BASE_PAYLOADS)))
    if draw(st.integers(0, 9)) == 0:
        return source, draw(st.binary(max_size=200))
    payload = BASE_PAYLOADS[source]()
    for _ in range(draw(st.integers(1, 4))):
        path = draw(st.sampled_from(FUZZ_PATHS[source]))
        payload = mutate(payload, path, draw(st.sampled_from(["drop", "null", "retype"])), draw(json_values))
    return source, encode(payload)


@pytest.fixture(scope="module")
def fuzz_receiver(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Running]:
    with receiver(tmp_path_factory.mktemp("fuzz")) as running:
        yield running


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(delivery=fuzzed_delivery())
def test_fuzzed_signed_bodies_never_get_a_5xx(fuzz_receiver: Running, delivery: tuple[str, bytes]):
    source, body = delivery
    response = fuzz_receiver.deliver(source, body)
    assert response.status_code in (200, 400), response.text
