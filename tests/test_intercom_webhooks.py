"""Intercom webhooks end to end over real HTTP: the emulator posts signed deliveries (2.x and 1.x payloads, each with
only the newest part) to the receiver on 127.0.0.1, and the store ends up with exactly what a sync of the same
conversation stores; redactions and deletions make the store forget, and replays never bring anything back."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from feedback_sources.emulator import DEMO_INTERCOM_TOKEN, Emulator, EmulatorConfig, run_emulator_server
from feedback_sources.emulator.config import DEMO_INTERCOM_CLIENT_SECRET
from feedback_sources.emulator.webhooks import Delivery, sign_intercom
from feedback_sources.export import export_csv_bytes
from feedback_sources.sources.intercom.integration import IntercomIntegration
from feedback_sources.store import Filters, Store
from feedback_sources.sync import sync
from feedback_sources.webhooks import recent_events
from feedback_sources.webhooks.app import create_receiver_app
from feedback_sources.webhooks.server import running_receiver

TOPICS = (
    "conversation.user.created", "conversation.user.replied", "conversation.admin.replied",
    "conversation.admin.noted", "conversation.operator.replied", "conversation.admin.closed",
    "conversation_part.redacted", "conversation.deleted",
)  # fmt: skip
SECRETS = {"intercom": {"client_secret": DEMO_INTERCOM_CLIENT_SECRET}}
FIRST_REPLY = "<p>Zebrafish export still crashes on the second page.</p>"


@dataclass
class Setup:
    emulator: Emulator
    intercom_url: str
    webhook_db: Path
    sync_db: Path
    http: httpx.Client

    def send(self, kind: str, conversation_id: str) -> Delivery:
        """Post the emulator's signed delivery of this event to the receiver; returns it for later replays."""
        delivery = self.emulator.delivery("intercom", kind, conversation_id)
        answer = self.http.post(delivery.url, content=delivery.body, headers=delivery.headers)
        assert answer.status_code == 200, answer.text
        return delivery

    def replay(self, delivery: Delivery, event_id: str) -> str:
        """The same old payload as a new notification (a replay, not a redelivery that dedupes on its id)."""
        payload = {**delivery.payload, "id": event_id}
        body = json.dumps(payload, separators=(",", ":")).encode()
        headers = {**delivery.headers, "X-Hub-Signature": sign_intercom(DEMO_INTERCOM_CLIENT_SECRET, body)}
        answer = self.http.post(delivery.url, content=body, headers=headers)
        assert answer.status_code == 200, answer.text
        return answer.json()["verdict"]

    def webhook_record(self, conversation_id: str) -> dict[str, Any] | None:
        with Store(self.webhook_db) as store:
            return store.get_record("intercom", conversation_id)

    def synced_record(self, conversation_id: str) -> dict[str, Any] | None:
        integration = IntercomIntegration({"access_token": DEMO_INTERCOM_TOKEN, "base_url": self.intercom_url})
        with Store(self.sync_db) as store:
            result = sync(store, {"intercom": integration}, incremental=False)["intercom"]
            assert result.status == "complete", result
            return store.get_record("intercom", conversation_id)


@contextmanager
def setup(tmp_path: Path, api_version: str) -> Iterator[Setup]:
    emulator = Emulator(EmulatorConfig(seed=11, intercom_conversations=4, zendesk_tickets=1, surveymonkey_surveys=1,
                                       surveymonkey_responses_per_survey=1))
    webhook_db = tmp_path / "webhooks.db"
    # No API credentials for the receiver: what it stores comes from the deliveries alone.
    app = create_receiver_app(webhook_db, SECRETS, rate_per_minute=100_000)
    with run_emulator_server(emulator) as root, running_receiver(app) as receiver_url, httpx.Client(timeout=10) as http:
        emulator.add_intercom_webhook(f"{receiver_url}/webhooks/intercom", TOPICS, api_version=api_version)
        yield Setup(emulator, emulator.base_urls(root)["intercom"], webhook_db, tmp_path / "sync.db", http)


