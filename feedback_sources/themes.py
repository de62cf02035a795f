"""Themes found in what customers wrote: grouped by their words, named by their defining phrases, steered by the PM.

How (scikit-learn, no model download):
- Each record's title and words (greetings and sign-offs set aside, see sentiment.without_pleasantries) become a
  TF-IDF vector of words and two- and three-word phrases. Words that only repeat a category, a tier, a plan or a
  source, and filler, are stop words: they never define a theme.
- k-means (MiniBatchKMeans, fitted on an evenly spread sample) groups the vectors; k is the one of a few candidates
  whose clustering of the sample has the best silhouette. A record joins the nearest theme by cosine similarity, or
  none when it is close to no theme.
- A theme is named by its strongest phrase, written as the customers wrote it ("CSV export times out"), and lists
  its defining words (the heaviest terms of its centroid): every membership can be explained by the words a record
  shares with its theme (`why()`).
- Near-duplicates share a key: the four heaviest terms of the record. Forty customers asking for the same thing are
  forty records with one key in one theme, and the record view says "similar feedback (39)".

The PM's choices are rows of `themes` (rename, pin, hide, merge into another, split into two) and survive re-syncs
and re-computation: a new clustering inherits an old theme's id, name and flags when they share most records
(Jaccard overlap), merged themes keep pointing at their target, and split themes are split again.

New records join existing themes as they arrive (`assign_new`, a few milliseconds per thousand records); a full
re-computation (`recompute`) reports progress in `theme_runs` and runs off the app's request path.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import threading
import time
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from .models import Category, Tier
from .sentiment import without_pleasantries
from .sources import registry
from .store import Store, iso_utc, now_utc

MAX_TEXT = 2_000
SAMPLE_SIZE = 30_000
MIN_SIMILARITY = 0.08  # below this a record is near no theme: it stays unthemed (theme 0)
UNTHEMED = 0
ASSIGN_BATCH = 5_000
CENTROID_TERMS = 300  # terms kept per theme centroid: enough to assign new records, small to store
DEFINING_TERMS = 8
DUP_TERMS = 4
QUOTES = 3
MATCH_OVERLAP = 0.3  # Jaccard overlap at which a new cluster inherits an old theme's id and the PM's choices

# Never define a theme: they repeat what a record's category, tier, plan or source already says, or fill space.
_DOMAIN_STOP = {
    *(c.value.replace("_", " ") for c in Category), *(c.value for c in Category), *(t.value for t in Tier),
    "bug", "bugs", "report", "reports", "feature", "features", "request", "requests", "requested", "issue", "issues",
    "problem", "problems", "question", "questions", "feedback", "complaint", "praise", "support", "ticket", "tickets",
    "plan", "plans", "customer", "customers", "account", "survey", "team",
    "please", "thanks", "thank", "hi", "hello", "hey", "morning", "afternoon", "evening", "regards", "cheers",
    "helpful", "great", "good", "nice", "love", "awesome", "really", "would", "could", "like", "just", "also", "us",
    "we", "our", "hope", "soon", "asap", "possible", "able", "anyone", "someone", "help", "wondering", "know",
    "let", "quick", "work", "works", "working", "use", "using", "get", "getting", "way", "need", "needs", "want",
    "urgent", "still", "again", "unacceptable", "seriously", "frustrating", "annoying", "today", "yesterday", "week",
}
_TOKEN_PATTERN = r"(?u)\b[^\W\d_][^\W\d_]+\b"


def _source_words() -> set[str]:
    """Every registered source's name and label: a record's source is a filter, never a theme."""
    return {word.lower() for name, spec in registry().items() for word in (name, spec.label)}


def stop_words() -> list[str]:
    from sklearn.feature_extraction.text import ENGLISH_STOP_WORDS

    from .insights import STOP_WORDS

    words = set(ENGLISH_STOP_WORDS) | set(STOP_WORDS) | _DOMAIN_STOP | _source_words()
    return sorted(w for word in words for w in re.findall(r"[^\W\d_]+", word.lower()))


class ThemeError(ValueError):
    """A theme action that cannot be done (unknown theme, merging a theme into itself, nothing to split)."""


# -- the vectorizer ----------------------------------------------------------------------------------------------


def clean_text(title: str | None, content: str | None) -> str:
    return f"{title or ''}\n{without_pleasantries(content or '')}"[:MAX_TEXT]


def _vectorizer(vocabulary: dict[str, int] | None = None, *, min_df: int | float = 2) -> Any:
    import numpy as np
    from sklearn.feature_extraction.text import TfidfVectorizer

    return TfidfVectorizer(
        lowercase=True, strip_accents="unicode", token_pattern=_TOKEN_PATTERN, stop_words=stop_words(),
        ngram_range=(1, 3), min_df=1 if vocabulary is not None else min_df, max_df=0.25, sublinear_tf=True,
        max_features=30_000, dtype=np.float32, vocabulary=vocabulary,
    )


@dataclass
class Model:
    """What a re-computation leaves behind to place new records: the vocabulary, its idf, and each theme's centroid."""

    terms: list[str]
    idf: list[float]
    centroids: dict[int, dict[str, float]]  # theme id -> heaviest terms

    def vectorizer(self) -> Any:
        import numpy as np

        vectorizer = _vectorizer({term: i for i, term in enumerate(self.terms)})
        vectorizer.idf_ = np.asarray(self.idf, dtype=np.float32)
        return vectorizer

    def centroid_matrix(self) -> tuple[list[int], Any]:
        import numpy as np
        from scipy.sparse import csr_matrix

        index = {term: i for i, term in enumerate(self.terms)}
        ids = sorted(self.centroids)
        rows, cols, values = [], [], []
        for row, theme_id in enumerate(ids):
            for term, weight in self.centroids[theme_id].items():
                column = index.get(term)
                if column is not None:
                    rows.append(row)
                    cols.append(column)
                    values.append(weight)
        matrix = csr_matrix((np.asarray(values, dtype=np.float32), (rows, cols)), shape=(len(ids), len(self.terms)))
        norms = np.sqrt(matrix.multiply(matrix).sum(axis=1)).A1
        norms[norms == 0] = 1.0
        return ids, csr_matrix(matrix.multiply(1.0 / norms[:, None]))


