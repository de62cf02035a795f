"""Intercom: conversations become feedback records.

A sync searches conversations by `updated_at` (oldest change first), then fetches each conversation's full thread and
its first contact, because search results carry neither the conversation parts nor the contact's plan. Contacts are
cached for the run: one customer usually has many conversations.

The mapping functions are pure and shared with the webhook receiver, whose deliveries carry the conversation object
in `data.item`.
"""

from __future__ import annotations

import asyncio
import logging
import math
import os
import re
import time
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

import httpx

from ...models import MappingError, NormalizedRecord, Removal, RemovalReason
from ...rules import Rules
from ...integrations.base import BaseIntegration, ConfigError, Page, WebhookSetupRequired, in_range, register, utc_bound
from ...integrations.http import ErrorKind, HttpClient, SourceError, header_number
from ...integrations.text import html_to_text

logger = logging.getLogger("feedback_sources.intercom")

SOURCE = "intercom"
MAX_PAGE_SIZE = 150  # the documented maximum for the conversation search

# Pinned so a workspace's default version cannot change response shapes under us. 2.14 is the newest stable
# version in Intercom's changelog that documents POST /conversations/search returning `conversation.list`.
INTERCOM_VERSION = "2.14"

REGION_BASE_URLS: dict[str, str] = {
    "us": "https://api.intercom.io",
    "eu": "https://api.eu.intercom.io",
    "au": "https://api.au.intercom.io",
}
BASE_URL_ENV = "INTERCOM_BASE_URL"

# Intercom counts every call against one per-app limit, so every endpoint shares this bucket.
RATE_LIMIT_BUCKET = "default"

AGENT_UI_URL = "https://app.intercom.com/a/apps/{app_id}/inbox/inbox/conversation/{conversation_id}"

# Who counts as the customer in a thread; admins, bots and teams are the company's side.
CUSTOMER_AUTHOR_TYPES = frozenset({"user", "lead"})


# -- endpoints as data --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Endpoint:
    name: str
    method: str
    path: str
    paging: str  # "starting_after" (search cursor in the body) or "none"
    page_size: int | None = None
    bucket: str = RATE_LIMIT_BUCKET
    # The Intercom permission a 403 on this endpoint means the token is missing.
    permission: str | None = None

    def url(self, **ids: str) -> str:
        return self.path.format(**ids)


ME = Endpoint("me", "GET", "/me", paging="none")
SEARCH_CONVERSATIONS = Endpoint(
    "search_conversations",
    "POST",
    "/conversations/search",
    paging="starting_after",
    page_size=MAX_PAGE_SIZE,
    permission="Read conversations",
)
CONVERSATION = Endpoint(
    "conversation", "GET", "/conversations/{conversation_id}", paging="none", permission="Read conversations"
)
CONTACT = Endpoint(
    "contact", "GET", "/contacts/{contact_id}", paging="none", permission="Read and list users and companies"
)
ENDPOINTS: tuple[Endpoint, ...] = (ME, SEARCH_CONVERSATIONS, CONVERSATION, CONTACT)
# A cache or proxy may answer with a page we already had; ask again this many times before giving up.
MAX_STALE_PAGES = 3


def search_body(
    updated_after: int, updated_before: int, starting_after: str | None, per_page: int | None = None
) -> dict[str, Any]:
    """The search request for conversations changed in the window, oldest change first."""
    pagination: dict[str, Any] = {"per_page": per_page or SEARCH_CONVERSATIONS.page_size}
    if starting_after is not None:
        pagination["starting_after"] = starting_after
    return {
        "query": {
            "operator": "AND",
            "value": [
                {"field": "updated_at", "operator": ">", "value": updated_after},
                {"field": "updated_at", "operator": "<", "value": updated_before},
            ],
        },
        "pagination": pagination,
        "sort": {"field": "updated_at", "order": "ascending"},
    }


# -- pure mapping -------------------------------------------------------------------------------------------------

# Intercom shows a redacted message as this text (with `redacted: true` on 2.x parts; older payloads have no flag).
REDACTED_BODY_TEXT = "This message was deleted"
# The opening message's key among the customer parts: it has an id of its own (`source.id`), but there is exactly
# one per conversation, and a fixed key cannot collide with a part id.
SOURCE_KEY = "source"
# Webhook topics whose item means something other than "here is the conversation now".
REDACTED_TOPIC = "conversation_part.redacted"
DELETED_TOPIC = "conversation.deleted"


