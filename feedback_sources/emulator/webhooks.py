"""Webhooks: registering them the way each vendor's API does, and sending signed events built from the dataset.

Registration endpoints (served behind the vendor's usual authentication, faults and rate limits):
- Zendesk Webhooks API: `POST/GET /api/v2/webhooks`, `GET/DELETE /api/v2/webhooks/{id}` and
  `GET /api/v2/webhooks/{id}/signing_secret`. Every webhook here shares the configured signing secret.
- SurveyMonkey: `POST/GET /v3/webhooks`, `GET/DELETE /v3/webhooks/{id}`. Like SurveyMonkey, a new webhook is refused
  (400) unless its subscription URL answers a HEAD request with 200, checked over real HTTP.
- Intercom has no API for webhooks: they are set up in its Developer Hub, which `Emulator.add_intercom_webhook`
  stands for.

Deliveries carry each vendor's payload and are signed as the vendor signs them:
- Zendesk: `X-Zendesk-Webhook-Signature` = base64(HMAC-SHA256(signing secret, timestamp + body)), the timestamp (ISO
  8601 UTC) sent as is in `X-Zendesk-Webhook-Signature-Timestamp`;
- Intercom: `X-Hub-Signature` = "sha1=" + hex(HMAC-SHA1(app client secret, body));
- SurveyMonkey: `Sm-Signature` = base64(HMAC-SHA1(client_id + "&" + client_secret, body)), `Sm-Apikey` = client id.
The signing is written here on its own rather than imported from the receiver (the emulator imports nothing from the
rest of the package), so tests that run one against the other show that both follow the vendors' rules.
"""

from __future__ import annotations

import base64
import copy
import hashlib
import hmac
import itertools
import json
import re
import threading
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import httpx

from .config import VENDORS, EmulatorConfig
from .data import to_unix, utc_z_time
from ..sources.surveymonkey.emulator import SurveyMonkeyDataset
from .wire import Call, Reply, VendorApi, decode_cursor, encode_cursor

if TYPE_CHECKING:
    from .core import Emulator

ZENDESK_EVENT_PREFIX = "zen:event-type:"
ZENDESK_EVENT_VERSION = "2022-11-06"
ZENDESK_HTTP_METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE")
ZENDESK_REQUEST_FORMATS = ("json", "xml", "form_encoded")
ZENDESK_REQUIRED_FIELDS = ("name", "endpoint", "http_method", "request_format", "status")
ZENDESK_MAX_PAGE_SIZE = 100

SURVEYMONKEY_EVENT_TYPES = (
    "response_completed", "response_updated", "response_disqualified", "response_created", "response_deleted",
    "response_overquota", "collector_created", "collector_updated", "collector_deleted", "survey_created",
    "survey_updated", "survey_deleted", "app_installed", "app_uninstalled",
)  # fmt: skip
SURVEYMONKEY_OBJECT_TYPES = ("survey", "collector")
SURVEYMONKEY_REQUIRED_FIELDS = ("name", "event_type", "object_type", "object_ids", "subscription_url")
SURVEYMONKEY_USER_ID = "123456789"  # the id the emulated users/me answers with

INTERCOM_DEFAULT_TOPICS = ("conversation.user.created", "conversation.user.replied", "conversation.admin.closed",
                           "conversation_part.redacted", "conversation.deleted")

_ZENDESK_PATH = re.compile(r"/api/v2/webhooks(?:/([^/]+)(/signing_secret)?)?/?")
_SURVEYMONKEY_PATH = re.compile(r"/webhooks(?:/([^/]+))?/?")


# -- registrations ---------------------------------------------------------------------------------------------------


@dataclass
class RegisteredWebhook:
    """One webhook, the same fields for every vendor: `events` are Zendesk's subscriptions, SurveyMonkey's
    event_type or Intercom's topics; `object_ids` are the surveys or collectors a SurveyMonkey webhook covers."""

    vendor: str
    id: str
    name: str
    url: str
    events: tuple[str, ...]
    created_at: str
    status: str = "active"
    object_type: str | None = None
    object_ids: tuple[str, ...] = ()
    http_method: str = "POST"
    request_format: str = "json"
    # Intercom: the API version the app's webhooks are delivered in (set in the Developer Hub).
    api_version: str | None = None

    def as_dict(self) -> dict[str, Any]:
        found = asdict(self)
        found["events"] = list(self.events)
        found["object_ids"] = list(self.object_ids)
        if self.vendor != "intercom":
            found.pop("api_version")  # a setting of Intercom's Developer Hub only
        return found


