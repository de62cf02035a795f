"""Demand: which themes the most (and the biggest) accounts raise, and which words are on the rise.

A theme is a category × tag pair, or a search saved as a theme. Its score counts each account once, at the weight of
the account's tier; the account's tier is the highest plan seen on any of its feedback in the period (an account is a
company: one person on a free seat does not make an enterprise customer a free one). Beside the score: the accounts,
the records per source, and the same score in the previous period of equal length.

Emerging topics are words and two-word phrases whose share of records rose most against the previous period: plain
counting over the records' words, with stop words left out and a minimum number of records, so every figure can be
checked by searching for the word in Explore.

All of it runs in SQL over idx_feedback_accounts (the account key is an indexed column, see accounts.py), except the
word counting, which reads a bounded, evenly spread sample of each period's text.
"""

from __future__ import annotations

import math
import re
import sqlite3
import unicodedata
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import date, timedelta
from typing import Any

from . import accounts
from .models import Category, Tier
from .search import SearchSyntaxError, to_fts_query
from .store import UNKNOWN_TIER, Filters, Store, iso_utc, now_utc, read_in_parallel

# Tiers from lowest to highest: an account takes the highest one seen on its feedback.
TIER_RANKS: dict[str, int] = {UNKNOWN_TIER: 0, Tier.free.value: 1, Tier.professional.value: 2,
                              Tier.business.value: 3, Tier.enterprise.value: 4}
TIERS_BY_RANK: dict[int, str] = {rank: tier for tier, rank in TIER_RANKS.items()}
DEFAULT_WEIGHTS: dict[str, float] = {"enterprise": 10.0, "business": 5.0, "professional": 2.0, "free": 1.0,
                                     UNKNOWN_TIER: 1.0}
DEMAND_CATEGORIES: tuple[str, ...] = (Category.feature_request.value,)
NO_TAG = "(no tag)"
MIN_TREND_RECORDS = 6  # fewer records in both periods together make no trend

_RANK_SQL = (
    "CASE f.customer_tier WHEN 'enterprise' THEN 4 WHEN 'business' THEN 3 WHEN 'professional' THEN 2 "
    "WHEN 'free' THEN 1 ELSE 0 END"
)


class ThemeError(ValueError):
    """A saved theme that cannot be saved (no name, or a search that cannot be understood)."""


# -- what is asked -------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class DemandScope:
    """The records a Demand view looks at. Dates are inclusive UTC days; tiers are account tiers."""

    start: date
    end: date
    sources: tuple[str, ...] = ()
    categories: tuple[str, ...] = DEMAND_CATEGORIES
    tiers: tuple[str, ...] = ()
    weights: tuple[tuple[str, float], ...] = tuple(DEFAULT_WEIGHTS.items())
    sentiments: tuple[str, ...] = ()  # negative | neutral | positive: the records' own sentiment

    def __post_init__(self) -> None:
        if self.end < self.start:
            raise ValueError("the period ends before it starts")
        unknown = [tier for tier in self.tiers if tier not in TIER_RANKS]
        if unknown:
            raise ValueError(f"unknown tier {unknown[0]!r}; choose from {', '.join(TIER_RANKS)}")

    @property
    def days(self) -> int:
        return (self.end - self.start).days + 1

    def previous(self) -> DemandScope:
        """The period of equal length just before this one."""
        return replace(self, start=self.start - timedelta(days=self.days), end=self.start - timedelta(days=1))

    def weight(self, tier: str) -> float:
        return float(dict(self.weights).get(tier, DEFAULT_WEIGHTS.get(tier, 1.0)))

    def with_weights(self, weights: Mapping[str, float]) -> DemandScope:
        return replace(self, weights=tuple((tier, float(weights.get(tier, self.weight(tier)))) for tier in TIER_RANKS))


