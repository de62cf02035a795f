"""Display text: snippets, local dates, rule reasons, relative times, markdown escaping."""

from __future__ import annotations

from datetime import date, datetime, timedelta, timezone

from feedback_sources.ui.records import table_rows
from feedback_sources.ui.text import md_escape, plain_reason, readable_date, readable_datetime, relative_time, snippet

NOW = datetime(2026, 3, 15, 12, 0, tzinfo=timezone.utc)


def test_snippet_is_one_short_line() -> None:
    assert snippet(None) == ""
    assert snippet("a\n\n b") == "a b"
    assert snippet("word " * 40, length=20) == "word word word word…"


def test_readable_dates_are_local_and_short(madrid: None) -> None:
    assert readable_datetime(datetime(2026, 12, 4, 14, 3, tzinfo=timezone.utc)) == "4 Dec 2026, 15:03"
    assert readable_datetime(datetime(2026, 12, 4, 14, 3, tzinfo=timezone.utc), timezone.utc) == "4 Dec 2026, 14:03"
    assert readable_datetime(None) == ""
    assert [readable_date(v) for v in ("2026-03-09", date(2026, 3, 9), "2026-03-09T23:30:00Z", "garbage", None)] == [
        "9 Mar 2026", "9 Mar 2026", "10 Mar 2026", "garbage", "",
    ]
    assert table_rows([{"created_at": "2026-03-01T10:00:00Z"}])[0]["created_at"].utcoffset() == timedelta(hours=1)


def test_reasons_lose_their_backticks() -> None:
    assert plain_reason("tag `bug`") == "tag \u201cbug\u201d"
    assert plain_reason("requester plan `Acme Pro` matches `pro`") == "requester plan \u201cAcme Pro\u201d matches \u201cpro\u201d"
    assert plain_reason("odd ` reason") == "odd reason"
    assert plain_reason(None) == ""


def test_relative_time() -> None:
    assert [relative_time(NOW - timedelta(seconds=n), NOW) for n in (5, 300, 7200, 3 * 86400)] == [
        "just now", "5 min ago", "2 h ago", "3 d ago",
    ]
    assert relative_time(None, NOW) == "never"


def test_md_escape_leaves_no_markdown_syntax() -> None:
    assert md_escape("![x](http://e/p.png) **b** <i>\nnext") == r"\!\[x\]\(http\://e/p\.png\) \*\*b\*\* \<i\> next"
