"""What SurveyMonkey needs to be connected: the connection test's check that the token can do what a sync does, and
the registration of the webhooks that announce response events to the receiver.

Both speak to a client the integration opens and spend requests of the small daily budget, so each asks only what
it must: the connection test three small requests, the registration one listing plus one call per event type.
"""

from __future__ import annotations

import logging
from typing import Any

from ...integrations.coerce import as_dict, as_list, identifier
from ...integrations.errors import check_webhook_url as check_url
from ...integrations.http import ErrorKind, HttpClient, SourceError
from .api import RESPONSES_BULK, SURVEYS, USER_ME, WEBHOOK, WEBHOOK_EVENT_TYPES, WEBHOOK_NAME, WEBHOOKS, list_surveys, walk
from .mapping import SOURCE

logger = logging.getLogger("feedback_sources.sources.surveymonkey")

WEBHOOK_SCOPES_HINT = (
    "In the developer portal, set the scopes View Webhooks (webhooks_read) and Create/Modify Webhooks "
    "(webhooks_write) to Required, then copy the access token again."
)
TUNNEL_HINT = (
    "SurveyMonkey calls the address from the internet, so 127.0.0.1 or a LAN address cannot work: expose the "
    "receiver's port through a tunnel (for example `cloudflared tunnel --url http://127.0.0.1:8787` or "
    "`ngrok http 8787`), check that it answers, and register the public https address it gives you."
)


# -- the connection test ---------------------------------------------------------------------------------------------


async def probe_account(client: HttpClient) -> tuple[str, dict[str, Any]]:
    """Who the token belongs to, as (display name, details), once it has shown it can read surveys and responses."""
    body = await client.get_json(USER_ME.url(), bucket=USER_ME.bucket)
    body = as_dict(body)
    username, email = identifier(body.get("username")), identifier(body.get("email"))
    if username is None and email is None:
        raise SourceError(
            ErrorKind.bad_response,
            "users/me answered without a username or email",
            hint="Check the base URL: it should end in /v3.",
            source=SOURCE,
        )
    # users/me answers for any valid token; a sync also needs the survey and response scopes, so try them now
    # (two small requests) rather than failing halfway through the first sync.
    surveys = as_dict(await client.get_json(SURVEYS.url(), params={"per_page": 1}, bucket=SURVEYS.bucket))
    first = next((item for item in surveys.get("data") or [] if isinstance(item, dict) and item.get("id")), None)
    if first is not None:
        await client.get_json(
            RESPONSES_BULK.url(survey_id=str(first["id"])), params={"per_page": 1}, bucket=RESPONSES_BULK.bucket
        )
    details = {
        "username": username,
        "email": email,
        "surveys": surveys.get("total"),
        "account_type": identifier(body.get("account_type")),
        "rate_limit": dict(client.stats.rate_limit),
        "day_requests_remaining": client.stats.rate_limit.get("day", {}).get("remaining"),
    }
    return username or email or "", details


# -- the webhooks ------------------------------------------------------------------------------------------------------


def check_webhook_url(url: str) -> None:
    """Refuse, before any request, an address SurveyMonkey could never post to."""
    check_url(url, source=SOURCE, vendor="SurveyMonkey")


async def subscribe_every_survey(client: HttpClient, url: str) -> None:
    """One Feedback Hub webhook per event type in `WEBHOOK_EVENT_TYPES` sending that event of every survey to `url`.

    A refusal for lack of scopes says which scopes the webhooks need (not the sync's)."""
    try:
        survey_ids = [survey.id for survey in await list_surveys(client)]
        if not survey_ids:
            raise SourceError(
                ErrorKind.client,
                "this account has no surveys to subscribe to yet",
                source=SOURCE,
                hint="Create a survey, then register the webhook again.",
            )
        ours = await _webhooks_to(client, url)
        for event_type in WEBHOOK_EVENT_TYPES:
            await _register_event(client, url, event_type, survey_ids, ours.get(event_type, {}))
    except SourceError as error:
        if error.kind is ErrorKind.forbidden and error.status != 400:
            error.hint = WEBHOOK_SCOPES_HINT
        raise


async def _register_event(
    client: HttpClient, url: str, event_type: str, survey_ids: list[str], ours: dict[str, list[str]]
) -> None:
    if any(set(survey_ids) <= set(covered) for covered in ours.values()):
        return
    payload = {
        "name": WEBHOOK_NAME,
        "event_type": event_type,
        "object_type": "survey",
        "object_ids": survey_ids,
        "subscription_url": url,
    }
    try:
        await client.get_json(WEBHOOKS.path, method="POST", json_body=payload, bucket=WEBHOOKS.bucket)
    except SourceError as error:
        if error.status == 400:
            # describe_error words it "SurveyMonkey refused the request — SurveyMonkey says: ...".
            said = error.message.partition(" — ")[2]
            raise SourceError(
                ErrorKind.client,
                f"SurveyMonkey refused the webhook for {url}: before accepting one it checks that the "
                f"address answers a HEAD request with 200{f' ({said})' if said else ''}",
                status=400,
                source=SOURCE,
                hint=TUNNEL_HINT,
            ) from None
        raise
    for stale in ours:
        # Its surveys are all in the new webhook: keeping it would announce each response twice.
        try:
            await client.request("DELETE", WEBHOOK.url(webhook_id=stale), bucket=WEBHOOK.bucket)
        except SourceError as error:
            logger.warning("could not remove the older SurveyMonkey webhook %s: %s", stale, error)


async def _webhooks_to(client: HttpClient, url: str) -> dict[str, dict[str, list[str]]]:
    """Our webhooks that already send response events to `url`: event type → id → the survey ids covered."""
    found: dict[str, dict[str, list[str]]] = {}
    async for body in walk(client, WEBHOOKS.request(), "the webhook list"):
        for item in as_list(as_dict(body).get("data")):
            item = as_dict(item)
            webhook_id = identifier(item.get("id"))
            # The list shows names only: details are read for our own webhooks, not for every one.
            if webhook_id is None or identifier(item.get("name")) != WEBHOOK_NAME:
                continue
            details = as_dict(await client.get_json(WEBHOOK.url(webhook_id=webhook_id), bucket=WEBHOOK.bucket))
            event_type = details.get("event_type")
            if (
                details.get("subscription_url") == url
                and event_type in WEBHOOK_EVENT_TYPES
                and details.get("object_type") == "survey"
            ):
                found.setdefault(event_type, {})[webhook_id] = [str(i) for i in as_list(details.get("object_ids"))]
    return found
