"""Intercom conversations, webhook deliveries and deletions as feedback records and removals.

Pure transforms shared by the sync and the webhook receiver (deliveries carry the conversation in `data.item`).
Message-level work (customer parts, redactions) is in `parts.py`, re-exported so callers import from here.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from datetime import datetime, timezone
from typing import Any

from ...integrations.base import in_range
from ...integrations.coerce import as_dict, as_list, identifier, integer, iso_datetime, record_id, text
from ...integrations.text import html_to_text
from ...models import MappingError, NormalizedRecord, Removal, RemovalReason
from ...rules import Rules
from .parts import (
    PART_SEPARATOR,  # noqa: F401  (re-exported, as are the message constants below)
    REDACTED_BODY_TEXT,  # noqa: F401
    SOURCE_KEY,  # noqa: F401
    CustomerPart,
    _content,
    _is_customer,
    _opening_message,
    _parts,
    _parts_count,
    _parts_metadata,
    _seconds,
    _stored_parts,
    _unix,
    customer_messages,
    customer_parts,
    redacted_keys,
)

__all__ = ["CustomerPart", "conversation_from_notification", "conversation_removal", "conversation_url",
           "created_in_range", "customer_messages", "customer_parts", "first_contact_id", "html_to_text",
           "map_conversation", "map_notification", "merge_delivered", "redacted_keys"]

SOURCE = "intercom"
AGENT_UI_URL = "https://app.intercom.com/a/apps/{app_id}/inbox/inbox/conversation/{conversation_id}"
# Webhook topics whose item means something other than "here is the conversation now".
REDACTED_TOPIC = "conversation_part.redacted"
DELETED_TOPIC = "conversation.deleted"

_dict, _list, _text, _identifier = as_dict, as_list, text, identifier


def _tag_names(conversation: Mapping[str, Any]) -> list[str]:
    tags = conversation.get("tags")
    items = _list(tags.get("tags")) if isinstance(tags, dict) else _list(tags)
    names = []
    for tag in items:
        name = _text(tag.get("name")) if isinstance(tag, dict) else _text(tag)
        if name is not None:
            names.append(name)
    return names


def _company_plans(contact: Mapping[str, Any]) -> list[str]:
    """Plan names of the contact's companies, when the payload includes them (lists of references do not)."""
    companies = contact.get("companies")
    if isinstance(companies, dict):
        items = _list(companies.get("data")) or _list(companies.get("companies"))
    else:
        items = _list(companies)
    plans = []
    for company in items:
        if not isinstance(company, dict):
            continue
        plan = company.get("plan")
        name = _text(plan.get("name")) if isinstance(plan, dict) else _text(plan)
        if name is not None:
            plans.append(name)
    return plans


def _plan_text(value: Any) -> str | None:
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return str(value)
    return _text(value)


def conversation_url(app_id: str | None, conversation_id: str) -> str | None:
    if not app_id:
        return None
    return AGENT_UI_URL.format(app_id=app_id, conversation_id=conversation_id)


def _legacy_user(conversation: Mapping[str, Any]) -> dict[str, Any]:
    """The customer of a pre-2.0 payload (`user`: {type: user|lead|contact, id, user_id, name, email})."""
    user = _dict(conversation.get("user"))
    return user if _is_customer(user) else {}


