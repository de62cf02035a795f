"""Intercom payloads as real workspaces send them → records, whole-record asserts.

Fixtures in tests/fixtures/intercom/ follow Intercom's documented shapes: GET /conversations/{id} and GET
/contacts/{id} of API 2.14 (Fin's answers, notes, assignments by a team or away mode, attribute updates and custom
actions with a null body, `open` parts carrying the customer's reply, a redacted part, numeric part ids), and webhook
notifications of both payload generations: 2.x items (`source`, `contacts`) and 1.x items (`conversation_message`,
`user`, `assignee`), each carrying only the newest part, `conversation_part.redacted` (1.x: Intercom's "This message
was deleted" text without a flag, the part's `updated_at` newer than the item's) and `conversation.deleted` (identifying
fields only).
"""

from __future__ import annotations

import copy
import json
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pytest

from feedback_sources.sources.intercom.mapping import (
    conversation_removal,
    map_conversation,
    map_notification,
    merge_delivered,
)
from feedback_sources.models import MappingError, NormalizedRecord, Removal, RemovalReason
from feedback_sources.rules import DEFAULT_RULES
from feedback_sources.store import Filters, Store

FIXTURES = Path(__file__).parent / "fixtures" / "intercom"
APP_ID = "ecahpwf5"
CONVERSATION_ID = "215471236"
LEAD_ID = "6762f1f81bb69f9f2193bc09"
INBOX_URL = f"https://app.intercom.com/a/apps/{APP_ID}/inbox/inbox/conversation/{CONVERSATION_ID}"
T0 = 1733820000  # the conversation's created_at: 2024-12-10T08:40:00Z

OPENING = "How do I export all records to CSV?\n\nThe button does nothing."
FIRST_REPLY = "No, the CSV still has 0 rows."
REOPENED = "Reopening: it happens again & again on <Safari>."
NEWEST = "Retried on Chrome too: same empty file."


def load(name: str) -> dict[str, Any]:
    return json.loads((FIXTURES / name).read_text(encoding="utf-8"))


def row(record: NormalizedRecord) -> dict[str, Any]:
    return record.model_dump(mode="json")


def iso(offset: int) -> str:
    return datetime.fromtimestamp(T0 + offset, tz=timezone.utc).isoformat()


def synced() -> NormalizedRecord:
    return map_conversation(load("conversation_chat_thread.json"), load("contact_lead_empty.json"), app_id=APP_ID,
                            rules=DEFAULT_RULES)


def stored_after(*records: NormalizedRecord) -> Store:
    store = Store(":memory:")
    for record in records:
        store.upsert_records([record])
    return store


SYNCED_ROW = {
    "source": "intercom",
    "source_id": CONVERSATION_ID,
    # A chat: `source.subject` is "" and `title` null, so there is no title (not an empty one).
    "title": None,
    # The lead's opening message, their reply to Fin, and their `open` part; never Fin's answer, the note, the
    # admin's reply, the body-less parts or the redacted part 13.
    "content": f"{OPENING}\n\n{FIRST_REPLY}\n\n{REOPENED}",
    "customer_id": LEAD_ID,
    "customer_email": "night.owl@example.org",
    "customer_name": None,
    # The contact has `custom_attributes: {}` and no companies: no plan, no tier.
    "customer_tier": None,
    "category": "question",
    "created_at": "2024-12-10T08:40:00Z",
    "metadata": {
        "state": "snoozed",
        "priority": "not_priority",
        "tags": ["export"],
        "url": INBOX_URL,
        "updated_at": iso(7200),
        "contact_id": LEAD_ID,
        "rating": None,
        "parts_count": 14,
        "source_type": "conversation",
        "ai_agent_participated": True,
        "customer_parts": [
            {"id": "source", "at": T0, "chars": len(OPENING)},
            {"id": "2", "at": T0 + 60, "chars": len(FIRST_REPLY)},
            {"id": "11", "at": T0 + 3600, "chars": len(REOPENED)},
        ],
        "redacted_parts": ["13"],
        "category_reason": "keyword `how do i`",
        "tier_reason": "no plan information",
    },
}


def test_a_thread_of_every_part_type_and_author_keeps_only_the_customers_words():
    assert row(synced()) == SYNCED_ROW


def test_numeric_and_string_part_ids_are_the_same_part():
    conversation = load("conversation_chat_thread.json")
    for part in conversation["conversation_parts"]["conversation_parts"]:
        part["id"] = int(part["id"])
    again = map_conversation(conversation, load("contact_lead_empty.json"), app_id=APP_ID, rules=DEFAULT_RULES)
    assert row(again) == SYNCED_ROW


