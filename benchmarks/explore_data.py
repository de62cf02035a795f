"""A large, realistic store for the Explore and export figures, generated straight into Store.upsert_records.

Distributions follow what the emulator serves and what a mid-size SaaS help desk sees: half the feedback from
Zendesk, a third from Intercom, the rest from surveys; tiers skewed to the paid plans; a year of dates with
quieter weekends and growth over the year; a few heavy customers and a long tail; tags and words drawn from
Zipf-like vocabularies so that some searches match 10 % of the store and others a handful of records.

The store is cached under benchmarks/out/ and reused while its generator version and schema version match.
"""

from __future__ import annotations

import itertools
import random
import time
from collections.abc import Callable, Iterator
from datetime import date, datetime, timedelta, timezone
from pathlib import Path

from feedback_sources.models import Category, NormalizedRecord, Tier
from feedback_sources.store import SCHEMA_VERSION, Store

GENERATOR_VERSION = 2
BATCH = 5_000
DAYS = 365

SOURCES = (("zendesk", 0.50), ("intercom", 0.35), ("surveymonkey", 0.15))
TIERS = ((Tier.enterprise, 0.12), (Tier.business, 0.23), (Tier.professional, 0.30), (Tier.free, 0.25), (None, 0.10))
CATEGORIES = (
    (Category.bug_report, 0.24), (Category.feature_request, 0.20), (Category.support, 0.22),
    (Category.question, 0.14), (Category.praise, 0.06), (Category.complaint, 0.09), (Category.other, 0.05),
)
# Topics carry the words a PM searches for; the first ones are the common complaints.
TOPICS = (
    ("export", "CSV export", ("export", "csv", "download", "spreadsheet", "columns")),
    ("billing", "Invoice", ("invoice", "billing", "charge", "refund", "vat")),
    ("login", "Login", ("login", "password", "sso", "saml", "locked")),
    ("performance", "Dashboard speed", ("slow", "dashboard", "timeout", "loading", "lag")),
    ("integrations", "Slack integration", ("slack", "integration", "webhook", "api", "token")),
    ("mobile", "Mobile app", ("mobile", "ios", "android", "crash", "offline")),
    ("notifications", "Email notifications", ("notifications", "email", "digest", "unsubscribe", "alerts")),
    ("reporting", "Reports", ("report", "chart", "filter", "pivot", "schedule")),
    ("permissions", "User roles", ("permissions", "roles", "admin", "invite", "seats")),
    ("onboarding", "Getting started", ("onboarding", "setup", "tutorial", "import", "trial")),
)
# Half the feedback is about none of them in particular; the other half falls on the topics by a Zipf law.
GENERAL = ("general", "Feedback", ())
TOPIC_WEIGHTS = (sum(1 / (rank + 1) ** 0.8 for rank in range(len(TOPICS))),
                 *(1 / (rank + 1) ** 0.8 for rank in range(len(TOPICS))))
FILLER = (
    "the we our team it when after before every time this that is was not can cannot please would could should "
    "really again still also since today yesterday week month customers users account workspace page button "
    "screen settings error message update version browser chrome firefox safari windows mac works worked broken "
    "fix fixed issue problem help need want like love hate great terrible confusing easy hard quick faster "
    "missing feature option way able unable keeps stopped started shows showing shown appears wrong right data"
).split()
TITLE_WORDS = tuple(FILLER[:20])
TAGS = (
    "bug", "feature-request", "billing", "login", "sso", "mobile", "ios", "android", "performance",
    "dashboard", "slack", "api", "webhook", "notifications", "reports", "permissions", "onboarding", "vip",
    "churn-risk", "enterprise", "renewal", "escalated", "tier2", "docs", "ux", "accessibility", "security",
    "gdpr", "invoice", "refund", "trial", "import", "csv", "timeout", "crash", "search", "filters", "email",
    "integration", "salesforce", "hubspot", "zapier", "calendar", "timezone", "localization", "pricing",
    "seats", "audit-log", "2fa",
)
TAG_WEIGHTS = tuple(1 / (rank + 1) for rank in range(len(TAGS)))
FIRST_NAMES = ("Ana", "Ben", "Chloé", "Dev", "Elif", "Farid", "Grace", "Hiro", "Ines", "Jonas", "Kofi", "Lena",
               "Mateo", "Nora", "Omar", "Priya", "Quinn", "Rosa", "Sven", "Tariq", "Uma", "Viktor", "Wen", "Yara")
LAST_NAMES = ("Alvarez", "Brown", "Chen", "Dubois", "Eriksen", "Fischer", "García", "Hughes", "Ito", "Jensen",
              "Kowalski", "Larsen", "Müller", "Nakamura", "Okafor", "Patel", "Rossi", "Silva", "Tanaka", "Weber")
CUSTOMERS = 60_000


def _cumulative(weights: tuple[float, ...]) -> list[float]:
    return list(itertools.accumulate(weights))


def _day_weights() -> list[float]:
    """Quieter weekends, and 60 % more feedback at the end of the year than at its start."""
    weights = []
    for day in range(DAYS):
        weekday = day % 7
        weights.append((0.45 if weekday in (5, 6) else 1.0) * (1.0 + 0.6 * day / DAYS))
    return _cumulative(tuple(weights))


