"""The faster analyzer in sentiment.py must give exactly VADER's scores: it changes how, never what, VADER computes.

Compared with vaderSentiment's own SentimentIntensityAnalyzer, given the same lexicon changes, on every text of the
labelled evaluation set, on VADER's own tricky constructions (negations at the start, "no" before a lexicon word,
"but", "kind of", idioms, capitals, emoji, punctuation emphasis) and on generated word salads that put lexicon words
at every distance from negations, boosters and the ends of the text.
"""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest
from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer

from feedback_sources import sentiment

EVAL_SET = Path(__file__).resolve().parent.parent / "benchmarks" / "data" / "theme_eval.json"

TRICKY = [
    "", " ", "!!!", "no", "not", "good", "not good", "no good", "Not bad at all", "never so happy", "no problems",
    "no, it is not broken", "without doubt the best", "It is kind of good", "kind of", "sort of slow", "the bomb",
    "cut the mustard", "yeah right", "The export is GREAT but the import is TERRIBLE!!!", "least helpful ever",
    "at least it works", "very least useful", "I don't hate it", "it isn't working, but support was helpful",
    "Great :) but the app crashes :(", "Love it 😀 but the sync is slow 😞", "💔", "It crashed ❤️ twice",
    "no or nor bad", "hardly good", "extremely bad", "The dashboard is slow, sluggish and laggy; unusable.",
    "Can't log in. SSO loops. Not acceptable!", "???", "Is it good?? really?", "😀😀😀", "a😀b", "BAD bad Bad",
    "but", "good but", "but good", "no no no good", "never never good", "this is the shit", "bad ass feature",
]


def _reference() -> SentimentIntensityAnalyzer:
    analyzer = SentimentIntensityAnalyzer()
    for word in sentiment.POLITENESS:
        analyzer.lexicon.pop(word, None)
    analyzer.lexicon.update(sentiment.PRODUCT_LEXICON)
    return analyzer


def _eval_texts() -> list[str]:
    topics = json.loads(EVAL_SET.read_text(encoding="utf-8"))["topics"]
    return [text for items in topics.values() for text, _label in items]


def _salads(count: int, seed: int = 7) -> list[str]:
    rng = random.Random(seed)
    words = ("good", "bad", "not", "no", "never", "very", "extremely", "kind", "of", "but", "least", "at", "the",
             "bomb", "slow", "crashes", "without", "doubt", "so", "this", "or", "nor", "GREAT", "hate", "love",
             "export", "csv", "isn't", "don't", "sort", "!", "?", ":)", "😀", "works", "fine", "ugly", "data")
    return [" ".join(rng.choice(words) for _ in range(rng.randint(1, 40))) for _ in range(count)]


@pytest.fixture(scope="module")
def reference() -> SentimentIntensityAnalyzer:
    return _reference()


@pytest.mark.parametrize("texts", [TRICKY, _eval_texts(), _salads(3_000)], ids=["tricky", "eval-set", "salads"])
def test_the_fast_analyzer_scores_exactly_as_vader(reference: SentimentIntensityAnalyzer, texts: list[str]) -> None:
    fast = sentiment._analyzer()
    assert type(fast) is not SentimentIntensityAnalyzer  # the comparison must not be VADER against itself
    for text in texts:
        assert fast.polarity_scores(text) == reference.polarity_scores(text), text


def test_score_uses_the_fast_analyzer_with_the_product_lexicon() -> None:
    analyzer = sentiment._analyzer()
    assert "please" not in analyzer.lexicon and analyzer.lexicon["crashes"] == sentiment.PRODUCT_LEXICON["crashes"]
    assert sentiment.score("Export", "The CSV export crashes").label == "negative"