def _dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


def _text(value: Any) -> str | None:
    """A non-empty stripped string, or None for anything else."""
    if isinstance(value, str):
        stripped = value.strip()
        return stripped or None
    return None


def _identifier(value: Any) -> str | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return str(value)
    return _text(value)


def _unix(value: Any) -> datetime | None:
    """Intercom timestamps are unix seconds; tolerate numeric strings, reject anything else."""
    if isinstance(value, bool):
        return None
    if isinstance(value, str):
        try:
            value = float(value.strip())
        except ValueError:
            return None
    if not isinstance(value, (int, float)) or not math.isfinite(value):
        return None
    try:
        return datetime.fromtimestamp(value, tz=timezone.utc)
    except (OverflowError, OSError, ValueError):
        return None


def _seconds(value: Any) -> int | None:
    moment = _unix(value)
    return math.floor(moment.timestamp()) if moment is not None else None


def _tag_names(conversation: Mapping[str, Any]) -> list[str]:
    tags = conversation.get("tags")
    items = _list(tags.get("tags")) if isinstance(tags, dict) else _list(tags)
    names = []
    for tag in items:
        name = _text(tag.get("name")) if isinstance(tag, dict) else _text(tag)
        if name is not None:
            names.append(name)
    return names


def _parts(conversation: Mapping[str, Any]) -> list[dict[str, Any]]:
    parts_holder = conversation.get("conversation_parts")
    if isinstance(parts_holder, dict):
        return [part for part in _list(parts_holder.get("conversation_parts")) if isinstance(part, dict)]
    return [part for part in _list(parts_holder) if isinstance(part, dict)]


def _parts_count(conversation: Mapping[str, Any]) -> int:
    holder = conversation.get("conversation_parts")
    if isinstance(holder, dict):
        total = holder.get("total_count")
        if isinstance(total, int) and not isinstance(total, bool) and total >= 0:
            return total
    return len(_parts(conversation))


def _opening_message(conversation: Mapping[str, Any]) -> dict[str, Any]:
    """The message that opened the conversation: `source` since API 2.0, `conversation_message` before it."""
    source = conversation.get("source")
    if isinstance(source, dict):
        return source
    return _dict(conversation.get("conversation_message"))


def _is_customer(author: Any) -> bool:
    if not isinstance(author, dict):
        return False
    author_type = author.get("type")
    return isinstance(author_type, str) and author_type in CUSTOMER_AUTHOR_TYPES


def _is_redacted(message: Mapping[str, Any]) -> bool:
    """2.x marks a redacted message with `redacted: true`; payloads of older versions only show Intercom's text."""
    if message.get("redacted") is True:
        return True
    body = message.get("body")
    return isinstance(body, str) and html_to_text(body).strip() == REDACTED_BODY_TEXT


@dataclass(frozen=True)
class CustomerPart:
    """One message the customer wrote: its key (SOURCE_KEY or the part id), when, and its text."""

    key: str
    at: int | None
    text: str


def redacted_keys(conversation: Mapping[str, Any], *, redaction_event: bool = False) -> list[str]:
    """Keys of the messages the conversation shows as redacted. In a `conversation_part.redacted` delivery every
    part carried is one that was just redacted, whatever its flags say (payloads before 2.2 have none)."""
    found: list[str] = []
    opening = _opening_message(conversation)
    if opening and _is_redacted(opening):
        found.append(SOURCE_KEY)
    for part in _parts(conversation):
        key = _identifier(part.get("id"))
        if key is not None and (redaction_event or _is_redacted(part)):
            found.append(key)
    return list(dict.fromkeys(found))


