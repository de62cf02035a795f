"""SurveyMonkey webhooks: signature, event interpretation and fetch-on-notify.

Signature: `Sm-Signature` = base64(HMAC-SHA1(key=client_id + "&" + client_secret, msg=body)). The key is built from
our own configured client id, never from the `Sm-Apikey` header a caller controls.

Events carry ids only: a completed or updated response is always fetched; a deleted or disqualified one is removed
from the event alone, no request spent of the small daily budget.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import time
from collections.abc import Mapping
from typing import Any

from ...integrations.http import ErrorKind, SourceError
from ...models import NormalizedRecord, RemovalReason
from ...webhooks.events import FetchJob
from ...webhooks.fetch import RecordGone, path_id, response_object
from ...webhooks.handler import WebhookHandler
from ...webhooks.payloads import Interpretation, MappingContext, dict_of, event_id_of, safe_id, text_of
from ...webhooks.signatures import SignatureError, header, same
from . import mapping as surveymonkey
from .api import SURVEY_DETAILS

SURVEYMONKEY_SIGNATURE_HEADER = "Sm-Signature"
SURVEYMONKEY_APIKEY_HEADER = "Sm-Apikey"

SURVEYMONKEY_RESPONSE_EVENTS = frozenset({"response_completed", "response_updated"})
# Events that end a response's life as feedback: acted on from the event alone, no request spent.
SURVEYMONKEY_REMOVAL_EVENTS = {
    "response_deleted": RemovalReason.deleted,
    "response_disqualified": RemovalReason.disqualified,
}

# Survey details change rarely and each request spends SurveyMonkey's small daily budget.
SURVEY_DETAILS_TTL_SECONDS = 900.0


# -- signature -------------------------------------------------------------------------------------------------------


def surveymonkey_signature(client_id: str, client_secret: str, body: bytes) -> str:
    key = f"{client_id}&{client_secret}".encode("utf-8")
    return base64.b64encode(hmac.new(key, body, hashlib.sha1).digest()).decode("ascii")


def _surveymonkey_header(headers: Mapping[str, str]) -> str:
    signature = header(headers, SURVEYMONKEY_SIGNATURE_HEADER)
    if signature is None:
        raise SignatureError(f"missing {SURVEYMONKEY_SIGNATURE_HEADER}")
    return signature


def verify_surveymonkey(headers: Mapping[str, str], body: bytes, client_id: str, client_secret: str) -> None:
    signature = _surveymonkey_header(headers)
    if not same(surveymonkey_signature(client_id, client_secret, body), signature):
        raise SignatureError("signature mismatch")


def _check_headers(headers: Mapping[str, str], secrets: Mapping[str, str], now: float) -> None:
    _surveymonkey_header(headers)


def _verify(headers: Mapping[str, str], body: bytes, secrets: Mapping[str, str], now: float) -> None:
    verify_surveymonkey(headers, body, secrets["client_id"], secrets["client_secret"])


# -- interpretation --------------------------------------------------------------------------------------------------


def interpret_surveymonkey(payload: dict[str, Any], context: MappingContext) -> Interpretation:
    event_id = event_id_of(payload.get("event_id"))
    event_type = text_of(payload.get("event_type"))
    result = Interpretation(event_id, event_type, "ignored")
    removal_reason = SURVEYMONKEY_REMOVAL_EVENTS.get(event_type or "")
    if event_type not in SURVEYMONKEY_RESPONSE_EVENTS and removal_reason is None:
        result.detail = "not a response event"
        return result
    response_id = safe_id(payload.get("object_id"))
    survey_id = safe_id(dict_of(payload.get("resources")).get("survey_id"))
    if removal_reason is not None:
        # A deleted response answers 404 and a disqualified one is not feedback: the event says all there is to
        # know. Its time orders it against the response's versions, so a late replay of the completed event (or an
        # older page of a sync) never brings the answers back.
        moment = surveymonkey.parse_iso(text_of(payload.get("event_datetime")))
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


# -- fetch-on-notify -------------------------------------------------------------------------------------------------


async def fetch_response(integration: Any, job: FetchJob, cache: dict[str, Any]) -> list[NormalizedRecord]:
    survey_id = job.params.get("survey_id")
    if not survey_id:
        raise SourceError(ErrorKind.client, "the event named no survey", source="surveymonkey")
    async with integration.client() as client:
        response = response_object(
            await client.get_json(f"/surveys/{path_id(survey_id)}/responses/{path_id(job.object_id)}/details"),
            "the response endpoint",
            "surveymonkey",
        )
        if surveymonkey.is_disqualified(response):
            # Announced as completed or updated, disqualified by the time we asked: not feedback, and removed if
            # stored. Checked before the details, which would spend a request of the daily budget for nothing.
            raise RecordGone(surveymonkey.response_removal(response))
        cached = cache.get(survey_id)
        if cached is not None and cached[0] > time.monotonic():
            index = cached[1]
        else:
            try:
                details = await client.get_json(SURVEY_DETAILS.url(survey_id=path_id(survey_id)))
            except SourceError as error:
                if error.kind is not ErrorKind.not_found:
                    raise
                details = None  # answers keep their ids, as in the sync
            index = surveymonkey.SurveyIndex.from_details(details)
            cache[survey_id] = (time.monotonic() + SURVEY_DETAILS_TTL_SECONDS, index)
    return [surveymonkey.map_response(response, index, rules=integration.rules)]


HANDLER = WebhookHandler(
    source="surveymonkey",
    secret_fields=("client_id", "client_secret"),
    secret_env_vars=("SURVEYMONKEY_CLIENT_ID", "SURVEYMONKEY_CLIENT_SECRET"),
    check_headers=_check_headers,
    verify=_verify,
    interpret=interpret_surveymonkey,
    fetchers={"response": fetch_response},
    register_caption="Subscribes every survey's completed, updated, disqualified and deleted responses. "
                     "SurveyMonkey checks the address first.",
    events_phrase="survey responses",
    registered_message="{label} will announce completed, updated, disqualified and deleted responses of every "
                       "survey to {url}. Deliveries are signed with your app's client ID and secret: set both on "
                       "the Connections page if the receiver says it rejects {label}.",
    test_event_kind="response_completed",
    queued_note="{label} events carry ids only, so the receiver is fetching the response now",
)
