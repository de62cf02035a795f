"""Pure mapping of one spreadsheet row onto a `NormalizedRecord`, and the guesses the panel starts from.

No I/O here: the reader hands rows in, the integration decides versions. A record's id is
`<dataset>:<value of the id column>`, or `<dataset>:h<content hash>` for a sheet without one, so the stored key is
`spreadsheet:<dataset>:<id>` and importing the same rows again finds the same records.
"""

from __future__ import annotations

import hashlib
import re
from datetime import date, datetime, time, timedelta, timezone
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator

from ...models import Category, NormalizedRecord
from ...rules import DEFAULT_RULES, STATED_REASON_PREFIX, Rules
from .errors import Problem
from .reader import Cell, cell_text

SOURCE = "spreadsheet"
FIELDS: tuple[str, ...] = ("title", "content", "customer", "email", "tier", "category", "date", "id")
FIELD_LABELS: dict[str, str] = {
    "title": "Title", "content": "Feedback text", "customer": "Customer name", "email": "Customer email",
    "tier": "Plan / tier", "category": "Category", "date": "Date", "id": "Row id (for updates)",
}
# Header words that suggest a field, most telling first; matched on lower-cased words of the header.
GUESSES: dict[str, tuple[str, ...]] = {
    "id": ("review id", "response id", "ticket id", "call id", "token", "#", "id"),
    "title": ("review title", "title", "subject", "summary", "headline", "what do you like best"),
    "content": ("review", "content", "body", "feedback", "comment", "comments", "notes", "note", "text",
                "message", "description", "answer", "what do you dislike"),
    "customer": ("reviewer name", "customer name", "reviewer", "nickname", "customer", "account", "company",
                 "name", "author", "user"),
    "email": ("email", "e-mail", "mail"),
    "tier": ("plan", "tier", "segment", "subscription", "company size", "market segment"),
    "category": ("category", "type", "topic", "label"),
    "date": ("review date", "submitted at", "submit date", "created at", "created", "date", "submitted",
             "timestamp", "time", "updated"),
}
DATASET_PATTERN = re.compile(r"^[a-z0-9][a-z0-9_-]{0,62}$")
_EXCEL_EPOCH = datetime(1899, 12, 30, tzinfo=timezone.utc)