def same_words(record: dict[str, Any]) -> tuple[Any, ...]:
    metadata = record["metadata"]
    return (record["title"], record["content"], record["customer_id"], record["category"],
            metadata["customer_parts"], metadata["redacted_parts"])


def new_thread(s: Setup) -> tuple[str, dict[str, str]]:
    """A conversation built one event at a time, as a workspace produces it; returns its id and the deliveries."""
    data = s.emulator.intercom
    # One action per minute on the emulator's data clock, as a real thread unfolds (a delivery carries the parts of
    # the newest second: those of one action).
    moment = [s.emulator.now_ts() - 3600]

    def tick() -> float:
        moment[0] += 60
        return moment[0]

    s.emulator.clock = tick
    conversation = data.add_conversation(
        conversation_parts={"type": "conversation_part.list", "conversation_parts": [], "total_count": 0})
    conversation_id = conversation["id"]
    sent: dict[str, Any] = {"created": s.send("user.created", conversation_id)}
    data.add_part(conversation_id, "<p>I'm Fin, an AI agent. Try Reports &gt; Export.</p>", author_type="bot")
    s.send("operator.replied", conversation_id)
    data.add_part(conversation_id, FIRST_REPLY)
    sent["first_reply"] = s.send("user.replied", conversation_id)
    data.add_part(conversation_id, "<p>Known issue, ticket filed.</p>", author_type="admin", part_type="note")
    s.send("admin.noted", conversation_id)
    data.add_part(conversation_id, None, author_type="admin", part_type="conversation_attribute_updated_by_admin")
    data.add_part(conversation_id, "<p>Fixed, please retry.</p>", author_type="admin")
    s.send("admin.replied", conversation_id)
    data.add_part(conversation_id, None, author_type="admin", part_type="close")
    s.send("admin.closed", conversation_id)
    data.add_part(conversation_id, "<p>Reopening: the PDF export fails too &amp; the <b>CSV</b> is empty.</p>",
                  part_type="open")
    sent["reopened"] = s.send("user.replied", conversation_id)
    return conversation_id, sent


@pytest.mark.parametrize("api_version", ["2.14", "1.4"])
def test_webhooks_of_either_generation_store_what_the_sync_stores(tmp_path: Path, api_version: str):
    with setup(tmp_path, api_version) as s:
        conversation_id, sent = new_thread(s)
        # Each delivery carried one part at most, never the thread.
        carried = [d.payload["data"]["item"]["conversation_parts"]["conversation_parts"] for d in sent.values()]
        assert all(len(parts) <= 1 for parts in carried)
        legacy = "conversation_message" in sent["reopened"].payload["data"]["item"]
        assert legacy == (api_version == "1.4")

        from_webhooks = s.webhook_record(conversation_id)
        from_sync = s.synced_record(conversation_id)
        assert from_webhooks is not None and from_sync is not None
        assert same_words(from_webhooks) == same_words(from_sync)
        assert "Zebrafish export still crashes" in from_sync["content"]
        assert "Reopening: the PDF export fails too & the CSV is empty." in from_sync["content"]
        for company_side in ("I'm Fin", "Known issue", "Fixed, please retry"):
            assert company_side not in from_webhooks["content"]


