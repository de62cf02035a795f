"""The tables of discovered themes: `themes`, `theme_model`, `theme_runs`, and the theme columns of `feedback`
(theme_id, theme_score, dup_key). themes.py finds, names and places the themes; this is how they are stored.

Values stored as JSON (terms, centroids, the model's vocabulary) arrive and leave as JSON text: themes.py owns
their shape.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

_BUMP_WRITES = "UPDATE store_meta SET value = value + 1 WHERE key = 'writes'"  # the app's caches follow this counter


class ThemeRewrite:
    """The statements of a full re-computation, all inside one write transaction (`ThemeTables.rewriting_themes`):
    what the themes were is read in the same transaction that replaces them."""

    def __init__(self, conn: sqlite3.Connection):
        self.conn = conn

    def memberships(self) -> Iterator[tuple[int, int]]:
        """(record id, theme id) of every placed record."""
        return iter(self.conn.execute("SELECT id, theme_id FROM feedback WHERE theme_id > 0"))

    def live_themes(self) -> list[tuple[Any, ...]]:
        """(id, split_from) of the themes not retired."""
        return self.conn.execute("SELECT id, split_from FROM themes WHERE retired = 0").fetchall()

    def merge_targets(self) -> set[int]:
        """The themes others were merged into."""
        return {int(r[0]) for r in self.conn.execute("SELECT DISTINCT merged_into FROM themes WHERE merged_into > 0")}

    def update_words(self, theme_id: int, auto_name: str, terms: str, centroid: str, now: str) -> None:
        self.conn.execute(
            "UPDATE themes SET auto_name = ?, terms = ?, centroid = ?, updated_at = ? WHERE id = ?",
            (auto_name, terms, centroid, now, theme_id),
        )

    def add(self, auto_name: str, terms: str, centroid: str, merged_into: int | None, now: str) -> int:
        cursor = self.conn.execute(
            "INSERT INTO themes (auto_name, terms, centroid, merged_into, created_at, updated_at) "
            "VALUES (?, ?, ?, ?, ?, ?)",
            (auto_name, terms, centroid, merged_into, now, now),
        )
        return int(cursor.lastrowid or 0)

    def merged(self) -> dict[int, int]:
        return ThemeTables._merged_themes(self.conn)

    def retire_unmerged(self, theme_ids: Iterable[int], now: str) -> None:
        """Retire these themes, unless they record a PM's merge."""
        self.conn.executemany(
            "UPDATE themes SET retired = 1, updated_at = ? WHERE id = ? AND merged_into IS NULL",
            [(now, theme_id) for theme_id in theme_ids],
        )

    def forget_merged_words(self, theme_ids: Iterable[int]) -> None:
        """Merged themes among these keep their record of the merge, but their words no longer place records."""
        self.conn.executemany(
            "UPDATE themes SET centroid = '{}' WHERE id = ? AND merged_into IS NOT NULL",
            [(theme_id,) for theme_id in theme_ids],
        )

    def replace_model(self, terms: str, idf: str, now: str, records: int, k: int) -> None:
        self.conn.execute("DELETE FROM theme_model")
        self.conn.execute(
            "INSERT INTO theme_model (id, terms, idf, built_at, records, k) VALUES (1, ?, ?, ?, ?, ?)",
            (terms, idf, now, records, k),
        )

    def place(self, placements: Sequence[tuple[int, float, str | None, int]]) -> None:
        """(theme id, score, duplicate key, record id) for every record."""
        for offset in range(0, len(placements), 50_000):
            self.conn.executemany("UPDATE feedback SET theme_id = ?, theme_score = ?, dup_key = ? WHERE id = ?",
                                  placements[offset : offset + 50_000])
        self.conn.execute(_BUMP_WRITES)


