"""How good the themes and the sentiment are, on labelled feedback kept apart from the demo generator.

`benchmarks/data/theme_eval.json` holds hand-written feedback on twelve topics, each sentence with its sentiment.
From each sentence this module derives, with a fixed seed, what real inboxes add: a copy wrapped in a greeting and
a sign-off (the same request in another message), a copy with typos, and for some a second customer writing nearly
the same words (near-duplicates). Then it stores them, finds themes, and measures:
- purity (each theme counted as its majority topic) and adjusted mutual information against the topics;
- the share of near-duplicate pairs put in the same theme, and the share given the same duplicate key;
- sentiment agreement with the labels (three classes).
Nothing here was tuned on the demo data, and the demo generator never reads this file.
"""

from __future__ import annotations

import json
import random
from collections import Counter, defaultdict
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

from feedback_sources.models import NormalizedRecord
from feedback_sources.store import Store

DATA = Path(__file__).resolve().parent / "data" / "theme_eval.json"
GREETINGS = ("Hi team,", "Hello,", "Hey there,", "Good morning,", "Dear support,")
SIGNOFFS = ("Thanks,", "Cheers,", "Best regards,", "Thank you!", "Kind regards,")
NAMES = ("Ana", "Kwame", "Li Wei", "Sofia", "Tom", "Priya", "Jonas")


@dataclass(frozen=True)
class Item:
    key: str  # the record id
    base: str  # the id of the sentence it derives from
    topic: str
    sentiment: str
    text: str


def _typo(text: str, rng: random.Random) -> str:
    words = text.split()
    for _ in range(max(1, len(words) // 6)):
        i = rng.randrange(len(words))
        word = words[i]
        if len(word) > 3:
            j = rng.randrange(1, len(word) - 1)
            words[i] = word[:j] + word[j + 1] + word[j] + word[j + 2 :]  # two letters swapped
    return " ".join(words)


def items(seed: int = 7) -> list[Item]:
    rng = random.Random(seed)
    data = json.loads(DATA.read_text(encoding="utf-8"))
    found: list[Item] = []
    for topic, sentences in data["topics"].items():
        for n, (text, label) in enumerate(sentences):
            base = f"{topic}-{n}"
            found.append(Item(base, base, topic, label, text))
            wrapped = f"{rng.choice(GREETINGS)}\n{text}\n{rng.choice(SIGNOFFS)}\n{rng.choice(NAMES)}"
            found.append(Item(f"{base}-wrapped", base, topic, label, wrapped))
            found.append(Item(f"{base}-typo", base, topic, label, _typo(text, rng)))
    return found


def records(found: list[Item]) -> list[NormalizedRecord]:
    start = datetime(2026, 10, 1, tzinfo=timezone.utc)
    return [
        NormalizedRecord(source="zendesk", source_id=item.key, content=item.text,
                         customer_email=f"person{i}@company{i % 40}.example",
                         created_at=start + timedelta(hours=i))
        for i, item in enumerate(found)
    ]


@dataclass(frozen=True)
class Quality:
    records: int
    topics: int
    themes: int
    purity: float
    ami: float
    near_duplicates_same_theme: float
    near_duplicates_same_key: float
    sentiment_agreement: float
    sentiment_by_label: dict[str, float]


def evaluate(path: str | Path = ":memory:", *, seed: int = 7) -> Quality:
    from sklearn.metrics import adjusted_mutual_info_score

    from feedback_sources import themes

    found = items(seed)
    by_key = {item.key: item for item in found}
    with Store(path) as store:
        store.upsert_records(records(found))
        themes.recompute(store)
        rows = store.conn.execute(
            "SELECT source_id, theme_id, dup_key, sentiment_label FROM feedback ORDER BY id").fetchall()
    truth = [by_key[r[0]].topic for r in rows]
    predicted = [int(r[1] or 0) for r in rows]
    members: dict[int, Counter[str]] = defaultdict(Counter)
    for topic, theme in zip(truth, predicted):
        members[theme][topic] += 1
    purity = sum(c.most_common(1)[0][1] for theme, c in members.items() if theme) / len(rows)
    placed: dict[str, tuple[int, Any]] = {r[0]: (int(r[1] or 0), r[2]) for r in rows}
    pairs = [(item.key, item.base) for item in found if item.key != item.base]
    same_theme = sum(1 for a, b in pairs if placed[a][0] and placed[a][0] == placed[b][0]) / len(pairs)
    same_key = sum(1 for a, b in pairs if placed[a][1] is not None and placed[a][1] == placed[b][1]) / len(pairs)
    agree = [by_key[r[0]].sentiment == r[3] for r in rows]
    per_label: dict[str, list[bool]] = defaultdict(list)
    for r, ok in zip(rows, agree):
        per_label[by_key[r[0]].sentiment].append(ok)
    return Quality(
        records=len(rows),
        topics=len(set(truth)),
        themes=len({p for p in predicted if p}),
        purity=round(purity, 3),
        ami=round(float(adjusted_mutual_info_score(truth, predicted)), 3),
        near_duplicates_same_theme=round(same_theme, 3),
        near_duplicates_same_key=round(same_key, 3),
        sentiment_agreement=round(sum(agree) / len(agree), 3),
        sentiment_by_label={label: round(sum(v) / len(v), 3) for label, v in sorted(per_label.items())},
    )
