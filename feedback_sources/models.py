"""The normalized record every source maps into, and its small vocabularies."""

from __future__ import annotations

from datetime import datetime, timezone
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator


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
        super().__init__(f"{source}: {message}")
        self.source = source


def to_utc(value: datetime) -> datetime:
    if value.tzinfo is None:
        raise ValueError("timestamp must carry a timezone")
    return value.astimezone(timezone.utc)


class RemovalReason(StrEnum):
    deleted = "deleted"
    spam = "spam"
    disqualified = "disqualified"


class Removal(BaseModel):
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


class NormalizedRecord(BaseModel):
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
