"""Logging that never shows a credential, even at DEBUG with httpx and httpcore talking.

The redacting filter sits on the handler rather than on a logger: logger filters only see records logged
directly on that logger, while a handler filter sees every record that reaches it, including those propagated up
from third-party loggers such as httpx and httpcore.
"""

from __future__ import annotations

import base64
import json
import logging
import re
import sys
import threading
import time
from collections.abc import Callable, Iterable
from typing import TextIO
from urllib.parse import quote, quote_plus

REDACTED = "***"

SecretSource = Callable[[], Iterable[str]]

_CREDENTIAL_NAMES = (
    r"api_token|access_token|refresh_token|id_token|client_secret|webhook_secret|signing_secret|api_key|password"
)
# "Authorization: Basic abc", "'authorization': 'Bearer abc'", "(b'Authorization', b'Basic abc')".
_AUTHORIZATION = re.compile(
    r"""(?ix)
    (\b(?:proxy-)?authorization\b["']?\s*[:=,]\s*(?:b?["'])?)   # header name and separator
    (?:(bearer|basic|token|digest)\s+)?                          # optional scheme, kept for readability
    [^\s"',;)}\]]+                                               # the credential
    """
)
_BEARER = re.compile(r"(?i)\b(bearer)\s+[A-Za-z0-9\-._~+/]{8,}=*")
# "basic" is also an ordinary word; only treat it as a scheme when base64-looking text with a digit or padding follows.
_BASIC = re.compile(r"(?i)\b(basic)\s+(?=[A-Za-z0-9+/]*[0-9=])[A-Za-z0-9+/]{8,}=*")
_QUERY_PARAM = re.compile(rf"(?i)((?:{_CREDENTIAL_NAMES})\s*=\s*)[^&\s\"',;#]+")
_JSON_FIELD = re.compile(rf"""(?i)(["'](?:{_CREDENTIAL_NAMES})["']\s*:\s*["'])[^"']*""")

_EXCEPTION_FORMATTER = logging.Formatter()


def _variants(secret: str) -> set[str]:
    """The forms a secret takes on its way into a log line: raw, URL-encoded, JSON-escaped and base64."""
    forms = {secret, quote(secret, safe=""), quote_plus(secret), json.dumps(secret)[1:-1]}
    forms.add(base64.b64encode(secret.encode()).decode("ascii"))
    return {form for form in forms if form}