class ColumnMap(BaseModel):
    """Which header feeds which record field; `content` is required, everything else optional."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    content: str = Field(min_length=1)
    title: str | None = None
    customer: str | None = None
    email: str | None = None
    tier: str | None = None
    category: str | None = None
    date: str | None = None
    id: str | None = None
    day_first: bool = False  # 03/04/2026 is 3 April (EU) instead of March 4 (US)

    @field_validator("title", "customer", "email", "tier", "category", "date", "id", mode="before")
    @classmethod
    def _blank_is_none(cls, value: Any) -> Any:
        return None if isinstance(value, str) and not value.strip() else value

    def columns(self) -> dict[str, str]:
        """field -> header for every mapped field."""
        return {name: getattr(self, name) for name in FIELDS if getattr(self, name)}

    def missing(self, headers: list[str]) -> list[Problem]:
        return [Problem(f"the {FIELD_LABELS[name].lower()} column {column!r} is not in the file "
                        f"(its columns: {', '.join(headers)})", row=1, column=column)
                for name, column in self.columns().items() if column not in headers]


def slug(text: str) -> str:
    """A dataset name from a file name: 'G2 reviews (Q3).csv' -> 'g2-reviews-q3'."""
    stem = re.sub(r"\.(csv|tsv|txt|xlsx|xlsm)$", "", text.strip(), flags=re.I)
    cleaned = re.sub(r"[^a-z0-9]+", "-", stem.lower()).strip("-")[:63]
    return cleaned or "import"


def check_dataset(name: str) -> str:
    if not DATASET_PATTERN.match(name):
        raise ValueError(f"dataset name {name!r} must be lower-case letters, digits, '-' or '_' (up to 63)")
    return name


def guess_mapping(headers: list[str]) -> dict[str, str | None]:
    """A starting mapping from header names (G2, App Store, Typeform, call-notes exports); the PM corrects it."""
    chosen: dict[str, str | None] = {name: None for name in FIELDS}
    used: set[str] = set()
    lowered = {header: re.sub(r"[^a-z0-9#@]+", " ", header.lower()).strip() for header in headers}
    for field in ("id", "email", "date", "title", "content", "tier", "category", "customer"):
        for word in GUESSES[field]:
            match = next((h for h in headers if h not in used and lowered[h] == word), None)
            if match is None and len(word) > 3:
                match = next((h for h in headers if h not in used and re.search(rf"(^| ){re.escape(word)}( |$)",
                                                                                lowered[h])), None)
            if match is not None:
                chosen[field] = match
                used.add(match)
                break
    return chosen


# -- dates -------------------------------------------------------------------------------------------------------

_ISO_DAY = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_NUMERIC = re.compile(r"^(\d{1,4})[/.\-](\d{1,2})[/.\-](\d{2,4})(?:[ T,]+(\d{1,2}):(\d{2})(?::(\d{2}))?\s*([AaPp][Mm])?)?$")
_TEXT_FORMATS = ("%b %d, %Y", "%B %d, %Y", "%d %b %Y", "%d %B %Y", "%b %d %Y", "%B %d %Y", "%a, %d %b %Y %H:%M:%S",
                 "%b %d, %Y %I:%M %p", "%B %d, %Y %I:%M %p", "%d %b %Y %H:%M", "%Y/%m/%d %H:%M:%S", "%Y/%m/%d")


def parse_date(value: Cell, *, day_first: bool = False) -> datetime:
    """A cell as an aware UTC datetime. Times without a zone are UTC. Raises ValueError with what was expected.

    Accepted: ISO 8601 (with or without time, 'Z' or an offset), 03/04/2026 (month first unless `day_first`),
    03.04.2026 (day first, as German exports write it), 'Mar 4, 2026', '4 March 2026', Excel date cells and
    Excel serial numbers (days since 1899-12-30).
    """
    if isinstance(value, datetime):
        return value.replace(tzinfo=timezone.utc) if value.tzinfo is None else value.astimezone(timezone.utc)
    if isinstance(value, date):
        return datetime.combine(value, time(), tzinfo=timezone.utc)
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        if 1 <= value < 2_958_466:  # up to 9999-12-31
            return _EXCEL_EPOCH + timedelta(days=float(value))
        raise ValueError(f"{value!r} is not a date")
    text = cell_text(value).strip()
    if not text:
        raise ValueError("the date is empty")
    if re.fullmatch(r"\d{5}(\.\d+)?", text):  # a serial number exported as text
        return _EXCEL_EPOCH + timedelta(days=float(text))
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00").replace(" UTC", "+00:00"))
    except ValueError:
        moment = None
    if moment is not None:
        return moment.replace(tzinfo=timezone.utc) if moment.tzinfo is None else moment.astimezone(timezone.utc)
    numeric = _NUMERIC.match(text)
    if numeric:
        first, second, year, hour, minute, second_of_minute, meridiem = numeric.groups()
        if len(first) == 4:  # 2026/03/04
            year, month, day = int(first), int(second), int(year)
        else:
            dotted = "." in text.split(" ")[0]
            month, day = (int(second), int(first)) if (day_first or dotted) else (int(first), int(second))
            year = int(year) + (2000 if len(year) == 2 else 0)
        hours = int(hour or 0)
        if meridiem:
            hours = hours % 12 + (12 if meridiem.lower() == "pm" else 0)
        try:
            return datetime(year, month, day, hours, int(minute or 0), int(second_of_minute or 0), tzinfo=timezone.utc)
        except ValueError:
            hint = " (is the file day-first? tick 'Dates are day first')" if not day_first and month > 12 else ""
            raise ValueError(f"{text!r} is not a valid date{hint}") from None
    for pattern in _TEXT_FORMATS:
        try:
            return datetime.strptime(text, pattern).replace(tzinfo=timezone.utc)
        except ValueError:
            continue
    raise ValueError(f"{text!r} is not a date in a known format (2026-03-04, 03/04/2026, 4 Mar 2026, an Excel date)")


# -- one row -----------------------------------------------------------------------------------------------------

def _text(row: dict[str, Cell], column: str | None) -> str:
    return cell_text(row.get(column)).strip() if column else ""


def content_hash(row: dict[str, Cell], columns: ColumnMap) -> str:
    """What identifies a row without an id column: its mapped words, customer and date."""
    parts = [_text(row, getattr(columns, name)) for name in ("title", "content", "customer", "email", "date")]
    return hashlib.sha256("\x1f".join(parts).encode("utf-8", "surrogatepass")).hexdigest()[:24]


def row_hash(row: dict[str, Cell]) -> str:
    """Every cell of the row: a changed cell anywhere is a new version of the record."""
    joined = "\x1e".join(f"{key}\x1f{cell_text(value)}" for key, value in row.items())
    return hashlib.sha256(joined.encode("utf-8", "surrogatepass")).hexdigest()[:24]


def _category(value: str, text: str, rules: Rules, column: str | None) -> tuple[Category, str]:
    """A category column that names a category outright decides (the reason says so, and a rules change leaves it);
    any other value is read as the record's tag, so the tag rules decide now and again when the rules change."""
    if value:
        normalized = re.sub(r"[\s-]+", "_", value.strip().lower())
        if normalized in Category.__members__:
            return Category(normalized), f"{STATED_REASON_PREFIX}{column}` says `{value}`"
    decision = rules.categorize(tags=[value] if value else [], text=text)
    return Category(decision.value), decision.reason