def customer_parts(conversation: Mapping[str, Any], *, redaction_event: bool = False) -> list[CustomerPart]:
    """The customer's own messages in time order: the opening message if a customer wrote it, then every part a
    user or lead wrote (comments, and `open` parts, a reply that reopens the conversation).

    Left out: notes (internal), parts by admins, bots (Fin's AI answers included) and teams, parts without a body
    (assignments, snoozes, attribute updates, custom actions) and redacted messages.
    """
    redacted = set(redacted_keys(conversation, redaction_event=redaction_event))
    opened_at = _seconds(conversation.get("created_at"))
    timeline: list[tuple[float, int, CustomerPart]] = []
    opening = _opening_message(conversation)
    if SOURCE_KEY not in redacted and _is_customer(opening.get("author")):
        body = opening.get("body")
        text = html_to_text(body if isinstance(body, str) else None)
        if text:
            when = opened_at if opened_at is not None else -math.inf
            timeline.append((when, 0, CustomerPart(SOURCE_KEY, opened_at, text)))
    for position, part in enumerate(_parts(conversation), start=1):
        key = _identifier(part.get("id")) or f"#{position}"
        part_type = part.get("part_type")
        if key in redacted or (isinstance(part_type, str) and part_type.startswith("note")):
            continue
        if not _is_customer(part.get("author")) or not isinstance(part.get("body"), str):
            continue
        text = html_to_text(part["body"])
        if not text:
            continue
        at = _seconds(part.get("created_at"))
        # A part without a time keeps its place after the ones before it.
        when: float = at if at is not None else (timeline[-1][0] if timeline else -math.inf)
        timeline.append((when, position, CustomerPart(key, at, text)))
    timeline.sort(key=lambda item: (item[0], item[1]))
    return [entry for _, _, entry in timeline]


def customer_messages(conversation: Mapping[str, Any]) -> list[str]:
    """The texts of `customer_parts`, in time order."""
    return [part.text for part in customer_parts(conversation)]


PART_SEPARATOR = "\n\n"


def _content(parts: Iterable[CustomerPart]) -> str:
    return PART_SEPARATOR.join(part.text for part in parts)


def _parts_metadata(parts: Iterable[CustomerPart]) -> list[dict[str, Any]]:
    """Where each message sits in `content` (by length, in order), so a later delivery can be merged by part id."""
    return [{"id": part.key, "at": part.at, "chars": len(part.text)} for part in parts]


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
    conversation_id = _identifier(conversation.get("id"))
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

    rating = _dict(conversation.get("conversation_rating")).get("rating")
    ai_participated = conversation.get("ai_agent_participated")
    metadata: dict[str, Any] = {
        "state": _text(conversation.get("state")),
        "priority": _text(conversation.get("priority")),
        "tags": tags,
        "url": conversation_url(app_id, conversation_id),
        "updated_at": (updated_at or created_at).isoformat(),
        "contact_id": contact_id,
        "rating": rating if isinstance(rating, int) and not isinstance(rating, bool) else None,
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
    conversation_id = _identifier(item.get("id"))
    if conversation_id is None:
        return None
    removed_at = _unix(payload.get("created_at")) or _unix(item.get("updated_at")) or datetime.now(timezone.utc)
    return Removal(source=SOURCE, source_id=conversation_id, reason=RemovalReason.deleted, removed_at=removed_at)


# -- merging a partial delivery with the stored record ------------------------------------------------------------


def _stored_parts(stored: Mapping[str, Any]) -> list[CustomerPart] | None:
    """The stored record's content split back into its messages, or None when the metadata does not describe it
    exactly (a record stored before part ids were kept, or text changed since): then nothing may be cut from it."""
    metadata = _dict(stored.get("metadata"))
    described = metadata.get("customer_parts")
    content = stored.get("content") if isinstance(stored.get("content"), str) else ""
    if not isinstance(described, list):
        return [] if not content else None
    parts: list[CustomerPart] = []
    offset = 0
    for index, entry in enumerate(described):
        if not isinstance(entry, dict):
            return None
        key, chars, at = _identifier(entry.get("id")), entry.get("chars"), entry.get("at")
        if key is None or not isinstance(chars, int) or isinstance(chars, bool) or chars < 0:
            return None
        if index:
            if content[offset : offset + len(PART_SEPARATOR)] != PART_SEPARATOR:
                return None
            offset += len(PART_SEPARATOR)
        parts.append(CustomerPart(key, at if isinstance(at, int) and not isinstance(at, bool) else None,
                                  content[offset : offset + chars]))
        offset += chars
    return parts if offset == len(content) else None


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

    stored_updated = _iso(stored_meta.get("updated_at")) or _iso(stored.get("updated_at"))
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


def _iso(value: Any) -> datetime | None:
    if not isinstance(value, str):
        return None
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)


