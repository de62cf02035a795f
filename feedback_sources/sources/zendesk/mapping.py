"""Zendesk tickets as normalized records: pure transforms shared by the export sync and the webhook receiver.

No I/O here. An export page (or a ticket event's `detail`) goes in, records and removals come out; the requester's
name, email and plan come from the side-loaded `users` and `organizations`.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from ...integrations.coerce import identifier, lookup, record_id, lower_text, moment, string_list, text
from ...models import MappingError, NormalizedRecord, Removal, RemovalReason
from ...rules import Rules

SOURCE = "zendesk"

SEVERITY_BY_PRIORITY: dict[str, str] = {"urgent": "critical", "high": "high", "normal": "medium", "low": "low"}

# Custom user/organization fields that commonly hold the customer's plan, most specific first.
PLAN_FIELD_KEYS: tuple[str, ...] = ("plan", "tier", "subscription")


def parse_moment(value: Any) -> datetime | None:
    """A UTC datetime from an ISO 8601 string or unix seconds; None when absent or unreadable."""
    return moment(value)


def _ticket_id(value: Any) -> str | None:
    """A ticket's own id: unlike the ids it refers to, 0 is a real one."""
    return record_id(value)


def _reference(value: Any) -> str | None:
    """An id a ticket refers to. The export sends integers, event webhooks strings; "0" means 'none' there."""
    return identifier(value, zero_is_none=True)


def _plan_candidates(user: Mapping[str, Any], organization: Mapping[str, Any]) -> list[tuple[str, str | None]]:
    candidates: list[tuple[str, str | None]] = []
    for owner, fields in (
        ("requester", user.get("user_fields")),
        ("organization", organization.get("organization_fields")),
    ):
        if isinstance(fields, dict):
            for key in PLAN_FIELD_KEYS:
                value = text(fields.get(key))
                if value:
                    candidates.append((f"{owner} {key}", value))
    # Last resort: organizations are often named after the plan tier they bought ("Acme — Enterprise").
    organization_name = text(organization.get("name"))
    if organization_name:
        candidates.append(("organization name", organization_name))
    return candidates


def ticket_url(subdomain: str, ticket_id: str) -> str:
    """The ticket in Zendesk's agent UI."""
    return f"https://{subdomain}.zendesk.com/agent/tickets/{ticket_id}"


def is_deleted(ticket: Mapping[str, Any]) -> bool:
    """Deleted tickets are not feedback; the sync and the webhook receiver both skip them."""
    return lower_text(ticket.get("status")) == "deleted"


