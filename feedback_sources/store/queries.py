"""Reading the store: Filters, Explore's counts and aggregates, search, and the rows export reads.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, replace
from datetime import date, timedelta
from typing import TYPE_CHECKING, Any

from ..search import to_fts_query
from .schema import FEEDBACK_COLUMNS


# With more full-text matches than this, queries scan an index and check ids against the matches instead of reading
# every matching row by id (a row read costs a few microseconds: rows carry content and metadata).
TEXT_DRIVE_LIMIT = 20_000


UNKNOWN_TIER = "unknown"


@dataclass(frozen=True)
class Filters:
    """What Explore, export and the CLI narrow the store down to. Dates are inclusive calendar days in UTC."""

    sources: tuple[str, ...] = ()
    tiers: tuple[str, ...] = ()  # may include "unknown" for records with no tier
    categories: tuple[str, ...] = ()
    start: date | None = None
    end: date | None = None
    text: str = ""
    tag: str | None = None
    sentiments: tuple[str, ...] = ()  # negative | neutral | positive
    theme_ids: tuple[int, ...] = ()

    def where(self, alias: str = "feedback", *, text_as_filter: bool = False) -> tuple[str, list[Any]]:
        """The SQL condition and its parameters.

        `text_as_filter` keeps SQLite from starting at the full-text matches: with many matches, reading each
        matching row by id costs more than scanning an index and checking ids against the match list.
        """
        clauses: list[str] = []
        params: list[Any] = []
        if self.sources:
            clauses.append(f"{alias}.source IN ({', '.join('?' * len(self.sources))})")
            params.extend(self.sources)
        if self.tiers:
            known = [t for t in self.tiers if t != UNKNOWN_TIER]
            parts = []
            if known:
                parts.append(f"{alias}.customer_tier IN ({', '.join('?' * len(known))})")
                params.extend(known)
            if UNKNOWN_TIER in self.tiers:
                parts.append(f"{alias}.customer_tier IS NULL")
            clauses.append("(" + " OR ".join(parts) + ")")
        if self.categories:
            clauses.append(f"{alias}.category IN ({', '.join('?' * len(self.categories))})")
            params.extend(self.categories)
        if self.start is not None:
            clauses.append(f"{alias}.created_at >= ?")
            params.append(self.start.isoformat())
        if self.end is not None:
            clauses.append(f"{alias}.created_at < ?")
            params.append((self.end + timedelta(days=1)).isoformat())
        if self.tag:
            clauses.append(f"{alias}.id IN (SELECT feedback_id FROM feedback_tags WHERE tag = ?)")
            params.append(self.tag)
        if self.sentiments:
            clauses.append(f"{alias}.sentiment_label IN ({', '.join('?' * len(self.sentiments))})")
            params.extend(self.sentiments)
        if self.theme_ids:
            clauses.append(f"{alias}.theme_id IN ({', '.join('?' * len(self.theme_ids))})")
            params.extend(int(t) for t in self.theme_ids)
        fts = to_fts_query(self.text) if self.text and self.text.strip() else None
        if fts:
            column = f"+{alias}.id" if text_as_filter else f"{alias}.id"  # unary + hides the rowid from the planner
            clauses.append(f"{column} IN (SELECT rowid FROM feedback_fts WHERE feedback_fts MATCH ?)")
            params.append(fts)
        return (" AND ".join(clauses) or "1 = 1"), params

    def previous_period(self) -> Filters | None:
        if self.start is None or self.end is None:
            return None
        length = (self.end - self.start).days + 1
        return replace(self, start=self.start - timedelta(days=length), end=self.start - timedelta(days=1))


class Queries:
    """Reads: Explore's counts and aggregates, search, rows for export and the record view."""

    conn: sqlite3.Connection

    if TYPE_CHECKING:
        import sqlite_utils

        db: sqlite_utils.Database

    def query(self, sql: str, params: Sequence[Any] = ()) -> list[dict[str, Any]]:
        """Rows as dicts straight from sqlite3: what the sync's own bookkeeping reads, without importing sqlite-utils
        (and with it pandas) into a cron'd sync."""
        cursor = self.conn.execute(sql, list(params))
        names = [column[0] for column in cursor.description or ()]
        return [dict(zip(names, row)) for row in cursor.fetchall()]

    # -- reading -----------------------------------------------------------------------------------------------

    def _where(self, filters: Filters) -> tuple[str, list[Any]]:
        """filters.where(), told whether the full-text matches are few enough to start from."""
        return filters.where(text_as_filter=not self._starts_from_text(filters))

    def _starts_from_text(self, filters: Filters) -> bool:
        fts = to_fts_query(filters.text) if filters.text and filters.text.strip() else None
        return fts is not None and self._text_matches(fts) <= TEXT_DRIVE_LIMIT

    def _aggregate_scope(self, filters: Filters) -> tuple[str, str, list[Any]]:
        """FROM and WHERE for a count or a grouping over the filtered records.

        Unless a few full-text matches are the cheaper start, aggregates read the facets index alone: left to
        itself the planner picks an index that spares it a sort (source, created_at) and then reads a wide row
        per record, several seconds on a million records.
        """
        if self._starts_from_text(filters):
            where, params = filters.where()
            return "feedback", where, params
        where, params = filters.where(text_as_filter=True)
        return "feedback INDEXED BY idx_feedback_facets", where, params

    def _text_matches(self, fts: str) -> int:
        # Milliseconds even for a word in every other record: FTS5 counts from its own index.
        return int(self.conn.execute("SELECT COUNT(*) FROM feedback_fts WHERE feedback_fts MATCH ?", (fts,)).fetchone()[0])

    def _daily_scope(self, filters: Filters) -> tuple[str, list[Any]] | None:
        """WHERE over feedback_daily (or feedback_daily_tags, without a sentiment) for these filters, or None when the
        per-day counts cannot answer them (a text search, a tag or a theme, which the counts do not hold): the caller
        reads the records then."""
        if filters.text.strip() or filters.tag or filters.theme_ids:
            return None
        clauses: list[str] = ["records > 0"]  # counts fallen to zero stay as rows until a rebuild
        params: list[Any] = []
        for column, values in (("source", filters.sources), ("category", filters.categories),
                               ("sentiment", filters.sentiments)):
            if values:
                clauses.append(f"{column} IN ({', '.join('?' * len(values))})")
                params.extend(values)
        if filters.tiers:
            tiers = ["" if t == UNKNOWN_TIER else t for t in filters.tiers]
            clauses.append(f"tier IN ({', '.join('?' * len(tiers))})")
            params.extend(tiers)
        if filters.start is not None:
            clauses.append("day >= ?")
            params.append(filters.start.isoformat())
        if filters.end is not None:
            clauses.append("day <= ?")
            params.append(filters.end.isoformat())
        return " AND ".join(clauses), params

    def count(self, filters: Filters = Filters()) -> int:
        if filters == Filters(text=filters.text):
            fts = to_fts_query(filters.text) if filters.text.strip() else None
            if fts is not None:
                # Text alone: the full-text index holds exactly one entry per record (upsert_records and the delete
                # trigger keep it so), so its count is the answer without reading any row.
                return self._text_matches(fts)
        daily = self._daily_scope(filters)
        if daily is not None:
            where, params = daily
            return int(self.conn.execute(f"SELECT ifnull(SUM(records), 0) FROM feedback_daily WHERE {where}",
                                         params).fetchone()[0])
        source, where, params = self._aggregate_scope(filters)
        return int(self.conn.execute(f"SELECT COUNT(*) FROM {source} WHERE {where}", params).fetchone()[0])

    def kpis(self, filters: Filters = Filters()) -> dict[str, Any]:
        if filters == Filters():
            records, customers, enterprise = self._kpis_of_everything()
        else:
            source, where, params = self._aggregate_scope(filters)
            row = self.conn.execute(
                f"SELECT COUNT(*), COUNT(DISTINCT {CUSTOMER_KEY}), "
                f"SUM(customer_tier = 'enterprise') FROM {source} WHERE {where}",
                params,
            ).fetchone()
            records, customers, enterprise = int(row[0]), int(row[1]), int(row[2] or 0)
        previous = filters.previous_period()
        previous_count = self.count(previous) if previous is not None else None
        return {
            "records": records,
            "customers": customers,
            "enterprise_share": (enterprise / records) if records else 0.0,
            "previous_records": previous_count,
        }

    def _kpis_of_everything(self) -> tuple[int, int, int]:
        """(records, distinct customers, enterprise records) of the whole store: Explore's default view.

        The counts come from the per-day table. A customer is its email, or `source:customer_id` without one, as
        CUSTOMER_KEY says; the distinct emails come off the email index in order (no sort, no row read) and the few
        records without an email are looked up through the same index's NULL entries, the two sets joined by UNION
        so a key found in both counts once. A third of a second less than de-duplicating every record's key at a
        million records (figure 4)."""
        records, enterprise = self.conn.execute(
            "SELECT ifnull(SUM(records), 0), ifnull(SUM(CASE WHEN tier = 'enterprise' THEN records END), 0) "
            "FROM feedback_daily").fetchone()
        customers = self.conn.execute(
            "SELECT COUNT(*) FROM ("
            "SELECT customer_email FROM feedback INDEXED BY idx_feedback_customer WHERE customer_email IS NOT NULL "
            "UNION SELECT source || ':' || customer_id FROM feedback INDEXED BY idx_feedback_customer "
            "WHERE customer_email IS NULL AND customer_id IS NOT NULL)").fetchone()[0]
        return int(records), int(customers), int(enterprise)

    def volume_by_day(self, filters: Filters = Filters(), by: str = "category") -> list[dict[str, Any]]:
        column = _group_column(by)
        daily = self._daily_scope(filters)
        if daily is not None and by in _DAILY_GROUPABLE:
            where, params = daily
            return list(self.db.query(
                f"SELECT day, {_DAILY_GROUPABLE[by]} AS grp, SUM(records) AS records FROM feedback_daily "
                f"WHERE {where} GROUP BY day, grp HAVING SUM(records) > 0 ORDER BY day", params))
        source, where, params = self._aggregate_scope(filters)
        return list(
            self.db.query(
                f"SELECT substr(created_at, 1, 10) AS day, {column} AS grp, COUNT(*) AS records "
                f"FROM {source} WHERE {where} GROUP BY day, grp ORDER BY day",
                params,
            )
        )

    def sentiment_by_day(self, filters: Filters = Filters(), by: str = "source") -> list[dict[str, Any]]:
        """Per day and group: records and how many of them are negative. Reads the accounts index, which holds
        the sentiment label beside the facets (a million records take one index scan, no row reads)."""
        column = _group_column(by)
        daily = self._daily_scope(filters)
        if daily is not None and by in _DAILY_GROUPABLE:
            where, params = daily
            return list(self.db.query(
                f"SELECT day, {_DAILY_GROUPABLE[by]} AS grp, SUM(records) AS records, "
                "SUM(CASE sentiment WHEN 'negative' THEN records WHEN '' THEN NULL ELSE 0 END) AS negative "
                "FROM feedback_daily "
                f"WHERE {where} GROUP BY day, grp HAVING SUM(records) > 0 ORDER BY day", params))
        if self._starts_from_text(filters):
            where, params = filters.where()
            source = "feedback"
        else:
            where, params = filters.where(text_as_filter=True)
            source = "feedback INDEXED BY idx_feedback_accounts"
        return list(
            self.db.query(
                f"SELECT substr(created_at, 1, 10) AS day, {column} AS grp, COUNT(*) AS records, "
                f"SUM(sentiment_label = 'negative') AS negative FROM {source} WHERE {where} "
                "GROUP BY day, grp ORDER BY day",
                params,
            )
        )

    def theme_counts(self, filters: Filters = Filters(), limit: int = 10) -> list[dict[str, Any]]:
        """The themes of the filtered records: records and negative records per theme, biggest first."""
        where, params = filters.where()
        return list(
            self.db.query(
                f"SELECT theme_id, COUNT(*) AS records, SUM(sentiment_label = 'negative') AS negative FROM feedback "
                f"WHERE {where} AND theme_id > 0 GROUP BY theme_id ORDER BY records DESC LIMIT ?",
                [*params, limit],
            )
        )

    def breakdown(self, filters: Filters, first: str, second: str) -> list[dict[str, Any]]:
        a, b = _group_column(first), _group_column(second)
        daily = self._daily_scope(filters)
        if daily is not None and first in _DAILY_GROUPABLE and second in _DAILY_GROUPABLE:
            where, params = daily
            return list(self.db.query(
                f"SELECT {_DAILY_GROUPABLE[first]} AS {first}, {_DAILY_GROUPABLE[second]} AS {second}, "
                f"SUM(records) AS records FROM feedback_daily WHERE {where} GROUP BY 1, 2 HAVING SUM(records) > 0 "
                "ORDER BY records DESC", params))
        source, where, params = self._aggregate_scope(filters)
        return list(
            self.db.query(
                f"SELECT {a} AS {first}, {b} AS {second}, COUNT(*) AS records FROM {source} "
                f"WHERE {where} GROUP BY 1, 2 ORDER BY records DESC",
                params,
            )
        )

    def top_tags(self, filters: Filters = Filters(), limit: int = 15) -> list[dict[str, Any]]:
        if filters == Filters():
            # Every record counts: the tags table alone answers, without a join per tag.
            return list(
                self.db.query(
                    "SELECT tag, COUNT(*) AS records FROM feedback_tags GROUP BY tag ORDER BY records DESC, tag LIMIT ?",
                    [limit],
                )
            )
        # The per-day tag counts hold no sentiment: a sentiment filter reads the records.
        daily = None if filters.sentiments else self._daily_scope(filters)
        if daily is not None:
            # Over 90 days of a million records: some 200,000 count rows instead of a join of 500,000 tags.
            where, params = daily
            return list(self.db.query(
                f"SELECT tag, SUM(records) AS records FROM feedback_daily_tags WHERE {where} GROUP BY tag "
                "HAVING SUM(records) > 0 ORDER BY records DESC, tag LIMIT ?", [*params, limit]))
        where, params = self._where(filters)
        return list(
            self.db.query(
                "SELECT t.tag AS tag, COUNT(*) AS records FROM feedback_tags t JOIN feedback ON feedback.id = t.feedback_id "
                f"WHERE {where} GROUP BY t.tag ORDER BY records DESC, tag LIMIT ?",
                [*params, limit],
            )
        )

    def rows(
        self,
        filters: Filters = Filters(),
        *,
        columns: Sequence[str] = FEEDBACK_COLUMNS,
        limit: int | None = 100,
        offset: int = 0,
        order: str = "created_at DESC, id DESC",
    ) -> list[dict[str, Any]]:
        return list(self.iter_rows(filters, columns=columns, limit=limit, offset=offset, order=order))

    def iter_rows(
        self,
        filters: Filters = Filters(),
        *,
        columns: Sequence[str] = FEEDBACK_COLUMNS,
        limit: int | None = None,
        offset: int = 0,
        order: str = "created_at DESC, id DESC",
    ) -> Iterator[dict[str, Any]]:
        cursor = self._select(filters, columns, limit=limit, offset=offset, order=order)
        names = [d[0] for d in cursor.description]
        for row in cursor:
            yield dict(zip(names, row))

    def iter_values(
        self,
        filters: Filters = Filters(),
        *,
        columns: Sequence[str] = FEEDBACK_COLUMNS,
        expression: Callable[[str], str] | None = None,
        order: str = "created_at DESC, id DESC",
    ) -> Iterator[tuple[Any, ...]]:
        """The filtered rows as plain tuples, each column read through `expression(column)` (SQL) when given: for
        streams of millions of rows, where a dict and a Python call per cell cost more than SQLite's own work."""
        return iter(self._select(filters, columns, expression=expression, order=order))

    def _select(
        self,
        filters: Filters,
        columns: Sequence[str],
        *,
        expression: Callable[[str], str] | None = None,
        limit: int | None = None,
        offset: int = 0,
        order: str,
    ) -> sqlite3.Cursor:
        unknown = [c for c in columns if c not in FEEDBACK_COLUMNS]
        if unknown:
            raise ValueError(f"unknown columns: {', '.join(unknown)}; choose from {', '.join(FEEDBACK_COLUMNS)}")
        if order not in ("created_at DESC, id DESC", "created_at ASC, id ASC"):
            raise ValueError("unsupported order")
        where, params = self._where(filters)
        # No aliases: an alias named like a column would be what WHERE and ORDER BY read, and ORDER BY an expression
        # sorts every row instead of walking the index.
        selected = ", ".join(map(expression, columns)) if expression else ", ".join(columns)
        sql = f"SELECT {selected} FROM feedback WHERE {where} ORDER BY {order}"
        if limit is not None:
            sql += " LIMIT ? OFFSET ?"
            params = [*params, limit, offset]
        return self.conn.execute(sql, params)

    def get_record(self, source: str, source_id: str) -> dict[str, Any] | None:
        cursor = self.conn.execute(
            f"SELECT {', '.join(FEEDBACK_COLUMNS)} FROM feedback WHERE source = ? AND source_id = ?", (source, source_id)
        )
        row = cursor.fetchone()
        if row is None:
            return None
        record = dict(zip(FEEDBACK_COLUMNS, row))
        record["metadata"] = json.loads(record["metadata"])
        record["tags"] = json.loads(record["tags"])
        return record

    def record_sentiment(self, source: str, source_id: str) -> tuple[Any, ...] | None:
        """(sentiment, sentiment_label) of one record."""
        row: tuple[Any, ...] | None = self.conn.execute(
            "SELECT sentiment, sentiment_label FROM feedback WHERE source = ? AND source_id = ?", (source, source_id)
        ).fetchone()
        return row

    def data_version(self) -> tuple[int, str | None]:
        """A cheap marker that changes whenever the data does: for cache keys. (record count, marker)"""
        row = self.conn.execute(
            "SELECT (SELECT COUNT(*) FROM feedback), (SELECT MAX(id) FROM feedback), "
            "(SELECT value FROM store_meta WHERE key = 'writes')"
        ).fetchone()
        return (int(row[0]), f"{row[1]}:{row[2]}")

    def distinct_values(self, column: str) -> list[str]:
        if column not in ("source", "customer_tier", "category"):
            raise ValueError(column)
        # Hop from one value to the next through the column's index: a handful of seeks, not a scan of every row.
        sql = (
            f"WITH RECURSIVE v(value) AS (SELECT MIN({column}) FROM feedback "
            f"UNION ALL SELECT (SELECT MIN({column}) FROM feedback WHERE {column} > v.value) FROM v "
            "WHERE v.value IS NOT NULL) SELECT value FROM v WHERE value IS NOT NULL"
        )
        return [r[0] for r in self.conn.execute(sql)]

    def date_bounds(self) -> tuple[str | None, str | None]:
        # Two subqueries: SQLite reads MIN or MAX from an index end only when the query has a single one of them.
        row = self.conn.execute(
            "SELECT (SELECT MIN(created_at) FROM feedback), (SELECT MAX(created_at) FROM feedback)"
        ).fetchone()
        return row[0], row[1]


_GROUPABLE = {
    "category": "category",
    "category_reason": "COALESCE(category_reason, '')",  # the Rules page says which rule decides a set of records
    "source": "source",
    "customer_tier": f"COALESCE(customer_tier, '{UNKNOWN_TIER}')",
    "tier": f"COALESCE(customer_tier, '{UNKNOWN_TIER}')",
}

# Who a record's customer is, for counting distinct customers: the email, else the vendor's id within its source.
CUSTOMER_KEY = "COALESCE(customer_email, source || ':' || customer_id)"

# The same groups over feedback_daily, where a missing tier is ''.
_DAILY_GROUPABLE = {
    "category": "category",
    "source": "source",
    "customer_tier": f"CASE tier WHEN '' THEN '{UNKNOWN_TIER}' ELSE tier END",
    "tier": f"CASE tier WHEN '' THEN '{UNKNOWN_TIER}' ELSE tier END",
}


def _group_column(name: str) -> str:
    try:
        return _GROUPABLE[name]
    except KeyError:
        raise ValueError(f"cannot group by {name!r}; choose from {', '.join(_GROUPABLE)}") from None


def records_from_rows(rows: Iterable[dict[str, Any]]) -> Iterator[dict[str, Any]]:
    for row in rows:
        yield row