# -- HTTP: errors and rate limits ---------------------------------------------------------------------------------


def read_rate_limits(response: httpx.Response, wall_now: float) -> list[tuple[str, int | None, int, float]]:
    """X-RateLimit-Limit/-Remaining/-Reset (reset is a unix time). A 429 always means the window is spent."""
    headers = response.headers
    limit = header_number(headers, "X-RateLimit-Limit")
    remaining = header_number(headers, "X-RateLimit-Remaining")
    reset_at = header_number(headers, "X-RateLimit-Reset")
    if remaining is None and reset_at is None:
        return []
    if remaining is None or response.status_code == 429:
        remaining = 0
    # Without a reset time, assume Intercom's 10-second window.
    seconds = max(0.0, reset_at - wall_now) if reset_at is not None else 10.0
    return [
        (
            RATE_LIMIT_BUCKET,
            int(limit) if limit is not None else None,
            max(0, int(remaining)),
            seconds,
        )
    ]


def _error_codes(response: httpx.Response) -> list[tuple[str, str]]:
    try:
        body = response.json()
    except (ValueError, UnicodeDecodeError):
        return []
    errors = _list(body.get("errors")) if isinstance(body, dict) else []
    return [
        (str(error.get("code") or ""), str(error.get("message") or ""))
        for error in errors
        if isinstance(error, dict)
    ]


def _permission_for(path: str) -> str | None:
    for endpoint in ENDPOINTS:
        pattern = "^" + re.sub(r"\\\{\w+\\\}", "[^/]+", re.escape(endpoint.path)) + "$"
        if re.match(pattern, path):
            return endpoint.permission
    return None


def describe_error(response: httpx.Response) -> SourceError | None:
    """Intercom's `error.list` bodies as errors a PM can act on. Never echoes request headers (the token)."""
    status = response.status_code
    codes = _error_codes(response)
    code_names = {code for code, _ in codes}
    vendor_message = next((message for _, message in codes if message), "")
    detail = f" ({vendor_message})" if vendor_message else ""
    if status == 401:
        return SourceError(
            ErrorKind.auth,
            f"Intercom rejected the access token{detail}",
            status=status,
            hint=(
                "Copy the access token again from the Developer Hub (your app → Authentication). If the workspace "
                "is hosted in Europe or Australia, set the region to eu or au: a token only works in its region."
            ),
        )
    if status == 403:
        if "api_plan_restricted" in code_names:
            return SourceError(
                ErrorKind.forbidden,
                f"this Intercom workspace's plan does not include API access{detail}",
                status=status,
                hint="Ask a workspace admin to enable API access on the Intercom plan.",
            )
        permission = _permission_for(_strip_prefix(_request_path(response)))
        needed = (
            f"the `{permission}` permission"
            if permission
            else "the `Read conversations` and `Read and list users and companies` permissions"
        )
        return SourceError(
            ErrorKind.forbidden,
            f"the Intercom access token lacks {needed}{detail}",
            status=status,
            hint=(
                f"In the Developer Hub, open your app → Authentication → Edit, grant {needed}, "
                "then save the token."
            ),
        )
    if status == 404:
        if "application/json" not in response.headers.get("content-type", ""):
            return SourceError(
                ErrorKind.not_found,
                "the Intercom API address was not found",
                status=status,
                hint="Check the region (us, eu or au) and the base URL.",
            )
        return SourceError(ErrorKind.not_found, f"Intercom could not find the requested object{detail}", status=status)
    if status == 429:
        return SourceError(
            ErrorKind.rate_limited,
            f"Intercom's rate limit for this app is used up{detail}",
            status=status,
            hint="Other apps may share this workspace's limit; wait a minute and sync again.",
        )
    if status >= 500:
        return SourceError(ErrorKind.server, f"Intercom's servers failed to answer{detail}", status=status)
    return None


def _request_path(response: httpx.Response) -> str:
    try:
        return response.request.url.path
    except RuntimeError:  # a response built without a request (as in unit tests)
        return ""


_PREFIXES_TO_IGNORE = re.compile(r"^.*?(?=/(?:me|conversations|contacts)(?:/|$))")


