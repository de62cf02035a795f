"""Mapping one row onto a record: guesses from real export headers, dates, ids, rules for category and tier."""

from __future__ import annotations

from datetime import date, datetime, timezone

import pytest

from feedback_sources.models import Category, Tier
from feedback_sources.sources.spreadsheet.mapping import (
    ColumnMap,
    RowProblem,
    content_hash,
    guess_mapping,
    map_row,
    parse_date,
    slug,
)

NOW = datetime(2026, 12, 1, tzinfo=timezone.utc)
UTC = timezone.utc


def test_guesses_for_g2_app_store_and_typeform_headers() -> None:
    g2 = ["Review ID", "Review Title", "What do you like best?", "What do you dislike?", "Reviewer Name",
          "Reviewer Email", "Market Segment", "Star Rating", "Review Date"]
    assert guess_mapping(g2) == {
        "id": "Review ID", "title": "Review Title", "content": "What do you dislike?", "customer": "Reviewer Name",
        "email": "Reviewer Email", "tier": "Market Segment", "category": None, "date": "Review Date",
    }
    app_store = ["Date", "Rating", "Title", "Review", "Nickname", "Territory", "Version", "Review ID"]
    assert guess_mapping(app_store) == {
        "id": "Review ID", "title": "Title", "content": "Review", "customer": "Nickname", "email": None,
        "tier": None, "category": None, "date": "Date",
    }
    typeform = ["#", "What could we improve?", "What plan are you on?", "Email", "Submitted At", "Network ID"]
    guessed = guess_mapping(typeform)
    assert (guessed["id"], guessed["email"], guessed["date"], guessed["tier"]) == (
        "#", "Email", "Submitted At", "What plan are you on?")


@pytest.mark.parametrize(("text", "day_first", "expected"), [
    ("2026-03-04", False, datetime(2026, 3, 4, tzinfo=UTC)),
    ("2026-03-04T10:15:00Z", False, datetime(2026, 3, 4, 10, 15, tzinfo=UTC)),
    ("2026-03-04T10:15:00+02:00", False, datetime(2026, 3, 4, 8, 15, tzinfo=UTC)),
    ("2026-03-04 10:12:44", False, datetime(2026, 3, 4, 10, 12, 44, tzinfo=UTC)),
    ("03/04/2026", False, datetime(2026, 3, 4, tzinfo=UTC)),
    ("03/04/2026", True, datetime(2026, 4, 3, tzinfo=UTC)),
    ("04.03.2026", False, datetime(2026, 3, 4, tzinfo=UTC)),
    ("3/4/26 2:05 PM", False, datetime(2026, 3, 4, 14, 5, tzinfo=UTC)),
    ("2026/03/04", False, datetime(2026, 3, 4, tzinfo=UTC)),
    ("Mar 4, 2026", False, datetime(2026, 3, 4, tzinfo=UTC)),
    ("4 March 2026", False, datetime(2026, 3, 4, tzinfo=UTC)),
    ("46085", False, datetime(2026, 3, 4, tzinfo=UTC)),
])
def test_parse_date_text(text: str, day_first: bool, expected: datetime) -> None:
    assert parse_date(text, day_first=day_first) == expected


def test_parse_date_cells() -> None:
    assert parse_date(46085.5) == datetime(2026, 3, 4, 12, tzinfo=UTC)
    assert parse_date(datetime(2026, 3, 4, 9)) == datetime(2026, 3, 4, 9, tzinfo=UTC)
    assert parse_date(date(2026, 3, 4)) == datetime(2026, 3, 4, tzinfo=UTC)


