"""Error descriptions as a table: a vendor declares rows (status, vendor error code → kind, message, hint).

`HttpClient` asks a describer for the typed error a refused response stands for. Instead of an if/else chain per
vendor, a vendor writes `ErrorTable(rows=[ErrorRow(...), ...])`: the first row that matches the response wins.
A row matches on the HTTP status (one, several or a range), on the vendor's own error code, and on any predicate of
the `ErrorContext` (e.g. "the body is not JSON": an unknown account subdomain answers with a web page).
Messages are templates or functions of the context; `{detail}` is where what the vendor said goes, worded by the
table's `detail` template and cut short, with the secrets the table was given redacted.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Collection, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import httpx

from .http import ErrorKind, SourceError

__all__ = ["ErrorContext", "ErrorRow", "ErrorTable", "check_webhook_url", "json_body", "redact", "vendor_message"]

MESSAGE_LIMIT = 300


def json_body(response: httpx.Response) -> tuple[bool, Any]:
    """(whether the body is JSON, the decoded body or None)."""
    try:
        return True, response.json()
    except (json.JSONDecodeError, UnicodeDecodeError):
        return False, None


def _values_at(body: Any, path: str) -> list[Any]:
    """The values at a dotted path. `[]` after a key walks every item of that list (up to three); `a|b` takes
    both keys of each object in turn (`errors[].title|detail`: each error's title, then its detail)."""
    values = [body]
    for step in path.split("."):
        many = step.endswith("[]")
        keys = step.removesuffix("[]").split("|")
        found = []
        for value in values:
            for key in keys:
                item = value.get(key) if isinstance(value, dict) else None
                if many:
                    found.extend(item[:3] if isinstance(item, list) else [])
                else:
                    found.append(item)
        values = found
    return values


def vendor_message(body: Any, paths: Sequence[str], *, limit: int = MESSAGE_LIMIT) -> str:
    """What the vendor said, from the strings at `paths` in its error body, deduplicated and joined by ": "."""
    texts = [
        value.strip()
        for path in paths
        for value in _values_at(body, path)
        if isinstance(value, str) and value.strip()
    ]
    return ": ".join(dict.fromkeys(texts))[:limit]


def redact(text: str, secrets: Iterable[str]) -> str:
    """`text` with every non-empty secret replaced: a vendor may echo a token back in its error message."""
    for secret in secrets:
        if secret:
            text = text.replace(secret, "[redacted]")
    return text


@dataclass(frozen=True)
class ErrorContext:
    """What a row can look at: the response, its JSON body (None when it is not JSON), the vendor's error code (the
    first one when the body lists several; `codes` has them all) and what the vendor said (cut and redacted)."""

    response: httpx.Response
    status: int
    is_json: bool
    body: Any
    code: str | None
    said: str
    codes: tuple[str, ...] = ()


Message = str | Callable[[ErrorContext], str]


@dataclass(frozen=True)
class ErrorRow:
    """One case: matches when every given condition holds. `status` is a status, a collection of them or a range;
    `codes` are vendor error codes; `when` any predicate. `message` and `hint` may use `{detail}`."""

    kind: ErrorKind
    message: Message
    hint: Message = ""
    status: int | Collection[int] | None = None
    codes: Collection[str] | None = None
    when: Callable[[ErrorContext], bool] | None = None

    def matches(self, context: ErrorContext) -> bool:
        if self.status is not None:
            if isinstance(self.status, int):
                if context.status != self.status:
                    return False
            elif context.status not in self.status:
                return False
        if self.codes is not None and not any(code in self.codes for code in context.codes):
            return False
        return self.when is None or self.when(context)


def _render(message: Message, context: ErrorContext, detail: str) -> str:
    text = message(context) if callable(message) else message
    return text.replace("{detail}", detail)


CLIENT_ERRORS = range(400, 500)
SERVER_ERRORS = range(500, 600)


@dataclass(frozen=True)
class ErrorTable:
    """A vendor's error rows and how to read its error body.

    - `message_paths`: where the vendor's human message is (`vendor_message`); `code_path`: its error code.
    - `detail`: how `{detail}` reads when the vendor said something, e.g. " (the vendor said: {said})".
    - `secrets`: redacted from the vendor's words (a vendor may echo the token back).
    """

    rows: Sequence[ErrorRow]
    message_paths: Sequence[str] = ()
    code_path: str | None = None
    detail: str = " ({said})"
    secrets: Sequence[str] = field(default_factory=tuple)
    source: str = ""  # set on the errors described; the client fills in its own when this is empty

    def context(self, response: httpx.Response, secrets: Iterable[str] = ()) -> ErrorContext:
        is_json, body = json_body(response)
        codes: list[str] = []
        for raw in _values_at(body, self.code_path) if self.code_path is not None else []:
            code = str(raw).strip() if isinstance(raw, str | int) and not isinstance(raw, bool) else ""
            if code:
                codes.append(code)
        said = redact(vendor_message(body, self.message_paths), (*self.secrets, *secrets))
        return ErrorContext(response, response.status_code, is_json, body, codes[0] if codes else None, said,
                            tuple(codes))

    def describe(self, response: httpx.Response, *, secrets: Iterable[str] = ()) -> SourceError | None:
        """The first matching row as a SourceError; None when no row matches (the client's generic wording)."""
        context = self.context(response, secrets)
        for row in self.rows:
            if row.matches(context):
                detail = self.detail.replace("{said}", context.said) if context.said else ""
                return SourceError(
                    row.kind,
                    _render(row.message, context, detail),
                    status=context.status,
                    hint=_render(row.hint, context, detail),
                    source=self.source,
                )
        return None

    def extended(self, *rows: ErrorRow) -> ErrorTable:
        """The same table with `rows` tried first (an API that words some refusals its own way)."""
        return ErrorTable([*rows, *self.rows], self.message_paths, self.code_path, self.detail, self.secrets,
                          self.source)

    def __call__(self, response: httpx.Response) -> SourceError | None:
        return self.describe(response)


def check_webhook_url(url: Any, *, source: str, vendor: str) -> None:
    """Refuse, before any request, an address a vendor could never post to: not text, not http(s), no host, or not a
    URL at all. The hint names the receiver's route for `source`."""
    try:
        parsed = httpx.URL(url) if isinstance(url, str) else None
    except httpx.InvalidURL:
        parsed = None
    if parsed is None or parsed.scheme not in ("http", "https") or not parsed.host:
        raise SourceError(
            ErrorKind.config,
            f"{url!r} is not a web address {vendor} can post to",
            source=source,
            hint=f"Give the receiver's full public address, e.g. https://feedback-hooks.example.com/webhooks/{source}.",
        )
