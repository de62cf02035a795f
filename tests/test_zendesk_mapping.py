"""Zendesk ticket → NormalizedRecord: the pure mapping shared by the sync and the webhook receiver."""

from __future__ import annotations

import copy
import json
from datetime import datetime, timezone
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from feedback_sources.integrations.text import html_to_text
from feedback_sources.sources.zendesk.mapping import index_by_id, is_deleted, map_ticket, ticket_removal
from feedback_sources.models import Category, MappingError, NormalizedRecord, RemovalReason
from feedback_sources.rules import DEFAULT_RULES, Rules

# An export row as Zendesk sends it (fields from the API reference's ticket object).
TICKET: dict[str, Any] = {
    "url": "https://acme.zendesk.com/api/v2/tickets/35436.json",
    "id": 35436,
    "external_id": "ahg35h3jh",
    "via": {"channel": "web", "source": {"from": {}, "to": {}, "rel": None}},
    "created_at": "2024-03-05T10:38:52Z",
    "updated_at": "2024-03-07T08:00:00Z",
    "generated_timestamp": 1709798400,
    "type": "incident",
    "subject": "Export to CSV is broken",
    "raw_subject": "Export to CSV is broken",
    "description": "When I click Export the page goes blank.\n\nThis started yesterday.",
    "priority": "high",
    "status": "open",
    "recipient": "support@acme.example",
    "requester_id": 20978392,
    "submitter_id": 20978392,
    "assignee_id": 235323,
    "organization_id": 509974,
    "group_id": 98738,
    "collaborator_ids": [],
    "follower_ids": [],
    "problem_id": None,
    "has_incidents": False,
    "due_at": None,
    "tags": ["export", "csv"],
    "custom_fields": [{"id": 27642, "value": "745"}],
    "satisfaction_rating": {"id": 1234, "score": "bad", "comment": "Still waiting for a fix"},
    "sharing_agreement_ids": [],
    "brand_id": 1,
    "allow_channelback": False,
    "is_public": True,
}

USER: dict[str, Any] = {
    "id": 20978392,
    "url": "https://acme.zendesk.com/api/v2/users/20978392.json",
    "name": "Dana Customer",
    "email": "dana@customer.example",
    "role": "end-user",
    "organization_id": 509974,
    "tags": [],
    "user_fields": {"plan": "Enterprise annual", "user_decimal": 5.1},
}

ORGANIZATION: dict[str, Any] = {
    "id": 509974,
    "url": "https://acme.zendesk.com/api/v2/organizations/509974.json",
    "name": "Customer Corp",
    "tags": [],
    "organization_fields": {"plan": None},
}


METADATA_KEYS = {
    "status", "priority", "severity", "type", "via_channel", "tags", "url", "updated_at", "requester_id",
    "organization_id", "organization_name", "satisfaction", "satisfaction_comment", "category_reason", "tier_reason",
}  # fmt: skip


def map_default(ticket: dict[str, Any], users: list[dict[str, Any]] | None = None, **kwargs: Any) -> NormalizedRecord:
    return map_ticket(ticket, index_by_id(users or []), subdomain="acme", rules=DEFAULT_RULES, **kwargs)


def test_export_ticket_maps_every_field() -> None:
    record = map_default(TICKET, [USER], organizations_by_id=index_by_id([ORGANIZATION]))

    assert record.model_dump(mode="json") == {
        "source": "zendesk",
        "source_id": "35436",
        "title": "Export to CSV is broken",
        "content": "When I click Export the page goes blank.\n\nThis started yesterday.",
        "customer_id": "20978392",
        "customer_email": "dana@customer.example",
        "customer_name": "Dana Customer",
        "customer_tier": "enterprise",
        "category": "bug_report",
        "created_at": "2024-03-05T10:38:52Z",
        "metadata": {
            "status": "open",
            "priority": "high",
            "severity": "high",
            "type": "incident",
            "via_channel": "web",
            "tags": ["export", "csv"],
            "url": "https://acme.zendesk.com/agent/tickets/35436",
            "updated_at": "2024-03-07T08:00:00+00:00",
            "requester_id": "20978392",
            "organization_id": "509974",
            "organization_name": "Customer Corp",
            "satisfaction": "bad",
            "satisfaction_comment": "Still waiting for a fix",
            "category_reason": "vendor type `incident`",
            "tier_reason": "requester plan `Enterprise annual` matches `enterprise`",
        },
    }
    assert record.created_at == datetime(2024, 3, 5, 10, 38, 52, tzinfo=timezone.utc)
    assert record.updated_at == datetime(2024, 3, 7, 8, 0, tzinfo=timezone.utc)
    json.dumps(record.metadata)  # the store keeps metadata as JSON