_MODELS: dict[str, tuple[tuple[Any, ...], Model]] = {}


def load_model(store: Store) -> Model | None:
    """The stored model; kept in memory while the store's model and themes are unchanged (reading 30,000 terms and
    every centroid again for each page of new records would cost more than placing them)."""
    marker = store.theme_model_marker()
    if marker[0] is None:
        return None
    cached = _MODELS.get(store.path)
    if cached is not None and cached[0] == tuple(marker) and store.path != ":memory:":
        return cached[1]
    terms, idf = store.theme_model()
    centroids = {int(theme_id): json.loads(centroid) for theme_id, centroid in store.theme_centroids()}
    model = Model(json.loads(terms), json.loads(idf), centroids)
    _MODELS[store.path] = (tuple(marker), model)
    return model


def _dup_key(indices: Any, data: Any, terms: Sequence[str]) -> str | None:
    """The record's four heaviest terms, hashed: near-duplicates (the same request in other words) share it."""
    if len(indices) < 3:
        return None
    order = indices[data.argsort()[::-1][:DUP_TERMS]]
    signature = "|".join(sorted(terms[i] for i in order))
    return hashlib.sha1(signature.encode("utf-8")).hexdigest()[:16]


_PREPARED: dict[tuple[int, int], tuple[Any, list[int], Any]] = {}


def _prepared(model: Model) -> tuple[Any, list[int], Any]:
    """The model's vectorizer and centroid matrix, built once per model (a sync places pages of records in turn)."""
    key = (id(model.terms), id(model.centroids))
    if key not in _PREPARED:
        _PREPARED.clear()
        _PREPARED[key] = (model.vectorizer(), *model.centroid_matrix())
    return _PREPARED[key]


