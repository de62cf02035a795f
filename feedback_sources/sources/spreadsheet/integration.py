"""The spreadsheet source: a CSV or XLSX file the PM provides, imported as pages of records like any vendor's.

No HTTP: this is a `FileIntegration`. The whole file (or, for an extended file, the rows after the ones already
imported) is validated before the first page is yielded, so a file with one bad row stores nothing and the message
names that row and column. Then it is read a second time, streaming, in pages of `PAGE_SIZE` rows, each page
committed with its cursor by the sync.

Versions: a row's `updated_at` is the stored one when its cells are unchanged (the store counts it unchanged), a
newer time when any cell changed (the store updates it), and the file's modification time for a new row. Without a
store to compare with (`sync --source spreadsheet` from the core CLI) every row carries the file's modification
time: importing the same file again changes nothing, a changed file rewrites its rows.
"""

from __future__ import annotations

import asyncio
import json
import sqlite3
from collections.abc import AsyncIterator, Iterator
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any, ClassVar

from pydantic import ValidationError

from ...integrations.base import ConfigError, ConnectionResult, FileIntegration, Page, register
from ...models import NormalizedRecord
from .cursor import DatasetPosition, fingerprint, position, rows_to_skip, with_position
from .errors import MAX_LISTED_PROBLEMS, Problem, SpreadsheetError
from .mapping import SOURCE, ColumnMap, RowProblem, check_dataset, map_row, slug
from .reader import ReadOptions, Table

PAGE_SIZE = 1000
_LOOKUP_CHUNK = 500


def column_map_from(config: dict[str, Any]) -> ColumnMap:
    raw = config.get("mapping")
    try:
        data = json.loads(raw) if isinstance(raw, str) else dict(raw or {})
        return ColumnMap.model_validate(data)
    except (ValueError, TypeError, ValidationError) as error:
        raise ConfigError(SOURCE, ["mapping"], f"spreadsheet: the column mapping is not valid ({error}); map at least "
                                               "the feedback text column") from None


