"""Classification rules kept in the store: versioned, exported and imported as a JSON file, re-applied in SQL.

The package's rules (rules.DEFAULT_RULES) hold until the PM saves a version of their own. Sync maps each record with
the current version (integrations take `rules=`), and `apply_rules` re-decides every stored record without fetching
anything: a handful of set-based statements over the full-text index, the tags table and the reason columns, never
a Python loop over rows. Precedence, lowest first, as Rules.categorize decides at sync time:

    source default (NPS for surveys) < keyword (first in list order wins) < vendor ticket type < tag < manual override

Tiers are re-decided from the plan value each record's `tier_reason` names ("requester plan `Acme Pro` matches
`pro`") and, for sources with organizations, the organization name kept in metadata. A value a changed rule no longer matches stays in
the reason ("requester plan `Acme Pro` matches no plan rule"), so restoring the rule restores the tier. Plan values
that matched no rule at sync time are not kept by the integrations: a new plan word reaches those records at their
next sync.

Keyword matching here uses the full-text index's word boundaries (a phrase also checked letter for letter with LIKE),
where sync uses a regular expression: the two agree except on words joined by an underscore ("bug_report" holds
the keyword "bug" for the index, not for the regular expression) and on accented spellings.
"""

from __future__ import annotations

import json
import re
import sqlite3
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel, ConfigDict, ValidationError, field_validator

from .models import Category, Tier
from .overrides import CATEGORY, TIER
from .rules import DEFAULT_RULES, STATED_REASON_PREFIX, Rules
from .sources import registry, vendor_type_index_source

if TYPE_CHECKING:
    from .store import Store

FILE_FORMAT = "feedback-hub-rules"
UNKNOWN_TIER = "unknown"
DEFAULT_REASON = "default for this source"
NO_PLAN_REASON = "no plan information"



# What the rules may read in each source's records comes from its spec's RuleTraits:
def vendor_type_sources() -> tuple[str, ...]:
    """Sources that hand a vendor ticket type to Rules.categorize (their mapper stores it as metadata.type)."""
    return tuple(name for name, spec in registry().items() if spec.rules.vendor_type)


def content_only_sources() -> tuple[str, ...]:
    """Sources that categorize on the content alone (a survey's title is the survey's, not the respondent's)."""
    return tuple(name for name, spec in registry().items() if spec.rules.content_only)


def nps_sources() -> tuple[str, ...]:
    """Sources that fall back to a Net Promoter score (metadata.nps) when no rule decides."""
    return tuple(name for name, spec in registry().items() if spec.rules.nps)


def organization_sources() -> tuple[str, ...]:
    """Sources whose mapper keeps an organization name (metadata.organization_name) as a last tier clue."""
    return tuple(name for name, spec in registry().items() if spec.rules.organization)

# "requester plan `Acme Pro` matches `pro`" as Rules.tier writes it, or "... matches no plan rule" as written here.
# The value is the last quoted part before "matches": a label may quote a survey question itself.
_PLAN_REASON = re.compile(r"^(?P<label>.+) `(?P<value>[^`]*)` matches (?:`(?P<word>[^`]*)`|no plan rule)$", re.DOTALL)


class RulesError(ValueError):
    """Rules that cannot be saved, with every problem found."""

    def __init__(self, problems: Sequence[str]):
        super().__init__("; ".join(problems))
        self.problems = list(problems)


# -- the file format -------------------------------------------------------------------------------------------------


class RulesDocument(BaseModel):
    """The exported file: Rules.to_json's shape, named and versioned so an unrelated JSON file is refused."""

    model_config = ConfigDict(extra="forbid")

    format: Literal["feedback-hub-rules"] = FILE_FORMAT
    format_version: Literal[1] = 1
    tag_categories: dict[str, Category] = {}
    type_categories: dict[str, Category] = {}
    keyword_categories: list[tuple[str, Category]] = []
    plan_tiers: list[tuple[str, Tier]] = []

    @field_validator("tag_categories", "type_categories")
    @classmethod
    def _lowercase_keys(cls, value: dict[str, Category]) -> dict[str, Category]:
        # Rules.categorize looks tags and types up stripped and lowercased.
        return {key.strip().lower(): category for key, category in value.items()}


