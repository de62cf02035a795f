"""SurveyMonkey responses → NormalizedRecord: pure mapping, no I/O.

Fixtures follow the shapes of `GET /v3/surveys/{id}/details` and `GET /v3/surveys/{id}/responses/bulk`.
"""

from __future__ import annotations

import copy
import json
from datetime import datetime, timezone
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from feedback_sources.sources.surveymonkey.mapping import SurveyIndex, heading_text, map_response
from feedback_sources.models import Category, MappingError, NormalizedRecord, Tier
from feedback_sources.rules import DEFAULT_RULES, Rules

NPS_CHOICES = [
    {"id": f"nps{score}", "text": f"{score} - Extremely likely" if score == 10 else str(score), "position": score + 1}
    for score in range(11)
]

DETAILS: dict[str, Any] = {
    "id": "405",
    "title": "Q3 product feedback",
    "nickname": "",
    "question_count": 7,
    "pages": [
        {
            "id": "p1",
            "position": 1,
            "questions": [
                {
                    "id": "q_nps",
                    "family": "matrix",
                    "subtype": "rating",
                    "headings": [{"heading": "How likely is it that you would recommend Acme to a friend?"}],
                    "answers": {"rows": [{"id": "nps_row", "text": "", "position": 1}], "choices": NPS_CHOICES},
                },
                {
                    "id": "q_plan",
                    "family": "single_choice",
                    "subtype": "vertical",
                    "headings": [{"heading": "Which plan are you on?"}],
                    "answers": {
                        "choices": [{"id": "c_free", "text": "Free"}, {"id": "c_team", "text": "Team"}],
                        "other": {"id": "o_plan", "text": "Other (please specify)", "visible": True},
                    },
                },
                {
                    "id": "q_features",
                    "family": "multiple_choice",
                    "subtype": "vertical",
                    "headings": [{"heading": "Which features do you use?"}],
                    "answers": {
                        "choices": [
                            {"id": "c_reports", "text": "Reports"},
                            {"id": "c_api", "text": "API &amp; webhooks"},
                        ]
                    },
                },
            ],
        },
        {
            "id": "p2",
            "position": 2,
            "questions": [
                {
                    "id": "q_areas",
                    "family": "matrix",
                    "subtype": "single",
                    "headings": [{"heading": "Rate these areas"}],
                    "answers": {
                        "rows": [{"id": "r_speed", "text": "Speed"}, {"id": "r_docs", "text": "Docs"}],
                        "choices": [{"id": "c_poor", "text": "Poor"}, {"id": "c_good", "text": "Good"}],
                    },
                },
                {
                    "id": "q_menu",
                    "family": "matrix",
                    "subtype": "menu",
                    "headings": [{"heading": "Your setup"}],
                    "answers": {
                        "rows": [{"id": "r_main", "text": "Main workspace"}],
                        "cols": [
                            {
                                "id": "col_os",
                                "text": "Operating system",
                                "choices": [{"id": "c_mac", "text": "macOS"}, {"id": "c_win", "text": "Windows"}],
                            }
                        ],
                    },
                },
                {
                    "id": "q_improve",
                    "family": "open_ended",
                    "subtype": "essay",
                    "headings": [{"heading": "<p>What should we <strong>improve</strong>?</p>"}],
                },
                {
                    "id": "q_best_worst",
                    "family": "open_ended",
                    "subtype": "multi",
                    "headings": [{"heading": "Tell us more"}],
                    "answers": {
                        "rows": [{"id": "r_best", "text": "Best thing"}, {"id": "r_worst", "text": "Worst thing"}]
                    },
                },
            ],
        },
    ],
}