def map_ticket(
    ticket: dict[str, Any],
    users_by_id: Mapping[Any, dict[str, Any]],
    *,
    subdomain: str,
    rules: Rules,
    organizations_by_id: Mapping[Any, dict[str, Any]] | None = None,
) -> NormalizedRecord:
    """Map one Zendesk ticket (an export row, or the `detail` of a ticket event webhook) to a record.

    `users_by_id` and `organizations_by_id` are the side-loaded users and organizations keyed by id; the requester's
    name, email and plan come from them and are None when the requester was not side-loaded.
    Raises MappingError when the ticket has no usable id or no readable creation time. Pure: no I/O.
    """
    if not isinstance(ticket, Mapping):
        raise MappingError(SOURCE, f"a ticket must be a JSON object, not {type(ticket).__name__}")
    ticket_id = _ticket_id(ticket.get("id"))
    if ticket_id is None:
        raise MappingError(SOURCE, "ticket without an id")

    created_at = parse_moment(ticket.get("created_at"))
    updated_at = parse_moment(ticket.get("updated_at"))
    if created_at is None:
        # A webhook may carry only the update time; it still places the ticket in time.
        created_at = updated_at
    if created_at is None:
        raise MappingError(SOURCE, f"ticket {ticket_id} has no readable created_at")
    if updated_at is None:
        updated_at = created_at

    title = text(ticket.get("subject")) or text(ticket.get("raw_subject"))
    # `description` is the first comment's plain text (its HTML is the comment's `html_body`): customers type `<`,
    # `&`, `<b>` and `=` in it, and all of it is theirs. Stored verbatim; showing it inert is the renderer's job.
    description = ticket.get("description")
    content = description if isinstance(description, str) else ""

    requester_id = _reference(ticket.get("requester_id"))
    requester = lookup(users_by_id, requester_id)
    organization_id = _reference(ticket.get("organization_id")) or _reference(requester.get("organization_id"))
    organization = lookup(organizations_by_id, organization_id)

    priority = lower_text(ticket.get("priority"))
    ticket_type = lower_text(ticket.get("type"))
    tags = string_list(ticket.get("tags"))
    via = ticket.get("via")
    via_channel = text(via.get("channel")) if isinstance(via, dict) else None
    rating = ticket.get("satisfaction_rating")
    rating = rating if isinstance(rating, dict) else {}

    category = rules.categorize(tags=tags, vendor_type=ticket_type, text=f"{title or ''}\n{content}")
    tier = rules.tier(*_plan_candidates(requester, organization))

    try:
        return NormalizedRecord(
            source=SOURCE,
            source_id=ticket_id,
            title=title,
            content=content,
            customer_id=requester_id,
            customer_email=text(requester.get("email")),
            customer_name=text(requester.get("name")),
            customer_tier=tier.value,
            category=category.value,
            created_at=created_at,
            metadata={
                "status": lower_text(ticket.get("status")),
                "priority": priority,
                "severity": SEVERITY_BY_PRIORITY.get(priority) if priority else None,
                "type": ticket_type,
                "via_channel": via_channel,
                "tags": tags,
                "url": ticket_url(subdomain, ticket_id),
                "updated_at": updated_at.isoformat(),
                "requester_id": requester_id,
                "organization_id": organization_id,
                "organization_name": text(organization.get("name")),
                "satisfaction": lower_text(rating.get("score")),
                "satisfaction_comment": text(rating.get("comment")),
                "category_reason": category.reason,
                "tier_reason": tier.reason,
            },
        )
    except ValueError as error:  # pydantic's ValidationError is a ValueError
        raise MappingError(SOURCE, f"ticket {ticket_id} could not be normalized: {error}") from error


def ticket_removal(ticket: Mapping[str, Any], *, reason: RemovalReason = RemovalReason.deleted,
                   at: datetime | None = None) -> Removal | None:
    """The removal a deleted ticket stands for (None when the ticket has no usable id or time). Pure.

    The export lists a deleted or spam ticket with status "deleted" and its deletion as the last update, so that
    update time is when it was removed; an event's own time is passed as `at`."""
    ticket_id = _ticket_id(ticket.get("id"))
    when = at or parse_moment(ticket.get("updated_at")) or parse_moment(ticket.get("created_at"))
    if ticket_id is None or when is None:
        return None
    return Removal(source=SOURCE, source_id=ticket_id, reason=reason, removed_at=when)


def index_by_id(items: Any) -> dict[int | str, dict[str, Any]]:
    """Side-loaded objects (`users`, `organizations`) keyed by id; malformed entries are ignored."""
    table: dict[int | str, dict[str, Any]] = {}
    if not isinstance(items, list):
        return table
    for item in items:
        if isinstance(item, dict):
            key = item.get("id")
            if isinstance(key, int | str) and not isinstance(key, bool):
                table[key] = item
    return table


def ticket_watermark(ticket: Mapping[str, Any]) -> int | None:
    """When the export last saw this ticket change: `generated_timestamp`, else `updated_at`."""
    stamp = ticket.get("generated_timestamp")
    if isinstance(stamp, int) and not isinstance(stamp, bool) and stamp >= 0:
        return stamp
    changed = parse_moment(ticket.get("updated_at"))
    return int(changed.timestamp()) if changed is not None and changed.timestamp() >= 0 else None
