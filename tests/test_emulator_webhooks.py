"""The emulator's webhook side over real HTTP: Zendesk's and SurveyMonkey's registration endpoints (with the HEAD
check of a subscription URL), and signed events that the receiver's own verification accepts."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from feedback_sources.emulator import Emulator, EmulatorConfig, run_emulator_server
from feedback_sources.sources.intercom.emulator import DEMO_INTERCOM_CLIENT_SECRET
from feedback_sources.sources.surveymonkey.emulator import (
    DEMO_SURVEYMONKEY_CLIENT_ID, DEMO_SURVEYMONKEY_CLIENT_SECRET, DEMO_SURVEYMONKEY_TOKEN,
)
from feedback_sources.sources.zendesk.emulator import (
    DEMO_ZENDESK_EMAIL, DEMO_ZENDESK_TOKEN, DEMO_ZENDESK_WEBHOOK_SECRET,
)
from feedback_sources.webhooks.server import running_receiver
from feedback_sources.webhooks.signatures import SignatureError, verify
from tests.helpers import closed_port_url

ROOT = Path(__file__).resolve().parents[1]
RECEIVER_SECRETS = {
    "zendesk": {"webhook_secret": DEMO_ZENDESK_WEBHOOK_SECRET},
    "intercom": {"client_secret": DEMO_INTERCOM_CLIENT_SECRET},
    "surveymonkey": {"client_id": DEMO_SURVEYMONKEY_CLIENT_ID, "client_secret": DEMO_SURVEYMONKEY_CLIENT_SECRET},
}


def small_emulator(**overrides: Any) -> Emulator:
    options: dict[str, Any] = dict(seed=11, zendesk_tickets=20, intercom_conversations=10, surveymonkey_surveys=2,
                                   surveymonkey_responses_per_survey=5)
    options.update(overrides)
    return Emulator(EmulatorConfig(**options))


@dataclass
class Emulated:
    emulator: Emulator
    zendesk: httpx.Client
    surveymonkey: httpx.Client
    root: str


@pytest.fixture
def emulated() -> Iterator[Emulated]:
    emulator = small_emulator()
    with run_emulator_server(emulator) as root:
        urls = emulator.base_urls(root)
        with httpx.Client(base_url=urls["zendesk"], auth=(f"{DEMO_ZENDESK_EMAIL}/token", DEMO_ZENDESK_TOKEN),
                          timeout=10) as zendesk, \
                httpx.Client(base_url=urls["surveymonkey"], timeout=10,
                             headers={"Authorization": f"Bearer {DEMO_SURVEYMONKEY_TOKEN}"}) as surveymonkey:
            yield Emulated(emulator, zendesk, surveymonkey, root)


@dataclass
class Capture:
    """A stand-in webhook endpoint: records every delivery's raw body and headers, answers HEAD as told."""

    head_status: int = 200
    heads: int = 0
    deliveries: list[tuple[str, bytes, dict[str, str]]] = field(default_factory=list)

    def app(self) -> Starlette:
        async def endpoint(request: Request) -> Response:
            if request.method == "HEAD":
                self.heads += 1
                return Response(status_code=self.head_status)
            self.deliveries.append((request.url.path, await request.body(), dict(request.headers)))
            return Response('{"ok": true}', media_type="application/json")

        return Starlette(routes=[Route("/{path:path}", endpoint, methods=["POST", "HEAD"])])


@pytest.fixture
def capture() -> Iterator[tuple[Capture, str]]:
    found = Capture()
    with running_receiver(found.app()) as url:
        yield found, url


def zendesk_webhook(endpoint: str, **changes: Any) -> dict[str, Any]:
    webhook = {
        "name": "Feedback Hub",
        "endpoint": endpoint,
        "http_method": "POST",
        "request_format": "json",
        "status": "active",
        "subscriptions": ["zen:event-type:ticket.created", "zen:event-type:ticket.comment_added"],
    }
    webhook.update(changes)
    return {"webhook": {k: v for k, v in webhook.items() if v is not None}}


