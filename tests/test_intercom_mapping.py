"""Intercom conversation → NormalizedRecord: pure mapping, no network.

Fixtures follow the shapes of Intercom API 2.14 (GET /conversations/{id}, GET /contacts/{id}, webhook deliveries).
"""

from __future__ import annotations

import copy
import json
import re
from datetime import datetime, timezone
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from feedback_sources.sources.intercom.mapping import (
    customer_messages,
    html_to_text,
    map_conversation,
    map_notification,
)
from feedback_sources.models import MappingError, NormalizedRecord
from feedback_sources.rules import DEFAULT_RULES

APP_ID = "ecahpwf5"
CONTACT_ID = "6762f14a1bb69f9f2193bbb3"


def unix(iso: str) -> int:
    return int(datetime.fromisoformat(iso).replace(tzinfo=timezone.utc).timestamp())


def part(part_id: str, part_type: str, at: str, author_type: str, body: str | None) -> dict[str, Any]:
    authors = {
        "user": {"type": "user", "id": CONTACT_ID, "name": "Dana Reyes", "email": "dana@acme.example"},
        "lead": {"type": "lead", "id": CONTACT_ID, "name": None, "email": "dana@acme.example"},
        "admin": {"type": "admin", "id": "991267691", "name": "Ciaran Lee", "email": "ciaran@vendor.example"},
        "bot": {"type": "bot", "id": "991267692", "name": "Fin", "email": "operator+abc@intercom.io"},
    }
    return {
        "type": "conversation_part",
        "id": part_id,
        "part_type": part_type,
        "body": body,
        "created_at": unix(at),
        "updated_at": unix(at),
        "notified_at": unix(at),
        "assigned_to": None,
        "author": authors[author_type],
        "attachments": [],
        "external_id": None,
        "redacted": False,
    }


def full_conversation() -> dict[str, Any]:
    """GET /conversations/1911149811: a customer-started thread with replies, a note, a bot and an assignment."""
    return {
        "type": "conversation",
        "id": "1911149811",
        "title": None,
        "created_at": unix("2024-06-01T10:00:00"),
        "updated_at": unix("2024-06-01T11:00:00"),
        "waiting_since": None,
        "snoozed_until": None,
        "open": True,
        "state": "open",
        "read": True,
        "priority": "priority",
        "admin_assignee_id": 991267691,
        "team_assignee_id": None,
        "source": {
            "type": "conversation",
            "id": "403918346",
            "delivered_as": "customer_initiated",
            "subject": "",
            "body": "<p>The export button is <b>broken</b> since Monday.</p><p>Can you help?</p>",
            "author": {"type": "user", "id": CONTACT_ID, "name": "Dana Reyes", "email": "dana@acme.example"},
            "attachments": [],
            "url": None,
            "redacted": False,
        },
        "contacts": {
            "type": "contact.list",
            "contacts": [{"type": "contact", "id": CONTACT_ID, "external_id": "70"}],
        },
        "teammates": {"type": "admin.list", "admins": [{"type": "admin", "id": "991267691"}]},
        "tags": {
            "type": "tag.list",
            "tags": [
                {"type": "tag", "id": "7", "name": "Bug", "applied_at": unix("2024-06-01T10:06:00")},
                {"type": "tag", "id": "8", "name": "export", "applied_at": unix("2024-06-01T10:06:00")},
            ],
        },
        "custom_attributes": {},
        "first_contact_reply": {"created_at": unix("2024-06-01T10:00:00"), "type": "conversation", "url": None},
        "sla_applied": None,
        "statistics": {"type": "conversation_statistics", "count_conversation_parts": 7},
        "conversation_rating": {
            "rating": 4,
            "remark": "",
            "created_at": unix("2024-06-01T10:50:00"),
            "contact": {"type": "contact", "id": CONTACT_ID, "external_id": "70"},
            "teammate": {"type": "admin", "id": "991267691"},
        },
        "conversation_parts": {
            "type": "conversation_part.list",
            "conversation_parts": [
                part("101", "comment", "2024-06-01T10:05:00", "admin", "<p>Thanks Dana, looking into it.</p>"),
                part("102", "note", "2024-06-01T10:06:00", "admin", "<p>Probably the CSV worker again</p>"),
                # Listed out of order on purpose: the thread must read in time order.
                part("105", "open", "2024-06-01T10:40:00", "user", "<p>Still broken :(</p>"),
                part("103", "comment", "2024-06-01T10:20:00", "user", "<p>It also fails for PDF &amp; XLSX.</p>"),
                part("104", "comment", "2024-06-01T10:21:00", "bot", "<p>How would you rate this chat?</p>"),
                part("106", "assignment", "2024-06-01T10:41:00", "admin", None),
                part("107", "comment", "2024-06-01T10:42:00", "user", None),
            ],
            "total_count": 7,
        },
        "linked_objects": {"type": "list", "data": [], "total_count": 0, "has_more": False},
        "ai_agent_participated": False,
    }


