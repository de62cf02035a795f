"""The Demand view's SQL: records of a period grouped by account (its highest tier, merges applied), then by theme,
scored by tier weights; saved searches as themes; the sampled text of emerging topics. insights.py says what is
asked (scopes, weights, theme keys) and shapes what comes back.

Everything here reads idx_feedback_accounts (the account key is an indexed column, see accounts.py) except the
sampled text.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .queries import Filters

# An account's tier rank from one record's tier; insights.TIER_RANKS holds the same ranks by name.
_RANK_SQL = (
    "CASE f.customer_tier WHEN 'enterprise' THEN 4 WHEN 'business' THEN 3 WHEN 'professional' THEN 2 "
    "WHEN 'free' THEN 1 ELSE 0 END"
)


@dataclass(frozen=True)
class DemandWindow:
    """What the SQL needs of a Demand scope: the period as [start, end) ISO days, the record filters, and the
    weight of each tier rank (every rank, lowest first: the per-tier counts come in this order too)."""

    start: str
    end: str  # exclusive
    sources: tuple[str, ...]
    categories: tuple[str, ...]
    ranks: tuple[int, ...]  # account tier ranks to keep; empty: all
    sentiments: tuple[str, ...]
    weights: tuple[tuple[int, float], ...]  # (rank, weight)


def _in(column: str, values: Sequence[str], params: list[Any]) -> str:
    params.extend(values)
    return f"{column} IN ({', '.join('?' * len(values))})"


def _weight_case(window: DemandWindow, column: str, params: list[Any]) -> str:
    whens = []
    for rank, weight in window.weights:
        whens.append(f"WHEN {rank} THEN ?")
        params.append(weight)
    return f"(CASE {column} {' '.join(whens)} END)"


def _aggregate_columns(window: DemandWindow, sources: Sequence[str], params: list[Any]) -> str:
    """Per theme, from `theme_accounts` rows (one per theme and account): score, accounts, records, per source and
    per tier counts."""
    columns = [f"SUM({_weight_case(window, 'rank', params)}) AS score", "COUNT(*) AS accounts",
               "SUM(records) AS records"]
    columns += [f"SUM(s{i}) AS s{i}" for i in range(len(sources))]
    columns += [f"SUM(rank = {rank}) AS t{rank}" for rank, _ in window.weights]
    return ", ".join(columns)


def _per_source_sums(sources: Sequence[str], params: list[Any]) -> str:
    parts = []
    for i, source in enumerate(sources):
        parts.append(f"SUM(c.source = ?) AS s{i}")
        params.append(source)
    return "".join(", " + part for part in parts)


class DemandReads:
    """Demand's aggregates over accounts, and the saved searches it ranks as themes."""

    conn: sqlite3.Connection

    if TYPE_CHECKING:
        def write(self) -> Any: ...
        def has_account_merges(self) -> bool: ...

    def _temporary_data_in_memory(self) -> None:
        """Sorting and deduplicating a quarter of a million keys spills to a temporary file otherwise. Switching
        drops the connection's temporary tables, so a connection that holds some is left as it is."""
        conn = self.conn
        if conn.execute("PRAGMA temp_store").fetchone()[0] != 2 and not conn.execute(
            "SELECT 1 FROM temp.sqlite_master LIMIT 1"
        ).fetchone():
            conn.execute("PRAGMA temp_store = MEMORY")

    def _demand_ctes(self, window: DemandWindow, params: list[Any]) -> str:
        """CTEs `account_ranks` (each account of the period with its highest tier rank, whatever the other filters)
        and `chosen` (the scope's records, each with its account and that rank). Both read idx_feedback_accounts
        alone."""
        self._temporary_data_in_memory()
        merged = self.has_account_merges()
        account = "COALESCE(m.account, f.account_key)" if merged else "f.account_key"
        join = " LEFT JOIN account_merges m ON m.alias = f.account_key" if merged else ""
        period = [window.start, window.end]
        params.extend(period)
        # DISTINCT first: it dedupes into a small lookup table as rows stream by, where GROUP BY would sort every row.
        ranks = (
            f"account_ranks AS MATERIALIZED (SELECT account, MAX(rank) AS rank FROM (SELECT DISTINCT {account} AS account,"
            f" {_RANK_SQL} AS rank FROM feedback f INDEXED BY idx_feedback_accounts{join}"
            " WHERE f.created_at >= ? AND f.created_at < ?) GROUP BY account)"
        )
        params.extend(period)
        conditions = ["f.created_at >= ?", "f.created_at < ?"]
        if window.sources:
            conditions.append(_in("f.source", window.sources, params))
        if window.categories:
            conditions.append(_in("f.category", window.categories, params))
        if window.ranks:
            conditions.append(f"a.rank IN ({', '.join(str(rank) for rank in window.ranks)})")
        if window.sentiments:
            conditions.append(_in("f.sentiment_label", window.sentiments, params))
        chosen = (
            f"chosen AS (SELECT f.id, f.source, f.category, a.account, a.rank, f.theme_id, f.sentiment_label"
            # CROSS JOIN keeps the records outside: each looks its account up, instead of each account scanning the period.
            f" FROM feedback f INDEXED BY idx_feedback_accounts{join} CROSS JOIN account_ranks a ON a.account = {account}"
            f" WHERE {' AND '.join(conditions)})"
        )
        return f"{ranks}, {chosen}"

    # -- category x tag themes -------------------------------------------------------------------------------------

    def demand_tag_rows(self, window: DemandWindow, sources: Sequence[str]) -> list[tuple[Any, ...]]:
        """Per category and tag (None: the category's untagged records): score, accounts, records, records per
        source (in `sources` order) and accounts per tier rank."""
        params: list[Any] = []
        ctes = self._demand_ctes(window, params)
        sums = _per_source_sums(sources, params)
        aggregates = _aggregate_columns(window, sources, params)
        # LEFT JOIN: a record without tags lands in its category's "no tag" row, reported apart from the ranking.
        sql = (
            f"WITH {ctes}, theme_accounts AS ("
            f" SELECT c.category, t.tag, c.account, MAX(c.rank) AS rank, COUNT(*) AS records{sums}"
            " FROM chosen c LEFT JOIN feedback_tags t ON t.feedback_id = c.id GROUP BY c.category, t.tag, c.account)"
            f" SELECT category, tag, {aggregates} FROM theme_accounts GROUP BY category, tag"
        )
        return self.conn.execute(sql, params).fetchall()

    def demand_untagged_accounts(self, window: DemandWindow) -> int:
        """Distinct accounts behind the scope's untagged records, over all categories."""
        params: list[Any] = []
        ctes = self._demand_ctes(window, params)
        sql = (
            f"WITH {ctes} SELECT COUNT(DISTINCT c.account) FROM chosen c "
            "WHERE NOT EXISTS (SELECT 1 FROM feedback_tags t WHERE t.feedback_id = c.id)"
        )
        return int(self.conn.execute(sql, params).fetchone()[0])

    # -- saved searches as themes ----------------------------------------------------------------------------------

    def demand_saved_rows(self, window: DemandWindow, sources: Sequence[str],
                          searches: Sequence[tuple[int, str]]) -> list[tuple[Any, ...]]:
        """Per saved theme, given as (id, FTS5 query): its id, then the columns of demand_tag_rows after the tag."""
        params: list[Any] = []
        ctes = self._demand_ctes(window, params)
        parts = []
        for theme_id, fts in searches:
            sums = _per_source_sums(sources, params)
            params.append(fts)
            parts.append(
                f"SELECT {int(theme_id)} AS theme, c.account, MAX(c.rank) AS rank, COUNT(*) AS records{sums} FROM chosen c "
                "WHERE c.id IN (SELECT rowid FROM feedback_fts WHERE feedback_fts MATCH ?) GROUP BY c.account"
            )
        aggregates = _aggregate_columns(window, sources, params)
        sql = (
            f"WITH {ctes}, theme_accounts AS ({' UNION ALL '.join(parts)})"
            f" SELECT theme, {aggregates} FROM theme_accounts GROUP BY theme"
        )
        return self.conn.execute(sql, params).fetchall()

    def save_search_theme(self, name: str, query: str, created_at: str) -> tuple[Any, ...]:
        """Save a search under a name (replacing the query of one with that name); returns (id, name, query,
        created_at)."""
        with self.write() as conn:
            conn.execute(
                "INSERT INTO saved_themes (name, query, created_at) VALUES (?, ?, ?) "
                "ON CONFLICT (name) DO UPDATE SET query = excluded.query, created_at = excluded.created_at",
                (name, query, created_at),
            )
            row: tuple[Any, ...] = conn.execute(
                "SELECT id, name, query, created_at FROM saved_themes WHERE name = ?", (name,)).fetchone()
        return row

    def delete_search_theme(self, theme_id: int) -> bool:
        with self.write() as conn:
            return bool(conn.execute("DELETE FROM saved_themes WHERE id = ?", (theme_id,)).rowcount > 0)

    def search_theme_rows(self) -> list[tuple[Any, ...]]:
        """(id, name, query, created_at) of every saved search, by name; none when the table is missing."""
        exists = self.conn.execute(
            "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'saved_themes'").fetchone()
        if not exists:
            return []
        return self.conn.execute(
            "SELECT id, name, query, created_at FROM saved_themes ORDER BY name COLLATE NOCASE, id").fetchall()

    # -- themes found in the text ----------------------------------------------------------------------------------

    def demand_discovered_rows(self, window: DemandWindow, sources: Sequence[str]) -> list[tuple[Any, ...]]:
        """Per discovered theme: its id, its negative records, then the columns of demand_tag_rows after the tag."""
        params: list[Any] = []
        ctes = self._demand_ctes(window, params)
        sums = _per_source_sums(sources, params)
        aggregates = _aggregate_columns(window, sources, params)
        sql = (
            f"WITH {ctes}, theme_accounts AS ("
            f" SELECT c.theme_id, c.account, MAX(c.rank) AS rank, COUNT(*) AS records,"
            f" SUM(c.sentiment_label = 'negative') AS negative{sums}"
            " FROM chosen c WHERE c.theme_id > 0 GROUP BY c.theme_id, c.account)"
            f" SELECT theme_id, SUM(negative), {aggregates} FROM theme_accounts GROUP BY theme_id"
        )
        return self.conn.execute(sql, params).fetchall()

    def demand_unthemed(self, window: DemandWindow) -> tuple[int, int]:
        """(records, distinct accounts) of the scope near no discovered theme."""
        params: list[Any] = []
        ctes = self._demand_ctes(window, params)
        row = self.conn.execute(
            f"WITH {ctes} SELECT COUNT(*), COUNT(DISTINCT account) FROM chosen c WHERE COALESCE(c.theme_id, 0) = 0", params
        ).fetchone()
        return int(row[0]), int(row[1])

    # -- the accounts behind a theme -------------------------------------------------------------------------------

    def demand_account_rows(self, window: DemandWindow, kind: str, match: Any, tag: str | None,
                            limit: int) -> list[tuple[Any, ...]]:
        """The heaviest accounts of a theme: (account, rank, weight, records, people, sources joined by commas,
        last created_at). `kind` saved: `match` is an FTS5 query; discovered: a theme id; otherwise a category,
        with `tag` (None: its untagged records)."""
        params: list[Any] = []
        ctes = self._demand_ctes(window, params)
        if kind == "saved":
            selection = "c.id IN (SELECT rowid FROM feedback_fts WHERE feedback_fts MATCH ?)"
            params.append(match)
        elif kind == "discovered":
            selection = "c.theme_id = ?"
            params.append(match)
        else:
            selection = "c.category = ?"
            params.append(match)
            if tag is None:
                selection += " AND NOT EXISTS (SELECT 1 FROM feedback_tags t WHERE t.feedback_id = c.id)"
            else:
                # A seek per record of the scope: `IN (SELECT …)` would first collect every id the tag has, all periods.
                selection += " AND EXISTS (SELECT 1 FROM feedback_tags t WHERE t.feedback_id = c.id AND t.tag = ?)"
                params.append(tag)
        weight = _weight_case(window, "a.rank", params)
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
        return self.conn.execute(sql, params).fetchall()

    def demand_account_count(self, window: DemandWindow) -> int:
        """Distinct accounts behind the scope's records."""
        params: list[Any] = []
        ctes = self._demand_ctes(window, params)
        return int(self.conn.execute(f"WITH {ctes} SELECT COUNT(DISTINCT account) FROM chosen", params).fetchone()[0])

    # -- emerging topics -------------------------------------------------------------------------------------------

    def sampled_texts(self, filters: Filters, step: int) -> Iterator[tuple[str | None, str | None]]:
        """(title, content) of the filtered records, only every step-th record id past 1 (spread over the whole
        period, and the same sample on every run); read as it is iterated."""
        where, params = filters.where()
        if step > 1:
            where += " AND feedback.id % ? = 0"
            params = [*params, step]
        return iter(self.conn.execute(f"SELECT title, content FROM feedback WHERE {where}", params))