def _strip_prefix(path: str) -> str:
    """The API path without whatever prefix the base URL adds (the emulator serves Intercom under /intercom)."""
    return _PREFIXES_TO_IGNORE.sub("", path, count=1)


# -- cursor -------------------------------------------------------------------------------------------------------

_CURSOR_KEYS = frozenset({"updated_after", "updated_before", "starting_after", "high_water"})


@dataclass(frozen=True)
class SearchCursor:
    """Where a sync stands: the `updated_at` window of the query, the position in it, and the newest change seen."""

    updated_after: int
    updated_before: int | None
    starting_after: str | None
    high_water: int

    def as_dict(self) -> dict[str, Any]:
        return {
            "updated_after": self.updated_after,
            "updated_before": self.updated_before,
            "starting_after": self.starting_after,
            "high_water": self.high_water,
        }

    @classmethod
    def parse(cls, cursor: Any) -> SearchCursor:
        def bad(reason: str) -> SourceError:
            return SourceError(
                ErrorKind.client,
                f"the saved Intercom sync position is not valid ({reason}); "
                "reset the Intercom sync state to start over",
                source=SOURCE,
            )

        if not isinstance(cursor, dict):
            raise bad("not an object")
        keys = set(cursor)
        if keys != _CURSOR_KEYS:
            missing = sorted(_CURSOR_KEYS - keys)
            unknown = sorted(str(key) for key in keys - _CURSOR_KEYS)
            raise bad(f"missing {missing}, unknown {unknown}")

        def whole(name: str, *, optional: bool = False) -> int | None:
            value = cursor[name]
            if value is None and optional:
                return None
            if not isinstance(value, int) or isinstance(value, bool) or value < 0:
                raise bad(f"`{name}` must be a non-negative integer")
            return value

        starting_after = cursor["starting_after"]
        if starting_after is not None and not (isinstance(starting_after, str) and starting_after):
            raise bad("`starting_after` must be a string or null")
        updated_after = whole("updated_after")
        updated_before = whole("updated_before", optional=True)
        high_water = whole("high_water")
        if starting_after is not None and updated_before is None:
            raise bad("`starting_after` belongs to a query with an upper bound")
        assert updated_after is not None and high_water is not None
        return cls(updated_after, updated_before, starting_after, high_water)


# -- the integration ----------------------------------------------------------------------------------------------


