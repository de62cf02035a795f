"""Every SurveyMonkey question family and subtype, every collector shape, mapped from the API's own documents.

The fixtures in tests/fixtures/surveymonkey/ are written in the exact shapes of `GET /v3/surveys/{id}/details`
(a survey using every family and subtype), `GET /v3/surveys/{id}/responses/bulk` (an email-collector response
answering every question, web-link responses with `metadata: {}` and `{"contact": {}}`, a disqualified and a partial
one) and webhook deliveries. Each test compares the whole NormalizedRecord: only what the customer typed as feedback
is content; choices, ratings, rankings, numbers, dates and demographic fields are metadata.
"""

from __future__ import annotations

import copy
import json
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pytest

from feedback_sources.sources.surveymonkey.mapping import SurveyIndex, map_response, response_removal
from feedback_sources.models import Category, MappingError, NormalizedRecord, Removal, RemovalReason, Tier
from feedback_sources.rules import DEFAULT_RULES
from feedback_sources.webhooks.payloads import MappingContext, interpret

FIXTURES = Path(__file__).parent / "fixtures" / "surveymonkey"
UTC = timezone.utc


def fixture(name: str) -> Any:
    return json.loads((FIXTURES / name).read_text(encoding="utf-8"))


DETAILS = fixture("survey_details.json")
RESPONSES = {item["id"]: item for item in fixture("responses_bulk.json")["data"]}
EMAIL_COLLECTOR, WEB_LINK, ANONYMOUS, DISQUALIFIED, PARTIAL = RESPONSES
NPS_HEADING = "How likely is it that you would recommend Acme to a friend or colleague?"


def only(response_id: str, *question_ids: str) -> dict[str, Any]:
    """The fixture response with every answer but those to `question_ids` left out (as a skipped question is)."""
    response = copy.deepcopy(RESPONSES[response_id])
    for page in response["pages"]:
        page["questions"] = [q for q in page["questions"] if q["id"] in question_ids]
    return response


def email_collector_record(content: str = "", answers: dict[str, Any] | None = None, **changes: Any) -> NormalizedRecord:
    """The record of the email-collector response (Dana Reyes, plan `Business annual` in the link) given what its
    answers make of content and metadata; keyword arguments replace top-level fields or, `metadata_*`, metadata."""
    metadata: dict[str, Any] = {
        "survey_id": "318275463",
        "collector_id": "247119834",
        "response_status": "completed",
        "url": "https://www.surveymonkey.com/analyze/browse/mM8xQk2R?respondent_id=114000000001",
        "updated_at": "2026-10-02T09:21:40+00:00",
        "tags": [],
        "answers": answers or {},
        "custom_variables": {"plan": "Business annual"},
        "nps": None,
        "nps_question": None,
        "category_reason": "default for this source",
        "tier_reason": "plan `Business annual` matches `business`",
    }
    fields: dict[str, Any] = {
        "source": "surveymonkey",
        "source_id": "114000000001",
        "title": "Acme product feedback",
        "content": content,
        "customer_id": "8812345",
        "customer_email": "dana@northwind.example",
        "customer_name": "Dana Reyes",
        "customer_tier": Tier.business,
        "category": Category.other,
        "created_at": datetime(2026, 10, 2, 9, 15, tzinfo=UTC),
    }
    for key, value in changes.items():
        if key.startswith("metadata_"):
            metadata[key.removeprefix("metadata_")] = value
        else:
            fields[key] = value
    return NormalizedRecord(**fields, metadata=metadata)


def mapped(response: dict[str, Any]) -> NormalizedRecord:
    record = map_response(response, DETAILS, rules=DEFAULT_RULES)
    json.dumps(record.model_dump(mode="json"))  # the store writes it as JSON
    return record


# -- one question kind at a time -------------------------------------------------------------------------------------


def test_single_choice_vertical_is_a_score_not_text() -> None:
    assert mapped(only(EMAIL_COLLECTOR, "9002")) == email_collector_record(
        answers={NPS_HEADING: 9},
        category=Category.praise,
        metadata_nps=9,
        metadata_nps_question=NPS_HEADING,
        metadata_category_reason=f"NPS 9 (promoter, 9–10) on `{NPS_HEADING}`",
    )


def test_single_choice_horizontal_with_a_comment_box() -> None:
    # The comment is the customer's words (content); the rating is data.
    assert mapped(only(EMAIL_COLLECTOR, "9003")) == email_collector_record(
        content="How would you rate our support?\nSupport fixed our SSO issue within an hour.",
        answers={"How would you rate our support?": "Good"},
    )


def test_single_choice_menu_answered_with_other() -> None:
    assert mapped(only(EMAIL_COLLECTOR, "9004")) == email_collector_record(
        content="Which plan are you on?\nNonprofit discount",
        answers={"Which plan are you on?": "Other (please specify)"},
    )