def contact() -> dict[str, Any]:
    """GET /contacts/{id} (2.14): companies are references only, the plan lives in custom_attributes."""
    return {
        "type": "contact",
        "id": CONTACT_ID,
        "workspace_id": APP_ID,
        "external_id": "70",
        "role": "user",
        "email": "dana.reyes@acme.example",
        "phone": None,
        "name": "Dana Reyes",
        "avatar": None,
        "owner_id": None,
        "social_profiles": {"type": "list", "data": []},
        "has_hard_bounced": False,
        "marked_email_as_spam": False,
        "unsubscribed_from_emails": False,
        "created_at": unix("2023-02-01T09:00:00"),
        "updated_at": unix("2024-06-01T10:00:00"),
        "signed_up_at": unix("2023-02-01T09:00:00"),
        "last_seen_at": unix("2024-06-01T09:59:00"),
        "custom_attributes": {"plan": "Enterprise annual", "seats": 40},
        "tags": {
            "type": "list",
            "data": [],
            "url": f"/contacts/{CONTACT_ID}/tags",
            "total_count": 0,
            "has_more": False,
        },
        "companies": {
            "type": "list",
            "data": [
                {"id": "5ba682d23d7cf92bef87bfd4", "type": "company", "url": "/companies/5ba682d23d7cf92bef87bfd4"}
            ],
            "url": f"/contacts/{CONTACT_ID}/companies",
            "total_count": 1,
            "has_more": False,
        },
        "location": {"type": "location", "city": "Dublin", "region": "Dublin", "country": "Ireland"},
    }


def as_row(record: NormalizedRecord) -> dict[str, Any]:
    return record.model_dump(mode="json")


def test_full_conversation_with_contact_maps_to_the_whole_record():
    record = map_conversation(full_conversation(), contact(), app_id=APP_ID, rules=DEFAULT_RULES)

    assert as_row(record) == {
        "source": "intercom",
        "source_id": "1911149811",
        "title": None,
        "content": (
            "The export button is broken since Monday.\n\nCan you help?\n\n"
            "It also fails for PDF & XLSX.\n\nStill broken :("
        ),
        "customer_id": CONTACT_ID,
        "customer_email": "dana.reyes@acme.example",
        "customer_name": "Dana Reyes",
        "customer_tier": "enterprise",
        "category": "bug_report",
        "created_at": "2024-06-01T10:00:00Z",
        "metadata": {
            "state": "open",
            "priority": "priority",
            "tags": ["Bug", "export"],
            "url": f"https://app.intercom.com/a/apps/{APP_ID}/inbox/inbox/conversation/1911149811",
            "updated_at": "2024-06-01T11:00:00+00:00",
            "contact_id": CONTACT_ID,
            "rating": 4,
            "parts_count": 7,
            "source_type": "conversation",
            "ai_agent_participated": False,
            # Where each customer message sits in `content`: the opening message, then parts 103 and 105.
            "customer_parts": [
                {"id": "source", "at": unix("2024-06-01T10:00:00"), "chars": 56},
                {"id": "103", "at": unix("2024-06-01T10:20:00"), "chars": 29},
                {"id": "105", "at": unix("2024-06-01T10:40:00"), "chars": 15},
            ],
            "redacted_parts": [],
            "category_reason": "tag `Bug`",
            "tier_reason": "plan `Enterprise annual` matches `enterprise`",
        },
    }
    assert record.updated_at == datetime(2024, 6, 1, 11, tzinfo=timezone.utc)
    json.dumps(record.metadata)


