"""Rules in the store: versions, the JSON file, the Rules page's tables, and re-application in SQL that decides every
record exactly as the integrations' mappers do with the same rules, precedence included, overrides kept."""

from __future__ import annotations

import shutil
from dataclasses import replace
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import httpx
import pytest

from feedback_sources import overrides
from feedback_sources.emulator import Emulator, EmulatorConfig, create_app
from feedback_sources.models import Category, NormalizedRecord, Tier
from feedback_sources.rules import DEFAULT_RULES, Rules
from feedback_sources.rules_store import (
    Move,
    RulesError,
    apply_rules,
    current_rules,
    current_version,
    history,
    preview_rules,
    provenance,
    reason_kind,
    rules_at,
    rules_from_file,
    rules_from_tables,
    rules_to_file,
    rules_to_tables,
    save_rules,
)
from feedback_sources.store import Store
from feedback_sources.sync import sync
from feedback_sources.workspace import SOURCES, Workspace, demo_configs

D = DEFAULT_RULES
C, T = Category, Tier


# -- versions and files ----------------------------------------------------------------------------------------------


def test_the_package_defaults_hold_until_a_version_is_saved(tmp_path: Path) -> None:
    assert rules_at(tmp_path / "missing.db") is DEFAULT_RULES
    assert not (tmp_path / "missing.db").exists()
    with Store() as store:
        assert (current_version(store), current_rules(store)) == (None, DEFAULT_RULES)
        moved = replace(D, tag_categories={**D.tag_categories, "bug": C.complaint})
        first = save_rules(store, moved, "bug is a complaint")
        assert (first.version, first.note, first.applied_at, first.rules) == (1, "bug is a complaint", None, moved)
        assert save_rules(store, moved).version == 1  # nothing changed: no new version
        second = save_rules(store, D)
        assert [v.version for v in history(store)] == [2, 1]
        assert (current_version(store).version, current_rules(store), second.note) == (2, D, "")


def test_rules_file_round_trip_and_refusals() -> None:
    custom = Rules(
        tag_categories={"bug": C.complaint, "vip": C.support},
        type_categories={"incident": C.bug_report},
        keyword_categories=(("doesn't work", C.bug_report), ("merci", C.praise)),
        plan_tiers=(("gold", T.enterprise), ("pro", T.professional)),
    )
    text = rules_to_file(custom)
    assert text.startswith('{\n  "format": "feedback-hub-rules",\n  "format_version": 1,')
    assert rules_from_file(text) == custom
    assert rules_from_file(text.encode()) == custom
    for bad, message in (
        ("not json", "not a JSON file"),
        ('{"tag_categories": {}}', 'not a rules file: it needs "format": "feedback-hub-rules"'),
        ('{"format": "feedback-hub-rules", "tag_categories": {"bug": "urgent"}}', "tag_categories.bug: Input should be"),
        ('{"format": "feedback-hub-rules", "keyword_categories": [["!!", "praise"]]}', "has no letter or digit"),
        ('{"format": "feedback-hub-rules", "plan_tiers": [["pro", "free"], ["Pro", "business"]]}', "listed twice"),
        ('{"format": "feedback-hub-rules", "extra": 1}', "extra: Extra inputs are not permitted"),
    ):
        with pytest.raises(RulesError, match=message):
            rules_from_file(bad)


def test_the_rules_page_tables_round_trip_and_report_every_problem() -> None:
    tables = rules_to_tables(D)
    assert tables["keywords"][:2] == [{"keyword": "crash", "category": "bug_report"},
                                      {"keyword": "crashes", "category": "bug_report"}]
    assert tables["plans"][0] == {"plan word": "enterprise", "tier": "enterprise"}
    assert rules_from_tables(tables) == D
    edited = {**tables, "tags": [*tables["tags"], {"tag": " VIP ", "category": "support"}, {"tag": None, "category": None}]}
    assert rules_from_tables(edited).tag_categories["vip"] == C.support
    with pytest.raises(RulesError) as raised:
        rules_from_tables({
            "tags": [{"tag": "bug", "category": "urgent"}, {"tag": "", "category": "praise"}],
            "keywords": [{"keyword": "love", "category": "praise"}, {"keyword": "Love", "category": "praise"}],
            "plans": [{"plan word": "gold", "tier": None}],
        })
    assert raised.value.problems == [
        "tags row 1 (bug): choose a category from the list",
        "tags row 2: the tag is empty",
        "plans row 1 (gold): choose a tier from the list",
        "the keyword 'Love' is listed twice",
    ]


# -- precedence, on records as the mappers leave them ---------------------------------------------------------------