def test_multiple_choice_with_other() -> None:
    assert mapped(only(EMAIL_COLLECTOR, "9005")) == email_collector_record(
        content="Which features do you use?\nZapier",
        answers={"Which features do you use?": ["Dashboards", "API & webhooks", "Other (please specify)"]},
    )


def test_matrix_single_maps_each_row_to_its_choice() -> None:
    assert mapped(only(EMAIL_COLLECTOR, "9006")) == email_collector_record(
        answers={"How well does each report work?": {"Usage report": "OK", "Billing report": "Poorly"}},
    )


def test_matrix_multi_maps_each_row_to_a_list() -> None:
    assert mapped(only(EMAIL_COLLECTOR, "9007")) == email_collector_record(
        answers={"Where do you share each report?": {"Weekly summary": ["Email", "Slack"], "Monthly review": ["PDF"]}},
    )


def test_matrix_rating_with_not_applicable_and_a_comment() -> None:
    assert mapped(only(EMAIL_COLLECTOR, "9008")) == email_collector_record(
        content="How satisfied are you with each of these?\nSupport hours do not cover Asia.",
        answers={"How satisfied are you with each of these?": {"Performance": "Satisfied", "Customer support": "N/A"}},
    )


def test_matrix_menu_answers_carry_their_column() -> None:
    assert mapped(only(EMAIL_COLLECTOR, "9009")) == email_collector_record(
        answers={
            "Your reporting setup": {
                "Main workspace": {"Export format": "CSV", "Schedule": "Weekly"},
                "Client workspaces": {"Export format": "Excel"},
            }
        },
    )


def test_matrix_ranking_is_the_rank_of_each_item() -> None:
    assert mapped(only(EMAIL_COLLECTOR, "9010")) == email_collector_record(
        answers={
            "Rank these improvements from most to least wanted.": {
                "Faster exports": 1,
                "More chart types": 3,
                "Scheduled emails": 2,
            }
        },
    )


def test_open_ended_single_is_content() -> None:
    assert mapped(only(EMAIL_COLLECTOR, "9011")) == email_collector_record(
        content="What one thing should we build next?\nScheduled exports to S3",
    )


def test_open_ended_multi_reads_each_row_label_once() -> None:
    # The survey labels its rows "Best thing:": the colon is not doubled.
    assert mapped(only(EMAIL_COLLECTOR, "9012")) == email_collector_record(
        content="Tell us more\nBest thing: The dashboards\nWorst thing: Exports of 50k+ rows time out",
    )


def test_open_ended_essay_keeps_exactly_what_was_typed() -> None:
    assert mapped(only(EMAIL_COLLECTOR, "9013")) == email_collector_record(
        content="What should we improve?\nThe CSV export times out when a name has <, & or = in it.",
    )


def test_open_ended_numerical_is_numbers_not_text() -> None:
    assert mapped(only(EMAIL_COLLECTOR, "9014")) == email_collector_record(
        answers={"Roughly how much time goes into reporting?": {"Hours per week": 6, "People involved": 2.5}},
    )


@pytest.mark.parametrize(
    ("question_id", "heading", "value"),
    [
        ("9015", "When did you sign up?", "10/01/2026"),
        ("9016", "When in the day do you usually work in Acme?", "09:30 AM"),
        ("9017", "When would suit you for a call?", "10/14/2026 02:00 PM"),
    ],
    ids=["date_only", "time_only", "both"],
)
def test_datetime_answers_are_metadata(question_id: str, heading: str, value: str) -> None:
    assert mapped(only(EMAIL_COLLECTOR, question_id)) == email_collector_record(answers={heading: value})


def test_demographic_international_is_metadata_and_the_contact_wins() -> None:
    # The collector knows the respondent: the email and name typed in the form do not replace its contact.
    assert mapped(only(EMAIL_COLLECTOR, "9018")) == email_collector_record(
        answers={
            "If you'd like us to follow up, leave your details.": {
                "Name": "Dana Reyes",
                "Company": "Northwind",
                "City/Town": "Lisbon",
                "Country": "Portugal",
                "Email Address": "dana.reyes@northwind.example",
                "Phone Number": "+351 21 000 0000",
            }
        },
    )


def test_demographic_us() -> None:
    assert mapped(only(EMAIL_COLLECTOR, "9019")) == email_collector_record(
        answers={"Your US office (optional)": {"State": "CA", "ZIP": "94107"}},
    )