# -- Zendesk registration ----------------------------------------------------------------------------------------


def test_zendesk_webhook_is_created_read_listed_and_deleted(emulated: Emulated):
    created = emulated.zendesk.post("/api/v2/webhooks", json=zendesk_webhook("https://hooks.example.com/zd"))
    assert created.status_code == 201
    webhook = created.json()["webhook"]
    assert len(webhook["id"]) == 26 and webhook["id"].startswith("01")
    expected = {
        "id": webhook["id"],
        "name": "Feedback Hub",
        "status": "active",
        "subscriptions": ["zen:event-type:ticket.created", "zen:event-type:ticket.comment_added"],
        "created_at": webhook["created_at"],
        "created_by": "9000100",
        "updated_at": None,
        "updated_by": None,
        "endpoint": "https://hooks.example.com/zd",
        "http_method": "POST",
        "request_format": "json",
    }
    assert webhook == expected
    assert datetime.strptime(webhook["created_at"], "%Y-%m-%dT%H:%M:%SZ")

    shown = emulated.zendesk.get(f"/api/v2/webhooks/{webhook['id']}")
    listed = emulated.zendesk.get("/api/v2/webhooks")
    secret = emulated.zendesk.get(f"/api/v2/webhooks/{webhook['id']}/signing_secret")
    assert (shown.status_code, shown.json()) == (200, {"webhook": expected})
    assert listed.json() == {
        "webhooks": [expected],
        "meta": {"has_more": False, "after_cursor": None, "before_cursor": None},
        "links": {"next": None, "prev": None},
    }
    assert secret.json() == {"signing_secret": {"secret": DEMO_ZENDESK_WEBHOOK_SECRET, "algorithm": "sha256"}}
    assert emulated.emulator.registered_webhooks("zendesk") == [{
        "vendor": "zendesk", "id": webhook["id"], "name": "Feedback Hub", "url": "https://hooks.example.com/zd",
        "events": ["zen:event-type:ticket.created", "zen:event-type:ticket.comment_added"],
        "created_at": webhook["created_at"], "status": "active", "object_type": None, "object_ids": [],
        "http_method": "POST", "request_format": "json",
    }]

    deleted = emulated.zendesk.delete(f"/api/v2/webhooks/{webhook['id']}")
    gone = emulated.zendesk.get(f"/api/v2/webhooks/{webhook['id']}")
    assert (deleted.status_code, deleted.content) == (204, b"")
    assert (gone.status_code, gone.json()) == (404, {"errors": [{
        "code": "WebhookNotFound", "title": "Not found", "detail": f"No webhook with id {webhook['id']}"}]})
    assert emulated.emulator.registered_webhooks("zendesk") == []


@pytest.mark.parametrize(
    ("body", "status", "error"),
    [
        (zendesk_webhook("https://h.example/zd", name=None), 422,
         {"code": "RequiredFieldMissing", "title": "Required field missing", "detail": "name is required",
          "source": {"pointer": "/webhook/name"}}),
        (zendesk_webhook(None), 422,
         {"code": "RequiredFieldMissing", "title": "Required field missing", "detail": "endpoint is required",
          "source": {"pointer": "/webhook/endpoint"}}),
        (zendesk_webhook("https://h.example/zd", status=None), 422,
         {"code": "RequiredFieldMissing", "title": "Required field missing", "detail": "status is required",
          "source": {"pointer": "/webhook/status"}}),
        (zendesk_webhook("ftp://h.example/zd"), 422,
         {"code": "InvalidEndpoint", "title": "Invalid endpoint",
          "detail": "endpoint must be an absolute http or https URL", "source": {"pointer": "/webhook/endpoint"}}),
        (zendesk_webhook("https://h.example/zd", subscriptions=["ticket.created"]), 422,
         {"code": "InvalidSubscription", "title": "Invalid subscription",
          "detail": "ticket.created is not a Zendesk event type", "source": {"pointer": "/webhook/subscriptions"}}),
        (zendesk_webhook("https://h.example/zd", http_method="GET"), 422,
         {"code": "InvalidValue", "title": "Invalid value",
          "detail": "A webhook subscribed to events must use http_method POST and request_format json",
          "source": {"pointer": "/webhook/http_method"}}),
        ({"name": "not wrapped"}, 400,
         {"code": "InvalidRequest", "title": "Invalid request", "detail": 'The request body must be {"webhook": {...}}'}),
    ],
    ids=["no-name", "no-endpoint", "no-status", "not-http", "not-an-event", "events-need-post", "not-wrapped"],
)
def test_zendesk_refuses_an_incomplete_webhook(emulated: Emulated, body: dict, status: int, error: dict):
    response = emulated.zendesk.post("/api/v2/webhooks", json=body)
    assert (response.status_code, response.json()) == (status, {"errors": [error]})
    assert emulated.emulator.registered_webhooks("zendesk") == []


