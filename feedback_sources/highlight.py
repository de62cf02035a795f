"""Search results ranked by relevance, each with its matched words marked, and how to show them without risk.

FTS5 marks matches with two control characters (\\x02 … \\x03) that printed feedback does not contain; the text
between and around them is then escaped character by character before it becomes markdown, so a highlight can
never turn feedback into a link, an image, HTML or formatting. (A stray \\x02 in vendor text could at worst shift
a highlight: every character is escaped whatever it is.)
"""

from __future__ import annotations

import re
import sqlite3
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

from .search import SearchSyntaxError, to_fts_query

if TYPE_CHECKING:
    from .store import Filters, Store

MARK_START = "\x02"
MARK_END = "\x03"
SNIPPET_TOKENS = 32


@dataclass(frozen=True)
class SearchHit:
    source: str
    source_id: str
    created_at: str
    category: str
    customer_tier: str | None
    customer_name: str | None
    marked_title: str  # the whole title, each match between MARK_START and MARK_END
    marked_snippet: str  # the best passage of the content, marked the same way
    score: float  # bm25: lower is better


def search_results(store: Store, filters: Filters, limit: int = 10, offset: int = 0) -> list[SearchHit]:
    """The records matching `filters.text` and every other filter, best first, with marked title and snippet.

    Raises SearchSyntaxError for a query that cannot be understood; an empty query has no results.
    """
    fts = to_fts_query(filters.text) if filters.text and filters.text.strip() else None
    if fts is None:
        return []
    others = replace(filters, text="")
    try:
        ranked = store.ranked_matches(fts, others, limit, offset)
        if not ranked:
            return []
        # Snippets only for the page shown: FTS5 builds them from the record's text, which costs a row read each.
        rows = store.marked_matches(fts, list(ranked), SNIPPET_TOKENS)
    except sqlite3.OperationalError as error:  # every term is quoted, so this would be a bug, not the PM's typing
        raise SearchSyntaxError(f"This search could not be run ({error}).") from None
    by_id = {row[0]: row for row in rows}
    return [
        SearchHit(*by_id[rowid][1:7], marked_title=by_id[rowid][7] or "", marked_snippet=by_id[rowid][8] or "",
                  score=score)
        for rowid, score in ranked.items()
        if rowid in by_id
    ]


# -- from marked text to inert markdown -------------------------------------------------------------------------------

_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
_ASCII_PUNCTUATION = frozenset("!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~")
# An empty span from Streamlit's own markdown. Put before ':', '@' and '.', it splits the text where link and icon
# detectors look (they read the text after backslash escapes are undone: `www.x.org`, `a@b.c`, `:streamlit:`).
_SPLIT = ":small[]"
HIGHLIGHT = "orange-background"


def marked_segments(text: str) -> list[tuple[str, bool]]:
    """Split FTS5-marked text into (text, is_match) pieces; the markers themselves are dropped."""
    segments: list[tuple[str, bool]] = []
    inside = False
    for piece in re.split(f"([{MARK_START}{MARK_END}])", text):
        if piece == MARK_START:
            inside = True
        elif piece == MARK_END:
            inside = False
        elif piece:
            segments.append((piece, inside))
    return segments


def literal_markdown(text: str) -> str:
    """Markdown that Streamlit shows as exactly `text` on one line: nothing in it is syntax, a link, an icon or HTML."""
    flat = " ".join(_CONTROL.sub(" ", text.replace(MARK_START, "").replace(MARK_END, "")).split())
    out: list[str] = []
    for char in flat:
        if char in ":@.":
            out.append(_SPLIT)
        out.append("\\" + char if char in _ASCII_PUNCTUATION else char)
    return "".join(out)


def highlighted_markdown(marked: str, max_chars: int | None = None) -> str:
    """Marked text as inert markdown with each match on a highlight; cut to about `max_chars` visible characters."""
    pieces: list[str] = []
    budget = max_chars
    cut = False
    for text, is_match in marked_segments(marked):
        if cut:
            break
        if budget is not None:
            if len(text) > budget:
                text, cut = text[:budget].rstrip() + "…", True
            budget -= len(text)
        rendered = literal_markdown(text)
        if is_match and rendered:
            pieces.append(f":{HIGHLIGHT}[{rendered}]")
        elif not is_match:
            # literal_markdown trims: keep the spaces that separated this piece from its neighbours.
            before, after = (" " if text[:1].isspace() else ""), (" " if text[-1:].isspace() else "")
            pieces.append(before + rendered + after if rendered else before or after)
    return re.sub(" {2,}", " ", "".join(pieces)).strip()
