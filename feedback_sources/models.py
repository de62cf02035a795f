"""The normalized record every source maps into, and its small vocabularies."""

from __future__ import annotations

import re
from datetime import datetime, timezone
from enum import StrEnum
from typing import Any

import orjson
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

REPLACEMENT = "\ufffd"
# A lone UTF-16 surrogate ("\udcff" in JSON text: what a text cut in the middle of an emoji becomes) is legal JSON but
# cannot be encoded as UTF-8, so SQLite refuses it; a NUL ends a C string, so FTS5, length() and spreadsheets would cut
# the text there. Both become U+FFFD: visible, searchable around, and nothing after it is lost.
_UNSTORABLE = re.compile("[\x00\ud800-\udfff]")


def clean_text(value: str) -> str:
    """`value` with every lone surrogate and NUL replaced by U+FFFD (the same string when there is none)."""
    if "\x00" not in value:
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            pass
        else:
            return value  # the common case: one C-speed pass, no copy
    return _UNSTORABLE.sub(REPLACEMENT, value)


def clean_value(value: Any) -> Any:
    """clean_text applied to every string inside `value` (dict keys and values, list and tuple items), recursively.

    A value with nothing to clean (nearly every one) is returned as it is after one C-speed check: orjson refuses a
    lone surrogate and writes a NUL as `\\u0000`, so a clean encoding without that escape proves there is nothing to
    replace. Walking a survey response's answers in Python instead cost more than mapping it."""
    if isinstance(value, dict | list | tuple):
        try:
            encoded = orjson.dumps(value)
        except (TypeError, orjson.JSONEncodeError):  # a surrogate, a non-string key, a type orjson does not know
            pass
        else:
            if b"\\u0000" not in encoded:
                return value
    return _clean_walk(value)


def _clean_walk(value: Any) -> Any:
    if isinstance(value, str):
        return clean_text(value)
    if isinstance(value, dict):
        return {_clean_walk(key): _clean_walk(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return type(value)(_clean_walk(item) for item in value)
    return value


MAX_ERROR_MESSAGE = 300


class Tier(StrEnum):
    enterprise = "enterprise"
    business = "business"
    professional = "professional"
    free = "free"


class Category(StrEnum):
    bug_report = "bug_report"
    feature_request = "feature_request"
    support = "support"
    question = "question"
    praise = "praise"
    complaint = "complaint"
    other = "other"


class MappingError(ValueError):
    """A vendor payload that cannot become a record (for example, it has no id)."""

    def __init__(self, source: str, message: str):
        # The message may quote a vendor value (an id a megabyte long, a lone surrogate): keep logs short and storable.
        if len(message) > MAX_ERROR_MESSAGE:
            message = message[:MAX_ERROR_MESSAGE] + "… [truncated]"
        super().__init__(f"{source}: {clean_text(message)}")
        self.source = source


def to_utc(value: datetime) -> datetime:
    if value.tzinfo is None:
        raise ValueError("timestamp must carry a timezone")
    return value.astimezone(timezone.utc)


class RemovalReason(StrEnum):
    deleted = "deleted"
    spam = "spam"
    disqualified = "disqualified"


class StorableModel(BaseModel):
    """What a source hands the store (records, removals): every string cleaned by clean_text on the way in."""

    @model_validator(mode="before")
    @classmethod
    def _storable_text(cls, data: Any) -> Any:
        # Every source, the webhook receiver and the fetch worker build records here: cleaning at this one boundary
        # keeps a hostile character in any field (metadata included, at any depth) from failing the page it is on.
        return clean_value(data) if isinstance(data, dict) else data


class Removal(StorableModel):
    """The vendor removed a record: a deleted or spam ticket, a deleted conversation, a deleted or disqualified
    survey response. The store drops the record, its index entries and its overrides, and keeps a tombstone so a
    late redelivery or a replayed older version (updated at or before `removed_at`) never brings the text back."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    source: str = Field(min_length=1)
    source_id: str = Field(min_length=1)
    reason: RemovalReason = RemovalReason.deleted
    removed_at: datetime

    @field_validator("removed_at")
    @classmethod
    def _aware_utc(cls, value: datetime) -> datetime:
        return to_utc(value)


class NormalizedRecord(StorableModel):
    """One piece of customer feedback, whatever system it came from."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    source: str = Field(min_length=1)
    source_id: str = Field(min_length=1)
    title: str | None = None
    content: str = ""
    customer_id: str | None = None
    customer_email: str | None = None
    customer_name: str | None = None
    customer_tier: Tier | None = None
    category: Category = Category.other
    created_at: datetime
    metadata: dict[str, Any] = Field(default_factory=dict)

    @field_validator("created_at")
    @classmethod
    def _aware_utc(cls, value: datetime) -> datetime:
        return to_utc(value)

    @property
    def updated_at(self) -> datetime:
        """When the vendor last changed the record; falls back to creation time."""
        raw = self.metadata.get("updated_at")
        if isinstance(raw, str):
            try:
                return to_utc(datetime.fromisoformat(raw))
            except ValueError:
                pass
        return self.created_at
