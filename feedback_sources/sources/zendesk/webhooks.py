"""Zendesk webhooks: signature, event interpretation, fetch-on-notify and what registration returns.

Signature: `X-Zendesk-Webhook-Signature` = base64(HMAC-SHA256(key=signing secret, msg=timestamp + body)), where the
timestamp is the `X-Zendesk-Webhook-Signature-Timestamp` header concatenated exactly as sent (no separator). The
timestamp is also checked against the clock (±5 minutes) so a captured delivery cannot be replayed later.

Events: a ticket event whose `detail` has no description is fetched rather than stored half empty. Events never
carry the requester's name, email and plan, so when the receiver can reach Zendesk it also queues a fetch of the full
ticket, which lands a moment later with the customer filled in.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
from collections.abc import Mapping
from datetime import datetime, timezone
from typing import Any

from ...integrations.http import ErrorKind, SourceError
from ...models import NormalizedRecord, RemovalReason
from ...webhooks.events import FetchJob
from ...webhooks.fetch import RecordGone, path_id, response_object
from ...webhooks.handler import WebhookHandler
from ...webhooks.payloads import (
    Interpretation, MappingContext, event_id_of, id_text, mapping_failure, text_of, verdict_of,
)
from ...webhooks.signatures import SignatureError, header, same
from . import mapping as zendesk

ZENDESK_SIGNATURE_HEADER = "X-Zendesk-Webhook-Signature"
ZENDESK_TIMESTAMP_HEADER = "X-Zendesk-Webhook-Signature-Timestamp"
ZENDESK_TOLERANCE_SECONDS = 300.0

ZENDESK_TICKET_EVENT_PREFIX = "zen:event-type:ticket."
# Ticket events after which the ticket is no longer feedback to keep, and why.
ZENDESK_REMOVAL_EVENTS = {
    "zen:event-type:ticket.soft_deleted": RemovalReason.deleted,
    "zen:event-type:ticket.permanently_deleted": RemovalReason.deleted,
    "zen:event-type:ticket.marked_as_spam": RemovalReason.spam,
}

_UNIX_SECONDS = re.compile(r"^\d{1,12}(?:\.\d{1,9})?$")


# -- signature -------------------------------------------------------------------------------------------------------


def zendesk_signature(secret: str, timestamp: str, body: bytes) -> str:
    digest = hmac.new(secret.encode("utf-8"), timestamp.encode("utf-8") + body, hashlib.sha256).digest()
    return base64.b64encode(digest).decode("ascii")


def parse_zendesk_timestamp(value: str) -> float | None:
    """Seconds since the epoch from an ISO 8601 time (Zendesk's form) or from unix seconds; None if unreadable."""
    text = value.strip()
    if _UNIX_SECONDS.match(text):
        return float(text)
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError:
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    return moment.timestamp()


def _zendesk_headers(headers: Mapping[str, str], *, now: float, tolerance: float) -> tuple[str, str]:
    """The signature and timestamp headers, refused when missing, unreadable or outside the replay window."""
    signature = header(headers, ZENDESK_SIGNATURE_HEADER)
    timestamp = header(headers, ZENDESK_TIMESTAMP_HEADER)
    if signature is None:
        raise SignatureError(f"missing {ZENDESK_SIGNATURE_HEADER}")
    if timestamp is None:
        raise SignatureError(f"missing {ZENDESK_TIMESTAMP_HEADER}")
    sent_at = parse_zendesk_timestamp(timestamp)
    if sent_at is None:
        raise SignatureError("unreadable signature timestamp")
    if abs(now - sent_at) > tolerance:
        raise SignatureError("signature timestamp outside the replay window")
    return signature, timestamp


def verify_zendesk(
    headers: Mapping[str, str],
    body: bytes,
    secret: str,
    *,
    now: float,
    tolerance: float = ZENDESK_TOLERANCE_SECONDS,
) -> None:
    signature, timestamp = _zendesk_headers(headers, now=now, tolerance=tolerance)
    if not same(zendesk_signature(secret, timestamp, body), signature):
        raise SignatureError("signature mismatch")


def _check_headers(headers: Mapping[str, str], secrets: Mapping[str, str], now: float) -> None:
    _zendesk_headers(headers, now=now, tolerance=ZENDESK_TOLERANCE_SECONDS)


def _verify(headers: Mapping[str, str], body: bytes, secrets: Mapping[str, str], now: float) -> None:
    verify_zendesk(headers, body, secrets["webhook_secret"], now=now)


# -- interpretation --------------------------------------------------------------------------------------------------


def _zendesk_ticket_id(payload: dict[str, Any], detail: dict[str, Any]) -> str | None:
    """The ticket's id (digits, since it goes into an API path): `detail.id`, or when that is absent the event's
    `subject`, "zen:ticket:35436"."""
    if "id" in detail:
        ticket_id = id_text(detail.get("id"))
    else:
        subject = text_of(payload.get("subject")) or ""
        ticket_id = subject[len("zen:ticket:") :] if subject.startswith("zen:ticket:") else None
    return ticket_id if ticket_id is not None and ticket_id.isdigit() and len(ticket_id) <= 20 else None


def interpret_zendesk(payload: dict[str, Any], context: MappingContext) -> Interpretation:
    event_id = event_id_of(payload.get("id"))
    event_type = text_of(payload.get("type"))
    result = Interpretation(event_id, event_type, "ignored")
    if event_type is None or not event_type.startswith(ZENDESK_TICKET_EVENT_PREFIX):
        result.detail = "not a ticket event"
        return result
    detail = payload.get("detail")
    removal_reason = ZENDESK_REMOVAL_EVENTS.get(event_type)
    if removal_reason is not None and not isinstance(detail, dict):
        detail = {}  # a removal needs only the ticket id, which the event's subject also carries
    if not isinstance(detail, dict):
        result.verdict, result.detail = "unmappable", "event has no detail object"
        return result
    ticket_id = _zendesk_ticket_id(payload, detail)
    if ticket_id is None:
        result.verdict, result.detail = "unmappable", "event names no ticket id"
        return result
    result.record_id = ticket_id
    if removal_reason is not None or zendesk.is_deleted(detail):
        # The event's own time orders it against every version of the ticket: a replayed older update never
        # brings the ticket back, a later restore does.
        removal = zendesk.ticket_removal(
            {**detail, "id": ticket_id},
            reason=removal_reason or RemovalReason.deleted,
            at=zendesk.parse_moment(payload.get("time")),
        )
        if removal is None:
            result.verdict, result.detail = "unmappable", "removal event has no readable time"
            return result
        result.removals.append(removal)
        result.verdict, result.detail = "removed", f"ticket {removal.reason.value}"
        return result

    subdomain = context.setting("zendesk", "subdomain")
    has_description = text_of(detail.get("description")) is not None
    if has_description:
        try:
            record = zendesk.map_ticket({**detail, "id": ticket_id}, {}, subdomain=subdomain or "", rules=context.rules)
        except Exception as error:  # noqa: BLE001 - an authentic but odd payload must not fail the delivery
            result.detail = mapping_failure(error)
        else:
            if not subdomain:
                # Without the subdomain there is no agent link to build; better none than a broken one.
                record = record.model_copy(update={"metadata": {**record.metadata, "url": None}})
            result.records.append(record)
    if not has_description or "zendesk" in context.fetchable:
        result.fetches.append(FetchJob("zendesk", "ticket", ticket_id))
    result.verdict = verdict_of(result)
    if not result.detail:
        result.detail = "description missing: fetching the ticket" if not has_description else ""
    return result


# -- fetch-on-notify -------------------------------------------------------------------------------------------------


async def fetch_ticket(integration: Any, job: FetchJob, cache: dict[str, Any]) -> list[NormalizedRecord]:
    async with integration.client() as client:
        body = await client.get_json(
            f"/api/v2/tickets/{path_id(job.object_id)}.json", params={"include": "users,organizations"}
        )
    body = response_object(body, "the ticket endpoint", "zendesk")
    ticket = body.get("ticket")
    if not isinstance(ticket, dict):
        raise SourceError(ErrorKind.bad_response, "the ticket endpoint answered without a ticket", source="zendesk")
    if zendesk.is_deleted(ticket):
        raise RecordGone(zendesk.ticket_removal(ticket))
    record = zendesk.map_ticket(
        ticket,
        zendesk.index_by_id(body.get("users")),
        subdomain=integration.subdomain,
        rules=integration.rules,
        organizations_by_id=zendesk.index_by_id(body.get("organizations")),
    )
    return [record]


HANDLER = WebhookHandler(
    source="zendesk",
    secret_fields=("webhook_secret",),
    secret_env_vars=("ZENDESK_WEBHOOK_SECRET",),
    check_headers=_check_headers,
    verify=_verify,
    interpret=interpret_zendesk,
    fetchers={"ticket": fetch_ticket},
    context_fields=("subdomain",),
    register_caption="Creates a webhook for new tickets, comments and status changes, and saves its signing secret.",
    events_phrase="ticket events",
    returned_secret="webhook_secret",
    secret_location="Admin Center → Apps and integrations → Webhooks → Feedback Hub",
    test_event_kind="created",
)