def map_conversation(
    conversation: dict[str, Any],
    contact: dict[str, Any] | None,
    *,
    app_id: str | None,
    rules: Rules,
    redaction_event: bool = False,
) -> NormalizedRecord:
    """Turn an Intercom conversation (and its first contact, when known) into a feedback record.

    `conversation` is the object from GET /conversations/{id}, a search result, or a webhook's `data.item` of either
    payload generation (2.x: `source` and `contacts`; 1.x: `conversation_message`, `user` and `assignee`);
    `contact` is the object from GET /contacts/{id} or None. `app_id` is the workspace's `id_code` (from GET /me or
    a webhook's `app_id`), needed for the link to the inbox. `redaction_event` says the item comes from a
    `conversation_part.redacted` delivery. Raises MappingError when the payload cannot be a record.
    """
    if not isinstance(conversation, dict):
        raise MappingError(SOURCE, f"expected a conversation object, got {type(conversation).__name__}")
    conversation_id = record_id(conversation.get("id"))
    if conversation_id is None:
        raise MappingError(SOURCE, "conversation has no id")
    created_at = _unix(conversation.get("created_at"))
    updated_at = _unix(conversation.get("updated_at"))
    if created_at is None:
        created_at = updated_at
    if created_at is None:
        raise MappingError(SOURCE, f"conversation {conversation_id} has no valid created_at")
    contact = contact if isinstance(contact, dict) else None

    opening = _opening_message(conversation)
    subject = opening.get("subject")
    title = _text(html_to_text(subject if isinstance(subject, str) else None)) or _text(
        html_to_text(conversation.get("title") if isinstance(conversation.get("title"), str) else None)
    )
    parts = customer_parts(conversation, redaction_event=redaction_event)
    content = _content(parts)

    author = _dict(opening.get("author"))
    author_is_customer = _is_customer(author)
    legacy_user = _legacy_user(conversation)
    first_contact = next(
        (c for c in _list(_dict(conversation.get("contacts")).get("contacts")) if isinstance(c, dict)), {}
    )
    contact_id = (
        _identifier(contact.get("id") if contact else None)
        or _identifier(first_contact.get("id"))
        or _identifier(legacy_user.get("id"))
        or (_identifier(author.get("id")) if author_is_customer else None)
    )
    # The opening message's author stands in for the contact only when a customer wrote it, never an admin.
    customer_email = (
        _text(contact.get("email") if contact else None)
        or _text(legacy_user.get("email"))
        or (_text(author.get("email")) if author_is_customer else None)
    )
    customer_name = (
        _text(contact.get("name") if contact else None)
        or _text(legacy_user.get("name"))
        or (_text(author.get("name")) if author_is_customer else None)
    )

    plan_candidates: list[tuple[str, str | None]] = []
    if contact:
        plan_candidates.append(("plan", _plan_text(_dict(contact.get("custom_attributes")).get("plan"))))
        plan_candidates.extend(("company plan", plan) for plan in _company_plans(contact))
    tier = rules.tier(*plan_candidates)

    tags = _tag_names(conversation)
    category = rules.categorize(tags=tags, text=f"{title or ''}\n{content}".strip())

    ai_participated = conversation.get("ai_agent_participated")
    metadata: dict[str, Any] = {
        "state": _text(conversation.get("state")),
        "priority": _text(conversation.get("priority")),
        "tags": tags,
        "url": conversation_url(app_id, conversation_id),
        "updated_at": (updated_at or created_at).isoformat(),
        "contact_id": contact_id,
        "rating": integer(_dict(conversation.get("conversation_rating")).get("rating")),
        "parts_count": _parts_count(conversation),
        # The channel (conversation, email, ...): 2.x only; a 1.x `conversation_message` does not say.
        "source_type": _text(_dict(conversation.get("source")).get("type")),
        "ai_agent_participated": ai_participated if isinstance(ai_participated, bool) else None,
        "customer_parts": _parts_metadata(parts),
        "redacted_parts": sorted(redacted_keys(conversation, redaction_event=redaction_event)),
        "category_reason": category.reason,
        "tier_reason": tier.reason,
    }
    return NormalizedRecord(
        source=SOURCE,
        source_id=conversation_id,
        title=title,
        content=content,
        customer_id=contact_id,
        customer_email=customer_email,
        customer_name=customer_name,
        customer_tier=tier.value,
        category=category.value,
        created_at=created_at,
        metadata=metadata,
    )


def conversation_from_notification(payload: Any) -> tuple[dict[str, Any], str | None]:
    """The conversation object and app id_code from a webhook delivery (`{"app_id", "data": {"item": {...}}}`)."""
    if not isinstance(payload, dict):
        raise MappingError(SOURCE, "webhook payload is not an object")
    item = _dict(payload.get("data")).get("item")
    if not isinstance(item, dict):
        raise MappingError(SOURCE, "webhook payload has no data.item")
    return item, _identifier(payload.get("app_id"))


def map_notification(payload: Any, *, rules: Rules, app_id: str | None = None) -> NormalizedRecord:
    """Map a webhook delivery on its own. Deliveries carry no contact object and only the newest part(s): the
    receiver merges the result with the stored record (`merge_delivered`) instead of storing it as it is."""
    conversation, delivered_app_id = conversation_from_notification(payload)
    topic = payload.get("topic") if isinstance(payload, dict) else None
    record = map_conversation(
        conversation, None, app_id=app_id or delivered_app_id, rules=rules, redaction_event=topic == REDACTED_TOPIC
    )
    if topic == REDACTED_TOPIC:
        record = _stamped_at_event(record, conversation, payload)
    return record


def _stamped_at_event(
    record: NormalizedRecord, item: Mapping[str, Any], payload: Mapping[str, Any]
) -> NormalizedRecord:
    """A redaction changes the conversation even when the item's `updated_at` predates it (older payloads keep the
    conversation's time and move only the part's): the record is as new as the newest time in the delivery."""
    times = [record.updated_at.timestamp()]
    times.extend(float(t) for t in (_seconds(p.get("updated_at")) for p in _parts(item)) if t is not None)
    created = _seconds(payload.get("created_at"))
    if created is not None:
        times.append(float(created))
    newest = datetime.fromtimestamp(max(times), tz=timezone.utc)
    return record.model_copy(update={"metadata": {**record.metadata, "updated_at": newest.isoformat()}})


def conversation_removal(payload: Any) -> Removal | None:
    """A `conversation.deleted` delivery as a removal: its item is only identifying fields (`id`, and `type` or
    `object`); the removal time is the notification's `created_at`. None when the delivery names no conversation."""
    if not isinstance(payload, dict):
        return None
    item = _dict(_dict(payload.get("data")).get("item"))
    conversation_id = record_id(item.get("id"))
    if conversation_id is None:
        return None
    removed_at = _unix(payload.get("created_at")) or _unix(item.get("updated_at")) or datetime.now(timezone.utc)
    return Removal(source=SOURCE, source_id=conversation_id, reason=RemovalReason.deleted, removed_at=removed_at)


