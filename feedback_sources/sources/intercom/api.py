"""Intercom's API as data: regions, endpoints, the search request, rate-limit headers and error rows."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import httpx

from ...integrations.errors import SERVER_ERRORS, ErrorContext, ErrorRow, ErrorTable
from ...integrations.http import ErrorKind, SourceError
from ...integrations.ratelimits import HeaderWindow, RateLimits
from .mapping import SOURCE

MAX_PAGE_SIZE = 150  # the documented maximum for the conversation search

# Pinned so a workspace's default version cannot change response shapes under us. 2.14 is the newest stable
# version in Intercom's changelog that documents POST /conversations/search returning `conversation.list`.
INTERCOM_VERSION = "2.14"

REGION_BASE_URLS: dict[str, str] = {
    "us": "https://api.intercom.io",
    "eu": "https://api.eu.intercom.io",
    "au": "https://api.au.intercom.io",
}
BASE_URL_ENV = "INTERCOM_BASE_URL"

# Intercom counts every call against one per-app limit, so every endpoint shares this bucket.
RATE_LIMIT_BUCKET = "default"


# -- endpoints as data --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Endpoint:
    name: str
    method: str
    path: str
    paging: str  # "starting_after" (search cursor in the body) or "none"
    page_size: int | None = None
    bucket: str = RATE_LIMIT_BUCKET
    # The Intercom permission a 403 on this endpoint means the token is missing.
    permission: str | None = None

    def url(self, **ids: str) -> str:
        return self.path.format(**ids)


CONTACTS_PERMISSION = "Read and list users and companies"
ME = Endpoint("me", "GET", "/me", paging="none")
SEARCH_CONVERSATIONS = Endpoint("search_conversations", "POST", "/conversations/search", paging="starting_after",
                                page_size=MAX_PAGE_SIZE, permission="Read conversations")
CONVERSATION = Endpoint("conversation", "GET", "/conversations/{conversation_id}", paging="none",
                        permission="Read conversations")
CONTACT = Endpoint("contact", "GET", "/contacts/{contact_id}", paging="none", permission=CONTACTS_PERMISSION)
SEARCH_CONTACTS = Endpoint("search_contacts", "POST", "/contacts/search", paging="starting_after",
                           page_size=MAX_PAGE_SIZE, permission=CONTACTS_PERMISSION)
# The longer /contacts/search first: the paths are tried in order.
ENDPOINTS: tuple[Endpoint, ...] = (ME, SEARCH_CONVERSATIONS, CONVERSATION, SEARCH_CONTACTS, CONTACT)
# A cache or proxy may answer with a page we already had; ask again this many times before giving up.
MAX_STALE_PAGES = 3


def search_body(
    updated_after: int, updated_before: int, starting_after: str | None, per_page: int | None = None
) -> dict[str, Any]:
    """The search request for conversations changed in the window, oldest change first."""
    pagination: dict[str, Any] = {"per_page": per_page or SEARCH_CONVERSATIONS.page_size}
    if starting_after is not None:
        pagination["starting_after"] = starting_after
    return {
        "query": {
            "operator": "AND",
            "value": [
                {"field": "updated_at", "operator": ">", "value": updated_after},
                {"field": "updated_at", "operator": "<", "value": updated_before},
            ],
        },
        "pagination": pagination,
        "sort": {"field": "updated_at", "order": "ascending"},
    }



# -- rate limits and errors, as data --------------------------------------------------------------------------------

# X-RateLimit-Limit/-Remaining/-Reset (the reset is a unix time); a 429 always means the window is spent; without a
# reset time, Intercom's 10-second window.
read_rate_limits = RateLimits(
    HeaderWindow.prefixed(RATE_LIMIT_BUCKET, "X-RateLimit-", reset_is="epoch", default_reset=10.0,
                          needs="remaining_or_reset", spent_on_429=True)
)

_PREFIXES_TO_IGNORE = re.compile(r"^.*?(?=/(?:me|conversations|contacts)(?:/|$))")


def _permission_needed(context: ErrorContext) -> str:
    """The permission the refused endpoint needs, by its path (without the prefix a base URL may add)."""
    try:
        path = _PREFIXES_TO_IGNORE.sub("", context.response.request.url.path, count=1)
    except RuntimeError:  # a response built without a request (as in unit tests)
        path = ""
    for endpoint in ENDPOINTS:
        pattern = "^" + re.sub(r"\\\{\w+\\\}", "[^/]+", re.escape(endpoint.path)) + "$"
        if endpoint.permission and re.match(pattern, path):
            return f"the `{endpoint.permission}` permission"
    return f"the `Read conversations` and `{CONTACTS_PERMISSION}` permissions"


ERRORS = ErrorTable(
    message_paths=("errors[].message",),
    code_path="errors[].code",
    detail=" ({said})",
    source=SOURCE,
    rows=[
        ErrorRow(ErrorKind.auth, "Intercom rejected the access token{detail}", status=401,
                 hint="Copy the access token again from the Developer Hub (your app → Authentication). If the "
                 "workspace is hosted in Europe or Australia, set the region to eu or au: a token only works in "
                 "its region."),
        ErrorRow(ErrorKind.forbidden, "this Intercom workspace's plan does not include API access{detail}",
                 status=403, codes={"api_plan_restricted"},
                 hint="Ask a workspace admin to enable API access on the Intercom plan."),
        ErrorRow(ErrorKind.forbidden, lambda c: f"the Intercom access token lacks {_permission_needed(c)}{{detail}}",
                 status=403, hint=lambda c: f"In the Developer Hub, open your app → Authentication → Edit, grant "
                 f"{_permission_needed(c)}, then save the token."),
        ErrorRow(ErrorKind.not_found, "the Intercom API address was not found", status=404,
                 when=lambda c: "application/json" not in c.response.headers.get("content-type", ""),
                 hint="Check the region (us, eu or au) and the base URL."),
        ErrorRow(ErrorKind.not_found, "Intercom could not find the requested object{detail}", status=404),
        ErrorRow(ErrorKind.rate_limited, "Intercom's rate limit for this app is used up{detail}", status=429,
                 hint="Other apps may share this workspace's limit; wait a minute and sync again."),
        ErrorRow(ErrorKind.server, "Intercom's servers failed to answer{detail}", status=SERVER_ERRORS),
    ],
)


def describe_error(response: httpx.Response) -> SourceError | None:
    """Intercom's `error.list` bodies as errors a PM can act on. Never echoes request headers (the token)."""
    return ERRORS.describe(response)


# The customer's words arrive with the first two; the last two make the store forget what Intercom deleted.
WEBHOOK_TOPICS = (
    "conversation.user.created",
    "conversation.user.replied",
    "conversation.admin.closed",
    "conversation_part.redacted",
    "conversation.deleted",
)


def intercom_webhook_steps(url: str) -> list[str]:
    return [
        "Intercom webhooks are set up by hand in the Developer Hub (there is no API for it):",
        "1. Open https://app.intercom.com/a/apps/_/developer-hub and choose your app.",
        "2. Go to Configure → Webhooks and enter the endpoint URL: " + url,
        "3. Tick the topics: " + ", ".join(WEBHOOK_TOPICS) + ".",
        "4. Save, then copy the app's client secret from Basic information and store it as the Intercom "
        "`client_secret` credential (or INTERCOM_CLIENT_SECRET) so the receiver can verify X-Hub-Signature.",
    ]