def test_requester_not_side_loaded_leaves_customer_details_empty() -> None:
    record = map_default(TICKET, users=[])

    assert (record.customer_id, record.customer_email, record.customer_name, record.customer_tier) == (
        "20978392",
        None,
        None,
        None,
    )
    assert record.metadata["tier_reason"] == "no plan information"
    assert record.metadata["organization_name"] is None


def test_subject_falls_back_to_raw_subject() -> None:
    ticket = {**TICKET, "subject": None, "raw_subject": "{{dc.printer_on_fire}}"}
    assert map_default(ticket).title == "{{dc.printer_on_fire}}"
    assert map_default({**TICKET, "subject": "  ", "raw_subject": None}).title is None


@pytest.mark.parametrize(
    ("priority", "expected"),
    [
        ("urgent", ("urgent", "critical")),
        ("high", ("high", "high")),
        ("normal", ("normal", "medium")),
        ("low", ("low", "low")),
        (None, (None, None)),
        ("URGENT", ("urgent", "critical")),  # event webhooks send upper case
        ("someday", ("someday", None)),
    ],
)
def test_priority_sets_severity(priority: str | None, expected: tuple[str | None, str | None]) -> None:
    metadata = map_default({**TICKET, "priority": priority}).metadata
    assert (metadata["priority"], metadata["severity"]) == expected


def test_event_webhook_detail_maps_like_an_export_row() -> None:
    # Ticket event webhooks send ids as strings, enum values capitalized and "0" for "no organization".
    detail = {
        "id": "35436",
        "subject": "Export to CSV is broken",
        "description": "When I click Export the page goes blank.",
        "priority": "HIGH",
        "status": "Open",
        "type": "INCIDENT",
        "tags": ["export"],
        "requester_id": "20978392",
        "organization_id": "0",
        "via": {"channel": "web"},
        "created_at": "2024-03-05T10:38:52Z",
        "updated_at": "2024-03-05T10:38:52Z",
    }
    record = map_ticket(detail, {}, subdomain="acme", rules=DEFAULT_RULES)

    assert record.model_dump(mode="json") == {
        "source": "zendesk",
        "source_id": "35436",
        "title": "Export to CSV is broken",
        "content": "When I click Export the page goes blank.",
        "customer_id": "20978392",
        "customer_email": None,
        "customer_name": None,
        "customer_tier": None,
        "category": "bug_report",
        "created_at": "2024-03-05T10:38:52Z",
        "metadata": {
            "status": "open",
            "priority": "high",
            "severity": "high",
            "type": "incident",
            "via_channel": "web",
            "tags": ["export"],
            "url": "https://acme.zendesk.com/agent/tickets/35436",
            "updated_at": "2024-03-05T10:38:52+00:00",
            "requester_id": "20978392",
            "organization_id": None,
            "organization_name": None,
            "satisfaction": None,
            "satisfaction_comment": None,
            "category_reason": "vendor type `incident`",
            "tier_reason": "no plan information",
        },
    }


def test_string_keyed_users_are_found_too() -> None:
    ticket = {**TICKET, "requester_id": "20978392"}
    record = map_ticket(ticket, {"20978392": USER}, subdomain="acme", rules=DEFAULT_RULES)
    assert record.customer_name == "Dana Customer"


def test_a_tag_rule_beats_the_ticket_type() -> None:
    record = map_default({**TICKET, "tags": ["vip", "feature_request"], "type": "problem"})
    assert (record.category, record.metadata["category_reason"]) == ("feature_request", "tag `feature_request`")