def mapped(source: str, source_id: str, *, title: str = "", content: str = "", tags: tuple[str, ...] = (),
           vendor_type: str | None = None, nps: int | None = None, plan: tuple[str, str] | None = None,
           organization: str | None = None, rules: Rules = D) -> NormalizedRecord:
    """A record categorized the way each integration's mapper calls Rules."""
    text = content if source == "surveymonkey" else f"{title}\n{content}"
    decision = rules.categorize(tags=tags, vendor_type=vendor_type if source == "zendesk" else None, text=text)
    heading = "How likely are you to recommend us?"
    if source == "surveymonkey" and nps is not None and decision.reason == "default for this source":
        if nps <= 6:
            decision = replace(decision, value="complaint", reason=f"NPS {nps} (detractor, 0–6) on `{heading}`")
        elif nps >= 9:
            decision = replace(decision, value="praise", reason=f"NPS {nps} (promoter, 9–10) on `{heading}`")
    candidates = [plan] if plan else []
    if organization and source == "zendesk":
        candidates.append(("organization name", organization))
    tier = rules.tier(*candidates)
    metadata: dict[str, Any] = {"tags": list(tags), "type": vendor_type, "organization_name": organization,
                                "category_reason": decision.reason, "tier_reason": tier.reason}
    if source == "surveymonkey":
        metadata.update(nps=nps, answers=[{"question": heading, "answer": str(nps)}])
    return NormalizedRecord(source=source, source_id=source_id, title=title, content=content,
                            category=decision.value, customer_tier=tier.value,
                            created_at=datetime(2026, 4, 1, tzinfo=timezone.utc), metadata=metadata)


def handmade(rules: Rules) -> list[NormalizedRecord]:
    return [
        mapped("zendesk", "tags", tags=("vip", "question", "bug"), vendor_type="problem", content="it crashes",
               plan=("requester plan", "Acme Pro"), organization="Acme Enterprise", rules=rules),
        mapped("zendesk", "type", tags=("vip",), vendor_type="incident", content="crash", rules=rules),
        mapped("zendesk", "keyword order", content="I would love a fix, this is broken", organization="Globex",
               rules=rules),
        mapped("zendesk", "curly", content="It doesn’t work and feature-request", rules=rules),
        mapped("zendesk", "hyphen", content="Bug report: broken-link", rules=rules),
        mapped("intercom", "title", title="Refund", plan=("plan", "Team Gold"), rules=rules),
        mapped("surveymonkey", "detractor", title="Error survey", content="Q: Why?\nA: fine", nps=3, rules=rules),
        mapped("surveymonkey", "promoter", content="Q: Why?\nA: thank you", nps=10, rules=rules),
        mapped("surveymonkey", "passive", content="Q: Why?\nA: ok", nps=7, rules=rules),
    ]


def decisions(store: Store) -> dict[str, tuple[Any, ...]]:
    return {row[0]: tuple(row[1:]) for row in store.conn.execute(
        "SELECT source_id, category, category_reason, customer_tier, tier_reason FROM feedback ORDER BY id")}


def test_precedence_is_the_mappers_own() -> None:
    with Store() as store:
        store.upsert_records(handmade(D))
        assert decisions(store) == {
            "tags": ("question", "tag `question`", "professional", "requester plan `Acme Pro` matches `pro`"),
            "type": ("bug_report", "vendor type `incident`", None, "no plan information"),
            "keyword order": ("bug_report", "keyword `broken`", None, "no plan information"),
            "curly": ("other", "default for this source", None, "no plan information"),
            "hyphen": ("bug_report", "keyword `bug`", None, "no plan information"),
            "title": ("complaint", "keyword `refund`", "business", "plan `Team Gold` matches `team`"),
            "detractor": ("complaint", "NPS 3 (detractor, 0–6) on `How likely are you to recommend us?`", None,
                          "no plan information"),
            "promoter": ("praise", "keyword `thank you`", None, "no plan information"),
            "passive": ("other", "default for this source", None, "no plan information"),
        }
        # Re-applying the rules the records were mapped with moves nothing.
        impact = preview_rules(store, D)
        assert (impact.category_moves, impact.tier_moves, impact.reasons_only) == ([], [], 0)


VARIANTS = {
    "tags off": replace(D, tag_categories={}),
    "types off": replace(D, type_categories={}),
    "keywords reversed": replace(D, keyword_categories=tuple(reversed(D.keyword_categories))),
    "keywords off": replace(D, keyword_categories=()),
    "question tag is support": replace(D, tag_categories={**D.tag_categories, "question": C.support}),
    "pro and team gone, globex added": replace(D, plan_tiers=tuple(
        p for p in D.plan_tiers if p[0] not in ("pro", "team")) + (("globex", T.enterprise),)),
}