def test_zendesk_webhooks_need_the_account_and_its_credentials(emulated: Emulated):
    anonymous = httpx.post(f"{emulated.root}/zendesk/demo/api/v2/webhooks", json=zendesk_webhook("https://h.example"))
    elsewhere = emulated.zendesk.post(f"{emulated.root}/zendesk/other/api/v2/webhooks",
                                      json=zendesk_webhook("https://h.example"))
    assert (anonymous.status_code, anonymous.json()) == (401, {"error": "Couldn't authenticate you"})
    assert elsewhere.status_code == 404 and elsewhere.headers["content-type"].startswith("text/html")
    assert emulated.emulator.registered_webhooks("zendesk") == []


def test_zendesk_webhook_list_filters_and_pages(emulated: Emulated):
    for name in ("Feedback Hub", "Slack relay", "Feedback Hub"):
        assert emulated.zendesk.post("/api/v2/webhooks", json=zendesk_webhook(
            f"https://h.example/{name}", name=name)).status_code == 201
    ids = [hook["id"] for hook in emulated.emulator.registered_webhooks("zendesk")]
    params = {"filter[name_contains]": "feedback", "page[size]": 1}
    first = emulated.zendesk.get("/api/v2/webhooks", params=params).json()
    after = first["meta"]["after_cursor"]
    second = emulated.zendesk.get("/api/v2/webhooks", params={**params, "page[after]": after}).json()
    assert ([h["id"] for h in first["webhooks"]], first["meta"]["has_more"]) == ([ids[0]], True)
    assert httpx.URL(first["links"]["next"]).params["page[after]"] == after
    assert ([h["id"] for h in second["webhooks"]], second["meta"]["has_more"]) == ([ids[2]], False)


# -- SurveyMonkey registration -----------------------------------------------------------------------------------


def sm_webhook(url: str, emulator: Emulator, **changes: Any) -> dict[str, Any]:
    body = {"name": "Feedback Hub", "event_type": "response_completed", "object_type": "survey",
            "object_ids": emulator.surveymonkey.survey_ids(), "subscription_url": url}
    body.update(changes)
    return {k: v for k, v in body.items() if v is not None}


def test_surveymonkey_webhook_checks_the_address_then_is_created_listed_and_deleted(emulated: Emulated, capture):
    found, url = capture
    survey_ids = emulated.emulator.surveymonkey.survey_ids()
    created = emulated.surveymonkey.post("/webhooks", json=sm_webhook(f"{url}/hooks/sm", emulated.emulator))
    assert created.status_code == 201
    webhook = created.json()
    href = f"{emulated.root}/surveymonkey/v3/webhooks/{webhook['id']}"
    expected = {"id": webhook["id"], "name": "Feedback Hub", "event_type": "response_completed",
                "object_type": "survey", "object_ids": survey_ids, "subscription_url": f"{url}/hooks/sm",
                "href": href}
    assert webhook == expected
    assert found.heads == 1

    listed = emulated.surveymonkey.get("/webhooks").json()
    assert listed == {"data": [{"id": webhook["id"], "name": "Feedback Hub", "href": href}], "per_page": 50,
                      "page": 1, "total": 1,
                      "links": {"self": f"{emulated.root}/surveymonkey/v3/webhooks?page=1&per_page=50"}}
    assert emulated.surveymonkey.get(f"/webhooks/{webhook['id']}").json() == expected
    deleted = emulated.surveymonkey.delete(f"/webhooks/{webhook['id']}")
    assert (deleted.status_code, deleted.json()) == (200, expected)
    assert emulated.surveymonkey.get(f"/webhooks/{webhook['id']}").status_code == 404
    assert emulated.emulator.registered_webhooks("surveymonkey") == []


