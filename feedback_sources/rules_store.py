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

The statements are the store's (store/rules_sql.py): this module reads the rules and makes every decision that is
not a set-based join, and hands the store plain values.
"""

from __future__ import annotations

import json
import re
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
    from .store.rules_sql import RulePlanner

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


def current_version(store: Store) -> RulesVersion | None:
    row = store.latest_rules_row()
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
    return [_version_from_row(row) for row in store.rules_rows(limit)]


def _save(store: Store, rules: Rules, note: str) -> int:
    """The version holding `rules`: the newest one when its rules are the same, else a new one."""
    first_note = "package defaults" if not note and same_rules(rules, DEFAULT_RULES) else note
    return store.save_rules_version(rules_to_file(rules), created_at=_now(), note=note, first_note=first_note,
                                    unchanged=lambda stored: same_rules(rules_from_file(stored), rules))


def save_rules(store: Store, rules: Rules, note: str = "") -> RulesVersion:
    """A new version (or the current one, when nothing changed). Saving does not re-decide any record: apply_rules does."""
    check_rules(rules)
    version = _save(store, rules, note)
    return _get_version(store, version)


def _get_version(store: Store, version: int) -> RulesVersion:
    row = store.rules_row(version)
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


# -- the plan: what the rules decide, made in the store's temporary tables ---------------------------------------------


def _plan_categories(plan: RulePlanner, rules: Rules) -> None:
    """temp.rule_decided: the category and reason a rule gives each record one applies to, highest precedence first."""
    plan.start_category_decisions()
    # Tags: the first of a record's own tags that has a rule decides, as Rules.categorize reads them.
    mapped = [(tag, rules.tag_categories[tag.strip().lower()].value) for tag in plan.record_tags()
              if tag.strip().lower() in rules.tag_categories]
    plan.decide_by_tags(mapped)
    # Vendor ticket types, read through the store's partial index on the built-in vendor-type source's
    # metadata.type; a plugin source with ticket types too is read without it.
    if rules.type_categories:
        plan.decide_by_types([(k, v.value) for k, v in rules.type_categories.items()], vendor_type_sources(),
                             vendor_type_index_source())
    # Keywords in list order: the first one found decides. Surveys are matched on their content only.
    content_only = content_only_sources()
    for words, category in rules.keyword_categories:
        plan.decide_by_keyword(words, category.value, content_only)


# Records rewritten per write transaction: about a second of holding the write lock on a million-record store, so a
# sync page or a webhook delivery waiting on it goes through between two batches.
WRITE_BATCH = 20_000


def _tier_decisions(plan: RulePlanner, rules: Rules) -> list[tuple[str, str, str | None, str]]:
    """(reason now, organization or '', tier, new reason) for every reason the rules now read differently.

    One decision per distinct reason (a few hundred at most) and per vendor organization name left undecided:
    the records themselves are then changed by one set-based join, never a loop over rows.
    """
    # Each reason with the tiers its records hold now, read off the covering reason index.
    pairs = plan.tier_reasons_now()
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
        for reason, organization in plan.organizations_by_reason(unresolved, organization_sources()):
            decision = rules.tier(("organization name", str(organization)))
            if decision.value is not None:
                decisions[(reason, str(organization))] = (decision.value, decision.reason)
    # A reason that gives itself and its records' tier back decides nothing new.
    return [(reason, org, tier, new_reason) for (reason, org), (tier, new_reason) in decisions.items()
            if org or new_reason != reason or tiers_now[reason] != {tier}]


def _plan_tier_changes(plan: RulePlanner, rules: Rules) -> None:
    """temp.rule_tier_changes: every record whose rule-decided tier or reason differs from now."""
    plan.start_tier_changes()
    changing = _tier_decisions(plan, rules)
    if not changing:
        return
    plan.plan_tier_changes(changing, organization_sources())


def _plan(plan: RulePlanner, rules: Rules) -> None:
    plan.drop()
    plan.plan_overridden()
    _plan_categories(plan, rules)
    plan.plan_category_changes(nps_sources(), DEFAULT_REASON, STATED_REASON_PREFIX)
    _plan_tier_changes(plan, rules)


def _moves(plan: RulePlanner, field_name: str) -> list[Move]:
    return [Move(before or UNKNOWN_TIER, after or UNKNOWN_TIER, int(records))
            for before, after, records in plan.moves(field_name)]


def _counts(before: Mapping[str, int], moves: Sequence[Move], order: Sequence[str]) -> list[tuple[str, int, int]]:
    after = dict(before)
    for move in moves:
        after[move.before] = after.get(move.before, 0) - move.records
        after[move.after] = after.get(move.after, 0) + move.records
    values = [*order, *sorted((set(before) | set(after)) - set(order))]
    return [(value, before.get(value, 0), after.get(value, 0)) for value in values]


def _impact(plan: RulePlanner, started: float) -> Impact:
    category_moves = _moves(plan, CATEGORY)
    tier_moves = _moves(plan, TIER)
    category_before = {value: int(n) for value, n in plan.category_counts()}
    tier_before = {value or UNKNOWN_TIER: int(n) for value, n in plan.tier_counts()}
    reasons_only = plan.reasons_only()
    overridden = plan.overridden()
    return Impact(
        category_moves=category_moves,
        tier_moves=tier_moves,
        category_counts=_counts(category_before, category_moves, [c.value for c in Category]),
        tier_counts=_counts(tier_before, tier_moves, [*(t.value for t in Tier), UNKNOWN_TIER]),
        reasons_only=reasons_only,
        overridden=overridden,
        seconds=time.perf_counter() - started,
    )


def preview_rules(store: Store, rules: Rules) -> Impact:
    """How many records `rules` would move, per category and tier, without changing anything."""
    check_rules(rules)
    started = time.perf_counter()
    with store.rule_plan(keep=False) as plan:  # one consistent snapshot for every count
        _plan(plan, rules)
        impact = _impact(plan, started)
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
    version = _save(store, rules, note)  # syncs from now on map with these rules
    with store.rule_plan(keep=True) as plan:  # the plan's tables stay, on this connection, for the batches
        _plan(plan, rules)
        impact = _impact(plan, started)
    try:
        written = planned = 0
        for field_name in (CATEGORY, TIER):
            for low, high, count in plan.batches(field_name, WRITE_BATCH):
                planned += count
                written += store.write_rule_batch(field_name, low, high)
        store.finish_rule_plan(version, _now())
    finally:
        plan.drop()
    return ApplyResult(_get_version(store, version), impact, written, planned - written,
                       time.perf_counter() - started)


# -- provenance -------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Provenance:
    category: str
    category_reason: str | None
    tier: str  # "unknown" when the record has none
    tier_reason: str | None


def provenance(store: Store, source: str, source_id: str) -> Provenance | None:
    row = store.record_decision(source, source_id)
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