def map_row(
    row: dict[str, Cell],
    number: int,
    columns: ColumnMap,
    *,
    dataset: str,
    file_name: str,
    default_created: datetime,
    updated_at: datetime | None = None,
    rules: Rules = DEFAULT_RULES,
) -> NormalizedRecord:
    """One row as a record; raises `RowProblem` naming the row and column when a mapped cell cannot be used.

    Cells are stored verbatim: a cell that looks like a formula ("=HYPERLINK(...)") is text here, and the CSV export
    neutralizes it on the way out. Unmapped columns are kept in `metadata["columns"]`.
    """
    content = _text(row, columns.content)
    title = _text(row, columns.title) or None
    if not content and not title:
        raise RowProblem(Problem("the feedback text is empty", row=number, column=columns.content))
    if columns.date:
        try:
            created = parse_date(row.get(columns.date), day_first=columns.day_first)
        except ValueError as error:
            raise RowProblem(Problem(str(error), row=number, column=columns.date)) from None
    else:
        created = default_created
    if columns.id:
        key = _text(row, columns.id)
        if not key:
            raise RowProblem(Problem("the id is empty (every row needs one when an id column is mapped)",
                                     row=number, column=columns.id))
    else:
        key = "h" + content_hash(row, columns)
    text = " ".join(part for part in (title, content) if part)
    category_value = _text(row, columns.category)
    category, category_reason = _category(category_value, text, rules, columns.category)
    tier_value = _text(row, columns.tier)
    tier = rules.tier((f"column `{columns.tier}`", tier_value)) if columns.tier else rules.tier()
    email = _text(row, columns.email) or None
    mapped = set(columns.columns().values())
    metadata: dict[str, Any] = {
        "dataset": dataset,
        "file": file_name,
        "row": number,
        "row_hash": row_hash(row),
        "category_reason": category_reason,
        "tier_reason": tier.reason,
        "columns": {header: cell_text(value) for header, value in row.items() if header not in mapped},
    }
    if category_value:  # the category cell is the row's tag: searchable, and what the tag rules read
        metadata["tags"] = [category_value]
    if updated_at is not None:
        metadata["updated_at"] = updated_at.astimezone(timezone.utc).isoformat()
    try:
        return NormalizedRecord(
            source=SOURCE,
            source_id=f"{dataset}:{key}",
            title=title,
            content=content,
            customer_id=email.lower() if email else None,
            customer_email=email,
            customer_name=_text(row, columns.customer) or None,
            customer_tier=tier.value,
            category=category,
            created_at=created,
            metadata=metadata,
        )
    except ValueError as error:  # pydantic: a value the record cannot hold
        raise RowProblem(Problem(f"the row cannot be stored: {error}", row=number)) from None


class RowProblem(ValueError):
    """A row that cannot become a record; carries the `Problem` naming its row and column."""

    def __init__(self, problem: Problem):
        super().__init__(str(problem))
        self.problem = problem
