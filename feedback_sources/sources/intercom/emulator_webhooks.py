"""Intercom webhooks in the emulator: notification events and their signature.

Intercom has no API for webhooks: they are set up in its Developer Hub, which `Emulator.add_webhook("intercom", ...)`
stands for. Deliveries: `X-Hub-Signature` = "sha1=" + hex(HMAC-SHA1(app client secret, body)).
"""

from __future__ import annotations

import copy
import hashlib
import hmac
import uuid
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from ...emulator.vendor import BuiltDelivery, EmulatorWebhooks
from ...emulator.webhooks import RegisteredWebhook, encode_payload, subscribed

if TYPE_CHECKING:
    from ...emulator.core import Emulator

INTERCOM_DEFAULT_TOPICS = ("conversation.user.created", "conversation.user.replied", "conversation.admin.closed",
                           "conversation_part.redacted", "conversation.deleted")


def sign_intercom(client_secret: str, body: bytes) -> str:
    return "sha1=" + hmac.new(client_secret.encode("utf-8"), body, hashlib.sha1).hexdigest()


def intercom_topic(kind: str) -> str:
    if kind.startswith(("conversation.", "conversation_part.")) or kind == "ping":
        return kind
    return f"conversation.{kind}"


# Webhook API versions: before 2.0 the conversation item has `conversation_message`, `user` and `assignee`; from
# 2.0 on it has `source`, `contacts` and `teammates` like the REST API.
INTERCOM_WEBHOOK_VERSION = "2.14"
INTERCOM_LEGACY_WEBHOOK_VERSION = "1.4"


def is_legacy_intercom_version(version: str | None) -> bool:
    return bool(version) and str(version).split(".", 1)[0] in ("1", "0")


def _newest_parts(conversation: Mapping[str, Any], topic: str) -> list[dict[str, Any]]:
    """The part(s) a delivery carries: never the thread, only what the event is about. A new conversation carries
    none; a redaction the part(s) redacted last; any other topic the part(s) written in the newest second."""
    parts = [p for p in conversation.get("conversation_parts", {}).get("conversation_parts", [])
             if isinstance(p, dict)]
    if topic == "conversation.user.created" or not parts:
        return []
    if topic == "conversation_part.redacted":
        redacted = [p for p in parts if p.get("redacted")]
        if not redacted:
            return []
        newest = max(p.get("updated_at") or 0 for p in redacted)
        return [p for p in redacted if (p.get("updated_at") or 0) == newest]
    newest = max(p.get("created_at") or 0 for p in parts)
    return [p for p in parts if (p.get("created_at") or 0) == newest]


def _legacy_part(part: Mapping[str, Any]) -> dict[str, Any]:
    author = part.get("author") or {}
    return {
        "type": "conversation_part", "id": str(part["id"]), "part_type": part.get("part_type"),
        "body": part.get("body"), "created_at": part.get("created_at"), "updated_at": part.get("updated_at"),
        "notified_at": part.get("notified_at"), "assigned_to": part.get("assigned_to"),
        "author": {"type": author.get("type"), "id": author.get("id"), "name": author.get("name")},
        "attachments": [], "external_id": None,
    }


def _legacy_item(conversation: Mapping[str, Any], parts: list[dict[str, Any]], app_id: str) -> dict[str, Any]:
    """The conversation as a webhook of API 1.x sends it: `user`, `assignee`, `conversation_message`, and parts
    without the `redacted` flag (a redacted message only reads "This message was deleted")."""
    source = conversation.get("source") or {}
    contact = (conversation.get("contacts") or {}).get("contacts") or [{}]
    customer = source.get("author") if (source.get("author") or {}).get("type") in ("user", "lead") else None
    user = {"type": "lead" if (customer or {}).get("type") == "lead" else "user", "id": contact[0].get("id"),
            "user_id": contact[0].get("external_id"), "name": (customer or {}).get("name"),
            "email": (customer or {}).get("email") or None, "do_not_track": None}
    assignee_id = conversation.get("admin_assignee_id")
    return {
        "type": "conversation",
        "id": str(conversation["id"]),
        "created_at": conversation.get("created_at"),
        "updated_at": conversation.get("updated_at"),
        "user": user,
        "assignee": {"type": "admin", "id": str(assignee_id)} if assignee_id else {"type": "nobody_admin", "id": None},
        "conversation_message": {
            "type": "conversation_message", "id": source.get("id"), "url": source.get("url"),
            "subject": source.get("subject") or "", "body": source.get("body"),
            "author": {"type": (source.get("author") or {}).get("type"), "id": (source.get("author") or {}).get("id")},
            "attachments": [],
        },
        "conversation_parts": {"type": "conversation_part.list", "conversation_parts": [_legacy_part(p) for p in parts],
                               "total_count": len(parts)},
        "conversation_rating": conversation.get("conversation_rating") or {},
        "open": conversation.get("open"),
        "state": conversation.get("state"),
        "snoozed_until": conversation.get("snoozed_until"),
        "read": conversation.get("read"),
        "metadata": {},
        "tags": conversation.get("tags") or {"type": "tag.list", "tags": []},
        "tags_added": {"type": "tag.list", "tags": []},
        "links": {"conversation_web": f"https://app.intercom.com/a/apps/{app_id}/conversations/{conversation['id']}"},
    }


