"""What a verified delivery means: which event it is, the record it carries, and what must still be fetched.

Each source's `WebhookHandler.interpret` builds records with the same mappers the sync uses, so a record looks the
same whichever way it arrived. Some events cannot make a complete record on their own (ids only, a missing text,
no customer details): the interpretation then queues a fetch of the full record, which lands a moment later. The
helpers here are the part every interpreter shares: JSON parsing, id cleaning, verdicts.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from ..models import MappingError, NormalizedRecord, Removal, clean_text
from ..rules import Rules
from .events import FetchJob
from .handler import get_handler, vendor_attribute

# Ids from a payload end up in API paths: anything else (slashes, dots-only, spaces) is refused.
_SAFE_ID = re.compile(r"^[A-Za-z0-9_:-][A-Za-z0-9_.:-]{0,127}$")
MAX_EVENT_ID_LENGTH = 200


class MalformedEvent(ValueError):
    """An authentic delivery that is not a vendor event at all (not JSON, not an object, no event id): 400."""


@dataclass(frozen=True)
class MappingContext:
    rules: Rules
    # Sources whose full records the receiver can fetch (their API credentials are configured).
    fetchable: frozenset[str] = frozenset()
    # Per source, the settings its interpreter reads (its handler's `context_fields`), e.g. an account address.
    settings: Mapping[str, Mapping[str, str]] = field(default_factory=dict)

    def setting(self, source: str, name: str) -> str | None:
        return (self.settings.get(source) or {}).get(name) or None


@dataclass
class Interpretation:
    event_id: str
    event_type: str | None
    verdict: str  # "stored", "queued", "ignored", "removed" or "unmappable"
    detail: str = ""
    records: list[NormalizedRecord] = field(default_factory=list)
    fetches: list[FetchJob] = field(default_factory=list)
    record_id: str | None = None
    removals: list[Removal] = field(default_factory=list)
    # Records that complete what is stored (a delivery that carries only part of a record): called on the store
    # thread, right before the write, with the store and `records`; returns what to write.
    combine: Callable[[Any, list[NormalizedRecord]], list[NormalizedRecord]] | None = None


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def parse_json(body: bytes) -> dict[str, Any]:
    """The delivery as a JSON object; MalformedEvent for anything else."""
    try:
        # Bytes that are not UTF-8 inside a string become U+FFFD (the record is kept); lone surrogates ("\udcff")
        # are cleaned where the text is used (ids here, records in NormalizedRecord, the log in events.py).
        payload = json.loads(body.decode("utf-8", errors="replace"), parse_constant=_reject_constant)
    except (ValueError, RecursionError):
        raise MalformedEvent("body is not valid JSON") from None
    if not isinstance(payload, dict):
        raise MalformedEvent("body is not a JSON object")
    return payload


def text_of(value: Any) -> str | None:
    """Non-blank text, cleaned; None for anything else."""
    if isinstance(value, str) and value.strip():
        return clean_text(value.strip())
    return None


def id_text(value: Any) -> str | None:
    """An id given as a number or as text; None for booleans and blanks."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return str(value)
    return text_of(value)


def safe_id(value: Any) -> str | None:
    """An id that may go into an API path; None when it could not."""
    text = id_text(value)
    return text if text is not None and _SAFE_ID.match(text) else None


def event_id_of(value: Any) -> str:
    """The event id to deduplicate on; MalformedEvent when there is none (or an absurdly long one)."""
    text = id_text(value)
    if text is None:
        raise MalformedEvent("no event id")
    if len(text) > MAX_EVENT_ID_LENGTH:
        raise MalformedEvent("event id too long")
    return text


def dict_of(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def mapping_failure(error: Exception) -> str:
    """What to log about a mapper that failed on an authentic payload."""
    # MappingError text names the record and the problem; anything else only by type (it may quote the payload).
    return str(error)[:200] if isinstance(error, MappingError) else f"mapper failed ({type(error).__name__})"


def verdict_of(result: Interpretation) -> str:
    if result.removals:
        return "removed"
    if result.records:
        return "stored"
    if result.fetches:
        return "queued"
    return "unmappable"


def interpret(source: str, payload: dict[str, Any], context: MappingContext) -> Interpretation:
    """Classify a verified delivery. MalformedEvent when it has no event id to deduplicate on."""
    return get_handler(source).interpret(payload, context)


def __getattr__(name: str) -> Any:
    # Each source's event vocabulary (`<SOURCE>_REMOVAL_EVENTS`, ...) lives in its own package.
    return vendor_attribute(name)