def response(**overrides: Any) -> dict[str, Any]:
    """A responses/bulk item; keyword arguments replace top-level fields."""
    base: dict[str, Any] = {
        "id": "5007154325",
        "href": "https://api.surveymonkey.com/v3/surveys/405/responses/5007154325",
        "survey_id": "405",
        "collector_id": "50253586",
        "recipient_id": "0",
        "response_status": "completed",
        "collection_mode": "default",
        "total_time": 144,
        "custom_value": "",
        "edit_url": "https://www.surveymonkey.com/r/?sm=edit",
        "analyze_url": "https://www.surveymonkey.com/analyze/browse/abc?respondent_id=5007154325",
        "ip_address": "203.0.113.7",
        "date_created": "2024-05-02T09:15:00+00:00",
        "date_modified": "2024-05-02T09:20:30+00:00",
        "custom_variables": {"Plan": "Enterprise annual"},
        "metadata": {"contact": {"email": {"type": "string", "value": "dana@example.com"}}},
        "email_address": "",
        "first_name": "Dana",
        "last_name": "Reyes",
        "pages": [
            {
                "id": "p1",
                "questions": [
                    {"id": "q_nps", "answers": [{"row_id": "nps_row", "choice_id": "nps8"}]},
                    {"id": "q_plan", "answers": [{"other_id": "o_plan", "text": "Startup bundle"}]},
                    {"id": "q_features", "answers": [{"choice_id": "c_reports"}, {"choice_id": "c_api"}]},
                ],
            },
            {
                "id": "p2",
                "questions": [
                    {
                        "id": "q_areas",
                        "answers": [
                            {"row_id": "r_speed", "choice_id": "c_good"},
                            {"row_id": "r_docs", "choice_id": "c_poor"},
                        ],
                    },
                    {"id": "q_menu", "answers": [{"row_id": "r_main", "col_id": "col_os", "choice_id": "c_mac"}]},
                    {"id": "q_improve", "answers": [{"text": "Exports take minutes on large projects."}]},
                    {
                        "id": "q_best_worst",
                        "answers": [
                            {"row_id": "r_best", "text": "Dashboards"},
                            {"row_id": "r_worst", "text": "Slow exports"},
                        ],
                    },
                ],
            },
        ],
    }
    base.update(overrides)
    return base


def nps_response(choice_id: str, text: str | None = None, **overrides: Any) -> dict[str, Any]:
    questions: list[dict[str, Any]] = [{"id": "q_nps", "answers": [{"row_id": "nps_row", "choice_id": choice_id}]}]
    if text is not None:
        questions.append({"id": "q_improve", "answers": [{"text": text}]})
    return response(pages=[{"id": "p1", "questions": questions}], custom_variables={}, **overrides)


def test_full_response_maps_free_text_to_content_and_answers_to_metadata() -> None:
    record = map_response(response(), DETAILS, rules=DEFAULT_RULES)

    assert record == NormalizedRecord(
        source="surveymonkey",
        source_id="5007154325",
        title="Q3 product feedback",
        content=(
            "Which plan are you on?\nStartup bundle\n\n"
            "What should we improve?\nExports take minutes on large projects.\n\n"
            "Tell us more\nBest thing: Dashboards\nWorst thing: Slow exports"
        ),
        customer_id="dana@example.com",
        customer_email="dana@example.com",
        customer_name="Dana Reyes",
        customer_tier=Tier.enterprise,
        category=Category.other,
        created_at=datetime(2024, 5, 2, 9, 15, tzinfo=timezone.utc),
        metadata={
            "survey_id": "405",
            "collector_id": "50253586",
            "response_status": "completed",
            "url": "https://www.surveymonkey.com/analyze/browse/abc?respondent_id=5007154325",
            "updated_at": "2024-05-02T09:20:30+00:00",
            "tags": [],
            "answers": {
                # A one-row rating scale reads as its one value.
                "How likely is it that you would recommend Acme to a friend?": 8,
                "Which plan are you on?": "Other (please specify)",
                "Which features do you use?": ["Reports", "API & webhooks"],
                "Rate these areas": {"Speed": "Good", "Docs": "Poor"},
                "Your setup": {"Operating system": "macOS"},
            },
            "custom_variables": {"Plan": "Enterprise annual"},
            "nps": 8,
            "nps_question": "How likely is it that you would recommend Acme to a friend?",
            "category_reason": "default for this source",
            "tier_reason": "plan `Enterprise annual` matches `enterprise`",
        },
    )
    json.dumps(record.model_dump(mode="json"))  # the store writes it as JSON


