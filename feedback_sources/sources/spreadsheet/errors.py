"""The typed failure of a spreadsheet import: every problem names its row and column so a PM can fix the file."""

from __future__ import annotations

from dataclasses import dataclass

from ...integrations.http import ErrorKind, SourceError

# Enough for a PM to see the pattern without a wall of text; the count says how many more there were.
MAX_LISTED_PROBLEMS = 20


@dataclass(frozen=True)
class Problem:
    """One thing wrong with the file. `row` is the row number a spreadsheet program shows (the header is row 1)."""

    message: str
    row: int | None = None
    column: str | None = None

    def __str__(self) -> str:
        where = []
        if self.row is not None:
            where.append(f"row {self.row}")
        if self.column is not None:
            where.append(f"column {self.column!r}")
        return f"{', '.join(where)}: {self.message}" if where else self.message


class SpreadsheetError(SourceError):
    """The file cannot be imported as it is; nothing was stored. Carries every problem found (the first ones)."""

    def __init__(self, problems: list[Problem], *, total: int | None = None, hint: str = ""):
        self.problems = problems[:MAX_LISTED_PROBLEMS]
        self.total = total if total is not None else len(problems)
        lines = [str(problem) for problem in self.problems]
        if self.total > len(self.problems):
            lines.append(f"… and {self.total - len(self.problems)} more problems")
        summary = "the file was not imported (nothing stored changed): " + "; ".join(lines)
        super().__init__(ErrorKind.config, summary, hint=hint or "Fix the file or the column mapping and import again.",
                         source="spreadsheet")
