"""Manual overrides in the store: the SQL that puts them back on top of freshly written records (every write of a
record runs it inside the write's own transaction), and the statements that make, list and undo them (overrides.py
checks the values and shapes what is shown).
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .queries import Filters

# Per overridable field: the feedback columns holding its value and its reason.
OVERRIDE_COLUMNS = {"category": ("category", "category_reason"), "customer_tier": ("customer_tier", "tier_reason")}

# Puts the overrides of the selected records on top of whatever was just written to them: one statement for both
# fields, so a record overridden on category and tier is read once.
_APPLY = """
UPDATE feedback SET
    category = CASE WHEN o.has_category THEN o.category ELSE feedback.category END,
    category_reason = CASE WHEN o.has_category THEN o.category_reason ELSE feedback.category_reason END,
    customer_tier = CASE WHEN o.has_tier THEN o.tier ELSE feedback.customer_tier END,
    tier_reason = CASE WHEN o.has_tier THEN o.tier_reason ELSE feedback.tier_reason END
FROM (
    SELECT source, source_id,
           MAX(field = 'category') AS has_category,
           MAX(CASE WHEN field = 'category' THEN value END) AS category,
           MAX(CASE WHEN field = 'category' THEN reason END) AS category_reason,
           MAX(field = 'customer_tier') AS has_tier,
           MAX(CASE WHEN field = 'customer_tier' THEN value END) AS tier,
           MAX(CASE WHEN field = 'customer_tier' THEN reason END) AS tier_reason
    FROM feedback_overrides
    WHERE {selection}
    GROUP BY source, source_id
) AS o
WHERE feedback.source = o.source AND feedback.source_id = o.source_id
"""

# Before an override goes back on top of a freshly written record, the record holds what the rules decided for it.
_REFRESH_RULE_VALUES = """
UPDATE feedback_overrides SET
    rule_value = CASE feedback_overrides.field WHEN 'category' THEN f.category ELSE f.customer_tier END,
    rule_reason = CASE feedback_overrides.field WHEN 'category' THEN f.category_reason ELSE f.tier_reason END
FROM feedback AS f
WHERE f.source = feedback_overrides.source AND f.source_id = feedback_overrides.source_id AND {selection}
"""

_BY_KEYS = "feedback_overrides.source = ?1 AND feedback_overrides.source_id IN (SELECT value FROM json_each(?2))"


def reapply_overrides(conn: sqlite3.Connection, keys: Iterable[tuple[str, str]]) -> None:
    """After `keys` were written with fresh values: remember what the rules decided, then put overrides back on top.

    Runs inside the writer's transaction. Costs one indexed probe when the store has no override at all.
    """
    if conn.execute("SELECT 1 FROM feedback_overrides LIMIT 1").fetchone() is None:
        return
    by_source: dict[str, list[str]] = {}
    for source, source_id in keys:
        by_source.setdefault(source, []).append(source_id)
    for source, ids in by_source.items():
        params = (source, json.dumps(ids))
        conn.execute(_REFRESH_RULE_VALUES.format(selection=_BY_KEYS), params)
        conn.execute(_APPLY.format(selection=_BY_KEYS.replace("feedback_overrides.", "")), params)


def apply_all(conn: sqlite3.Connection) -> None:
    """Every override back on top (after rules were re-applied to the whole store)."""
    conn.execute(_APPLY.format(selection="1 = 1"))


def _new_batch(conn: sqlite3.Connection, field: str, value: str | None, description: str, created_at: str) -> int:
    cursor = conn.execute(
        "INSERT INTO override_batches (created_at, field, value, description) VALUES (?, ?, ?, ?)",
        (created_at, field, value, description),
    )
    return int(cursor.lastrowid or 0)


def _write_batch(conn: sqlite3.Connection, batch: int, field: str, value: str | None, reason: str, where: str,
                 params: Sequence[Any]) -> int:
    """Overrides for every record `where` selects (alias f); returns how many records the batch covers."""
    value_column, reason_column = OVERRIDE_COLUMNS[field]
    created_at = conn.execute("SELECT created_at FROM override_batches WHERE id = ?", (batch,)).fetchone()[0]
    # A record overridden before keeps the rules' decision saved then: its row now holds the older override.
    conn.execute(
        "INSERT INTO feedback_overrides "
        "(source, source_id, field, value, reason, rule_value, rule_reason, batch, created_at) "
        f"SELECT f.source, f.source_id, ?, ?, ?, f.{value_column}, f.{reason_column}, ?, ? FROM feedback AS f "
        f"WHERE {where} "
        "ON CONFLICT (source, source_id, field) DO UPDATE SET "
        "value = excluded.value, reason = excluded.reason, batch = excluded.batch, created_at = excluded.created_at",
        [field, value, reason, batch, created_at, *params],
    )
    conn.execute(
        f"UPDATE feedback SET {value_column} = o.value, {reason_column} = o.reason FROM feedback_overrides AS o "
        "WHERE o.batch = ? AND o.field = ? AND feedback.source = o.source AND feedback.source_id = o.source_id",
        (batch, field),
    )
    records = int(conn.execute("SELECT COUNT(*) FROM feedback_overrides WHERE batch = ?", (batch,)).fetchone()[0])
    _bump_writes(conn)
    return records


def _bump_writes(conn: sqlite3.Connection) -> None:
    # The app's caches are keyed by this counter: an override must show at once.
    conn.execute("UPDATE store_meta SET value = value + 1 WHERE key = 'writes'")


def _undo(conn: sqlite3.Connection, where: str, params: Sequence[Any]) -> int:
    """Give the selected overrides' records back what the rules decide, then forget the overrides."""
    for field, (value_column, reason_column) in OVERRIDE_COLUMNS.items():
        conn.execute(
            f"UPDATE feedback SET {value_column} = o.rule_value, {reason_column} = o.rule_reason "
            f"FROM feedback_overrides AS o WHERE ({where}) AND o.field = ? "
            "AND feedback.source = o.source AND feedback.source_id = o.source_id",
            [*params, field],
        )
    removed = conn.execute(f"DELETE FROM feedback_overrides AS o WHERE {where}", list(params)).rowcount
    conn.execute("DELETE FROM override_batches WHERE id NOT IN (SELECT DISTINCT batch FROM feedback_overrides)")
    _bump_writes(conn)
    return int(removed)