@pytest.mark.parametrize("name", VARIANTS)
def test_sql_re_application_decides_like_the_mappers(name: str) -> None:
    rules = VARIANTS[name]
    with Store() as expected, Store() as store:
        expected.upsert_records(handmade(rules))
        store.upsert_records(handmade(D))
        apply_rules(store, rules)
        assert without_lost_plan_values(decisions(store)) == without_lost_plan_values(decisions(expected))


def without_lost_plan_values(rows: dict[Any, tuple[Any, ...]]) -> dict[Any, tuple[Any, ...]]:
    """Where the mapper had no further clue it says "no plan information"; re-application keeps the plan value that
    no longer matches ("plan `X` matches no plan rule"), so restoring the rule restores the tier without a re-sync."""
    return {key: (*value[:3], "no plan information") if str(value[3]).endswith("matches no plan rule") else value
            for key, value in rows.items()}


def test_a_plan_value_is_kept_so_restoring_a_rule_restores_the_tier() -> None:
    without_team = replace(D, plan_tiers=tuple(p for p in D.plan_tiers if p[0] != "team"))
    with Store() as store:
        store.upsert_records(handmade(D))
        apply_rules(store, without_team)
        assert decisions(store)["title"][2:] == (None, "plan `Team Gold` matches no plan rule")
        apply_rules(store, D)
        assert decisions(store)["title"][2:] == ("business", "plan `Team Gold` matches `team`")


def test_preview_changes_nothing_and_apply_saves_marks_and_bumps_the_version() -> None:
    moved = replace(D, tag_categories={**D.tag_categories, "question": C.support})
    with Store() as store:
        store.upsert_records(handmade(D))
        rows = store.conn.execute("SELECT * FROM feedback ORDER BY id").fetchall()
        version = store.data_version()
        impact = preview_rules(store, moved)
        assert store.conn.execute("SELECT * FROM feedback ORDER BY id").fetchall() == rows
        assert (store.data_version(), current_version(store)) == (version, None)
        assert impact.category_moves == [Move("question", "support", 1)]
        assert dict((v, (b, a)) for v, b, a in impact.category_counts) == {
            "bug_report": (3, 3), "feature_request": (0, 0), "support": (0, 1), "question": (1, 0),
            "praise": (1, 1), "complaint": (2, 2), "other": (2, 2)}
        assert (impact.tier_moves, impact.reasons_only, impact.overridden, impact.records_moved) == ([], 0, 0, 1)

        result = apply_rules(store, moved, "question tag is support")
        assert (result.version.version, result.version.note, result.records_written) == (1, "question tag is support", 1)
        assert result.version.applied_at is not None
        assert result.impact.category_moves == impact.category_moves
        assert store.data_version() != version
        assert provenance(store, "zendesk", "tags").category_reason == "tag `question`"
        assert provenance(store, "zendesk", "tags").category == "support"
        again = apply_rules(store)  # the current version, already applied: nothing to write
        assert (again.version.version, again.records_written, again.impact.records_moved) == (1, 0, 0)


def test_rule_changes_keep_overrides_and_update_what_the_rules_say_underneath() -> None:
    moved = replace(D, tag_categories={**D.tag_categories, "question": C.support})
    with Store() as store:
        store.upsert_records(handmade(D))
        overrides.override_record(store, "zendesk", "tags", "category", "praise")
        overrides.override_record(store, "zendesk", "tags", "customer_tier", "free")
        impact = preview_rules(store, moved)
        assert (impact.category_moves, impact.overridden) == ([], 1)
        apply_rules(store, moved)
        assert decisions(store)["tags"] == ("praise", "manual override", "free", "manual override")
        [category, tier] = sorted(overrides.list_overrides(store), key=lambda o: o.field)
        assert (category.rule_value, category.rule_reason) == ("support", "tag `question`")
        assert (tier.rule_value, tier.rule_reason) == ("professional", "requester plan `Acme Pro` matches `pro`")
        overrides.undo_record(store, "zendesk", "tags")
        assert decisions(store)["tags"] == ("support", "tag `question`", "professional",
                                            "requester plan `Acme Pro` matches `pro`")


def test_reason_kinds() -> None:
    assert [reason_kind(r) for r in ("tag `bug`", "vendor type `task`", "keyword `love`", "NPS 3 (detractor, 0–6)",
                                     "manual override", "default for this source", "no plan information",
                                     "plan `Pro` matches `pro`", "plan `Gold` matches no plan rule", None, "topic x")] == [
        "tag", "vendor type", "keyword", "NPS score", "manual override", "default", "default", "plan", "plan",
        "unknown", "unknown"]


# -- the same, on what the vendors' emulator serves -------------------------------------------------------------------


