"""Manual overrides: a PM's own call on a record's category or tier, which no re-sync, webhook or rule change undoes.

An override is keyed by (source, source_id), not by row id, so it outlives the record being deleted and synced again.
It keeps what the rules decide underneath (`rule_value`, `rule_reason`): undoing it restores that at once, without
a re-sync. `Store.upsert_records` calls `reapply_overrides` for the keys it writes, inside the same transaction, so
a fresh copy from the vendor refreshes the rules' decision and the override stays on top; rule re-application
(rules_store.apply_rules) does the same for the whole store.

The store never imports this module: the hook and the statements live in store/overrides_sql.py.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timezone
from typing import TYPE_CHECKING

from .models import Category, Tier
from .store.overrides_sql import apply_all, reapply_overrides  # noqa: F401  (the hook lives with the store)

if TYPE_CHECKING:
    from .store import Filters, Store

CATEGORY = "category"
TIER = "customer_tier"
FIELDS = (CATEGORY, TIER)
UNKNOWN_TIER = "unknown"  # the value that clears a record's tier (Filters uses the same word)
OVERRIDE_REASON = "manual override"


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
#
# reapply_overrides and apply_all live with the store (store/overrides_sql.py), which runs them inside its writes.


# -- making, listing and undoing overrides -----------------------------------------------------------------------------


def override_record(store: Store, source: str, source_id: str, field: str, value: str) -> Batch:
    """Override one record's category or tier. Raises OverrideError (bad value) or KeyError (no such record)."""
    stored = stored_value(field, value)
    made = store.override_record(source, source_id, field, stored, reason=OVERRIDE_REASON, created_at=_now())
    if made is None:
        raise KeyError(f"no record {source}/{source_id}")
    return _batch(store, *made)


def override_filtered(store: Store, filters: Filters, field: str, value: str, description: str = "") -> Batch:
    """Override every record the filters select (Explore's filtered set), as one batch that can be undone at once."""
    stored = stored_value(field, value)
    batch, records = store.override_filtered(filters, field, stored, description=description or "filtered set",
                                             reason=OVERRIDE_REASON, created_at=_now())
    return _batch(store, batch, records)


def _batch(store: Store, batch: int, records: int) -> Batch:
    row = store.override_batch_row(batch)
    if row is None:  # an empty filtered set made no batch
        return Batch(batch, _now(), "", None, "", 0)
    return Batch(*row, records)


def undo_record(store: Store, source: str, source_id: str, field: str | None = None) -> int:
    """Undo a record's override of one field (or of both); returns how many overrides were removed."""
    return store.undo_record_overrides(source, source_id, field)


def undo_batch(store: Store, batch: int) -> int:
    """Undo every override a batch still holds; returns how many were removed."""
    return store.undo_override_batch(batch)


def record_overrides(store: Store, source: str, source_id: str) -> dict[str, Override]:
    """The overrides of one record, by field."""
    return {row[2]: Override(*row) for row in store.record_override_rows(source, source_id)}


def list_overrides(store: Store, *, batch: int | None = None, limit: int = 500) -> list[Override]:
    """Newest first."""
    return [Override(*row) for row in store.override_rows(batch=batch, limit=limit)]


def list_batches(store: Store, limit: int = 200) -> list[Batch]:
    """Newest first, each with the number of overrides it still holds."""
    return [Batch(*row) for row in store.override_batch_rows(limit)]


def count_overrides(store: Store) -> int:
    return store.override_count()
