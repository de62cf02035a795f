"""Classification rules in the store: the versions in `classification_rules`, and the set-based statements that
re-decide every record (rules_store.py reads the rules and decides; this is how the decisions reach the rows).

A plan is built in temporary tables on one connection, inside one read snapshot (`Store.rule_plan`), by a
RulePlanner: what the rules decide for each record (`rule_decided`), what overrides hold underneath
(`rule_overridden`), and the records whose category or tier changes (`rule_category_changes`, `rule_tier_changes`).
The changes are then written in batches of ids, each its own write transaction.

The texts of the reasons (a tag's, a keyword's, a source default's, an NPS score's) are written by these
statements; rules_store.reason_kind reads them back.
"""

from __future__ import annotations

import re
import sqlite3
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from .overrides_sql import OVERRIDE_COLUMNS

_TEMP_TABLES = ("rule_overridden", "rule_decided", "rule_tags", "rule_tag_hits", "rule_types", "rule_tier_map",
                "rule_category_changes", "rule_tier_changes")
# The plan's table of changes per field.
CHANGES_OF = {"category": "rule_category_changes", "customer_tier": "rule_tier_changes"}
# What a plan holds per record it changes: the value and reason now (so a write can tell whether a sync rewrote the
# record in between), and the new ones. Overridden records change only underneath their override.
_CHANGE_COLUMNS = ("id INTEGER PRIMARY KEY, old TEXT, old_reason TEXT, new TEXT, reason TEXT NOT NULL, "
                   "overridden INTEGER NOT NULL")
_VERSION_COLUMNS = "version, rules, created_at, note, applied_at"


def _quoted_phrase(words: str) -> str:
    return '"' + words.replace('"', '""') + '"'


def _like_pattern(words: str) -> str:
    escaped = words.lower().replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


def _needs_letter_check(words: str) -> bool:
    """A keyword of plain words and single spaces matches the same with the full-text index as with the regex."""
    return re.fullmatch(r"\w+(?: \w+)*", words) is None or " " in words


def _sql_list(values: Sequence[str]) -> str:
    return ", ".join("'" + v.replace("'", "''") + "'" for v in values)


def _fallback(category: str, reason: str, nps_sources: Sequence[str], default_reason: str) -> tuple[str, str]:
    """The source's own decision when no rule matches, as SQL over feedback `f` and the current category/reason."""
    category, reason = f"({category})", f"({reason})"
    nps = "json_extract(f.metadata, '$.nps')"
    surveys = f"f.source IN ({_sql_list(nps_sources)})"
    # The heading of the question that made the score an NPS, as the mapper names it in its reason: `nps_question`,
    # or in records stored before it existed, the first answer (then a list of {question, answer}) about recommending.
    heading = (
        "COALESCE(' on `' || COALESCE(json_extract(f.metadata, '$.nps_question'), "
        "(SELECT json_extract(a.value, '$.question') FROM json_each(f.metadata, '$.answers') AS a "
        "WHERE a.type = 'object' AND json_extract(a.value, '$.question') LIKE '%recommend%' LIMIT 1)) || '`', '')"
    )
    fallback_category = (
        f"CASE WHEN {reason} LIKE 'NPS %' THEN {category} "
        f"WHEN {surveys} AND {nps} <= 6 THEN 'complaint' WHEN {surveys} AND {nps} >= 9 THEN 'praise' ELSE 'other' END"
    )
    fallback_reason = (
        f"CASE WHEN {reason} LIKE 'NPS %' THEN {reason} "
        f"WHEN {surveys} AND {nps} <= 6 THEN 'NPS ' || {nps} || ' (detractor, 0–6)' || {heading} "
        f"WHEN {surveys} AND {nps} >= 9 THEN 'NPS ' || {nps} || ' (promoter, 9–10)' || {heading} "
        f"ELSE '{default_reason}' END"
    )
    return fallback_category, fallback_reason