def test_a_prebuilt_index_maps_exactly_like_the_details_dict() -> None:
    index = SurveyIndex.from_details(DETAILS)
    from_index = map_response(response(), index, rules=DEFAULT_RULES)
    assert from_index == map_response(response(), DETAILS, rules=DEFAULT_RULES)


def test_survey_title_argument_wins_over_the_details_title() -> None:
    record = map_response(response(), DETAILS, rules=DEFAULT_RULES, survey_title="Listed title")
    assert record.title == "Listed title"


@pytest.mark.parametrize(
    ("choice_id", "text", "category", "reason"),
    [
        (
            "nps3",
            "Onboarding was slow.",
            Category.complaint,
            "NPS 3 (detractor, 0–6) on `How likely is it that you would recommend Acme to a friend?`",
        ),
        (
            "nps10",
            None,
            Category.praise,
            "NPS 10 (promoter, 9–10) on `How likely is it that you would recommend Acme to a friend?`",
        ),
        ("nps7", "Fine overall.", Category.other, "default for this source"),
        # A keyword says more than the score: a detractor asking for a feature is a feature request.
        ("nps2", "It would be nice to have dark mode.", Category.feature_request, "keyword `it would be nice`"),
        ("nps9", "The export is broken.", Category.bug_report, "keyword `broken`"),
    ],
)
def test_nps_decides_the_category_only_when_no_keyword_does(
    choice_id: str, text: str | None, category: Category, reason: str
) -> None:
    record = map_response(nps_response(choice_id, text), DETAILS, rules=DEFAULT_RULES)
    assert (record.category, record.metadata["category_reason"]) == (category, reason)


def test_a_typed_score_counts_only_when_it_is_the_bare_number() -> None:
    details = {
        "title": "Pulse",
        "pages": [
            {
                "questions": [
                    {"id": "q1", "family": "open_ended", "headings": [{"heading": "Would you recommend us? (0-10)"}]},
                    {"id": "q2", "family": "open_ended", "headings": [{"heading": "Why would you recommend us?"}]},
                ]
            }
        ],
    }
    bare = response(pages=[{"id": "p", "questions": [{"id": "q1", "answers": [{"text": " 4 "}]}]}])
    sentence = response(pages=[{"id": "p", "questions": [{"id": "q2", "answers": [{"text": "5 stars, love it"}]}]}])

    assert map_response(bare, details, rules=DEFAULT_RULES).metadata["nps"] == 4
    assert map_response(sentence, details, rules=DEFAULT_RULES).metadata["nps"] is None


def test_without_details_answers_fall_back_to_their_ids() -> None:
    record = map_response(response(), None, rules=DEFAULT_RULES)

    assert record.title is None
    assert record.content == (
        "question q_plan\nStartup bundle\n\n"
        "question q_improve\nExports take minutes on large projects.\n\n"
        "question q_best_worst\nrow r_best: Dashboards\nrow r_worst: Slow exports"
    )
    assert record.metadata["answers"] == {
        "question q_nps": {"row nps_row": "choice nps8"},
        "question q_features": ["choice c_reports", "choice c_api"],
        "question q_areas": {"row r_speed": "choice c_good", "row r_docs": "choice c_poor"},
        "question q_menu": {"row r_main": {"column col_os": "choice c_mac"}},
    }
    assert record.metadata["nps"] is None  # the heading that says "recommend" is unknown


def test_questions_and_choices_deleted_from_the_survey_keep_their_ids() -> None:
    pages = [
        {
            "id": "p1",
            "questions": [
                {"id": "q_gone", "answers": [{"text": "Still here"}]},
                {"id": "q_plan", "answers": [{"choice_id": "c_gone"}]},
                {"id": "q_areas", "answers": [{"row_id": "r_gone", "choice_id": "c_good"}]},
            ],
        }
    ]
    record = map_response(response(pages=pages), DETAILS, rules=DEFAULT_RULES)

    assert record.content == "question q_gone\nStill here"
    assert record.metadata["answers"] == {
        "Which plan are you on?": "choice c_gone",
        "Rate these areas": {"row r_gone": "Good"},
    }


