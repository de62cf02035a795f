"""Zendesk webhooks in the emulator: the Webhooks API, ticket events, and their signature.

Registration: `POST/GET /api/v2/webhooks`, `GET/DELETE /api/v2/webhooks/{id}` and
`GET /api/v2/webhooks/{id}/signing_secret`. Every webhook here shares the configured signing secret.

Deliveries: `X-Zendesk-Webhook-Signature` = base64(HMAC-SHA256(signing secret, timestamp + body)), the timestamp (ISO
8601 UTC) sent as is in `X-Zendesk-Webhook-Signature-Timestamp`.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import uuid
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from ...emulator.data import utc_z_time
from ...emulator.vendor import BuiltDelivery, EmulatorWebhooks
from ...emulator.webhooks import RegisteredWebhook, encode_payload, is_web_url, strings_of, subscribed
from ...emulator.wire import Call, Reply, VendorApi, decode_cursor, encode_cursor

if TYPE_CHECKING:
    from ...emulator.core import Emulator

ZENDESK_EVENT_PREFIX = "zen:event-type:"
ZENDESK_EVENT_VERSION = "2022-11-06"
ZENDESK_HTTP_METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE")
ZENDESK_REQUEST_FORMATS = ("json", "xml", "form_encoded")
ZENDESK_REQUIRED_FIELDS = ("name", "endpoint", "http_method", "request_format", "status")
ZENDESK_MAX_PAGE_SIZE = 100

_ZENDESK_PATH = re.compile(r"/api/v2/webhooks(?:/([^/]+)(/signing_secret)?)?/?")


class ZendeskWebhookApi:
    """The Webhooks API's endpoints."""

    def __init__(self, emulator: Emulator, api: VendorApi) -> None:
        self.config = emulator.config
        self.registry = emulator.webhooks
        self._now = emulator.now_ts

    def serves(self, call: Call) -> bool:
        return _ZENDESK_PATH.fullmatch(call.endpoint) is not None

    async def handle(self, call: Call) -> Reply:
        return self._zendesk(call)

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
        if not is_web_url(webhook["endpoint"]):
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
        subscriptions = strings_of(webhook.get("subscriptions", []))
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


def _zendesk_view(hook: RegisteredWebhook) -> dict[str, Any]:
    return {
        "id": hook.id, "name": hook.name, "status": hook.status, "subscriptions": list(hook.events),
        "created_at": hook.created_at, "created_by": "9000100", "updated_at": None, "updated_by": None,
        "endpoint": hook.url, "http_method": hook.http_method, "request_format": hook.request_format,
    }


def sign_zendesk(secret: str, timestamp: str, body: bytes) -> str:
    digest = hmac.new(secret.encode("utf-8"), timestamp.encode("utf-8") + body, hashlib.sha256).digest()
    return base64.b64encode(digest).decode("ascii")


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


def new_webhook_id(number: int) -> str:
    # Zendesk webhook ids are 26-character ULIDs such as "01GK8E6BKWMJZD2T8Y5AXJQMG5".
    return "01" + uuid.uuid4().hex[:24].upper()


def new_event_id() -> str:
    return "01" + uuid.uuid4().hex[:24].upper()


def build(emulator: Emulator, kind: str, record_id: str | int, hooks: list[RegisteredWebhook], event_id: str,
          moment: float) -> BuiltDelivery:
    """A ticket event about one ticket, signed with the signing secret."""
    config = emulator.config
    dataset = emulator.vendor("zendesk")
    ticket = dataset.ticket(int(record_id))
    if ticket is None:
        raise LookupError(f"no Zendesk ticket {record_id}")
    event_type = zendesk_event_type(kind)
    hook = next((h for h in hooks if subscribed(h, event_type)), None)
    requester = dataset.user(ticket["requester_id"]) if ticket.get("requester_id") else None
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
    return BuiltDelivery(payload, body, headers, hook)


def newest_record_ids(emulator: Emulator, limit: int) -> list[str]:
    """The newest tickets, deleted ones left out."""
    dataset = emulator.vendor("zendesk")
    entries = [(e[2], e[1]) for e in dataset.tickets.all_entries()]
    candidates = [str(i) for _, i in sorted(entries, reverse=True)]
    live = []
    for ticket_id in candidates:
        ticket = dataset.tickets.get(int(ticket_id))
        if ticket is not None and ticket.get("status") != "deleted":
            live.append(ticket_id)
        if len(live) >= limit:
            break
    return live


WEBHOOKS = EmulatorWebhooks(
    new_webhook_id=new_webhook_id,
    new_event_id=new_event_id,
    build=build,
    newest_record_ids=newest_record_ids,
    registration=ZendeskWebhookApi,
)
