"""Queued faults that the next matching requests run into."""

from __future__ import annotations

import copy
import json
import re
import threading
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from .vendor import vendor_names

FAULT_KINDS = frozenset({
    "retry_after_seconds",   # 429 with Retry-After: opts["seconds"] (default 1)
    "retry_after_date",      # 429 with Retry-After as an HTTP date opts["seconds"] (default 1) from now
    "timeout",               # waits opts["seconds"] (default 30) before answering normally
    "malformed",             # 200 whose body is not valid JSON
    "truncated",             # 200 with the real JSON body cut in half
    "reset",                 # connection dropped without a response (opts["mode"]: "rst" default, or "close")
    "empty_page_with_next",  # a page without records whose next link/cursor continues where this one started
    "repeat_page",           # the body of the previous successful response to the same endpoint, again
    "expire_token",          # the vendor's token stops working from this request on (401)
    "hostile_text",          # 200 with text appended to chosen strings of the real answer: opts["paths"], a list of
                             # paths into the JSON body (("tickets", 0, "subject"), ...); opts["text"] (a str: a lone
                             # surrogate is sent as the JSON escape "\\udcff", NUL as "\\u0000") or opts["raw"]
                             # (bytes put inside the JSON string as they are, e.g. b"\\xff" that is not UTF-8)
})

# Stands for opts["raw"] while the answer is encoded as JSON; then the bytes replace it.
_RAW_MARKER = "\u2063hostile-raw\u2063"


def string_paths(node: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """The path of every string value inside a JSON value, in document order (dict keys, list indexes)."""
    if isinstance(node, str):
        return [prefix]
    if isinstance(node, dict):
        return [path for key, value in node.items() for path in string_paths(value, (*prefix, key))]
    if isinstance(node, list):
        return [path for index, value in enumerate(node) for path in string_paths(value, (*prefix, index))]
    return []


def hostile_body(body: Any, opts: dict[str, Any]) -> bytes:
    """The JSON answer `body` with opts["text"] (or the raw bytes opts["raw"]) appended to each string at
    opts["paths"]; a path that does not lead to a string in this answer is left alone."""
    raw: bytes | None = opts.get("raw")
    text = _RAW_MARKER if raw is not None else str(opts.get("text", "\udcff"))
    poisoned = copy.deepcopy(body)
    paths: Sequence[Sequence[Any]] = opts.get("paths", ())
    for path in paths:
        parent: Any = poisoned
        try:
            for step in path[:-1]:
                parent = parent[step]
            if isinstance(parent[path[-1]], str):
                parent[path[-1]] = parent[path[-1]] + text
        except (KeyError, IndexError, TypeError):
            continue
    # ensure_ascii: a lone surrogate goes out as the JSON escape a vendor's serializer writes, not as bytes.
    encoded = json.dumps(poisoned, ensure_ascii=True, separators=(",", ":")).encode()
    if raw is not None:
        encoded = encoded.replace(json.dumps(_RAW_MARKER)[1:-1].encode(), raw)
    return encoded


@dataclass
class Fault:
    vendor: str
    pattern: re.Pattern[str]
    kind: int | str
    times: int | None
    opts: dict[str, Any]
    method: str | None = None
    hits: int = 0

    @property
    def remaining(self) -> int | None:
        return None if self.times is None else max(0, self.times - self.hits)

    @property
    def exhausted(self) -> bool:
        return self.times is not None and self.hits >= self.times

    def matches(self, vendor: str, method: str, endpoint: str, path: str) -> bool:
        if vendor != self.vendor or self.exhausted:
            return False
        if self.method is not None and method.upper() != self.method:
            return False
        return bool(self.pattern.search(endpoint) or self.pattern.search(path))


@dataclass
class FaultQueue:
    _faults: list[Fault] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def inject(self, vendor: str, path_regex: str, kind: int | str, times: int | None = 1,
               method: str | None = None, **opts: Any) -> Fault:
        """Make the next `times` requests (None: all) whose path matches `path_regex` fail with `kind`.

        The regex is searched in the path below the vendor's base URL (e.g. "/api/v2/incremental/tickets/
        cursor.json", "/conversations/search", "/surveys/123/responses/bulk") and in the full request path.
        `kind` is an HTTP status (answered with the vendor's own error body) or one of FAULT_KINDS.
        """
        vendors = vendor_names()
        if vendor not in vendors:
            raise ValueError(f"unknown vendor {vendor!r}; expected one of {vendors}")
        if isinstance(kind, bool) or not (isinstance(kind, int) and 100 <= kind <= 599 or kind in FAULT_KINDS):
            raise ValueError(f"unknown fault kind {kind!r}")
        if times is not None and times < 1:
            raise ValueError("times must be at least 1, or None for every matching request")
        fault = Fault(vendor, re.compile(path_regex), kind, times, dict(opts),
                      method.upper() if method else None)
        with self._lock:
            self._faults.append(fault)
        return fault

    def take(self, vendor: str, method: str, endpoint: str, path: str) -> Fault | None:
        """The first queued fault that matches this request, counted as used."""
        with self._lock:
            for fault in self._faults:
                if fault.matches(vendor, method, endpoint, path):
                    fault.hits += 1
                    return fault
        return None

    def pending(self) -> list[Fault]:
        with self._lock:
            return [fault for fault in self._faults if not fault.exhausted]

    def clear(self, vendor: str | None = None) -> None:
        with self._lock:
            self._faults = [f for f in self._faults if vendor is not None and f.vendor != vendor]
