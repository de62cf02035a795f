"""Manual overrides: a PM's own call on a record's category or tier, which no re-sync, webhook or rule change undoes.

An override is keyed by (source, source_id), not by row id, so it outlives the record being deleted and synced again.
It keeps what the rules decide underneath (`rule_value`, `rule_reason`): undoing it restores that at once, without
a re-sync. `Store.upsert_records` calls `reapply_overrides` for the keys it writes, inside the same transaction, so
a fresh copy from the vendor refreshes the rules' decision and the override stays on top; rule re-application
(rules_store.apply_rules) does the same for the whole store.

This module imports nothing from store.py at import time: store.py imports it.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any

from .models import Category, Tier
from .store.overrides_sql import apply_all, reapply_overrides  # noqa: F401  (the hook lives with the store)

if TYPE_CHECKING:
    from .store import Filters, Store

CATEGORY = "category"
TIER = "customer_tier"
FIELDS = (CATEGORY, TIER)
UNKNOWN_TIER = "unknown"  # the value that clears a record's tier (Filters uses the same word)
OVERRIDE_REASON = "manual override"

# Per field: the feedback columns holding its value and its reason.
_COLUMNS = {CATEGORY: ("category", "category_reason"), TIER: ("customer_tier", "tier_reason")}

class OverrideError(ValueError):
    """An override that cannot be made (unknown field or value), with what to choose instead."""


@dataclass(frozen=True)
class Override:
    source: str
    source_id: str
    field: str
    value: str | None  # None: a tier override that clears the tier
    reason: str
    rule_value: str | None  # what the rules decide underneath
    rule_reason: str | None
    batch: int
    created_at: str

    @property
    def shown_value(self) -> str:
        return UNKNOWN_TIER if self.value is None else self.value


@dataclass(frozen=True)
class Batch:
    """One act of overriding: a single record from its detail view, or every record of a filtered set."""

    id: int
    created_at: str
    field: str
    value: str | None
    description: str
    records: int  # how many records it still overrides (undoing single records shrinks it)


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")[:19] + "Z"


def stored_value(field: str, value: str) -> str | None:
    """The column value an override writes; raises OverrideError for a field or value the store does not know."""
    if field == CATEGORY:
        if value not in {c.value for c in Category}:
            raise OverrideError(f"unknown category {value!r}; choose one of {', '.join(c.value for c in Category)}")
        return value
    if field == TIER:
        if value == UNKNOWN_TIER:
            return None
        if value not in {t.value for t in Tier}:
            choices = ", ".join([*(t.value for t in Tier), UNKNOWN_TIER])
            raise OverrideError(f"unknown tier {value!r}; choose one of {choices}")
        return value
    raise OverrideError(f"unknown field {field!r}; choose one of {', '.join(FIELDS)}")


# -- the hook every write goes through ---------------------------------------------------------------------------------


# -- making, listing and undoing overrides -----------------------------------------------------------------------------


def _new_batch(conn: sqlite3.Connection, field: str, value: str | None, description: str) -> int:
    cursor = conn.execute(
        "INSERT INTO override_batches (created_at, field, value, description) VALUES (?, ?, ?, ?)",
        (_now(), field, value, description),
    )
    return int(cursor.lastrowid or 0)


def _write_batch(conn: sqlite3.Connection, batch: int, field: str, value: str | None, where: str,
                 params: Sequence[Any]) -> int:
    """Overrides for every record `where` selects (alias f); returns how many records the batch covers."""
    value_column, reason_column = _COLUMNS[field]
    created_at = conn.execute("SELECT created_at FROM override_batches WHERE id = ?", (batch,)).fetchone()[0]
    # A record overridden before keeps the rules' decision saved then: its row now holds the older override.
    conn.execute(
        "INSERT INTO feedback_overrides "
        "(source, source_id, field, value, reason, rule_value, rule_reason, batch, created_at) "
        f"SELECT f.source, f.source_id, ?, ?, ?, f.{value_column}, f.{reason_column}, ?, ? FROM feedback AS f "
        f"WHERE {where} "
        "ON CONFLICT (source, source_id, field) DO UPDATE SET "
        "value = excluded.value, reason = excluded.reason, batch = excluded.batch, created_at = excluded.created_at",
        [field, value, OVERRIDE_REASON, batch, created_at, *params],
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


def override_record(store: Store, source: str, source_id: str, field: str, value: str) -> Batch:
    """Override one record's category or tier. Raises OverrideError (bad value) or KeyError (no such record)."""
    stored = stored_value(field, value)
    with store.write() as conn:
        if conn.execute("SELECT 1 FROM feedback WHERE source = ? AND source_id = ?", (source, source_id)).fetchone() is None:
            raise KeyError(f"no record {source}/{source_id}")
        batch = _new_batch(conn, field, stored, f"{source} {source_id}")
        records = _write_batch(conn, batch, field, stored, "f.source = ? AND f.source_id = ?", (source, source_id))
    return _batch(store, batch, records)