def test_two_questions_with_one_heading_keep_both_answers() -> None:
    details = {"pages": [{"questions": [
        {"id": f"q{n}", "family": "single_choice", "subtype": "vertical", "headings": [{"heading": "Anything else?"}],
         "answers": {"choices": [{"id": f"c{n}", "text": "Yes" if n == 1 else "No"}]}} for n in (1, 2)]}]}
    pages = [{"id": "p", "questions": [{"id": "q1", "answers": [{"choice_id": "c1"}]},
                                       {"id": "q2", "answers": [{"choice_id": "c2"}]}]}]
    record = map_response(response(pages=pages), details, rules=DEFAULT_RULES)
    assert record.metadata["answers"] == {"Anything else?": "Yes", "Anything else? (q2)": "No"}


@pytest.mark.parametrize(
    ("overrides", "expected"),
    [
        # recipient_id "0" means "not from an email collector": the email identifies the customer.
        ({}, ("dana@example.com", "dana@example.com", "Dana Reyes")),
        ({"recipient_id": "8812"}, ("8812", "dana@example.com", "Dana Reyes")),
        (
            {"metadata": {}, "email_address": "lee@example.com", "first_name": "", "last_name": "Lee"},
            ("lee@example.com", "lee@example.com", "Lee"),
        ),
        (
            {
                "metadata": {
                    "contact": {
                        "first_name": {"value": "Sam"},
                        "last_name": {"value": "Ito"},
                        "email": {"value": "sam@example.com"},
                    }
                },
                "first_name": None,
                "last_name": None,
            },
            ("sam@example.com", "sam@example.com", "Sam Ito"),
        ),
        ({"metadata": None, "email_address": None, "first_name": None, "last_name": None}, (None, None, None)),
    ],
)
def test_customer_identity(overrides: dict[str, Any], expected: tuple[str | None, ...]) -> None:
    record = map_response(response(**overrides), DETAILS, rules=DEFAULT_RULES)
    assert (record.customer_id, record.customer_email, record.customer_name) == expected


@pytest.mark.parametrize(
    ("custom_variables", "tier", "reason"),
    [
        ({"plan": "Team monthly"}, Tier.business, "plan `Team monthly` matches `team`"),
        ({"TIER": "free"}, Tier.free, "tier `free` matches `free`"),
        ({"region": "emea"}, None, "no plan information"),
        (None, None, "no plan information"),
    ],
)
def test_tier_comes_from_custom_variables(custom_variables: Any, tier: Tier | None, reason: str) -> None:
    record = map_response(response(custom_variables=custom_variables), DETAILS, rules=DEFAULT_RULES)
    assert (record.customer_tier, record.metadata["tier_reason"]) == (tier, reason)


def test_tier_falls_back_to_the_plan_the_respondent_chose() -> None:
    pages = [{"id": "p1", "questions": [{"id": "q_plan", "answers": [{"choice_id": "c_team"}]}]}]
    record = map_response(response(pages=pages, custom_variables={}), DETAILS, rules=DEFAULT_RULES)
    assert (record.customer_tier, record.metadata["tier_reason"]) == (
        Tier.business,
        "answer to `Which plan are you on?`: `Team` matches `team`",
    )
    # A custom variable set by the survey link beats what the respondent says.
    record = map_response(response(pages=pages, custom_variables={"plan": "free"}), DETAILS, rules=DEFAULT_RULES)
    assert record.customer_tier == Tier.free


def test_rules_are_the_callers() -> None:
    rules = Rules(keyword_categories=(("exports", Category.bug_report),))
    record = map_response(response(), DETAILS, rules=rules)
    assert (record.category, record.metadata["category_reason"]) == (Category.bug_report, "keyword `exports`")


