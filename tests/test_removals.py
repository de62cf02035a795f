"""What a vendor removed leaves the store everywhere: the row, its full-text entries, its tags, its overrides, search,
charts and exports; a tombstone keeps a replayed older version from bringing the text back."""

from __future__ import annotations

import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

import httpx

from feedback_sources.emulator import Emulator, run_emulator_server
from feedback_sources.emulator.data import zendesk_time
from feedback_sources.emulator.webhooks import encode_payload, sign_zendesk
from feedback_sources.export import export_csv_bytes
from feedback_sources.sources.zendesk.integration import ZendeskIntegration
from feedback_sources.models import Removal, RemovalReason
from feedback_sources.overrides import override_record
from feedback_sources.store import Filters, Store
from feedback_sources.sync import sync
from feedback_sources.webhooks.app import create_receiver_app
from feedback_sources.webhooks.server import running_receiver
from tests.conftest import make_record
from tests.helpers import RecordingSleep
from tests.reliability_support import integration_configs, past_config

T0 = datetime(2026, 3, 1, 12, 0, tzinfo=timezone.utc)


def at(hours: float) -> datetime:
    return T0 + timedelta(hours=hours)


def version(source_id: str, hours: float, text: str = "export fails") -> object:
    return make_record(
        source_id,
        content=f"{text} ({source_id})",
        metadata={"updated_at": at(hours).isoformat(), "tags": ["bug", "export"], "url": None},
    )


def removal(source_id: str, hours: float, reason: RemovalReason = RemovalReason.deleted) -> Removal:
    return Removal(source="zendesk", source_id=source_id, reason=reason, removed_at=at(hours))


def footprint(store: Store) -> dict[str, object]:
    conn = store.conn
    return {
        "rows": [r[0] for r in conn.execute("SELECT source_id FROM feedback ORDER BY source_id")],
        "fts": conn.execute("SELECT COUNT(*) FROM feedback_fts WHERE feedback_fts MATCH 'export'").fetchone()[0],
        "tags": conn.execute("SELECT COUNT(*) FROM feedback_tags").fetchone()[0],
        "overrides": conn.execute("SELECT COUNT(*) FROM feedback_overrides").fetchone()[0],
        "tombstones": [
            tuple(r) for r in conn.execute(
                "SELECT source, source_id, reason, removed_at FROM feedback_removals ORDER BY source_id"
            )
        ],
    }


def test_a_removal_takes_the_row_its_index_entries_tags_and_overrides(fresh_store: Store) -> None:
    fresh_store.upsert_records([version("1", 0), version("2", 0)])
    override_record(fresh_store, "zendesk", "1", "category", "praise")
    result = fresh_store.upsert_records([], removals=[removal("1", 1, RemovalReason.spam)])
    assert (result.removed, result.skipped_stale) == (1, 0)
    assert footprint(fresh_store) == {
        "rows": ["2"],
        "fts": 1,
        "tags": 2,
        "overrides": 0,
        "tombstones": [("zendesk", "1", "spam", "2026-03-01T13:00:00Z")],
    }
    assert fresh_store.count(Filters(text="export")) == 1
    assert fresh_store.removal_counts() == {"zendesk": {"spam": 1}}
    assert fresh_store.removal_of("zendesk", "1") == {
        "reason": "spam", "removed_at": "2026-03-01T13:00:00Z",
        "recorded_at": fresh_store.removal_of("zendesk", "1")["recorded_at"],
    }


def test_a_replayed_older_version_never_brings_the_text_back(fresh_store: Store) -> None:
    fresh_store.upsert_records([version("1", 0)])
    fresh_store.upsert_records([], removals=[removal("1", 1)])
    replay = fresh_store.upsert_records([version("1", 0), version("1", 1)])  # the same time as the removal loses too
    assert (replay.new, replay.skipped_stale) == (0, 1)
    assert footprint(fresh_store)["rows"] == []


def test_a_version_after_the_removal_restores_the_record(fresh_store: Store) -> None:
    fresh_store.upsert_records([version("1", 0)])
    fresh_store.upsert_records([], removals=[removal("1", 1)])
    restored = fresh_store.upsert_records([version("1", 2, "restored")])
    assert restored.new == 1
    assert footprint(fresh_store)["tombstones"] == []
    assert fresh_store.get_record("zendesk", "1")["content"] == "restored (1)"


def test_a_removal_learned_before_the_record_keeps_it_out(fresh_store: Store) -> None:
    # A deletion event can outrun the sync page that still carries the ticket.
    assert fresh_store.upsert_records([], removals=[removal("9", 5)]).removed == 0
    assert fresh_store.upsert_records([version("9", 4)]).skipped_stale == 1
    assert footprint(fresh_store)["rows"] == []


def test_a_late_removal_does_not_take_a_newer_version(fresh_store: Store) -> None:
    fresh_store.upsert_records([version("1", 3, "edited later")])
    assert fresh_store.upsert_records([], removals=[removal("1", 1)]).removed == 0
    assert footprint(fresh_store)["rows"] == ["1"]


