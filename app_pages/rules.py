"""Rules: how every record gets its category and tier. Edit a draft, see how many records it would move, apply it
to the whole store in one step; every applied set is kept as a version, and can be exported and imported as a file.

Tags, keywords and plan names can be anything a vendor sent: they are shown in st.dataframe, data editors, st.text
or through highlight.literal_markdown, never as raw markdown.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pandas as pd
import streamlit as st

from app_pages._shared import current_mode, data_version, db_path, flash, forget_data_versions, show_flashes
from feedback_sources import overrides as overrides_store
from feedback_sources.highlight import literal_markdown
from feedback_sources.models import Category, Tier
from feedback_sources.rules import DEFAULT_RULES, Rules
from feedback_sources.sources import registry
from feedback_sources.rules_store import (
    Impact,
    RulesError,
    apply_rules,
    current_rules,
    history,
    preview_rules,
    reason_kind,
    rules_from_file,
    rules_from_tables,
    rules_to_file,
    rules_to_tables,
    same_rules,
)
from feedback_sources.store import Filters, Store
from feedback_sources.ui.labels import human_label, source_label
from feedback_sources.ui.text import md_escape, parse_timestamp, plain_reason, readable_datetime

DRAFT_KEY = "rules_draft"  # the rules file text of the draft being edited
GENERATION_KEY = "rules_editor_generation"  # bumped when the draft is replaced, so the editors start from it
NO_RULE = "(no rule)"
CATEGORIES = [c.value for c in Category]
TIERS = [t.value for t in Tier]
TABLE_COLUMNS = {
    "tags": ("tag", "category", CATEGORIES),
    "types": ("ticket type", "category", CATEGORIES),
    "keywords": ("keyword", "category", CATEGORIES),
    "plans": ("plan word", "tier", TIERS),
}


# -- cached reads ------------------------------------------------------------------------------------------------------


@st.cache_data(show_spinner=False, max_entries=16)
def _preview(path: str, version: Any, rules_file: str) -> Impact:
    # `version` only keys the cache: any write to the store invalidates the preview.
    with Store(path) as store:
        return preview_rules(store, rules_from_file(rules_file))


@st.cache_data(show_spinner=False, max_entries=16)
def _decided_by(path: str, version: Any) -> list[dict[str, Any]]:
    """Records per kind of decision, for category and for tier (the reason columns are indexed)."""
    counts: dict[tuple[str, str], int] = {}
    with Store(path) as store:
        for field, column in (("category", "category_reason"), ("tier", "tier_reason")):
            for reason, records in store.conn.execute(f"SELECT {column}, COUNT(*) FROM feedback GROUP BY {column}"):
                key = (field, reason_kind(reason))
                counts[key] = counts.get(key, 0) + int(records)
    return [{"decides": field, "decided by": kind, "records": n} for (field, kind), n in sorted(counts.items())]


def _ticket_type_sources() -> str:
    """The labels of the sources whose records carry a vendor ticket type (their specs' RuleTraits say so)."""
    labels = [spec.label for spec in registry().values() if spec.rules.vendor_type]
    return " and ".join(labels) if labels else "The vendor"


def _when(stamp: str | None) -> str:
    return readable_datetime(parse_timestamp(stamp))


def _saved(path: str) -> tuple[Rules, list[dict[str, Any]]]:
    with Store(path) as store:
        versions = history(store)
        return current_rules(store), [
            {"version": v.version, "saved": _when(v.created_at), "applied": _when(v.applied_at), "note": v.note}
            for v in versions
        ]


# -- the draft -----------------------------------------------------------------------------------------------------


def _draft(saved: Rules) -> Rules:
    text = st.session_state.get(DRAFT_KEY)
    return rules_from_file(text) if text else saved


def _set_draft(rules: Rules | None) -> None:
    st.session_state[DRAFT_KEY] = rules_to_file(rules) if rules is not None else None
    st.session_state[GENERATION_KEY] = st.session_state.get(GENERATION_KEY, 0) + 1


def _ordered(pairs: tuple[tuple[str, Any], ...], word: str, value: Any, first: bool) -> tuple[tuple[str, Any], ...]:
    kept = tuple(p for p in pairs if p[0].strip().lower() != word.lower())
    if value is None:
        return kept
    return ((word, value), *kept) if first else (*kept, (word, value))


def _quick_edit(kind: str, saved: Rules) -> None:
    """Form callback: one rule set, moved or removed in the draft."""
    state = st.session_state
    word = str(state.get(f"rules_{kind}_word") or "").strip()
    chosen = state.get(f"rules_{kind}_value")
    first = state.get(f"rules_{kind}_position", "first") == "first"
    if not word:
        flash("error", "Type the word the rule looks for first.")
        return
    draft = _draft(saved)
    if kind in ("tags", "types"):
        key = word.lower()
        mapping = dict(draft.tag_categories if kind == "tags" else draft.type_categories)
        mapping.pop(key, None)
        if chosen != NO_RULE:
            mapping[key] = Category(chosen)
        draft = replace(draft, **{"tag_categories" if kind == "tags" else "type_categories": mapping})
    elif kind == "keywords":
        value = None if chosen == NO_RULE else Category(chosen)
        draft = replace(draft, keyword_categories=_ordered(draft.keyword_categories, word, value, first))
    else:
        value = None if chosen == NO_RULE else Tier(chosen)
        draft = replace(draft, plan_tiers=_ordered(draft.plan_tiers, word, value, first))
    try:
        rules_from_file(rules_to_file(draft))  # the same checks as any saved version
    except RulesError as error:
        flash("error", f"That rule cannot be used: {literal_markdown(str(error))}")
        return
    _set_draft(draft)


def _discard() -> None:
    _set_draft(None)


def _apply(path: str, saved: Rules) -> None:
    draft = _draft(saved)
    note = str(st.session_state.get("rules_note") or "").strip()
    with Store(path) as store:
        result = apply_rules(store, draft, note)
    forget_data_versions()
    _set_draft(None)
    moved = result.impact.records_moved
    flash("success", f"Rules version {result.version.version} applied: {moved:,} records moved "
                     f"({result.records_written:,} rewritten) in {result.seconds:.1f} s.")
    if result.records_skipped:
        flash("warning", f"{result.records_skipped:,} records were rewritten by a sync while the rules were applied "
                         "and kept what that sync said: apply again to bring them in line.")


def _load_file() -> None:
    upload = st.session_state.get("rules_upload")
    if upload is None:
        return
    try:
        rules = rules_from_file(upload.getvalue())
    except RulesError as error:
        flash("error", f"That file cannot be used: {literal_markdown(str(error))}")
        return
    _set_draft(rules)
    flash("success", "The file is loaded into the draft: check the preview below, then apply it.")


def _restore(path: str) -> None:
    chosen = st.session_state.get("rules_restore_version")
    with Store(path) as store:
        for version in history(store, limit=1000):
            if version.version == chosen:
                _set_draft(version.rules)
                flash("success", f"Version {chosen} is in the draft: check the preview below, then apply it.")
                return


def _defaults() -> None:
    _set_draft(DEFAULT_RULES)


def _undo_batch(path: str) -> None:
    batch = st.session_state.get("rules_undo_batch")
    if batch is None:
        return
    with Store(path) as store:
        removed = overrides_store.undo_batch(store, int(batch))
    forget_data_versions()
    flash("success", f"Undone: {removed:,} overrides removed; those records follow the rules again.")


# -- drawing -----------------------------------------------------------------------------------------------------------


def _quick_form(kind: str, saved: Rules, label: str, help_text: str) -> None:
    word_label, value_label, values = TABLE_COLUMNS[kind]
    with st.form(f"rules_{kind}_form", border=True):
        columns = st.columns([2, 2, 1.4] if kind in ("keywords", "plans") else [2, 2])
        columns[0].text_input(word_label.capitalize(), key=f"rules_{kind}_word", help=help_text)
        columns[1].selectbox(value_label.capitalize(), [*values, NO_RULE], key=f"rules_{kind}_value",
                             format_func=lambda v: v if v == NO_RULE else human_label(v))
        if kind in ("keywords", "plans"):
            columns[2].radio("Precedence", ["first", "last"], key=f"rules_{kind}_position", horizontal=True,
                             help="Earlier rules win when several match one record.")
        st.form_submit_button(label, on_click=_quick_edit, args=(kind, saved), icon=":material/edit:")


def _editor(kind: str, tables: dict[str, list[dict[str, str]]]) -> list[dict[str, Any]]:
    word, value, values = TABLE_COLUMNS[kind]
    frame = pd.DataFrame(tables[kind], columns=[word, value])
    edited = st.data_editor(
        frame,
        key=f"rules_editor_{kind}_{st.session_state.get(GENERATION_KEY, 0)}",
        num_rows="dynamic",
        hide_index=True,
        width="stretch",
        height=min(400, 36 * (len(frame) + 2)),
        column_config={
            word: st.column_config.TextColumn(word.capitalize(), required=True),
            value: st.column_config.SelectboxColumn(value.capitalize(), options=values, required=True),
        },
    )
    return list(edited.to_dict("records"))


def _impact_tables(impact: Impact) -> None:
    left, right = st.columns(2)
    with left:
        st.markdown("**Records per category**")
        st.dataframe(pd.DataFrame(
            [{"category": human_label(v), "now": b, "after": a, "change": a - b} for v, b, a in impact.category_counts],
        ), hide_index=True, width="stretch", key="rules_preview_categories")
    with right:
        st.markdown("**Records per tier**")
        st.dataframe(pd.DataFrame(
            [{"tier": human_label(v), "now": b, "after": a, "change": a - b} for v, b, a in impact.tier_counts],
        ), hide_index=True, width="stretch", key="rules_preview_tiers")
    moves = [{"moves": "category", "from": human_label(m.before), "to": human_label(m.after), "records": m.records}
             for m in impact.category_moves]
    moves += [{"moves": "tier", "from": human_label(m.before), "to": human_label(m.after), "records": m.records}
              for m in impact.tier_moves]
    if moves:
        st.markdown("**Moves**")
        st.dataframe(pd.DataFrame(moves), hide_index=True, width="stretch", key="rules_preview_moves")
    notes = []
    if impact.reasons_only:
        notes.append(f"{impact.reasons_only:,} more records keep their category and tier but get a new reason")
    if impact.overridden:
        notes.append(f"{impact.overridden:,} records stay as they are because of a manual override")
    notes.append(f"preview computed in {impact.seconds:.1f} s")
    st.caption("; ".join(notes) + ".")


# What a rule's kind is called in a sentence; reason_kind's names, in the order the rules are tried.
DECIDED_BY = {
    "manual override": "a manual override",
    "tag": "a tag rule",
    "vendor type": "a ticket type rule",
    "keyword": "an earlier keyword rule",
    "NPS score": "the survey's NPS score",
    "default": "the source's default",
    "unknown": "an older rule",
}


def _new_category_rules(saved: Rules, draft: Rules) -> list[tuple[str, str, str]]:
    """(kind, word, category) of each tag or keyword rule the draft adds or changes, at most three."""
    added: list[tuple[str, str, str]] = []
    for tag, category in draft.tag_categories.items():
        if saved.tag_categories.get(tag) != category:
            added.append(("tag", tag, category.value))
    kept = set(saved.keyword_categories)
    added += [("keyword", word, category.value) for word, category in draft.keyword_categories
              if (word, category) not in kept]
    return added[:3]


@st.cache_data(show_spinner=False, max_entries=32)
def _matching_decisions(path: str, version: Any, kind: str, word: str) -> dict[tuple[str, str], int]:
    """Records a tag or keyword rule would look at, counted by what decides their category now and that category."""
    # The full-text phrase stands in for the rule's whole-word match: close enough to say who decides these records.
    filters = Filters(tag=word.lower()) if kind == "tag" else Filters(text='"' + word.replace('"', " ") + '"')
    counts: dict[tuple[str, str], int] = {}
    with Store(path) as store:
        for row in store.breakdown(filters, "category_reason", "category"):
            key = (reason_kind(row["category_reason"]), str(row["category"]))
            counts[key] = counts.get(key, 0) + int(row["records"])
    return counts


def _why_no_moves(path: str, version: Any, saved: Rules, draft: Rules) -> list[str]:
    """Sentences that say why a changed rule moves nothing: which earlier rule already decides its records."""
    sentences = []
    for kind, word, category in _new_category_rules(saved, draft):
        counts = _matching_decisions(path, version, kind, word)
        subject = f"the {kind} “{word}”"
        total = sum(counts.values())
        if not total:
            sentences.append(f"No record has {subject} yet, so its rule has nothing to decide.")
            continue
        already = sum(n for (_, current), n in counts.items() if current == category)
        by_kind: dict[str, int] = {}
        for (decided_by, current), n in counts.items():
            if current != category:
                by_kind[decided_by] = by_kind.get(decided_by, 0) + n
        parts = [f"{n:,} by {DECIDED_BY.get(k, DECIDED_BY['unknown'])}" for k, n in
                 sorted(by_kind.items(), key=lambda item: -item[1])]
        sentence = f"{total:,} records have {subject}"
        if parts:
            sentence += f", but an earlier rule already decides them: {', '.join(parts)}"
        if already:
            verb = "is" if already == 1 else "are"
            sentence += f"{'; ' if parts else ', and '}{already:,} {verb} already {human_label(category)}"
        sentences.append(sentence + ".")
    if not sentences:
        sentences.append("The changed rules only decide records that an earlier rule already decides the same way.")
    return sentences


def _preview_and_apply(path: str, version: Any, saved: Rules, draft: Rules) -> None:
    st.subheader("Preview")
    if same_rules(draft, saved):
        st.caption("The draft is the set of rules in use. Change a rule above to see how many records it would move.")
        return
    impact = _preview(path, version, rules_to_file(draft))
    moved = impact.records_moved
    st.markdown(f"Applying the draft moves **{moved:,}** records" + (":" if moved else "."))
    if not moved:
        for sentence in _why_no_moves(path, version, saved, draft):
            st.info(md_escape(plain_reason(sentence)), icon=":material/info:")
    _impact_tables(impact)
    columns = st.columns([3, 1.2, 1], vertical_alignment="bottom")
    columns[0].text_input("Note for this version (optional)", key="rules_note", max_chars=200)
    columns[1].button(f"Apply to the store ({moved:,} moves)", type="primary", key="rules_apply",
                      on_click=_apply, args=(path, saved), icon=":material/done_all:", width="stretch")
    columns[2].button("Discard draft", key="rules_discard", on_click=_discard, icon=":material/undo:",
                      width="stretch")


def _overrides_tab(path: str) -> None:
    with Store(path) as store:
        batches = overrides_store.list_batches(store)
        listed = overrides_store.list_overrides(store, limit=500)
        total = overrides_store.count_overrides(store)
    if not total:
        st.caption("No manual overrides. Override a record's category or tier from its detail view on Explore, or a "
                   "whole filtered set from the bottom of Explore.")
        return
    st.markdown(f"**{total:,}** overrides keep their records off what the rules say; re-syncs, webhooks and rule "
                "changes leave them in place.")
    st.dataframe(pd.DataFrame([
        {"batch": b.id, "made": _when(b.created_at), "field": b.field, "set to": human_label(b.value or "unknown"),
         "what": b.description, "records": b.records} for b in batches
    ]), hide_index=True, width="stretch", key="rules_batches")
    columns = st.columns([2, 1], vertical_alignment="bottom")
    columns[0].selectbox("Undo a batch", [b.id for b in batches], key="rules_undo_batch",
                         format_func=lambda i: f"batch {i}")
    columns[1].button("Undo batch", key="rules_undo", on_click=_undo_batch, args=(path,), icon=":material/undo:",
                      width="stretch")
    st.dataframe(pd.DataFrame([
        {"source": source_label(o.source), "id": o.source_id, "field": o.field, "set to": human_label(o.shown_value),
         "rules say": human_label(o.rule_value or "unknown"), "because": plain_reason(o.rule_reason),
         "batch": o.batch, "made": _when(o.created_at)}
        for o in listed
    ]), hide_index=True, width="stretch", key="rules_overrides")


def _history_tab(path: str, saved: Rules, versions: list[dict[str, Any]]) -> None:
    if versions:
        st.dataframe(pd.DataFrame(versions), hide_index=True, width="stretch", key="rules_versions")
        columns = st.columns([2, 1], vertical_alignment="bottom")
        columns[0].selectbox("Saved version", [v["version"] for v in versions], key="rules_restore_version",
                             format_func=lambda v: f"version {v}")
        columns[1].button("Load into draft", key="rules_restore", on_click=_restore, args=(path,),
                          icon=":material/history:", width="stretch")
    else:
        st.caption("No version saved yet: the package's default rules are in use.")
    st.button("Load the package defaults into the draft", key="rules_defaults", on_click=_defaults,
              icon=":material/restart_alt:")
    st.download_button("Export the rules in use (JSON)", data=rules_to_file(saved), file_name="feedback-rules.json",
                       mime="application/json", key="rules_export", icon=":material/download:", on_click="ignore")
    st.file_uploader("Import a rules file into the draft", type=["json"], key="rules_upload", on_change=_load_file)


def main() -> None:
    mode = current_mode()
    path = db_path(mode)
    version = data_version(path)
    st.title("Rules")
    st.caption("Each record's category is decided by the first that applies: a manual override, then a tag, then "
               "the vendor's ticket type, then a keyword in the title or text (earlier keywords first), else the "
               "source's default (an NPS score for surveys). Its tier comes from the first plan word found in the "
               "customer's plan or organization.")
    show_flashes()
    saved, versions = _saved(str(path))
    draft = _draft(saved)
    tables = rules_to_tables(draft)

    if version[0]:
        with st.expander("What decides the records now"):
            st.dataframe(pd.DataFrame(_decided_by(str(path), version)), hide_index=True, width="stretch",
                         key="rules_decided_by")

    # The preview sits above the editors, where the PM sees it move as they edit; it is filled in once the editors
    # below have said what the draft is.
    preview = st.container()
    tabs = st.tabs(["Tags", "Keywords", "Ticket types", "Plans → tier", "Overrides", "Versions and file"])
    edited: dict[str, list[dict[str, Any]]] = {}
    with tabs[0]:
        _quick_form("tags", saved, "Set tag rule", "A tag exactly as the vendor sends it, e.g. bug or churn_risk.")
        edited["tags"] = _editor("tags", tables)
    with tabs[1]:
        _quick_form("keywords", saved, "Set keyword rule", "A word or phrase looked for in the title and text.")
        edited["keywords"] = _editor("keywords", tables)
    with tabs[2]:
        _quick_form("types", saved, "Set ticket type rule", f"{_ticket_type_sources()}'s ticket type: problem, incident, question, task.")
        edited["types"] = _editor("types", tables)
    with tabs[3]:
        _quick_form("plans", saved, "Set plan rule", "A word in a plan or organization name, e.g. enterprise.")
        edited["plans"] = _editor("plans", tables)
    with tabs[4]:
        _overrides_tab(str(path))
    with tabs[5]:
        _history_tab(str(path), saved, versions)

    with preview:
        if edited != tables:
            try:
                draft = rules_from_tables(edited)
            except RulesError as error:
                st.error("The edited rules cannot be used yet: " + literal_markdown(str(error)), icon=":material/rule:")
                return
            st.session_state[DRAFT_KEY] = rules_to_file(draft)
        _preview_and_apply(str(path), version, saved, draft)


main()
