"""Sentiment is written by the upsert itself: a new record is stored with its score and label in one statement; a
new version keeps its score, theme and duplicate key unless its words changed."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from pathlib import Path

from feedback_sources import sentiment
from feedback_sources.models import NormalizedRecord
from feedback_sources.store import Store

CREATED = datetime(2026, 3, 4, 9, 0, tzinfo=timezone.utc)


def version(content: str, *, minutes: int = 0, tags: list[str] | None = None) -> NormalizedRecord:
    updated = CREATED + timedelta(minutes=minutes)
    return NormalizedRecord(source="zendesk", source_id="7", title="Export", content=content, created_at=CREATED,
                            metadata={"tags": tags or [], "updated_at": updated.isoformat()})


def scored_row(store: Store) -> dict[str, object]:
    return store.query("SELECT sentiment, sentiment_label, theme_id, theme_score, dup_key FROM feedback")[0]


def daily(store: Store) -> list[dict[str, object]]:
    return store.query("SELECT day, sentiment, records FROM feedback_daily WHERE records > 0 ORDER BY sentiment")


def test_a_new_record_is_stored_with_its_score_and_counted_once(tmp_path: Path) -> None:
    with Store(tmp_path / "s.db") as store:
        store.upsert_records([version("The export crashes and we lose a day of work")])
        expected = sentiment.score("Export", "The export crashes and we lose a day of work")
        assert scored_row(store) == {"sentiment": expected.score, "sentiment_label": expected.label,
                                     "theme_id": None, "theme_score": None, "dup_key": None}
        assert daily(store) == [{"day": "2026-03-04", "sentiment": expected.label, "records": 1}]


def test_new_tags_keep_the_score_and_the_theme_new_words_clear_the_theme(tmp_path: Path) -> None:
    with Store(tmp_path / "s.db") as store:
        store.upsert_records([version("The export crashes and we lose a day of work")])
        store.conn.execute("UPDATE feedback SET theme_id = 3, theme_score = 0.9, dup_key = 'k'")
        store.upsert_records([version("The export crashes and we lose a day of work", minutes=5, tags=["bug"])])
        kept = sentiment.score("Export", "The export crashes and we lose a day of work")
        assert scored_row(store) == {"sentiment": kept.score, "sentiment_label": kept.label,
                                     "theme_id": 3, "theme_score": 0.9, "dup_key": "k"}
        store.upsert_records([version("Thanks, the export works great now", minutes=10, tags=["bug"])])
        rescored = sentiment.score("Export", "Thanks, the export works great now")
        assert rescored.label != kept.label
        assert scored_row(store) == {"sentiment": rescored.score, "sentiment_label": rescored.label,
                                     "theme_id": None, "theme_score": None, "dup_key": None}
        assert daily(store) == [{"day": "2026-03-04", "sentiment": rescored.label, "records": 1}]