def test_keywords_decide_when_no_tag_or_type_matches() -> None:
    record = map_default(
        {**TICKET, "tags": [], "type": None, "subject": "Idea", "description": "It would be nice to pin reports."}
    )
    assert (record.category, record.metadata["category_reason"]) == ("feature_request", "keyword `it would be nice`")


def test_custom_rules_are_used() -> None:
    rules = Rules(tag_categories={"csv": Category.praise}, type_categories={}, keyword_categories=(), plan_tiers=())
    record = map_ticket(TICKET, {}, subdomain="acme", rules=rules)
    assert (record.category, record.customer_tier) == ("praise", None)


@pytest.mark.parametrize(
    ("user_fields", "organization", "expected"),
    [
        ({"tier": "Business"}, {}, ("business", "requester tier `Business` matches `business`")),
        ({"subscription": "Free trial"}, {}, ("free", "requester subscription `Free trial` matches `free`")),
        (
            {},
            {"id": 509974, "name": "Customer Corp", "organization_fields": {"plan": "Growth"}},
            ("professional", "organization plan `Growth` matches `growth`"),
        ),
        (
            {},
            {"id": 509974, "name": "Initech Enterprise", "organization_fields": {}},
            ("enterprise", "organization name `Initech Enterprise` matches `enterprise`"),
        ),
        (
            {"plan": "Starter"},
            {"id": 509974, "name": "X", "organization_fields": {"plan": "Enterprise"}},
            ("free", "requester plan `Starter` matches `starter`"),
        ),
        ({"plan": 3, "tier": ["pro"]}, {}, (None, "no plan information")),
    ],
)
def test_tier_from_requester_then_organization(
    user_fields: dict[str, Any], organization: dict[str, Any], expected: tuple[str | None, str]
) -> None:
    user = {**USER, "user_fields": user_fields}
    record = map_default(TICKET, [user], organizations_by_id=index_by_id([organization]) if organization else None)
    assert (record.customer_tier, record.metadata["tier_reason"]) == expected


def test_organization_comes_from_the_requester_when_the_ticket_has_none() -> None:
    record = map_default({**TICKET, "organization_id": None}, [USER], organizations_by_id=index_by_id([ORGANIZATION]))
    assert (record.metadata["organization_id"], record.metadata["organization_name"]) == ("509974", "Customer Corp")


def test_description_is_plain_text_stored_verbatim() -> None:
    """Zendesk's `description` is the first comment's plain text: what looks like markup is what the customer typed."""
    description = "Export shows <b>nothing</b> & the total is =SUM(A1:A3)\n\n  if a < b then <script>x</script>"
    record = map_default({**TICKET, "description": description})
    assert record.content == description


@pytest.mark.parametrize(
    ("html", "text"),
    [
        ("plain text\n  with  spacing kept\n", "plain text\n  with  spacing kept"),
        ("a < b and c > d", "a < b and c > d"),
        ("<div>one</div><div>two</div>", "one\n\ntwo"),
        ("line<br/>next", "line\nnext"),
        ("<pre>  code\n    indented</pre>", "code\n    indented"),
        ("Tom &amp; Jerry &#8212; &lt;3", "Tom & Jerry — <3"),
        ("<img src=x onerror=alert(1)>caption", "caption"),
        ("<!-- hidden --><p>shown</p>", "shown"),
        ("<script>never()</script>", ""),
    ],
)
def test_html_to_text(html: str, text: str) -> None:
    assert html_to_text(html) == text


def test_content_keeps_what_looks_like_tags() -> None:
    record = map_default({**TICKET, "description": "<h1>Title</h1><table><tr><td>a</td><td>b</td></tr></table>"})
    assert record.content == "<h1>Title</h1><table><tr><td>a</td><td>b</td></tr></table>"


