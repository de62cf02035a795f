"""Manual account merges and the reads behind merge suggestions and organization names (accounts.py holds the
account rule itself, its SQL expression included, and decides what to merge).
"""

from __future__ import annotations

import sqlite3
from typing import TYPE_CHECKING, Any


class AccountTables:
    """`account_merges`, and reads of the account key and the vendors' organization fields of the records."""

    conn: sqlite3.Connection

    if TYPE_CHECKING:
        def write(self) -> Any: ...

    def has_account_merges_table(self) -> bool:
        row = self.conn.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'account_merges'").fetchone()
        return row is not None

    def has_account_merges(self) -> bool:
        return self.has_account_merges_table() and self.conn.execute(
            "SELECT 1 FROM account_merges LIMIT 1").fetchone() is not None

    def merge_account(self, alias: str, into: str, created_at: str) -> str:
        """Count `alias` as `into`, or as where `into` itself was merged; returns that target. Earlier merges into
        `alias` follow it there, so a lookup stays one step. When the target is `alias` itself, nothing is written
        (the caller refuses the merge)."""
        with self.write() as conn:
            row = conn.execute("SELECT account FROM account_merges WHERE alias = ?", (into,)).fetchone()
            target: str = row[0] if row else into  # merged-away targets resolve to where they went
            if target == alias:
                return target
            conn.execute(
                "INSERT INTO account_merges (alias, account, created_at) VALUES (?, ?, ?) "
                "ON CONFLICT (alias) DO UPDATE SET account = excluded.account, created_at = excluded.created_at",
                (alias, target, created_at),
            )
            # Whatever was merged into the alias now lands on the target directly: lookups stay one step.
            conn.execute("UPDATE account_merges SET account = ? WHERE account = ?", (target, alias))
        return target

    def unmerge_account(self, alias: str) -> bool:
        with self.write() as conn:
            return bool(conn.execute("DELETE FROM account_merges WHERE alias = ?", (alias,)).rowcount > 0)

    def account_merge_rows(self) -> list[tuple[str, str, str]]:
        """(alias, account, created_at) of every merge, by account."""
        return self.conn.execute("SELECT alias, account, created_at FROM account_merges ORDER BY account, alias").fetchall()

    def organization_keys_in_use(self) -> set[str]:
        """The organization account keys of the records, read off the accounts index rather than recomputed row by
        row."""
        return {key for (key,) in self.conn.execute(
            "SELECT DISTINCT account_key FROM feedback INDEXED BY idx_feedback_accounts "
            "WHERE account_key >= 'org:' AND account_key < 'org;'")}

    def organization_domains(self, source: str, field: str) -> list[tuple[Any, str, int]]:
        """(organization id, company domain, records) of a source's records written from a company domain, by the
        organization id in their metadata field `field`."""
        return self.conn.execute(
            "SELECT org, account_key, COUNT(*) FROM ("
            "SELECT CAST(json_extract(metadata, ?) AS TEXT) AS org, account_key "
            "FROM feedback WHERE source = ? AND account_key = customer_domain AND json_valid(metadata)) "
            "WHERE org IS NOT NULL AND org <> '' GROUP BY org, account_key",
            (f"$.{field}", source),
        ).fetchall()

    def organization_name(self, source: str, field: str, name_field: str, ident: str) -> Any:
        """The metadata field `name_field` of one record of the source whose field `field` is `ident` (None when no
        record has one)."""
        row = self.conn.execute(
            f"SELECT json_extract(metadata, '$.{name_field}') FROM feedback "
            f"WHERE source = ? AND CAST(json_extract(metadata, '$.{field}') AS TEXT) = ? "
            f"AND json_extract(metadata, '$.{name_field}') IS NOT NULL LIMIT 1",
            (source, ident),
        ).fetchone()
        return row[0] if row else None
