"""Zendesk's field rules, the forms its secrets travel in, and its demo configuration.

Kept apart from the integration so credentials and the Connections page can validate a subdomain or an email
without importing httpx.
"""

from __future__ import annotations

import base64
import re
from collections.abc import Mapping

_SUBDOMAIN_RE = re.compile(r"^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$")
_EMAIL_RE = re.compile(r"^[^@\s/]+@[^@\s/]+\.[^@\s/]+$")


def normalize_subdomain(value: str) -> str:
    """Accept "acme", "acme.zendesk.com" or "https://acme.zendesk.com/" and return "acme"."""
    text = value.strip().lower()
    for prefix in ("https://", "http://"):
        if text.startswith(prefix):
            text = text[len(prefix) :]
    text = text.rstrip("/")
    if text.endswith(".zendesk.com"):
        text = text[: -len(".zendesk.com")]
    if not _SUBDOMAIN_RE.match(text):
        raise ValueError(
            f"subdomain: {value.strip()!r} is not a Zendesk subdomain. Enter the part before .zendesk.com, "
            'e.g. "acme" for https://acme.zendesk.com (letters, digits and hyphens only).'
        )
    return text


def normalize_email(value: str) -> str:
    """The agent's email; the Basic-auth user name people often paste ("me@acme.com/token") is accepted too."""
    text = value.strip()
    if text.endswith("/token"):
        text = text[: -len("/token")]
    if not _EMAIL_RE.match(text):
        raise ValueError(f"email: {text!r} is not an email address, e.g. pm@acme.com.")
    return text


def secret_encodings(config: Mapping[str, str]) -> list[str]:
    """Basic auth sends base64("{email}/token:{api_token}"): the token is not visible in it, so redact it whole."""
    email, token = config.get("email"), config.get("api_token")
    if not email or not token:
        return []
    pair = f"{email.strip()}/token:{token.strip()}".encode()
    return [base64.b64encode(pair).decode("ascii")]


def demo_config(base_url: str) -> dict[str, str]:
    """The demo workspace's account on the emulator; its webhook secret is the emulator's own signing secret."""
    from ...emulator import (
        DEMO_ZENDESK_EMAIL,
        DEMO_ZENDESK_SUBDOMAIN,
        DEMO_ZENDESK_TOKEN,
        DEMO_ZENDESK_WEBHOOK_SECRET,
    )

    return {
        "subdomain": DEMO_ZENDESK_SUBDOMAIN,
        "email": DEMO_ZENDESK_EMAIL,
        "api_token": DEMO_ZENDESK_TOKEN,
        "webhook_secret": DEMO_ZENDESK_WEBHOOK_SECRET,
        "base_url": f"{base_url}/zendesk/{{subdomain}}",
    }