def intercom_item(conversation: Mapping[str, Any], topic: str, *, app_id: str,
                  version: str = INTERCOM_WEBHOOK_VERSION) -> dict[str, Any]:
    """`data.item` of a delivery: the conversation with only the newest part(s), in the version's shape."""
    parts = copy.deepcopy(_newest_parts(conversation, topic))
    if is_legacy_intercom_version(version):
        return _legacy_item(conversation, parts, app_id)
    item = copy.deepcopy(dict(conversation))
    item["conversation_parts"] = {"type": "conversation_part.list", "conversation_parts": parts,
                                  "total_count": len(parts)}
    return item


def intercom_notification(conversation: Mapping[str, Any], kind: str, *, event_id: str, at: float,
                          app_id: str, version: str = INTERCOM_WEBHOOK_VERSION) -> dict[str, Any]:
    """A notification_event as Intercom posts it. The item carries only the newest part(s), never the thread; a
    `conversation.deleted` item carries identifying fields only."""
    topic = intercom_topic(kind)
    if topic == "conversation.deleted":
        item: dict[str, Any] = {"type": "conversation", "id": str(conversation["id"])}
    else:
        item = intercom_item(conversation, topic, app_id=app_id, version=version)
    return {
        "type": "notification_event",
        "app_id": app_id,
        "data": {"type": "notification_event_data", "item": item},
        "links": {},
        "id": event_id,
        "topic": intercom_topic(kind),
        "delegated": False,
        "created_at": int(at),
        "delivery_attempts": 1,
        "first_sent_at": int(at),
    }


def new_webhook_id(number: int) -> str:
    return f"hub_{number}"


def new_event_id() -> str:
    return f"notif_{uuid.uuid4()}"


def build(emulator: Emulator, kind: str, record_id: str | int, hooks: list[RegisteredWebhook], event_id: str,
          moment: float) -> BuiltDelivery:
    """A notification about one conversation, in the shape of the API version its webhook is set to."""
    config = emulator.config
    dataset = emulator.vendor("intercom")
    topic = intercom_topic(kind)
    conversation = dataset.conversation(record_id)
    if conversation is None and topic == "conversation.deleted" and str(record_id).isdigit() \
            and int(record_id) in dataset.deleted:
        conversation = {"id": str(record_id)}  # a deletion names what no longer exists
    if conversation is None:
        raise LookupError(f"no Intercom conversation {record_id}")
    hook = next((h for h in hooks if subscribed(h, topic)), None)
    # The item's shape follows the API version the app's webhooks are set to in the Developer Hub.
    payload = intercom_notification(conversation, kind, event_id=event_id, at=moment,
                                    app_id=config.intercom_app_id_code,
                                    version=(hook.api_version if hook else None) or INTERCOM_WEBHOOK_VERSION)
    body = encode_payload(payload)
    headers = {
        "Content-Type": "application/json",
        "User-Agent": "Intercom-Webhook/1.0",
        "X-Hub-Signature": sign_intercom(config.intercom_client_secret, body),
    }
    return BuiltDelivery(payload, body, headers, hook)


def newest_record_ids(emulator: Emulator, limit: int) -> list[str]:
    """The newest conversations, deleted ones left out."""
    dataset = emulator.vendor("intercom")
    entries = [(e[2], e[1]) for e in dataset.conversations.all_entries() if e[1] not in dataset.deleted]
    return [str(i) for _, i in sorted(entries, reverse=True)[:limit]]


WEBHOOKS = EmulatorWebhooks(
    new_webhook_id=new_webhook_id,
    new_event_id=new_event_id,
    build=build,
    newest_record_ids=newest_record_ids,
    manual_name="Developer Hub webhook",
    manual_events=INTERCOM_DEFAULT_TOPICS,
    manual_api_version=INTERCOM_WEBHOOK_VERSION,
)