def test_a_2x_delivery_maps_to_the_opening_message_and_the_newest_part():
    record = map_notification(load("webhook_user_replied_2x.json"), rules=DEFAULT_RULES)
    assert row(record) == {
        **SYNCED_ROW,
        "content": f"{OPENING}\n\n{NEWEST}",
        "metadata": {
            **SYNCED_ROW["metadata"],
            "state": "open",
            "updated_at": iso(9000),
            "parts_count": 1,  # the delivery's own count: one part, not the thread
            "customer_parts": [
                {"id": "source", "at": T0, "chars": len(OPENING)},
                {"id": "15", "at": T0 + 9000, "chars": len(NEWEST)},
            ],
            "redacted_parts": [],
        },
    }


def test_a_1x_delivery_reads_conversation_message_and_user():
    record = map_notification(load("webhook_user_replied_1x.json"), rules=DEFAULT_RULES)
    assert row(record) == {
        **SYNCED_ROW,
        "content": f"{OPENING}\n\n{NEWEST}",
        "metadata": {
            **SYNCED_ROW["metadata"],
            "state": "open",
            "priority": None,  # 1.x items have no priority, channel or AI agent fields
            "source_type": None,
            "ai_agent_participated": None,
            "updated_at": iso(9000),
            "parts_count": 1,
            "customer_parts": [
                {"id": "source", "at": T0, "chars": len(OPENING)},
                {"id": "15", "at": T0 + 9000, "chars": len(NEWEST)},
            ],
            "redacted_parts": [],
        },
    }


def test_a_user_created_delivery_with_an_integer_id_and_no_parts():
    record = map_notification(load("webhook_user_created_2x.json"), rules=DEFAULT_RULES)
    assert row(record) == {
        **SYNCED_ROW,
        "content": OPENING,
        "metadata": {
            **SYNCED_ROW["metadata"],
            "state": "open",
            "tags": [],
            "updated_at": iso(0),
            "parts_count": 0,
            "ai_agent_participated": False,
            "customer_parts": [{"id": "source", "at": T0, "chars": len(OPENING)}],
            "redacted_parts": [],
        },
    }


@pytest.mark.parametrize("fixture", ["webhook_user_replied_2x.json", "webhook_user_replied_1x.json"])
def test_both_generations_merge_into_the_same_fuller_record(fixture: str):
    store = stored_after(synced())
    delivered = map_notification(load(fixture), rules=DEFAULT_RULES)
    merged = merge_delivered(delivered, store.get_record("intercom", CONVERSATION_ID), rules=DEFAULT_RULES)
    assert row(merged) == {
        **SYNCED_ROW,
        # Nothing the sync stored is lost; the new reply is added in time order.
        "content": f"{OPENING}\n\n{FIRST_REPLY}\n\n{REOPENED}\n\n{NEWEST}",
        "metadata": {
            **SYNCED_ROW["metadata"],
            "state": "open",
            "updated_at": iso(9000),
            "customer_parts": [
                *SYNCED_ROW["metadata"]["customer_parts"],
                {"id": "15", "at": T0 + 9000, "chars": len(NEWEST)},
            ],
        },
    }


def test_a_late_older_delivery_adds_its_part_and_never_makes_the_record_older():
    newer = merge_delivered(map_notification(load("webhook_user_replied_2x.json"), rules=DEFAULT_RULES), None,
                            rules=DEFAULT_RULES)
    store = stored_after(newer)
    late = map_conversation(load("conversation_chat_thread.json"), None, app_id=APP_ID, rules=DEFAULT_RULES)
    merged = merge_delivered(late, store.get_record("intercom", CONVERSATION_ID), rules=DEFAULT_RULES)
    assert merged.content == f"{OPENING}\n\n{FIRST_REPLY}\n\n{REOPENED}\n\n{NEWEST}"
    assert (merged.metadata["updated_at"], merged.metadata["redacted_parts"]) == (iso(9000), ["13"])
    assert store.upsert_records([merged]).unchanged == 1  # same time as stored: taken, not refused as stale
    assert store.get_record("intercom", CONVERSATION_ID)["content"] == merged.content


