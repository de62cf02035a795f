"""Intercom webhooks: signature, notification interpretation and fetch-on-notify.

Signature: `X-Hub-Signature` = "sha1=" + hex(HMAC-SHA1(key=app client secret, msg=body)). Intercom may deliver hours
late, so there is no freshness window; redeliveries are deduplicated by event id instead.

Registration has no API: webhooks are set up by hand in the Developer Hub (`register_webhook` raises the steps).
Notifications never carry the contact's name, email and plan, so when the receiver can reach Intercom it also
queues a fetch of the full conversation.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Mapping
from datetime import datetime, timezone
from typing import Any

from ...integrations.http import ErrorKind, SourceError
from ...models import NormalizedRecord, Removal
from ...webhooks.events import FetchJob
from ...webhooks.fetch import RecordGone, path_id, response_object
from ...webhooks.handler import WebhookHandler
from ...webhooks.payloads import (
    Interpretation, MappingContext, dict_of, event_id_of, id_text, mapping_failure, safe_id, text_of, verdict_of,
)
from ...webhooks.signatures import SignatureError, header, same
from . import api
from . import mapping as intercom

INTERCOM_SIGNATURE_HEADER = "X-Hub-Signature"
# Conversation topics, and the part topics (`conversation_part.redacted`, `conversation_part.tag.created`).
INTERCOM_CONVERSATION_TOPIC_PREFIXES = ("conversation.", "conversation_part.")


# -- signature -------------------------------------------------------------------------------------------------------


def intercom_signature(client_secret: str, body: bytes) -> str:
    return "sha1=" + hmac.new(client_secret.encode("utf-8"), body, hashlib.sha1).hexdigest()


def _intercom_digest(headers: Mapping[str, str]) -> str:
    signature = header(headers, INTERCOM_SIGNATURE_HEADER)
    if signature is None:
        raise SignatureError(f"missing {INTERCOM_SIGNATURE_HEADER}")
    scheme, _, digest = signature.partition("=")
    if scheme.strip().lower() != "sha1" or not digest:
        raise SignatureError("signature is not sha1=<hex>")
    # Hex is case-insensitive; Intercom sends lower case.
    return digest.strip().lower()


def verify_intercom(headers: Mapping[str, str], body: bytes, client_secret: str) -> None:
    digest = _intercom_digest(headers)
    if not same(intercom_signature(client_secret, body), "sha1=" + digest):
        raise SignatureError("signature mismatch")


def _check_headers(headers: Mapping[str, str], secrets: Mapping[str, str], now: float) -> None:
    _intercom_digest(headers)


def _verify(headers: Mapping[str, str], body: bytes, secrets: Mapping[str, str], now: float) -> None:
    verify_intercom(headers, body, secrets["client_secret"])


# -- interpretation --------------------------------------------------------------------------------------------------


def interpret_intercom(payload: dict[str, Any], context: MappingContext) -> Interpretation:
    """Conversation topics of both payload generations (2.x `source`/`contacts`, 1.x `conversation_message`/`user`).

    A delivery carries only the newest part(s), so its record is merged with the stored one on the store thread
    (`intercom.merge_delivered`) rather than written over it; `conversation_part.redacted` drops the redacted
    parts for good, and `conversation.deleted` (identifying fields only) removes the conversation.
    """
    event_id = event_id_of(payload.get("id"))
    topic = text_of(payload.get("topic"))
    result = Interpretation(event_id, topic, "ignored")
    if topic == "ping":
        result.detail = "ping"
        return result
    if topic is None or not topic.startswith(INTERCOM_CONVERSATION_TOPIC_PREFIXES):
        result.detail = "not a conversation event"
        return result
    item = dict_of(payload.get("data")).get("item")
    if not isinstance(item, dict):
        result.verdict, result.detail = "unmappable", "event has no data.item"
        return result
    if item.get("type") not in (None, "conversation"):
        # A part-level item (`conversation_part`) carries the part's id, not the conversation's: never a record.
        result.detail = f"item is a {str(item.get('type'))[:40]}, not a conversation"
        return result
    conversation_id = safe_id(item.get("id"))
    result.record_id = conversation_id
    if topic == intercom.DELETED_TOPIC:
        removal = intercom.conversation_removal(payload) if conversation_id is not None else None
        if removal is None:
            result.verdict, result.detail = "unmappable", "deletion names no conversation"
            return result
        result.removals.append(removal)
        result.verdict, result.detail = "removed", "conversation deleted"
        return result
    app_id = id_text(payload.get("app_id"))
    try:
        record = intercom.map_notification(payload, rules=context.rules, app_id=app_id)
    except Exception as error:  # noqa: BLE001 - an authentic but odd payload must not fail the delivery
        result.detail = mapping_failure(error)
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
    result.verdict = verdict_of(result)
    if topic == intercom.REDACTED_TOPIC and result.records:
        result.detail = "parts redacted: " + ", ".join(result.records[0].metadata.get("redacted_parts") or [])[:150]
    return result


# -- fetch-on-notify -------------------------------------------------------------------------------------------------


async def fetch_conversation(integration: Any, job: FetchJob, cache: dict[str, Any]) -> list[NormalizedRecord]:
    async with integration.client() as client:
        try:
            found_conversation = await client.get_json(
                api.CONVERSATION.url(conversation_id=path_id(job.object_id))
            )
        except SourceError as error:
            if error.kind is ErrorKind.not_found:
                # Intercom answers 404 for a deleted conversation: it leaves the store, as a deletion event would.
                raise RecordGone(
                    Removal(source="intercom", source_id=job.object_id, removed_at=datetime.now(timezone.utc))
                ) from None
            raise
        conversation = response_object(found_conversation, "the conversation endpoint", "intercom")
        contact: dict[str, Any] | None = None
        contacts = conversation.get("contacts")
        listed = contacts.get("contacts") if isinstance(contacts, dict) else None
        first = next((c for c in listed if isinstance(c, dict)), None) if isinstance(listed, list) else None
        contact_id = first.get("id") if first else None
        if isinstance(contact_id, str | int) and not isinstance(contact_id, bool) and str(contact_id):
            try:
                found = await client.get_json(api.CONTACT.url(contact_id=path_id(str(contact_id))))
            except SourceError as error:
                if error.kind is not ErrorKind.not_found:
                    raise
            else:
                contact = found if isinstance(found, dict) else None
    app_id = job.params.get("app_id") or getattr(integration, "app_id", None)
    return [intercom.map_conversation(conversation, contact, app_id=app_id, rules=integration.rules)]


HANDLER = WebhookHandler(
    source="intercom",
    secret_fields=("client_secret",),
    secret_env_vars=("INTERCOM_CLIENT_SECRET",),
    check_headers=_check_headers,
    verify=_verify,
    interpret=interpret_intercom,
    fetchers={"conversation": fetch_conversation},
    register_caption="Set up in Intercom's Developer Hub: this shows the steps.",
    events_phrase="conversation events",
    registered_message="{label} will post conversation events to {url}.",
    manual_events=api.WEBHOOK_TOPICS,
    test_event_kind="user.created",
)