def sm_error(status: int, error_id: str, name: str, message: str) -> dict[str, Any]:
    return {"error": {"id": error_id, "name": name, "docs": "https://developer.surveymonkey.com/api/v3/#error-codes",
                      "message": message, "http_status_code": status}}


@pytest.mark.parametrize("answer", [404, 405, 500])
def test_surveymonkey_refuses_an_address_whose_head_check_fails(emulated: Emulated, capture, answer: int):
    found, url = capture
    found.head_status = answer
    response = emulated.surveymonkey.post("/webhooks", json=sm_webhook(f"{url}/x", emulated.emulator))
    assert (response.status_code, response.json()) == (400, sm_error(
        400, "1002", "Bad Request",
        f"The subscription_url must respond to a HEAD request with 200 OK; {url}/x did not."))
    assert found.heads == 1
    assert emulated.emulator.registered_webhooks("surveymonkey") == []


def test_surveymonkey_refuses_an_address_nobody_answers(emulated: Emulated):
    url = closed_port_url()
    response = emulated.surveymonkey.post("/webhooks", json=sm_webhook(url, emulated.emulator))
    assert response.status_code == 400
    assert response.json()["error"]["message"] == (
        f"The subscription_url must respond to a HEAD request with 200 OK; {url} did not.")
    assert emulated.emulator.registered_webhooks("surveymonkey") == []


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"subscription_url": None}, "Missing required field(s): subscription_url."),
        ({"object_ids": []}, "Missing required field(s): object_ids."),
        ({"event_type": "response_exploded"}, "Invalid value for event_type: 'response_exploded'."),
        ({"object_type": "user"}, "Invalid value for object_type: expected survey or collector."),
        ({"object_ids": ["999"]}, "Invalid value for object_ids: no survey 999."),
        ({"subscription_url": "not a url"}, "Invalid value for subscription_url: expected an http or https URL."),
    ],
)
def test_surveymonkey_refuses_an_incomplete_webhook(emulated: Emulated, capture, changes: dict, message: str):
    found, url = capture
    body = sm_webhook(f"{url}/x", emulated.emulator, **{k: v for k, v in changes.items() if v is not None})
    if changes.get("subscription_url", "") is None:
        body.pop("subscription_url")
    response = emulated.surveymonkey.post("/webhooks", json=body)
    assert (response.status_code, response.json()) == (400, sm_error(400, "1002", "Bad Request", message))
    assert (found.heads, emulated.emulator.registered_webhooks("surveymonkey")) == (0, [])


def test_surveymonkey_webhooks_need_a_token_with_the_scope(capture):
    found, url = capture
    emulator = small_emulator(surveymonkey_scopeless_tokens={"no-scopes"})
    with run_emulator_server(emulator) as root:
        response = httpx.post(f"{root}/surveymonkey/v3/webhooks", json=sm_webhook(url, emulator),
                              headers={"Authorization": "Bearer no-scopes"})
    assert response.status_code == 403
    assert response.json()["error"]["id"] == "1014"
    assert (found.heads, emulator.registered_webhooks("surveymonkey")) == (0, [])


# -- signed events -----------------------------------------------------------------------------------------------


def delivered(found: Capture) -> tuple[str, bytes, dict[str, str]]:
    assert len(found.deliveries) == 1
    return found.deliveries[0]


