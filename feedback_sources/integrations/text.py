"""Vendor rich text (HTML bodies, headings, choices) as plain text: the one converter every integration uses."""

from __future__ import annotations

import re
from html import unescape
from html.parser import HTMLParser

_ANY_TAG = re.compile(r"<[^>]*>")


_BLOCK_TAGS = frozenset(
    {
        "address", "article", "aside", "blockquote", "dd", "div", "dl", "dt", "fieldset", "figcaption", "figure",
        "footer", "form", "h1", "h2", "h3", "h4", "h5", "h6", "header", "hr", "li", "main", "nav", "ol", "p", "pre",
        "section", "table", "tbody", "thead", "tfoot", "tr", "ul",
    }
)  # fmt: skip
_HIDDEN_TAGS = frozenset({"script", "style", "title", "template", "noscript", "iframe", "object", "svg"})
# A tag, a comment or a character entity: text without any of them is plain and left alone.
_LOOKS_LIKE_HTML = re.compile(
    r"<(?:[a-zA-Z][a-zA-Z0-9-]*(?:\s[^<>]*)?/?|/[a-zA-Z][a-zA-Z0-9-]*\s*)>"
    r"|<!--"
    r"|&(?:[a-zA-Z]{2,8}|#\d{1,7}|#x[0-9a-fA-F]{1,6});"
)


_LINE_TAGS = frozenset({"li", "tr", "dt", "dd"})  # one line each; other blocks are paragraphs


class _TextExtractor(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self._parts: list[str] = []
        self._hidden_depth = 0
        self._pre_depth = 0
        self._item_depth = 0  # inside <li>, paragraphs are lines so the list stays compact

    def _trailing_newlines(self) -> int:
        count = 0
        for part in reversed(self._parts):
            stripped = part.rstrip("\n")
            count += len(part) - len(stripped)
            if stripped:
                return count
        return 2  # the start of the text counts as a paragraph break

    def _break(self, newlines: int) -> None:
        if self._parts and self._parts[-1] == "- ":
            return  # a paragraph inside a list item stays on the bullet's line
        if self._item_depth:
            newlines = 1
        missing = newlines - self._trailing_newlines()
        if missing > 0:
            self._parts.append("\n" * missing)

    def _at_line_start(self) -> bool:
        for part in reversed(self._parts):
            if part:
                return part.endswith(("\n", "- "))
        return True

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in _HIDDEN_TAGS:
            self._hidden_depth += 1
        elif self._hidden_depth:
            return
        elif tag == "br":
            self._parts.append("\n")
        elif tag in _BLOCK_TAGS:
            self._break(1 if tag in _LINE_TAGS else 2)
            if tag == "li":
                self._parts.append("- ")
                self._item_depth += 1
            elif tag == "pre":
                self._pre_depth += 1
        elif tag in {"td", "th"} and not self._at_line_start():
            self._parts.append(" ")

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        # A self-closed <script/> opens nothing, so it must not start hiding what follows.
        if self._hidden_depth or tag in _HIDDEN_TAGS:
            return
        if tag == "br":
            self._parts.append("\n")
        elif tag in _BLOCK_TAGS:
            self._break(2)

    def handle_endtag(self, tag: str) -> None:
        if tag in _HIDDEN_TAGS:
            self._hidden_depth = max(0, self._hidden_depth - 1)
        elif self._hidden_depth:
            return
        elif tag in _BLOCK_TAGS:
            if tag == "li":
                self._item_depth = max(0, self._item_depth - 1)
            elif tag == "pre":
                self._pre_depth = max(0, self._pre_depth - 1)
            self._break(1 if tag in _LINE_TAGS else 2)

    def handle_data(self, data: str) -> None:
        if self._hidden_depth:
            return
        if self._pre_depth:
            self._parts.append(data)
            return
        # Outside <pre>, source line breaks and runs of spaces are layout, not content.
        collapsed = re.sub(r"[ \t\r\n\f]+", " ", data)
        if self._at_line_start():
            collapsed = collapsed.lstrip(" ")
        if collapsed:
            self._parts.append(collapsed)

    def text(self) -> str:
        joined = "".join(self._parts).replace("\xa0", " ")
        lines = [line.rstrip() for line in joined.split("\n")]
        return re.sub(r"\n{3,}", "\n\n", "\n".join(lines)).strip()


def html_to_text(value: str | None) -> str:
    """Plain text from an HTML fragment: paragraphs and line breaks kept, entities decoded, tags and scripts gone.

    Text that has no tags or entities is returned unchanged apart from surrounding whitespace, so plain-text bodies
    (a ticket's plain-text description usually is one) keep their exact line breaks.
    """
    if not value:
        return ""
    if not _LOOKS_LIKE_HTML.search(value):
        return value.strip()
    extractor = _TextExtractor()
    try:
        extractor.feed(value)
        extractor.close()
    except AssertionError:  # html.parser gives up on some malformed declarations such as "<![<"
        return unescape(_ANY_TAG.sub("\n", value)).strip()
    return extractor.text()
