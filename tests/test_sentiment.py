"""Sentiment per record: VADER on the customer's words (pleasantries set aside), scored when the text is written."""

from __future__ import annotations

import pytest

from feedback_sources import sentiment
from feedback_sources.store import Store
from tests.conftest import make_record


def test_greetings_and_sign_offs_are_set_aside_wherever_they_stand() -> None:
    text = "Hi team,\nThe export fails every night.\nThanks,\nAna\n\nGood morning,\nStill broken today.\nCheers, Tom"
    assert sentiment.without_pleasantries(text) == "The export fails every night.\nStill broken today."


def test_a_polite_bug_report_is_negative_and_says_why() -> None:
    scored = sentiment.score("Export broken", "Hi team,\nThe CSV export crashes and the totals are wrong.\nThanks,\nAna")
    assert scored.label == "negative" and scored.score < -0.3
    drivers = sentiment.explain("Export broken", "The CSV export crashes and the totals are wrong.")
    assert [(d.word, d.negated) for d in drivers] == [("broken", False), ("wrong", False), ("crashes", False)]
    assert all(d.valence < 0 for d in drivers)


def test_please_is_a_request_not_praise() -> None:
    assert sentiment.score(None, "Please add an export to PDF").label == "neutral"


@pytest.mark.parametrize(
    ("content", "label"),
    [
        ("The new dashboards look amazing, my leadership loves them", "positive"),
        ("Setup was painless and smooth", "positive"),
        ("Dashboards are painfully slow and unusable", "negative"),
        ("How do I change my invoice address?", "neutral"),
        ("", "neutral"),
    ],
)
def test_labels(content: str, label: str) -> None:
    assert sentiment.score(None, content).label == label


def test_a_negation_flips_the_word_it_governs() -> None:
    drivers = sentiment.explain(None, "The export is not good")
    assert [(d.word, d.negated, d.valence < 0) for d in drivers] == [("good", True, True)]
    assert sentiment.score(None, "The export is not good").label == "negative"


def test_sentiment_is_stored_when_the_text_is_written_and_again_when_it_changes(fresh_store: Store) -> None:
    fresh_store.upsert_records([make_record("1", content="The app crashes on login, terrible")])
    row = fresh_store.conn.execute("SELECT sentiment, sentiment_label, theme_id FROM feedback").fetchone()
    assert row[1] == "negative" and row[0] < 0 and row[2] is None
    later = {"updated_at": "2026-03-02T12:00:00+00:00", "tags": ["bug"], "url": None}
    fresh_store.upsert_records([make_record("1", content="Fixed now, works great, love it", metadata=later)])
    assert fresh_store.conn.execute("SELECT sentiment_label FROM feedback").fetchone()[0] == "positive"
