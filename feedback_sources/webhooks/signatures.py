"""Checking a delivery's signature: the shared part, each source's own rules in its `webhooks` module.

Every source signs the exact bytes it sends, so verification runs over the raw body before any parsing (a
signature over re-serialized JSON never matches) and compares digests in constant time. Which headers carry the
signature, which key signs and whether a timestamp must be fresh is the source's `WebhookHandler`'s business.
"""

from __future__ import annotations

import hmac
from collections.abc import Mapping
from typing import Any

from .handler import get_handler, vendor_attribute, webhook_handlers


class SignatureError(Exception):
    """A delivery that must be refused (401). The message names the check that failed, never a secret."""


def header(headers: Mapping[str, str], name: str) -> str | None:
    """A header's stripped value, looked up case-insensitively; None when absent or blank."""
    value = headers.get(name)
    if value is None:
        lowered = name.lower()
        value = next((v for k, v in headers.items() if k.lower() == lowered), None)
    if value is None or not value.strip():
        return None
    return value.strip()


def same(expected: str, received: str) -> bool:
    """Constant-time comparison. Header values arrive as latin-1 text; comparing bytes keeps compare_digest away
    from non-ASCII str errors."""
    return hmac.compare_digest(expected.encode("latin-1"), received.encode("latin-1", errors="replace"))


def missing_secret_fields(source: str, secrets: Mapping[str, str] | None) -> list[str]:
    """The signing fields a source lacks; a source with any missing rejects every delivery."""
    values = secrets or {}
    return [name for name in get_handler(source).secret_fields if not str(values.get(name) or "").strip()]


def _secret_values(source: str, secrets: Mapping[str, str] | None) -> dict[str, str]:
    handler = webhook_handlers().get(source)
    if handler is None:
        raise SignatureError(f"unknown source {source!r}")
    missing = missing_secret_fields(source, secrets)
    if missing:
        raise SignatureError(f"no {' and '.join(missing)} configured")
    assert secrets is not None
    return {name: str(secrets[name]).strip() for name in handler.secret_fields}


def check_headers(source: str, headers: Mapping[str, str], secrets: Mapping[str, str] | None, *, now: float) -> None:
    """Raise SignatureError when the headers alone prove the delivery cannot be valid.

    Everything `verify` checks except the digest itself: a missing secret, a missing or malformed signature header,
    a signature timestamp outside the source's replay window. It runs before the body is read, so junk without a
    signature costs neither the body's bytes nor an HMAC.
    """
    values = _secret_values(source, secrets)
    get_handler(source).check_headers(headers, values, now)


def verify(source: str, headers: Mapping[str, str], body: bytes, secrets: Mapping[str, str] | None, *, now: float) -> None:
    """Raise SignatureError unless `body` carries a valid signature from `source` under `secrets`."""
    values = _secret_values(source, secrets)
    get_handler(source).verify(headers, body, values, now)


def __getattr__(name: str) -> Any:
    # Each source's signing helpers (`<source>_signature`, `verify_<source>`, ...) live in its own package.
    return vendor_attribute(name)