def test_admin_started_conversation_keeps_only_the_customers_replies():
    conversation = full_conversation()
    conversation["source"].update(
        delivered_as="admin_initiated",
        subject="<p>How is the <i>new</i> dashboard?</p>",
        body="<p>Hi Dana, we shipped a new dashboard. Thoughts?</p>",
        author={"type": "admin", "id": "991267691", "name": "Ciaran Lee", "email": "ciaran@vendor.example"},
    )
    conversation["conversation_parts"]["conversation_parts"] = [
        part("201", "comment", "2024-06-01T10:30:00", "lead", "It would be great to export charts.<br>As PNG."),
        part("202", "comment", "2024-06-01T10:35:00", "admin", "Noted!"),
    ]
    conversation["tags"]["tags"] = []

    record = map_conversation(conversation, None, app_id=APP_ID, rules=DEFAULT_RULES)

    assert (record.title, record.content, record.category) == (
        "How is the new dashboard?",
        "It would be great to export charts.\nAs PNG.",
        "feature_request",
    )
    # The admin who opened the thread is not the customer: identity comes from the contacts list only.
    assert (record.customer_id, record.customer_email, record.customer_name, record.customer_tier) == (
        CONTACT_ID,
        None,
        None,
        None,
    )
    assert record.metadata["category_reason"] == "keyword `would be great`"
    assert record.metadata["tier_reason"] == "no plan information"


def test_notes_admin_and_bot_parts_never_reach_the_content():
    messages = customer_messages(full_conversation())

    assert messages == [
        "The export button is broken since Monday.\n\nCan you help?",
        "It also fails for PDF & XLSX.",
        "Still broken :(",
    ]
    joined = "\n".join(messages)
    for internal in ("CSV worker", "looking into it", "rate this chat"):
        assert internal not in joined


def test_title_falls_back_from_empty_subject_to_conversation_title_then_none():
    conversation = full_conversation()
    conversation["title"] = "Export broken"
    assert map_conversation(conversation, None, app_id=None, rules=DEFAULT_RULES).title == "Export broken"

    conversation["source"]["subject"] = "<p>Re: <b>Export</b> &amp; reports</p>"
    assert map_conversation(conversation, None, app_id=None, rules=DEFAULT_RULES).title == "Re: Export & reports"

    conversation["source"]["subject"] = "<p> </p>"
    conversation["title"] = "   "
    assert map_conversation(conversation, None, app_id=None, rules=DEFAULT_RULES).title is None


def test_without_a_contact_the_customer_author_and_contact_reference_are_used():
    conversation = full_conversation()
    conversation["conversation_rating"] = None

    record = map_conversation(conversation, None, app_id=None, rules=DEFAULT_RULES)

    assert (record.customer_id, record.customer_email, record.customer_name, record.customer_tier) == (
        CONTACT_ID,
        "dana@acme.example",
        "Dana Reyes",
        None,
    )
    assert (record.metadata["url"], record.metadata["rating"], record.metadata["tier_reason"]) == (
        None,
        None,
        "no plan information",
    )


def test_company_plan_sets_the_tier_when_the_contact_has_no_plan_attribute():
    person = contact()
    person["custom_attributes"] = {"plan": None}
    person["companies"] = {
        "type": "list",
        "data": [
            {"type": "company", "id": "5ba6", "name": "Acme", "plan": {"type": "plan", "id": "9", "name": "Growth"}}
        ],
    }

    record = map_conversation(full_conversation(), person, app_id=APP_ID, rules=DEFAULT_RULES)

    assert (record.customer_tier, record.metadata["tier_reason"]) == (
        "professional",
        "company plan `Growth` matches `growth`",
    )