def override_filtered(store: Store, filters: Filters, field: str, value: str, description: str = "") -> Batch:
    """Override every record the filters select (Explore's filtered set), as one batch that can be undone at once."""
    stored = stored_value(field, value)
    where, params = filters.where("f")
    with store.write() as conn:
        batch = _new_batch(conn, field, stored, description or "filtered set")
        records = _write_batch(conn, batch, field, stored, where, params)
        if records == 0:
            conn.execute("DELETE FROM override_batches WHERE id = ?", (batch,))
    return _batch(store, batch, records)


def _batch(store: Store, batch: int, records: int) -> Batch:
    row = store.conn.execute(
        "SELECT id, created_at, field, value, description FROM override_batches WHERE id = ?", (batch,)
    ).fetchone()
    if row is None:  # an empty filtered set made no batch
        return Batch(batch, _now(), "", None, "", 0)
    return Batch(*row, records)


def _undo(conn: sqlite3.Connection, where: str, params: Sequence[Any]) -> int:
    """Give the selected overrides' records back what the rules decide, then forget the overrides."""
    for field, (value_column, reason_column) in _COLUMNS.items():
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


def undo_record(store: Store, source: str, source_id: str, field: str | None = None) -> int:
    """Undo a record's override of one field (or of both); returns how many overrides were removed."""
    where, params = "o.source = ? AND o.source_id = ?", [source, source_id]
    if field is not None:
        where, params = where + " AND o.field = ?", [*params, field]
    with store.write() as conn:
        return _undo(conn, where, params)


def undo_batch(store: Store, batch: int) -> int:
    """Undo every override a batch still holds; returns how many were removed."""
    with store.write() as conn:
        return _undo(conn, "o.batch = ?", [batch])


def record_overrides(store: Store, source: str, source_id: str) -> dict[str, Override]:
    """The overrides of one record, by field."""
    rows = store.conn.execute(
        "SELECT source, source_id, field, value, reason, rule_value, rule_reason, batch, created_at "
        "FROM feedback_overrides WHERE source = ? AND source_id = ?",
        (source, source_id),
    ).fetchall()
    return {row[2]: Override(*row) for row in rows}


def list_overrides(store: Store, *, batch: int | None = None, limit: int = 500) -> list[Override]:
    """Newest first."""
    where, params = ("WHERE batch = ?", [batch]) if batch is not None else ("", [])
    rows = store.conn.execute(
        "SELECT source, source_id, field, value, reason, rule_value, rule_reason, batch, created_at "
        f"FROM feedback_overrides {where} ORDER BY batch DESC, source, source_id, field LIMIT ?",
        [*params, limit],
    ).fetchall()
    return [Override(*row) for row in rows]


def list_batches(store: Store, limit: int = 200) -> list[Batch]:
    """Newest first, each with the number of overrides it still holds."""
    rows = store.conn.execute(
        "SELECT b.id, b.created_at, b.field, b.value, b.description, COUNT(o.batch) FROM override_batches AS b "
        "JOIN feedback_overrides AS o ON o.batch = b.id GROUP BY b.id ORDER BY b.id DESC LIMIT ?",
        (limit,),
    ).fetchall()
    return [Batch(*row) for row in rows]


def count_overrides(store: Store) -> int:
    return int(store.conn.execute("SELECT COUNT(*) FROM feedback_overrides").fetchone()[0])