class OverrideTables:
    """`feedback_overrides` and `override_batches`: making an override batch, undoing it, listing them."""

    conn: sqlite3.Connection

    if TYPE_CHECKING:
        def write(self) -> Any: ...

    def override_record(self, source: str, source_id: str, field: str, value: str | None, *, reason: str,
                        created_at: str) -> tuple[int, int] | None:
        """One record's field overridden, as a batch of its own: (batch, records), or None when there is no such
        record (nothing is written then)."""
        with self.write() as conn:
            if conn.execute("SELECT 1 FROM feedback WHERE source = ? AND source_id = ?", (source, source_id)).fetchone() is None:
                return None
            batch = _new_batch(conn, field, value, f"{source} {source_id}", created_at)
            records = _write_batch(conn, batch, field, value, reason, "f.source = ? AND f.source_id = ?",
                                   (source, source_id))
        return batch, records

    def override_filtered(self, filters: Filters, field: str, value: str | None, *, description: str, reason: str,
                          created_at: str) -> tuple[int, int]:
        """Every record the filters select overridden, as one batch: (batch, records). A batch that covers no
        record is not kept."""
        where, params = filters.where("f")
        with self.write() as conn:
            batch = _new_batch(conn, field, value, description, created_at)
            records = _write_batch(conn, batch, field, value, reason, where, params)
            if records == 0:
                conn.execute("DELETE FROM override_batches WHERE id = ?", (batch,))
        return batch, records

    def override_batch_row(self, batch: int) -> tuple[Any, ...] | None:
        """(id, created_at, field, value, description) of a batch."""
        row: tuple[Any, ...] | None = self.conn.execute(
            "SELECT id, created_at, field, value, description FROM override_batches WHERE id = ?", (batch,)
        ).fetchone()
        return row

    def undo_record_overrides(self, source: str, source_id: str, field: str | None = None) -> int:
        """Undo a record's override of one field (or of both); returns how many overrides were removed."""
        where, params = "o.source = ? AND o.source_id = ?", [source, source_id]
        if field is not None:
            where, params = where + " AND o.field = ?", [*params, field]
        with self.write() as conn:
            return _undo(conn, where, params)

    def undo_override_batch(self, batch: int) -> int:
        with self.write() as conn:
            return _undo(conn, "o.batch = ?", [batch])

    def record_override_rows(self, source: str, source_id: str) -> list[tuple[Any, ...]]:
        """Every column of `feedback_overrides` for one record."""
        return self.conn.execute(
            "SELECT source, source_id, field, value, reason, rule_value, rule_reason, batch, created_at "
            "FROM feedback_overrides WHERE source = ? AND source_id = ?",
            (source, source_id),
        ).fetchall()

    def override_rows(self, *, batch: int | None = None, limit: int = 500) -> list[tuple[Any, ...]]:
        """Newest batch first."""
        where, params = ("WHERE batch = ?", [batch]) if batch is not None else ("", [])
        return self.conn.execute(
            "SELECT source, source_id, field, value, reason, rule_value, rule_reason, batch, created_at "
            f"FROM feedback_overrides {where} ORDER BY batch DESC, source, source_id, field LIMIT ?",
            [*params, limit],
        ).fetchall()

    def override_batch_rows(self, limit: int) -> list[tuple[Any, ...]]:
        """(id, created_at, field, value, description, overrides it still holds), newest first."""
        return self.conn.execute(
            "SELECT b.id, b.created_at, b.field, b.value, b.description, COUNT(o.batch) FROM override_batches AS b "
            "JOIN feedback_overrides AS o ON o.batch = b.id GROUP BY b.id ORDER BY b.id DESC LIMIT ?",
            (limit,),
        ).fetchall()

    def override_count(self) -> int:
        return int(self.conn.execute("SELECT COUNT(*) FROM feedback_overrides").fetchone()[0])
