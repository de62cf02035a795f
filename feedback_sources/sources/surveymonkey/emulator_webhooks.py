"""SurveyMonkey webhooks in the emulator: the webhooks endpoints, response events, and their signature.

Registration: `POST/GET /v3/webhooks`, `GET/DELETE /v3/webhooks/{id}`. Like SurveyMonkey, a new webhook is refused
(400) unless its subscription URL answers a HEAD request with 200, checked over real HTTP.

Deliveries: `Sm-Signature` = base64(HMAC-SHA1(client_id + "&" + client_secret, body)), `Sm-Apikey` = client id.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import uuid
from collections.abc import Mapping
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any

from ...emulator.data import utc_z_time
from ...emulator.vendor import BuiltDelivery, EmulatorWebhooks
from ...emulator.webhooks import RegisteredWebhook, answers_head, encode_payload, is_web_url, strings_of, subscribed
from ...emulator.wire import Call, Reply, VendorApi

if TYPE_CHECKING:
    from ...emulator.core import Emulator

SURVEYMONKEY_EVENT_TYPES = (
    "response_completed", "response_updated", "response_disqualified", "response_created", "response_deleted",
    "response_overquota", "collector_created", "collector_updated", "collector_deleted", "survey_created",
    "survey_updated", "survey_deleted", "app_installed", "app_uninstalled",
)  # fmt: skip
SURVEYMONKEY_OBJECT_TYPES = ("survey", "collector")
SURVEYMONKEY_REQUIRED_FIELDS = ("name", "event_type", "object_type", "object_ids", "subscription_url")
SURVEYMONKEY_USER_ID = "123456789"  # the id the emulated users/me answers with

_SURVEYMONKEY_PATH = re.compile(r"/webhooks(?:/([^/]+))?/?")


class SurveyMonkeyWebhookApi:
    """The webhooks endpoints. Async: creating a webhook checks its URL over HTTP."""

    def __init__(self, emulator: Emulator, api: VendorApi) -> None:
        self.config = emulator.config
        self.registry = emulator.webhooks
        self.surveys = emulator.vendor("surveymonkey")
        self._now = emulator.now_ts
        self._api = api

    def serves(self, call: Call) -> bool:
        return _SURVEYMONKEY_PATH.fullmatch(call.endpoint) is not None

    async def handle(self, call: Call) -> Reply:
        return await self._surveymonkey(call)

    def _sm_error(self, status: int, message: str | None = None) -> Reply:
        return self._api.error(status, message, "1002" if status == 400 else None)

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
        object_ids = strings_of(body["object_ids"])
        if not object_ids:
            return self._sm_error(400, "object_ids must be a list of ids.")
        unknown = [object_id for object_id in object_ids if not self._sm_object_exists(object_type, object_id)]
        if unknown:
            return self._sm_error(400, f"Invalid value for object_ids: no {object_type} {', '.join(unknown)}.")
        url = body["subscription_url"]
        if not is_web_url(url):
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
        return await answers_head(url, self.config.webhook_check_timeout)

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


def _surveymonkey_view(hook: RegisteredWebhook, base_url: str) -> dict[str, Any]:
    return {
        "id": hook.id, "name": hook.name, "event_type": hook.events[0], "object_type": hook.object_type,
        "object_ids": list(hook.object_ids), "subscription_url": hook.url, "href": f"{base_url}/webhooks/{hook.id}",
    }


def sign_surveymonkey(client_id: str, client_secret: str, body: bytes) -> str:
    digest = hmac.new(f"{client_id}&{client_secret}".encode("utf-8"), body, hashlib.sha1).digest()
    return base64.b64encode(digest).decode("ascii")


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


def _find_response(dataset: Any, response_id: str) -> dict[str, Any] | None:
    # A deleted response is gone from the API but its response_deleted event still names it.
    if not response_id.isdigit():
        return None
    return dataset.find_response(response_id, include_deleted=True)


def new_webhook_id(number: int) -> str:
    return str(40_000_000 + number)


def new_event_id() -> str:
    return str(uuid.uuid4().int % 10**11)


def build(emulator: Emulator, kind: str, record_id: str | int, hooks: list[RegisteredWebhook], event_id: str,
          moment: float) -> BuiltDelivery:
    """A response event (ids only), signed with the app's client id and secret."""
    config = emulator.config
    response = _find_response(emulator.vendor("surveymonkey"), str(record_id))
    if response is None:
        raise LookupError(f"no SurveyMonkey response {record_id}")
    covered = (response["survey_id"], str(response.get("collector_id")))
    hook = next((h for h in hooks if subscribed(h, kind, covered)), None)
    payload = surveymonkey_event(response, kind, event_id=event_id, at=moment,
                                 webhook_name=hook.name if hook else "Webhook")
    body = encode_payload(payload)
    headers = {
        "Content-Type": "application/json",
        "Sm-Apikey": config.surveymonkey_client_id,
        "Sm-Signature": sign_surveymonkey(config.surveymonkey_client_id, config.surveymonkey_client_secret, body),
    }
    return BuiltDelivery(payload, body, headers, hook)


def newest_record_ids(emulator: Emulator, limit: int) -> list[str]:
    """The newest responses of every survey, deleted ones left out."""
    dataset = emulator.vendor("surveymonkey")
    entries = [(e[2], e[1]) for survey in dataset.surveys.values()
               for e in survey.responses.all_entries() if e[1] not in survey.deleted]
    return [str(i) for _, i in sorted(entries, reverse=True)[:limit]]


WEBHOOKS = EmulatorWebhooks(
    new_webhook_id=new_webhook_id,
    new_event_id=new_event_id,
    build=build,
    newest_record_ids=newest_record_ids,
    registration=SurveyMonkeyWebhookApi,
)
