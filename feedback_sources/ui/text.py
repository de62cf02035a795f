"""Display text every page shares: local, short dates; rule reasons as sentences; one-line snippets; relative times;
and markdown escaping for vendor text that ends up inside the app's own sentences.
"""

from __future__ import annotations

import re
from datetime import date, datetime, timezone
from typing import Any

from ..ranges import parse_moment as parse_timestamp  # what the pages call it


def _parse_date(text: str) -> date | None:
    try:
        return date.fromisoformat(text) if text else None
    except ValueError:
        return None


# -- readable dates ---------------------------------------------------------------------------------------------------


def readable_datetime(moment: datetime | None, tz: Any = None) -> str:
    """"4 Dec 2026, 15:03" in the machine's local time (tz for tests): the app runs on the PM's own laptop."""
    if moment is None:
        return ""
    local = (moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)).astimezone(tz)
    return f"{local.day} {local:%b %Y, %H:%M}"


def readable_date(day: date | datetime | str | None) -> str:
    """"4 Dec 2026"; ISO text is read first (stored dates are ISO), a moment is shown on its local day."""
    if isinstance(day, str):
        parsed = parse_timestamp(day) if "T" in day else _parse_date(day[:10])
        if parsed is None:
            return day
        day = parsed
    if day is None:
        return ""
    if isinstance(day, datetime):
        day = day.astimezone()
    return f"{day.day} {day:%b %Y}"


_QUOTED = re.compile(r"`([^`]*)`")


def plain_reason(reason: Any) -> str:
    """A rule's reason as a sentence: the rules quote values in backticks (tag `bug`), shown as “bug”."""
    text = _QUOTED.sub(lambda match: f"\u201c{match.group(1)}\u201d", str(reason or ""))
    return " ".join(text.replace("`", "").split())


def snippet(text: Any, length: int = 90) -> str:
    """The start of a text on one line: stands in for a missing title (chat conversations have none)."""
    flat = " ".join(str(text or "").split())
    return flat if len(flat) <= length else flat[: length - 1].rstrip() + "…"


def relative_time(moment: datetime | None, now: datetime) -> str:
    if moment is None:
        return "never"
    seconds = max(0, int((now - moment).total_seconds()))
    if seconds < 60:
        return "just now"
    if seconds < 3600:
        return f"{seconds // 60} min ago"
    if seconds < 86400:
        return f"{seconds // 3600} h ago"
    return f"{seconds // 86400} d ago"


_MARKDOWN_SPECIALS = set("\\`*_{}[]()#+-.!|<>~:$&=")


def md_escape(text: Any) -> str:
    """Text that Streamlit's markdown shows literally: for vendor-supplied messages inside st.error and friends.

    Feedback itself never goes through markdown (the pages use st.text, st.code and st.dataframe); this is for the
    odd vendor error or account name that ends up inside one of the app's own sentences.
    """
    escaped = "".join("\\" + ch if ch in _MARKDOWN_SPECIALS else ch for ch in str(text))
    return " ".join(escaped.split())  # newlines would start new markdown blocks