def quarter_start(day: date) -> date:
    return date(day.year, 3 * ((day.month - 1) // 3) + 1, 1)


def this_quarter(today: date) -> tuple[date, date]:
    """The calendar quarter so far: its first day to today."""
    return quarter_start(today), today


def top_enterprise_feature_requests(today: date, weights: Mapping[str, float] | None = None) -> DemandScope:
    """The scope behind "top feature requests from enterprise accounts this quarter"."""
    start, end = this_quarter(today)
    scope = DemandScope(start=start, end=end, categories=(Category.feature_request.value,),
                        tiers=(Tier.enterprise.value,))
    return scope.with_weights(weights) if weights else scope


# -- what comes back -------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ThemeKey:
    """Which records a theme holds: a category and a tag, or a saved search."""

    kind: str  # "discovered" | "tag" | "saved"
    category: str | None = None
    tag: str | None = None
    query: str | None = None
    name: str = ""
    theme_id: int | None = None

    @property
    def label(self) -> str:
        if self.kind in ("saved", "discovered"):
            return self.name
        return f"{self.category} · {self.tag if self.tag is not None else NO_TAG}"


@dataclass(frozen=True)
class Theme:
    key: ThemeKey
    score: float
    accounts: int
    records: int
    records_by_source: tuple[tuple[str, int], ...]
    accounts_by_tier: tuple[tuple[str, int], ...]
    previous_score: float
    previous_accounts: int
    negative: int = 0  # records whose sentiment is negative
    pinned: bool = False
    previous_records: int = 0

    @property
    def trend(self) -> float:
        return self.score - self.previous_score

    @property
    def trend_label(self) -> str:
        if self.previous_score == 0:
            return "new" if self.score else "-"
        return f"{(self.score - self.previous_score) / self.previous_score * 100:+.0f}%"

    @property
    def negative_share(self) -> float:
        return self.negative / self.records if self.records else 0.0

    def honest_trend(self, history_covers_previous: bool, min_records: int = MIN_TREND_RECORDS) -> str:
        """The trend in words, or why there is none: a previous period before the first synced record is not a
        period of zero demand, and a handful of records is no trend."""
        if not history_covers_previous:
            return "no data before this period"
        if self.records + self.previous_records < min_records:
            return "not enough data"
        return self.trend_label


@dataclass(frozen=True)
class DemandReport:
    scope: DemandScope
    themes: tuple[Theme, ...]
    untagged_records: int  # records in scope with no tag (or, for discovered themes, near no theme)
    untagged_accounts: int
    history_covers_previous: bool = True  # the store holds records from before the previous period began


def history_covers(store: Store, scope: DemandScope) -> bool:
    """Whether the previous period lies within what was synced: its first day is on or after the oldest record."""
    first, _ = store.date_bounds()
    return first is not None and first[:10] <= scope.previous().start.isoformat()


@dataclass(frozen=True)
class AccountRow:
    account: str
    label: str
    kind: str  # domain | organization | person | anonymous
    tier: str
    weight: float
    records: int
    people: int
    sources: tuple[str, ...]
    last_feedback: str


# -- SQL building blocks -------------------------------------------------------------------------------------------


def _in(column: str, values: Sequence[str], params: list[Any]) -> str:
    params.extend(values)
    return f"{column} IN ({', '.join('?' * len(values))})"


def _weight_case(scope: DemandScope, column: str, params: list[Any]) -> str:
    whens = []
    for tier, rank in TIER_RANKS.items():
        whens.append(f"WHEN {rank} THEN ?")
        params.append(scope.weight(tier))
    return f"(CASE {column} {' '.join(whens)} END)"


def _temporary_data_in_memory(conn: sqlite3.Connection) -> None:
    """Sorting and deduplicating a quarter of a million keys spills to a temporary file otherwise. Switching drops
    the connection's temporary tables, so a connection that holds some is left as it is."""
    if conn.execute("PRAGMA temp_store").fetchone()[0] != 2 and not conn.execute(
        "SELECT 1 FROM temp.sqlite_master LIMIT 1"
    ).fetchone():
        conn.execute("PRAGMA temp_store = MEMORY")


def _scope_sql(conn: sqlite3.Connection, scope: DemandScope, params: list[Any]) -> str:
    """CTEs `account_ranks` (each account of the period with its highest tier rank, whatever the other filters) and
    `chosen` (the scope's records, each with its account and that rank). Both read idx_feedback_accounts alone."""
    _temporary_data_in_memory(conn)
    merged = accounts.has_merges(conn)
    account = "COALESCE(m.account, f.account_key)" if merged else "f.account_key"
    join = " LEFT JOIN account_merges m ON m.alias = f.account_key" if merged else ""
    period = [scope.start.isoformat(), (scope.end + timedelta(days=1)).isoformat()]
    params.extend(period)
    # DISTINCT first: it dedupes into a small lookup table as rows stream by, where GROUP BY would sort every row.
    ranks = (
        f"account_ranks AS MATERIALIZED (SELECT account, MAX(rank) AS rank FROM (SELECT DISTINCT {account} AS account,"
        f" {_RANK_SQL} AS rank FROM feedback f INDEXED BY idx_feedback_accounts{join}"
        " WHERE f.created_at >= ? AND f.created_at < ?) GROUP BY account)"
    )
    params.extend(period)
    conditions = ["f.created_at >= ?", "f.created_at < ?"]
    if scope.sources:
        conditions.append(_in("f.source", scope.sources, params))
    if scope.categories:
        conditions.append(_in("f.category", scope.categories, params))
    if scope.tiers:
        conditions.append(f"a.rank IN ({', '.join(str(TIER_RANKS[t]) for t in scope.tiers)})")
    if scope.sentiments:
        conditions.append(_in("f.sentiment_label", scope.sentiments, params))
    chosen = (
        f"chosen AS (SELECT f.id, f.source, f.category, a.account, a.rank, f.theme_id, f.sentiment_label"
        # CROSS JOIN keeps the records outside: each looks its account up, instead of each account scanning the period.
        f" FROM feedback f INDEXED BY idx_feedback_accounts{join} CROSS JOIN account_ranks a ON a.account = {account}"
        f" WHERE {' AND '.join(conditions)})"
    )
    return f"{ranks}, {chosen}"


def _sources(store: Store) -> list[str]:
    return store.distinct_values("source")


def _aggregate_columns(scope: DemandScope, sources: Sequence[str], params: list[Any]) -> str:
    """Per theme, from `theme_accounts` rows (one per theme and account): score, accounts, records, per source and
    per tier counts."""
    columns = [f"SUM({_weight_case(scope, 'rank', params)}) AS score", "COUNT(*) AS accounts",
               "SUM(records) AS records"]
    columns += [f"SUM(s{i}) AS s{i}" for i in range(len(sources))]
    columns += [f"SUM(rank = {rank}) AS t{rank}" for rank in TIERS_BY_RANK]
    return ", ".join(columns)


def _per_source_sums(sources: Sequence[str], params: list[Any]) -> str:
    parts = []
    for i, source in enumerate(sources):
        parts.append(f"SUM(c.source = ?) AS s{i}")
        params.append(source)
    return "".join(", " + part for part in parts)


@dataclass(frozen=True)
class _Tally:
    score: float
    accounts: int
    records: int
    by_source: tuple[tuple[str, int], ...]
    by_tier: tuple[tuple[str, int], ...]


def _tally(row: Sequence[Any], offset: int, sources: Sequence[str]) -> _Tally:
    score, accounts_, records = row[offset : offset + 3]
    per_source = row[offset + 3 : offset + 3 + len(sources)]
    per_tier = row[offset + 3 + len(sources) :]
    return _Tally(
        score=float(score or 0),
        accounts=int(accounts_ or 0),
        records=int(records or 0),
        by_source=tuple((s, int(n or 0)) for s, n in zip(sources, per_source) if n),
        by_tier=tuple(
            (TIERS_BY_RANK[rank], int(n or 0))
            for rank, n in sorted(zip(TIERS_BY_RANK, per_tier), reverse=True)
            if n
        ),
    )


# -- category × tag themes -------------------------------------------------------------------------------------------


def _tag_tallies(store: Store, scope: DemandScope, sources: Sequence[str]) -> dict[tuple[str, str | None], _Tally]:
    params: list[Any] = []
    ctes = _scope_sql(store.conn, scope, params)
    sums = _per_source_sums(sources, params)
    aggregates = _aggregate_columns(scope, sources, params)
    # LEFT JOIN: a record without tags lands in its category's "no tag" row, reported apart from the ranking.
    sql = (
        f"WITH {ctes}, theme_accounts AS ("
        f" SELECT c.category, t.tag, c.account, MAX(c.rank) AS rank, COUNT(*) AS records{sums}"
        " FROM chosen c LEFT JOIN feedback_tags t ON t.feedback_id = c.id GROUP BY c.category, t.tag, c.account)"
        f" SELECT category, tag, {aggregates} FROM theme_accounts GROUP BY category, tag"
    )
    return {(row[0], row[1]): _tally(row, 2, sources) for row in store.conn.execute(sql, params)}


def _repeats_a_facet(tag: str, sources: Sequence[str]) -> bool:
    """A tag that only says the record's category, tier, plan or source ("feature_request", "enterprise") is no
    theme: ranked, it would lead every list with what the filters already say."""
    folded = tag.strip().lower().replace("-", "_").replace(" ", "_")
    facets = {c.value for c in Category} | set(TIER_RANKS) | {s.lower() for s in sources}
    words = {"bug", "feature", "request", "question", "praise", "complaint", "support", "plan", "paid", "trial"}
    return folded in facets or folded in words or folded.replace("_plan", "") in facets


def _distinct_untagged_accounts(store: Store, scope: DemandScope) -> int:
    params: list[Any] = []
    ctes = _scope_sql(store.conn, scope, params)
    sql = (
        f"WITH {ctes} SELECT COUNT(DISTINCT c.account) FROM chosen c "
        "WHERE NOT EXISTS (SELECT 1 FROM feedback_tags t WHERE t.feedback_id = c.id)"
    )
    return int(store.conn.execute(sql, params).fetchone()[0])


def _ordered(themes: Iterable[Theme]) -> list[Theme]:
    return sorted(themes, key=lambda t: (-t.score, -t.accounts, -t.records, t.key.label))


def rank_tag_themes(store: Store, scope: DemandScope, *, limit: int = 25) -> DemandReport:
    """Category × tag themes by weighted distinct accounts, with the previous period's score for the shown ones."""
    sources = _sources(store)
    current, before = read_in_parallel(store, lambda own: _tag_tallies(own, scope, sources),
                                   lambda own: _tag_tallies(own, scope.previous(), sources))
    untagged = [tally for (_, tag), tally in current.items() if tag is None]
    ranked = _ordered(
        Theme(ThemeKey("tag", category, tag), t.score, t.accounts, t.records, t.by_source, t.by_tier, 0.0, 0)
        for (category, tag), t in current.items()
        if tag is not None and not _repeats_a_facet(tag, sources)
    )[:limit]
    shown = [(theme.key.category or "", theme.key.tag or "") for theme in ranked]
    themes = tuple(
        replace(theme, previous_score=before[pair].score, previous_accounts=before[pair].accounts)
        if pair in before else theme
        for theme, pair in zip(ranked, shown)
    )
    untagged_records = sum(t.records for t in untagged)
    # Accounts can write untagged records in several categories: counted once over all of them.
    untagged_accounts = _distinct_untagged_accounts(store, scope) if len(untagged) > 1 else sum(
        t.accounts for t in untagged)
    return DemandReport(scope, themes, untagged_records, untagged_accounts)


# -- saved searches as themes -----------------------------------------------------------------------------------------

# The saved_themes table is part of the store's schema (store/schema.py).


@dataclass(frozen=True)
class SavedTheme:
    id: int
    name: str
    query: str
    created_at: str


def save_theme(store: Store, name: str, query: str) -> SavedTheme:
    """Save a search as a theme (replacing the query of a theme with the same name)."""
    name, query = " ".join(name.split()), query.strip()
    if not name:
        raise ThemeError("Give the theme a name.")
    try:
        if to_fts_query(query) is None:
            raise ThemeError("Type the words that make up the theme.")
    except SearchSyntaxError as error:
        raise ThemeError(f"The search is not understood: {error}") from None
    created_at = iso_utc(now_utc())
    with store.write() as conn:
        conn.execute(
            "INSERT INTO saved_themes (name, query, created_at) VALUES (?, ?, ?) "
            "ON CONFLICT (name) DO UPDATE SET query = excluded.query, created_at = excluded.created_at",
            (name, query, created_at),
        )
        row = conn.execute("SELECT id, name, query, created_at FROM saved_themes WHERE name = ?", (name,)).fetchone()
    return SavedTheme(*row)


def delete_theme(store: Store, theme_id: int) -> bool:
    with store.write() as conn:
        return conn.execute("DELETE FROM saved_themes WHERE id = ?", (theme_id,)).rowcount > 0


def saved_themes(store: Store) -> list[SavedTheme]:
    exists = store.conn.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'saved_themes'").fetchone()
    if not exists:
        return []
    rows = store.conn.execute("SELECT id, name, query, created_at FROM saved_themes ORDER BY name COLLATE NOCASE, id")
    return [SavedTheme(*row) for row in rows]


def _fts_or_none(query: str) -> str | None:
    """A saved search as FTS5; None when it no longer parses (it then matches nothing rather than failing the view)."""
    try:
        return to_fts_query(query)
    except SearchSyntaxError:
        return None


def _saved_tallies(
    store: Store, scope: DemandScope, sources: Sequence[str], themes: Sequence[SavedTheme]
) -> dict[int, _Tally]:
    searchable = [(theme, fts) for theme in themes if (fts := _fts_or_none(theme.query))]
    if not searchable:
        return {}
    params: list[Any] = []
    ctes = _scope_sql(store.conn, scope, params)
    parts = []
    for theme, fts in searchable:
        sums = _per_source_sums(sources, params)
        params.append(fts)
        parts.append(
            f"SELECT {int(theme.id)} AS theme, c.account, MAX(c.rank) AS rank, COUNT(*) AS records{sums} FROM chosen c "
            "WHERE c.id IN (SELECT rowid FROM feedback_fts WHERE feedback_fts MATCH ?) GROUP BY c.account"
        )
    aggregates = _aggregate_columns(scope, sources, params)
    sql = (
        f"WITH {ctes}, theme_accounts AS ({' UNION ALL '.join(parts)})"
        f" SELECT theme, {aggregates} FROM theme_accounts GROUP BY theme"
    )
    return {int(row[0]): _tally(row, 1, sources) for row in store.conn.execute(sql, params)}


def rank_saved_themes(store: Store, scope: DemandScope) -> tuple[Theme, ...]:
    """Every saved theme (those matching nothing included, at zero), by weighted distinct accounts."""
    themes = saved_themes(store)
    sources = _sources(store)
    current, before = read_in_parallel(store, lambda own: _saved_tallies(own, scope, sources, themes),
                                   lambda own: _saved_tallies(own, scope.previous(), sources, themes))
    empty = _Tally(0.0, 0, 0, (), ())
    ranked = []
    for saved in themes:
        now, then = current.get(saved.id, empty), before.get(saved.id, empty)
        key = ThemeKey("saved", query=saved.query, name=saved.name)
        ranked.append(Theme(key, now.score, now.accounts, now.records, now.by_source, now.by_tier,
                            then.score, then.accounts))
    return tuple(_ordered(ranked))


# -- themes found in the text (themes.py) -----------------------------------------------------------------------------


def _discovered_tallies(store: Store, scope: DemandScope, sources: Sequence[str]) -> dict[int, tuple[_Tally, int]]:
    """Per discovered theme: the tally and how many of its records are negative. Reads the accounts index alone."""
    params: list[Any] = []
    ctes = _scope_sql(store.conn, scope, params)
    sums = _per_source_sums(sources, params)
    aggregates = _aggregate_columns(scope, sources, params)
    sql = (
        f"WITH {ctes}, theme_accounts AS ("
        f" SELECT c.theme_id, c.account, MAX(c.rank) AS rank, COUNT(*) AS records,"
        f" SUM(c.sentiment_label = 'negative') AS negative{sums}"
        " FROM chosen c WHERE c.theme_id > 0 GROUP BY c.theme_id, c.account)"
        f" SELECT theme_id, SUM(negative), {aggregates} FROM theme_accounts GROUP BY theme_id"
    )
    return {int(row[0]): (_tally(row, 2, sources), int(row[1] or 0)) for row in store.conn.execute(sql, params)}


def _unthemed(store: Store, scope: DemandScope) -> tuple[int, int]:
    params: list[Any] = []
    ctes = _scope_sql(store.conn, scope, params)
    row = store.conn.execute(
        f"WITH {ctes} SELECT COUNT(*), COUNT(DISTINCT account) FROM chosen c WHERE COALESCE(c.theme_id, 0) = 0", params
    ).fetchone()
    return int(row[0]), int(row[1])


def rank_discovered_themes(store: Store, scope: DemandScope, *, limit: int = 25) -> DemandReport:
    """Themes found in the customers' words, by weighted distinct accounts; pinned themes first, hidden ones left
    out, each with its previous-period score and its share of negative records."""
    from . import themes as found_themes

    known = found_themes.themes(store)
    sources = _sources(store)
    current, before = read_in_parallel(store, lambda own: _discovered_tallies(own, scope, sources),
                                       lambda own: _discovered_tallies(own, scope.previous(), sources))
    empty = (_Tally(0.0, 0, 0, (), ()), 0)
    ranked = []
    for theme_id, (tally, negative) in current.items():
        info = known.get(theme_id)
        if info is None or info.hidden:
            continue
        then, _ = before.get(theme_id, empty)
        key = ThemeKey("discovered", name=info.name, theme_id=theme_id)
        ranked.append(Theme(key, tally.score, tally.accounts, tally.records, tally.by_source, tally.by_tier,
                            then.score, then.accounts, negative=negative, pinned=info.pinned,
                            previous_records=then.records))
    ordered = sorted(ranked, key=lambda t: (not t.pinned, -t.score, -t.accounts, -t.records, t.key.label))[:limit]
    records, accounts_ = _unthemed(store, scope)
    return DemandReport(scope, tuple(ordered), records, accounts_, history_covers(store, scope))


def unhappy_enterprise_this_month(today: date, weights: Mapping[str, float] | None = None) -> DemandScope:
    """The scope behind "what are enterprise customers unhappy about this month?": every category, negative only."""
    scope = DemandScope(start=today.replace(day=1), end=today, categories=(), tiers=(Tier.enterprise.value,),
                        sentiments=("negative",))
    return scope.with_weights(weights) if weights else scope


# -- the accounts behind a theme ---------------------------------------------------------------------------------------


def theme_accounts(store: Store, scope: DemandScope, key: ThemeKey, *, limit: int = 200) -> list[AccountRow]:
    """The accounts whose feedback makes up a theme, heaviest first."""
    params: list[Any] = []
    ctes = _scope_sql(store.conn, scope, params)
    if key.kind == "saved":
        fts = _fts_or_none(key.query or "")
        if fts is None:
            return []
        selection = "c.id IN (SELECT rowid FROM feedback_fts WHERE feedback_fts MATCH ?)"
        params.append(fts)
    elif key.kind == "discovered":
        selection = "c.theme_id = ?"
        params.append(key.theme_id)
    else:
        selection = "c.category = ?"
        params.append(key.category)
        if key.tag is None:
            selection += " AND NOT EXISTS (SELECT 1 FROM feedback_tags t WHERE t.feedback_id = c.id)"
        else:
            # A seek per record of the scope: `IN (SELECT …)` would first collect every id the tag has, all periods.
            selection += " AND EXISTS (SELECT 1 FROM feedback_tags t WHERE t.feedback_id = c.id AND t.tag = ?)"
            params.append(key.tag)
    weight = _weight_case(scope, "a.rank", params)
    params.append(limit)
    # People: the distinct addresses (or vendor ids) behind the account's records; read from the rows themselves.
    sql = (
        f"WITH {ctes}, theme AS (SELECT c.id, c.account, c.rank FROM chosen c WHERE {selection}),"
        " per_account AS (SELECT account, MAX(rank) AS rank, COUNT(*) AS records FROM theme GROUP BY account),"
        " top_accounts AS (SELECT a.account, a.rank, a.records, " + weight + " AS weight FROM per_account a"
        " ORDER BY weight DESC, a.records DESC, a.account LIMIT ?)"
        " SELECT ta.account, ta.rank, ta.weight, ta.records,"
        " COUNT(DISTINCT COALESCE(lower(f.customer_email), f.source || ':' || f.customer_id,"
        " f.source || ':' || f.source_id)),"
        " group_concat(DISTINCT f.source), MAX(f.created_at)"
        " FROM top_accounts ta JOIN theme t ON t.account = ta.account JOIN feedback f ON f.id = t.id"
        " GROUP BY ta.account ORDER BY ta.weight DESC, ta.records DESC, ta.account"
    )
    rows = store.conn.execute(sql, params).fetchall()
    names = accounts.organization_names(store, (row[0] for row in rows))
    return [
        AccountRow(
            account=row[0],
            label=accounts.account_label(row[0], names.get(row[0])),
            kind=accounts.account_kind(row[0]),
            tier=TIERS_BY_RANK[int(row[1])],
            weight=float(row[2]),
            records=int(row[3]),
            people=int(row[4]),
            sources=tuple(sorted(str(row[5]).split(","))) if row[5] else (),
            last_feedback=str(row[6]),
        )
        for row in rows
    ]


def account_count(store: Store, scope: DemandScope) -> int:
    """Distinct accounts behind the scope's records."""
    params: list[Any] = []
    ctes = _scope_sql(store.conn, scope, params)
    return int(store.conn.execute(f"WITH {ctes} SELECT COUNT(DISTINCT account) FROM chosen", params).fetchone()[0])


# -- links to Explore ------------------------------------------------------------------------------------------------


def explore_params(
    start: date,
    end: date,
    *,
    sources: Sequence[str] = (),
    categories: Sequence[str] = (),
    tiers: Sequence[str] = (),
    tag: str | None = None,
    text: str = "",
) -> dict[str, str]:
    """Explore's URL query parameters for these records (see ui.explore_view.view_from_query_params)."""
    params = {"period": "custom", "start": start.isoformat(), "end": end.isoformat()}
    if sources:
        params["source"] = ",".join(sources)
    if tiers:
        params["tier"] = ",".join(tiers)
    if categories:
        params["category"] = ",".join(categories)
    if text.strip():
        params["q"] = text.strip()
    if tag:
        params["tag"] = tag
    return params


def theme_explore_params(scope: DemandScope, key: ThemeKey) -> dict[str, str]:
    """The theme's records in Explore. Explore filters on each record's own tier, not its account's."""
    if key.kind == "saved":
        return explore_params(scope.start, scope.end, sources=scope.sources, categories=scope.categories,
                              tiers=scope.tiers, text=key.query or "")
    if key.kind == "discovered":
        params = explore_params(scope.start, scope.end, sources=scope.sources, categories=scope.categories,
                                tiers=scope.tiers)
        params["theme"] = str(key.theme_id)
        if scope.sentiments:
            params["sentiment"] = ",".join(scope.sentiments)
        return params
    return explore_params(scope.start, scope.end, sources=scope.sources,
                          categories=(key.category,) if key.category else scope.categories,
                          tiers=scope.tiers, tag=key.tag)


# -- emerging topics ---------------------------------------------------------------------------------------------------

# Words that say nothing about a topic: function words, greetings and sign-offs, the vocabulary of asking for help.
STOP_WORDS: frozenset[str] = frozenset(
    """
    a about above after again against all also am an and any are aren as at be because been before being below
    between both but by can cannot could couldn did didn do does doesn doing don down during each either else
    even ever every few for from further get gets getting got had hadn has hasn have haven having he her here
    hers herself him himself his how however i if in into is isn it its itself just let like ll may me might
    more most much must mustn my myself need needs no nor not now of off often on once one only or other our
    ours ourselves out over own per please re really same shall shan she should shouldn since so some still
    such than that the their theirs them themselves then there these they this those though through to too
    under until up upon us use used using ve very via was wasn way we well were weren what when where whether
    which while who whom whose why will with within without won would wouldn yet you your yours yourself
    yourselves hi hello hey dear thanks thank thx regards best cheers kind sincerely team guys folks ok okay
    yes yeah sure good great hope know think want wanted would able also again anyone someone something
    anything everything nothing thing things lot lots bit today yesterday tomorrow day days week weeks month
    months year years time times currently actually maybe perhaps etc eg ie via re fwd fw sent http https
    www com net org html
    morning afternoon evening helpful amazing awesome fantastic excellent love loved loves nice happy glad
    please quick quickly soon asap advance appreciate appreciated kudos job work works worked working issue
    issues problem problems question questions help center suggestion idea ideas beta join
    """.split()
)
_WORD = re.compile(r"[^\W_]+")
MAX_TEXT_PER_RECORD = 2_000


def words_of(text: str) -> list[str]:
    """Lower-case words without accents, like the full-text index's tokenizer (unicode61 remove_diacritics)."""
    folded = text.lower()
    if not folded.isascii():  # most feedback is: no accents to strip
        folded = "".join(ch for ch in unicodedata.normalize("NFKD", folded) if not unicodedata.combining(ch))
    return _WORD.findall(folded)


def terms_of(text: str) -> set[str]:
    """The topic words and two-word phrases of one record. A stop word, a number or a one-letter word ends a phrase."""
    found: set[str] = set()
    previous: str | None = None
    for word in words_of(text[:MAX_TEXT_PER_RECORD]):
        if len(word) < 2 or word.isdigit() or word in STOP_WORDS:
            previous = None
            continue
        found.add(word)
        if previous is not None:
            found.add(f"{previous} {word}")
        previous = word
    return found


@dataclass(frozen=True)
class EmergingTerm:
    term: str
    kind: str  # "word" | "phrase"
    records: int  # sampled records of this period containing it
    previous_records: int
    share: float  # of the sampled records of this period
    previous_share: float
    lift: float  # how many times its (smoothed) share grew
    search: str  # what to type in Explore to find the records

    def explanation(self) -> str:
        return (
            f"in {self.share:.1%} of records ({self.records:,}) vs {self.previous_share:.1%} "
            f"({self.previous_records:,}) before: {self.lift:.1f}x"
        )


@dataclass(frozen=True)
class EmergingReport:
    start: date
    end: date
    previous_start: date
    previous_end: date
    records: int  # in the period
    previous_records: int
    scanned: int  # how many of them were read (an even sample past max_rows)
    previous_scanned: int
    terms: tuple[EmergingTerm, ...] = field(default_factory=tuple)


def _document_frequencies(store: Store, filters: Filters, total: int, max_rows: int) -> tuple[Counter[str], int]:
    where, params = filters.where()
    step = max(1, math.ceil(total / max_rows)) if max_rows > 0 else 1
    if step > 1:
        # Every step-th record id: spread over the whole period, and the same sample on every run.
        where += " AND feedback.id % ? = 0"
        params = [*params, step]
    counts: Counter[str] = Counter()
    scanned = 0
    for title, content in store.conn.execute(f"SELECT title, content FROM feedback WHERE {where}", params):
        scanned += 1
        counts.update(terms_of(f"{title or ''}\n{content or ''}"))
    return counts, scanned


def emerging_topics(
    store: Store,
    filters: Filters,
    *,
    limit: int = 15,
    min_records: int = 5,
    max_rows: int = 20_000,
) -> EmergingReport:
    """Words and phrases whose share of records rose most from the previous period to this one.

    `filters` must carry a start and an end. Lift is (a+1)/(n+1) ÷ (b+1)/(m+1) for a of n records now and b of m
    before: the +1 keeps a word unseen before from dividing by zero. A word is left out when a listed phrase holding
    it accounts for at least 80% of its records (the phrase says more).
    """
    if filters.start is None or filters.end is None:
        raise ValueError("emerging topics compare two periods: give a start and an end")
    previous = filters.previous_period()
    assert previous is not None and previous.start is not None and previous.end is not None
    total, previous_total = store.count(filters), store.count(previous)
    now, scanned = _document_frequencies(store, filters, total, max_rows)
    before, previous_scanned = _document_frequencies(store, previous, previous_total, max_rows)
    candidates: list[EmergingTerm] = []
    for term, count in now.items():
        if count < min_records:
            continue
        earlier = before.get(term, 0)
        share = count / scanned
        previous_share = earlier / previous_scanned if previous_scanned else 0.0
        lift = ((count + 1) / (scanned + 1)) / ((earlier + 1) / (previous_scanned + 1))
        if share <= previous_share or lift <= 1.0:
            continue
        kind = "phrase" if " " in term else "word"
        search = f'"{term}"' if kind == "phrase" else term
        candidates.append(EmergingTerm(term, kind, count, earlier, share, previous_share, lift, search))
    candidates.sort(key=lambda t: (-t.lift, -t.records, t.term))
    phrases = [t for t in candidates if t.kind == "phrase"]
    chosen: list[EmergingTerm] = []
    for candidate in candidates:
        if candidate.kind == "word" and any(
            candidate.term in phrase.term.split(" ") and phrase.records >= 0.8 * candidate.records
            for phrase in phrases
        ):
            continue
        chosen.append(candidate)
        if len(chosen) == limit:
            break
    return EmergingReport(
        start=filters.start, end=filters.end, previous_start=previous.start, previous_end=previous.end,
        records=total, previous_records=previous_total, scanned=scanned, previous_scanned=previous_scanned,
        terms=tuple(chosen),
    )


def term_explore_params(filters: Filters, term: EmergingTerm) -> dict[str, str]:
    assert filters.start is not None and filters.end is not None
    return explore_params(filters.start, filters.end, sources=filters.sources, categories=filters.categories,
                          tiers=filters.tiers, text=term.search)


# -- periods the Demand page offers ------------------------------------------------------------------------------

DEMAND_PERIODS: dict[str, str] = {
    "quarter": "This quarter",
    "30d": "Last 30 days",
    "90d": "Last 90 days",
    "365d": "Last 12 months",
    "custom": "Custom range",
}


def period_range(preset: str, today: date, custom: Sequence[date] | None = None) -> tuple[date, date]:
    """The inclusive days a period preset stands for; a custom range needs its two dates."""
    if preset == "quarter":
        return this_quarter(today)
    if preset in ("30d", "90d", "365d"):
        return today - timedelta(days=int(preset[:-1]) - 1), today
    if preset == "custom":
        if not custom:
            raise ValueError("Pick a start and an end date.")
        first, last = custom[0], custom[-1]
        return (first, last) if first <= last else (last, first)
    raise ValueError(f"unknown period {preset!r}")