def test_presentation_blocks_have_no_answers_and_leave_no_trace() -> None:
    index = SurveyIndex.from_details(DETAILS)
    assert {(q.family, q.subtype) for q in index.questions.values() if q.family == "presentation"} == {
        ("presentation", "descriptive_text"), ("presentation", "image")}
    # Were a presentation block ever listed with an empty answer list, it would still add nothing.
    response = only(EMAIL_COLLECTOR, "9011")
    response["pages"][0]["questions"] = [{"id": "9001", "answers": []}]
    response["pages"][3]["questions"] = [{"id": "9020", "answers": []}]
    assert mapped(response) == email_collector_record(
        content="What one thing should we build next?\nScheduled exports to S3",
    )


# -- whole responses -------------------------------------------------------------------------------------------------


def test_a_response_answering_every_question() -> None:
    assert mapped(RESPONSES[EMAIL_COLLECTOR]) == email_collector_record(
        content=(
            "How would you rate our support?\nSupport fixed our SSO issue within an hour.\n\n"
            "Which plan are you on?\nNonprofit discount\n\n"
            "Which features do you use?\nZapier\n\n"
            "How satisfied are you with each of these?\nSupport hours do not cover Asia.\n\n"
            "What one thing should we build next?\nScheduled exports to S3\n\n"
            "Tell us more\nBest thing: The dashboards\nWorst thing: Exports of 50k+ rows time out\n\n"
            "What should we improve?\nThe CSV export times out when a name has <, & or = in it."
        ),
        answers={
            NPS_HEADING: 9,
            "How would you rate our support?": "Good",
            "Which plan are you on?": "Other (please specify)",
            "Which features do you use?": ["Dashboards", "API & webhooks", "Other (please specify)"],
            "How well does each report work?": {"Usage report": "OK", "Billing report": "Poorly"},
            "Where do you share each report?": {"Weekly summary": ["Email", "Slack"], "Monthly review": ["PDF"]},
            "How satisfied are you with each of these?": {"Performance": "Satisfied", "Customer support": "N/A"},
            "Your reporting setup": {
                "Main workspace": {"Export format": "CSV", "Schedule": "Weekly"},
                "Client workspaces": {"Export format": "Excel"},
            },
            "Rank these improvements from most to least wanted.": {
                "Faster exports": 1, "More chart types": 3, "Scheduled emails": 2},
            "Roughly how much time goes into reporting?": {"Hours per week": 6, "People involved": 2.5},
            "When did you sign up?": "10/01/2026",
            "When in the day do you usually work in Acme?": "09:30 AM",
            "When would suit you for a call?": "10/14/2026 02:00 PM",
            "If you'd like us to follow up, leave your details.": {
                "Name": "Dana Reyes", "Company": "Northwind", "City/Town": "Lisbon", "Country": "Portugal",
                "Email Address": "dana.reyes@northwind.example", "Phone Number": "+351 21 000 0000",
            },
            "Your US office (optional)": {"State": "CA", "ZIP": "94107"},
        },
        category=Category.praise,
        metadata_nps=9,
        metadata_nps_question=NPS_HEADING,
        metadata_category_reason=f"NPS 9 (promoter, 9–10) on `{NPS_HEADING}`",
    )


def test_a_web_link_response_takes_the_customer_from_the_demographic_answers() -> None:
    # metadata {}, empty names, no recipient: only the form says who answered.
    assert mapped(RESPONSES[WEB_LINK]) == NormalizedRecord(
        source="surveymonkey",
        source_id="114000000002",
        title="Acme product feedback",
        content="What should we improve?\nToo expensive for a team of three.",
        customer_id="lee@park.example",
        customer_email="lee@park.example",
        customer_name="Lee Park",
        customer_tier=None,
        category=Category.complaint,
        created_at=datetime(2026, 10, 2, 11, 2, 9, tzinfo=UTC),
        metadata={
            "survey_id": "318275463",
            "collector_id": "247119833",
            "response_status": "completed",
            "url": "https://www.surveymonkey.com/analyze/browse/mM8xQk2R?respondent_id=114000000002",
            "updated_at": "2026-10-02T11:04:51+00:00",
            "tags": [],
            "answers": {
                NPS_HEADING: 3,
                "If you'd like us to follow up, leave your details.": {
                    "Name": "Lee Park", "Email Address": "lee@park.example"},
            },
            "custom_variables": {"ref": "newsletter", "utm_campaign": "q4-nps"},
            "nps": 3,
            "nps_question": NPS_HEADING,
            "category_reason": f"NPS 3 (detractor, 0–6) on `{NPS_HEADING}`",
            "tier_reason": "no plan information",
        },
    )


