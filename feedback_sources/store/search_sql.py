"""The reads behind ranked search results: one page of full-text matches by bm25, then their marked title and
snippet (highlight.py turns the marks into inert markdown).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .queries import Filters

# Column weights for bm25, in the index's column order (title, content, customer_name, tags): a word in the title
# says more about a record than the same word deep in a long message.
RANK_WEIGHTS = "8.0, 1.0, 2.0, 3.0"


class SearchReads:
    """Relevance-ranked full-text matches, narrowed by the other filters."""

    conn: sqlite3.Connection

    def ranked_matches(self, fts: str, others: Filters, limit: int, offset: int) -> dict[int, float]:
        """Record ids of one page of results, best first, with their bm25 score.

        bm25 as an ORDER BY expression lets SQLite keep only the best `limit + offset` rows while it scores every
        match (FTS5's own `ORDER BY rank` sorts them all). Other filters narrow the matches in the cheapest way: a
        date window makes a small id set through the facets index; without one each match's row is checked instead.
        """
        score = f"bm25(feedback_fts, {RANK_WEIGHTS})"
        if others == type(others)():
            sql = f"SELECT rowid, {score} AS score FROM feedback_fts WHERE feedback_fts MATCH ? ORDER BY score LIMIT ? OFFSET ?"
            params: list[object] = [fts]
        elif others.start is not None:
            where, where_params = others.where("f")
            sql = (
                f"SELECT rowid, {score} AS score FROM feedback_fts WHERE feedback_fts MATCH ? "
                f"AND +rowid IN (SELECT f.id FROM feedback AS f INDEXED BY idx_feedback_facets WHERE {where}) "
                "ORDER BY score LIMIT ? OFFSET ?"
            )
            params = [fts, *where_params]
        else:
            where, where_params = others.where("f")
            sql = (
                f"SELECT f.id, {score} AS score FROM feedback_fts JOIN feedback AS f ON f.id = feedback_fts.rowid "
                f"WHERE feedback_fts MATCH ? AND {where} ORDER BY score LIMIT ? OFFSET ?"
            )
            params = [fts, *where_params]
        return {int(rowid): float(value) for rowid, value in self.conn.execute(sql, [*params, limit, offset])}

    def marked_matches(self, fts: str, ids: Sequence[int], snippet_tokens: int) -> list[tuple[Any, ...]]:
        """(id, source, source_id, created_at, category, customer_tier, customer_name, marked title, marked
        snippet) of these matches; matches are marked between char(2) and char(3). Only for the page shown: FTS5
        builds snippets from the record's text, which costs a row read each."""
        return self.conn.execute(
            "SELECT f.id, f.source, f.source_id, f.created_at, f.category, f.customer_tier, f.customer_name, "
            "highlight(feedback_fts, 0, char(2), char(3)), "
            f"snippet(feedback_fts, 1, char(2), char(3), '…', {snippet_tokens}) "
            "FROM feedback_fts JOIN feedback AS f ON f.id = feedback_fts.rowid "
            f"WHERE feedback_fts MATCH ? AND feedback_fts.rowid IN ({', '.join('?' * len(ids))})",
            [fts, *ids],
        ).fetchall()