class WebhookRegistry:
    """The webhooks registered with each vendor, in the order they were created."""

    def __init__(self) -> None:
        self._hooks: dict[str, dict[str, RegisteredWebhook]] = {vendor: {} for vendor in VENDORS}
        self._numbers = itertools.count(1)
        self._lock = threading.Lock()

    def new_id(self, vendor: str) -> str:
        with self._lock:
            number = next(self._numbers)
        if vendor == "zendesk":
            # Zendesk webhook ids are 26-character ULIDs such as "01GK8E6BKWMJZD2T8Y5AXJQMG5".
            return "01" + uuid.uuid4().hex[:24].upper()
        if vendor == "surveymonkey":
            return str(40_000_000 + number)
        return f"hub_{number}"

    def add(self, webhook: RegisteredWebhook) -> RegisteredWebhook:
        with self._lock:
            self._hooks[webhook.vendor][webhook.id] = webhook
        return webhook

    def get(self, vendor: str, webhook_id: str) -> RegisteredWebhook | None:
        with self._lock:
            return self._hooks[vendor].get(webhook_id)

    def remove(self, vendor: str, webhook_id: str) -> RegisteredWebhook | None:
        with self._lock:
            return self._hooks[vendor].pop(webhook_id, None)

    def list(self, vendor: str) -> list[RegisteredWebhook]:
        with self._lock:
            return list(self._hooks[vendor].values())

    def clear(self) -> None:
        with self._lock:
            for hooks in self._hooks.values():
                hooks.clear()


def _is_web_url(value: Any) -> bool:
    if not isinstance(value, str) or not value.strip() or value != value.strip():
        return False
    parts = urlsplit(value)
    return parts.scheme in ("http", "https") and bool(parts.hostname)


def _strings(value: Any) -> list[str] | None:
    """A list of non-empty strings (ids may come as numbers), or None when it is anything else."""
    if not isinstance(value, list):
        return None
    found = []
    for item in value:
        if isinstance(item, bool) or not isinstance(item, str | int) or not str(item).strip():
            return None
        found.append(str(item).strip())
    return found