@pytest.fixture(scope="module")
def emulator() -> Emulator:
    return Emulator(EmulatorConfig(zendesk_tickets=500, intercom_conversations=250, surveymonkey_surveys=2,
                                   surveymonkey_responses_per_survey=120))


def synced(emulator: Emulator, path: Path, rules: Rules) -> Path:
    workspace = Workspace(demo=True, db_path=path, configs=demo_configs(),
                          transport_factory=lambda: httpx.ASGITransport(app=create_app(emulator)))
    with Store(path) as store:
        results = sync(store, workspace.integrations(SOURCES, rules=rules), start=None, end=None, incremental=False)
    assert [r.status for r in results.values()] == ["complete"] * len(SOURCES)
    return path


@pytest.fixture(scope="module")
def default_store(emulator: Emulator, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return synced(emulator, tmp_path_factory.mktemp("rules") / "default.db", D)


EMULATOR_VARIANTS = {
    "bug tag is a complaint": replace(D, tag_categories={**D.tag_categories, "bug": C.complaint}),
    "no tag rules": replace(D, tag_categories={}),
    "no ticket type rules": replace(D, type_categories={}),
    "keywords reversed, two new first": replace(D, keyword_categories=(("slow", C.complaint), ("export", C.feature_request))
                                                + tuple(reversed(D.keyword_categories))),
    "pro means enterprise, business gone": replace(D, plan_tiers=(("pro", T.enterprise),) + tuple(
        p for p in D.plan_tiers if p[0] not in ("pro", "business"))),
}


def stored(path: Path) -> dict[tuple[str, str], tuple[Any, ...]]:
    with Store(path) as store:
        return {(r[0], r[1]): (r[2], r[3], r[4], r[5]) for r in store.conn.execute(
            "SELECT source, source_id, category, category_reason, customer_tier, tier_reason FROM feedback")}


@pytest.mark.parametrize("name", EMULATOR_VARIANTS)
def test_on_emulator_data_sql_re_application_equals_a_fresh_sync(
        name: str, emulator: Emulator, default_store: Path, tmp_path: Path) -> None:
    rules = EMULATOR_VARIANTS[name]
    fresh = stored(synced(emulator, tmp_path / "fresh.db", rules))
    shutil.copy(default_store, tmp_path / "applied.db")
    with Store(tmp_path / "applied.db") as store:
        assert preview_rules(store, D).records_moved == 0
        impact = preview_rules(store, rules)
        result = apply_rules(store, rules)
    applied = stored(tmp_path / "applied.db")
    assert without_lost_plan_values(applied) == without_lost_plan_values(fresh)
    before = stored(default_store)
    moved = sum(1 for key in before if before[key][0] != applied[key][0]) + sum(
        1 for key in before if before[key][2] != applied[key][2])
    assert impact.records_moved == result.impact.records_moved == moved > 0


def test_apply_writes_in_batches_and_leaves_a_record_rewritten_meanwhile_to_its_writer(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import feedback_sources.rules_store as rules_store

    bare = replace(D, tag_categories={}, keyword_categories=())
    with Store() as expected:
        expected.upsert_records(handmade(bare))
        wanted = decisions(expected)
    path = tmp_path / "store.db"
    with Store(path) as store:
        store.upsert_records(handmade(D))
        planned = preview_rules(store, bare).records_moved + preview_rules(store, bare).reasons_only
    assert planned >= 5
    plan_made = rules_store._impact
    # While the rules are applied, a sync that started earlier (so maps with the old rules) rewrites one record.
    newer = mapped("zendesk", "tags", tags=("bug",), vendor_type="problem", content="it crashes",
                   plan=("requester plan", "Acme Pro"), organization="Acme Enterprise")
    newer = newer.model_copy(update={"metadata": {**newer.metadata, "updated_at": "2026-05-01T00:00:00+00:00"}})

    def a_sync_writes_after_the_plan(conn: Any, started: float) -> Any:
        impact = plan_made(conn, started)
        with Store(path) as sync_writer:  # its own connection, as the sync engine and the webhook receiver have
            sync_writer.upsert_records([newer])
        return impact

    monkeypatch.setattr(rules_store, "WRITE_BATCH", 2)
    monkeypatch.setattr(rules_store, "_impact", a_sync_writes_after_the_plan)
    with Store(path) as store:
        result = apply_rules(store, bare)
        got = decisions(store)
    assert (result.records_written, result.records_skipped) == (planned - 1, 1)
    assert got == wanted | {"tags": ("bug_report", "tag `bug`", "professional",
                                     "requester plan `Acme Pro` matches `pro`")}
    monkeypatch.setattr(rules_store, "_impact", plan_made)
    with Store(path) as store:
        again = apply_rules(store, bare)
        assert (again.records_written, again.records_skipped) == (1, 0)
        assert decisions(store) == wanted