class ThemeTables:
    """Reads and writes of the themes, their model, their runs, and the records' places in them."""

    conn: sqlite3.Connection

    if TYPE_CHECKING:
        import sqlite_utils

        db: sqlite_utils.Database

        def write(self) -> Any: ...

    # -- the model -------------------------------------------------------------------------------------------------

    def has_theme_tables(self) -> bool:
        return self.conn.execute("SELECT 1 FROM sqlite_master WHERE name = 'themes'").fetchone() is not None

    def has_theme_model(self) -> bool:
        return self.conn.execute("SELECT 1 FROM theme_model").fetchone() is not None

    def theme_model_marker(self) -> tuple[Any, ...]:
        """(model built at, newest theme change, live themes): changes whenever the model or a theme does."""
        return tuple(self.conn.execute(
            "SELECT (SELECT built_at FROM theme_model WHERE id = 1), (SELECT MAX(updated_at) FROM themes), "
            "(SELECT COUNT(*) FROM themes WHERE retired = 0)"
        ).fetchone())

    def theme_model(self) -> tuple[str, str]:
        """(terms, idf) of the stored model, as JSON."""
        terms, idf = self.conn.execute("SELECT terms, idf FROM theme_model WHERE id = 1").fetchone()
        return terms, idf

    def theme_centroids(self) -> list[tuple[int, str]]:
        """(theme id, centroid JSON) of every live theme that places records."""
        return self.conn.execute(
            # Merged themes place records too (their words still describe them); assignment resolves the merge.
            "SELECT id, centroid FROM themes WHERE retired = 0 AND centroid <> '{}'"
        ).fetchall()

    @staticmethod
    def _merged_themes(conn: sqlite3.Connection) -> dict[int, int]:
        return dict(conn.execute("SELECT id, merged_into FROM themes WHERE merged_into IS NOT NULL").fetchall())

    def merged_themes(self) -> dict[int, int]:
        """Each merged theme and the theme it was merged into (one step; themes.py follows chains)."""
        return self._merged_themes(self.conn)

    # -- placing records -------------------------------------------------------------------------------------------

    def unplaced_records(self, limit: int) -> list[tuple[int, str | None, str | None]]:
        """(id, title, content) of records not yet placed in a theme, oldest first."""
        return self.conn.execute(
            "SELECT id, title, content FROM feedback WHERE theme_id IS NULL ORDER BY id LIMIT ?", (limit,)
        ).fetchall()

    def place_records(self, placements: Sequence[tuple[int, float, str | None, int]]) -> None:
        """(theme id, score, duplicate key, record id) per record, in one transaction."""
        with self.write() as conn:
            conn.executemany(
                "UPDATE feedback SET theme_id = ?, theme_score = ?, dup_key = ? WHERE id = ?",
                placements,
            )
            conn.execute(_BUMP_WRITES)

    def unscored_records(self, limit: int) -> list[tuple[int, str | None, str | None]]:
        """(id, title, content) of records without a sentiment score."""
        return self.conn.execute(
            "SELECT id, title, content FROM feedback WHERE sentiment IS NULL LIMIT ?", (limit,)
        ).fetchall()

    def has_unscored_records(self) -> bool:
        return self.conn.execute("SELECT 1 FROM feedback WHERE sentiment IS NULL LIMIT 1").fetchone() is not None

    def save_sentiments(self, scores: Sequence[tuple[float, str, int]]) -> None:
        """(sentiment, label, record id) per record, in one transaction."""
        with self.write() as conn:
            conn.executemany("UPDATE feedback SET sentiment = ?, sentiment_label = ? WHERE id = ?", scores)
            conn.execute(_BUMP_WRITES)

    def record_texts(self) -> Iterator[tuple[int, str | None, str | None]]:
        """(id, title, content) of every record, by id, read as it is iterated."""
        return iter(self.conn.execute("SELECT id, title, content FROM feedback ORDER BY id"))

    def theme_record_texts(self, theme_id: int) -> list[tuple[int, str | None, str | None]]:
        """(id, title, content) of the records placed in one theme."""
        return self.conn.execute("SELECT id, title, content FROM feedback WHERE theme_id = ?", (theme_id,)).fetchall()

    def themes_record_texts(self, theme_ids: Sequence[int]) -> list[tuple[int, str | None, str | None]]:
        """(id, title, content) of the records placed in any of these themes."""
        return self.conn.execute(
            f"SELECT id, title, content FROM feedback WHERE theme_id IN ({', '.join('?' * len(theme_ids))})",
            list(theme_ids),
        ).fetchall()

    def move_records(self, moves: Sequence[tuple[int, int]]) -> None:
        """(theme id, record id) per record, in one transaction."""
        with self.write() as conn:
            conn.executemany("UPDATE feedback SET theme_id = ? WHERE id = ?", moves)

    @contextmanager
    def rewriting_themes(self) -> Iterator[ThemeRewrite]:
        """One write transaction for a full re-computation's reads and writes."""
        with self.write() as conn:
            yield ThemeRewrite(conn)

    # -- the PM's choices ------------------------------------------------------------------------------------------

    def split_parents(self) -> list[int]:
        """The themes a PM split."""
        return [int(parent) for parent, in self.conn.execute(
            "SELECT DISTINCT split_from FROM themes WHERE split_from IS NOT NULL").fetchall()]

    def split_parts(self, parent: int) -> list[int]:
        """The live, unmerged parts of a split theme."""
        return [int(r[0]) for r in self.conn.execute(
            "SELECT id FROM themes WHERE split_from = ? AND retired = 0 AND merged_into IS NULL", (parent,))]

    def active_theme_count(self) -> int:
        return int(self.conn.execute(
            "SELECT COUNT(*) FROM themes WHERE retired = 0 AND merged_into IS NULL").fetchone()[0])

    def is_live_theme(self, theme_id: int) -> bool:
        return self.conn.execute("SELECT 1 FROM themes WHERE id = ? AND retired = 0", (theme_id,)).fetchone() is not None

    def rename_theme(self, theme_id: int, name: str | None, now: str) -> None:
        with self.write() as conn:
            conn.execute("UPDATE themes SET name = ?, updated_at = ? WHERE id = ?",
                         (name, now, theme_id))

    def set_theme_flag(self, theme_id: int, flag: str, value: bool, now: str) -> None:
        """`flag` is the column: pinned or hidden (themes.py checks it)."""
        with self.write() as conn:
            conn.execute(f"UPDATE themes SET {flag} = ?, updated_at = ? WHERE id = ?",
                         (int(value), now, theme_id))

    def merge_theme(self, source_id: int, target_id: int, now: str) -> int:
        """Point the theme, and what was merged into it, at the target, and move its records; returns how many."""
        with self.write() as conn:
            conn.execute("UPDATE themes SET merged_into = ?, updated_at = ? WHERE id = ?",
                         (target_id, now, source_id))
            conn.execute("UPDATE themes SET merged_into = ? WHERE merged_into = ?", (target_id, source_id))
            moved = conn.execute("UPDATE feedback SET theme_id = ? WHERE theme_id = ?", (target_id, source_id)).rowcount
            conn.execute(_BUMP_WRITES)
        return int(moved)

    def save_theme_split(self, theme_id: int, parts: Sequence[tuple[str, str, str]],
                         members: Sequence[tuple[int, int]], now: str) -> list[int]:
        """Replace a theme by its parts, (auto name, terms JSON, centroid JSON) each, and move each record, given
        as (part index, record id), to its part; returns the parts' ids."""
        new_ids: list[int] = []
        with self.write() as conn:
            for name, terms, centroid in parts:
                cursor = conn.execute(
                    "INSERT INTO themes (auto_name, terms, centroid, split_from, created_at, updated_at) "
                    "VALUES (?, ?, ?, ?, ?, ?)",
                    (name, terms, centroid, theme_id, now, now),
                )
                new_ids.append(int(cursor.lastrowid or 0))
            conn.executemany("UPDATE feedback SET theme_id = ? WHERE id = ?",
                             [(new_ids[part], record_id) for part, record_id in members])
            conn.execute("UPDATE themes SET retired = 1, updated_at = ? WHERE id = ?", (now, theme_id))
            conn.execute(_BUMP_WRITES)
        return new_ids

    # -- reading themes --------------------------------------------------------------------------------------------

    def live_theme_rows(self) -> list[tuple[Any, ...]]:
        """(id, shown name, auto name, terms JSON, pinned, hidden, merged_into, split_from) of the live themes."""
        return self.conn.execute(
            "SELECT id, COALESCE(name, auto_name), auto_name, terms, pinned, hidden, merged_into, split_from FROM themes "
            "WHERE retired = 0 ORDER BY id"
        ).fetchall()

    def theme_centroid(self, theme_id: int) -> str:
        return str(self.conn.execute("SELECT centroid FROM themes WHERE id = ?", (theme_id,)).fetchone()[0])

    def record_theme_row(self, source: str, source_id: str) -> tuple[Any, ...] | None:
        """(id, title, content, theme_id, theme_score, dup_key) of one record."""
        row: tuple[Any, ...] | None = self.conn.execute(
            "SELECT id, title, content, theme_id, theme_score, dup_key FROM feedback WHERE source = ? AND source_id = ?",
            (source, source_id),
        ).fetchone()
        return row

    def duplicates_count(self, dup_key: str, rowid: int) -> int:
        """Other records sharing the near-duplicate key."""
        return int(self.conn.execute(
            "SELECT COUNT(*) FROM feedback WHERE dup_key = ? AND id <> ?", (dup_key, rowid)).fetchone()[0])

    def duplicate_rows(self, source: str, source_id: str, limit: int) -> list[dict[str, Any]]:
        """The record's near-duplicates, newest first."""
        row = self.conn.execute("SELECT id, dup_key FROM feedback WHERE source = ? AND source_id = ?",
                                (source, source_id)).fetchone()
        if row is None or row[1] is None:
            return []
        return list(self.db.query(
            "SELECT source, source_id, title, content, customer_name, created_at FROM feedback "
            "WHERE dup_key = ? AND id <> ? ORDER BY created_at DESC LIMIT ?", [row[1], row[0], limit]))

    def theme_quote_rows(self, theme_id: int, *, start: str | None, end: str | None, extra_where: str,
                         params: Sequence[Any]) -> Iterator[dict[str, Any]]:
        """The theme's records created in [start, end) that `extra_where` (with `params`) selects, nearest its
        centre first, at most 200."""
        conditions = ["theme_id = ?"]
        values: list[Any] = [theme_id]
        if start:
            conditions.append("created_at >= ?")
            values.append(start)
        if end:
            conditions.append("created_at < ?")
            values.append(end)
        if extra_where:
            conditions.append(extra_where)
            values.extend(params)
        rows: Iterator[dict[str, Any]] = self.db.query(
            "SELECT source, source_id, title, content, customer_name, customer_tier, created_at, url, dup_key, "
            f"sentiment_label FROM feedback WHERE {' AND '.join(conditions)} ORDER BY theme_score DESC LIMIT 200",
            values,
        )
        return rows

    def theme_record_counts(self) -> dict[int, int]:
        """Records per theme, over the whole store."""
        return dict(self.conn.execute(
            "SELECT theme_id, COUNT(*) FROM feedback WHERE theme_id > 0 GROUP BY theme_id").fetchall())

    # -- runs in the background ------------------------------------------------------------------------------------

    def latest_theme_run(self) -> dict[str, Any] | None:
        rows = list(self.db.query("SELECT * FROM theme_runs ORDER BY id DESC LIMIT 1"))
        return rows[0] if rows else None

    def begin_theme_run(self, *, started_at: str, pid: int, now: float, busy_for: float) -> tuple[int, bool]:
        """A new run, unless one is running whose heartbeat is younger than `busy_for` seconds: (its id, False)
        then. One transaction, so two processes never both start one."""
        with self.write() as conn:
            running = conn.execute(
                "SELECT id, heartbeat FROM theme_runs WHERE status = 'running' ORDER BY id DESC LIMIT 1").fetchone()
            if running is not None and now - float(running[1] or 0) < busy_for:
                return int(running[0]), False
            run_id = int(conn.execute(
                "INSERT INTO theme_runs (started_at, status, progress, message, pid, heartbeat) "
                "VALUES (?, 'running', 0, 'starting', ?, ?)", (started_at, pid, now)
            ).lastrowid or 0)
        return run_id, True

    def theme_run_progress(self, run_id: int, fraction: float, message: str, heartbeat: float) -> None:
        with self.write() as conn:
            conn.execute("UPDATE theme_runs SET progress = ?, message = ?, heartbeat = ? WHERE id = ?",
                         (fraction, message, heartbeat, run_id))

    def fail_theme_run(self, run_id: int, message: str, finished_at: str) -> None:
        with self.write() as conn:
            conn.execute("UPDATE theme_runs SET status = 'failed', message = ?, finished_at = ? WHERE id = ?",
                         (message, finished_at, run_id))

    def complete_theme_run(self, run_id: int, *, message: str, finished_at: str, records: int, themes: int,
                           seconds: float, peak_rss_mb: float) -> None:
        with self.write() as conn:
            conn.execute(
                "UPDATE theme_runs SET status = 'complete', progress = 1, message = ?, finished_at = ?, records = ?, "
                "themes = ?, seconds = ?, peak_rss_mb = ? WHERE id = ?",
                (message, finished_at, records, themes, seconds, peak_rss_mb, run_id),
            )