def test_search_result_without_parts_maps_from_the_opening_message():
    conversation = full_conversation()
    del conversation["conversation_parts"]

    record = map_conversation(conversation, contact(), app_id=APP_ID, rules=DEFAULT_RULES)

    assert (record.content, record.metadata["parts_count"]) == (
        "The export button is broken since Monday.\n\nCan you help?",
        0,
    )


def test_webhook_delivery_maps_with_the_same_mapper_and_its_app_id():
    item = full_conversation()
    delivery = {
        "type": "notification_event",
        "app_id": APP_ID,
        "data": {"type": "notification_event_data", "item": item},
        "links": {},
        "id": "notif_ccd8a4d0-f965-11e3-a367-c779cae3e1b3",
        "topic": "conversation.user.replied",
        "delivery_status": "pending",
        "delivery_attempts": 1,
        "delivered_at": 0,
        "first_sent_at": unix("2024-06-01T11:00:01"),
        "created_at": unix("2024-06-01T11:00:00"),
        "self": None,
    }

    from_webhook = map_notification(delivery, rules=DEFAULT_RULES)

    # A delivery carries no contact object: the same as mapping the item with contact=None.
    assert as_row(from_webhook) == as_row(map_conversation(item, None, app_id=APP_ID, rules=DEFAULT_RULES))
    assert from_webhook.metadata["url"] == (
        f"https://app.intercom.com/a/apps/{APP_ID}/inbox/inbox/conversation/1911149811"
    )


@pytest.mark.parametrize(
    "payload",
    [
        {"type": "notification_event", "data": {"type": "notification_event_data"}},
        {"type": "notification_event", "data": "nope"},
        ["not", "an", "object"],
    ],
)
def test_webhook_delivery_without_an_item_is_a_mapping_error(payload):
    with pytest.raises(MappingError):
        map_notification(payload, rules=DEFAULT_RULES)


@pytest.mark.parametrize("bad_id", [None, "", "   ", True, {"id": 1}, [1]])
def test_conversation_without_a_usable_id_is_a_mapping_error(bad_id):
    conversation = full_conversation()
    conversation["id"] = bad_id
    with pytest.raises(MappingError, match="no id"):
        map_conversation(conversation, contact(), app_id=APP_ID, rules=DEFAULT_RULES)

    del conversation["id"]
    with pytest.raises(MappingError, match="no id"):
        map_conversation(conversation, contact(), app_id=APP_ID, rules=DEFAULT_RULES)


def test_numeric_id_and_missing_created_at_fall_back_sensibly():
    conversation = full_conversation()
    conversation["id"] = 1911149811
    conversation["created_at"] = None

    record = map_conversation(conversation, contact(), app_id=APP_ID, rules=DEFAULT_RULES)

    assert (record.source_id, record.created_at) == ("1911149811", datetime(2024, 6, 1, 11, tzinfo=timezone.utc))

    conversation["updated_at"] = "soon"
    with pytest.raises(MappingError, match="created_at"):
        map_conversation(conversation, contact(), app_id=APP_ID, rules=DEFAULT_RULES)


def test_not_an_object_is_a_mapping_error():
    with pytest.raises(MappingError):
        map_conversation(["1911149811"], None, app_id=None, rules=DEFAULT_RULES)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("html", "text"),
    [
        ("<p>Hi&nbsp;there &amp; welcome</p><p>Line 2<br>Line 3</p>", "Hi there & welcome\n\nLine 2\nLine 3"),
        ("<ul><li>one</li><li>two</li></ul>", "- one\n- two"),
        ("<p>safe</p><script>alert('x')</script><style>p{color:red}</style>", "safe"),
        ('<a href="javascript:alert(1)">link</a> <img src=x onerror="alert(1)">', "link"),
        ("&lt;script&gt; is what I typed", "<script> is what I typed"),
        ("  plain text stays as typed  ", "plain text stays as typed"),
        ("", ""),
        (None, ""),
    ],
)
def test_html_to_text(html, text):
    assert html_to_text(html) == text