def test_in_one_page_a_newer_version_beats_its_removal_and_an_older_one_loses(fresh_store: Store) -> None:
    result = fresh_store.upsert_records(
        [version("1", 2, "restored"), version("2", 0)], removals=[removal("1", 1), removal("2", 1)]
    )
    assert (result.new, result.skipped_stale) == (1, 1)
    assert footprint(fresh_store)["rows"] == ["1"]
    assert [t[1] for t in footprint(fresh_store)["tombstones"]] == ["2"]


def test_removals_commit_with_the_page_cursor(fresh_store: Store) -> None:
    fresh_store.begin_state("zendesk", "incremental", {}, None)
    fresh_store.upsert_records([version("1", 0)])
    fresh_store.upsert_records([], removals=[removal("1", 1)], cursor_update=("zendesk", "incremental", {"k": 2}))
    assert fresh_store.get_state("zendesk", "incremental").cursor == {"k": 2}
    assert footprint(fresh_store)["rows"] == []


def test_a_sync_forgets_deleted_spam_and_scrubbed_tickets_everywhere(tmp_path: Path) -> None:
    emulator = Emulator(past_config(zendesk_tickets=60))
    with run_emulator_server(emulator) as root, Store(tmp_path / "feedback.db") as store:
        config = integration_configs(emulator, root)["zendesk"]

        def run() -> dict:
            integration = ZendeskIntegration(config, sleep=RecordingSleep())
            return sync(store, {"zendesk": integration}, incremental=True, start=emulator.config.start)["zendesk"]

        first = run()
        assert first.status == "complete"
        live = emulator.zendesk.all_ticket_ids()
        gone = {"deleted": live[1], "spam": live[2], "scrubbed": live[3]}
        for ticket_id in gone.values():
            record = store.get_record("zendesk", str(ticket_id))
            assert record is not None
            override_record(store, "zendesk", str(ticket_id), "customer_tier", "enterprise")
        words = store.get_record("zendesk", str(gone["deleted"]))["content"].split()[:6]
        emulator.zendesk.delete_ticket(gone["deleted"])
        emulator.zendesk.mark_spam(gone["spam"])
        emulator.zendesk.delete_permanently(gone["scrubbed"])

        again = sync(store, {"zendesk": ZendeskIntegration(config, sleep=RecordingSleep())}, incremental=True)["zendesk"]
        assert (again.status, again.removed) == ("complete", 3)
        assert all(store.get_record("zendesk", str(i)) is None for i in gone.values())
        kept = {int(r[0]) for r in store.conn.execute("SELECT source_id FROM feedback")}
        assert kept == set(live) - set(gone.values())
        assert store.conn.execute("SELECT COUNT(*) FROM feedback_overrides").fetchone()[0] == 0
        assert store.conn.execute(
            "SELECT COUNT(*) FROM feedback_tags WHERE feedback_id NOT IN (SELECT id FROM feedback)"
        ).fetchone()[0] == 0
        # The full-text index holds exactly the stored rows: nothing of the removed text is searchable.
        assert store.conn.execute("SELECT COUNT(*) FROM feedback_fts").fetchone()[0] == len(kept)
        assert store.count(Filters(text=" ".join(f'"{w}"' for w in words if w.isalpha()))) < first.new
        body, rows = export_csv_bytes(store, Filters())
        assert rows == len(kept) and all(f",{i}," not in body.decode("utf-8-sig") for i in gone.values())
        # Tickets deleted before the first sync were never stored, but are remembered as removed all the same.
        every = set(emulator.zendesk.all_ticket_ids(include_deleted=True))
        assert store.removal_counts() == {"zendesk": {"deleted": len(every) - len(kept)}}
        assert store.recent_runs(1)[0]["removed"] == 3


def test_the_receiver_forgets_a_ticket_marked_as_spam_and_a_replay_does_not_restore_it(tmp_path: Path) -> None:
    emulator = Emulator(past_config(zendesk_tickets=30))
    secret = emulator.config.zendesk_webhook_secret
    app = create_receiver_app(tmp_path / "feedback.db", {"zendesk": {"webhook_secret": secret, "subdomain": "demo"}})
    ticket_id = int(emulator.newest_record_ids("zendesk")[0])
    now = time.time()
    with running_receiver(app) as base_url:
        url = f"{base_url}/webhooks/zendesk"
        created = emulator.delivery("zendesk", "created", ticket_id, url=url, at=now - 60)
        assert httpx.post(url, content=created.body, headers=created.headers).json()["verdict"] == "stored"
        emulator.zendesk.mark_spam(ticket_id)
        answer = emulator.send_event("zendesk", "marked_as_spam", ticket_id, url=url, at=now)
        assert (answer.status_code, answer.json()["verdict"]) == (200, "removed")
        # The creation event again, under a new id (a vendor replay), signed now: older than the removal.
        replay = encode_payload({**created.payload, "id": "01REPLAYOFCREATED"})
        stamp = zendesk_time(int(now))
        headers = {**created.headers, "X-Zendesk-Webhook-Signature-Timestamp": stamp,
                   "X-Zendesk-Webhook-Signature": sign_zendesk(secret, stamp, replay)}
        assert httpx.post(url, content=replay, headers=headers).status_code == 200
    with Store(tmp_path / "feedback.db") as store:
        assert store.get_record("zendesk", str(ticket_id)) is None
        assert store.removal_counts() == {"zendesk": {"spam": 1}}