class WebhookApi:
    """The registration endpoints of Zendesk and SurveyMonkey. Async: SurveyMonkey's check calls the URL."""

    def __init__(self, config: EmulatorConfig, registry: WebhookRegistry, surveys: SurveyMonkeyDataset,
                 now: Callable[[], int], apis: Mapping[str, VendorApi]) -> None:
        self.config = config
        self.registry = registry
        self.surveys = surveys
        self._now = now
        self._apis = apis

    def serves(self, call: Call) -> bool:
        if call.vendor == "zendesk":
            return _ZENDESK_PATH.fullmatch(call.endpoint) is not None
        if call.vendor == "surveymonkey":
            return _SURVEYMONKEY_PATH.fullmatch(call.endpoint) is not None
        return False

    async def handle(self, call: Call) -> Reply:
        if call.vendor == "zendesk":
            return self._zendesk(call)
        return await self._surveymonkey(call)

    # ---- Zendesk ------------------------------------------------------------------------------------------------

    @staticmethod
    def _zendesk_error(status: int, code: str, title: str, detail: str, pointer: str | None = None) -> Reply:
        # The Webhooks API answers with a JSON:API-style error list rather than the Support API's {"error": ...}.
        error: dict[str, Any] = {"code": code, "title": title, "detail": detail}
        if pointer:
            error["source"] = {"pointer": pointer}
        return Reply(status, {"errors": [error]})

    def _zendesk(self, call: Call) -> Reply:
        match = _ZENDESK_PATH.fullmatch(call.endpoint)
        assert match is not None
        webhook_id, secret = match.group(1), match.group(2)
        if webhook_id is None:
            if call.method == "POST":
                return self._zendesk_create(call)
            if call.method == "GET":
                return self._zendesk_list(call)
            return self._zendesk_error(405, "MethodNotAllowed", "Method not allowed", f"{call.method} is not allowed")
        hook = self.registry.get("zendesk", webhook_id)
        if hook is None:
            return self._zendesk_error(404, "WebhookNotFound", "Not found", f"No webhook with id {webhook_id}")
        if secret:
            if call.method != "GET":
                return self._zendesk_error(405, "MethodNotAllowed", "Method not allowed",
                                           f"{call.method} is not allowed")
            return Reply(200, {"signing_secret": {"secret": self.config.zendesk_webhook_secret,
                                                  "algorithm": "sha256"}})
        if call.method == "GET":
            return Reply(200, {"webhook": _zendesk_view(hook)})
        if call.method == "DELETE":
            self.registry.remove("zendesk", webhook_id)
            return Reply(204, None)
        return self._zendesk_error(405, "MethodNotAllowed", "Method not allowed", f"{call.method} is not allowed")

    def _zendesk_create(self, call: Call) -> Reply:
        body = call.body
        webhook = body.get("webhook") if isinstance(body, dict) else None
        if not isinstance(webhook, dict):
            return self._zendesk_error(400, "InvalidRequest", "Invalid request",
                                       'The request body must be {"webhook": {...}}')
        for name in ZENDESK_REQUIRED_FIELDS:
            value = webhook.get(name)
            if not isinstance(value, str) or not value.strip():
                return self._zendesk_error(422, "RequiredFieldMissing", "Required field missing",
                                           f"{name} is required", f"/webhook/{name}")
        if not _is_web_url(webhook["endpoint"]):
            return self._zendesk_error(422, "InvalidEndpoint", "Invalid endpoint",
                                       "endpoint must be an absolute http or https URL", "/webhook/endpoint")
        http_method = webhook["http_method"].upper()
        request_format = webhook["request_format"].lower()
        status = webhook["status"].lower()
        if http_method not in ZENDESK_HTTP_METHODS:
            return self._zendesk_error(422, "InvalidValue", "Invalid value",
                                       f"http_method must be one of {', '.join(ZENDESK_HTTP_METHODS)}",
                                       "/webhook/http_method")
        if request_format not in ZENDESK_REQUEST_FORMATS:
            return self._zendesk_error(422, "InvalidValue", "Invalid value",
                                       f"request_format must be one of {', '.join(ZENDESK_REQUEST_FORMATS)}",
                                       "/webhook/request_format")
        if status not in ("active", "inactive"):
            return self._zendesk_error(422, "InvalidValue", "Invalid value", "status must be active or inactive",
                                       "/webhook/status")
        subscriptions = _strings(webhook.get("subscriptions", []))
        if subscriptions is None:
            return self._zendesk_error(422, "InvalidValue", "Invalid value", "subscriptions must be a list of strings",
                                       "/webhook/subscriptions")
        for subscription in subscriptions:
            if subscription != "conditional_ticket_events" and not subscription.startswith(ZENDESK_EVENT_PREFIX):
                return self._zendesk_error(422, "InvalidSubscription", "Invalid subscription",
                                           f"{subscription} is not a Zendesk event type", "/webhook/subscriptions")
        events = [s for s in subscriptions if s.startswith(ZENDESK_EVENT_PREFIX)]
        if events and (http_method != "POST" or request_format != "json"):
            return self._zendesk_error(422, "InvalidValue", "Invalid value",
                                       "A webhook subscribed to events must use http_method POST and request_format "
                                       "json", "/webhook/http_method")
        hook = self.registry.add(RegisteredWebhook(
            vendor="zendesk", id=self.registry.new_id("zendesk"), name=webhook["name"].strip(),
            url=webhook["endpoint"], events=tuple(subscriptions), created_at=utc_z_time(self._now()),
            status=status, http_method=http_method, request_format=request_format,
        ))
        return Reply(201, {"webhook": _zendesk_view(hook)})

    def _zendesk_list(self, call: Call) -> Reply:
        query = call.query
        name_contains = query.get("filter[name_contains]", "").lower()
        status = query.get("filter[status]", "").lower()
        hooks = [hook for hook in self.registry.list("zendesk")
                 if name_contains in hook.name.lower() and (not status or hook.status == status)]
        try:
            size = int(query.get("page[size]") or ZENDESK_MAX_PAGE_SIZE)
            start = int(decode_cursor(query["page[after]"])) if query.get("page[after]") else 0
        except ValueError:
            return self._zendesk_error(400, "InvalidPaginationParameter", "Invalid pagination parameter",
                                       "page[size] must be a number and page[after] a cursor from this API")
        size = max(1, min(size, ZENDESK_MAX_PAGE_SIZE))
        page = hooks[start:start + size]
        has_more = start + size < len(hooks)
        after = encode_cursor(str(start + size)) if has_more else None
        next_url = call.url(**{**query, "page[after]": after}) if after else None
        return Reply(200, {
            "webhooks": [_zendesk_view(hook) for hook in page],
            "meta": {"has_more": has_more, "after_cursor": after, "before_cursor": None},
            "links": {"next": next_url, "prev": None},
        })

    # ---- SurveyMonkey -------------------------------------------------------------------------------------------

    def _sm_error(self, status: int, message: str | None = None) -> Reply:
        return self._apis["surveymonkey"].error(status, message, "1002" if status == 400 else None)

    async def _surveymonkey(self, call: Call) -> Reply:
        match = _SURVEYMONKEY_PATH.fullmatch(call.endpoint)
        assert match is not None
        webhook_id = match.group(1)
        if webhook_id is None:
            if call.method == "POST":
                return await self._sm_create(call)
            if call.method == "GET":
                return self._sm_list(call)
            return self._sm_error(405, f"{call.method} is not allowed here")
        hook = self.registry.get("surveymonkey", webhook_id)
        if hook is None:
            return self._sm_error(404)
        if call.method == "GET":
            return Reply(200, _surveymonkey_view(hook, call.base_url))
        if call.method == "DELETE":
            self.registry.remove("surveymonkey", webhook_id)
            return Reply(200, _surveymonkey_view(hook, call.base_url))
        return self._sm_error(405, f"{call.method} is not allowed here")

    async def _sm_create(self, call: Call) -> Reply:
        body = call.body
        if not isinstance(body, dict):
            return self._sm_error(400, "The request body must be a JSON object.")
        missing = [name for name in SURVEYMONKEY_REQUIRED_FIELDS if body.get(name) in (None, "", [])]
        if missing:
            return self._sm_error(400, f"Missing required field(s): {', '.join(missing)}.")
        name, event_type, object_type = body["name"], body["event_type"], body["object_type"]
        if not isinstance(name, str):
            return self._sm_error(400, "Invalid value for name.")
        if event_type not in SURVEYMONKEY_EVENT_TYPES:
            return self._sm_error(400, f"Invalid value for event_type: {event_type!r}.")
        if object_type not in SURVEYMONKEY_OBJECT_TYPES:
            return self._sm_error(400, "Invalid value for object_type: expected survey or collector.")
        object_ids = _strings(body["object_ids"])
        if not object_ids:
            return self._sm_error(400, "object_ids must be a list of ids.")
        unknown = [object_id for object_id in object_ids if not self._sm_object_exists(object_type, object_id)]
        if unknown:
            return self._sm_error(400, f"Invalid value for object_ids: no {object_type} {', '.join(unknown)}.")
        url = body["subscription_url"]
        if not _is_web_url(url):
            return self._sm_error(400, "Invalid value for subscription_url: expected an http or https URL.")
        if not await self._answers_head(url):
            return self._sm_error(400, "The subscription_url must respond to a HEAD request with 200 OK; "
                                       f"{url} did not.")
        hook = self.registry.add(RegisteredWebhook(
            vendor="surveymonkey", id=self.registry.new_id("surveymonkey"), name=name, url=url,
            events=(event_type,), created_at=utc_z_time(self._now()), object_type=object_type,
            object_ids=tuple(object_ids),
        ))
        return Reply(201, _surveymonkey_view(hook, call.base_url))

    def _sm_object_exists(self, object_type: str, object_id: str) -> bool:
        if object_type == "survey":
            return self.surveys.survey(object_id) is not None
        return any(object_id in survey.collector_ids for survey in self.surveys.surveys.values())

    async def _answers_head(self, url: str) -> bool:
        # Straight to the address given, like the vendor's own check: no proxies from the environment, no redirects.
        try:
            async with httpx.AsyncClient(timeout=self.config.webhook_check_timeout, follow_redirects=False,
                                         trust_env=False) as client:
                response = await client.head(url)
        except httpx.HTTPError:
            return False
        return response.status_code == 200

    def _sm_list(self, call: Call) -> Reply:
        hooks = self.registry.list("surveymonkey")
        try:
            per_page = max(1, min(int(call.query.get("per_page") or 50), 1000))
            page = max(1, int(call.query.get("page") or 1))
        except ValueError:
            return self._sm_error(400, "per_page and page must be numbers.")
        selected = hooks[(page - 1) * per_page: page * per_page]
        links = {"self": call.url(page=page, per_page=per_page)}
        if page * per_page < len(hooks):
            links["next"] = call.url(page=page + 1, per_page=per_page)
        return Reply(200, {
            "data": [{"id": hook.id, "name": hook.name, "href": f"{call.base_url}/webhooks/{hook.id}"}
                     for hook in selected],
            "per_page": per_page, "page": page, "total": len(hooks), "links": links,
        })


