"""The SQL that puts manual overrides back on top of freshly written records (overrides.py makes and undoes them).

Part of the store because every write of a record runs it inside the write's own transaction.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterable

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
