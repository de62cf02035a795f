"""Writing records: the one upsert every writer uses (newest version wins), removals and tombstones, the full-text
index and tags, with manual overrides put back on top in the same transaction.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ..models import NormalizedRecord, Removal
from .. import sentiment
from .overrides_sql import reapply_overrides
from .schema import FEEDBACK_COLUMNS, iso_utc, now_utc


@dataclass
class UpsertResult:
    new: int = 0
    updated: int = 0
    unchanged: int = 0
    skipped_stale: int = 0
    removed: int = 0  # stored records deleted because the vendor removed them

    def add(self, other: UpsertResult) -> None:
        self.new += other.new
        self.updated += other.updated
        self.unchanged += other.unchanged
        self.skipped_stale += other.skipped_stale
        self.removed += other.removed


def record_values(record: NormalizedRecord, synced_at: str) -> tuple[tuple[Any, ...], list[str]]:
    """The record as a `feedback` row in FEEDBACK_COLUMNS order, and its tags."""
    metadata = record.metadata
    tags = [str(t) for t in metadata.get("tags") or [] if t is not None]
    tier = record.customer_tier
    created_at = iso_utc(record.created_at)
    raw_updated = metadata.get("updated_at")
    # Most records carry no separate update time, or one equal to creation: no second parse and format then.
    updated_at = created_at if raw_updated is None else iso_utc(record.updated_at)
    values = (
        record.source,
        record.source_id,
        record.title,
        record.content,
        record.customer_id,
        record.customer_email,
        record.customer_name,
        tier.value if tier is not None else None,
        record.category.value,
        created_at,
        updated_at,
        synced_at,
        metadata.get("url"),
        _TAGS_JSON.encode(tags),
        _METADATA_JSON.encode(metadata),
    )
    return values, tags


# Built once: json.dumps with options builds a new encoder per call.
_TAGS_JSON = json.JSONEncoder(ensure_ascii=False)
_METADATA_JSON = json.JSONEncoder(ensure_ascii=False, default=str, separators=(",", ":"))


def record_row(record: NormalizedRecord, synced_at: str) -> dict[str, Any]:
    return dict(zip(FEEDBACK_COLUMNS, record_values(record, synced_at)[0]))


# Positions in a record_values tuple.
_SOURCE, _SOURCE_ID, _TITLE, _CONTENT, _CUSTOMER_NAME, _UPDATED_AT, _TAGS = 0, 1, 2, 3, 6, 10, 13
# The columns the full-text index holds, in its column order.
_FTS_POSITIONS = (_TITLE, _CONTENT, _CUSTOMER_NAME, _TAGS)
_FTS_INSERT = "INSERT INTO feedback_fts (rowid, title, content, customer_name, tags) VALUES (?, ?, ?, ?, ?)"
_FTS_DELETE = (
    "INSERT INTO feedback_fts (feedback_fts, rowid, title, content, customer_name, tags) "
    "VALUES ('delete', ?, ?, ?, ?, ?)"
)
# Keys looked up per statement; far below SQLite's limit on bound parameters.
_LOOKUP_CHUNK = 900


@dataclass
class _Stored:
    """What the store holds for a key before a write: enough to decide the write and to retract its index entries."""

    id: int
    updated_at: str
    fts: tuple[Any, ...]  # title, content, customer_name, tags


# Why the mapper chose the category and tier is read out of the metadata parameter (?15) by SQLite itself, so the
# bound values stay those of record_values.
_REASON_COLUMNS = ("category_reason", "tier_reason")
# Sentiment is bound after the row (?16, ?17) and written by the same statement, so a new record is inserted once,
# with its label, and the per-day counts' insert trigger fires once. A version whose words did not change binds NULL
# and keeps its score, its theme and its duplicate key; new words clear the theme, placed again by themes.assign_new().
_SENTIMENT = len(FEEDBACK_COLUMNS) + 1
_KEEP_UNLESS_RESCORED = ("theme_id", "theme_score", "dup_key")
_UPSERT_SQL = (
    f"INSERT INTO feedback ({', '.join((*FEEDBACK_COLUMNS, *_REASON_COLUMNS, 'sentiment', 'sentiment_label'))}) "
    f"VALUES ({', '.join(f'?{n}' for n in range(1, len(FEEDBACK_COLUMNS) + 1))}, "
    f"json_extract(?{len(FEEDBACK_COLUMNS)}, '$.category_reason'), json_extract(?{len(FEEDBACK_COLUMNS)}, '$.tier_reason'), "
    f"?{_SENTIMENT}, ?{_SENTIMENT + 1}) "
    "ON CONFLICT (source, source_id) DO UPDATE SET "
    + ", ".join(f"{c} = excluded.{c}" for c in (*FEEDBACK_COLUMNS, *_REASON_COLUMNS) if c not in ("source", "source_id"))
    + ", sentiment = ifnull(excluded.sentiment, feedback.sentiment)"
    + ", sentiment_label = CASE WHEN excluded.sentiment IS NULL THEN feedback.sentiment_label"
    " ELSE excluded.sentiment_label END"
    + "".join(f", {c} = CASE WHEN excluded.sentiment IS NULL THEN feedback.{c} END" for c in _KEEP_UNLESS_RESCORED)
    + " WHERE excluded.updated_at >= feedback.updated_at"
)


def _chunks_by_source(keys: list[tuple[str, str]]) -> Iterator[tuple[str, list[str]]]:
    by_source: dict[str, list[str]] = {}
    for source, source_id in keys:
        by_source.setdefault(source, []).append(source_id)
    for source, ids in by_source.items():
        for offset in range(0, len(ids), _LOOKUP_CHUNK):
            yield source, ids[offset : offset + _LOOKUP_CHUNK]


class RecordWrites:
    """The one write path of records: upserts, removals and their tombstones, full text and tags."""

    conn: sqlite3.Connection

    if TYPE_CHECKING:
        def write(self) -> Any: ...
        def _save_cursor(self, conn: sqlite3.Connection, source: str, scope: str, cursor: dict[str, Any]) -> None: ...

    def upsert_records(
        self,
        records: Sequence[NormalizedRecord],
        *,
        removals: Sequence[Removal] = (),
        cursor_update: tuple[str, str, dict[str, Any]] | None = None,
        synced_at: str | None = None,
    ) -> UpsertResult:
        """Insert or update records (newest `updated_at` wins), apply the vendor's removals and, in the same
        transaction, save a resume cursor.

        Set-based: one lookup of the stored versions, one executemany for the rows, the full-text index and the tags
        of the page, so a page costs a few statements however many records it holds.

        A removal beats every version updated at or before its time, whether that version is stored already, in the
        same page, or arrives later (a redelivery, a replayed page): the tombstone stays. A version updated after
        the removal (a ticket restored from the trash) is stored again and lifts the tombstone.
        """
        synced_at = synced_at or iso_utc(now_utc())
        # A page may carry the same record twice (vendors repeat rows across page edges): the newest copy wins.
        latest: dict[tuple[str, str], tuple[tuple[Any, ...], list[str]]] = {}
        for record in records:
            values, tags = record_values(record, synced_at)
            key = (values[_SOURCE], values[_SOURCE_ID])
            kept = latest.get(key)
            if kept is None or values[_UPDATED_AT] >= kept[0][_UPDATED_AT]:
                latest[key] = (values, tags)
        removed: dict[tuple[str, str], tuple[str, str]] = {}  # key -> (removed_at, reason), the latest removal wins
        for removal in removals:
            key = (removal.source, removal.source_id)
            at = iso_utc(removal.removed_at)
            if key not in removed or at >= removed[key][0]:
                removed[key] = (at, removal.reason.value)
        result = UpsertResult()
        with self.write() as conn:
            # A removal followed, in the same page, by a newer version of the record (restored): the version wins.
            removed = {k: v for k, v in removed.items() if k not in latest or latest[k][0][_UPDATED_AT] <= v[0]}
            tombstones = self._tombstones(conn, [*latest, *removed])
            for key, (at, reason) in removed.items():
                if key not in tombstones or at >= tombstones[key][0]:
                    tombstones[key] = (at, reason)
            for key in [key for key in latest if key in tombstones]:
                if latest[key][0][_UPDATED_AT] <= tombstones[key][0]:
                    del latest[key]  # a version from before the removal: never brings the text back
                    result.skipped_stale += 1
                elif key not in removed:
                    del tombstones[key]  # restored after its removal
                    conn.execute("DELETE FROM feedback_removals WHERE source = ? AND source_id = ?", key)
            if removed:
                result.removed = self._remove(conn, {key: tombstones[key] for key in removed})
            stored = self._stored_versions(conn, list(latest))
            written: list[tuple[Any, ...]] = []
            new_keys: list[tuple[str, str]] = []
            fts_deletes: list[tuple[Any, ...]] = []
            reindexed: list[tuple[int, tuple[Any, ...]]] = []  # existing rows whose text or tags changed
            retagged: list[tuple[int, list[str]]] = []
            for key, (values, tags) in latest.items():
                before = stored.get(key)
                if before is None:
                    result.new += 1
                    new_keys.append(key)
                    written.append((*values, *sentiment.score(values[_TITLE], values[_CONTENT])))
                    continue
                updated_at = values[_UPDATED_AT]
                if updated_at > before.updated_at:
                    result.updated += 1
                elif updated_at == before.updated_at:
                    result.unchanged += 1
                else:
                    result.skipped_stale += 1
                    continue
                fts = tuple(values[i] for i in _FTS_POSITIONS)
                if fts[:2] != before.fts[:2]:  # new words: scored again
                    written.append((*values, *sentiment.score(values[_TITLE], values[_CONTENT])))
                else:
                    written.append((*values, None, None))
                if fts != before.fts:
                    fts_deletes.append((before.id, *before.fts))
                    reindexed.append((before.id, fts))
                    if values[_TAGS] != before.fts[-1]:
                        retagged.append((before.id, tags))
            conn.executemany(_UPSERT_SQL, written)
            # Manual overrides outlive every write of the record: back on top before the transaction commits.
            reapply_overrides(conn, [(row[_SOURCE], row[_SOURCE_ID]) for row in written])
            new_ids = self._ids(conn, new_keys)
            fts_rows = [(new_ids[key], *(latest[key][0][i] for i in _FTS_POSITIONS)) for key in new_keys]
            fts_rows.extend((rowid, *fts) for rowid, fts in reindexed)
            conn.executemany(_FTS_DELETE, fts_deletes)
            conn.executemany(_FTS_INSERT, fts_rows)
            # Tags of new rows go straight in; those of existing rows are rewritten only when they changed.
            conn.executemany("DELETE FROM feedback_tags WHERE feedback_id = ?", [(rowid,) for rowid, _ in retagged])
            pairs = [(new_ids[key], tag) for key in new_keys for tag in dict.fromkeys(latest[key][1])]
            pairs.extend((rowid, tag) for rowid, tags in retagged for tag in dict.fromkeys(tags))
            conn.executemany("INSERT OR IGNORE INTO feedback_tags (feedback_id, tag) VALUES (?, ?)", pairs)
            if written or result.removed:
                conn.execute("UPDATE store_meta SET value = value + 1 WHERE key = 'writes'")
            if cursor_update is not None:
                source, scope, cursor = cursor_update
                self._save_cursor(conn, source, scope, cursor)
        return result

    @staticmethod
    def _tombstones(conn: sqlite3.Connection, keys: list[tuple[str, str]]) -> dict[tuple[str, str], tuple[str, str]]:
        """The removals recorded for these keys: key -> (removed_at, reason)."""
        found: dict[tuple[str, str], tuple[str, str]] = {}
        if not keys or conn.execute("SELECT 1 FROM feedback_removals LIMIT 1").fetchone() is None:
            return found  # the common case: nothing was ever removed, one probe instead of a lookup per page
        for source, chunk in _chunks_by_source(keys):
            sql = (
                "SELECT source_id, removed_at, reason FROM feedback_removals "
                f"WHERE source = ? AND source_id IN ({', '.join('?' * len(chunk))})"
            )
            for source_id, removed_at, reason in conn.execute(sql, [source, *chunk]):
                found[(source, source_id)] = (removed_at, reason)
        return found

    @staticmethod
    def _remove(conn: sqlite3.Connection, removals: dict[tuple[str, str], tuple[str, str]]) -> int:
        """Write the tombstones and delete what they cover; returns how many stored records went."""
        recorded_at = iso_utc(now_utc())
        conn.executemany(
            "INSERT INTO feedback_removals (source, source_id, reason, removed_at, recorded_at) VALUES (?, ?, ?, ?, ?) "
            "ON CONFLICT (source, source_id) DO UPDATE SET reason = excluded.reason, removed_at = excluded.removed_at, "
            "recorded_at = excluded.recorded_at WHERE excluded.removed_at >= feedback_removals.removed_at",
            [(source, source_id, reason, at, recorded_at) for (source, source_id), (at, reason) in removals.items()],
        )
        gone = 0
        for (source, source_id), (at, _) in removals.items():
            # A version stored after the removal time (restored, then changed) stays.
            deleted = conn.execute(
                "DELETE FROM feedback WHERE source = ? AND source_id = ? AND updated_at <= ?", (source, source_id, at)
            ).rowcount
            if deleted:
                gone += deleted
                conn.execute(
                    "DELETE FROM feedback_overrides WHERE source = ? AND source_id = ?", (source, source_id)
                )
        return gone

    def removal_counts(self) -> dict[str, dict[str, int]]:
        """Per source and reason, how many records the vendors removed (as learned by sync or webhook)."""
        counts: dict[str, dict[str, int]] = {}
        for source, reason, count in self.conn.execute(
            "SELECT source, reason, COUNT(*) FROM feedback_removals GROUP BY source, reason"
        ):
            counts.setdefault(source, {})[reason] = int(count)
        return counts

    def removal_of(self, source: str, source_id: str) -> dict[str, Any] | None:
        row = self.conn.execute(
            "SELECT reason, removed_at, recorded_at FROM feedback_removals WHERE source = ? AND source_id = ?",
            (source, source_id),
        ).fetchone()
        return None if row is None else {"reason": row[0], "removed_at": row[1], "recorded_at": row[2]}

    @staticmethod
    def _stored_versions(conn: sqlite3.Connection, keys: list[tuple[str, str]]) -> dict[tuple[str, str], _Stored]:
        found: dict[tuple[str, str], _Stored] = {}
        for source, chunk in _chunks_by_source(keys):
            sql = (
                "SELECT source_id, id, updated_at, title, content, customer_name, tags FROM feedback "
                f"WHERE source = ? AND source_id IN ({', '.join('?' * len(chunk))})"
            )
            for source_id, rowid, updated_at, *fts in conn.execute(sql, [source, *chunk]):
                found[(source, source_id)] = _Stored(rowid, updated_at, tuple(fts))
        return found

    @staticmethod
    def _ids(conn: sqlite3.Connection, keys: list[tuple[str, str]]) -> dict[tuple[str, str], int]:
        ids: dict[tuple[str, str], int] = {}
        for source, chunk in _chunks_by_source(keys):
            sql = f"SELECT source_id, id FROM feedback WHERE source = ? AND source_id IN ({', '.join('?' * len(chunk))})"
            for source_id, rowid in conn.execute(sql, [source, *chunk]):
                ids[(source, source_id)] = rowid
        return ids

