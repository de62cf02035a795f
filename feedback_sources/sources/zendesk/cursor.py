"""Where the Zendesk export resumes: `{"after_cursor": str | None, "start_time": int}`, as stored since the start."""

from __future__ import annotations

from typing import Any, ClassVar

from pydantic import ConfigDict, Field

from ...integrations.cursor import VendorCursor


class ExportPosition(VendorCursor):
    """Zendesk's opaque export cursor when we have one, else a unix start time.

    `start_time` is also a watermark (the newest ticket update seen), so a position without a cursor still
    resumes at the right time; tickets tied with it come again, which the store dedupes.
    """

    # Keys added by later versions are ignored rather than refused: both keys read here have always been there.
    model_config = ConfigDict(frozen=True, extra="ignore")

    source: ClassVar[str] = "zendesk"
    vendor: ClassVar[str] = "Zendesk"
    invalid_message: ClassVar[str] = "the saved {vendor} sync position is corrupted ({reason}); reset it to run a full sync"

    after_cursor: str | None = Field(min_length=1, strict=True)
    start_time: int = Field(ge=0, strict=True)

    def __init__(self, *position: Any, **data: Any) -> None:
        """`ExportPosition(after_cursor, start_time)` as well as by keyword (pydantic also validates through here,
        so a missing key stays missing and is refused)."""
        super().__init__(**dict(zip(("after_cursor", "start_time"), position, strict=False)), **data)

    def as_cursor(self) -> dict[str, Any]:
        return self.dump()

    @classmethod
    def from_cursor(cls, cursor: Any) -> ExportPosition:
        return cls.load(cursor)