class SecretRedactingFilter(logging.Filter):
    """Replaces known secrets, Authorization values and token parameters with "***" in messages and tracebacks."""

    def __init__(
        self,
        secrets: Iterable[str] | SecretSource = (),
        *,
        refresh_seconds: float = 1.0,
    ) -> None:
        super().__init__()
        self._lock = threading.Lock()
        self._static: set[str] = set()
        self._sources: list[SecretSource] = []
        self._from_sources: set[str] = set()
        self._refreshed_at = float("-inf")
        # A source such as CredentialStore.secret_values may hit the OS keyring; ask it at most this often.
        self._refresh_seconds = refresh_seconds
        self._in_refresh = threading.local()
        self._pattern_key: frozenset[str] | None = None
        self._pattern: re.Pattern[str] | None = None
        if callable(secrets):
            self.add_source(secrets)
        else:
            for secret in secrets:
                self.add_secret(secret)

    def add_secret(self, value: str | None) -> None:
        """Start redacting this value (and its encoded forms) immediately."""
        if value and value.strip():
            with self._lock:
                self._static.add(value)
                self._static.add(value.strip())

    def add_source(self, source: SecretSource) -> None:
        """Ask this callable for the current secrets, refreshed every `refresh_seconds`."""
        with self._lock:
            if source not in self._sources:
                self._sources.append(source)
            self._refreshed_at = float("-inf")

    def refresh(self) -> None:
        """Re-read the sources now (e.g. right after credentials were saved)."""
        with self._lock:
            self._refreshed_at = float("-inf")
        self._known_secrets()

    def _known_secrets(self) -> frozenset[str]:
        now = time.monotonic()
        if self._sources and now - self._refreshed_at >= self._refresh_seconds:
            # A source may log while answering (keyring backends do); those records use the previous set.
            if not getattr(self._in_refresh, "active", False):
                self._in_refresh.active = True
                try:
                    fresh: set[str] = set()
                    for source in list(self._sources):
                        try:
                            fresh.update(value for value in source() if value and value.strip())
                        except Exception:  # logging must keep working when e.g. the keyring is locked
                            fresh.update(self._from_sources)
                    with self._lock:
                        self._from_sources = fresh
                        self._refreshed_at = now
                finally:
                    self._in_refresh.active = False
        with self._lock:
            return frozenset(self._static | self._from_sources)

    def _secret_pattern(self) -> re.Pattern[str] | None:
        secrets = self._known_secrets()
        if secrets != self._pattern_key:
            forms: set[str] = set()
            for secret in secrets:
                forms |= _variants(secret)
            # Longest first so a secret that contains another is replaced whole.
            ordered = sorted(forms, key=len, reverse=True)
            self._pattern = re.compile("|".join(map(re.escape, ordered))) if ordered else None
            self._pattern_key = secrets
        return self._pattern

    def redact(self, text: str) -> str:
        pattern = self._secret_pattern()
        if pattern is not None:
            text = pattern.sub(REDACTED, text)
        text = _AUTHORIZATION.sub(_authorization_replacement, text)
        text = _BEARER.sub(rf"\1 {REDACTED}", text)
        text = _BASIC.sub(rf"\1 {REDACTED}", text)
        text = _QUERY_PARAM.sub(rf"\1{REDACTED}", text)
        return _JSON_FIELD.sub(rf"\1{REDACTED}", text)

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # a bad format string must not let the raw arguments through unredacted
            message = f"{record.msg!r} {record.args!r}"
        # Freeze the formatted message so no later handler re-formats the original arguments.
        record.msg = self.redact(message)
        record.args = None
        if record.exc_info:
            text = record.exc_text or _EXCEPTION_FORMATTER.formatException(record.exc_info)
            record.exc_text = self.redact(text)
            # Without exc_info, formatters print the cached, redacted exc_text instead of re-rendering.
            record.exc_info = None
        elif record.exc_text:
            record.exc_text = self.redact(record.exc_text)
        if record.stack_info:
            record.stack_info = self.redact(record.stack_info)
        return True


def _authorization_replacement(match: re.Match[str]) -> str:
    scheme = match.group(2)
    return f"{match.group(1)}{scheme + ' ' if scheme else ''}{REDACTED}"


_HANDLER_MARK = "_feedback_hub_redacting"
_NOISY_HTTP_LOGGERS = ("httpx", "httpcore")
LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


def configure_logging(
    debug: bool = False,
    secrets: Iterable[str] | SecretSource = (),
    *,
    stream: TextIO | None = None,
) -> SecretRedactingFilter:
    """Install (once) a redacting handler on the root logger and return its filter.

    `secrets` may be values or a callable returning them (e.g. `CredentialStore.secret_values`). In debug mode
    httpx and httpcore log every request, with credentials redacted.
    """
    root = logging.getLogger()
    handler = next((h for h in root.handlers if getattr(h, _HANDLER_MARK, False)), None)
    if handler is None:
        handler = logging.StreamHandler(stream if stream is not None else sys.stderr)
        setattr(handler, _HANDLER_MARK, True)
        handler.setFormatter(logging.Formatter(LOG_FORMAT))
        handler.addFilter(SecretRedactingFilter())
        root.addHandler(handler)
    elif stream is not None and isinstance(handler, logging.StreamHandler):
        handler.setStream(stream)
    # First in line: the filter rewrites the record in place, so handlers after it see the redacted text too.
    if root.handlers[0] is not handler:
        root.handlers.remove(handler)
        root.handlers.insert(0, handler)

    redactor = next(f for f in handler.filters if isinstance(f, SecretRedactingFilter))
    if callable(secrets):
        redactor.add_source(secrets)
    else:
        for secret in secrets:
            redactor.add_secret(secret)

    root.setLevel(logging.DEBUG if debug else logging.INFO)
    for name in _NOISY_HTTP_LOGGERS:
        # httpx logs every request at INFO; keep that for debug sessions only.
        logging.getLogger(name).setLevel(logging.DEBUG if debug else logging.WARNING)
    return redactor