def rules_to_file(rules: Rules) -> str:
    document = RulesDocument(
        tag_categories=dict(rules.tag_categories),
        type_categories=dict(rules.type_categories),
        keyword_categories=list(rules.keyword_categories),
        plan_tiers=list(rules.plan_tiers),
    )
    return json.dumps(document.model_dump(mode="json"), indent=2, ensure_ascii=False) + "\n"


def rules_from_file(text: str | bytes) -> Rules:
    """Rules from an exported file; raises RulesError naming what is wrong."""
    try:
        data = json.loads(text)
    except (ValueError, UnicodeDecodeError) as error:
        raise RulesError([f"not a JSON file ({error})"]) from None
    if not isinstance(data, dict) or data.get("format") != FILE_FORMAT:
        raise RulesError([f'not a rules file: it needs "format": "{FILE_FORMAT}" at the top'])
    try:
        document = RulesDocument.model_validate(data)
    except ValidationError as error:
        problems = [f"{'.'.join(str(p) for p in item['loc'])}: {item['msg']}" for item in error.errors()]
        raise RulesError(problems) from None
    rules = Rules(
        tag_categories=dict(document.tag_categories),
        type_categories=dict(document.type_categories),
        keyword_categories=tuple(document.keyword_categories),
        plan_tiers=tuple(document.plan_tiers),
    )
    check_rules(rules)
    return rules


def check_rules(rules: Rules) -> None:
    """Raises RulesError when a rule could never match or would be shadowed by an earlier one of the same words."""
    problems: list[str] = []
    for kind, keys in (("tag", rules.tag_categories), ("ticket type", rules.type_categories)):
        problems += [f"a {kind} rule has no {kind}" for key in keys if not key.strip()]
    for kind, pairs in (("keyword", rules.keyword_categories), ("plan", rules.plan_tiers)):
        seen: set[str] = set()
        for word, _ in pairs:
            if not re.search(r"\w", word):
                problems.append(f"the {kind} rule {word!r} has no letter or digit to look for")
            elif word.strip().lower() in seen:
                problems.append(f"the {kind} {word!r} is listed twice")
            seen.add(word.strip().lower())
    if problems:
        raise RulesError(problems)


# -- rules as the Rules page edits them ---------------------------------------------------------------------------------


def rules_to_tables(rules: Rules) -> dict[str, list[dict[str, str]]]:
    """One table per kind of rule, in order of precedence within the kind."""
    return {
        "tags": [{"tag": k, "category": v.value} for k, v in rules.tag_categories.items()],
        "types": [{"ticket type": k, "category": v.value} for k, v in rules.type_categories.items()],
        "keywords": [{"keyword": k, "category": v.value} for k, v in rules.keyword_categories],
        "plans": [{"plan word": k, "tier": v.value} for k, v in rules.plan_tiers],
    }


def rules_from_tables(tables: Mapping[str, Iterable[Mapping[str, Any]]]) -> Rules:
    """The inverse of rules_to_tables; rows left blank are dropped. Raises RulesError listing every problem."""
    problems: list[str] = []

    def pairs(name: str, key: str, value: str, vocabulary: type[Category] | type[Tier]) -> list[tuple[str, Any]]:
        found = []
        for number, row in enumerate(tables.get(name, ()), start=1):
            word = str(row.get(key) or "").strip()
            chosen = str(row.get(value) or "").strip()
            if not word and not chosen:
                continue
            if not word:
                problems.append(f"{name} row {number}: the {key} is empty")
                continue
            try:
                found.append((word, vocabulary(chosen)))
            except ValueError:
                problems.append(f"{name} row {number} ({word}): choose a {value} from the list")
        return found

    def unique(name: str, found: list[tuple[str, Any]], lower: bool) -> list[tuple[str, Any]]:
        seen: dict[str, Any] = {}
        for word, chosen in found:
            key = word.lower() if lower else word
            if key in seen:
                problems.append(f"{name}: {word!r} is listed twice")
            seen[key] = chosen
        return [(word, chosen) for word, chosen in seen.items()] if lower else found

    tags = unique("tags", pairs("tags", "tag", "category", Category), True)
    types = unique("types", pairs("types", "ticket type", "category", Category), True)
    keywords = pairs("keywords", "keyword", "category", Category)
    plans = pairs("plans", "plan word", "tier", Tier)
    rules = Rules(
        tag_categories=dict(tags),
        type_categories=dict(types),
        keyword_categories=tuple(keywords),
        plan_tiers=tuple(plans),
    )
    try:
        check_rules(rules)
    except RulesError as error:
        problems += error.problems
    if problems:
        raise RulesError(list(dict.fromkeys(problems)))
    return rules


