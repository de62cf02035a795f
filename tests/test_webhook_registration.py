"""Registering the receiver with Zendesk and SurveyMonkey (against the emulator over HTTP), and the whole path end
to end: receiver on 127.0.0.1, registration, a signed event from each vendor, the record in the store."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from feedback_sources.emulator import Emulator, EmulatorConfig, run_emulator_server
from feedback_sources.integrations.http import ErrorKind, RetryPolicy, SourceError
from feedback_sources.sources.intercom.integration import IntercomIntegration
from feedback_sources.sources.surveymonkey.integration import SurveyMonkeyIntegration
from feedback_sources.sources.surveymonkey.registration import TUNNEL_HINT
from feedback_sources.sources.zendesk.api import WEBHOOK_SUBSCRIPTIONS
from feedback_sources.sources.zendesk.integration import ZendeskIntegration
from feedback_sources.store import Store
from feedback_sources.webhooks import recent_events
from feedback_sources.webhooks.app import create_receiver_app
from feedback_sources.webhooks.server import running_receiver, secrets_from_configs
from feedback_sources.workspace import demo_configs
from tests.helpers import closed_port_url, wait_for

ZENDESK_SECRET = "zd-webhook-secret-canary-3a91"


@dataclass
class Vendors:
    emulator: Emulator
    root: str
    configs: dict[str, dict[str, str]]

    def integration(self, source: str, **config: str) -> Any:
        cls = {"zendesk": ZendeskIntegration, "intercom": IntercomIntegration,
               "surveymonkey": SurveyMonkeyIntegration}[source]
        return cls({**self.configs[source], **config}, retry_policy=RetryPolicy(max_attempts=1), timeout=5.0)

    def requests(self, method: str, pattern: str) -> int:
        return sum(1 for r in self.emulator.requests if r.method == method and r.endpoint == pattern)


@pytest.fixture
def vendors() -> Iterator[Vendors]:
    emulator = Emulator(EmulatorConfig(seed=3, zendesk_tickets=25, intercom_conversations=15, surveymonkey_surveys=3,
                                       surveymonkey_responses_per_survey=6, zendesk_webhook_secret=ZENDESK_SECRET,
                                       surveymonkey_scopeless_tokens={"sm-no-scopes"}))
    with run_emulator_server(emulator) as root:
        yield Vendors(emulator, root, demo_configs(root))


@dataclass
class Receiver:
    url: str
    db_path: Path

    def record(self, source: str, source_id: str) -> dict[str, Any] | None:
        with Store(self.db_path) as store:
            return store.get_record(source, source_id)

    def counts(self) -> dict[str, int]:
        with Store(self.db_path) as store:
            return {table: store.conn.execute(f"SELECT COUNT(*) FROM {table}").fetchone()[0]
                    for table in ("feedback", "webhook_events", "webhook_fetches")}


@pytest.fixture
def receiver(vendors: Vendors, tmp_path: Path) -> Iterator[Receiver]:
    """The real receiver, verifying with the secrets the emulator signs with and fetching from the emulator."""
    secrets = secrets_from_configs(vendors.configs)
    secrets["zendesk"]["webhook_secret"] = ZENDESK_SECRET
    app = create_receiver_app(tmp_path / "feedback.db", secrets, integrations_factory=vendors.integration)
    with running_receiver(app) as url:
        yield Receiver(url, tmp_path / "feedback.db")


def register(integration: Any, url: str) -> bool:
    return asyncio.run(integration.register_webhook(url))


# -- Zendesk -----------------------------------------------------------------------------------------------------


def test_zendesk_registration_creates_the_webhook_and_hands_over_its_secret(vendors: Vendors, caplog):
    zendesk = vendors.integration("zendesk")
    with caplog.at_level(logging.DEBUG):
        assert register(zendesk, "https://hooks.example.com/webhooks/zendesk") is True
    [webhook] = vendors.emulator.registered_webhooks("zendesk")
    assert webhook == {
        "vendor": "zendesk", "id": zendesk.webhook_id, "name": "Feedback Hub",
        "url": "https://hooks.example.com/webhooks/zendesk",
        "events": ["zen:event-type:ticket.created", "zen:event-type:ticket.comment_added",
                   "zen:event-type:ticket.status_changed"],
        "created_at": webhook["created_at"], "status": "active", "object_type": None, "object_ids": [],
        "http_method": "POST", "request_format": "json",
    }
    assert list(WEBHOOK_SUBSCRIPTIONS) == webhook["events"]
    assert zendesk.webhook_secret == ZENDESK_SECRET
    assert ZENDESK_SECRET not in caplog.text


def test_registering_zendesk_again_reuses_the_webhook(vendors: Vendors):
    url = "https://hooks.example.com/webhooks/zendesk"
    first, again = vendors.integration("zendesk"), vendors.integration("zendesk")
    assert register(first, url) and register(again, url)
    other = vendors.integration("zendesk")
    assert register(other, "https://elsewhere.example.com/webhooks/zendesk")
    hooks = vendors.emulator.registered_webhooks("zendesk")
    assert [h["url"] for h in hooks] == [url, "https://elsewhere.example.com/webhooks/zendesk"]
    assert (again.webhook_id, again.webhook_secret) == (first.webhook_id, ZENDESK_SECRET)
    assert vendors.requests("POST", "/api/v2/webhooks") == 2


@pytest.mark.parametrize(
    ("status", "kind", "message", "hint"),
    [
        (403, ErrorKind.forbidden,
         "zendesk: Zendesk refused to manage webhooks for this user (Zendesk said: Forbidden: You do not have access "
         "to this page.) (HTTP 403)",
         "Only admins can create webhooks: save an admin's email and API token on the Connections page, or create "
         "the webhook in Admin Center → Apps and integrations → Webhooks."),
        (422, ErrorKind.client,
         "zendesk: Zendesk did not accept the webhook (Zendesk said: InvalidValue: Invalid value) (HTTP 422)",
         "Check the receiver address: a full https:// URL that Zendesk can reach from the internet."),
    ],
)
def test_zendesk_refusals_say_what_to_do(vendors: Vendors, status: int, kind: ErrorKind, message: str, hint: str):
    vendors.emulator.faults.inject("zendesk", r"^/api/v2/webhooks$", status, method="POST")
    zendesk = vendors.integration("zendesk")
    with pytest.raises(SourceError) as raised:
        register(zendesk, "https://hooks.example.com/webhooks/zendesk")
    assert (raised.value.kind, str(raised.value), raised.value.hint) == (kind, message, hint)
    assert (zendesk.webhook_secret, vendors.emulator.registered_webhooks("zendesk")) == (None, [])


def test_zendesk_refusal_of_an_invalid_endpoint_comes_from_the_webhooks_api(vendors: Vendors):
    with pytest.raises(SourceError) as raised:
        register(vendors.integration("zendesk"), "ftp://hooks.example.com/webhooks/zendesk")
    assert (raised.value.kind, raised.value.status) == (ErrorKind.config, None)
    assert vendors.requests("POST", "/api/v2/webhooks") == 0


def test_a_webhook_whose_secret_cannot_be_read_is_removed(vendors: Vendors):
    vendors.emulator.faults.inject("zendesk", r"/signing_secret$", 500)
    zendesk = vendors.integration("zendesk")
    with pytest.raises(SourceError) as raised:
        register(zendesk, "https://hooks.example.com/webhooks/zendesk")
    assert raised.value.kind == ErrorKind.server
    assert (zendesk.webhook_secret, vendors.emulator.registered_webhooks("zendesk")) == (None, [])
    deletes = [r.endpoint for r in vendors.emulator.requests if r.method == "DELETE"]
    assert len(deletes) == 1 and deletes[0].startswith("/api/v2/webhooks/01")


# -- SurveyMonkey ------------------------------------------------------------------------------------------------


def test_surveymonkey_registration_covers_every_survey(vendors: Vendors, receiver: Receiver):
    url = f"{receiver.url}/webhooks/surveymonkey"
    assert register(vendors.integration("surveymonkey"), url) is True
    webhooks = vendors.emulator.registered_webhooks("surveymonkey")
    # One webhook per event type (SurveyMonkey webhooks have one each): new and changed answers, and the two ways a
    # response stops being feedback.
    assert webhooks == [
        {
            "vendor": "surveymonkey", "id": webhook["id"], "name": "Feedback Hub", "url": url,
            "events": [event], "created_at": webhook["created_at"], "status": "active",
            "object_type": "survey", "object_ids": vendors.emulator.surveymonkey.survey_ids(),
            "http_method": "POST", "request_format": "json",
        }
        for webhook, event in zip(webhooks, ("response_completed", "response_updated", "response_disqualified",
                                             "response_deleted"), strict=True)
    ]
    # Registering again keeps the webhooks that already cover every survey.
    assert register(vendors.integration("surveymonkey"), url) is True
    assert vendors.emulator.registered_webhooks("surveymonkey") == webhooks
    assert vendors.requests("POST", "/webhooks") == 4


def test_surveymonkey_webhook_that_misses_surveys_is_replaced(vendors: Vendors, receiver: Receiver):
    url = f"{receiver.url}/webhooks/surveymonkey"
    surveys = vendors.emulator.surveymonkey.survey_ids()
    token = {"Authorization": f"Bearer {vendors.configs['surveymonkey']['access_token']}"}
    older = httpx.post(f"{vendors.root}/surveymonkey/v3/webhooks", headers=token, json={
        "name": "Feedback Hub", "event_type": "response_completed", "object_type": "survey",
        "object_ids": surveys[:1], "subscription_url": url}).json()
    unrelated = httpx.post(f"{vendors.root}/surveymonkey/v3/webhooks", headers=token, json={
        "name": "Another tool", "event_type": "response_completed", "object_type": "survey",
        "object_ids": surveys[:1], "subscription_url": url}).json()
    assert register(vendors.integration("surveymonkey"), url) is True
    hooks = vendors.emulator.registered_webhooks("surveymonkey")
    assert [(h["name"], h["events"], h["object_ids"]) for h in hooks] == [
        ("Another tool", ["response_completed"], surveys[:1]),
        *[("Feedback Hub", [event], surveys) for event in ("response_completed", "response_updated",
                                                              "response_disqualified", "response_deleted")],
    ]
    assert older["id"] not in [h["id"] for h in hooks] and unrelated["id"] in [h["id"] for h in hooks]


def test_surveymonkey_registration_says_to_use_a_tunnel_when_the_head_check_fails(vendors: Vendors):
    url = closed_port_url()
    with pytest.raises(SourceError) as raised:
        register(vendors.integration("surveymonkey"), url)
    error = raised.value
    assert (error.kind, error.status, error.hint) == (ErrorKind.client, 400, TUNNEL_HINT)
    assert str(error) == (
        f"surveymonkey: SurveyMonkey refused the webhook for {url}: before accepting one it checks that the address "
        f"answers a HEAD request with 200 (SurveyMonkey says: The subscription_url must respond to a HEAD request "
        f"with 200 OK; {url} did not.) (HTTP 400)")
    assert "tunnel" in error.hint and vendors.emulator.registered_webhooks("surveymonkey") == []


def test_surveymonkey_token_without_webhook_scopes(vendors: Vendors, receiver: Receiver):
    integration = vendors.integration("surveymonkey", access_token="sm-no-scopes")
    with pytest.raises(SourceError) as raised:
        register(integration, f"{receiver.url}/webhooks/surveymonkey")
    assert (raised.value.kind, raised.value.status) == (ErrorKind.forbidden, 403)
    assert raised.value.hint == (
        "In the developer portal, set the scopes View Webhooks (webhooks_read) and Create/Modify Webhooks "
        "(webhooks_write) to Required, then copy the access token again.")


def test_surveymonkey_registration_needs_a_web_address(vendors: Vendors):
    with pytest.raises(SourceError) as raised:
        register(vendors.integration("surveymonkey"), "127.0.0.1:8787/webhooks/surveymonkey")
    assert raised.value.kind == ErrorKind.config
    assert vendors.emulator.requests == []


# -- end to end --------------------------------------------------------------------------------------------------


def test_registered_webhooks_deliver_each_vendors_events_into_the_store(vendors: Vendors, receiver: Receiver):
    emulator = vendors.emulator
    zendesk = vendors.integration("zendesk")
    assert register(zendesk, f"{receiver.url}/webhooks/zendesk")
    assert register(vendors.integration("surveymonkey"), f"{receiver.url}/webhooks/surveymonkey")
    emulator.add_intercom_webhook(f"{receiver.url}/webhooks/intercom")  # the Developer Hub step
    assert zendesk.webhook_secret == ZENDESK_SECRET  # what the app stores for the receiver

    ticket_id = emulator.newest_record_ids("zendesk")[0]
    conversation_id = emulator.newest_record_ids("intercom")[0]
    response_id = emulator.newest_record_ids("surveymonkey")[0]
    answers = [
        emulator.send_event("zendesk", "created", ticket_id),
        emulator.send_event("intercom", "user.created", conversation_id),
        emulator.send_event("surveymonkey", "response_completed", response_id),
    ]
    assert [(a.status_code, a.json()["verdict"]) for a in answers] == [(200, "stored"), (200, "stored"),
                                                                        (200, "queued")]
    wait_for(lambda: receiver.record("surveymonkey", response_id) and receiver.counts()["webhook_fetches"] == 0)

    ticket = emulator.zendesk.ticket(int(ticket_id))
    stored_ticket = receiver.record("zendesk", ticket_id)
    stored_conversation = receiver.record("intercom", conversation_id)
    stored_response = receiver.record("surveymonkey", response_id)
    assert (stored_ticket["title"], stored_ticket["url"]) == (
        ticket["subject"], f"https://demo.zendesk.com/agent/tickets/{ticket_id}")
    assert stored_conversation["source_id"] == conversation_id
    assert stored_response["source_id"] == response_id
    assert stored_ticket["content"] == ticket["description"].strip()
    # With the vendors reachable, the receiver also fetched each full record (the customer the events leave out).
    assert [vendors.requests("GET", path) for path in (
        f"/api/v2/tickets/{ticket_id}.json", f"/conversations/{conversation_id}",
        f"/surveys/{stored_response['metadata']['survey_id']}/responses/{response_id}/details",
    )] == [1, 1, 1]
    with Store(receiver.db_path) as store:
        logged = sorted((e["source"], e["verdict"], e["record_id"]) for e in recent_events(store, 10))
    assert logged == [("intercom", "stored", conversation_id), ("surveymonkey", "queued", response_id),
                      ("zendesk", "stored", ticket_id)]


def test_a_forged_event_never_reaches_the_store(vendors: Vendors, receiver: Receiver):
    emulator = vendors.emulator
    ticket_id = emulator.newest_record_ids("zendesk")[0]
    conversation_id = emulator.newest_record_ids("intercom")[0]
    # Signed with secrets the receiver does not have: an emulator configured by someone else.
    forger = Emulator(EmulatorConfig(seed=3, zendesk_tickets=25, intercom_conversations=15, surveymonkey_surveys=3,
                                     surveymonkey_responses_per_survey=6, zendesk_webhook_secret="guessed",
                                     intercom_client_secret="guessed", surveymonkey_client_secret="guessed"))
    response_id = forger.newest_record_ids("surveymonkey")[0]
    refused = [
        forger.send_event("zendesk", "created", ticket_id, url=f"{receiver.url}/webhooks/zendesk"),
        forger.send_event("intercom", "user.created", conversation_id, url=f"{receiver.url}/webhooks/intercom"),
        forger.send_event("surveymonkey", "response_completed", response_id,
                          url=f"{receiver.url}/webhooks/surveymonkey"),
    ]
    # A genuine delivery with its body changed after signing.
    genuine = emulator.delivery("zendesk", "created", ticket_id, url=f"{receiver.url}/webhooks/zendesk")
    tampered = genuine.body.replace(b'"status":', b'"status" :', 1)
    refused.append(httpx.post(genuine.url, content=tampered, headers=genuine.headers))
    # A genuine but stale one: replayed after Zendesk's five-minute window.
    stale = emulator.delivery("zendesk", "created", ticket_id, url=f"{receiver.url}/webhooks/zendesk",
                              at=time.time() - 600)
    refused.append(httpx.post(stale.url, content=stale.body, headers=stale.headers))

    assert [r.status_code for r in refused] == [401, 401, 401, 401, 401]
    time.sleep(0.2)  # a fetch, had one been queued, would have run by now
    assert receiver.counts() == {"feedback": 0, "webhook_events": 0, "webhook_fetches": 0}