def records(count: int, today: date, seed: int = 41) -> Iterator[list[NormalizedRecord]]:
    """Batches of generated records, created over the DAYS days ending `today` (UTC)."""
    rng = random.Random(seed)
    first_day = datetime.combine(today - timedelta(days=DAYS - 1), datetime.min.time(), tzinfo=timezone.utc)
    source_cw = _cumulative(tuple(w for _, w in SOURCES))
    tier_cw = _cumulative(tuple(w for _, w in TIERS))
    category_cw = _cumulative(tuple(w for _, w in CATEGORIES))
    topics = (GENERAL, *TOPICS)
    topic_cw = _cumulative(TOPIC_WEIGHTS)
    tag_cw = _cumulative(TAG_WEIGHTS)
    day_cw = _day_weights()
    sources = [s for s, _ in SOURCES]
    tiers = [t for t, _ in TIERS]
    categories = [c for c, _ in CATEGORIES]
    counters = dict.fromkeys(sources, 0)
    batch: list[NormalizedRecord] = []
    construct: Callable[..., NormalizedRecord] = NormalizedRecord.model_construct
    # In creation order, as syncs store them (each vendor's export runs oldest change first): row ids then follow
    # dates, and a date-ordered read walks the table instead of jumping around it.
    days = sorted(rng.choices(range(DAYS), cum_weights=day_cw, k=count))
    for day in days:
        source = rng.choices(sources, cum_weights=source_cw)[0]
        counters[source] += 1
        number = counters[source]
        created = first_day + timedelta(days=day, seconds=rng.randrange(86_400))
        updated = created + timedelta(seconds=int(rng.expovariate(1 / 86_400)))
        # Pareto: a few accounts write a lot of the feedback.
        customer = min(CUSTOMERS - 1, int(rng.paretovariate(1.2)) * 7 + rng.randrange(7) - 7)
        customer = customer if rng.random() < 0.7 else rng.randrange(CUSTOMERS)
        first, last = FIRST_NAMES[customer % len(FIRST_NAMES)], LAST_NAMES[(customer // 7) % len(LAST_NAMES)]
        topic_key, topic_title, topic_words = rng.choices(topics, cum_weights=topic_cw)[0]
        category = rng.choices(categories, cum_weights=category_cw)[0]
        words = rng.choices(FILLER, k=rng.randint(14, 55))
        if topic_words:
            at = rng.randrange(len(words))
            words[at:at] = rng.choices(topic_words, k=rng.randint(2, 5))
        tags = list(dict.fromkeys(rng.choices(TAGS, cum_weights=tag_cw, k=rng.randint(0, 4))))
        if topic_words and rng.random() < 0.6 and topic_key not in tags:
            tags.append(topic_key)
        tier = rng.choices(tiers, cum_weights=tier_cw)[0]
        record_id = str(number)
        batch.append(construct(
            source=source,
            source_id=record_id,
            title=f"{topic_title}: {' '.join(rng.choices(topic_words or TITLE_WORDS, k=rng.randint(2, 5)))}",
            content=" ".join(words).capitalize() + ".",
            customer_id=f"c{customer}",
            customer_email=None if rng.random() < 0.03 else f"{first.lower()}.{last.lower()}{customer}@example.com",
            customer_name=f"{first} {last}",
            customer_tier=tier,
            category=category,
            created_at=created,
            metadata={
                "status": rng.choice(("open", "pending", "solved", "closed")),
                "priority": rng.choice(("low", "normal", "high", "urgent", None)),
                "tags": tags,
                "url": f"https://{source}.example/records/{record_id}",
                "updated_at": updated.isoformat(),
                "category_reason": f"topic '{topic_key}'",
                "tier_reason": "requester plan" if tier is not None else "no plan on the customer",
            },
        ))
        if len(batch) == BATCH:
            yield batch
            batch = []
    if batch:
        yield batch


def _indexes(store: Store) -> set[tuple[str, str]]:
    return {(name, " ".join(sql.split())) for name, sql in store.conn.execute(
        "SELECT name, sql FROM sqlite_master WHERE type = 'index' AND sql IS NOT NULL")}


def _same_indexes(store: Store) -> bool:
    """A cached store made while a migration was being written can carry an index the migration no longer makes."""
    with Store(":memory:") as fresh:
        return _indexes(store) == _indexes(fresh)


def store_path(work_dir: Path, count: int) -> Path:
    return work_dir / f"explore-{count}-g{GENERATOR_VERSION}.db"


def ensure_store(work_dir: Path, count: int, log: Callable[[str], None]) -> tuple[Path, date, float | None]:
    """The cached store for `count` records (generated if missing or stale): path, its 'today', build seconds."""
    path = store_path(work_dir, count)
    marker = path.with_suffix(".today")
    if path.exists() and marker.exists():
        with Store(path) as store:  # opening migrates an older schema in place, as the app would
            if store.count() == count and store.schema_version == SCHEMA_VERSION and _same_indexes(store):
                return path, date.fromisoformat(marker.read_text().strip()), None
    for suffix in ("", "-wal", "-shm"):
        Path(f"{path}{suffix}").unlink(missing_ok=True)
    today = datetime.now(timezone.utc).date()
    started = time.perf_counter()
    with Store(path) as store:
        for number, batch in enumerate(records(count, today), start=1):
            store.upsert_records(batch, synced_at="2026-01-01T00:00:00Z")
            if number % 40 == 0:
                log(f"  generated {number * BATCH:,} records ({time.perf_counter() - started:.0f} s)")
        store.conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    marker.write_text(today.isoformat())
    return path, today, time.perf_counter() - started