# -- schema-shaped garbage ----------------------------------------------------------------------------------------

TAG = re.compile(r"</?[a-zA-Z][^<>]*>")

garbage = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(10**20), max_value=10**20),
    st.floats(allow_nan=True, allow_infinity=True),
    # No "&": an escaped tag typed by a customer is legitimately text, which would blur the "no tags" property.
    st.text(alphabet=st.characters(blacklist_characters="&"), max_size=12),
    st.lists(st.integers(), max_size=2),
    st.dictionaries(st.text(max_size=3), st.integers(), max_size=2),
)


def paths(value: Any, prefix: tuple = ()) -> list[tuple]:
    found = []
    if isinstance(value, dict):
        for key, child in value.items():
            found.append(prefix + (key,))
            found.extend(paths(child, prefix + (key,)))
    elif isinstance(value, list):
        for index, child in enumerate(value):
            found.append(prefix + (index,))
            found.extend(paths(child, prefix + (index,)))
    return found


def mutate(data: st.DataObject, document: dict[str, Any], max_changes: int = 6) -> tuple[dict[str, Any], list[tuple]]:
    """Remove, null or retype a few fields anywhere in the document."""
    document = copy.deepcopy(document)
    changed = []
    # A seeded Random picks paths uniformly; sampled_from would favour the first fields of the document.
    chooser = data.draw(st.randoms(use_true_random=False))
    for _ in range(data.draw(st.integers(min_value=0, max_value=max_changes))):
        candidates = paths(document)
        if not candidates:
            break
        path = chooser.choice(candidates)
        parent = document
        for step in path[:-1]:
            parent = parent[step]
        action = data.draw(st.sampled_from(["remove", "null", "retype"]))
        if action == "remove":
            del parent[path[-1]]
        else:
            parent[path[-1]] = None if action == "null" else data.draw(garbage)
        changed.append(path)
    return document, changed


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.data())
def test_fuzzed_payloads_map_or_raise_mapping_error(data):
    conversation, changed = mutate(data, full_conversation())
    person, _ = mutate(data, contact(), max_changes=3)
    person = data.draw(st.sampled_from([person, None]))
    key_fields_intact = not any(path[0] in ("id", "created_at") for path in changed)

    try:
        app_id = data.draw(st.sampled_from([APP_ID, None]))
        record = map_conversation(conversation, person, app_id=app_id, rules=DEFAULT_RULES)
    except MappingError:
        assert not key_fields_intact, "an intact id and created_at must always map"
        return

    assert record.source_id and record.created_at.tzinfo is not None
    assert TAG.search(record.content) is None and TAG.search(record.title or "") is None
    assert all(isinstance(tag, str) for tag in record.metadata["tags"])
    json.dumps(record.metadata)  # JSON-serializable whatever came in


@settings(max_examples=100, deadline=None)
@given(st.data())
def test_fuzzed_webhook_deliveries_map_or_raise_mapping_error(data):
    delivery = {
        "type": "notification_event",
        "app_id": APP_ID,
        "topic": "conversation.user.created",
        "id": "notif_1",
        "data": {"type": "notification_event_data", "item": full_conversation()},
    }
    mutated, _ = mutate(data, delivery)
    try:
        record = map_notification(mutated, rules=DEFAULT_RULES)
    except MappingError:
        return
    json.dumps(record.model_dump(mode="json"))


def test_register_webhook_explains_the_manual_steps():
    import asyncio

    from feedback_sources.integrations.base import WebhookSetupRequired
    from feedback_sources.sources.intercom.integration import IntercomIntegration

    integration = IntercomIntegration({"access_token": "tok"})
    with pytest.raises(WebhookSetupRequired) as raised:
        asyncio.run(integration.register_webhook("https://hooks.example/webhooks/intercom"))
    text = str(raised.value)
    assert "https://hooks.example/webhooks/intercom" in text
    assert "conversation.user.created" in text and "client secret" in text