def test_zendesk_event_is_the_ticket_signed_with_the_webhook_secret(capture):
    found, url = capture
    emulator = small_emulator()
    ticket_id = int(emulator.newest_record_ids("zendesk")[0])
    ticket = emulator.zendesk.ticket(ticket_id)
    requester = emulator.zendesk.user(ticket["requester_id"])
    at = datetime(2026, 5, 2, 9, 20, tzinfo=timezone.utc)

    response = emulator.send_event("zendesk", "comment_added", ticket_id, url=f"{url}/wh/zd", event_id="01TESTEVENT",
                                   at=at)
    path, body, headers = delivered(found)

    def zid(value: Any) -> str:
        return "0" if value is None else str(value)

    assert (response.status_code, path) == (200, "/wh/zd")
    assert json.loads(body) == {
        "type": "zen:event-type:ticket.comment_added",
        "account_id": 88888888,
        "id": "01TESTEVENT",
        "time": "2026-05-02T09:20:00Z",
        "zendesk_event_version": "2022-11-06",
        "subject": f"zen:ticket:{ticket_id}",
        "detail": {
            "actor_id": str(ticket["requester_id"]),
            "assignee_id": zid(ticket["assignee_id"]),
            "brand_id": str(ticket["brand_id"]),
            "created_at": ticket["created_at"],
            "custom_status": "0",
            "description": ticket["description"],
            "external_id": None,
            "form_id": str(ticket["ticket_form_id"]),
            "group_id": str(ticket["group_id"]),
            "id": str(ticket_id),
            "is_public": True,
            "organization_id": zid(ticket["organization_id"]),
            "priority": ticket["priority"].upper() if ticket["priority"] else None,
            "requester_id": str(ticket["requester_id"]),
            "status": ticket["status"].upper(),
            "subject": ticket["subject"],
            "submitter_id": str(ticket["submitter_id"]),
            "tags": ticket["tags"],
            "type": ticket["type"].upper() if ticket["type"] else None,
            "updated_at": ticket["updated_at"],
            "via": {"channel": ticket["via"]["channel"]},
        },
        "event": {"comment": {"id": str(ticket_id * 1000 + 1), "body": ticket["description"], "is_public": True,
                              "author": {"id": str(ticket["requester_id"]), "is_staff": False,
                                         "name": requester["name"] if requester else ""}}},
    }
    assert headers["x-zendesk-webhook-signature-timestamp"] == "2026-05-02T09:20:00Z"
    assert (headers["content-type"], headers["user-agent"]) == ("application/json; charset=utf-8", "Zendesk Webhook")
    verify("zendesk", headers, body, RECEIVER_SECRETS["zendesk"], now=at.timestamp())
    with pytest.raises(SignatureError):
        verify("zendesk", headers, body, {"webhook_secret": "another-secret"}, now=at.timestamp())


def test_intercom_event_carries_the_conversation_signed_with_the_client_secret(capture):
    found, url = capture
    emulator = small_emulator()
    conversation_id = emulator.newest_record_ids("intercom")[0]
    hook = emulator.add_intercom_webhook(f"{url}/wh/ic")

    response = emulator.send_event("intercom", "user.replied", conversation_id, event_id="notif_1", at=1777712400)
    path, body, headers = delivered(found)

    assert (response.status_code, path, hook["events"], hook["api_version"]) == (200, "/wh/ic", [
        "conversation.user.created", "conversation.user.replied", "conversation.admin.closed",
        "conversation_part.redacted", "conversation.deleted"], "2.14")
    conversation = emulator.intercom.conversation(conversation_id)
    thread = conversation["conversation_parts"]["conversation_parts"]
    # Like Intercom, the item is the conversation with only the newest part(s), never the whole thread.
    newest = [part for part in thread if part["created_at"] == max(p["created_at"] for p in thread)]
    item = {**conversation, "conversation_parts": {"type": "conversation_part.list", "conversation_parts": newest,
                                                   "total_count": len(newest)}}
    assert json.loads(body) == {
        "type": "notification_event",
        "app_id": "demoapp1",
        "data": {"type": "notification_event_data", "item": item},
        "links": {},
        "id": "notif_1",
        "topic": "conversation.user.replied",
        "delegated": False,
        "created_at": 1777712400,
        "delivery_attempts": 1,
        "first_sent_at": 1777712400,
    }
    assert headers["x-hub-signature"].startswith("sha1=")
    verify("intercom", headers, body, RECEIVER_SECRETS["intercom"], now=time.time())
    with pytest.raises(SignatureError):
        verify("intercom", headers, body + b" ", RECEIVER_SECRETS["intercom"], now=time.time())