def same_rules(a: Rules, b: Rules) -> bool:
    return rules_to_file(a) == rules_to_file(b)


# -- versions in the store ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class RulesVersion:
    version: int
    created_at: str
    note: str
    applied_at: str | None
    rules: Rules = field(repr=False)


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")[:19] + "Z"


def _version_from_row(row: Sequence[Any]) -> RulesVersion:
    return RulesVersion(int(row[0]), row[2], row[3], row[4], rules_from_file(row[1]))


_VERSION_COLUMNS = "version, rules, created_at, note, applied_at"


def current_version(store: Store) -> RulesVersion | None:
    row = store.conn.execute(
        f"SELECT {_VERSION_COLUMNS} FROM classification_rules ORDER BY version DESC LIMIT 1"
    ).fetchone()
    return _version_from_row(row) if row else None


def current_rules(store: Store) -> Rules:
    """The rules sync and re-application use: the newest saved version, else the package's defaults."""
    version = current_version(store)
    return version.rules if version is not None else DEFAULT_RULES


def rules_at(path: str | Path) -> Rules:
    """current_rules for a database file, without creating one that does not exist yet."""
    from .store import Store

    if str(path) != ":memory:" and not Path(path).expanduser().exists():
        return DEFAULT_RULES
    with Store(path) as store:
        return current_rules(store)


def history(store: Store, limit: int = 50) -> list[RulesVersion]:
    rows = store.conn.execute(
        f"SELECT {_VERSION_COLUMNS} FROM classification_rules ORDER BY version DESC LIMIT ?", (limit,)
    ).fetchall()
    return [_version_from_row(row) for row in rows]


def _save(conn: sqlite3.Connection, rules: Rules, note: str) -> int:
    row = conn.execute(f"SELECT {_VERSION_COLUMNS} FROM classification_rules ORDER BY version DESC LIMIT 1").fetchone()
    if row is not None and same_rules(rules_from_file(row[1]), rules):
        return int(row[0])
    if row is None and same_rules(rules, DEFAULT_RULES) and not note:
        note = "package defaults"
    cursor = conn.execute(
        "INSERT INTO classification_rules (version, rules, created_at, note) "
        "VALUES ((SELECT COALESCE(MAX(version), 0) + 1 FROM classification_rules), ?, ?, ?)",
        (rules_to_file(rules), _now(), note),
    )
    return int(cursor.lastrowid or 0)


def save_rules(store: Store, rules: Rules, note: str = "") -> RulesVersion:
    """A new version (or the current one, when nothing changed). Saving does not re-decide any record: apply_rules does."""
    check_rules(rules)
    with store.write() as conn:
        version = _save(conn, rules, note)
    return _get_version(store, version)


def _get_version(store: Store, version: int) -> RulesVersion:
    row = store.conn.execute(
        f"SELECT {_VERSION_COLUMNS} FROM classification_rules WHERE version = ?", (version,)
    ).fetchone()
    if row is None:
        raise KeyError(f"no rules version {version}")
    return _version_from_row(row)


def get_version(store: Store, version: int) -> RulesVersion:
    return _get_version(store, version)


# -- re-deciding every record in SQL ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Move:
    before: str  # "unknown" for a record without a tier
    after: str
    records: int


@dataclass(frozen=True)
class Impact:
    """What applying rules does (or did) to the store."""

    category_moves: list[Move]
    tier_moves: list[Move]
    category_counts: list[tuple[str, int, int]]  # value, records before, records after
    tier_counts: list[tuple[str, int, int]]
    reasons_only: int  # records whose category and tier stay but whose reason changes
    overridden: int  # records the rules now decide differently, kept as they are by a manual override
    seconds: float

    @property
    def records_moved(self) -> int:
        return sum(m.records for m in self.category_moves) + sum(m.records for m in self.tier_moves)