def _placements(model: Model, texts: Sequence[str]) -> list[tuple[int, float, str | None]]:
    """(theme id or 0, similarity, duplicate key) for each text."""
    if not texts:
        return []
    vectorizer, ids, centroids = _prepared(model)
    vectors = vectorizer.transform(texts)
    placements: list[tuple[int, float, str | None]] = []
    if ids:
        similarities = (vectors @ centroids.T).toarray()
        best = similarities.argmax(axis=1)
        best_similarity = similarities[range(len(texts)), best]
    indptr, indices, data = vectors.indptr, vectors.indices, vectors.data
    for i in range(vectors.shape[0]):
        if ids and best_similarity[i] >= MIN_SIMILARITY:
            theme, similarity = ids[int(best[i])], float(best_similarity[i])
        else:
            theme, similarity = UNTHEMED, float(best_similarity[i]) if ids else 0.0
        row = slice(indptr[i], indptr[i + 1])
        placements.append((theme, round(similarity, 4), _dup_key(indices[row], data[row], model.terms)))
    return placements


def _resolved(merged: dict[int, int]) -> dict[int, int]:
    """Merged themes point at the theme their records now belong to (chains followed), given each merge's one
    step."""
    resolved = {}
    for theme_id in merged:
        target, seen = theme_id, set()
        while target in merged and target not in seen:
            seen.add(target)
            target = merged[target]
        resolved[theme_id] = target
    return resolved


def assign_new(store: Store, *, limit: int | None = None) -> int:
    """Place records not yet placed (new, or changed text) in the current themes. Returns how many were placed."""
    model = load_model(store)
    if model is None or not model.centroids:
        return 0
    resolved = _resolved(store.merged_themes())
    placed = 0
    while limit is None or placed < limit:
        batch = ASSIGN_BATCH if limit is None else min(ASSIGN_BATCH, limit - placed)
        rows = store.unplaced_records(batch)
        if not rows:
            break
        placements = _placements(model, [clean_text(t, c) for _, t, c in rows])
        store.place_records(
            [(resolved.get(theme, theme), score, key, row[0]) for row, (theme, score, key) in zip(rows, placements)])
        placed += len(rows)
    return placed


def score_unscored(store: Store, *, limit: int | None = None) -> int:
    """Score the sentiment of records stored before sentiment existed (new ones are scored as they are written)."""
    from .sentiment import score

    scored = 0
    while limit is None or scored < limit:
        rows = store.unscored_records(ASSIGN_BATCH)
        if not rows:
            break
        store.save_sentiments([(*score(title, content), rowid) for rowid, title, content in rows])
        scored += len(rows)
    return scored


def after_sync(store: Store, *, limit: int = 200_000) -> tuple[int, int]:
    """What a sync does last: score what has no sentiment yet and place new records in the themes (bounded, so a
    first run over an old store does not hold the sync; the rest follows on the next run or a re-computation)."""
    return score_unscored(store, limit=limit), assign_new(store, limit=limit)


# -- re-computation ------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class RunReport:
    records: int
    themes: int
    seconds: float
    peak_rss_mb: float
    k: int


Progress = Callable[[float, str], None]


def _peak_rss_mb() -> float:
    try:
        import resource

        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0
    except (ImportError, OSError):  # pragma: no cover - not on every platform
        return 0.0


