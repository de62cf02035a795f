"""Manual overrides: one record or a filtered set, listed, undone, and kept through every re-sync and webhook update."""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import httpx
import pytest

from feedback_sources import overrides
from feedback_sources.models import Category, NormalizedRecord, Tier
from feedback_sources.overrides import OverrideError
from feedback_sources.rules import DEFAULT_RULES
from feedback_sources.store import Filters, Store
from feedback_sources.webhooks.app import create_receiver_app
from feedback_sources.webhooks.server import running_receiver
from feedback_sources.webhooks.signatures import zendesk_signature

CREATED = datetime(2026, 3, 1, 12, 0, tzinfo=timezone.utc)


def record(source_id: str, category: Category, reason: str, *, tier: Tier | None = Tier.business,
           tier_reason: str = "plan `Business` matches `business`", updated_minutes: int = 0,
           title: str = "A ticket", source: str = "zendesk") -> NormalizedRecord:
    return NormalizedRecord(
        source=source,
        source_id=source_id,
        title=title,
        content="text",
        customer_tier=tier,
        category=category,
        created_at=CREATED,
        metadata={
            "tags": [],
            "updated_at": (CREATED + timedelta(minutes=updated_minutes)).isoformat(),
            "category_reason": reason,
            "tier_reason": tier_reason,
        },
    )


def decided(store: Store, source_id: str, source: str = "zendesk") -> tuple[Any, ...]:
    return tuple(store.conn.execute(
        "SELECT category, category_reason, customer_tier, tier_reason FROM feedback WHERE source = ? AND source_id = ?",
        (source, source_id),
    ).fetchone())


@pytest.fixture
def store() -> Store:
    with Store() as fresh:
        fresh.upsert_records([
            record("1", Category.bug_report, "tag `bug`"),
            record("2", Category.question, "keyword `how do i`", tier=None, tier_reason="no plan information"),
            record("3", Category.other, "default for this source", source="intercom"),
        ])
        yield fresh


def test_overriding_one_record_sets_the_value_and_says_why(store: Store) -> None:
    before = store.data_version()
    batch = overrides.override_record(store, "zendesk", "1", "category", "feature_request")
    assert (batch.field, batch.value, batch.description, batch.records) == ("category", "feature_request", "zendesk 1", 1)
    assert decided(store, "1") == ("feature_request", "manual override", "business", "plan `Business` matches `business`")
    assert store.data_version() != before  # the app's caches see it at once
    [override] = overrides.list_overrides(store)
    assert (override.source, override.source_id, override.field, override.value, override.reason,
            override.rule_value, override.rule_reason, override.batch) == (
        "zendesk", "1", "category", "feature_request", "manual override", "bug_report", "tag `bug`", batch.id)
    assert overrides.record_overrides(store, "zendesk", "1") == {"category": override}


def test_a_tier_override_can_clear_the_tier_and_undo_one_field_keeps_the_other(store: Store) -> None:
    overrides.override_record(store, "zendesk", "1", "customer_tier", "unknown")
    overrides.override_record(store, "zendesk", "1", "category", "praise")
    assert decided(store, "1") == ("praise", "manual override", None, "manual override")
    assert overrides.record_overrides(store, "zendesk", "1")["customer_tier"].shown_value == "unknown"
    assert overrides.undo_record(store, "zendesk", "1", "customer_tier") == 1
    assert decided(store, "1") == ("praise", "manual override", "business", "plan `Business` matches `business`")
    assert overrides.undo_record(store, "zendesk", "1") == 1
    assert decided(store, "1") == ("bug_report", "tag `bug`", "business", "plan `Business` matches `business`")
    assert (overrides.list_overrides(store), overrides.list_batches(store)) == ([], [])


def test_overriding_again_keeps_what_the_rules_said_underneath(store: Store) -> None:
    overrides.override_record(store, "zendesk", "1", "category", "praise")
    overrides.override_record(store, "zendesk", "1", "category", "complaint")
    [override] = overrides.list_overrides(store)
    assert (override.value, override.rule_value, override.rule_reason) == ("complaint", "bug_report", "tag `bug`")
    assert [b.records for b in overrides.list_batches(store)] == [1]  # the first batch no longer holds anything
    overrides.undo_record(store, "zendesk", "1")
    assert decided(store, "1")[:2] == ("bug_report", "tag `bug`")


def test_bulk_override_of_a_filtered_set_and_undo_of_the_batch(store: Store) -> None:
    rows_before = store.conn.execute("SELECT * FROM feedback ORDER BY id").fetchall()
    batch = overrides.override_filtered(store, Filters(sources=("zendesk",)), "category", "complaint", "source: zendesk")
    assert (batch.records, batch.description) == (2, "source: zendesk")
    assert [decided(store, i)[:2] for i in ("1", "2")] == [("complaint", "manual override")] * 2
    assert decided(store, "3", "intercom")[:2] == ("other", "default for this source")
    assert [(b.id, b.records) for b in overrides.list_batches(store)] == [(batch.id, 2)]
    assert overrides.undo_batch(store, batch.id) == 2
    assert store.conn.execute("SELECT * FROM feedback ORDER BY id").fetchall() == rows_before
    assert overrides.override_filtered(store, Filters(sources=("nowhere",)), "category", "complaint").records == 0
    assert overrides.list_batches(store) == []