def merge_delivered(
    delivered: NormalizedRecord, stored: Mapping[str, Any] | None, *, rules: Rules
) -> NormalizedRecord:
    """The record to store for a webhook delivery, given what the store holds for the conversation.

    A delivery carries only the newest part(s) and no contact, so on its own it would replace a fuller record with
    a shorter one. Instead the messages are merged by part id (the delivered version of a message wins), messages
    redacted by this delivery or any earlier one are dropped and stay dropped (a late or replayed delivery cannot
    bring them back), the customer's name, email and plan are kept when the delivery does not know them, and the
    result is at least as new as the stored record, so the store takes it even when the delivery is older. When the
    stored text cannot be split back into messages it is kept whole (never shortened); the full fetch fixes it.
    """
    if stored is None:
        return delivered
    stored_meta = _dict(stored.get("metadata"))
    delivered_meta = dict(delivered.metadata)
    redacted = sorted(set(_list(stored_meta.get("redacted_parts"))) | set(delivered_meta.get("redacted_parts") or []))
    redacted_set = set(redacted)
    described = {"customer_parts": delivered_meta.get("customer_parts") or []}
    delivered_parts = _stored_parts({"content": delivered.content, "metadata": described}) or []
    old_parts = _stored_parts(stored)
    if old_parts is None:
        stored_content = stored.get("content") if isinstance(stored.get("content"), str) else ""
        keep_whole = len(stored_content) >= len(delivered.content)
        content = stored_content if keep_whole else delivered.content
        parts_meta = stored_meta.get("customer_parts") if keep_whole else delivered_meta.get("customer_parts")
    else:
        by_key: dict[str, tuple[float, int, CustomerPart]] = {}
        for order, part in enumerate(old_parts):
            by_key[part.key] = (part.at if part.at is not None else -math.inf, order, part)
        for order, part in enumerate(delivered_parts, start=len(old_parts)):
            kept = by_key.get(part.key)
            position = kept[1] if kept is not None else order
            by_key[part.key] = (part.at if part.at is not None else (kept[0] if kept else math.inf), position, part)
        in_order = sorted(by_key.values(), key=lambda entry: (entry[0], entry[1]))
        merged = [entry[2] for entry in in_order if entry[2].key not in redacted_set]
        content = _content(merged)
        parts_meta = _parts_metadata(merged)

    same_customer = delivered.customer_id is None or delivered.customer_id == stored.get("customer_id")
    customer_id = delivered.customer_id or stored.get("customer_id")
    email = delivered.customer_email or (stored.get("customer_email") if same_customer else None)
    name = delivered.customer_name or (stored.get("customer_name") if same_customer else None)
    tier_value: Any = delivered.customer_tier
    tier_reason = delivered_meta.get("tier_reason")
    if tier_value is None and same_customer and stored.get("customer_tier"):
        tier_value, tier_reason = stored.get("customer_tier"), stored_meta.get("tier_reason", tier_reason)
    title = delivered.title or stored.get("title")
    category = rules.categorize(tags=list(delivered_meta.get("tags") or []), text=f"{title or ''}\n{content}".strip())

    stored_updated = iso_datetime(stored_meta.get("updated_at")) or iso_datetime(stored.get("updated_at"))
    newest = max(t for t in (delivered.updated_at, stored_updated) if t is not None)
    parts_count = max(
        int(delivered_meta.get("parts_count") or 0),
        int(stored_meta.get("parts_count") or 0) if isinstance(stored_meta.get("parts_count"), int) else 0,
    )
    metadata = {
        **stored_meta,
        # What the delivery does not say (a 1.x item has no `source.type`, no `ai_agent_participated`) stays known.
        **{key: value for key, value in delivered_meta.items() if value is not None},
        "url": delivered_meta.get("url") or stored_meta.get("url"),
        "contact_id": customer_id,
        "updated_at": newest.isoformat(),
        "parts_count": parts_count,
        "customer_parts": parts_meta,
        "redacted_parts": redacted,
        "category_reason": category.reason,
        "tier_reason": tier_reason,
    }
    # Validated again (model_copy would not), so the tier and category read back from the store are enums again.
    return NormalizedRecord.model_validate(
        {
            **delivered.model_dump(),
            "title": title,
            "content": content,
            "customer_id": customer_id,
            "customer_email": email,
            "customer_name": name,
            "customer_tier": tier_value,
            "category": category.value,
            "metadata": metadata,
        }
    )



def first_contact_id(conversation: Mapping[str, Any]) -> str | None:
    for contact in _list(_dict(conversation.get("contacts")).get("contacts")):
        if isinstance(contact, dict):
            contact_id = _identifier(contact.get("id"))
            if contact_id is not None:
                return contact_id
    return None


def created_in_range(item: Mapping[str, Any], start: datetime | None, end: datetime | None) -> bool:
    """Skip the detail calls for conversations created outside the range; keep the ones we cannot judge."""
    created = _unix(item.get("created_at"))
    return created is None or in_range(created, start, end)