def test_intercom_1x_webhooks_send_the_older_item_shape(capture):
    found, url = capture
    emulator = small_emulator()
    conversation_id = emulator.newest_record_ids("intercom")[0]
    emulator.add_intercom_webhook(f"{url}/wh/legacy", api_version="1.4")
    emulator.intercom.add_part(conversation_id, "<p>Any news?</p>")

    emulator.send_event("intercom", "user.replied", conversation_id, event_id="notif_old", at=1777712400)
    _, body, _ = delivered(found)

    conversation = emulator.intercom.conversation(conversation_id)
    item = json.loads(body)["data"]["item"]
    newest = conversation["conversation_parts"]["conversation_parts"][-1]
    assert sorted(item) == sorted([
        "type", "id", "created_at", "updated_at", "user", "assignee", "conversation_message", "conversation_parts",
        "conversation_rating", "open", "state", "snoozed_until", "read", "metadata", "tags", "tags_added", "links"])
    assert item["conversation_message"]["body"] == conversation["source"]["body"]
    assert item["user"]["id"] == conversation["contacts"]["contacts"][0]["id"]
    assert item["conversation_parts"]["total_count"] == 1
    assert item["conversation_parts"]["conversation_parts"][0] == {
        "type": "conversation_part", "id": str(newest["id"]), "part_type": "comment", "body": "<p>Any news?</p>",
        "created_at": newest["created_at"], "updated_at": newest["updated_at"], "notified_at": newest["notified_at"],
        "assigned_to": None, "author": {k: newest["author"][k] for k in ("type", "id", "name")}, "attachments": [],
        "external_id": None,
    }


@pytest.mark.parametrize("api_version", ["2.14", "1.4"])
def test_intercom_redaction_and_deletion_events(capture, api_version: str):
    found, url = capture
    emulator = small_emulator()
    conversation_id = emulator.newest_record_ids("intercom")[0]
    emulator.add_intercom_webhook(f"{url}/wh/ic", api_version=api_version)
    part = emulator.intercom.add_part(conversation_id, "<p>My card number is 4111 1111 1111 1111</p>")
    part_id = part["conversation_parts"]["conversation_parts"][-1]["id"]
    emulator.intercom.redact_part(conversation_id, part_id)

    emulator.send_event("intercom", "conversation_part.redacted", conversation_id, event_id="notif_r")
    emulator.intercom.delete_conversation(conversation_id)
    emulator.send_event("intercom", "conversation.deleted", conversation_id, event_id="notif_d")

    redaction, deletion = (json.loads(body) for _, body, _ in found.deliveries)
    [redacted] = redaction["data"]["item"]["conversation_parts"]["conversation_parts"]
    assert (redaction["topic"], str(redacted["id"]), redacted["body"]) == (
        "conversation_part.redacted", str(part_id), "<p><i>This message was deleted</i></p>")
    # 2.x flags the part; 1.x payloads have no flag, only Intercom's text.
    assert redacted.get("redacted") is (True if api_version == "2.14" else None)
    assert (deletion["topic"], deletion["data"]["item"]) == (
        "conversation.deleted", {"type": "conversation", "id": conversation_id})
    assert emulator.intercom.conversation(conversation_id) is None
    assert conversation_id not in emulator.newest_record_ids("intercom")