@dataclass(frozen=True)
class ApplyResult:
    version: RulesVersion
    impact: Impact
    records_written: int
    records_skipped: int  # rewritten by a sync or an override while the rules were being applied
    seconds: float


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


def _fallback(category: str, reason: str) -> tuple[str, str]:
    """The source's own decision when no rule matches, as SQL over feedback `f` and the current category/reason."""
    category, reason = f"({category})", f"({reason})"
    nps = "json_extract(f.metadata, '$.nps')"
    surveys = f"f.source IN ({_sql_list(nps_sources())})"
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
        f"ELSE '{DEFAULT_REASON}' END"
    )
    return fallback_category, fallback_reason


_TEMP_TABLES = ("rule_overridden", "rule_decided", "rule_tags", "rule_tag_hits", "rule_types", "rule_tier_map",
                "rule_category_changes", "rule_tier_changes")


def _drop_temp(conn: sqlite3.Connection) -> None:
    for name in _TEMP_TABLES:
        conn.execute(f"DROP TABLE IF EXISTS temp.{name}")


def _distinct(conn: sqlite3.Connection, table: str, column: str, where: str = "", params: Sequence[Any] = ()) -> list[str]:
    """The distinct non-null values of an indexed column (within `where`, equalities on the columns before it in
    the index): a seek per value through the index, not a read of every entry."""
    within = f"{where} AND " if where else ""
    return [row[0] for row in conn.execute(
        f"WITH RECURSIVE v(value) AS (SELECT MIN({column}) FROM {table} WHERE {within}{column} IS NOT NULL UNION ALL "
        f"SELECT (SELECT MIN({column}) FROM {table} WHERE {within}{column} > v.value) FROM v WHERE v.value IS NOT NULL) "
        "SELECT value FROM v WHERE value IS NOT NULL",
        [*params, *params],
    )]


def _tiers_by_reason(conn: sqlite3.Connection) -> list[tuple[str, str | None]]:
    """Each tier reason with each tier its records hold now (None for none), by seeks through the reason index."""
    pairs: list[tuple[str, str | None]] = []
    for reason in _distinct(conn, "feedback", "tier_reason"):
        if conn.execute("SELECT 1 FROM feedback INDEXED BY idx_feedback_tier_reason "
                        "WHERE tier_reason = ? AND customer_tier IS NULL LIMIT 1", (reason,)).fetchone():
            pairs.append((reason, None))
        pairs += [(reason, tier) for tier in _distinct(
            conn, "feedback INDEXED BY idx_feedback_tier_reason", "customer_tier", "tier_reason = ?", (reason,))]
    return pairs