def _zendesk_view(hook: RegisteredWebhook) -> dict[str, Any]:
    return {
        "id": hook.id, "name": hook.name, "status": hook.status, "subscriptions": list(hook.events),
        "created_at": hook.created_at, "created_by": "9000100", "updated_at": None, "updated_by": None,
        "endpoint": hook.url, "http_method": hook.http_method, "request_format": hook.request_format,
    }


def _surveymonkey_view(hook: RegisteredWebhook, base_url: str) -> dict[str, Any]:
    return {
        "id": hook.id, "name": hook.name, "event_type": hook.events[0], "object_type": hook.object_type,
        "object_ids": list(hook.object_ids), "subscription_url": hook.url, "href": f"{base_url}/webhooks/{hook.id}",
    }


# -- signing ---------------------------------------------------------------------------------------------------------


def sign_zendesk(secret: str, timestamp: str, body: bytes) -> str:
    digest = hmac.new(secret.encode("utf-8"), timestamp.encode("utf-8") + body, hashlib.sha256).digest()
    return base64.b64encode(digest).decode("ascii")


def sign_intercom(client_secret: str, body: bytes) -> str:
    return "sha1=" + hmac.new(client_secret.encode("utf-8"), body, hashlib.sha1).hexdigest()


def sign_surveymonkey(client_id: str, client_secret: str, body: bytes) -> str:
    digest = hmac.new(f"{client_id}&{client_secret}".encode("utf-8"), body, hashlib.sha1).digest()
    return base64.b64encode(digest).decode("ascii")