def test_missing_analyze_url_and_date_modified() -> None:
    record = map_response(response(analyze_url=None, date_modified=None), DETAILS, rules=DEFAULT_RULES)
    assert record.metadata["url"] is None
    assert record.metadata["updated_at"] == "2024-05-02T09:15:00+00:00"


def test_dates_with_offsets_become_utc() -> None:
    record = map_response(response(date_created="2024-05-02T11:15:00+02:00"), DETAILS, rules=DEFAULT_RULES)
    assert record.created_at == datetime(2024, 5, 2, 9, 15, tzinfo=timezone.utc)


@pytest.mark.parametrize(
    "payload",
    [
        response(id=None),
        response(id=""),
        {k: v for k, v in response().items() if k != "id"},
        response(date_created=None, date_modified=None),
        response(date_created="yesterday", date_modified=17),
    ],
)
def test_unusable_responses_raise_mapping_error(payload: dict[str, Any]) -> None:
    with pytest.raises(MappingError):
        map_response(payload, DETAILS, rules=DEFAULT_RULES)


@pytest.mark.parametrize("payload", [None, [], "5007154325", 42])
def test_a_response_that_is_not_an_object_raises_mapping_error(payload: Any) -> None:
    with pytest.raises(MappingError):
        map_response(payload, DETAILS, rules=DEFAULT_RULES)  # type: ignore[arg-type]


def test_html_to_text_keeps_lines_and_drops_markup() -> None:
    html = (
        "<p>Rate <b>Acme</b> &amp; friends</p><script>alert(1)</script><style>p{}</style>"
        "<ul><li>one</li><li>two</li></ul>Line<br>break"
    )
    assert heading_text(html) == "Rate Acme & friends\n- one\n- two\nLine\nbreak"
    assert heading_text("  plain   heading ") == "plain heading"
    assert heading_text("<![<b>Rate &amp; review</b>") == "Rate & review"  # html.parser gives up on "<![<"


@settings(max_examples=500, deadline=None)
@given(st.lists(st.sampled_from(["<", ">", "<![", "<!--", "-->", "</", "<p>", "&", "#", ";", "x", "[", "'", '"', " "])))
def test_html_to_text_never_raises_on_broken_markup(parts: list[str]) -> None:
    assert isinstance(heading_text("".join(parts)), str)


# -- schema-shaped garbage -------------------------------------------------------------------------------------------

scalars = st.one_of(
    st.none(), st.booleans(), st.integers(-5, 10**12), st.floats(allow_nan=True), st.text(max_size=12)
)
junk = st.recursive(
    scalars,
    lambda inner: st.one_of(st.lists(inner, max_size=3), st.dictionaries(st.text(max_size=5), inner, max_size=3)),
    max_leaves=6,
)


def _paths(value: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    found = [prefix] if prefix else []
    if isinstance(value, dict):
        for key, item in value.items():
            found += _paths(item, (*prefix, key))
    elif isinstance(value, list):
        for position, item in enumerate(value):
            found += _paths(item, (*prefix, position))
    return found


@st.composite
def mangled(draw: st.DrawFn, document: Any) -> Any:
    """The document with a few fields removed, nulled or replaced by values of another type."""
    document = copy.deepcopy(document)
    for _ in range(draw(st.integers(1, 4))):
        paths = _paths(document)
        if not paths:
            break
        path = draw(st.sampled_from(paths))
        parent = document
        for step in path[:-1]:
            parent = parent[step]
        action = draw(st.sampled_from(["remove", "null", "retype"]))
        if action == "remove":
            del parent[path[-1]]
        else:
            parent[path[-1]] = None if action == "null" else draw(junk)
    return document


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(payload=mangled(response()), details=st.one_of(st.just(DETAILS), mangled(DETAILS), junk))
def test_mangled_payloads_map_or_raise_mapping_error(payload: Any, details: Any) -> None:
    try:
        record = map_response(payload, details, rules=DEFAULT_RULES)
    except MappingError:
        return
    assert record.source_id
    assert record.created_at.tzinfo is not None
    json.dumps(record.model_dump(mode="json"))
