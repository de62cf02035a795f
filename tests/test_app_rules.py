"""Rules page and Explore's insight parts (AppTest): move a tag with a preview then apply it, search with highlights,
override a record from its detail view, re-sync from the demo emulator and find the override still in place."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
from app_fixtures import (
    XSS_CONTENT,
    XSS_TITLE,
    AppEnv,
    app_env,  # noqa: F401  (fixture)
    day,
    finish_sync,
    record,
    run_page,
    seed,
)
from streamlit.testing.v1 import AppTest

from feedback_sources import overrides
from feedback_sources.models import Category, Tier
from feedback_sources.rules_store import current_version
from feedback_sources.store import Store
from feedback_sources.sync import sync
from feedback_sources.ui.labels import source_label
from feedback_sources.workspace import SOURCES, demo_workspace

EXPLORE = "app_pages/explore.py"
RULES = "app_pages/rules.py"
SYNC = "app_pages/sync.py"


def load_demo(path: Path) -> None:
    """What Explore's "Load demo data" button does, without the page around it."""
    with Store(path) as store:
        sync(store, demo_workspace(path).integrations(SOURCES), start=None, end=None, incremental=False)


def frame(at: AppTest, *columns: str) -> pd.DataFrame:
    """The one table on the page whose first columns are these."""
    [found] = [f.value for f in at.dataframe if list(f.value.columns[:len(columns)]) == list(columns)]
    return found


def total_records(path: Path) -> int:
    with Store(path) as store:
        return store.count()


def category_counts(path: Path) -> dict[str, int]:
    with Store(path) as store:
        return dict(store.conn.execute("SELECT category, COUNT(*) FROM feedback GROUP BY category").fetchall())


def test_moving_a_tag_previews_the_moves_then_applies_them(app_env: AppEnv) -> None:
    load_demo(app_env.demo_db)
    before = category_counts(app_env.demo_db)
    with Store(app_env.demo_db) as store:
        decided_by_bug = store.conn.execute(
            "SELECT COUNT(*) FROM feedback WHERE category_reason = 'tag `bug`'").fetchone()[0]
    assert decided_by_bug > 50

    at = run_page(app_env, RULES)
    assert [c.value for c in at.caption if c.value.startswith("The draft is")] == [
        "The draft is the set of rules in use. Change a rule above to see how many records it would move."]
    at.text_input(key="rules_tags_word").set_value("bug")
    at.selectbox(key="rules_tags_value").set_value("complaint")
    at.button(key="FormSubmitter:rules_tags_form-Set tag rule").click().run()
    assert not at.exception

    preview = frame(at, "category", "now", "after").set_index("category")
    assert preview.loc["Bug report"].to_dict() == {
        "now": before["bug_report"], "after": before["bug_report"] - decided_by_bug, "change": -decided_by_bug}
    assert preview.loc["Complaint"].to_dict() == {
        "now": before["complaint"], "after": before["complaint"] + decided_by_bug, "change": decided_by_bug}
    assert frame(at, "moves", "from", "to").to_dict("records") == [
        {"moves": "category", "from": "Bug report", "to": "Complaint", "records": decided_by_bug}]
    assert f"Applying the draft moves **{decided_by_bug:,}** records:" in [m.value for m in at.markdown]
    assert category_counts(app_env.demo_db) == before  # a preview changes nothing

    at.text_input(key="rules_note").set_value("bug tickets are complaints")
    at.button(key="rules_apply").click().run()
    assert [s.value for s in at.success][0].startswith(
        f"Rules version 1 applied: {decided_by_bug:,} records moved")
    after = category_counts(app_env.demo_db)
    assert (after["bug_report"], after["complaint"]) == (
        before["bug_report"] - decided_by_bug, before["complaint"] + decided_by_bug)
    with Store(app_env.demo_db) as store:
        version = current_version(store)
        assert (version.version, version.note, version.rules.tag_categories["bug"]) == (
            1, "bug tickets are complaints", Category.complaint)
    assert [c.value for c in at.caption if c.value.startswith("The draft is")] != []  # nothing left to apply
    assert frame(at, "version", "saved")[["version", "note"]].to_dict("records") == [
        {"version": 1, "note": "bug tickets are complaints"}]