def test_missing_fields_map_to_empty_values() -> None:
    record = map_ticket({"id": 7, "created_at": "2024-01-02T03:04:05Z"}, {}, subdomain="acme", rules=DEFAULT_RULES)
    assert record.model_dump(mode="json") == {
        "source": "zendesk",
        "source_id": "7",
        "title": None,
        "content": "",
        "customer_id": None,
        "customer_email": None,
        "customer_name": None,
        "customer_tier": None,
        "category": "other",
        "created_at": "2024-01-02T03:04:05Z",
        "metadata": {
            "status": None,
            "priority": None,
            "severity": None,
            "type": None,
            "via_channel": None,
            "tags": [],
            "url": "https://acme.zendesk.com/agent/tickets/7",
            "updated_at": "2024-01-02T03:04:05+00:00",
            "requester_id": None,
            "organization_id": None,
            "organization_name": None,
            "satisfaction": None,
            "satisfaction_comment": None,
            "category_reason": "default for this source",
            "tier_reason": "no plan information",
        },
    }


def test_creation_time_falls_back_to_update_time() -> None:
    record = map_ticket({"id": 7, "updated_at": "2024-01-02T03:04:05Z"}, {}, subdomain="acme", rules=DEFAULT_RULES)
    assert record.created_at == datetime(2024, 1, 2, 3, 4, 5, tzinfo=timezone.utc)


@pytest.mark.parametrize(
    "ticket",
    [
        {k: v for k, v in TICKET.items() if k != "id"},
        {**TICKET, "id": None},
        {**TICKET, "id": ""},
        {**TICKET, "id": True},
        {**TICKET, "id": 1.5},
        {**TICKET, "id": {"value": 1}},
        {**TICKET, "created_at": None, "updated_at": None},
        {**TICKET, "created_at": "yesterday", "updated_at": "soon"},
    ],
)
def test_unusable_tickets_raise_mapping_error(ticket: dict[str, Any]) -> None:
    with pytest.raises(MappingError):
        map_default(ticket)


def test_non_object_payload_raises_mapping_error() -> None:
    with pytest.raises(MappingError):
        map_ticket(["not", "a", "ticket"], {}, subdomain="acme", rules=DEFAULT_RULES)  # type: ignore[arg-type]


def test_deleted_tickets_are_recognized() -> None:
    assert is_deleted({**TICKET, "status": "deleted"})
    assert is_deleted({**TICKET, "status": "Deleted"})
    assert not is_deleted(TICKET)
    assert not is_deleted({**TICKET, "status": None})


def test_index_by_id_ignores_malformed_entries() -> None:
    assert index_by_id([USER, None, {"name": "no id"}, {"id": True}, "x"]) == {20978392: USER}
    assert index_by_id(None) == {}


def test_mapping_does_not_modify_its_input() -> None:
    ticket, users = copy.deepcopy(TICKET), index_by_id([copy.deepcopy(USER)])
    map_ticket(ticket, users, subdomain="acme", rules=DEFAULT_RULES)
    assert (ticket, users) == (TICKET, {20978392: USER})


# -- schema-shaped garbage -------------------------------------------------------------------------------------------

JSON_SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**63), max_value=2**63),
    st.floats(allow_nan=True),
    st.text(max_size=30),
)
JSON_VALUES = st.recursive(
    JSON_SCALARS,
    lambda children: st.one_of(
        st.lists(children, max_size=3), st.dictionaries(st.text(max_size=8), children, max_size=3)
    ),
    max_leaves=8,
)


@st.composite
def damaged_ticket(draw: st.DrawFn) -> dict[str, Any]:
    """The real ticket with some fields removed, nulled or replaced by a value of another type."""
    ticket = copy.deepcopy(TICKET)
    for key in draw(st.lists(st.sampled_from(sorted(TICKET)), unique=True, max_size=len(TICKET))):
        action = draw(st.sampled_from(["remove", "null", "retype"]))
        if action == "remove":
            del ticket[key]
        elif action == "null":
            ticket[key] = None
        else:
            ticket[key] = draw(JSON_VALUES)
    return ticket