@pytest.mark.parametrize("api_version", ["2.14", "1.4"])
def test_a_redacted_part_is_forgotten_and_a_replay_does_not_bring_it_back(tmp_path: Path, api_version: str):
    with setup(tmp_path, api_version) as s:
        conversation_id, sent = new_thread(s)
        conversation = s.emulator.intercom.conversation(conversation_id)
        part_id = next(p["id"] for p in conversation["conversation_parts"]["conversation_parts"]
                       if p["body"] == FIRST_REPLY)
        s.emulator.intercom.redact_part(conversation_id, part_id)
        s.send("conversation_part.redacted", conversation_id)

        after = s.webhook_record(conversation_id)
        assert "Zebrafish" not in after["content"]
        assert after["metadata"]["redacted_parts"] == [str(part_id)]
        # A late replay of the delivery that carried the part: merged, but the redacted part stays out.
        assert s.replay(sent["first_reply"], "notif_replayed_first_reply") == "stored"
        replayed = s.webhook_record(conversation_id)
        assert (replayed["content"], replayed["metadata"]["redacted_parts"]) == (
            after["content"], after["metadata"]["redacted_parts"])
        with Store(s.webhook_db) as store:
            assert store.count(Filters(text="zebrafish")) == 0
            exported, rows = export_csv_bytes(store, Filters())
        assert rows == 1 and b"Zebrafish" not in exported and b"Reopening" in exported
        # The sync reads Intercom's redacted part (`redacted: true`) and stores the same words.
        assert same_words(s.synced_record(conversation_id)) == same_words(replayed)


@pytest.mark.parametrize("api_version", ["2.14", "1.4"])
def test_a_deleted_conversation_leaves_the_store_for_good(tmp_path: Path, api_version: str):
    with setup(tmp_path, api_version) as s:
        conversation_id, sent = new_thread(s)
        assert s.webhook_record(conversation_id) is not None
        s.emulator.intercom.delete_conversation(conversation_id)
        deletion = s.send("conversation.deleted", conversation_id)
        # Identifying fields only, as Intercom's *.deleted topics send.
        assert deletion.payload["data"]["item"] == {"type": "conversation", "id": conversation_id}
        assert s.webhook_record(conversation_id) is None

        assert s.replay(sent["reopened"], "notif_replayed_after_delete") == "stored"
        assert s.webhook_record(conversation_id) is None
        with Store(s.webhook_db) as store:
            verdicts = [(e["event_type"], e["verdict"]) for e in recent_events(store, 3)]
            assert store.count(Filters(text="zebrafish")) == 0
        assert verdicts[1] == ("conversation.deleted", "removed")
        # The search no longer lists it, so a sync into a fresh store never sees it either.
        assert s.synced_record(conversation_id) is None



def test_a_fetch_that_finds_the_conversation_deleted_removes_it(tmp_path: Path):
    from feedback_sources.webhooks.fetch import FetchPolicy
    from tests.helpers import wait_for

    emulator = Emulator(EmulatorConfig(seed=12, intercom_conversations=4, zendesk_tickets=1, surveymonkey_surveys=1,
                                       surveymonkey_responses_per_survey=1))
    db = tmp_path / "webhooks.db"
    conversation_id = emulator.newest_record_ids("intercom")[0]
    with run_emulator_server(emulator) as root, httpx.Client(timeout=10) as http:
        url = emulator.base_urls(root)["intercom"]

        def integrations(source: str) -> IntercomIntegration | None:
            if source != "intercom":
                return None
            return IntercomIntegration({"access_token": DEMO_INTERCOM_TOKEN, "base_url": url})

        app = create_receiver_app(db, SECRETS, integrations_factory=integrations,
                                  fetch_policy=FetchPolicy(poll_interval=0.05))
        with running_receiver(app) as receiver_url:
            # A reply's delivery arrives after the conversation was deleted (and no deletion event reaches us): the
            # delivery is stored, and the full fetch it queues answers 404, which removes the conversation again.
            delivery = emulator.delivery("intercom", "user.replied", conversation_id,
                                         url=f"{receiver_url}/webhooks/intercom")
            emulator.intercom.delete_conversation(conversation_id)
            answer = http.post(delivery.url, content=delivery.body, headers=delivery.headers)
            assert answer.json()["verdict"] == "stored"

            def drained() -> bool:
                with Store(db) as store:
                    return store.conn.execute("SELECT COUNT(*) FROM webhook_fetches").fetchone()[0] == 0

            wait_for(drained)
    with Store(db) as store:
        assert store.get_record("intercom", conversation_id) is None
        removal = store.conn.execute("SELECT reason FROM feedback_removals WHERE source = 'intercom' AND source_id = ?",
                                     (conversation_id,)).fetchone()
    assert removal == ("deleted",)
