"""Sentiment of one record: a score, a label, and the words that drove it.

Offline and explainable: VADER (the `vaderSentiment` package, which ships its lexicon) scores the customer's words,
after the pleasantries around them are set aside. "Hi team, ... Thanks, Ana" is how most feedback is written, and
VADER counts "thanks" and "good morning" as praise, which would turn every polite bug report positive. A PM can
check every label: `explain()` lists the lexicon words in the text with their valence, negations flipped.

Scored once per text at ingest (the store calls `score()` for new or changed text only) and kept in indexed columns.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, NamedTuple

# VADER's own cut-offs for its compound score.
POSITIVE_AT = 0.05
NEGATIVE_AT = -0.05
LABELS = ("negative", "neutral", "positive")
MAX_SCORED_CHARACTERS = 5_000  # enough for any message; a pasted log file must not cost seconds

_PLEASANTRY = re.compile(
    r"^\s*(?:(?:hi|hello|hey|dear|good\s+(?:morning|afternoon|evening)|greetings)(?:\s+(?:there|team|all|folks|"
    r"everyone|support))?|thanks?(?:\s+you)?(?:\s+(?:so\s+much|in\s+advance|a\s+lot))?|thx|cheers|best(?:\s+regards)?"
    r"|kind\s+regards|regards|many\s+thanks|sincerely|br)\s*[,.!]*\s*(?:\w+)?\s*[,.!]*\s*$",
    re.IGNORECASE,
)
_NAME_LINE = re.compile(r"\s*[A-Z][\w.'-]*(?:\s+[A-Z][\w.'-]*){0,2}\s*")
_WORD = re.compile(r"[A-Za-z][A-Za-z'-]*")
_NEGATIONS = frozenset(
    "not no never none nobody nothing neither nor cannot can't cant won't wont don't dont doesn't doesnt didn't "
    "didnt isn't isnt aren't arent wasn't wasnt weren't werent haven't havent hasn't hasnt shouldn't wouldn't "
    "couldn't without".split()
)


class Sentiment(NamedTuple):
    score: float  # VADER's compound score, -1 (most negative) to 1
    label: str  # negative | neutral | positive


@dataclass(frozen=True)
class Driver:
    word: str
    valence: float  # the lexicon's valence, sign flipped after a negation
    negated: bool


# VADER's lexicon was built from social media text. Product feedback needs two changes, both visible here:
# politeness is not sentiment ("please add X" is a request, not praise), and the words of a failing product carry
# the negativity a reviewer would read in them. Valences are on VADER's own -4..4 scale, near its existing entries
# for similar words ("broken" -2.1, "error" -1.7, "stuck" -1.0).
POLITENESS = ("please", "thanks", "thank", "kindly", "welcome", "appreciated", "appreciate")
PRODUCT_LEXICON: dict[str, float] = {
    "crashes": -1.9, "crashed": -1.9, "crashing": -1.9, "freezes": -1.6, "freeze": -1.5, "frozen": -1.3,
    "slow": -1.2, "slower": -1.2, "sluggish": -1.4, "laggy": -1.4, "bug": -1.3, "bugs": -1.3, "buggy": -1.8,
    "unusable": -2.4, "timeout": -1.3, "timeouts": -1.3, "timing": -0.2, "unreadable": -1.5, "tiring": -1.0,
    "duplicate": -0.8, "duplicates": -0.8, "twice": -0.3, "loops": -1.0, "spins": -0.8, "spinner": -0.6,
    "throttled": -1.2, "incorrect": -1.6, "disconnecting": -1.3, "disconnects": -1.3, "late": -0.8,
    "rejected": -1.7, "blocking": -1.5, "blocked": -1.6, "painfully": -1.5, "unacceptable": -2.5,
    "smooth": 1.5, "painless": 1.6, "instantly": 0.8, "faster": 1.0, "kudos": 2.0,
}


@lru_cache(maxsize=1)
def _analyzer() -> Any:
    analyzer = _fast_analyzer_class()()
    for word in POLITENESS:
        analyzer.lexicon.pop(word, None)
    analyzer.lexicon.update(PRODUCT_LEXICON)
    return analyzer


# How far VADER's negation and idiom checks look around a lexicon word: three words back, two ahead.
_BEHIND, _AHEAD = 3, 3


def _fast_analyzer_class() -> type:
    """VADER's analyzer with the same scores at about half the cost (tests/test_sentiment_speed.py compares the two
    on every text it has).

    Sentiment is scored on the sync's write path, so its cost is paid per record. Two spots in vaderSentiment 3.3.2
    cost far more than their result needs: the negation and idiom checks lower-case the whole text's word list for
    every lexicon word they look at (quadratic in the text's length) though they read at most three words before it
    and two after; and the emoji replacement rebuilds the text one character at a time even when it holds no emoji.
    Here both checks get only that window of words, re-indexed, a text with no emoji skips the rebuild, and a word
    outside the lexicon (most words) gets its 0 without a call; every other step is VADER's own code.
    """
    from vaderSentiment import vaderSentiment as vader

    base = vader.SentimentIntensityAnalyzer

    class FastAnalyzer(base):  # type: ignore[misc, valid-type]
        def __init__(self) -> None:
            super().__init__()
            self._emoji_characters = frozenset(self.emojis)

        def polarity_scores(self, text: str) -> dict[str, float]:
            if not self._emoji_characters.isdisjoint(text):
                return dict(super().polarity_scores(text))
            # What base.polarity_scores does once the emoji loop has left the text as it was.
            sentitext = vader.SentiText(text.strip())
            sentiments: list[float] = []
            words = sentitext.words_and_emoticons
            lexicon = self.lexicon
            for i, item in enumerate(words):
                lowered = item.lower()
                if lowered not in lexicon:  # sentiment_valence would append 0 for it, after a call per word
                    sentiments.append(0)
                    continue
                if lowered in vader.BOOSTER_DICT:
                    sentiments.append(0)
                    continue
                if i < len(words) - 1 and lowered == "kind" and words[i + 1].lower() == "of":
                    sentiments.append(0)
                    continue
                sentiments = self.sentiment_valence(0, sentitext, item, i, sentiments)
            sentiments = self._but_check(words, sentiments)
            return dict(self.score_valence(sentiments, text.strip()))

        # The checks index at most i-3 .. i+2 and compare len(words) - 1 with i and i + 1: a window of the words
        # from i-3 to i+2, with i moved to its place in the window, gives them the same words and the same answers.
        def _negation_check(self, valence: float, words: list[str], start_i: int, i: int) -> float:
            low = max(0, i - _BEHIND)
            return float(base._negation_check(valence, words[low:i + _AHEAD], start_i, i - low))

        def _special_idioms_check(self, valence: float, words: list[str], i: int) -> float:
            low = max(0, i - _BEHIND)
            return float(base._special_idioms_check(valence, words[low:i + _AHEAD], i - low))

    return FastAnalyzer


def without_pleasantries(text: str) -> str:
    """The text less its greeting and sign-off lines ("Hi team,", "Thanks,", "Best regards, Ana") wherever they
    stand (a thread repeats them), and less a lone name under a sign-off."""
    kept: list[str] = []
    after_signoff = False
    for line in text.splitlines():
        if not line.strip():
            continue
        if _PLEASANTRY.match(line):
            after_signoff = True
            continue
        if after_signoff and _NAME_LINE.fullmatch(line):
            continue
        after_signoff = False
        kept.append(line)
    return "\n".join(kept)


def _scored_text(title: str | None, content: str | None) -> str:
    return f"{title or ''}\n{without_pleasantries(content or '')}"[:MAX_SCORED_CHARACTERS]


def label_of(score: float) -> str:
    if score >= POSITIVE_AT:
        return "positive"
    if score <= NEGATIVE_AT:
        return "negative"
    return "neutral"


def score(title: str | None, content: str | None) -> Sentiment:
    """The record's sentiment, from its title and its words less the pleasantries."""
    text = _scored_text(title, content)
    if not text.strip():
        return Sentiment(0.0, "neutral")
    compound = float(_analyzer().polarity_scores(text)["compound"])
    return Sentiment(round(compound, 4), label_of(compound))


def explain(title: str | None, content: str | None, limit: int = 8) -> list[Driver]:
    """The lexicon words in the scored text, strongest first: what drove the score, in words a PM can check."""
    text = _scored_text(title, content)
    lexicon: dict[str, float] = _analyzer().lexicon
    drivers: dict[str, Driver] = {}
    words = [w.lower() for w in _WORD.findall(text)]
    for position, word in enumerate(words):
        valence = lexicon.get(word)
        if valence is None:
            continue
        negated = any(w in _NEGATIONS or w.endswith("n't") for w in words[max(0, position - 3) : position])
        driver = Driver(word, -0.74 * valence if negated else valence, negated)  # VADER's negation factor
        if word not in drivers or abs(driver.valence) > abs(drivers[word].valence):
            drivers[word] = driver
    return sorted(drivers.values(), key=lambda d: (-abs(d.valence), d.word))[:limit]