def test_surveymonkey_event_names_the_response_signed_with_the_app_credentials(emulated: Emulated, capture):
    found, url = capture
    emulator = emulated.emulator
    survey_id = emulator.surveymonkey.survey_ids()[1]
    response_id = emulator.surveymonkey.responses_in_range(survey_id)[0]
    record = emulator.surveymonkey.response(survey_id, response_id)
    registered = emulated.surveymonkey.post("/webhooks", json=sm_webhook(f"{url}/wh/sm", emulator,
                                                                           object_ids=[survey_id]))
    assert registered.status_code == 201

    answer = emulator.send_event("surveymonkey", "response_completed", response_id, event_id="5550001",
                                 at=datetime(2026, 5, 2, 9, 30, tzinfo=timezone.utc))
    path, body, headers = delivered(found)

    assert (answer.status_code, path) == (200, "/wh/sm")
    assert json.loads(body) == {
        "name": "Feedback Hub",
        "filter_type": "survey",
        "filter_id": survey_id,
        "event_type": "response_completed",
        "event_id": "5550001",
        "object_type": "response",
        "object_id": response_id,
        "event_datetime": "2026-05-02T09:30:00.000000+00:00",
        "resources": {"respondent_id": response_id, "recipient_id": record["recipient_id"] or "0",
                      "survey_id": survey_id, "collector_id": record["collector_id"], "user_id": "123456789"},
    }
    assert headers["sm-apikey"] == DEMO_SURVEYMONKEY_CLIENT_ID
    verify("surveymonkey", headers, body, RECEIVER_SECRETS["surveymonkey"], now=time.time())
    with pytest.raises(SignatureError):
        verify("surveymonkey", headers, body, {"client_id": "someone-else", "client_secret":
                                               DEMO_SURVEYMONKEY_CLIENT_SECRET}, now=time.time())


@pytest.mark.parametrize("kind", ["response_deleted", "response_disqualified"])
def test_surveymonkey_removal_events_and_what_the_api_then_answers(emulated: Emulated, capture, kind: str):
    found, url = capture
    emulator = emulated.emulator
    survey_id = emulator.surveymonkey.survey_ids()[0]
    response_id = emulator.surveymonkey.responses_in_range(survey_id)[0]
    assert emulated.surveymonkey.post("/webhooks", json=sm_webhook(f"{url}/wh/sm", emulator, event_type=kind)
                                      ).status_code == 201
    before = emulated.surveymonkey.get(f"/surveys/{survey_id}/responses/{response_id}/details").json()

    if kind == "response_deleted":
        emulator.surveymonkey.delete_response(survey_id, response_id)
    else:
        emulator.surveymonkey.disqualify_response(survey_id, response_id)
    # The event still names the response once it is gone.
    answer = emulator.send_event("surveymonkey", kind, response_id, event_id="5550002")
    _, body, _ = delivered(found)
    assert answer.status_code == 200
    assert (json.loads(body)["event_type"], json.loads(body)["object_id"]) == (kind, response_id)

    shown = emulated.surveymonkey.get(f"/surveys/{survey_id}/responses/{response_id}/details")
    listed = emulated.surveymonkey.get(f"/surveys/{survey_id}/responses/bulk", params={"per_page": 100}).json()
    listed_ids = [item["id"] for item in listed["data"]]
    if kind == "response_deleted":
        assert shown.status_code == 404 and shown.json()["error"]["id"] == "1020"
        assert response_id not in listed_ids and listed["total"] == len(listed_ids)
        assert response_id not in emulator.newest_record_ids("surveymonkey")
    else:
        # Still there, marked disqualified and changed now: an incremental sync sees it again.
        after = shown.json()
        assert (after["response_status"], after["pages"]) == ("disqualified", before["pages"])
        assert after["date_modified"] > before["date_modified"]
        assert response_id in listed_ids and response_id in emulator.surveymonkey.disqualified_ids(survey_id)
    assert response_id not in emulator.surveymonkey.responses_in_range(survey_id)


