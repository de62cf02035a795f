"""The example source's integration: pages of notes from a list in memory, no HTTP at all."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import datetime, timedelta, timezone
from typing import Any

from feedback_sources.integrations.base import BaseIntegration, ConnectionResult, Page, in_range, utc_bound
from feedback_sources.integrations.http import HttpClient
from feedback_sources.models import NormalizedRecord

PAGE_SIZE = 2

# (id, team, days before today, author, text): recent, so the default first sync (the last 30 days) finds them.
NOTES: tuple[tuple[str, str, int, str, str], ...] = (
    ("n-1", "growth", 3, "ann@acme.example", "Export to spreadsheets keeps timing out."),
    ("n-2", "growth", 2, "bo@globex.example", "Please add a dark mode to the dashboard."),
    ("n-3", "core", 1, "cy@initech.example", "The weekly digest arrives twice."),
)


class ExampleNotesIntegration(BaseIntegration):
    name = "example_notes"
    display_name = "Example Notes"
    required_fields = ()
    optional_fields = ("team",)

    def client(self) -> HttpClient:
        raise NotImplementedError("the example source reads memory, not HTTP")

    async def _connection_probe(self, client: HttpClient) -> tuple[str, dict[str, Any]]:
        raise NotImplementedError("the example source reads memory, not HTTP")

    async def test_connection(self) -> ConnectionResult:
        notes = self._notes(None, None)
        return ConnectionResult(True, "ok", f"Connected to {self.display_name} as {self._team()}",
                                account=self._team(), details={"notes": len(notes)})

    async def iter_pages(
        self,
        start: datetime | None = None,
        end: datetime | None = None,
        cursor: dict[str, Any] | None = None,
    ) -> AsyncIterator[Page]:
        notes = self._notes(utc_bound(start), utc_bound(end))
        # The cursor is the newest note stored: an incremental sync starts after it.
        after = (cursor or {}).get("after")
        if after:
            notes = [note for note in notes if note.created_at.isoformat() > after]
        if not notes:
            yield Page([], dict(cursor or {}), vendor_total=0)
            return
        for offset in range(0, len(notes), PAGE_SIZE):
            chunk = notes[offset : offset + PAGE_SIZE]
            yield Page(chunk, {"after": chunk[-1].created_at.isoformat()},
                       vendor_total=len(notes) if offset == 0 else None)

    def _team(self) -> str:
        return str(self.config.get("team") or "every team")

    def _notes(self, start: datetime | None, end: datetime | None) -> list[NormalizedRecord]:
        team = self.config.get("team")
        records = []
        today = datetime.now(timezone.utc).replace(hour=9, minute=0, second=0, microsecond=0)
        for ident, note_team, days_ago, author, text in NOTES:
            moment = today - timedelta(days=days_ago)
            if (team and note_team != team) or not in_range(moment, start, end):
                continue
            records.append(NormalizedRecord(
                source=self.name, source_id=ident, content=text, customer_email=author, customer_id=author,
                category=self.rules.categorize(text=text).value,
                created_at=moment, metadata={"team": note_team},
            ))
        return records
