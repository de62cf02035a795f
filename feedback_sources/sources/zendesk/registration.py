"""What Zendesk needs to be connected: the connection test's diagnosis of who the credentials are, and the
registration of the webhook that posts ticket events to the receiver.

Both speak to a client the integration opens; neither touches the export. The diagnosis turns Zendesk's ways of
saying "wrong address" (a 404, a redirect to its marketing site, a web page) and "not an agent" (an anonymous or
end-user answer to /users/me) into errors that say which field to fix.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from ...integrations.coerce import identifier, lower_text, text
from ...integrations.errors import check_webhook_url as check_url
from ...integrations.errors import json_body as read_json
from ...integrations.http import ErrorKind, HttpClient, SourceError
from .api import (
    CURRENT_USER,
    MAX_WEBHOOK_LIST_PAGES,
    WEBHOOK_NAME,
    WEBHOOK_SIGNING_SECRET,
    WEBHOOK_SUBSCRIPTIONS,
    WEBHOOKS,
    WRONG_SUBDOMAIN_HINT,
)
from .mapping import SOURCE

logger = logging.getLogger("feedback_sources.sources.zendesk")


# -- the connection test ---------------------------------------------------------------------------------------------


async def probe_account(client: HttpClient, *, base_url: str, subdomain: str) -> tuple[str, dict[str, Any]]:
    """Who the credentials are on this account, as (display name, details); SourceError saying which field to fix."""
    try:
        response = await client.request("GET", CURRENT_USER.path, bucket=CURRENT_USER.bucket)
    except SourceError as error:
        if error.status == 404:
            # Every Zendesk account answers /users/me, so a missing one means this is not the account's address.
            raise SourceError(
                ErrorKind.wrong_subdomain,
                f"{base_url} is not a Zendesk account's API address",
                status=404,
                source=SOURCE,
                hint=WRONG_SUBDOMAIN_HINT,
            ) from None
        raise
    if 300 <= response.status_code < 400:
        # An unknown subdomain is redirected to Zendesk's marketing site rather than answered.
        raise SourceError(
            ErrorKind.wrong_subdomain,
            f"{base_url} redirects elsewhere instead of answering as Zendesk",
            status=response.status_code,
            source=SOURCE,
        )
    is_json, body = read_json(response)
    if not is_json:
        raise SourceError(
            ErrorKind.wrong_subdomain,
            f"{base_url} answered with a web page, not the Zendesk API",
            status=response.status_code,
            source=SOURCE,
        )
    user = body.get("user") if isinstance(body, dict) else None
    if not isinstance(user, dict):
        raise SourceError(
            ErrorKind.bad_response,
            f"{base_url} answered /users/me without a user",
            status=response.status_code,
            source=SOURCE,
        )
    role = lower_text(user.get("role"))
    user_id = identifier(user.get("id"), zero_is_none=True)
    if user_id is None or role == "end-user":
        who = "an anonymous visitor" if user_id is None else "an end user"
        raise SourceError(
            ErrorKind.auth,
            f"Zendesk treated these credentials as {who}: the email and API token were not accepted as an "
            "agent or admin",
            status=response.status_code,
            source=SOURCE,
            hint="Use the email of an agent or admin together with an API token from Admin Center → Apps and "
            "integrations → Zendesk API, and check that token access is enabled.",
        )
    email = text(user.get("email"))
    details = {
        "subdomain": subdomain,
        "user_id": user_id,
        "name": text(user.get("name")),
        "email": email,
        "role": role,
    }
    return f"{email or details['name'] or details['user_id']} ({role}) on {subdomain}", details


# -- the webhook -------------------------------------------------------------------------------------------------------


def check_webhook_url(url: str) -> None:
    """Refuse, before any request, an address Zendesk could never post to."""
    check_url(url, source=SOURCE, vendor="Zendesk")


async def ensure_webhook(client: HttpClient, url: str) -> tuple[str, str]:
    """The id and signing secret of a Feedback Hub webhook posting ticket events to `url`, reused or created.

    `client` is a webhook client (its refusals are worded for webhooks). A webhook created here whose secret cannot
    be read is removed again: it would only send deliveries the receiver refuses. The secret is never logged.
    """
    existing = await _find_webhook(client, url)
    if existing is not None:
        webhook_id, created = existing, False
    else:
        webhook_id, created = await _create_webhook(client, url), True
    try:
        secret = await _signing_secret(client, webhook_id)
    except SourceError:
        if created:
            await _delete_webhook_quietly(client, webhook_id)
        raise
    logger.info("%s: webhook %s %s for ticket events", SOURCE, webhook_id, "created" if created else "reused")
    return webhook_id, secret


async def _find_webhook(client: HttpClient, url: str) -> str | None:
    params: dict[str, Any] = {"filter[name_contains]": WEBHOOK_NAME, "page[size]": 100}
    for _ in range(MAX_WEBHOOK_LIST_PAGES):
        body = await _webhook_call(client, "GET", WEBHOOKS.path, params=params)
        webhooks = body.get("webhooks") if isinstance(body, dict) else None
        for webhook in webhooks if isinstance(webhooks, list) else []:
            if (
                isinstance(webhook, dict)
                and webhook.get("endpoint") == url
                and webhook.get("status") == "active"
                and set(WEBHOOK_SUBSCRIPTIONS) <= set(webhook.get("subscriptions") or [])
                and text(webhook.get("id"))
            ):
                return str(webhook["id"]).strip()
        meta = body.get("meta") if isinstance(body, dict) else None
        after = text(meta.get("after_cursor")) if isinstance(meta, dict) and meta.get("has_more") else None
        if after is None:
            return None
        # The next page by its cursor on the same path: credentials never follow a link to another host.
        params = {**params, "page[after]": after}
    return None


async def _create_webhook(client: HttpClient, url: str) -> str:
    payload = {
        "webhook": {
            "name": WEBHOOK_NAME,
            "description": "Ticket events for the Feedback Hub webhook receiver",
            "endpoint": url,
            "http_method": "POST",
            "request_format": "json",
            "status": "active",
            "subscriptions": list(WEBHOOK_SUBSCRIPTIONS),
        }
    }
    body = await _webhook_call(client, "POST", WEBHOOKS.path, json_body=payload)
    webhook = body.get("webhook") if isinstance(body, dict) else None
    webhook_id = text(webhook.get("id")) if isinstance(webhook, dict) else None
    if webhook_id is None:
        raise SourceError(
            ErrorKind.bad_response, "Zendesk answered the webhook creation without a webhook id", source=SOURCE
        )
    return webhook_id


async def _signing_secret(client: HttpClient, webhook_id: str) -> str:
    body = await _webhook_call(client, "GET", WEBHOOK_SIGNING_SECRET.format(webhook_id=webhook_id))
    found = body.get("signing_secret") if isinstance(body, dict) else None
    secret = text(found.get("secret")) if isinstance(found, dict) else None
    if secret is None:
        raise SourceError(ErrorKind.bad_response, "Zendesk answered without the webhook's signing secret", source=SOURCE)
    return secret


async def _delete_webhook_quietly(client: HttpClient, webhook_id: str) -> None:
    try:
        await client.request("DELETE", f"{WEBHOOKS.path}/{webhook_id}", bucket=WEBHOOKS.bucket)
    except SourceError as error:
        logger.warning("%s: could not remove webhook %s: %s", SOURCE, webhook_id, error)


async def _webhook_call(
    client: HttpClient,
    method: str,
    path: str,
    *,
    params: Mapping[str, Any] | None = None,
    json_body: Any = None,
) -> Any:
    response = await client.request(method, path, params=params, json_body=json_body, bucket=WEBHOOKS.bucket)
    is_json, body = read_json(response)
    if not is_json:
        raise SourceError(
            ErrorKind.bad_response,
            "the Webhooks API did not answer with JSON",
            status=response.status_code,
            source=SOURCE,
            hint=WRONG_SUBDOMAIN_HINT,
        )
    return body