def test_bad_values_and_missing_records_are_refused(store: Store) -> None:
    with pytest.raises(OverrideError, match="unknown category 'urgent'"):
        overrides.override_record(store, "zendesk", "1", "category", "urgent")
    with pytest.raises(OverrideError, match="unknown tier 'gold'"):
        overrides.override_record(store, "zendesk", "1", "customer_tier", "gold")
    with pytest.raises(OverrideError, match="unknown field 'title'"):
        overrides.override_record(store, "zendesk", "1", "title", "x")
    with pytest.raises(KeyError):
        overrides.override_record(store, "zendesk", "404", "category", "praise")
    assert overrides.count_overrides(store) == 0


def test_overrides_survive_a_re_sync_that_changes_the_record(store: Store) -> None:
    overrides.override_record(store, "zendesk", "1", "category", "feature_request")
    overrides.override_record(store, "zendesk", "1", "customer_tier", "enterprise")
    # The vendor's newer copy says something else; the rules decide anew, the PM's call stays on top.
    result = store.upsert_records([record("1", Category.complaint, "keyword `refund`", tier=Tier.free,
                                          tier_reason="plan `Free` matches `free`", updated_minutes=5,
                                          title="Refund please")])
    assert result.updated == 1
    assert decided(store, "1") == ("feature_request", "manual override", "enterprise", "manual override")
    assert store.get_record("zendesk", "1")["title"] == "Refund please"
    assert {o.field: (o.rule_value, o.rule_reason) for o in overrides.list_overrides(store)} == {
        "category": ("complaint", "keyword `refund`"),
        "customer_tier": ("free", "plan `Free` matches `free`"),
    }
    # An unchanged copy (same update time) is rewritten too: still overridden.
    store.upsert_records([record("1", Category.complaint, "keyword `refund`", updated_minutes=5)])
    assert decided(store, "1")[:2] == ("feature_request", "manual override")
    # Undo gives back what the rules said of the newest copy.
    overrides.undo_record(store, "zendesk", "1")
    assert decided(store, "1") == ("complaint", "keyword `refund`", "business", "plan `Business` matches `business`")


def test_an_override_outlives_the_record_being_deleted_and_synced_again(store: Store) -> None:
    overrides.override_record(store, "zendesk", "2", "category", "praise")
    with store.write() as conn:
        conn.execute("DELETE FROM feedback WHERE source = 'zendesk' AND source_id = '2'")
    store.upsert_records([record("2", Category.question, "keyword `how do i`")])
    assert decided(store, "2")[:2] == ("praise", "manual override")


ZENDESK_SECRET = "zd-override-test-secret"


def zendesk_delivery(updated_at: str, tags: list[str]) -> tuple[bytes, dict[str, str]]:
    body = json.dumps({
        "type": "zen:event-type:ticket.created",
        "account_id": 1,
        "id": f"evt-{updated_at}",
        "time": updated_at,
        "subject": "zen:ticket:77",
        "detail": {"id": "77", "subject": "Export fails", "description": "The export crashes.", "status": "open",
                   "type": "problem", "tags": tags, "created_at": "2026-05-02T09:15:00Z", "updated_at": updated_at},
    }).encode()
    timestamp = datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    return body, {"Content-Type": "application/json", "X-Zendesk-Webhook-Signature-Timestamp": timestamp,
                  "X-Zendesk-Webhook-Signature": zendesk_signature(ZENDESK_SECRET, timestamp, body)}


def test_overrides_survive_webhook_updates(tmp_path: Path) -> None:
    db = tmp_path / "hooks.db"
    app = create_receiver_app(db, {"zendesk": {"webhook_secret": ZENDESK_SECRET, "subdomain": "acme"}},
                              rules=DEFAULT_RULES)
    with running_receiver(app) as base_url, httpx.Client(base_url=base_url, timeout=10) as client:
        body, headers = zendesk_delivery("2026-05-02T09:20:00Z", ["bug"])
        assert client.post("/webhooks/zendesk", content=body, headers=headers).json()["verdict"] == "stored"
        with Store(db) as store:
            assert decided(store, "77")[:2] == ("bug_report", "tag `bug`")
            overrides.override_record(store, "zendesk", "77", "category", "feature_request")
        body, headers = zendesk_delivery("2026-05-03T10:00:00Z", ["question"])
        assert client.post("/webhooks/zendesk", content=body, headers=headers).json()["verdict"] == "stored"
    with Store(db) as store:
        assert decided(store, "77")[:2] == ("feature_request", "manual override")
        [override] = overrides.list_overrides(store)
        assert (override.rule_value, override.rule_reason) == ("question", "tag `question`")
