"""SurveyMonkey responses as normalized records: pure transforms shared by the sync and the webhook receiver.

Answers in a response are ids (question, choice, row, column); `map_response` joins them with the survey details to
get readable text, and falls back to the ids when a question or choice is gone from the survey. What the respondent
typed as feedback becomes the searchable content; every other answer (choices, ratings, rankings, numbers, dates,
contact details) is structured metadata. Disqualified responses are not feedback (`response_removal`). No I/O here.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from pydantic import ValidationError

from ...integrations.base import parse_iso
from ...integrations.coerce import as_dict, as_list, identifier, record_id
from ...integrations.text import html_to_text
from ...models import Category, MappingError, NormalizedRecord, Removal, RemovalReason
from ...rules import Decision, Rules
from .answers import Answers, Question, collect_answers, questions_of

SOURCE = "surveymonkey"


def heading_text(value: str) -> str:
    """SurveyMonkey's rich-text headings and choices as text: one line per line, runs of spaces folded."""
    lines = (" ".join(line.split()) for line in html_to_text(value).splitlines())
    return "\n".join(line for line in lines if line)


def _label(value: Any) -> str | None:
    raw = value if isinstance(value, str) else None
    return (heading_text(raw) or None) if raw else None


# -- survey details --------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class SurveyIndex:
    """Survey details (`GET /surveys/{id}/details`) indexed by question id."""

    title: str | None
    questions: dict[str, Question]

    @classmethod
    def from_details(cls, details: Any) -> SurveyIndex:
        details = as_dict(details)
        questions: dict[str, Question] = {}
        for question_id, question in questions_of(details):
            heading = next(
                (text for h in as_list(question.get("headings")) if (text := _label(as_dict(h).get("heading")))),
                None,
            )
            answers = as_dict(question.get("answers"))
            other = answers.get("other")
            cols = {}
            for col in as_list(answers.get("cols")):
                col = as_dict(col)
                col_id = identifier(col.get("id"))
                if col_id is not None:
                    cols[col_id] = (_label(col.get("text")) or "", _options(col.get("choices")))
            choices = as_list(answers.get("choices"))
            questions[question_id] = Question(
                id=question_id,
                heading=heading,
                family=identifier(question.get("family")),
                subtype=identifier(question.get("subtype")),
                choices=_options(choices),
                na_choices=frozenset(
                    cid for c in choices if as_dict(c).get("is_na") is True and (cid := identifier(as_dict(c).get("id")))
                ),
                rows=_options(answers.get("rows")),
                row_types={
                    rid: kind.lower()
                    for r in as_list(answers.get("rows"))
                    if (rid := identifier(as_dict(r).get("id"))) and (kind := identifier(as_dict(r).get("type")))
                },
                cols=cols,
                others=_options(other if isinstance(other, list) else [other]),
                comment_ids=frozenset(
                    oid for o in (other if isinstance(other, list) else [other])
                    if as_dict(o).get("is_answer_choice") is False and (oid := identifier(as_dict(o).get("id")))
                ),
            )
        return cls(title=_label(details.get("title")), questions=questions)


def _options(items: Any) -> dict[str, str]:
    options: dict[str, str] = {}
    for item in as_list(items):
        item = as_dict(item)
        option_id = identifier(item.get("id"))
        if option_id is not None:
            options[option_id] = _label(item.get("text")) or ""
    return options


# -- mapping ---------------------------------------------------------------------------------------------------------

TIER_KEYS = ("plan", "tier")
DISQUALIFIED = "disqualified"


def response_created_at(response: Any) -> datetime | None:
    """When the respondent started, in UTC (falls back to the last change when the start is missing)."""
    response = as_dict(response)
    for key in ("date_created", "date_modified"):
        raw = response.get(key)
        moment = parse_iso(raw) if isinstance(raw, str) else None
        if moment is not None:
            return moment
    return None


def response_modified_at(response: Any) -> datetime | None:
    raw = as_dict(response).get("date_modified")
    return parse_iso(raw) if isinstance(raw, str) else None


def is_disqualified(response: Any) -> bool:
    """A respondent screened out by the survey's logic: their answers are not feedback."""
    return identifier(as_dict(response).get("response_status")) == DISQUALIFIED


def response_removal(
    response: Any, *, reason: RemovalReason = RemovalReason.disqualified, at: datetime | None = None
) -> Removal | None:
    """The removal a disqualified (or deleted) response stands for; None without a usable id or time. Pure.

    A response is disqualified by its last change, so `date_modified` is when it stopped being feedback; an event's
    own time is passed as `at`. The store's tombstone then refuses any version changed at or before that moment."""
    response = as_dict(response)
    response_id = record_id(response.get("id"))
    when = at or response_modified_at(response) or response_created_at(response)
    if response_id is None or when is None:
        return None
    return Removal(source=SOURCE, source_id=response_id, reason=reason, removed_at=when)


def _content(blocks: list[tuple[str, list[str]]]) -> str:
    """Each question the customer typed into, then what they typed: "What should we improve?\\nThe export..."."""
    return "\n\n".join("\n".join([heading, *lines]) for heading, lines in blocks)


def _category(rules: Rules, content: str, nps: tuple[int, str] | None) -> Decision:
    decision = rules.categorize(text=content, default=Category.other)
    no_rule_matched = decision.reason == rules.categorize(default=Category.other).reason
    if nps is not None and no_rule_matched:
        score, heading = nps
        if score <= 6:
            return Decision(Category.complaint.value, f"NPS {score} (detractor, 0–6) on `{heading}`")
        if score >= 9:
            return Decision(Category.praise.value, f"NPS {score} (promoter, 9–10) on `{heading}`")
    return decision