@pytest.mark.parametrize(("text", "message"), [
    ("13/04/2026", "day first"), ("yesterday", "not a date in a known format"), ("", "empty"),
    ("31/31/2026", "not a valid date"),
])
def test_parse_date_errors(text: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        parse_date(text)


def test_map_row_whole_record() -> None:
    columns = ColumnMap(id="Review ID", title="Review Title", content="What do you dislike?",
                        customer="Reviewer Name", email="Reviewer Email", tier="Market Segment", date="Review Date")
    row = {"Review ID": "g2-1", "Review Title": "Great", "What do you dislike?": "Export crashes often",
           "Reviewer Name": "Ana", "Reviewer Email": "Ana@Acme.example", "Market Segment": "Enterprise(> 1000 emp.)",
           "Review Date": "2026-03-04", "Star Rating": "4.5"}
    record = map_row(row, 2, columns, dataset="g2", file_name="g2.csv", default_created=NOW)
    dumped = record.model_dump(mode="json")
    hashed = dumped["metadata"].pop("row_hash")
    assert len(hashed) == 24
    assert dumped == {
        "source": "spreadsheet", "source_id": "g2:g2-1", "title": "Great", "content": "Export crashes often",
        "customer_id": "ana@acme.example", "customer_email": "Ana@Acme.example", "customer_name": "Ana",
        "customer_tier": "enterprise", "category": "bug_report", "created_at": "2026-03-04T00:00:00Z",
        "metadata": {"dataset": "g2", "file": "g2.csv", "row": 2, "category_reason": "keyword `crashes`",
                     "tier_reason": "column `Market Segment` `Enterprise(> 1000 emp.)` matches `enterprise`",
                     "columns": {"Star Rating": "4.5"}},
    }


def test_category_column_enum_tag_and_rules() -> None:
    columns = ColumnMap(content="Body", category="Type")
    made = lambda value: map_row({"Body": "please add SSO", "Type": value}, 2, columns, dataset="d",
                                 file_name="f.csv", default_created=NOW)
    assert made("Feature Request").category is Category.feature_request
    assert made("bug").category is Category.bug_report  # a tag rule
    assert made("").category is Category.feature_request  # the keyword rule on the text
    assert made("").metadata["category_reason"] == "keyword `please add`"
    assert made("").customer_tier is None and made("").metadata["tier_reason"] == "no plan information"


def test_tier_through_plan_rules() -> None:
    columns = ColumnMap(content="c", tier="plan")
    record = map_row({"c": "x", "plan": "Free trial"}, 2, columns, dataset="d", file_name="f", default_created=NOW)
    assert record.customer_tier is Tier.free


def test_content_hash_id_is_stable_and_without_date_uses_default() -> None:
    columns = ColumnMap(content="Notes", customer="Who")
    row = {"Notes": "Wants SSO", "Who": "Acme", "Other": "1"}
    first = map_row(row, 2, columns, dataset="calls", file_name="a.csv", default_created=NOW)
    again = map_row({**row, "Other": "2"}, 9, columns, dataset="calls", file_name="b.csv", default_created=NOW)
    assert first.source_id == again.source_id == f"calls:h{content_hash(row, columns)}"
    assert first.metadata["row_hash"] != again.metadata["row_hash"]
    assert first.created_at == NOW


def test_formula_looking_cells_are_text() -> None:
    columns = ColumnMap(content="c", title="t")
    record = map_row({"t": '=HYPERLINK("http://x","y")', "c": "+1 -2 @SUM(A1)"}, 2, columns, dataset="d",
                     file_name="f", default_created=NOW)
    assert (record.title, record.content) == ('=HYPERLINK("http://x","y")', "+1 -2 @SUM(A1)")


@pytest.mark.parametrize(("row", "column", "message"), [
    ({"id": "1", "body": "", "when": "2026-01-01"}, "body", "feedback text is empty"),
    ({"id": "", "body": "x", "when": "2026-01-01"}, "id", "id is empty"),
    ({"id": "1", "body": "x", "when": "31.02.2026"}, "when", "not a valid date"),
])
def test_row_problems_name_row_and_column(row: dict, column: str, message: str) -> None:
    with pytest.raises(RowProblem) as caught:
        map_row(row, 7, ColumnMap(id="id", content="body", date="when"), dataset="d", file_name="f",
                default_created=NOW)
    assert (caught.value.problem.row, caught.value.problem.column) == (7, column)
    assert message in caught.value.problem.message


def test_slug() -> None:
    assert slug("G2 Reviews (Q3).csv") == "g2-reviews-q3"
    assert slug("....xlsx") == "import"
