"""What a verified delivery means: which event it is, the record it carries, and what must still be fetched.

Records are built by the same mappers the sync uses (`map_ticket`, `map_conversation`), so a ticket looks the same
whichever way it arrived. Some events cannot make a complete record on their own:
- SurveyMonkey sends ids only: the response is always fetched.
- A Zendesk ticket event whose `detail` has no description is fetched rather than stored half empty.
- Zendesk and Intercom events never carry the requester's or contact's name, email and plan. Storing them as they
  are would replace what the sync knew about the customer (the newest version wins), so when the receiver can reach
  the vendor it also queues a fetch of the full record, which lands a moment later with the customer filled in.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from ..sources.intercom import integration as intercom
from ..sources.zendesk import integration as zendesk
from ..sources.surveymonkey import integration as surveymonkey
from ..models import MappingError, NormalizedRecord, Removal, RemovalReason, clean_text
from ..rules import Rules
from .events import FetchJob

# Ids from a payload end up in API paths: anything else (slashes, dots-only, spaces) is refused.
_SAFE_ID = re.compile(r"^[A-Za-z0-9_:-][A-Za-z0-9_.:-]{0,127}$")
MAX_EVENT_ID_LENGTH = 200

ZENDESK_TICKET_EVENT_PREFIX = "zen:event-type:ticket."
# Ticket events after which the ticket is no longer feedback to keep, and why.
ZENDESK_REMOVAL_EVENTS = {
    "zen:event-type:ticket.soft_deleted": RemovalReason.deleted,
    "zen:event-type:ticket.permanently_deleted": RemovalReason.deleted,
    "zen:event-type:ticket.marked_as_spam": RemovalReason.spam,
}
# Conversation topics, and the part topics (`conversation_part.redacted`, `conversation_part.tag.created`).
INTERCOM_CONVERSATION_TOPIC_PREFIXES = ("conversation.", "conversation_part.")
SURVEYMONKEY_RESPONSE_EVENTS = frozenset({"response_completed", "response_updated"})
# Events that end a response's life as feedback: acted on from the event alone, no request spent.
SURVEYMONKEY_REMOVAL_EVENTS = {
    "response_deleted": RemovalReason.deleted,
    "response_disqualified": RemovalReason.disqualified,
}


class MalformedEvent(ValueError):
    """An authentic delivery that is not a vendor event at all (not JSON, not an object, no event id): 400."""


@dataclass(frozen=True)
class MappingContext:
    rules: Rules
    zendesk_subdomain: str | None = None
    # Sources whose full records the receiver can fetch (their API credentials are configured).
    fetchable: frozenset[str] = frozenset()


@dataclass
class Interpretation:
    event_id: str
    event_type: str | None
    verdict: str  # "stored", "queued", "ignored" or "unmappable"
    detail: str = ""
    records: list[NormalizedRecord] = field(default_factory=list)
    fetches: list[FetchJob] = field(default_factory=list)
    record_id: str | None = None
    removals: list[Removal] = field(default_factory=list)
    # Records that complete what is stored (a partial Intercom delivery): called on the store thread, right before
    # the write, with the store and `records`; returns what to write.
    combine: Callable[[Any, list[NormalizedRecord]], list[NormalizedRecord]] | None = None


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def parse_json(body: bytes) -> dict[str, Any]:
    """The delivery as a JSON object; MalformedEvent for anything else."""
    try:
        # Bytes that are not UTF-8 inside a string become U+FFFD (the record is kept); lone surrogates ("\udcff")
        # are cleaned where the text is used (ids here, records in NormalizedRecord, the log in events.py).
        payload = json.loads(body.decode("utf-8", errors="replace"), parse_constant=_reject_constant)
    except (ValueError, RecursionError):
        raise MalformedEvent("body is not valid JSON") from None
    if not isinstance(payload, dict):
        raise MalformedEvent("body is not a JSON object")
    return payload


def _text(value: Any) -> str | None:
    if isinstance(value, str) and value.strip():
        return clean_text(value.strip())
    return None


def _id_text(value: Any) -> str | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return str(value)
    return _text(value)


def _safe_id(value: Any) -> str | None:
    text = _id_text(value)
    return text if text is not None and _SAFE_ID.match(text) else None


def _event_id(value: Any) -> str:
    text = _id_text(value)
    if text is None:
        raise MalformedEvent("no event id")
    if len(text) > MAX_EVENT_ID_LENGTH:
        raise MalformedEvent("event id too long")
    return text


def _dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _mapping_failure(error: Exception) -> str:
    # MappingError text names the record and the problem; anything else only by type (it may quote the payload).
    return str(error)[:200] if isinstance(error, MappingError) else f"mapper failed ({type(error).__name__})"


# -- Zendesk ---------------------------------------------------------------------------------------------------------


def _zendesk_ticket_id(payload: dict[str, Any], detail: dict[str, Any]) -> str | None:
    """The ticket's id (digits, since it goes into an API path): `detail.id`, or when that is absent the event's
    `subject`, "zen:ticket:35436"."""
    if "id" in detail:
        ticket_id = _id_text(detail.get("id"))
    else:
        subject = _text(payload.get("subject")) or ""
        ticket_id = subject[len("zen:ticket:") :] if subject.startswith("zen:ticket:") else None
    return ticket_id if ticket_id is not None and ticket_id.isdigit() and len(ticket_id) <= 20 else None


def _zendesk(payload: dict[str, Any], context: MappingContext) -> Interpretation:
    event_id = _event_id(payload.get("id"))
    event_type = _text(payload.get("type"))
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

    has_description = _text(detail.get("description")) is not None
    if has_description:
        try:
            record = zendesk.map_ticket(
                {**detail, "id": ticket_id}, {}, subdomain=context.zendesk_subdomain or "", rules=context.rules
            )
        except Exception as error:  # noqa: BLE001 - an authentic but odd payload must not fail the delivery
            result.detail = _mapping_failure(error)
        else:
            if not context.zendesk_subdomain:
                # Without the subdomain there is no agent link to build; better none than a broken one.
                record = record.model_copy(update={"metadata": {**record.metadata, "url": None}})
            result.records.append(record)
    if not has_description or "zendesk" in context.fetchable:
        result.fetches.append(FetchJob("zendesk", "ticket", ticket_id))
    result.verdict = _verdict(result)
    if not result.detail:
        result.detail = "description missing: fetching the ticket" if not has_description else ""
    return result


# -- Intercom --------------------------------------------------------------------------------------------------------


def _intercom(payload: dict[str, Any], context: MappingContext) -> Interpretation:
    """Conversation topics of both payload generations (2.x `source`/`contacts`, 1.x `conversation_message`/`user`).

    A delivery carries only the newest part(s), so its record is merged with the stored one on the store thread
    (`intercom.merge_delivered`) rather than written over it; `conversation_part.redacted` drops the redacted
    parts for good, and `conversation.deleted` (identifying fields only) removes the conversation.
    """
    event_id = _event_id(payload.get("id"))
    topic = _text(payload.get("topic"))
    result = Interpretation(event_id, topic, "ignored")
    if topic == "ping":
        result.detail = "ping"
        return result
    if topic is None or not topic.startswith(INTERCOM_CONVERSATION_TOPIC_PREFIXES):
        result.detail = "not a conversation event"
        return result
    item = _dict(payload.get("data")).get("item")
    if not isinstance(item, dict):
        result.verdict, result.detail = "unmappable", "event has no data.item"
        return result
    if item.get("type") not in (None, "conversation"):
        # A part-level item (`conversation_part`) carries the part's id, not the conversation's: never a record.
        result.detail = f"item is a {str(item.get('type'))[:40]}, not a conversation"
        return result
    conversation_id = _safe_id(item.get("id"))
    result.record_id = conversation_id
    if topic == intercom.DELETED_TOPIC:
        removal = intercom.conversation_removal(payload) if conversation_id is not None else None
        if removal is None:
            result.verdict, result.detail = "unmappable", "deletion names no conversation"
            return result
        result.removals.append(removal)
        result.verdict, result.detail = "removed", "conversation deleted"
        return result
    app_id = _id_text(payload.get("app_id"))
    try:
        record = intercom.map_notification(payload, rules=context.rules, app_id=app_id)
    except Exception as error:  # noqa: BLE001 - an authentic but odd payload must not fail the delivery
        result.detail = _mapping_failure(error)
    else:
        result.records.append(record)
        result.record_id = record.source_id
        rules = context.rules
        result.combine = lambda store, records: [
            intercom.merge_delivered(r, store.get_record(r.source, r.source_id), rules=rules) for r in records
        ]
    if conversation_id is not None and "intercom" in context.fetchable:
        params = {"app_id": app_id} if app_id else {}
        result.fetches.append(FetchJob("intercom", "conversation", conversation_id, params))
    result.verdict = _verdict(result)
    if topic == intercom.REDACTED_TOPIC and result.records:
        result.detail = "parts redacted: " + ", ".join(result.records[0].metadata.get("redacted_parts") or [])[:150]
    return result


# -- SurveyMonkey ----------------------------------------------------------------------------------------------------


def _surveymonkey(payload: dict[str, Any], context: MappingContext) -> Interpretation:
    event_id = _event_id(payload.get("event_id"))
    event_type = _text(payload.get("event_type"))
    result = Interpretation(event_id, event_type, "ignored")
    removal_reason = SURVEYMONKEY_REMOVAL_EVENTS.get(event_type or "")
    if event_type not in SURVEYMONKEY_RESPONSE_EVENTS and removal_reason is None:
        result.detail = "not a response event"
        return result
    response_id = _safe_id(payload.get("object_id"))
    survey_id = _safe_id(_dict(payload.get("resources")).get("survey_id"))
    if removal_reason is not None:
        # A deleted response answers 404 and a disqualified one is not feedback: the event says all there is to
        # know. Its time orders it against the response's versions, so a late replay of the completed event (or an
        # older page of a sync) never brings the answers back.
        moment = surveymonkey.parse_iso(_text(payload.get("event_datetime")))
        removal = (
            surveymonkey.response_removal({"id": response_id}, reason=removal_reason, at=moment)
            if response_id is not None and moment is not None else None
        )
        if removal is None:
            result.verdict, result.detail = "unmappable", "removal event names no response or no readable time"
            return result
        result.record_id = response_id
        result.removals.append(removal)
        result.verdict, result.detail = "removed", f"response {removal_reason.value}"
        return result
    if response_id is None or survey_id is None:
        result.verdict, result.detail = "unmappable", "event names no response or survey id"
        return result
    result.record_id = response_id
    result.fetches.append(FetchJob("surveymonkey", "response", response_id, {"survey_id": survey_id}))
    result.verdict = "queued"
    return result


def _verdict(result: Interpretation) -> str:
    if result.removals:
        return "removed"
    if result.records:
        return "stored"
    if result.fetches:
        return "queued"
    return "unmappable"


_INTERPRETERS = {"zendesk": _zendesk, "intercom": _intercom, "surveymonkey": _surveymonkey}


def interpret(source: str, payload: dict[str, Any], context: MappingContext) -> Interpretation:
    """Classify a verified delivery. MalformedEvent when it has no event id to deduplicate on."""
    return _INTERPRETERS[source](payload, context)