def _tier_candidates(custom_variables: dict[str, Any], plan: tuple[str, str] | None) -> list[tuple[str, str | None]]:
    """Custom variables the survey link carried (`plan`, `tier`) first, then what the respondent chose."""
    by_key = {key.strip().lower(): value for key, value in custom_variables.items() if isinstance(key, str)}
    candidates = []
    for key in TIER_KEYS:
        value = by_key.get(key)
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            value = str(value)
        candidates.append((key, identifier(value)))
    if plan is not None:
        heading, chosen = plan
        candidates.append((f"answer to `{heading}`:", chosen))
    return candidates


def _custom_variables(raw: Any) -> dict[str, str]:
    """The survey link's custom variables as strings (they are whatever the link carried: ?ref=..&account=..)."""
    found: dict[str, str] = {}
    for key, value in as_dict(raw).items():
        if not isinstance(key, str) or not key.strip():
            continue
        if isinstance(value, bool) or value is None or isinstance(value, (dict, list)):
            continue
        text = str(value).strip()
        if text:
            found[key.strip()] = text
    return found


def _identity(response: dict[str, Any], answers: Answers) -> tuple[str | None, str | None, str | None]:
    """(customer_id, email, name): the collector's contact first, then what the respondent typed in a demographic
    question. Web-link collectors know nobody: `metadata` is `{}` or `{"contact": {}}` and the names are ""."""
    contact = as_dict(as_dict(response.get("metadata")).get("contact"))
    email = (
        identifier(as_dict(contact.get("email")).get("value"))
        or identifier(response.get("email_address"))
        or answers.email
    )
    first = identifier(response.get("first_name")) or identifier(as_dict(contact.get("first_name")).get("value"))
    last = identifier(response.get("last_name")) or identifier(as_dict(contact.get("last_name")).get("value"))
    name = " ".join(part for part in (first, last) if part) or answers.name
    recipient_id = identifier(response.get("recipient_id"))
    customer_id = recipient_id if recipient_id not in (None, "0") else email
    return customer_id, email, name


def map_response(
    response: dict[str, Any],
    details: dict[str, Any] | SurveyIndex | None,
    *,
    rules: Rules,
    survey_title: str | None = None,
) -> NormalizedRecord:
    """One SurveyMonkey response (an item of `responses/bulk`, or `GET /responses/{id}/details`) as a record.

    `details` is the survey's `GET /surveys/{id}/details` (or a `SurveyIndex` built from it) and turns answer ids
    into question and choice text; without it, or for questions deleted since, answers name their ids instead.

    Only what the customer typed as feedback — open-ended text, "Other (please specify)" text, comment boxes — makes
    the searchable content, each under its question ("What should we improve?\\nThe CSV export times out").
    Choices, ratings, rankings, numbers, dates and demographic fields are data: `metadata["answers"]` maps each
    question heading to its value (a label, a number, a list, or row → value). A demographic email or name fills
    the customer when the collector knows nobody. An NPS answer (0–10 to a question mentioning "recommend") makes a
    detractor a complaint and a promoter praise when no keyword rule decides.

    Raises `MappingError` for a response without an id or dates, and for a disqualified one (see `map_or_removal`).
    """
    if not isinstance(response, dict):
        raise MappingError(SOURCE, f"a response must be a JSON object, not {type(response).__name__}")
    response_id = record_id(response.get("id"))
    if response_id is None:
        raise MappingError(SOURCE, "response without an id")
    if is_disqualified(response):
        raise MappingError(SOURCE, f"response {response_id} was disqualified: it is not feedback")
    created_at = response_created_at(response)
    if created_at is None:
        raise MappingError(SOURCE, f"response {response_id} has no valid date_created")
    updated_at = response_modified_at(response) or created_at

    index = details if isinstance(details, SurveyIndex) else SurveyIndex.from_details(details)
    answers = collect_answers(response, index.questions)
    content = _content(answers.blocks)
    customer_id, email, name = _identity(response, answers)
    custom_variables = _custom_variables(response.get("custom_variables"))

    category = _category(rules, content, answers.nps)
    tier = rules.tier(*_tier_candidates(custom_variables, answers.plan))
    url = response.get("analyze_url")

    try:
        return NormalizedRecord(
            source=SOURCE,
            source_id=response_id,
            title=identifier(survey_title) or index.title,
            content=content,
            customer_id=customer_id,
            customer_email=email,
            customer_name=name,
            customer_tier=tier.value,
            category=category.value,
            created_at=created_at,
            metadata={
                "survey_id": identifier(response.get("survey_id")),
                "collector_id": identifier(response.get("collector_id")),
                "response_status": identifier(response.get("response_status")),
                "url": url if isinstance(url, str) and url.startswith(("https://", "http://")) else None,
                "updated_at": updated_at.isoformat(),
                "tags": [],
                "answers": answers.values,
                "custom_variables": custom_variables,
                "nps": answers.nps[0] if answers.nps else None,
                "nps_question": answers.nps[1] if answers.nps else None,
                "category_reason": category.reason,
                "tier_reason": tier.reason,
            },
        )
    except ValidationError as error:
        raise MappingError(SOURCE, f"response {response_id} could not be mapped: {error}") from None