def test_search_highlights_then_an_override_from_the_detail_view_survives_a_re_sync(app_env: AppEnv) -> None:
    load_demo(app_env.demo_db)
    at = run_page(app_env, EXPLORE, query={"q": "export csv"})
    assert at.query_params == {"q": "export csv"}
    bodies = [m.value for m in at.markdown]
    with Store(app_env.demo_db) as store:
        total = store.conn.execute("SELECT COUNT(*) FROM feedback_fts WHERE feedback_fts MATCH 'export csv'").fetchone()[0]
    assert f"**Best matches** ({total:,}, most relevant first)" in bodies
    highlighted = [b for b in bodies if ":orange-background[" in b]
    assert len(highlighted) >= 10
    assert all("orange-background[export]" in b.lower() or "orange-background[csv]" in b.lower()
               for b in highlighted)

    # Open the best match and override its category.
    [first, *_] = [b for b in at.button if (b.key or "").startswith("explore_hit_open_")]
    first.click().run()
    _digest, source, source_id = at.session_state["explore_focus"]
    with Store(app_env.demo_db) as store:
        was = store.conn.execute("SELECT category, category_reason FROM feedback WHERE source = ? AND source_id = ?",
                                 (source, source_id)).fetchone()
    reason = [m.value for m in at.markdown if m.value.startswith("Category: **")]
    assert len(reason) == 1 and " — because " in reason[0]
    assert "`" not in reason[0]  # the rule's quoted value reads as “value”, not as code
    new_category = "praise" if was[0] != "praise" else "question"
    key = f"explore_override_hit_category_{source}_{source_id}"
    at.selectbox(key=key).set_value(new_category)
    at.button(key=f"{key}_save").click().run()
    assert not at.exception
    assert [s.value for s in at.success] == [
        "Override saved: re-syncs, webhooks and rule changes keep it until you undo it."]
    assert [m.value for m in at.markdown if m.value.startswith("Category: **")] == [
        f"Category: **{new_category.capitalize()}** — because manual override"]
    assert any(c.value.startswith("Overridden on ") for c in at.caption)

    # A re-sync from the demo emulator rewrites every record; the override stays on top.
    sync_page = run_page(app_env, SYNC)
    sync_page.radio(key="sync_preset").set_value("custom")
    sync_page.date_input(key="sync_custom").set_value((day(-200), day(0)))
    sync_page.button(key="FormSubmitter:sync_form-Run sync").click().run()
    finish_sync(sync_page, app_env.demo_db)  # the sync runs as a background job
    assert sync_page.status[0].state == "complete"
    results = sync_page.dataframe[0].value
    # Every record came again from the vendor (none new) and went through the store's one write path.
    assert (results["fetched"].sum(), results["new"].sum()) == (total_records(app_env.demo_db), 0)
    with Store(app_env.demo_db) as store:
        assert store.conn.execute("SELECT category, category_reason FROM feedback WHERE source = ? AND source_id = ?",
                                  (source, source_id)).fetchone() == (new_category, "manual override")
        [override] = overrides.list_overrides(store)
        assert (override.rule_value, override.rule_reason) == was

    # The Rules page lists it and undoes it.
    rules = run_page(app_env, RULES)
    assert frame(rules, "source", "id", "field")[["source", "id", "field", "set to"]].to_dict("records") == [
        {"source": source_label(source), "id": source_id, "field": "category", "set to": new_category.capitalize()}]
    rules.button(key="rules_undo").click().run()
    with Store(app_env.demo_db) as store:
        assert store.conn.execute("SELECT category, category_reason FROM feedback WHERE source = ? AND source_id = ?",
                                  (source, source_id)).fetchone() == was
        assert overrides.count_overrides(store) == 0


def test_bulk_override_of_the_filtered_set(app_env: AppEnv) -> None:
    seed(app_env.demo_db)
    at = run_page(app_env, EXPLORE, query={"source": "zendesk"})
    at.radio(key="explore_bulk_field").set_value("customer_tier").run()
    at.selectbox(key="explore_bulk_customer_tier").set_value("enterprise")
    at.button(key="explore_bulk_apply").click().run()
    assert [s.value for s in at.success][0].startswith("4 records overridden (batch 1)")
    with Store(app_env.demo_db) as store:
        tiers = dict(store.conn.execute("SELECT source_id, customer_tier FROM feedback WHERE source = 'zendesk'"))
        [batch] = overrides.list_batches(store)
    assert tiers == {"1": "enterprise", "2": "enterprise", "3": "enterprise", "4": "enterprise"}
    assert (batch.field, batch.value, batch.records, batch.description) == (
        "customer_tier", "enterprise", 4, "Sources: Zendesk; Tiers: All; Categories: All; Dates: All time")


def test_hostile_search_hits_render_as_escaped_literal_markdown(app_env: AppEnv) -> None:
    seed(app_env.demo_db, [
        record("intercom", "x1", days_ago=1, tier=Tier.free, category=Category.complaint,
               title=f"export {XSS_TITLE}", content=f"export {XSS_CONTENT} **bold** =cmd www.evil.example"),
    ])
    at = run_page(app_env, EXPLORE, query={"q": "export"})
    hits = [m.value for m in at.markdown if "orange-background" in m.value]
    assert hits == [
        r":orange-background[export] \<script\>window:small[]\.\_\_pwned \= 1\<\/script\>",
        r":orange-background[export] \<img src\=x onerror\=\"window:small[]\.\_\_pwned\=1\"\> "
        r"\[click\]\(javascript:small[]\:alert\(1\)\) \!\[\]\(http:small[]\:\/\/127:small[]\.0:small[]\.0:small[]\.9"
        r"\/pixel:small[]\.png\) \*\*bold\*\* \=cmd www:small[]\.evil:small[]\.example",
    ]


def test_a_rule_that_moves_nothing_says_which_earlier_rule_decides_its_records(app_env: AppEnv) -> None:
    tagged = [
        record("zendesk", str(n), days_ago=n, category=Category.bug_report, content="the invoice is wrong",
               tags=("bug",))
        for n in (1, 2)
    ]
    seed(app_env.demo_db, [r.model_copy(update={"metadata": {**r.metadata, "category_reason": "tag `bug`"}})
                           for r in tagged])
    at = run_page(app_env, RULES)
    at.text_input(key="rules_keywords_word").set_value("invoice")
    at.selectbox(key="rules_keywords_value").set_value("question")
    at.radio(key="rules_keywords_position").set_value("last")
    at.button(key="FormSubmitter:rules_keywords_form-Set keyword rule").click().run()
    assert not at.exception
    assert "Applying the draft moves **0** records." in [m.value for m in at.markdown]
    assert [i.value.replace("\\", "") for i in at.info] == [
        "2 records have the keyword “invoice”, but an earlier rule already decides them: 2 by a tag rule."]

    at.text_input(key="rules_tags_word").set_value("nothing-has-this")
    at.selectbox(key="rules_tags_value").set_value("praise")
    at.button(key="FormSubmitter:rules_tags_form-Set tag rule").click().run()
    assert [i.value.replace("\\", "") for i in at.info] == [
        "No record has the tag “nothing-has-this” yet, so its rule has nothing to decide.",
        "2 records have the keyword “invoice”, but an earlier rule already decides them: 2 by a tag rule."]