# -- deliveries ------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Delivery:
    """A signed event ready to post: the exact bytes and headers the vendor would send."""

    vendor: str
    url: str
    event_id: str
    payload: dict[str, Any]
    body: bytes
    headers: dict[str, str] = field(default_factory=dict)


def encode_payload(payload: dict[str, Any]) -> bytes:
    return json.dumps(payload, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


def _moment(at: datetime | float | int | None) -> float:
    # Real time by default: the receiver checks Zendesk's timestamp against its own clock.
    if at is None:
        return time.time()
    if isinstance(at, datetime):
        return float(to_unix(at))
    return float(at)


def _zendesk_id(value: Any) -> str:
    # Event payloads send ids as strings, "0" where there is none.
    return "0" if value in (None, "") else str(value)


def _upper(value: Any) -> str | None:
    return value.upper() if isinstance(value, str) and value else None


def zendesk_event_type(kind: str) -> str:
    return kind if kind.startswith(ZENDESK_EVENT_PREFIX) else f"{ZENDESK_EVENT_PREFIX}ticket.{kind}"


def zendesk_event(ticket: Mapping[str, Any], kind: str, *, event_id: str, at: float, account_id: int,
                  requester_name: str | None) -> dict[str, Any]:
    """A ticket event as Zendesk's event subscriptions send it: `detail` is the ticket now, `event` the change."""
    event_type = zendesk_event_type(kind)
    via = ticket.get("via") if isinstance(ticket.get("via"), dict) else {}
    requester_id = _zendesk_id(ticket.get("requester_id"))
    detail = {
        "actor_id": requester_id,
        "assignee_id": _zendesk_id(ticket.get("assignee_id")),
        "brand_id": _zendesk_id(ticket.get("brand_id")),
        "created_at": ticket.get("created_at"),
        "custom_status": _zendesk_id(ticket.get("custom_status_id")),
        "description": ticket.get("description"),
        "external_id": ticket.get("external_id"),
        "form_id": _zendesk_id(ticket.get("ticket_form_id")),
        "group_id": _zendesk_id(ticket.get("group_id")),
        "id": str(ticket["id"]),
        "is_public": bool(ticket.get("is_public", True)),
        "organization_id": _zendesk_id(ticket.get("organization_id")),
        "priority": _upper(ticket.get("priority")),
        "requester_id": requester_id,
        "status": _upper(ticket.get("status")),
        "subject": ticket.get("subject"),
        "submitter_id": _zendesk_id(ticket.get("submitter_id")),
        "tags": list(ticket.get("tags") or []),
        "type": _upper(ticket.get("type")),
        "updated_at": ticket.get("updated_at"),
        "via": {"channel": via.get("channel") or "web"},
    }
    event: dict[str, Any] = {}
    if event_type.endswith(".comment_added"):
        event = {"comment": {"id": str(ticket["id"] * 1000 + 1), "body": ticket.get("description") or "",
                             "is_public": True,
                             "author": {"id": requester_id, "is_staff": False, "name": requester_name or ""}}}
    elif event_type.endswith(".status_changed"):
        event = {"current": detail["status"], "previous": "NEW"}
    return {
        "type": event_type,
        "account_id": account_id,
        "id": event_id,
        "time": utc_z_time(int(at)),
        "zendesk_event_version": ZENDESK_EVENT_VERSION,
        "subject": f"zen:ticket:{ticket['id']}",
        "detail": detail,
        "event": event,
    }


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


def surveymonkey_event(response: Mapping[str, Any], kind: str, *, event_id: str, at: float,
                       webhook_name: str) -> dict[str, Any]:
    """A response event: ids only, the response itself has to be fetched."""
    moment = datetime.fromtimestamp(at, tz=timezone.utc)
    return {
        "name": webhook_name,
        "filter_type": "survey",
        "filter_id": response["survey_id"],
        "event_type": kind,
        "event_id": event_id,
        "object_type": "response",
        "object_id": response["id"],
        "event_datetime": moment.isoformat(timespec="microseconds"),
        "resources": {
            "respondent_id": response["id"],
            "recipient_id": response.get("recipient_id") or "0",
            "survey_id": response["survey_id"],
            "collector_id": response.get("collector_id"),
            "user_id": SURVEYMONKEY_USER_ID,
        },
    }


def _new_event_id(vendor: str) -> str:
    if vendor == "zendesk":
        return "01" + uuid.uuid4().hex[:24].upper()
    if vendor == "intercom":
        return f"notif_{uuid.uuid4()}"
    return str(uuid.uuid4().int % 10**11)


def _subscribed(hook: RegisteredWebhook, event: str, object_ids: tuple[str, ...] = ()) -> bool:
    if hook.status != "active" or event not in hook.events:
        return False
    return not hook.object_ids or any(object_id in hook.object_ids for object_id in object_ids)


def build_delivery(emulator: Emulator, vendor: str, kind: str, record_id: str | int, *, url: str | None = None,
                   event_id: str | None = None, at: datetime | float | int | None = None) -> Delivery:
    """The signed event about one of the emulator's records, addressed to `url` or else to the newest webhook
    registered for it. LookupError when the record does not exist or no webhook wants the event."""
    if vendor not in VENDORS:
        raise ValueError(f"unknown vendor {vendor!r}; expected one of {VENDORS}")
    config = emulator.config
    moment = _moment(at)
    event_id = event_id or _new_event_id(vendor)
    hooks = list(reversed(emulator.webhooks.list(vendor)))
    hook: RegisteredWebhook | None = None

    if vendor == "zendesk":
        ticket = emulator.zendesk.ticket(int(record_id))
        if ticket is None:
            raise LookupError(f"no Zendesk ticket {record_id}")
        event_type = zendesk_event_type(kind)
        hook = next((h for h in hooks if _subscribed(h, event_type)), None)
        requester = emulator.zendesk.user(ticket["requester_id"]) if ticket.get("requester_id") else None
        payload = zendesk_event(ticket, kind, event_id=event_id, at=moment, account_id=config.zendesk_account_id,
                                requester_name=(requester or {}).get("name"))
        body = encode_payload(payload)
        timestamp = utc_z_time(int(moment))
        headers = {
            "Content-Type": "application/json; charset=utf-8",
            "User-Agent": "Zendesk Webhook",
            "X-Zendesk-Account-Id": str(config.zendesk_account_id),
            "X-Zendesk-Webhook-Id": hook.id if hook else "",
            "X-Zendesk-Webhook-Invocation-Id": str(uuid.uuid4().int % 10**13),
            "X-Zendesk-Webhook-Signature": sign_zendesk(config.zendesk_webhook_secret, timestamp, body),
            "X-Zendesk-Webhook-Signature-Timestamp": timestamp,
        }
    elif vendor == "intercom":
        topic = intercom_topic(kind)
        conversation = emulator.intercom.conversation(record_id)
        if conversation is None and topic == "conversation.deleted" and str(record_id).isdigit() \
                and int(record_id) in emulator.intercom.deleted:
            conversation = {"id": str(record_id)}  # a deletion names what no longer exists
        if conversation is None:
            raise LookupError(f"no Intercom conversation {record_id}")
        hook = next((h for h in hooks if _subscribed(h, topic)), None)
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
    else:
        response = _find_response(emulator.surveymonkey, str(record_id))
        if response is None:
            raise LookupError(f"no SurveyMonkey response {record_id}")
        covered = (response["survey_id"], str(response.get("collector_id")))
        hook = next((h for h in hooks if _subscribed(h, kind, covered)), None)
        payload = surveymonkey_event(response, kind, event_id=event_id, at=moment,
                                     webhook_name=hook.name if hook else "Webhook")
        body = encode_payload(payload)
        headers = {
            "Content-Type": "application/json",
            "Sm-Apikey": config.surveymonkey_client_id,
            "Sm-Signature": sign_surveymonkey(config.surveymonkey_client_id, config.surveymonkey_client_secret, body),
        }

    target = url or (hook.url if hook else None)
    if target is None:
        raise LookupError(f"no {vendor} webhook is registered for {kind!r} events; register one or pass url=")
    return Delivery(vendor=vendor, url=target, event_id=event_id, payload=payload, body=body, headers=headers)


def _find_response(dataset: SurveyMonkeyDataset, response_id: str) -> dict[str, Any] | None:
    # A deleted response is gone from the API but its response_deleted event still names it.
    if not response_id.isdigit():
        return None
    return dataset.find_response(response_id, include_deleted=True)


def newest_record_ids(emulator: Emulator, vendor: str, limit: int = 50) -> list[str]:
    """Ids of the vendor's most recently created records (deleted tickets left out), newest first."""
    if vendor == "zendesk":
        entries = [(e[2], e[1]) for e in emulator.zendesk.tickets.all_entries()]
        candidates = [str(i) for _, i in sorted(entries, reverse=True)]
        live = []
        for ticket_id in candidates:
            ticket = emulator.zendesk.tickets.get(int(ticket_id))
            if ticket is not None and ticket.get("status") != "deleted":
                live.append(ticket_id)
            if len(live) >= limit:
                break
        return live
    if vendor == "intercom":
        entries = [(e[2], e[1]) for e in emulator.intercom.conversations.all_entries()
                   if e[1] not in emulator.intercom.deleted]
    elif vendor == "surveymonkey":
        entries = [(e[2], e[1]) for survey in emulator.surveymonkey.surveys.values()
                   for e in survey.responses.all_entries() if e[1] not in survey.deleted]
    else:
        raise ValueError(f"unknown vendor {vendor!r}; expected one of {VENDORS}")
    return [str(i) for _, i in sorted(entries, reverse=True)[:limit]]
