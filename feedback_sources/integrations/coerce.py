"""Coercers for vendor JSON: a value of the expected shape, or None (or an empty container) for anything else.

Vendors send ids as numbers in one endpoint and as strings in the next, leave fields out, send `null`, `""` or a
list where an object was documented. A mapper reads every field through one of these, so malformed input turns
into an absent value (or a `MappingError` the mapper raises on purpose) instead of a crash deep in a sync.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from .base import parse_iso
from .http import utc_from_unix

__all__ = [
    "as_dict",
    "as_list",
    "identifier",
    "integer",
    "iso_datetime",
    "lower_text",
    "moment",
    "string_list",
    "text",
    "unix_datetime",
]


def text(value: Any) -> str | None:
    """A stripped, non-empty string, or None for anything else (numbers included)."""
    if isinstance(value, str):
        stripped = value.strip()
        return stripped or None
    return None


def lower_text(value: Any) -> str | None:
    """`text`, lower-cased: vocabularies such as a status or a priority."""
    found = text(value)
    return found.lower() if found is not None else None


def identifier(value: Any, *, zero_is_none: bool = False) -> str | None:
    """An id as a string, whether the vendor sent it as a number or a string; booleans are never ids.

    `zero_is_none`: some vendors' webhooks write 0 or "0" for "no such object"."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return None if zero_is_none and value == 0 else str(value)
    found = text(value)
    if found is None or (zero_is_none and found == "0"):
        return None
    return found


# Longer than any vendor's record id: a megabyte in an id field would become a record nobody can look up at the
# vendor, and a key in every index.
MAX_RECORD_ID_LENGTH = 255


def record_id(value: Any) -> str | None:
    """A record's own id (0 is a real one), or None when the field holds no usable id: the mapper then refuses the
    record with a MappingError, and only that record is lost."""
    found = identifier(value)
    return found if found is not None and len(found) <= MAX_RECORD_ID_LENGTH else None


def as_dict(value: Any) -> dict[str, Any]:
    """The value when it is a JSON object, else an empty one (so `.get` chains stay safe)."""
    return value if isinstance(value, dict) else {}


def as_list(value: Any) -> list[Any]:
    """The value when it is a JSON array, else an empty one."""
    return value if isinstance(value, list) else []


def string_list(value: Any) -> list[str]:
    """The non-empty strings of a JSON array (tags, labels), stripped; anything else is dropped."""
    return [item.strip() for item in as_list(value) if isinstance(item, str) and item.strip()]


def integer(value: Any, *, minimum: int | None = None) -> int | None:
    """An integer (never a boolean), at least `minimum` when given; None otherwise."""
    if isinstance(value, bool) or not isinstance(value, int):
        return None
    return value if minimum is None or value >= minimum else None


def unix_datetime(value: Any) -> datetime | None:
    """A UTC datetime from unix seconds (int or float); None for anything else or out of range."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    try:
        return utc_from_unix(value)
    except (OverflowError, OSError, ValueError):
        return None


def iso_datetime(value: Any) -> datetime | None:
    """A UTC datetime from an ISO 8601 string (`Z` or an offset; none means UTC); None when unreadable."""
    return parse_iso(value.strip()) if isinstance(value, str) else None


def moment(value: Any) -> datetime | None:
    """A UTC datetime from either unix seconds or an ISO 8601 string, for fields that carry both over time."""
    if isinstance(value, str):
        return iso_datetime(value)
    return unix_datetime(value)


def lookup(table: Mapping[Any, Any] | None, key: str | None) -> dict[str, Any]:
    """A side-loaded object by id whether the table is keyed by int (as the JSON had it) or by str."""
    if not table or key is None:
        return {}
    found = table.get(key)
    if found is None and key.isdigit():
        found = table.get(int(key))
    return found if isinstance(found, dict) else {}