def test_a_1x_redaction_removes_the_part_and_a_replay_never_brings_it_back():
    store = stored_after(synced())
    redaction = map_notification(load("webhook_part_redacted_1x.json"), rules=DEFAULT_RULES)
    # The part's updated_at (and the notification's created_at) is newer than the 1.x item's own updated_at.
    assert redaction.metadata["updated_at"] == iso(9500)
    after = merge_delivered(redaction, store.get_record("intercom", CONVERSATION_ID), rules=DEFAULT_RULES)
    assert row(after) == {
        **SYNCED_ROW,
        "content": f"{OPENING}\n\n{FIRST_REPLY}",
        "metadata": {
            **SYNCED_ROW["metadata"],
            "state": "open",
            "updated_at": iso(9500),
            "customer_parts": SYNCED_ROW["metadata"]["customer_parts"][:2],
            "redacted_parts": ["11", "13"],
        },
    }
    store.upsert_records([after])
    # A replay of the sync's older copy (part 11 still readable there) merges without bringing part 11 back.
    replay = merge_delivered(synced(), store.get_record("intercom", CONVERSATION_ID), rules=DEFAULT_RULES)
    store.upsert_records([replay])
    stored = store.get_record("intercom", CONVERSATION_ID)
    assert (stored["content"], stored["metadata"]["redacted_parts"]) == (f"{OPENING}\n\n{FIRST_REPLY}", ["11", "13"])
    assert store.count(Filters(text="Safari")) == 0  # gone from the full-text index too
    assert store.count(Filters(text="nothing")) == 1


def test_a_2x_redaction_of_the_opening_message():
    store = stored_after(synced())
    redaction = map_notification(load("webhook_part_redacted_2x.json"), rules=DEFAULT_RULES)
    after = merge_delivered(redaction, store.get_record("intercom", CONVERSATION_ID), rules=DEFAULT_RULES)
    assert row(after) == {
        **SYNCED_ROW,
        "content": f"{FIRST_REPLY}\n\n{REOPENED}",
        "category": "other",
        "metadata": {
            **SYNCED_ROW["metadata"],
            "state": "open",
            "updated_at": iso(9600),
            "customer_parts": SYNCED_ROW["metadata"]["customer_parts"][1:],
            "redacted_parts": ["13", "source"],
            "category_reason": "default for this source",
        },
    }


def test_a_stored_text_that_cannot_be_split_by_part_is_never_shortened():
    store = stored_after(synced())
    stored = store.get_record("intercom", CONVERSATION_ID)
    stored["metadata"]["customer_parts"] = [{"id": "source", "at": T0, "chars": 3}]  # does not describe the text
    delivered = map_notification(load("webhook_user_replied_2x.json"), rules=DEFAULT_RULES)
    merged = merge_delivered(delivered, stored, rules=DEFAULT_RULES)
    kept = (stored["content"], stored["metadata"]["customer_parts"])
    assert (merged.content, merged.metadata["customer_parts"]) == kept


def test_a_deletion_is_a_removal_at_the_notification_time():
    removal = conversation_removal(load("webhook_conversation_deleted.json"))
    assert removal == Removal(source="intercom", source_id=CONVERSATION_ID, reason=RemovalReason.deleted,
                              removed_at=datetime.fromtimestamp(T0 + 10000, tz=timezone.utc))
    store = stored_after(synced())
    result = store.upsert_records([], removals=[removal])
    assert (result.removed, store.get_record("intercom", CONVERSATION_ID)) == (1, None)
    # A replay of any version from before the deletion stays out.
    store.upsert_records([merge_delivered(map_notification(load("webhook_user_replied_2x.json"), rules=DEFAULT_RULES),
                                          None, rules=DEFAULT_RULES)])
    assert store.get_record("intercom", CONVERSATION_ID) is None


def test_a_deletion_without_an_id_is_no_removal():
    payload = load("webhook_conversation_deleted.json")
    payload["data"]["item"] = {"type": "conversation"}
    assert conversation_removal(payload) is None


def test_an_ai_answer_or_a_bot_never_counts_as_the_customer():
    conversation = load("conversation_chat_thread.json")
    fin = conversation["conversation_parts"]["conversation_parts"][0]["author"]
    conversation["source"]["author"] = copy.deepcopy(fin)
    record = map_conversation(conversation, None, app_id=APP_ID, rules=DEFAULT_RULES)
    # A conversation Fin opened: the customer is still the contact, and Fin's words are not feedback.
    assert (record.content, record.customer_id, record.customer_email) == (
        f"{FIRST_REPLY}\n\n{REOPENED}", LEAD_ID, None)


def test_a_delivery_without_an_id_is_a_mapping_error():
    payload = load("webhook_user_replied_1x.json")
    del payload["data"]["item"]["id"]
    with pytest.raises(MappingError, match="no id"):
        map_notification(payload, rules=DEFAULT_RULES)



