"""Turn what a PM types into a safe SQLite FTS5 query.

Supported: words (all must match), "exact phrases", OR between terms, -word / -"phrase" to exclude, prefix*.
Every term is quoted before it reaches FTS5, so punctuation in feedback text or queries can never become FTS5 syntax.

A query is capped at MAX_QUERY_CHARS characters and MAX_TERMS terms: FTS5's cost grows with every term (5,000
repeated words took 70 s over a million records), while a PM's real searches are a few words. The app's search box,
the CLI's `export --search` and Demand themes all go through parse_query, so one check covers them all.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

_TOKEN = re.compile(r'\s*(-?)(?:"([^"]*)"|(\S+))')

MAX_QUERY_CHARS = 500
MAX_TERMS = 32


class SearchSyntaxError(ValueError):
    """A search the PM typed that cannot be understood, with what to fix."""


@dataclass(frozen=True)
class Term:
    text: str
    negated: bool = False
    prefix: bool = False
    phrase: bool = False

    def fts(self) -> str:
        quoted = '"' + self.text.replace('"', '""') + '"'
        return quoted + ("*" if self.prefix else "")


def parse_query(text: str) -> list[list[Term] | str]:
    """Split into terms and the OR operator; raises SearchSyntaxError with a readable message."""
    if len(text) > MAX_QUERY_CHARS:
        raise SearchSyntaxError(
            f"Search is limited to {MAX_QUERY_CHARS} characters and this one has {len(text):,}: "
            "keep the few words that matter."
        )
    if text.count('"') % 2:
        raise SearchSyntaxError('Unbalanced quotes: close the "exact phrase" with a second quote.')
    items: list[list[Term] | str] = []
    position = 0
    while position < len(text):
        match = _TOKEN.match(text, position)
        if match is None or match.end() == position:
            break
        position = match.end()
        negated, phrase, word = match.group(1) == "-", match.group(2), match.group(3)
        if word is not None and word.upper() == "OR" and not negated:
            items.append("OR")
            continue
        if phrase is not None:
            words = phrase.strip()
            if not words:
                continue
            items.append([Term(" ".join(words.split()), negated=negated, phrase=True)])
            continue
        assert word is not None
        prefix = word.endswith("*")
        core = word.rstrip("*")
        # FTS5's tokenizer drops punctuation anyway; keep letters, digits and inner joiners only.
        core = re.sub(r"[^\w@.'-]+", " ", core).strip(" .'-")
        if not core:
            if negated or prefix:
                raise SearchSyntaxError(f"'{word}' has nothing to search for.")
            continue
        items.append([Term(core, negated=negated, prefix=prefix)])
    terms = sum(1 for item in items if item != "OR")
    if terms > MAX_TERMS:
        raise SearchSyntaxError(
            f"Search takes up to {MAX_TERMS} terms (words or \"phrases\") and this one has {terms}: "
            "keep the few that matter."
        )
    return items


def to_fts_query(text: str) -> str | None:
    """The FTS5 MATCH expression for a PM's query, or None when the query is empty."""
    items = parse_query(text or "")
    if not items:
        return None
    if items[0] == "OR" or items[-1] == "OR":
        raise SearchSyntaxError("OR needs a term on both sides, e.g. `export OR csv`.")
    groups: list[list[Term]] = []  # each group is an OR of terms; groups are ANDed
    expecting_or_operand = False
    for item in items:
        if item == "OR":
            if expecting_or_operand:
                raise SearchSyntaxError("Two ORs in a row: put a term between them.")
            expecting_or_operand = True
            continue
        assert isinstance(item, list)
        if expecting_or_operand:
            groups[-1].extend(item)
            expecting_or_operand = False
        else:
            groups.append(list(item))
    positives: list[str] = []
    negatives: list[str] = []
    for group in groups:
        if any(term.negated for term in group):
            if len(group) > 1:
                raise SearchSyntaxError("An excluded term (-word) cannot be part of an OR.")
            negatives.append(group[0].fts())
            continue
        rendered = " OR ".join(term.fts() for term in group)
        positives.append(f"({rendered})" if len(group) > 1 else rendered)
    if not positives:
        raise SearchSyntaxError("Add at least one word to look for; exclusions (-word) alone match nothing.")
    expression = " AND ".join(positives)
    for negative in negatives:
        expression = f"({expression}) NOT {negative}"
    return expression
