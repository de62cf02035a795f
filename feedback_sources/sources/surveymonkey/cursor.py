"""Where a SurveyMonkey sync stands, stored as the same dict as before the cursor base existed:
`{"modified_after", "created_start", "created_end", "surveys", "survey_id", "page", "high_water",
"pass_started_at"}`, dates as ISO 8601 strings."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime, timedelta
from typing import Any, ClassVar, Self

from pydantic import Field, field_serializer, field_validator, model_validator

from ...integrations.base import parse_iso
from ...integrations.cursor import VendorCursor

# Our clock and SurveyMonkey's may disagree; the next incremental sync re-reads this much before the run started.
CLOCK_SKEW_ALLOWANCE = timedelta(minutes=5)
# The API's date filters take whole seconds; stepping back one makes the saved lower bound inclusive.
BOUNDARY_OVERLAP = timedelta(seconds=1)

_DATES = ("modified_after", "created_start", "created_end", "high_water", "pass_started_at")


class SyncCursor(VendorCursor):
    """Where a sync stands. A pass walks every survey's responses; between passes only `modified_after` is set.

    - `modified_after`: responses changed at or after this (UTC) are fetched (`start_modified_at`).
    - `created_start`/`created_end`: the created-at window sent to the API for the pass in progress; page numbers
      only mean something under the same filters, so a resumed pass keeps them.
    - `survey_id`/`page`: the next page to fetch; `surveys`: the survey ids still to visit after it.
    - `high_water`: the latest `date_modified` seen in this pass; `pass_started_at`: our clock when it began.
    """

    source: ClassVar[str] = "surveymonkey"
    vendor: ClassVar[str] = "SurveyMonkey"

    modified_after: datetime | None = None
    created_start: datetime | None = None
    created_end: datetime | None = None
    surveys: tuple[str, ...] = ()
    survey_id: str | None = Field(default=None, min_length=1, strict=True)
    page: int | None = Field(default=None, ge=1, strict=True)
    high_water: datetime | None = None
    pass_started_at: datetime | None = None

    @field_validator(*_DATES, mode="before")
    @classmethod
    def _iso_date(cls, value: Any) -> datetime | None:
        if value is None or isinstance(value, datetime):
            return value
        moment = parse_iso(value) if isinstance(value, str) else None
        if moment is None:
            raise ValueError("not an ISO 8601 date")
        return moment

    @field_validator("surveys", mode="before")
    @classmethod
    def _survey_ids(cls, value: Any) -> tuple[str, ...]:
        value = value or []
        if not isinstance(value, list | tuple) or not all(isinstance(s, str) and s for s in value):
            raise ValueError("must be a list of survey ids")
        return tuple(value)

    @model_validator(mode="after")
    def _current_survey(self) -> Self:
        if self.survey_id is None and (self.surveys or self.page is not None):
            raise ValueError("surveys are pending but no current survey is named")
        if self.survey_id is not None and self.page is None:
            raise ValueError("`page` is missing for the current survey")
        return self

    @field_serializer(*_DATES)
    def _iso(self, moment: datetime | None) -> str | None:
        return moment.isoformat() if moment is not None else None

    @property
    def in_pass(self) -> bool:
        return self.survey_id is not None

    @classmethod
    def parse(cls, cursor: Any) -> SyncCursor:
        return cls() if cursor is None else cls.load(cursor)

    def to_json(self) -> dict[str, Any]:
        return self.dump()

    def seen(self, moments: Iterable[datetime]) -> SyncCursor:
        latest = max(moments, default=None)
        if latest is None or (self.high_water is not None and latest <= self.high_water):
            return self
        return self.model_copy(update={"high_water": latest})

    def at_page(self, page: int) -> SyncCursor:
        return self.model_copy(update={"page": page})

    def next_survey(self) -> SyncCursor:
        if self.surveys:
            return self.model_copy(update={"survey_id": self.surveys[0], "surveys": self.surveys[1:], "page": 1})
        return self.finished()

    def finished(self) -> SyncCursor:
        """The pass is done: the next sync asks for what changed since, overlapping the boundary by a second.

        The saved point is capped at the pass's start (less the clock allowance): a response answered in a survey
        already visited would otherwise hide behind a later `date_modified` seen in another survey.
        """
        watermark = self.modified_after
        if self.high_water is not None:
            ceiling = self.high_water
            if self.pass_started_at is not None:
                ceiling = min(ceiling, self.pass_started_at - CLOCK_SKEW_ALLOWANCE)
            candidate = (ceiling - BOUNDARY_OVERLAP).replace(microsecond=0)
            watermark = candidate if watermark is None else max(watermark, candidate)
        return SyncCursor(modified_after=watermark)