def test_an_anonymous_web_link_response_with_not_applicable_answers() -> None:
    # metadata {"contact": {}}: nobody to name. N/A stays a label, never a score.
    assert mapped(RESPONSES[ANONYMOUS]) == NormalizedRecord(
        source="surveymonkey",
        source_id="114000000003",
        title="Acme product feedback",
        content="",
        customer_id=None,
        customer_email=None,
        customer_name=None,
        customer_tier=None,
        category=Category.praise,
        created_at=datetime(2026, 10, 3, 7, 40, tzinfo=UTC),
        metadata={
            "survey_id": "318275463",
            "collector_id": "247119833",
            "response_status": "completed",
            "url": "https://www.surveymonkey.com/analyze/browse/mM8xQk2R?respondent_id=114000000003",
            "updated_at": "2026-10-03T07:41:12+00:00",
            "tags": [],
            "answers": {
                NPS_HEADING: 10,
                "How would you rate our support?": "N/A",
                "Which features do you use?": ["None of these"],
            },
            "custom_variables": {},
            "nps": 10,
            "nps_question": NPS_HEADING,
            "category_reason": f"NPS 10 (promoter, 9–10) on `{NPS_HEADING}`",
            "tier_reason": "no plan information",
        },
    )


def test_a_partial_response_with_an_offset_and_blank_custom_variables() -> None:
    assert mapped(RESPONSES[PARTIAL]) == NormalizedRecord(
        source="surveymonkey",
        source_id="114000000005",
        title="Acme product feedback",
        content="",
        customer_id=None,
        customer_email=None,
        customer_name=None,
        customer_tier=Tier.enterprise,
        category=Category.other,
        created_at=datetime(2026, 10, 3, 10, 30, tzinfo=UTC),
        metadata={
            "survey_id": "318275463",
            "collector_id": "247119833",
            "response_status": "partial",
            "url": "https://www.surveymonkey.com/analyze/browse/mM8xQk2R?respondent_id=114000000005",
            "updated_at": "2026-10-03T10:31:05+00:00",
            "tags": [],
            "answers": {NPS_HEADING: 7, "Which plan are you on?": "Enterprise"},
            "custom_variables": {},
            "nps": 7,
            "nps_question": NPS_HEADING,
            "category_reason": "default for this source",
            "tier_reason": "answer to `Which plan are you on?`: `Enterprise` matches `enterprise`",
        },
    )


def test_a_disqualified_response_is_a_removal_not_a_record() -> None:
    with pytest.raises(MappingError, match="disqualified"):
        map_response(RESPONSES[DISQUALIFIED], DETAILS, rules=DEFAULT_RULES)
    assert response_removal(RESPONSES[DISQUALIFIED]) == Removal(
        source="surveymonkey", source_id="114000000004", reason=RemovalReason.disqualified,
        removed_at=datetime(2026, 10, 3, 8, 0, 40, tzinfo=UTC),
    )


# -- webhook deliveries ----------------------------------------------------------------------------------------------

CONTEXT = MappingContext(rules=DEFAULT_RULES, fetchable=frozenset({"surveymonkey"}))


@pytest.mark.parametrize(
    ("name", "response_id", "reason", "removed_at"),
    [
        ("webhook_response_deleted.json", "114000000001", RemovalReason.deleted,
         datetime(2026, 10, 5, 8, 1, 44, 907311, tzinfo=UTC)),
        ("webhook_response_disqualified.json", "114000000002", RemovalReason.disqualified,
         datetime(2026, 10, 4, 15, 20, 3, 112030, tzinfo=UTC)),
    ],
)
def test_removal_events_remove_without_a_fetch(name: str, response_id: str, reason: RemovalReason,
                                                removed_at: datetime) -> None:
    result = interpret("surveymonkey", fixture(name), CONTEXT)
    assert (result.verdict, result.record_id, result.records, result.fetches) == ("removed", response_id, [], [])
    assert result.detail == f"response {reason.value}"
    assert result.removals == [
        Removal(source="surveymonkey", source_id=response_id, reason=reason, removed_at=removed_at)]


def test_a_completed_event_queues_a_fetch_of_the_response() -> None:
    result = interpret("surveymonkey", fixture("webhook_response_completed.json"), CONTEXT)
    assert (result.verdict, result.record_id, result.records, result.removals) == (
        "queued", "114000000002", [], [])
    assert [(job.source, job.kind, job.object_id, job.params) for job in result.fetches] == [
        ("surveymonkey", "response", "114000000002", {"survey_id": "318275463"})]


@pytest.mark.parametrize("event_datetime", [None, "", "last tuesday"])
def test_a_removal_event_without_a_readable_time_is_unmappable(event_datetime: str | None) -> None:
    payload = {**fixture("webhook_response_deleted.json"), "event_datetime": event_datetime}
    result = interpret("surveymonkey", payload, CONTEXT)
    assert (result.verdict, result.removals) == ("unmappable", [])