def _plan_overridden(conn: sqlite3.Connection) -> None:
    """temp.rule_overridden: per overridden record, what the rules had decided underneath each overridden field."""
    # CROSS JOIN keeps the (few) overrides as the outer loop: the planner would otherwise walk every record in
    # rowid order to spare itself the GROUP BY sort.
    conn.execute(
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
    conn.execute("CREATE UNIQUE INDEX temp.rule_overridden_id ON rule_overridden (id)")


def _plan_categories(conn: sqlite3.Connection, rules: Rules) -> None:
    """temp.rule_decided: the category and reason a rule gives each record one applies to, highest precedence first."""
    conn.execute("CREATE TEMP TABLE rule_decided (id INTEGER PRIMARY KEY, category TEXT NOT NULL, reason TEXT NOT NULL)")

    # Tags: the first of a record's own tags that has a rule decides, as Rules.categorize reads them.
    conn.execute("CREATE TEMP TABLE rule_tags (tag TEXT PRIMARY KEY, category TEXT NOT NULL) WITHOUT ROWID")
    mapped = [(tag, rules.tag_categories[tag.strip().lower()].value) for tag in _distinct(conn, "feedback_tags", "tag")
              if tag.strip().lower() in rules.tag_categories]
    conn.executemany("INSERT INTO rule_tags (tag, category) VALUES (?, ?)", mapped)
    conn.execute("CREATE TEMP TABLE rule_tag_hits (id INTEGER NOT NULL, tag TEXT NOT NULL, category TEXT NOT NULL, "
                 "PRIMARY KEY (id, tag)) WITHOUT ROWID")
    conn.execute("INSERT INTO rule_tag_hits SELECT t.feedback_id, t.tag, r.category FROM rule_tags AS r "
                 "JOIN feedback_tags AS t ON t.tag = r.tag")
    conn.execute("INSERT INTO rule_decided (id, category, reason) SELECT id, category, 'tag `' || tag || '`' "
                 "FROM rule_tag_hits GROUP BY id HAVING COUNT(*) = 1")
    # With several, the earliest in the record's tag list wins: SQLite fills the bare columns of a MIN() aggregate
    # from the row holding the minimum.
    conn.execute(
        "INSERT INTO rule_decided (id, category, reason) SELECT id, category, 'tag `' || tag || '`' FROM ("
        "  SELECT h.id AS id, h.category AS category, h.tag AS tag, MIN(instr(f.tags, json_quote(h.tag))) "
        "  FROM rule_tag_hits AS h JOIN feedback AS f ON f.id = h.id "
        "  WHERE h.id IN (SELECT id FROM rule_tag_hits GROUP BY id HAVING COUNT(*) > 1) GROUP BY h.id)"
    )

    # Vendor ticket types, read through the store's partial index on the built-in vendor-type source's
    # metadata.type; a plugin source with ticket types too is read without it.
    if rules.type_categories:
        conn.execute("CREATE TEMP TABLE rule_types (type TEXT PRIMARY KEY, category TEXT NOT NULL) WITHOUT ROWID")
        conn.executemany("INSERT INTO rule_types VALUES (?, ?)", [(k, v.value) for k, v in rules.type_categories.items()])
        indexed = vendor_type_index_source()
        for source in vendor_type_sources():
            through = "INDEXED BY idx_feedback_vendor_type " if source == indexed else ""
            conn.execute(
                "INSERT OR IGNORE INTO rule_decided (id, category, reason) "
                "SELECT f.id, r.category, 'vendor type `' || r.type || '`' FROM rule_types AS r "
                f"CROSS JOIN feedback AS f {through}"
                f"ON json_extract(f.metadata, '$.type') = r.type AND f.source = {_sql_list((source,))}"
            )

    # Keywords in list order: the first one found decides. Surveys are matched on their content only.
    content_only = _sql_list(content_only_sources())
    for words, category in rules.keyword_categories:
        reason = f"keyword `{words}`"
        phrase = _quoted_phrase(words)
        for column in ("content", "title"):
            checks, params = [], [category.value, reason, f"{column} : {phrase}"]
            if column == "title":
                checks.append(f"f.source NOT IN ({content_only})")
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


# What a plan holds per record it changes: the value and reason now (so a write can tell whether a sync rewrote the
# record in between), and the new ones. Overridden records change only underneath their override.
_CHANGE_COLUMNS = ("id INTEGER PRIMARY KEY, old TEXT, old_reason TEXT, new TEXT, reason TEXT NOT NULL, "
                   "overridden INTEGER NOT NULL")
# Records rewritten per write transaction: about a second of holding the write lock on a million-record store, so a
# sync page or a webhook delivery waiting on it goes through between two batches.
WRITE_BATCH = 20_000


def _plan_category_changes(conn: sqlite3.Connection) -> None:
    """temp.rule_category_changes: every record whose rule-decided category or reason differs from now.

    One pass over the small reason index, each record looked up in the rules' decisions; only a survey left to its
    NPS fallback reads its row. For an overridden record "now" is what the rules decided underneath its override.
    """
    current = "CASE WHEN ov.has_category THEN ov.category ELSE f.category END"
    current_reason = "CASE WHEN ov.has_category THEN ov.category_reason ELSE f.category_reason END"
    fallback, fallback_reason = _fallback(current, current_reason)
    conn.execute(f"CREATE TEMP TABLE rule_category_changes ({_CHANGE_COLUMNS})")
    conn.execute(
        "INSERT INTO rule_category_changes "
        f"SELECT f.id, {current}, {current_reason}, COALESCE(d.category, {fallback}), "
        f"COALESCE(d.reason, {fallback_reason}), ov.id IS NOT NULL "
        "FROM feedback AS f INDEXED BY idx_feedback_category_reason "
        "LEFT JOIN rule_decided AS d ON d.id = f.id LEFT JOIN rule_overridden AS ov ON ov.id = f.id "
        # A category the record's own data states is not the rules' to move.
        f"WHERE COALESCE({current_reason}, '') NOT LIKE '{STATED_REASON_PREFIX}%' AND "
        f"CASE WHEN d.id IS NOT NULL THEN {current} IS NOT d.category OR {current_reason} IS NOT d.reason "
        # A record left on its source's default stays there: no need to read its metadata.
        f"WHEN {current} = 'other' AND {current_reason} = '{DEFAULT_REASON}' THEN 0 "
        f"ELSE {current} IS NOT {fallback} OR {current_reason} IS NOT {fallback_reason} END"
    )


def _tier_decisions(conn: sqlite3.Connection, rules: Rules) -> list[tuple[str, str, str | None, str]]:
    """(reason now, organization or '', tier, new reason) for every reason the rules now read differently.

    One decision per distinct reason (a few hundred at most) and per vendor organization name left undecided:
    the records themselves are then changed by one set-based join, never a loop over rows.
    """
    # Each reason with the tiers its records hold now, read off the covering reason index.
    pairs = _tiers_by_reason(conn) + conn.execute(
        "SELECT DISTINCT tier_reason, tier FROM rule_overridden WHERE has_tier AND tier_reason IS NOT NULL"
    ).fetchall()
    tiers_now: dict[str, set[str | None]] = {}
    for reason, tier in pairs:
        tiers_now.setdefault(reason, set()).add(tier)
    decisions: dict[tuple[str, str], tuple[str | None, str]] = {}
    unresolved: list[str] = []
    for reason in sorted(tiers_now):
        match = _PLAN_REASON.match(reason)
        if reason == NO_PLAN_REASON:
            unresolved.append(reason)
            continue
        if match is None:
            continue  # not a plan rule's reason (a manual override, or data from elsewhere): left as it is
        label, value = match.group("label"), match.group("value")
        decision = rules.tier((label, value))
        if decision.value is not None:
            decisions[(reason, "")] = (decision.value, decision.reason)
            continue
        decisions[(reason, "")] = (None, f"{label} `{value}` matches no plan rule")
        if label != "organization name":
            unresolved.append(reason)
    if unresolved:
        # The last clue of a source with organizations is the organization's name, kept in metadata.
        placeholders = ", ".join("?" * len(unresolved))
        for reason, organization in conn.execute(
            "SELECT tier_reason, org FROM (SELECT f.tier_reason AS tier_reason, "
            "json_extract(f.metadata, '$.organization_name') AS org FROM feedback AS f "
            f"WHERE f.tier_reason IN ({placeholders}) AND f.source IN ({_sql_list(organization_sources())})) "
            "WHERE org IS NOT NULL GROUP BY 1, 2",
            unresolved,
        ):
            decision = rules.tier(("organization name", str(organization)))
            if decision.value is not None:
                decisions[(reason, str(organization))] = (decision.value, decision.reason)
    # A reason that gives itself and its records' tier back decides nothing new.
    return [(reason, org, tier, new_reason) for (reason, org), (tier, new_reason) in decisions.items()
            if org or new_reason != reason or tiers_now[reason] != {tier}]


def _plan_tier_changes(conn: sqlite3.Connection, rules: Rules) -> None:
    """temp.rule_tier_changes: every record whose rule-decided tier or reason differs from now."""
    conn.execute(f"CREATE TEMP TABLE rule_tier_changes ({_CHANGE_COLUMNS})")
    changing = _tier_decisions(conn, rules)
    if not changing:
        return
    conn.execute("CREATE TEMP TABLE rule_tier_map (reason TEXT NOT NULL, org TEXT NOT NULL, tier TEXT, "
                 "new_reason TEXT NOT NULL, PRIMARY KEY (reason, org)) WITHOUT ROWID")
    conn.executemany("INSERT INTO rule_tier_map VALUES (?, ?, ?, ?)", changing)
    organizations = f"f.source IN ({_sql_list(organization_sources())})"
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


def _plan(conn: sqlite3.Connection, rules: Rules) -> None:
    _drop_temp(conn)
    _plan_overridden(conn)
    _plan_categories(conn, rules)
    _plan_category_changes(conn)
    _plan_tier_changes(conn, rules)


def _moves(conn: sqlite3.Connection, table: str) -> list[Move]:
    return [
        Move(before or UNKNOWN_TIER, after or UNKNOWN_TIER, int(records))
        for before, after, records in conn.execute(
            f"SELECT old, new, COUNT(*) FROM {table} WHERE NOT overridden AND old IS NOT new "
            "GROUP BY 1, 2 ORDER BY 3 DESC, 1, 2"
        )
    ]


def _counts(before: Mapping[str, int], moves: Sequence[Move], order: Sequence[str]) -> list[tuple[str, int, int]]:
    after = dict(before)
    for move in moves:
        after[move.before] = after.get(move.before, 0) - move.records
        after[move.after] = after.get(move.after, 0) + move.records
    values = [*order, *sorted((set(before) | set(after)) - set(order))]
    return [(value, before.get(value, 0), after.get(value, 0)) for value in values]


def _impact(conn: sqlite3.Connection, started: float) -> Impact:
    category_moves = _moves(conn, "rule_category_changes")
    tier_moves = _moves(conn, "rule_tier_changes")
    category_before = {value: int(n) for value, n in conn.execute(
        "SELECT category, COUNT(*) FROM feedback GROUP BY category")}
    tier_before = {value or UNKNOWN_TIER: int(n) for value, n in conn.execute(
        "SELECT customer_tier, COUNT(*) FROM feedback GROUP BY customer_tier")}
    reasons_only = int(conn.execute(
        "SELECT COUNT(*) FROM (SELECT id FROM rule_category_changes WHERE NOT overridden AND old IS new UNION "
        "SELECT id FROM rule_tier_changes WHERE NOT overridden AND old IS new) "
        "WHERE id NOT IN (SELECT id FROM rule_category_changes WHERE NOT overridden AND old IS NOT new) "
        "AND id NOT IN (SELECT id FROM rule_tier_changes WHERE NOT overridden AND old IS NOT new)"
    ).fetchone()[0])
    overridden = int(conn.execute(
        "SELECT COUNT(*) FROM (SELECT id FROM rule_category_changes WHERE overridden AND old IS NOT new "
        "UNION SELECT id FROM rule_tier_changes WHERE overridden AND old IS NOT new)"
    ).fetchone()[0])
    return Impact(
        category_moves=category_moves,
        tier_moves=tier_moves,
        category_counts=_counts(category_before, category_moves, [c.value for c in Category]),
        tier_counts=_counts(tier_before, tier_moves, [*(t.value for t in Tier), UNKNOWN_TIER]),
        reasons_only=reasons_only,
        overridden=overridden,
        seconds=time.perf_counter() - started,
    )


def _prepare(conn: sqlite3.Connection) -> None:
    # The working tables can reach a row per record: in memory they cost tens of megabytes and no disk writes.
    conn.execute("PRAGMA temp_store = MEMORY")
    # Rewriting many records touches pages of every index holding a category or tier: a larger page cache keeps
    # them from being read and spilled again (SQLite takes the memory only as it needs it).
    conn.execute("PRAGMA cache_size = -262144")


def preview_rules(store: Store, rules: Rules) -> Impact:
    """How many records `rules` would move, per category and tier, without changing anything."""
    check_rules(rules)
    started = time.perf_counter()
    conn = store.conn
    _prepare(conn)
    conn.execute("BEGIN")  # one consistent snapshot for every count; the temp tables live on this connection only
    try:
        _plan(conn, rules)
        impact = _impact(conn, started)
    finally:
        conn.execute("ROLLBACK")
        _drop_temp(conn)
    return impact


def apply_rules(store: Store, rules: Rules | None = None, note: str = "") -> ApplyResult:
    """Save `rules` as the current version (unless unchanged) and re-decide every stored record.

    The plan is made on one snapshot without holding the write lock; the records are then rewritten in batches of
    WRITE_BATCH, each its own transaction, so syncs and webhook deliveries are never kept waiting for long. A record
    a sync or an override rewrote after the plan was made is left as that writer left it (counted in
    `records_skipped`); applying again picks it up. Manual overrides stay on top: their records get the rules' new
    decision underneath, for when they are undone. With no rules given, re-applies the current version.
    """
    started = time.perf_counter()
    rules = rules if rules is not None else current_rules(store)
    check_rules(rules)
    with store.write() as conn:
        version = _save(conn, rules, note)  # syncs from now on map with these rules
    conn = store.conn
    _prepare(conn)
    conn.execute("BEGIN")
    try:
        _plan(conn, rules)
        impact = _impact(conn, started)
        conn.execute("COMMIT")  # only temp tables were written: they stay, on this connection, for the batches
    except BaseException:
        conn.execute("ROLLBACK")
        _drop_temp(conn)
        raise
    try:
        written = planned = 0
        for table, columns in (("rule_category_changes", _COLUMNS_OF[CATEGORY]),
                               ("rule_tier_changes", _COLUMNS_OF[TIER])):
            for low, high, count in _batches(conn, table):
                planned += count
                with store.write() as batch:
                    written += _write_batch(batch, table, columns, low, high)
        with store.write() as batch:
            for table, field_name in (("rule_category_changes", CATEGORY), ("rule_tier_changes", TIER)):
                batch.execute(
                    "UPDATE feedback_overrides SET rule_value = c.new, rule_reason = c.reason "
                    f"FROM {table} AS c JOIN feedback AS f ON f.id = c.id WHERE c.overridden "
                    "AND feedback_overrides.source = f.source AND feedback_overrides.source_id = f.source_id "
                    "AND feedback_overrides.field = ?",
                    (field_name,),
                )
            batch.execute("UPDATE classification_rules SET applied_at = ? WHERE version = ?", (_now(), version))
    finally:
        _drop_temp(conn)
    return ApplyResult(_get_version(store, version), impact, written, planned - written,
                       time.perf_counter() - started)


_COLUMNS_OF = {CATEGORY: ("category", "category_reason"), TIER: ("customer_tier", "tier_reason")}


def _batches(conn: sqlite3.Connection, table: str) -> list[tuple[int, int, int]]:
    """(first id, last id, records) of each run of WRITE_BATCH records to rewrite, in id order."""
    return [(int(low), int(high), int(count)) for low, high, count in conn.execute(
        f"SELECT MIN(id), MAX(id), COUNT(*) FROM (SELECT id, (ROW_NUMBER() OVER (ORDER BY id) - 1) / ? AS batch "
        f"FROM {table} WHERE NOT overridden) GROUP BY batch ORDER BY batch",
        (WRITE_BATCH,),
    )]


def _write_batch(conn: sqlite3.Connection, table: str, columns: tuple[str, str], low: int, high: int) -> int:
    value, reason = columns
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


# -- provenance -------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Provenance:
    category: str
    category_reason: str | None
    tier: str  # "unknown" when the record has none
    tier_reason: str | None


def provenance(store: Store, source: str, source_id: str) -> Provenance | None:
    row = store.conn.execute(
        "SELECT category, category_reason, customer_tier, tier_reason FROM feedback WHERE source = ? AND source_id = ?",
        (source, source_id),
    ).fetchone()
    if row is None:
        return None
    return Provenance(row[0], row[1], row[2] or UNKNOWN_TIER, row[3])


def reason_kind(reason: str | None) -> str:
    """What kind of rule a reason names: tag, vendor type, keyword, plan, NPS, override, default or unknown."""
    if not reason:
        return "unknown"
    for prefix, kind in (("tag `", "tag"), ("vendor type `", "vendor type"), ("keyword `", "keyword"),
                         ("NPS ", "NPS score"), ("manual override", "manual override")):
        if reason.startswith(prefix):
            return kind
    if reason in (DEFAULT_REASON, NO_PLAN_REASON):
        return "default"
    if _PLAN_REASON.match(reason):
        return "plan"
    return "unknown"