@register
class IntercomIntegration(BaseIntegration):
    """Conversations from one Intercom workspace, through the conversation search sorted by `updated_at`.

    Cursor: {"updated_after": int, "updated_before": int | None, "starting_after": str | None, "high_water": int}
    (unix seconds). Mid-run cursors repeat the run's query window and Intercom's page cursor; the last page's cursor
    has no upper bound or page cursor and starts one second below `high_water`, the newest change seen.
    """

    name = "intercom"
    display_name = "Intercom"
    required_fields = ("access_token",)
    optional_fields = ("region", "base_url")
    # Each search page fans out into one call per conversation (plus uncached contacts); the per-app limit is
    # thousands a minute, so a handful in flight keeps a sync fast without bursting it.
    max_concurrency = 8

    def __init__(
        self,
        config: dict[str, Any],
        *,
        wall_clock: Callable[[], float] = time.time,
        page_size: int = MAX_PAGE_SIZE,
        **options: Any,
    ):
        super().__init__(config, **options)
        self.page_size = max(1, min(page_size, MAX_PAGE_SIZE))
        region = self.config.get("region") or "us"
        if not isinstance(region, str) or region.lower() not in REGION_BASE_URLS:
            raise ConfigError(
                self.name, ["region"], f"{self.name}: region must be one of {', '.join(REGION_BASE_URLS)}"
            )
        self.region = region.lower()
        self._wall_clock = wall_clock
        # The workspace's id_code, learned from GET /me; it is part of every inbox link.
        self.app_id: str | None = None

    @property
    def base_url(self) -> str:
        return self.config.get("base_url") or os.environ.get(BASE_URL_ENV) or REGION_BASE_URLS[self.region]

    def client(self) -> HttpClient:
        return self._http_client(
            base_url=self.base_url,
            headers={
                "Authorization": f"Bearer {self.config['access_token']}",
                "Accept": "application/json",
                "Intercom-Version": INTERCOM_VERSION,
            },
            rate_limit_reader=read_rate_limits,
            describe_error=self._describe_error,
        )

    def _describe_error(self, response: httpx.Response) -> SourceError | None:
        error = describe_error(response)
        if error is not None:
            # Intercom's error messages do not echo the token, but a message must never carry it even if one did.
            token = str(self.config.get("access_token") or "")
            if token and token in error.message:
                error.message = error.message.replace(token, "[redacted]")
        return error

    async def _read_me(self, client: HttpClient) -> dict[str, Any]:
        """GET /me, remembering the workspace's id_code for inbox links."""
        me = await client.get_json(ME.url(), bucket=ME.bucket)
        if not isinstance(me, dict) or not isinstance(me.get("app"), dict):
            raise SourceError(
                ErrorKind.bad_response,
                "the server did not answer GET /me like Intercom's API",
                hint="Check the region and the base URL.",
                source=self.name,
            )
        self.app_id = _identifier(me["app"].get("id_code"))
        return me

    async def _connection_probe(self, client: HttpClient) -> tuple[str, dict[str, Any]]:
        me = await self._read_me(client)
        # /me answers for any valid token; a one-item search and its contact prove the permissions a sync needs,
        # so a token without them fails here with the permission's name instead of halfway through a sync.
        found = await client.get_json(
            SEARCH_CONVERSATIONS.url(),
            method=SEARCH_CONVERSATIONS.method,
            json_body=search_body(0, math.floor(self._wall_clock()) + 1, None, per_page=1),
            bucket=SEARCH_CONVERSATIONS.bucket,
        )
        found = _dict(found)
        sample = next((item for item in _list(found.get("conversations")) if isinstance(item, dict)), {})
        contact_id = _first_contact_id(sample)
        if contact_id is not None:
            await self._contact(client, contact_id)
        app = me["app"]
        app_name = _text(app.get("name"))
        admin_email = _text(me.get("email"))
        if app_name and admin_email:
            account = f"{app_name} ({admin_email})"
        else:
            account = app_name or admin_email or "an Intercom workspace"
        total = found.get("total_count")
        details = {
            "app_id": self.app_id,
            "app_name": app_name,
            "region": _text(app.get("region")),
            "admin_email": admin_email,
            "conversations": total if isinstance(total, int) and not isinstance(total, bool) else None,
        }
        return account, details

    async def _learn_app_id(self, client: HttpClient) -> None:
        try:
            await self._read_me(client)
        except SourceError as error:
            # Links are a convenience; a token that cannot read /me may still read conversations.
            if error.kind not in (ErrorKind.forbidden, ErrorKind.not_found, ErrorKind.bad_response):
                raise
            logger.warning("intercom: could not read the workspace id, records will have no inbox link: %s", error)

    async def iter_pages(
        self,
        start: datetime | None = None,
        end: datetime | None = None,
        cursor: dict[str, Any] | None = None,
    ) -> AsyncIterator[Page]:
        start, end = utc_bound(start), utc_bound(end)
        position = SearchCursor.parse(cursor) if cursor is not None else None
        if position is None:
            # A conversation is updated no earlier than it is created, so changes since `start` cover it.
            floor = max(0, math.floor(start.timestamp()) - 1) if start is not None else 0
            position = SearchCursor(floor, None, None, floor)
        # The upper bound is "now", fixed for the whole run (and stored in mid-run cursors so a resumed run asks the
        # same question). It is not `end`: a conversation created before `end` may be updated after it.
        updated_before = position.updated_before
        if updated_before is None:
            updated_before = math.floor(self._wall_clock())
        contacts: dict[str, asyncio.Task[dict[str, Any] | None]] = {}
        skipped: Counter[str] = Counter()
        async with self.client() as client:
            try:
                if self.app_id is None:
                    await self._learn_app_id(client)
                async for page in self._search_pages(
                    client, position, updated_before, start, end, contacts, skipped
                ):
                    yield page
            finally:
                await _cancel_pending(contacts.values())
                self.last_stats = {
                    "http": client.stats.as_dict(),
                    "contacts_fetched": len(contacts),
                    "skipped": dict(skipped),
                }

    async def _search_pages(
        self,
        client: HttpClient,
        position: SearchCursor,
        updated_before: int,
        start: datetime | None,
        end: datetime | None,
        contacts: dict[str, asyncio.Task[dict[str, Any] | None]],
        skipped: Counter[str],
    ) -> AsyncIterator[Page]:
        starting_after = position.starting_after
        high_water = position.high_water
        if position.updated_after >= updated_before:
            # Nothing can have changed inside an empty window (a cursor from the future): keep the cursor as it is.
            yield Page([], position.as_dict(), 0)
            return
        sent_cursors: set[str] = set()
        stale_pages = 0
        while True:
            body = await client.get_json(
                SEARCH_CONVERSATIONS.url(),
                method=SEARCH_CONVERSATIONS.method,
                json_body=search_body(position.updated_after, updated_before, starting_after, self.page_size),
                bucket=SEARCH_CONVERSATIONS.bucket,
            )
            if not isinstance(body, dict) or not isinstance(body.get("conversations", []), list):
                raise SourceError(
                    ErrorKind.bad_response,
                    "the conversation search answered without a list of conversations",
                    source=self.name,
                )
            next_after = _next_starting_after(body)
            if starting_after is not None:
                sent_cursors.add(starting_after)
            if next_after is not None and next_after in sent_cursors:
                # A page that points back to where we already were is an old answer: ask for this page again.
                stale_pages += 1
                if stale_pages > MAX_STALE_PAGES:
                    raise SourceError(
                        ErrorKind.bad_response,
                        "the conversation search kept answering with a page it had already sent",
                        source=self.name,
                    )
                client.stats.retries += 1
                continue
            stale_pages = 0
            found = [item for item in body.get("conversations", []) if isinstance(item, dict)]
            for item in found:
                changed = _unix(item.get("updated_at"))
                if changed is not None:
                    high_water = max(high_water, math.floor(changed.timestamp()))
            wanted = [item for item in found if _wanted(item, start, end)]
            # The client's semaphore bounds requests on the wire; this bounds how many conversations are started at
            # once, so that after a rate-limit wait a handful of requests resume instead of the whole page at once.
            slots = asyncio.Semaphore(self.max_concurrency)
            details = await _gather_or_cancel(
                _bounded(slots, self._full_conversation, client, item, contacts) for item in wanted
            )
            records = []
            removals: list[Removal] = []
            for item, (conversation, contact) in zip(wanted, details):
                if conversation is None:
                    # Found by the search, gone by the time we asked for it: deleted, so it leaves the store too.
                    skipped["deleted"] += 1
                    gone_id = _identifier(item.get("id"))
                    if gone_id is not None:
                        removals.append(Removal(source=SOURCE, source_id=gone_id, reason=RemovalReason.deleted,
                                                removed_at=datetime.fromtimestamp(self._wall_clock(), tz=timezone.utc)))
                    continue
                try:
                    record = map_conversation(conversation, contact, app_id=self.app_id, rules=self.rules)
                except MappingError as error:
                    # One unusable conversation must not stop the sync; it is counted and logged instead.
                    logger.warning("skipped a conversation: %s", error)
                    skipped["mapping_error"] += 1
                    continue
                if in_range(record.created_at, start, end):
                    records.append(record)

            total = body.get("total_count")
            vendor_total = total if isinstance(total, int) and not isinstance(total, bool) else None
            if next_after is None:
                # Continue from just below the newest change seen, so a conversation changed again within that
                # same second is fetched again (the store dedupes it) rather than skipped.
                final = SearchCursor(max(position.updated_after, high_water - 1), None, None, high_water)
                yield Page(records, final.as_dict(), vendor_total, removals=removals)
                return
            starting_after = next_after
            middle = SearchCursor(position.updated_after, updated_before, starting_after, high_water)
            yield Page(records, middle.as_dict(), vendor_total, removals=removals)

    async def _full_conversation(
        self,
        client: HttpClient,
        item: dict[str, Any],
        contacts: dict[str, asyncio.Task[dict[str, Any] | None]],
    ) -> tuple[dict[str, Any] | None, dict[str, Any] | None]:
        """The conversation with all its parts, and its first contact (None when it has none or it was deleted)."""
        conversation_id = _identifier(item.get("id"))
        if conversation_id is None:
            return item, None  # the mapper reports it
        try:
            conversation = await client.get_json(
                CONVERSATION.url(conversation_id=conversation_id), bucket=CONVERSATION.bucket
            )
        except SourceError as error:
            if error.kind is ErrorKind.not_found:
                logger.info("intercom: conversation %s was deleted during the sync", conversation_id)
                return None, None
            raise
        if not isinstance(conversation, dict):
            raise SourceError(
                ErrorKind.bad_response,
                f"GET /conversations/{conversation_id} did not answer with a conversation",
                source=self.name,
            )
        contact_id = _first_contact_id(conversation) or _first_contact_id(item)
        if contact_id is None:
            return conversation, None
        task = contacts.get(contact_id)
        if task is None:
            task = asyncio.ensure_future(self._contact(client, contact_id))
            contacts[contact_id] = task
        # Shielded: several conversations may wait on one contact, and one waiter's cancellation must not end it.
        return conversation, await asyncio.shield(task)

    async def _contact(self, client: HttpClient, contact_id: str) -> dict[str, Any] | None:
        try:
            contact = await client.get_json(CONTACT.url(contact_id=contact_id), bucket=CONTACT.bucket)
        except SourceError as error:
            if error.kind is ErrorKind.not_found:
                return None  # deleted or merged: the conversation still maps from its own fields
            raise
        return contact if isinstance(contact, dict) else None

    async def register_webhook(self, url: str) -> bool:
        """Intercom has no public API to create webhooks: raise the Developer Hub steps instead of pretending."""
        raise WebhookSetupRequired(self.name, intercom_webhook_steps(url))