def _choose_k(vectors: Any, seed: int) -> tuple[int, Any]:
    """The number of themes: of a few candidates around sqrt(n/2), the one with the best silhouette on the sample."""
    import numpy as np
    from sklearn.cluster import MiniBatchKMeans
    from sklearn.metrics import silhouette_score

    n = vectors.shape[0]
    base = _base_k(n)
    candidates = sorted({max(2, min(n - 1, k)) for k in (base // 2, (3 * base) // 4, base, (5 * base) // 4)})
    candidates = [k for k in candidates if 2 <= k < n] or [min(2, n)]
    rng = np.random.default_rng(seed)
    probe = rng.choice(n, size=min(n, 2_500), replace=False)
    best: tuple[float, int, Any] | None = None
    for k in candidates:
        model = MiniBatchKMeans(n_clusters=k, random_state=seed, n_init=3, batch_size=2_048).fit(vectors)
        labels = model.labels_[probe]
        score = silhouette_score(vectors[probe], labels, metric="cosine") if len(set(labels)) > 1 else -1.0
        if best is None or score > best[0]:
            best = (score, k, model)
    assert best is not None
    return best[1], best[2]


def _base_k(n: int) -> int:
    """About sqrt(n/2) groups, at most 80: past that a PM reads a list, not themes."""
    return max(2, min(80, int(round((n / 2) ** 0.5))))


def _seeded_kmeans(vectors: Any, previous: Model, terms: list[str], k: int, seed: int) -> Any:
    import numpy as np
    from sklearn.cluster import MiniBatchKMeans

    index = {term: i for i, term in enumerate(terms)}
    starts = []
    for centroid in previous.centroids.values():
        row = np.zeros(len(terms), dtype=np.float32)
        for term, weight in centroid.items():
            if term in index:
                row[index[term]] = weight
        norm = float(np.linalg.norm(row))
        if norm > 0:
            starts.append(row / norm)
    n = vectors.shape[0]
    extra = max(0, min(n - len(starts), k - len(starts)))
    if extra:
        rng = np.random.default_rng(seed)
        picked = rng.choice(n, size=extra, replace=False)
        starts.extend(np.asarray(vectors[picked].todense(), dtype=np.float32))
    init = np.vstack(starts)[: max(1, n - 1)]
    return MiniBatchKMeans(n_clusters=init.shape[0], init=init, n_init=1, random_state=seed,
                           batch_size=2_048).fit(vectors)


def _surface(phrase: str, texts: Iterable[str]) -> str:
    """The phrase as customers most often wrote it (case kept): "CSV export", not "csv export"."""
    pattern = re.compile(r"\b" + r"[ \t-]+".join(re.escape(w) for w in phrase.split()) + r"\b", re.IGNORECASE)
    forms: Counter[str] = Counter()
    for text in texts:
        found = pattern.search(text)
        if found:
            forms[found.group(0)] += 1
    if not forms:
        return phrase
    form = forms.most_common(1)[0][0]
    # "iOS" and "eBay" keep their case; "csv export" starts with a capital.
    return form if len(form) > 1 and form[1].isupper() else form[0].upper() + form[1:]


def _verbatim_share(phrase: str, texts: Sequence[str]) -> float:
    """How many of the texts hold the phrase as written, word after word (not only after stop words were dropped)."""
    if not texts:
        return 0.0
    pattern = re.compile(r"\b" + r"[\s-]+".join(re.escape(w) for w in phrase.split()) + r"\b", re.IGNORECASE)
    return sum(1 for text in texts if pattern.search(text)) / len(texts)


def _name_and_terms(centroid: dict[str, float], texts: Sequence[str],
                    spread: dict[str, int] | None = None, themes_count: int = 1) -> tuple[str, list[tuple[str, float]]]:
    """The theme's name (its strongest phrase, longer phrases preferred when nearly as strong) and defining words.

    Strength is the term's weight in this theme times how rare it is among the themes (`spread`: in how many
    themes' centroids it stands), as class-based TF-IDF does: boilerplate that every theme shares ("thanks in
    advance", "help center") never names one."""
    import math

    def strength(term: str, weight: float) -> float:
        if spread is None:
            return weight
        return weight * math.log(1 + themes_count / max(1, spread.get(term, 1)))

    ranked = sorted(((term, strength(term, weight)) for term, weight in centroid.items()), key=lambda item: -item[1])
    if not ranked:
        return "Unnamed theme", []
    top = ranked[0][1]
    # A name is a phrase customers wrote as such, in a good share of the theme's records; longer ones say more.
    phrases = [
        (term, weight * (1 + 0.25 * (len(term.split()) - 1)))
        for term, weight in ranked[:15]
        if " " in term and weight >= 0.35 * top and _verbatim_share(term, texts[:100]) >= 0.25
    ]
    if phrases:
        name_term = max(phrases, key=lambda item: item[1])[0]
    else:  # the strongest term customers wrote as such (a phrase may only exist once stop words are dropped)
        name_term = next((term for term, _ in ranked[:30] if _verbatim_share(term, texts[:100]) > 0), ranked[0][0])
    # Defining words: those this theme does not share with most others (boilerplate every theme has says nothing).
    common = {term for term, count in (spread or {}).items() if count > max(3, 0.3 * themes_count)}
    defining: list[tuple[str, float]] = []
    for term, weight in ranked:
        if term in common:
            continue
        if any(term in chosen for chosen, _ in defining) or any(chosen in term for chosen, _ in defining):
            continue  # "export" says nothing "csv export" did not
        defining.append((term, round(float(weight), 4)))
        if len(defining) == DEFINING_TERMS:
            break
    return _surface(name_term, texts), defining


def _jaccard(a: set[int], b: set[int]) -> float:
    return len(a & b) / len(a | b) if a and b else 0.0


def _read_all(store: Store) -> tuple[list[int], list[str]]:
    ids, texts = [], []
    for rowid, title, content in store.record_texts():
        ids.append(rowid)
        texts.append(clean_text(title, content))
    return ids, texts


def recompute(store: Store, *, progress: Progress | None = None, sample_size: int = SAMPLE_SIZE,
              seed: int = 0) -> RunReport:
    """Discover the themes of every record again, keeping the PM's names, pins, hides, merges and splits."""
    import numpy as np

    started = time.monotonic()
    say = progress or (lambda fraction, message: None)
    say(0.01, "scoring sentiment")
    score_unscored(store)
    say(0.02, "reading records")
    ids, texts = _read_all(store)
    if len(ids) < 10:
        raise ThemeError("themes need at least 10 records; sync some feedback first")
    rng = np.random.default_rng(seed)
    sample = np.sort(rng.choice(len(ids), size=min(sample_size, len(ids)), replace=False))
    say(0.10, f"learning the vocabulary of {len(sample):,} records")
    vectorizer = _vectorizer(min_df=max(2, int(len(sample) * 0.0005)))
    sample_vectors = vectorizer.fit_transform([texts[i] for i in sample])
    say(0.25, "grouping similar feedback")
    terms = vectorizer.get_feature_names_out().tolist()
    previous = load_model(store)
    if previous is not None and previous.centroids:
        # Found again from where the last themes stand: the same feedback lands in the same themes, so a PM's
        # names, pins, merges and splits keep meaning what they meant. New groups get fresh centres.
        kmeans = _seeded_kmeans(sample_vectors, previous, terms, _base_k(sample_vectors.shape[0]), seed)
    else:
        _, kmeans = _choose_k(sample_vectors, seed)
    k = int(kmeans.n_clusters)
    idf = [round(float(v), 5) for v in vectorizer.idf_]
    # Centroids kept as their heaviest terms: what names a theme, explains it and places new records.
    centroids: dict[int, dict[str, float]] = {}
    for cluster, center in enumerate(kmeans.cluster_centers_):
        top = np.argsort(center)[::-1][:CENTROID_TERMS]
        centroids[cluster] = {terms[i]: round(float(center[i]), 5) for i in top if center[i] > 0}
    model = Model(terms, idf, centroids)
    say(0.35, f"placing {len(ids):,} records in {k} themes")
    labels: list[int] = []
    scores: list[float] = []
    dup_keys: list[str | None] = []
    for offset in range(0, len(ids), ASSIGN_BATCH):
        for cluster, score, key in _placements(model, texts[offset : offset + ASSIGN_BATCH]):
            labels.append(cluster if score >= MIN_SIMILARITY else -1)
            scores.append(score)
            dup_keys.append(key)
        say(0.35 + 0.45 * min(1.0, (offset + ASSIGN_BATCH) / len(ids)), f"placed {min(len(ids), offset + ASSIGN_BATCH):,} records")
    members: dict[int, set[int]] = defaultdict(set)
    for rowid, cluster in zip(ids, labels):
        if cluster >= 0:
            members[cluster].add(rowid)

    say(0.82, "keeping your names, pins, merges and splits")
    now = iso_utc(now_utc())
    with store.rewriting_themes() as rewrite:
        old_members: dict[int, set[int]] = defaultdict(set)
        for rowid, theme_id in rewrite.memberships():
            old_members[int(theme_id)].add(int(rowid))
        old = {int(r[0]): r for r in rewrite.live_themes()}
        # Greedy matching, best overlap first: each old theme passes its id (and the PM's choices) on once.
        pairs = sorted(
            ((_jaccard(cluster_members, old_members[theme_id]), cluster, theme_id)
             for cluster, cluster_members in members.items() for theme_id in old if old_members.get(theme_id)),
            reverse=True,
        )
        cluster_theme: dict[int, int] = {}
        taken: set[int] = set()
        for overlap, cluster, theme_id in pairs:
            if overlap < MATCH_OVERLAP:
                break
            if cluster in cluster_theme or theme_id in taken:
                continue
            cluster_theme[cluster] = theme_id
            taken.add(theme_id)
        spread: Counter[str] = Counter(term for centroid in centroids.values() for term in centroid)
        # A theme the PM merged others into holds several groups of words: a group found again mostly inside it
        # stays merged into it (as a theme row of its own, pointing at the target, so it keeps placing new records).
        targets = rewrite.merge_targets()
        absorbed: dict[int, int] = {}
        for cluster, cluster_members in members.items():
            if cluster in cluster_theme:
                continue
            for target in targets:
                inside = old_members.get(target, set())
                if inside and len(cluster_members & inside) >= 0.6 * len(cluster_members):
                    absorbed[cluster] = target
                    break
        texts_of: dict[int, list[str]] = defaultdict(list)
        for i, cluster in enumerate(labels):
            if cluster >= 0 and len(texts_of[cluster]) < 200:
                texts_of[cluster].append(texts[i])
        for cluster in sorted(members):
            centroid = centroids[cluster]
            sample_texts = texts_of[cluster]
            name, defining = _name_and_terms(centroid, sample_texts, spread, len(centroids))
            if cluster in cluster_theme:
                rewrite.update_words(cluster_theme[cluster], name, json.dumps(defining), json.dumps(centroid), now)
            else:
                cluster_theme[cluster] = rewrite.add(name, json.dumps(defining), json.dumps(centroid),
                                                     absorbed.get(cluster), now)
        resolved = _resolved(rewrite.merged())
        # Old themes nobody inherited are retired, unless they record a PM's merge.
        kept = set(cluster_theme.values())
        rewrite.retire_unmerged([theme_id for theme_id in old if theme_id not in kept], now)
        # A merge nobody re-found keeps its record of the PM's choice, but its old words no longer place records.
        rewrite.forget_merged_words([theme_id for theme_id in old if theme_id not in kept])
        final = [
            (resolved.get(cluster_theme[c], cluster_theme[c]) if c >= 0 else UNTHEMED, s, key, rowid)
            for rowid, c, s, key in zip(ids, labels, scores, dup_keys)
        ]
        rewrite.replace_model(json.dumps(terms), json.dumps(idf), now, len(ids), k)
        rewrite.place(final)
    # A PM's split is honoured again: records of a re-found split theme go to the nearer of its two parts.
    for parent in store.split_parents():
        _resplit(store, parent)
    say(1.0, "done")
    active = store.active_theme_count()
    return RunReport(len(ids), int(active), round(time.monotonic() - started, 2), round(_peak_rss_mb(), 1), k)


# -- the PM's choices ----------------------------------------------------------------------------------------------


def _theme_exists(store: Store, theme_id: int) -> None:
    if not store.is_live_theme(theme_id):
        raise ThemeError(f"there is no theme {theme_id}")


def rename(store: Store, theme_id: int, name: str) -> None:
    name = name.strip()
    _theme_exists(store, theme_id)
    if len(name) > 120:
        raise ThemeError("a theme name has at most 120 characters")
    store.rename_theme(theme_id, name or None, iso_utc(now_utc()))


def set_flag(store: Store, theme_id: int, flag: str, value: bool) -> None:
    if flag not in ("pinned", "hidden"):
        raise ThemeError(f"unknown flag {flag!r}")
    _theme_exists(store, theme_id)
    store.set_theme_flag(theme_id, flag, value, iso_utc(now_utc()))


def merge(store: Store, source_id: int, target_id: int) -> int:
    """Move a theme's records into another; the merge is remembered, so later records and re-computations follow."""
    if source_id == target_id:
        raise ThemeError("a theme cannot be merged into itself")
    _theme_exists(store, source_id)
    _theme_exists(store, target_id)
    return store.merge_theme(source_id, target_id, iso_utc(now_utc()))


def split(store: Store, theme_id: int, *, seed: int = 0) -> tuple[int, int]:
    """Split a theme in two by the words of its records; returns the two new themes' ids."""
    from sklearn.cluster import KMeans

    _theme_exists(store, theme_id)
    rows = store.theme_record_texts(theme_id)
    if len(rows) < 4:
        raise ThemeError("a theme needs at least 4 records to be split")
    texts = [clean_text(t, c) for _, t, c in rows]
    vectorizer = _vectorizer(min_df=1)
    vectors = vectorizer.fit_transform(texts)
    kmeans = KMeans(n_clusters=2, random_state=seed, n_init=5).fit(vectors)
    if len(set(kmeans.labels_)) < 2:
        raise ThemeError("the records of this theme are too alike to split")
    model = load_model(store)
    now = iso_utc(now_utc())
    parts: list[tuple[str, str, str]] = []
    for part in (0, 1):
        part_texts = [text for text, label in zip(texts, kmeans.labels_) if label == part]
        # The parts' centroids in the store's vocabulary, so new records and re-computations can place them.
        if model is not None:
            centre = model.vectorizer().transform(part_texts).mean(axis=0).A1
            top = centre.argsort()[::-1][:CENTROID_TERMS]
            centroid = {model.terms[i]: round(float(centre[i]), 5) for i in top if centre[i] > 0}
        else:
            centroid = {}
        local = kmeans.cluster_centers_[part]
        names = vectorizer.get_feature_names_out()
        local_centroid = {names[i]: float(local[i]) for i in local.argsort()[::-1][:40] if local[i] > 0}
        name, defining = _name_and_terms(local_centroid, part_texts)
        parts.append((name, json.dumps(defining), json.dumps(centroid)))
    new_ids = store.save_theme_split(theme_id, parts, [(int(label), row[0]) for row, label in zip(rows, kmeans.labels_)],
                                     now)
    return new_ids[0], new_ids[1]


def _resplit(store: Store, parent: int) -> None:
    """After a re-computation: the records of a split theme's parts go to the nearer part again."""
    model = load_model(store)
    parts = store.split_parts(parent)
    if model is None or len(parts) != 2 or not all(p in model.centroids for p in parts):
        return
    rows = store.themes_record_texts(parts)
    if not rows:
        return
    sub = Model(model.terms, model.idf, {p: model.centroids[p] for p in parts})
    placements = _placements(sub, [clean_text(t, c) for _, t, c in rows])
    store.move_records([(theme if theme else parts[0], row[0]) for row, (theme, _, _) in zip(rows, placements)])


# -- reading themes ------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ThemeInfo:
    id: int
    name: str
    auto_name: str
    terms: tuple[tuple[str, float], ...]
    pinned: bool
    hidden: bool
    merged_into: int | None
    split_from: int | None

    @property
    def defining_words(self) -> str:
        return ", ".join(term for term, _ in self.terms)


def themes(store: Store, *, include_hidden: bool = True) -> dict[int, ThemeInfo]:
    if not _has_tables(store):
        return {}
    found = {}
    for row in store.live_theme_rows():
        info = ThemeInfo(int(row[0]), row[1], row[2], tuple((t, float(w)) for t, w in json.loads(row[3])),
                         bool(row[4]), bool(row[5]), row[6], row[7])
        if include_hidden or not info.hidden:
            found[info.id] = info
    return found


def _has_tables(store: Store) -> bool:
    return store.has_theme_tables()


def has_model(store: Store) -> bool:
    return _has_tables(store) and store.has_theme_model()


def why(store: Store, source: str, source_id: str) -> dict[str, Any] | None:
    """Why a record is in its theme: the theme, the words they share (heaviest first), and its near-duplicates."""
    row = store.record_theme_row(source, source_id)
    if row is None:
        return None
    rowid, title, content, theme_id, score, dup_key = row
    similar = 0
    if dup_key:
        similar = store.duplicates_count(dup_key, rowid)
    info = themes(store).get(int(theme_id)) if theme_id else None
    shared: list[str] = []
    model = load_model(store)
    if info is not None and model is not None:
        vector = model.vectorizer().transform([clean_text(title, content)])
        centroid = json.loads(store.theme_centroid(info.id))
        weights = {model.terms[i]: float(v) * centroid.get(model.terms[i], 0.0)
                   for i, v in zip(vector.indices, vector.data)}
        shared = [term for term, weight in sorted(weights.items(), key=lambda item: -item[1]) if weight > 0][:5]
    return {"theme": info, "similarity": score, "shared_words": shared, "similar_records": similar,
            "dup_key": dup_key}


def similar_records(store: Store, source: str, source_id: str, limit: int = 20) -> list[dict[str, Any]]:
    return store.duplicate_rows(source, source_id, limit)


def quotes(store: Store, theme_id: int, *, start: str | None = None, end: str | None = None,
           extra_where: str = "", params: Sequence[Any] = (), limit: int = QUOTES) -> list[dict[str, Any]]:
    """The theme's most representative records (nearest its centre), one per near-duplicate group: the customers'
    own words, to be shown as plain text."""
    rows = store.theme_quote_rows(theme_id, start=start, end=end, extra_where=extra_where, params=params)
    chosen, seen = [], set()
    for row in rows:
        key = row["dup_key"] or f"{row['source']}:{row['source_id']}"
        if key in seen:
            continue
        seen.add(key)
        chosen.append(row)
        if len(chosen) == limit:
            break
    return chosen


# -- runs in the background ----------------------------------------------------------------------------------------


def latest_run(store: Store) -> dict[str, Any] | None:
    if not _has_tables(store):
        return None
    return store.latest_theme_run()


def run_recompute(db_path: str, *, sample_size: int = SAMPLE_SIZE) -> int:
    """Re-compute in this thread, reporting progress in `theme_runs` (its own connection: call it from a worker)."""
    with Store(db_path) as store:
        run_id, started = store.begin_theme_run(started_at=iso_utc(now_utc()), pid=os.getpid(), now=time.time(),
                                                busy_for=60)
        if not started:
            return run_id  # one at a time: the running one is reported

        def progress(fraction: float, message: str) -> None:
            store.theme_run_progress(run_id, round(fraction, 3), message, time.time())

        try:
            report = recompute(store, progress=progress, sample_size=sample_size)
        except Exception as error:  # noqa: BLE001 - reported on the run row, for the page to show
            store.fail_theme_run(run_id, f"{type(error).__name__}: {error}"[:300], iso_utc(now_utc()))
            return run_id
        store.complete_theme_run(run_id, message=f"{report.themes} themes from {report.records:,} records",
                                 finished_at=iso_utc(now_utc()), records=report.records, themes=report.themes,
                                 seconds=report.seconds, peak_rss_mb=report.peak_rss_mb)
        return run_id


def start_recompute(db_path: str) -> threading.Thread:
    """Start a re-computation on a worker thread owned by the process (the app's server), not by a page."""
    thread = threading.Thread(target=run_recompute, args=(db_path,), name="themes-recompute", daemon=True)
    thread.start()
    return thread