@st.composite
def damaged_user(draw: st.DrawFn) -> dict[str, Any]:
    user = copy.deepcopy(USER)
    for key in draw(st.lists(st.sampled_from(["name", "email", "user_fields", "organization_id"]), unique=True)):
        user[key] = draw(JSON_VALUES)
    return user


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(ticket=damaged_ticket(), user=damaged_user(), organization_name=JSON_VALUES)
def test_damaged_payloads_map_or_raise_mapping_error(
    ticket: dict[str, Any], user: dict[str, Any], organization_name: Any
) -> None:
    organizations = index_by_id([{**ORGANIZATION, "name": organization_name}])
    try:
        record = map_ticket(
            ticket, index_by_id([user]), subdomain="acme", rules=DEFAULT_RULES, organizations_by_id=organizations
        )
    except MappingError:
        return
    assert record.source_id
    assert record.created_at.tzinfo is not None
    assert set(record.metadata) == METADATA_KEYS
    assert all(isinstance(tag, str) for tag in record.metadata["tags"])
    json.dumps(record.model_dump(mode="json"), allow_nan=False)


@settings(max_examples=300, deadline=None)
@given(html=st.text(alphabet=st.sampled_from(list("<>/&;#!-apbrsciptlyex =\"'\n\xa0")), max_size=80))
def test_html_to_text_accepts_any_fragment(html: str) -> None:
    text = html_to_text(html)
    assert text == text.strip()


def test_html_lists_and_documents() -> None:
    assert html_to_text("<ol><li><p>one</p></li><li>two</li></ol><p>after</p>") == "- one\n- two\n\nafter"
    assert html_to_text("<html><head><title>T</title></head><body><p>Body  text</p></body></html>") == "Body text"


def test_a_requester_with_empty_user_fields_and_a_typed_formula_maps_whole() -> None:
    """The shapes real accounts send: `user_fields: {}` (never set up) and a description the customer typed with
    characters that look like markup and a formula."""
    user = {**USER, "user_fields": {}, "organization_id": None}
    ticket = {
        **TICKET,
        "organization_id": None,
        "type": None,
        "tags": [],
        "priority": None,
        "satisfaction_rating": {"score": "unoffered"},
        "description": "Totals show =SUM(B2:B9) & the <b>Export</b> button is greyed out when rows < 1000",
    }
    record = map_default(ticket, [user])
    assert record.model_dump(mode="json") == {
        "source": "zendesk",
        "source_id": "35436",
        "title": "Export to CSV is broken",
        "content": "Totals show =SUM(B2:B9) & the <b>Export</b> button is greyed out when rows < 1000",
        "customer_id": "20978392",
        "customer_email": "dana@customer.example",
        "customer_name": "Dana Customer",
        "customer_tier": None,
        "category": "bug_report",
        "created_at": "2024-03-05T10:38:52Z",
        "metadata": {
            "status": "open",
            "priority": None,
            "severity": None,
            "type": None,
            "via_channel": "web",
            "tags": [],
            "url": "https://acme.zendesk.com/agent/tickets/35436",
            "updated_at": "2024-03-07T08:00:00+00:00",
            "requester_id": "20978392",
            "organization_id": None,
            "organization_name": None,
            "satisfaction": "unoffered",
            "satisfaction_comment": None,
            "category_reason": record.metadata["category_reason"],  # the keyword rule: its wording is the UI's
            "tier_reason": record.metadata["tier_reason"],
        },
    }
    assert "broken" in record.metadata["category_reason"] and "no plan" in record.metadata["tier_reason"]


def test_a_deleted_export_row_is_a_removal_at_its_last_update() -> None:
    # The export lists a deleted (or spam) ticket with status "deleted"; its last update is the deletion.
    deleted = {**TICKET, "status": "deleted", "updated_at": "2024-03-09T12:00:00Z"}
    assert is_deleted(deleted)
    assert ticket_removal(deleted).model_dump(mode="json") == {
        "source": "zendesk", "source_id": "35436", "reason": "deleted", "removed_at": "2024-03-09T12:00:00Z",
    }
    spam = ticket_removal({"id": "35436"}, reason=RemovalReason.spam,
                          at=datetime(2024, 3, 9, 12, 5, tzinfo=timezone.utc))
    assert spam.model_dump(mode="json") == {
        "source": "zendesk", "source_id": "35436", "reason": "spam", "removed_at": "2024-03-09T12:05:00Z",
    }
    assert ticket_removal({"status": "deleted"}) is None  # no id: nothing to remove