class RulePlanner:
    """The statements that build a plan in temporary tables, on the connection of `Store.rule_plan`."""

    def __init__(self, conn: sqlite3.Connection):
        self.conn = conn

    def drop(self) -> None:
        for name in _TEMP_TABLES:
            self.conn.execute(f"DROP TABLE IF EXISTS temp.{name}")

    def _distinct(self, table: str, column: str, where: str = "", params: Sequence[Any] = ()) -> list[str]:
        """The distinct non-null values of an indexed column (within `where`, equalities on the columns before it
        in the index): a seek per value through the index, not a read of every entry."""
        within = f"{where} AND " if where else ""
        return [row[0] for row in self.conn.execute(
            f"WITH RECURSIVE v(value) AS (SELECT MIN({column}) FROM {table} WHERE {within}{column} IS NOT NULL UNION ALL "
            f"SELECT (SELECT MIN({column}) FROM {table} WHERE {within}{column} > v.value) FROM v WHERE v.value IS NOT NULL) "
            "SELECT value FROM v WHERE value IS NOT NULL",
            [*params, *params],
        )]

    def _tiers_by_reason(self) -> list[tuple[str, str | None]]:
        """Each tier reason with each tier its records hold now (None for none), by seeks through the reason index."""
        pairs: list[tuple[str, str | None]] = []
        for reason in self._distinct("feedback", "tier_reason"):
            if self.conn.execute("SELECT 1 FROM feedback INDEXED BY idx_feedback_tier_reason "
                                 "WHERE tier_reason = ? AND customer_tier IS NULL LIMIT 1", (reason,)).fetchone():
                pairs.append((reason, None))
            pairs += [(reason, tier) for tier in self._distinct(
                "feedback INDEXED BY idx_feedback_tier_reason", "customer_tier", "tier_reason = ?", (reason,))]
        return pairs

    # -- what overrides hold underneath ----------------------------------------------------------------------------

    def plan_overridden(self) -> None:
        """temp.rule_overridden: per overridden record, what the rules had decided underneath each overridden
        field."""
        # CROSS JOIN keeps the (few) overrides as the outer loop: the planner would otherwise walk every record in
        # rowid order to spare itself the GROUP BY sort.
        self.conn.execute(
            "CREATE TEMP TABLE rule_overridden AS SELECT f.id AS id, "
            "MAX(o.field = 'category') AS has_category, "
            "MAX(CASE WHEN o.field = 'category' THEN o.rule_value END) AS category, "
            "MAX(CASE WHEN o.field = 'category' THEN o.rule_reason END) AS category_reason, "
            "MAX(o.field = 'customer_tier') AS has_tier, "
            "MAX(CASE WHEN o.field = 'customer_tier' THEN o.rule_value END) AS tier, "
            "MAX(CASE WHEN o.field = 'customer_tier' THEN o.rule_reason END) AS tier_reason "
            "FROM feedback_overrides AS o CROSS JOIN feedback AS f ON f.source = o.source AND f.source_id = o.source_id "
            "GROUP BY f.id"
        )
        self.conn.execute("CREATE UNIQUE INDEX temp.rule_overridden_id ON rule_overridden (id)")

    # -- categories ------------------------------------------------------------------------------------------------

    def start_category_decisions(self) -> None:
        """temp.rule_decided (the category and reason a rule gives each record one applies to; the first decision
        inserted for a record holds), and temp.rule_tags for decide_by_tags."""
        self.conn.execute(
            "CREATE TEMP TABLE rule_decided (id INTEGER PRIMARY KEY, category TEXT NOT NULL, reason TEXT NOT NULL)")
        self.conn.execute("CREATE TEMP TABLE rule_tags (tag TEXT PRIMARY KEY, category TEXT NOT NULL) WITHOUT ROWID")

    def record_tags(self) -> list[str]:
        """Every tag the records carry."""
        return self._distinct("feedback_tags", "tag")

    def decide_by_tags(self, mapped: Sequence[tuple[str, str]]) -> None:
        """(tag, category) for the tags a rule maps: the first of a record's own tags that has one decides."""
        conn = self.conn
        conn.executemany("INSERT INTO rule_tags (tag, category) VALUES (?, ?)", mapped)
        conn.execute("CREATE TEMP TABLE rule_tag_hits (id INTEGER NOT NULL, tag TEXT NOT NULL, category TEXT NOT NULL, "
                     "PRIMARY KEY (id, tag)) WITHOUT ROWID")
        conn.execute("INSERT INTO rule_tag_hits SELECT t.feedback_id, t.tag, r.category FROM rule_tags AS r "
                     "JOIN feedback_tags AS t ON t.tag = r.tag")
        conn.execute("INSERT INTO rule_decided (id, category, reason) SELECT id, category, 'tag `' || tag || '`' "
                     "FROM rule_tag_hits GROUP BY id HAVING COUNT(*) = 1")
        # With several, the earliest in the record's tag list wins: SQLite fills the bare columns of a MIN()
        # aggregate from the row holding the minimum.
        conn.execute(
            "INSERT INTO rule_decided (id, category, reason) SELECT id, category, 'tag `' || tag || '`' FROM ("
            "  SELECT h.id AS id, h.category AS category, h.tag AS tag, MIN(instr(f.tags, json_quote(h.tag))) "
            "  FROM rule_tag_hits AS h JOIN feedback AS f ON f.id = h.id "
            "  WHERE h.id IN (SELECT id FROM rule_tag_hits GROUP BY id HAVING COUNT(*) > 1) GROUP BY h.id)"
        )

    def decide_by_types(self, types: Sequence[tuple[str, str]], sources: Sequence[str], indexed: str | None) -> None:
        """(vendor type, category) for each type a rule maps, over the records of `sources`. The `indexed` source's
        metadata.type is read through the store's partial index; any other source's without it."""
        conn = self.conn
        conn.execute("CREATE TEMP TABLE rule_types (type TEXT PRIMARY KEY, category TEXT NOT NULL) WITHOUT ROWID")
        conn.executemany("INSERT INTO rule_types VALUES (?, ?)", types)
        for source in sources:
            through = "INDEXED BY idx_feedback_vendor_type " if source == indexed else ""
            conn.execute(
                "INSERT OR IGNORE INTO rule_decided (id, category, reason) "
                "SELECT f.id, r.category, 'vendor type `' || r.type || '`' FROM rule_types AS r "
                f"CROSS JOIN feedback AS f {through}"
                f"ON json_extract(f.metadata, '$.type') = r.type AND f.source = {_sql_list((source,))}"
            )

    def decide_by_keyword(self, words: str, category: str, content_only: Sequence[str]) -> None:
        """The records holding `words` (in their content, then their title, except for the sources that are matched
        on content only) not decided yet get `category`. Keywords are decided in list order: the first found
        decides."""
        conn = self.conn
        reason = f"keyword `{words}`"
        phrase = _quoted_phrase(words)
        only = _sql_list(content_only)
        for column in ("content", "title"):
            checks, params = [], [category, reason, f"{column} : {phrase}"]
            if column == "title":
                checks.append(f"f.source NOT IN ({only})")
            if _needs_letter_check(words):
                checks.append(f"lower(f.{column}) LIKE ? ESCAPE '\\'")
                params.append(_like_pattern(words))
            if checks:
                conn.execute(
                    "INSERT OR IGNORE INTO rule_decided (id, category, reason) SELECT f.id, ?, ? "
                    "FROM feedback_fts JOIN feedback AS f ON f.id = feedback_fts.rowid "
                    f"WHERE feedback_fts MATCH ? AND {' AND '.join(checks)}",
                    params,
                )
            else:
                conn.execute("INSERT OR IGNORE INTO rule_decided (id, category, reason) "
                             "SELECT rowid, ?, ? FROM feedback_fts WHERE feedback_fts MATCH ?", params)

    def plan_category_changes(self, nps_sources: Sequence[str], default_reason: str, stated_prefix: str) -> None:
        """temp.rule_category_changes: every record whose rule-decided category or reason differs from now; a
        record no rule decides falls back to its source's default (`default_reason`), or to its NPS score for
        `nps_sources`. A category the record's own data states (its reason starts with `stated_prefix`) stays.

        One pass over the small reason index, each record looked up in the rules' decisions; only a survey left to
        its NPS fallback reads its row. For an overridden record "now" is what the rules decided underneath its
        override.
        """
        current = "CASE WHEN ov.has_category THEN ov.category ELSE f.category END"
        current_reason = "CASE WHEN ov.has_category THEN ov.category_reason ELSE f.category_reason END"
        fallback, fallback_reason = _fallback(current, current_reason, nps_sources, default_reason)
        self.conn.execute(f"CREATE TEMP TABLE rule_category_changes ({_CHANGE_COLUMNS})")
        self.conn.execute(
            "INSERT INTO rule_category_changes "
            f"SELECT f.id, {current}, {current_reason}, COALESCE(d.category, {fallback}), "
            f"COALESCE(d.reason, {fallback_reason}), ov.id IS NOT NULL "
            "FROM feedback AS f INDEXED BY idx_feedback_category_reason "
            "LEFT JOIN rule_decided AS d ON d.id = f.id LEFT JOIN rule_overridden AS ov ON ov.id = f.id "
            # A category the record's own data states is not the rules' to move.
            f"WHERE COALESCE({current_reason}, '') NOT LIKE '{stated_prefix}%' AND "
            f"CASE WHEN d.id IS NOT NULL THEN {current} IS NOT d.category OR {current_reason} IS NOT d.reason "
            # A record left on its source's default stays there: no need to read its metadata.
            f"WHEN {current} = 'other' AND {current_reason} = '{default_reason}' THEN 0 "
            f"ELSE {current} IS NOT {fallback} OR {current_reason} IS NOT {fallback_reason} END"
        )

    # -- tiers -----------------------------------------------------------------------------------------------------

    def start_tier_changes(self) -> None:
        self.conn.execute(f"CREATE TEMP TABLE rule_tier_changes ({_CHANGE_COLUMNS})")

    def tier_reasons_now(self) -> list[tuple[str, str | None]]:
        """Each tier reason with each tier its records hold now, read off the covering reason index, and the
        reasons and tiers the rules had decided underneath tier overrides."""
        return self._tiers_by_reason() + self.conn.execute(
            "SELECT DISTINCT tier_reason, tier FROM rule_overridden WHERE has_tier AND tier_reason IS NOT NULL"
        ).fetchall()

    def organizations_by_reason(self, reasons: Sequence[str], sources: Sequence[str]) -> list[tuple[str, Any]]:
        """(tier reason, organization name) of the records of `sources` with one of these reasons and an
        organization name in metadata."""
        placeholders = ", ".join("?" * len(reasons))
        return self.conn.execute(
            "SELECT tier_reason, org FROM (SELECT f.tier_reason AS tier_reason, "
            "json_extract(f.metadata, '$.organization_name') AS org FROM feedback AS f "
            f"WHERE f.tier_reason IN ({placeholders}) AND f.source IN ({_sql_list(sources)})) "
            "WHERE org IS NOT NULL GROUP BY 1, 2",
            list(reasons),
        ).fetchall()

    def plan_tier_changes(self, changing: Sequence[tuple[str, str, str | None, str]],
                          organization_sources: Sequence[str]) -> None:
        """temp.rule_tier_changes from (reason now, organization or '', tier, new reason) decisions: each record
        gets the decision for its own organization (`organization_sources` only) first, else the one for its
        reason."""
        conn = self.conn
        conn.execute("CREATE TEMP TABLE rule_tier_map (reason TEXT NOT NULL, org TEXT NOT NULL, tier TEXT, "
                     "new_reason TEXT NOT NULL, PRIMARY KEY (reason, org)) WITHOUT ROWID")
        conn.executemany("INSERT INTO rule_tier_map VALUES (?, ?, ?, ?)", changing)
        organizations = f"f.source IN ({_sql_list(organization_sources)})"
        # Records found through the reason index (or, when their tier is overridden, through their override), each
        # given the decision for its own organization first, else the one for its reason.
        reasons = "(SELECT reason, MAX(org <> '') AS by_org FROM rule_tier_map GROUP BY reason) AS m"
        for records, current, current_reason, overridden, kept in (
            (f"{reasons} JOIN feedback AS f INDEXED BY idx_feedback_tier_reason ON f.tier_reason = m.reason "
             "LEFT JOIN rule_overridden AS ov ON ov.id = f.id",
             "f.customer_tier", "f.tier_reason", 0, "COALESCE(ov.has_tier, 0) = 0"),
            (f"rule_overridden AS ov JOIN feedback AS f ON f.id = ov.id JOIN {reasons} ON m.reason = ov.tier_reason",
             "ov.tier", "ov.tier_reason", 1, "ov.has_tier"),
        ):
            conn.execute(
                "INSERT INTO rule_tier_changes SELECT id, old, old_reason, new, reason, overridden FROM ("
                f"  SELECT f.id AS id, {current} AS old, {current_reason} AS old_reason, "
                "   CASE WHEN z.reason IS NOT NULL THEN z.tier ELSE g.tier END AS new, "
                "   CASE WHEN z.reason IS NOT NULL THEN z.new_reason ELSE g.new_reason END AS reason, "
                f"  {overridden} AS overridden FROM {records} "
                "  LEFT JOIN rule_tier_map AS g ON g.reason = m.reason AND g.org = '' "
                f"  LEFT JOIN rule_tier_map AS z ON m.by_org AND {organizations} AND z.reason = m.reason "
                "   AND z.org = json_extract(f.metadata, '$.organization_name') "
                f"  WHERE {kept} AND (g.reason IS NOT NULL OR z.reason IS NOT NULL)"
                ") WHERE old IS NOT new OR old_reason IS NOT reason"
            )

    # -- what the plan does ----------------------------------------------------------------------------------------

    def moves(self, field: str) -> list[tuple[Any, Any, int]]:
        """(value before, value after, records) of the field's changes outside overrides, biggest first."""
        return self.conn.execute(
            f"SELECT old, new, COUNT(*) FROM {CHANGES_OF[field]} WHERE NOT overridden AND old IS NOT new "
            "GROUP BY 1, 2 ORDER BY 3 DESC, 1, 2"
        ).fetchall()

    def category_counts(self) -> list[tuple[Any, int]]:
        return self.conn.execute("SELECT category, COUNT(*) FROM feedback GROUP BY category").fetchall()

    def tier_counts(self) -> list[tuple[Any, int]]:
        return self.conn.execute("SELECT customer_tier, COUNT(*) FROM feedback GROUP BY customer_tier").fetchall()

    def reasons_only(self) -> int:
        """Records outside overrides whose category and tier stay but whose reason changes."""
        return int(self.conn.execute(
            "SELECT COUNT(*) FROM (SELECT id FROM rule_category_changes WHERE NOT overridden AND old IS new UNION "
            "SELECT id FROM rule_tier_changes WHERE NOT overridden AND old IS new) "
            "WHERE id NOT IN (SELECT id FROM rule_category_changes WHERE NOT overridden AND old IS NOT new) "
            "AND id NOT IN (SELECT id FROM rule_tier_changes WHERE NOT overridden AND old IS NOT new)"
        ).fetchone()[0])

    def overridden(self) -> int:
        """Records the rules now decide differently underneath a manual override."""
        return int(self.conn.execute(
            "SELECT COUNT(*) FROM (SELECT id FROM rule_category_changes WHERE overridden AND old IS NOT new "
            "UNION SELECT id FROM rule_tier_changes WHERE overridden AND old IS NOT new)"
        ).fetchone()[0])

    def batches(self, field: str, size: int) -> list[tuple[int, int, int]]:
        """(first id, last id, records) of each run of `size` records to rewrite for the field, in id order."""
        return [(int(low), int(high), int(count)) for low, high, count in self.conn.execute(
            f"SELECT MIN(id), MAX(id), COUNT(*) FROM (SELECT id, (ROW_NUMBER() OVER (ORDER BY id) - 1) / ? AS batch "
            f"FROM {CHANGES_OF[field]} WHERE NOT overridden) GROUP BY batch ORDER BY batch",
            (size,),
        )]


