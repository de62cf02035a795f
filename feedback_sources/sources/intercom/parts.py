"""Intercom conversation threads as the customer's own messages: which parts a customer wrote, which were redacted,
and how a stored record's text splits back into its messages (so a webhook delivery can be merged by part id).

Pure functions over the vendor's JSON, shared by the sync and the webhook receiver.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

from ...integrations.coerce import as_dict, as_list, identifier, integer, text
from ...integrations.text import html_to_text

# Who counts as the customer in a thread; admins, bots and teams are the company's side.
CUSTOMER_AUTHOR_TYPES = frozenset({"user", "lead"})
# Intercom shows a redacted message as this text (with `redacted: true` on 2.x parts; older payloads have no flag).
REDACTED_BODY_TEXT = "This message was deleted"
# The opening message's key among the customer parts: it has an id of its own (`source.id`), but there is exactly
# one per conversation, and a fixed key cannot collide with a part id.
SOURCE_KEY = "source"

PART_SEPARATOR = "\n\n"

_dict, _list, _text, _identifier = as_dict, as_list, text, identifier


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


def _content(parts: Iterable[CustomerPart]) -> str:
    return PART_SEPARATOR.join(part.text for part in parts)


def _parts_metadata(parts: Iterable[CustomerPart]) -> list[dict[str, Any]]:
    """Where each message sits in `content` (by length, in order), so a later delivery can be merged by part id."""
    return [{"id": part.key, "at": part.at, "chars": len(part.text)} for part in parts]


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


def _parts_count(conversation: Mapping[str, Any]) -> int:
    holder = conversation.get("conversation_parts")
    if isinstance(holder, dict):
        total = integer(holder.get("total_count"), minimum=0)
        if total is not None:
            return total
    return len(_parts(conversation))
