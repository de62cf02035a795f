"""What a vendor handler sees of a request (Call) and gives back (Reply), free of the web framework."""

from __future__ import annotations

import base64
import binascii
import json
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode

JSON_TYPE = "application/json; charset=utf-8"


@dataclass
class Call:
    vendor: str
    method: str
    endpoint: str              # path below the vendor base URL, e.g. "/api/v2/users/me.json"
    query: dict[str, str]
    body: Any                  # parsed JSON body, or None
    base_url: str              # the vendor base URL as the client addressed it
    headers: Mapping[str, str]
    # Set by the "empty_page_with_next" fault: answer a page without records that continues correctly.
    empty_page: bool = False

    def url(self, endpoint: str | None = None, **query: Any) -> str:
        """Absolute URL of `endpoint` (default: this one) with the given query (None values dropped)."""
        params = {k: v for k, v in query.items() if v is not None}
        suffix = "?" + urlencode(params) if params else ""
        return f"{self.base_url}{endpoint if endpoint is not None else self.endpoint}{suffix}"


@dataclass
class Reply:
    status: int
    body: Any = None           # JSON-able object, or bytes/str sent as is
    headers: dict[str, str] = field(default_factory=dict)
    media_type: str = JSON_TYPE

    def encode(self) -> bytes:
        if isinstance(self.body, bytes):
            return self.body
        if isinstance(self.body, str):
            return self.body.encode()
        if self.body is None:
            return b""
        try:
            return json.dumps(self.body, ensure_ascii=False, separators=(",", ":")).encode()
        except UnicodeEncodeError:
            # Text holding a lone surrogate (cut in the middle of an emoji) has no UTF-8 form; vendors send it as
            # the JSON escape "\udcff", which ASCII-only JSON writes.
            return json.dumps(self.body, ensure_ascii=True, separators=(",", ":")).encode()


class BadRequest(Exception):
    """A request the vendor would refuse with 400 (or the given status); handlers raise it, the API renders it."""

    def __init__(self, message: str, status: int = 400, code: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.status = status
        self.code = code


def request_id() -> str:
    return uuid.uuid4().hex[:20]


def encode_cursor(text: str) -> str:
    return base64.urlsafe_b64encode(text.encode()).decode().rstrip("=")


def decode_cursor(cursor: str) -> str:
    try:
        return base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
    except (binascii.Error, UnicodeDecodeError, ValueError) as error:
        raise BadRequest("invalid cursor") from error


def int_param(query: Mapping[str, str], name: str, default: int, minimum: int = 1) -> int:
    raw = query.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError as error:
        raise BadRequest(f"{name} must be an integer") from error
    if value < minimum:
        raise BadRequest(f"{name} must be at least {minimum}")
    return value


def parse_basic_auth(header: str | None) -> tuple[str, str] | None:
    if not header or not header.lower().startswith("basic "):
        return None
    try:
        decoded = base64.b64decode(header[6:].strip(), validate=True).decode()
    except (binascii.Error, UnicodeDecodeError, ValueError):
        return None
    user, sep, password = decoded.partition(":")
    return (user, password) if sep else None


def bearer_token(header: str | None) -> str | None:
    if not header:
        return None
    scheme, _, token = header.partition(" ")
    return token.strip() if scheme.lower() == "bearer" and token.strip() else None


class VendorApi:
    """One vendor's wire format: authentication, routing, error bodies. Subclasses fill these in."""

    vendor: str = ""

    def __init__(self, config: Any, dataset: Any, now: Callable[[], int], token_expired: Callable[[], bool]) -> None:
        self.config = config
        self.data = dataset
        self._now = now
        self._token_expired = token_expired

    def authenticate(self, call: Call) -> Reply | None:
        """None when the request may proceed, else the vendor's 401/403 reply."""
        raise NotImplementedError

    def check_bearer(self, call: Call, token: str, scopeless: frozenset[str] | set[str], whoami: str) -> Reply | None:
        """Bearer-token vendors: a wrong or expired token gets 401; a token without scopes may only ask who it is."""
        sent = bearer_token(call.headers.get("authorization"))
        if sent is None or sent not in {token, *scopeless} or (sent == token and self._token_expired()):
            return self.error(401)
        if sent in scopeless and call.endpoint != whoami:
            return self.error(403)
        return None

    def is_export(self, call: Call) -> bool:
        return False

    def handle(self, call: Call) -> Reply:
        raise NotImplementedError

    def error(self, status: int, message: str | None = None, code: str | None = None) -> Reply:
        raise NotImplementedError

    def rate_limited(self, headers: dict[str, str], reason: str | None = None) -> Reply:
        reply = self.error(429, reason)
        reply.headers.update(headers)
        return reply

    def handle_safely(self, call: Call) -> Reply:
        try:
            return self.handle(call)
        except BadRequest as bad:
            return self.error(bad.status, bad.message, bad.code)