class RuleTables:
    """Rules versions, the plan's snapshot and the writes that carry a plan out."""

    conn: sqlite3.Connection

    if TYPE_CHECKING:
        def write(self) -> Any: ...

    # -- versions --------------------------------------------------------------------------------------------------

    def latest_rules_row(self) -> tuple[Any, ...] | None:
        """(version, rules JSON, created_at, note, applied_at) of the newest version."""
        row: tuple[Any, ...] | None = self.conn.execute(
            f"SELECT {_VERSION_COLUMNS} FROM classification_rules ORDER BY version DESC LIMIT 1"
        ).fetchone()
        return row

    def rules_rows(self, limit: int) -> list[tuple[Any, ...]]:
        """The newest versions first, as latest_rules_row gives one."""
        return self.conn.execute(
            f"SELECT {_VERSION_COLUMNS} FROM classification_rules ORDER BY version DESC LIMIT ?", (limit,)
        ).fetchall()

    def rules_row(self, version: int) -> tuple[Any, ...] | None:
        row: tuple[Any, ...] | None = self.conn.execute(
            f"SELECT {_VERSION_COLUMNS} FROM classification_rules WHERE version = ?", (version,)
        ).fetchone()
        return row

    def save_rules_version(self, rules: str, *, created_at: str, note: str, first_note: str,
                           unchanged: Callable[[str], bool]) -> int:
        """A new version holding `rules` (JSON), unless `unchanged` says the newest one's rules are the same: that
        version's number is returned then. The very first version is noted `first_note`. One transaction."""
        with self.write() as conn:
            row = conn.execute(
                f"SELECT {_VERSION_COLUMNS} FROM classification_rules ORDER BY version DESC LIMIT 1").fetchone()
            if row is not None and unchanged(row[1]):
                return int(row[0])
            cursor = conn.execute(
                "INSERT INTO classification_rules (version, rules, created_at, note) "
                "VALUES ((SELECT COALESCE(MAX(version), 0) + 1 FROM classification_rules), ?, ?, ?)",
                (rules, created_at, first_note if row is None else note),
            )
            return int(cursor.lastrowid or 0)

    # -- the plan and its writes -----------------------------------------------------------------------------------

    @contextmanager
    def rule_plan(self, *, keep: bool) -> Iterator[RulePlanner]:
        """A RulePlanner on this connection inside one read snapshot (a deferred transaction: no write lock). On
        leaving, the snapshot ends; with `keep` the plan's temporary tables stay for the batches (drop them with
        RulePlanner.drop), otherwise they go. An error drops them either way."""
        conn = self.conn
        # The working tables can reach a row per record: in memory they cost tens of megabytes and no disk writes.
        conn.execute("PRAGMA temp_store = MEMORY")
        # Rewriting many records touches pages of every index holding a category or tier: a larger page cache keeps
        # them from being read and spilled again (SQLite takes the memory only as it needs it).
        conn.execute("PRAGMA cache_size = -262144")
        planner = RulePlanner(conn)
        if not keep:
            conn.execute("BEGIN")  # one consistent snapshot for every count; the temp tables live on this connection only
            try:
                yield planner
            finally:
                conn.execute("ROLLBACK")
                planner.drop()
            return
        conn.execute("BEGIN")
        try:
            yield planner
            conn.execute("COMMIT")  # only temp tables were written: they stay, on this connection, for the batches
        except BaseException:
            conn.execute("ROLLBACK")
            planner.drop()
            raise

    def write_rule_batch(self, field: str, low: int, high: int) -> int:
        """Rewrite the field of the planned records with ids in [low, high], in one transaction; returns how many
        were written."""
        table, (value, reason) = CHANGES_OF[field], OVERRIDE_COLUMNS[field]
        with self.write() as conn:
            written = conn.execute(
                f"UPDATE feedback SET {value} = c.new, {reason} = c.reason FROM {table} AS c "
                "WHERE c.id BETWEEN ? AND ? AND NOT c.overridden AND feedback.id = c.id "
                # Only where the record still says what the plan read: a sync or an override since then wins.
                f"AND feedback.{value} IS c.old AND feedback.{reason} IS c.old_reason",
                (low, high),
            ).rowcount
            if written:
                conn.execute("UPDATE store_meta SET value = value + 1 WHERE key = 'writes'")
        return int(written)

    def finish_rule_plan(self, version: int, applied_at: str) -> None:
        """Give overridden records the plan's decisions underneath their overrides, and mark the version applied,
        in one transaction."""
        with self.write() as batch:
            for table, field_name in (("rule_category_changes", "category"), ("rule_tier_changes", "customer_tier")):
                batch.execute(
                    "UPDATE feedback_overrides SET rule_value = c.new, rule_reason = c.reason "
                    f"FROM {table} AS c JOIN feedback AS f ON f.id = c.id WHERE c.overridden "
                    "AND feedback_overrides.source = f.source AND feedback_overrides.source_id = f.source_id "
                    "AND feedback_overrides.field = ?",
                    (field_name,),
                )
            batch.execute("UPDATE classification_rules SET applied_at = ? WHERE version = ?", (applied_at, version))

    # -- what decided a record -------------------------------------------------------------------------------------

    def record_decision(self, source: str, source_id: str) -> tuple[Any, ...] | None:
        """(category, category_reason, customer_tier, tier_reason) of one record."""
        row: tuple[Any, ...] | None = self.conn.execute(
            "SELECT category, category_reason, customer_tier, tier_reason FROM feedback WHERE source = ? AND source_id = ?",
            (source, source_id),
        ).fetchone()
        return row

    def reason_counts(self, column: str) -> list[tuple[str | None, int]]:
        """Records per reason; `column` is category_reason or tier_reason (both indexed)."""
        if column not in ("category_reason", "tier_reason"):
            raise ValueError(f"not a reason column: {column!r}")
        return self.conn.execute(f"SELECT {column}, COUNT(*) FROM feedback GROUP BY {column}").fetchall()
