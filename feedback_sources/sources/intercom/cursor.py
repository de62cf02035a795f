"""Where an Intercom sync stands, as stored since the start:
`{"updated_after": int, "updated_before": int | None, "starting_after": str | None, "high_water": int}`."""

from __future__ import annotations

from typing import Any, ClassVar

from pydantic import Field, model_validator

from ...integrations.cursor import VendorCursor


class SearchCursor(VendorCursor):
    """The `updated_at` window of the search (unix seconds), Intercom's page cursor in it, and the newest change seen.

    Mid-run cursors repeat the run's window and page cursor, so a resumed run asks the same question; the last
    page's cursor has no upper bound or page cursor and starts one second below `high_water`.
    """

    source: ClassVar[str] = "intercom"
    vendor: ClassVar[str] = "Intercom"
    invalid_message: ClassVar[str] = (
        "the saved {vendor} sync position is not valid ({reason}); reset the Intercom sync state to start over"
    )

    updated_after: int = Field(ge=0, strict=True)
    updated_before: int | None = Field(ge=0, strict=True)
    starting_after: str | None = Field(min_length=1, strict=True)
    high_water: int = Field(ge=0, strict=True)

    def __init__(self, *position: Any, **data: Any) -> None:
        """`SearchCursor(updated_after, updated_before, starting_after, high_water)` as well as by keyword."""
        names = ("updated_after", "updated_before", "starting_after", "high_water")
        super().__init__(**dict(zip(names, position, strict=False)), **data)

    @model_validator(mode="after")
    def _page_cursor_needs_a_window(self) -> SearchCursor:
        if self.starting_after is not None and self.updated_before is None:
            raise ValueError("`starting_after` belongs to a query with an upper bound")
        return self

    def as_dict(self) -> dict[str, Any]:
        return self.dump()

    @classmethod
    def parse(cls, cursor: Any) -> SearchCursor:
        return cls.load(cursor)