@register
class SpreadsheetIntegration(FileIntegration):
    name: ClassVar[str] = SOURCE
    display_name: ClassVar[str] = "Spreadsheet"
    required_fields: ClassVar[tuple[str, ...]] = ("path", "mapping")
    optional_fields: ClassVar[tuple[str, ...]] = ("dataset", "encoding", "delimiter", "sheet")

    def __init__(self, config: dict[str, Any], *, versions_from: str | Path | None = None,
                 page_size: int = PAGE_SIZE, **kwargs: Any):
        super().__init__(config, **kwargs)
        self.page_size = page_size
        self.path = Path(str(self.config["path"])).expanduser()
        self.columns = column_map_from(self.config)
        try:
            self.dataset = check_dataset(str(self.config.get("dataset") or slug(self.path.name)))
        except ValueError as error:
            raise ConfigError(SOURCE, ["dataset"], f"spreadsheet: {error}") from None
        self.options = ReadOptions(
            encoding=str(self.config.get("encoding") or "auto"),
            delimiter=(str(self.config["delimiter"]).replace("\\t", "\t") if self.config.get("delimiter") else None),
            sheet=self.config.get("sheet") or None,
        )
        # The store the records go to, read (never written) to tell unchanged rows from changed ones.
        self.versions_from = Path(versions_from) if versions_from is not None else None
        # The last check's result, reused by the sync when neither the file nor the position moved since: the import
        # checks before it touches the store, and a million rows need not be checked twice.
        self._checked: tuple[tuple[Any, ...], tuple[Table, int, int, DatasetPosition]] | None = None

    # -- checks ---------------------------------------------------------------------------------------------------

    def open_table(self) -> Table:
        table = Table(self.path, self.options)
        missing = self.columns.missing(table.headers)
        if missing:
            raise SpreadsheetError(missing, hint="Map the columns again: the file's header has changed.")
        return table

    async def test_connection(self) -> ConnectionResult:
        try:
            table = await asyncio.to_thread(self.open_table)
        except SpreadsheetError as error:
            return ConnectionResult(False, str(error.kind), str(error), error.hint)
        mapped = ", ".join(f"{name} ← {column}" for name, column in self.columns.columns().items())
        return ConnectionResult(True, "ok", f"{self.path.name} is readable ({table.kind.upper()}, "
                                f"{len(table.headers)} columns); mapped: {mapped}", account=self.dataset,
                                details={"headers": table.headers, "dataset": self.dataset})

    def validate(self, cursor: dict[str, Any] | None = None) -> tuple[Table, int, int, DatasetPosition]:
        """Read every row that would be imported and map it; raise `SpreadsheetError` listing the first problems.

        Returns the table, the rows to skip (already imported), the number of rows to import and the position the
        import ends at."""
        stat = self.path.stat() if self.path.is_file() else None
        key = (json.dumps(cursor, sort_keys=True, default=str), stat and stat.st_size, stat and stat.st_mtime_ns)
        if self._checked is not None and self._checked[0] == key:
            return self._checked[1]
        result = self._validate(cursor)
        self._checked = (key, result)
        return result

    def _validate(self, cursor: dict[str, Any] | None) -> tuple[Table, int, int, DatasetPosition]:
        table = self.open_table()
        previous = position(cursor, self.dataset)
        current, prefix = fingerprint(self.path, prefix_size=previous.size if previous else None)
        skip = rows_to_skip(previous, current, prefix, table.kind)
        problems: list[Problem] = []
        total = 0
        count = 0
        data_rows = 0
        last = skip
        default_created = self._modified()
        for number, row in table.rows():
            data_rows += 1
            last = max(last, number)
            if number <= skip:
                continue
            count += 1
            try:
                map_row(row, number, self.columns, dataset=self.dataset, file_name=self.path.name,
                        default_created=default_created, rules=self.rules)
            except RowProblem as problem:
                total += 1
                if len(problems) < MAX_LISTED_PROBLEMS:
                    problems.append(problem.problem)
        if data_rows == 0:
            raise SpreadsheetError([Problem("the file has a header but no data rows", row=2)])
        if problems:
            raise SpreadsheetError(problems, total=total)
        after, _ = fingerprint(self.path)
        if after != current:
            raise SpreadsheetError([Problem("the file changed while it was being read; import it again")])
        end = DatasetPosition(size=current.size, sha256=current.sha256, rows=last, complete=True,
                              ends_with_newline=current.ends_with_newline)
        return table, skip, count, end

    def _modified(self) -> datetime:
        return datetime.fromtimestamp(self.path.stat().st_mtime, tz=timezone.utc)

    # -- pages ----------------------------------------------------------------------------------------------------

    async def iter_pages(
        self,
        start: datetime | None = None,
        end: datetime | None = None,
        cursor: dict[str, Any] | None = None,
    ) -> AsyncIterator[Page]:
        """Every row of the file not already imported, in pages. A file is imported whole: `start`/`end` bound API
        pulls, not a file the PM chose to import."""
        table, skip, count, finish = await asyncio.to_thread(self.validate, cursor)
        rows = self._records(table, skip)
        batch: list[NormalizedRecord] = []
        last = skip
        while True:
            chunk = await asyncio.to_thread(_take, rows, self.page_size)
            if not chunk:
                break
            batch = [record for _, record in chunk]
            last = chunk[-1][0]
            batch = await asyncio.to_thread(self._versioned, batch)
            moved = finish.model_copy(update={"rows": last, "complete": False})
            yield Page(batch, with_position(cursor, self.dataset, moved), vendor_total=count)
        yield Page([], with_position(cursor, self.dataset, finish), vendor_total=count)

    def _records(self, table: Table, skip: int) -> Iterator[tuple[int, NormalizedRecord]]:
        default_created = self._modified()
        for number, row in table.rows():
            if number <= skip:
                continue
            try:
                record = map_row(row, number, self.columns, dataset=self.dataset, file_name=self.path.name,
                                 default_created=default_created, rules=self.rules)
            except RowProblem as problem:  # the file changed between the check and the import
                raise SpreadsheetError([problem.problem]) from None
            yield number, record

    def _versioned(self, records: list[NormalizedRecord]) -> list[NormalizedRecord]:
        modified = self._modified()
        stored = self._stored_versions([record.source_id for record in records])
        out: list[NormalizedRecord] = []
        for record in records:
            known = stored.get(record.source_id)
            if known is None:
                version = modified.replace(microsecond=0)
            elif known[1] == record.metadata["row_hash"]:
                version = known[0]
            else:
                # The store keeps whole seconds: one second later is the smallest newer version it can tell apart.
                version = max(modified.replace(microsecond=0), known[0] + timedelta(seconds=1))
            metadata = {**record.metadata, "updated_at": version.isoformat()}
            out.append(record.model_copy(update={"metadata": metadata}))
        return out

    def _stored_versions(self, source_ids: list[str]) -> dict[str, tuple[datetime, str | None]]:
        if self.versions_from is None or not self.versions_from.exists():
            return {}
        found: dict[str, tuple[datetime, str | None]] = {}
        conn = sqlite3.connect(f"file:{self.versions_from}?mode=ro", uri=True, timeout=15)
        try:
            for index in range(0, len(source_ids), _LOOKUP_CHUNK):
                chunk = source_ids[index:index + _LOOKUP_CHUNK]
                sql = ("SELECT source_id, updated_at, json_extract(metadata, '$.row_hash') FROM feedback "
                       f"WHERE source = ? AND source_id IN ({', '.join('?' * len(chunk))})")
                for source_id, updated_at, hashed in conn.execute(sql, [SOURCE, *chunk]):
                    moment = datetime.fromisoformat(updated_at)
                    if moment.tzinfo is None:
                        moment = moment.replace(tzinfo=timezone.utc)
                    found[source_id] = (moment, hashed)
        finally:
            conn.close()
        return found


def _take(rows: Iterator[tuple[int, NormalizedRecord]], size: int) -> list[tuple[int, NormalizedRecord]]:
    taken: list[tuple[int, NormalizedRecord]] = []
    for item in rows:
        taken.append(item)
        if len(taken) >= size:
            break
    return taken