# The customer's words arrive with the first two; the last two make the store forget what Intercom deleted.
WEBHOOK_TOPICS = (
    "conversation.user.created",
    "conversation.user.replied",
    "conversation.admin.closed",
    "conversation_part.redacted",
    "conversation.deleted",
)


def intercom_webhook_steps(url: str) -> list[str]:
    return [
        "Intercom webhooks are set up by hand in the Developer Hub (there is no API for it):",
        "1. Open https://app.intercom.com/a/apps/_/developer-hub and choose your app.",
        "2. Go to Configure → Webhooks and enter the endpoint URL: " + url,
        "3. Tick the topics: " + ", ".join(WEBHOOK_TOPICS) + ".",
        "4. Save, then copy the app's client secret from Basic information and store it as the Intercom "
        "`client_secret` credential (or INTERCOM_CLIENT_SECRET) so the receiver can verify X-Hub-Signature.",
    ]


def _first_contact_id(conversation: Mapping[str, Any]) -> str | None:
    for contact in _list(_dict(conversation.get("contacts")).get("contacts")):
        if isinstance(contact, dict):
            contact_id = _identifier(contact.get("id"))
            if contact_id is not None:
                return contact_id
    return None


def _wanted(item: Mapping[str, Any], start: datetime | None, end: datetime | None) -> bool:
    """Skip the detail calls for conversations created outside the range; keep the ones we cannot judge."""
    created = _unix(item.get("created_at"))
    return created is None or in_range(created, start, end)