def test_a_redelivery_repeats_the_same_event(capture):
    found, url = capture
    emulator = small_emulator()
    ticket_id = emulator.newest_record_ids("zendesk")[0]
    for _ in range(2):
        emulator.send_event("zendesk", "created", ticket_id, url=url, event_id="01SAMEEVENT", at=1777712400)
    emulator.send_event("zendesk", "created", ticket_id, url=url, at=1777712400)
    (_, first, first_headers), (_, again, again_headers), (_, other, _) = found.deliveries
    assert (first, first_headers["x-zendesk-webhook-signature"]) == (again, again_headers["x-zendesk-webhook-signature"])
    assert json.loads(other)["id"] != "01SAMEEVENT"


def test_events_go_to_the_newest_webhook_that_wants_them(emulated: Emulated, capture):
    found, url = capture
    emulator = emulated.emulator
    ticket_id = emulator.newest_record_ids("zendesk")[0]
    for path, subscriptions in (("/old", ["zen:event-type:ticket.created"]),
                                ("/new", ["zen:event-type:ticket.created"]),
                                ("/comments", ["zen:event-type:ticket.comment_added"])):
        emulated.zendesk.post("/api/v2/webhooks", json=zendesk_webhook(url + path, subscriptions=subscriptions))
    emulator.send_event("zendesk", "created", ticket_id)
    emulator.send_event("zendesk", "comment_added", ticket_id)
    assert [path for path, _, _ in found.deliveries] == ["/new", "/comments"]
    with pytest.raises(LookupError, match="no zendesk webhook is registered for 'status_changed'"):
        emulator.delivery("zendesk", "status_changed", ticket_id)


def test_events_need_a_record_and_a_destination(emulated: Emulated, capture):
    found, url = capture
    emulator = emulated.emulator
    surveys = emulator.surveymonkey.survey_ids()
    emulated.surveymonkey.post("/webhooks", json=sm_webhook(url, emulator, object_ids=[surveys[0]]))
    uncovered = emulator.surveymonkey.responses_in_range(surveys[1])[0]
    with pytest.raises(LookupError, match="no surveymonkey webhook"):
        emulator.delivery("surveymonkey", "response_completed", uncovered)
    with pytest.raises(LookupError, match="no intercom webhook"):
        emulator.delivery("intercom", "user.created", emulator.newest_record_ids("intercom")[0])
    with pytest.raises(LookupError, match="no Zendesk ticket 999999"):
        emulator.delivery("zendesk", "created", 999999, url=url)
    with pytest.raises(LookupError, match="no SurveyMonkey response 42"):
        emulator.delivery("surveymonkey", "response_completed", "42", url=url)
    assert found.deliveries == []


def test_send_event_async_posts_the_same_delivery(capture):
    found, url = capture
    emulator = small_emulator()
    conversation_id = emulator.newest_record_ids("intercom")[0]
    expected = emulator.delivery("intercom", "user.created", conversation_id, url=url, event_id="notif_a", at=1)
    response = asyncio.run(emulator.send_event_async("intercom", "user.created", conversation_id, url=url,
                                                     event_id="notif_a", at=1))
    (_, body, headers), = found.deliveries
    assert (response.status_code, body, headers["x-hub-signature"]) == (
        200, expected.body, expected.headers["X-Hub-Signature"])


def test_newest_record_ids_are_newest_created_first():
    emulator = small_emulator()
    ids = emulator.newest_record_ids("zendesk", limit=5)
    created = [emulator.zendesk.ticket(int(i))["created_at"] for i in ids]
    assert len(ids) == 5 and created == sorted(created, reverse=True)
    assert all(emulator.zendesk.ticket(int(i))["status"] != "deleted" for i in ids)
    responses = emulator.newest_record_ids("surveymonkey", limit=100)
    assert sorted(responses) == sorted(emulator.surveymonkey.responses_in_range(include_disqualified=True))


def test_the_emulator_imports_nothing_else_from_the_package():
    script = ("import sys, feedback_sources.emulator\n"
              "print(sorted(m for m in sys.modules if m.startswith('feedback_sources')"
              " and not m.startswith('feedback_sources.emulator')))")
    found = subprocess.run([sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, timeout=60,
                           env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"})
    assert (found.returncode, found.stdout.strip()) == (0, "['feedback_sources']"), found.stderr
