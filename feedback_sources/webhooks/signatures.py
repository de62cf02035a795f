"""Each vendor's webhook signature, computed over the exact bytes received and compared in constant time.

- Zendesk: `X-Zendesk-Webhook-Signature` = base64(HMAC-SHA256(key=signing secret, msg=timestamp + body)), where the
  timestamp is the `X-Zendesk-Webhook-Signature-Timestamp` header concatenated exactly as sent (no separator).
  The timestamp is also checked against the clock (±5 minutes) so a captured delivery cannot be replayed later.
- Intercom: `X-Hub-Signature` = "sha1=" + hex(HMAC-SHA1(key=app client secret, msg=body)). Intercom may deliver
  hours late, so there is no freshness window; redeliveries are deduplicated by event id instead.
- SurveyMonkey: `Sm-Signature` = base64(HMAC-SHA1(key=client_id + "&" + client_secret, msg=body)). The key is built
  from our own configured client id, never from the `Sm-Apikey` header a caller controls.

A signature over re-serialized JSON never matches: verification needs the raw body, before any parsing.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
from collections.abc import Callable, Mapping
from datetime import datetime, timezone

ZENDESK_SIGNATURE_HEADER = "X-Zendesk-Webhook-Signature"
ZENDESK_TIMESTAMP_HEADER = "X-Zendesk-Webhook-Signature-Timestamp"
INTERCOM_SIGNATURE_HEADER = "X-Hub-Signature"
SURVEYMONKEY_SIGNATURE_HEADER = "Sm-Signature"
SURVEYMONKEY_APIKEY_HEADER = "Sm-Apikey"

ZENDESK_TOLERANCE_SECONDS = 300.0

# The credential fields each source's signature needs; all of them must be set or the source fails closed.
SECRET_FIELDS: dict[str, tuple[str, ...]] = {
    "zendesk": ("webhook_secret",),
    "intercom": ("client_secret",),
    "surveymonkey": ("client_id", "client_secret"),
}

# Where a user sets each of those fields (for start-up messages).
SECRET_ENV_VARS: dict[str, tuple[str, ...]] = {
    "zendesk": ("ZENDESK_WEBHOOK_SECRET",),
    "intercom": ("INTERCOM_CLIENT_SECRET",),
    "surveymonkey": ("SURVEYMONKEY_CLIENT_ID", "SURVEYMONKEY_CLIENT_SECRET"),
}

_UNIX_SECONDS = re.compile(r"^\d{1,12}(?:\.\d{1,9})?$")


class SignatureError(Exception):
    """A delivery that must be refused (401). The message names the check that failed, never a secret."""


# -- computing ---------------------------------------------------------------------------------------------------


def zendesk_signature(secret: str, timestamp: str, body: bytes) -> str:
    digest = hmac.new(secret.encode("utf-8"), timestamp.encode("utf-8") + body, hashlib.sha256).digest()
    return base64.b64encode(digest).decode("ascii")


def intercom_signature(client_secret: str, body: bytes) -> str:
    return "sha1=" + hmac.new(client_secret.encode("utf-8"), body, hashlib.sha1).hexdigest()


def surveymonkey_signature(client_id: str, client_secret: str, body: bytes) -> str:
    key = f"{client_id}&{client_secret}".encode("utf-8")
    return base64.b64encode(hmac.new(key, body, hashlib.sha1).digest()).decode("ascii")


# -- verifying ---------------------------------------------------------------------------------------------------


def _header(headers: Mapping[str, str], name: str) -> str | None:
    value = headers.get(name)
    if value is None:
        lowered = name.lower()
        value = next((v for k, v in headers.items() if k.lower() == lowered), None)
    if value is None or not value.strip():
        return None
    return value.strip()


def _same(expected: str, received: str) -> bool:
    # Header values arrive as latin-1 text; comparing bytes keeps compare_digest away from non-ASCII str errors.
    return hmac.compare_digest(expected.encode("latin-1"), received.encode("latin-1", errors="replace"))


def parse_zendesk_timestamp(value: str) -> float | None:
    """Seconds since the epoch from an ISO 8601 time (Zendesk's form) or from unix seconds; None if unreadable."""
    text = value.strip()
    if _UNIX_SECONDS.match(text):
        return float(text)
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError:
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    return moment.timestamp()


def _zendesk_headers(headers: Mapping[str, str], *, now: float, tolerance: float) -> tuple[str, str]:
    """The signature and timestamp headers, refused when missing, unreadable or outside the replay window."""
    signature = _header(headers, ZENDESK_SIGNATURE_HEADER)
    timestamp = _header(headers, ZENDESK_TIMESTAMP_HEADER)
    if signature is None:
        raise SignatureError(f"missing {ZENDESK_SIGNATURE_HEADER}")
    if timestamp is None:
        raise SignatureError(f"missing {ZENDESK_TIMESTAMP_HEADER}")
    sent_at = parse_zendesk_timestamp(timestamp)
    if sent_at is None:
        raise SignatureError("unreadable signature timestamp")
    if abs(now - sent_at) > tolerance:
        raise SignatureError("signature timestamp outside the replay window")
    return signature, timestamp


def verify_zendesk(
    headers: Mapping[str, str],
    body: bytes,
    secret: str,
    *,
    now: float,
    tolerance: float = ZENDESK_TOLERANCE_SECONDS,
) -> None:
    signature, timestamp = _zendesk_headers(headers, now=now, tolerance=tolerance)
    if not _same(zendesk_signature(secret, timestamp, body), signature):
        raise SignatureError("signature mismatch")


def _intercom_digest(headers: Mapping[str, str]) -> str:
    signature = _header(headers, INTERCOM_SIGNATURE_HEADER)
    if signature is None:
        raise SignatureError(f"missing {INTERCOM_SIGNATURE_HEADER}")
    scheme, _, digest = signature.partition("=")
    if scheme.strip().lower() != "sha1" or not digest:
        raise SignatureError("signature is not sha1=<hex>")
    # Hex is case-insensitive; Intercom sends lower case.
    return digest.strip().lower()


def verify_intercom(headers: Mapping[str, str], body: bytes, client_secret: str) -> None:
    digest = _intercom_digest(headers)
    if not _same(intercom_signature(client_secret, body), "sha1=" + digest):
        raise SignatureError("signature mismatch")


def _surveymonkey_header(headers: Mapping[str, str]) -> str:
    signature = _header(headers, SURVEYMONKEY_SIGNATURE_HEADER)
    if signature is None:
        raise SignatureError(f"missing {SURVEYMONKEY_SIGNATURE_HEADER}")
    return signature


def verify_surveymonkey(headers: Mapping[str, str], body: bytes, client_id: str, client_secret: str) -> None:
    signature = _surveymonkey_header(headers)
    if not _same(surveymonkey_signature(client_id, client_secret, body), signature):
        raise SignatureError("signature mismatch")


def missing_secret_fields(source: str, secrets: Mapping[str, str] | None) -> list[str]:
    """The signing fields a source lacks; a source with any missing rejects every delivery."""
    values = secrets or {}
    return [name for name in SECRET_FIELDS[source] if not str(values.get(name) or "").strip()]


def _secret_values(source: str, secrets: Mapping[str, str] | None) -> dict[str, str]:
    if source not in SECRET_FIELDS:
        raise SignatureError(f"unknown source {source!r}")
    missing = missing_secret_fields(source, secrets)
    if missing:
        raise SignatureError(f"no {' and '.join(missing)} configured")
    assert secrets is not None
    return {name: str(secrets[name]).strip() for name in SECRET_FIELDS[source]}


def check_headers(
    source: str, headers: Mapping[str, str], secrets: Mapping[str, str] | None, *, now: float
) -> None:
    """Raise SignatureError when the headers alone prove the delivery cannot be valid.

    Everything `verify` checks except the digest itself: a missing secret, a missing or malformed signature header,
    a Zendesk timestamp outside the replay window. It runs before the body is read, so junk without a signature
    costs neither the body's bytes nor an HMAC.
    """
    _secret_values(source, secrets)
    if source == "zendesk":
        _zendesk_headers(headers, now=now, tolerance=ZENDESK_TOLERANCE_SECONDS)
    elif source == "intercom":
        _intercom_digest(headers)
    else:
        _surveymonkey_header(headers)


def verify(source: str, headers: Mapping[str, str], body: bytes, secrets: Mapping[str, str] | None, *, now: float) -> None:
    """Raise SignatureError unless `body` carries a valid signature from `source` under `secrets`."""
    values = _secret_values(source, secrets)
    checks: dict[str, Callable[[], None]] = {
        "zendesk": lambda: verify_zendesk(headers, body, values["webhook_secret"], now=now),
        "intercom": lambda: verify_intercom(headers, body, values["client_secret"]),
        "surveymonkey": lambda: verify_surveymonkey(headers, body, values["client_id"], values["client_secret"]),
    }
    checks[source]()