def _next_starting_after(body: Mapping[str, Any]) -> str | None:
    next_page = _dict(_dict(body.get("pages")).get("next"))
    return _text(next_page.get("starting_after"))


async def _bounded(slots: asyncio.Semaphore, work: Callable[..., Awaitable[Any]], *args: Any) -> Any:
    """`work(*args)` once a slot is free. The coroutine is created only then: one created up front and cancelled
    while queued for a slot would be dropped without ever being awaited (and asyncio would say so)."""
    async with slots:
        return await work(*args)


async def _gather_or_cancel(coroutines: Iterable[Awaitable[Any]]) -> list[Any]:
    """Run concurrently (the client's semaphore bounds the requests); on the first failure, stop the rest."""
    tasks = [asyncio.ensure_future(coroutine) for coroutine in coroutines]
    try:
        return await asyncio.gather(*tasks)
    except BaseException:
        await _cancel_pending(tasks)
        raise


async def _cancel_pending(tasks: Iterable[asyncio.Future[Any]]) -> None:
    pending = [task for task in tasks if not task.done()]
    for task in pending:
        task.cancel()
    if pending:
        await asyncio.gather(*pending, return_exceptions=True)
    for task in tasks:
        # Mark failures as seen so asyncio does not report them as never retrieved.
        if task.done() and not task.cancelled():
            task.exception()