# -- the emulator's data, mapped ------------------------------------------------------------------------------------


def test_the_emulator_holds_every_shape_and_the_mapper_keeps_only_customer_words():
    from feedback_sources.emulator import Emulator, EmulatorConfig

    emulator = Emulator(EmulatorConfig(seed=7, intercom_conversations=400, zendesk_tickets=1, surveymonkey_surveys=1,
                                       surveymonkey_responses_per_survey=1))
    data = emulator.intercom
    shapes = data.shape_counts()
    assert set(shapes["part authors"]) == {"user", "lead", "admin", "bot", "team"}
    assert {"comment", "note", "open", "close (null body)", "assign_and_reopen (null body)", "snoozed (null body)",
            "away_mode_assignment (null body)", "custom_action_started (null body)",
            "custom_action_finished (null body)", "conversation_attribute_updated_by_admin (null body)",
            } <= set(shapes["part types"])
    for shape in ("chat (subject \"\", title null)", "Fin participated", "numeric part ids",
                  "customer reopened (open part with text)", "redacted part"):
        assert shapes["conversations"][shape] > 0, shape
    assert shapes["contacts"]["custom_attributes {}"] > 0 and shapes["contacts"]["no companies"] > 0
    # Chats are the common case, as in real inboxes.
    assert shapes["conversations"]["chat (subject \"\", title null)"] > shapes["conversations"]["all"] / 2

    company_words = ("I'm Fin", "Internal:", "This message was deleted", "Thanks for reporting", "Great idea")
    for conversation_id in data.all_conversation_ids():
        conversation = data.conversation(conversation_id)
        record = map_conversation(conversation, None, app_id=APP_ID, rules=DEFAULT_RULES)
        assert not any(words in record.content for words in company_words), conversation_id
        said = [p for p in conversation["conversation_parts"]["conversation_parts"]
                if p["author"]["type"] in ("user", "lead") and p["body"] and not p["redacted"]]
        kept = {entry["id"] for entry in record.metadata["customer_parts"]} - {"source"}
        assert kept == {str(p["id"]) for p in said}, conversation_id


def test_the_record_detail_counts_redacted_messages():
    from feedback_sources.ui.records import record_details

    store = stored_after(synced())
    assert ("Redacted messages", "1") in record_details(store.get_record("intercom", CONVERSATION_ID))
    redaction = map_notification(load("webhook_part_redacted_1x.json"), rules=DEFAULT_RULES)
    stored = store.get_record("intercom", CONVERSATION_ID)
    store.upsert_records([merge_delivered(redaction, stored, rules=DEFAULT_RULES)])
    assert ("Redacted messages", "2") in record_details(store.get_record("intercom", CONVERSATION_ID))


# -- what the receiver makes of each delivery -----------------------------------------------------------------------


def interpret_intercom(payload: dict[str, Any]) -> Any:
    from feedback_sources.webhooks.payloads import MappingContext, interpret

    return interpret("intercom", payload, MappingContext(rules=DEFAULT_RULES))


@pytest.mark.parametrize(
    ("fixture", "verdict", "detail", "removals", "records"),
    [
        ("webhook_user_replied_2x.json", "stored", "", 0, 1),
        ("webhook_user_replied_1x.json", "stored", "", 0, 1),
        ("webhook_user_created_2x.json", "stored", "", 0, 1),
        ("webhook_part_redacted_1x.json", "stored", "parts redacted: 11", 0, 1),
        ("webhook_part_redacted_2x.json", "stored", "parts redacted: source", 0, 1),
        ("webhook_conversation_deleted.json", "removed", "conversation deleted", 1, 0),
    ],
)
def test_each_delivery_is_interpreted(fixture: str, verdict: str, detail: str, removals: int, records: int):
    result = interpret_intercom(load(fixture))
    assert (result.verdict, result.detail, len(result.removals), len(result.records), result.record_id) == (
        verdict, detail, removals, records, CONVERSATION_ID)
    assert (result.combine is not None) == bool(records)


def test_a_part_item_is_not_taken_for_a_conversation():
    payload = load("webhook_part_redacted_1x.json")
    payload["topic"] = "conversation_part.tag.created"
    payload["data"]["item"] = payload["data"]["item"]["conversation_parts"]["conversation_parts"][0]
    result = interpret_intercom(payload)
    assert (result.verdict, result.detail, result.records) == (
        "ignored", "item is a conversation_part, not a conversation", [])
