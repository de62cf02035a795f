"""The answers of one SurveyMonkey response, read against its survey's questions.

Answers are ids (question, choice, row, column); `collect_answers` turns them into readable values: what the
respondent typed as feedback (`blocks`, the searchable content) and everything else as data (`values`: choices,
ratings, rankings, numbers, dates, contact details), plus an NPS score, a chosen plan and a typed email or name.
Pure: no I/O.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from ...integrations.coerce import as_dict, as_list, identifier

# Demographic rows are typed; these two identify the respondent when the collector knows nothing about them.
DEMOGRAPHIC_EMAIL = "email"
DEMOGRAPHIC_NAME = "name"


@dataclass(frozen=True)
class Question:
    """What a response's ids mean for one question of a survey."""

    id: str
    heading: str | None
    family: str | None
    subtype: str | None = None
    choices: dict[str, str] = field(default_factory=dict)
    na_choices: frozenset[str] = frozenset()  # the "N/A" choice of a rating scale (`is_na`)
    rows: dict[str, str] = field(default_factory=dict)
    row_types: dict[str, str] = field(default_factory=dict)  # demographic rows: id → name, email, city...
    cols: dict[str, tuple[str, dict[str, str]]] = field(default_factory=dict)
    others: dict[str, str] = field(default_factory=dict)
    comment_ids: frozenset[str] = frozenset()  # "other" fields that are a comment box, not an answer choice


# A 0–10 choice reads "9" or "9 - Very likely"; a typed score must be the bare number.
_SCORE = re.compile(r"^\s*(10|[0-9])(?![0-9])")
_WHOLE_NUMBER = re.compile(r"^[+-]?\d{1,15}$")
_DECIMAL = re.compile(r"^[+-]?\d{0,15}[.,]\d{1,10}$")
_NPS_HEADING = re.compile(r"recommend", re.IGNORECASE)
_PLAN_HEADING = re.compile(r"\b(plan|tier|subscription)\b", re.IGNORECASE)

# Families whose typed answers are data (numbers, dates, contact details), not the customer's feedback.
_STRUCTURED_TEXT_FAMILIES = frozenset({"datetime", "demographic"})


def _plain_label(text: str | None) -> str | None:
    """A row or column label as it reads in a sentence: "Email Address:" → "Email Address"."""
    if text is None:
        return None
    text = text.strip().rstrip(":：").strip()
    return text or None


def _number(text: str) -> int | float | str:
    """A typed number as a number ("42", "3.5", "3,5"); anything else stays as typed."""
    cleaned = text.strip()
    if _WHOLE_NUMBER.match(cleaned):
        return int(cleaned)
    if _DECIMAL.match(cleaned):
        number = float(cleaned.replace(",", "."))
        return number if math.isfinite(number) else cleaned
    return cleaned


def _choice_value(text: str) -> int | str:
    """A choice as data: a bare number (a 0–10 score, a rank) becomes that number, any other label stays text."""
    return int(text) if _WHOLE_NUMBER.match(text.strip()) else text


@dataclass
class Answers:
    values: dict[str, Any] = field(default_factory=dict)  # question heading → the structured answer
    blocks: list[tuple[str, list[str]]] = field(default_factory=list)  # (heading, lines) of free text
    nps: tuple[int, str] | None = None  # (score, question heading)
    plan: tuple[str, str] | None = None  # (question heading, chosen text) of a "Which plan are you on?" question
    email: str | None = None  # a demographic email answer
    name: str | None = None  # a demographic name answer


def _key(values: dict[str, Any], heading: str, question_id: str) -> str:
    # Two questions may share a heading ("Any other comments?" on two pages): the second one names its id.
    return heading if heading not in values else f"{heading} ({question_id})"


def questions_of(body: Any) -> Iterator[tuple[str, dict[str, Any]]]:
    """(question id, question) for every question with an id on every page: of survey details and of a response."""
    for page in as_list(as_dict(body).get("pages")):
        for question in as_list(as_dict(page).get("questions")):
            question = as_dict(question)
            question_id = identifier(question.get("id"))
            if question_id is not None:
                yield question_id, question


def collect_answers(response: dict[str, Any], questions: dict[str, Question]) -> Answers:
    collected = Answers()
    for question_id, question in questions_of(response):
        known = questions.get(question_id) or Question(id=question_id, heading=None, family=None)
        answers = [as_dict(answer) for answer in as_list(question.get("answers"))]
        _collect_question(collected, known, answers)
    return collected


def _row_label(question: Question, row_id: str) -> str:
    return _plain_label(question.rows.get(row_id)) or f"row {row_id}"


def _collect_question(collected: Answers, question: Question, answers: list[dict[str, Any]]) -> None:
    """One question's answers: typed feedback to `blocks`, everything else as data to `values`."""
    heading = question.heading or f"question {question.id}"
    family = question.family
    free_text: list[str] = []
    other_choice: str | None = None  # what was typed into an "Other (please specify)" answer choice
    chosen: list[Any] = []  # choice values, for single/multiple choice and unknown questions
    by_row: dict[str, Any] = {}  # row label → value, for matrices, numerical boxes, dates, demographics
    multi_row = family == "matrix" and question.subtype == "multi"

    for answer in answers:
        row_id, col_id = identifier(answer.get("row_id")), identifier(answer.get("col_id"))
        choice_id, other_id = identifier(answer.get("choice_id")), identifier(answer.get("other_id"))
        typed = answer.get("text")
        typed = typed.strip() if isinstance(typed, str) else None

        if typed and other_id:
            # "Other (please specify)" or a comment box: the customer's own words, kept as written.
            free_text.append(typed)
            other_label = question.others.get(other_id)
            if (family in ("single_choice", "multiple_choice") and other_label is not None
                    and other_id not in question.comment_ids):
                chosen.append(_plain_label(other_label) or "Other")
                other_choice = other_choice or typed
        elif typed and family in _STRUCTURED_TEXT_FAMILIES:
            label = _row_label(question, row_id) if row_id else "answer"
            by_row[label] = typed
            kind = question.row_types.get(row_id or "")
            if family == "demographic" and kind == DEMOGRAPHIC_EMAIL and collected.email is None:
                collected.email = typed
            if family == "demographic" and kind == DEMOGRAPHIC_NAME and collected.name is None:
                collected.name = typed
        elif typed and family == "open_ended" and question.subtype == "numerical":
            by_row[_row_label(question, row_id) if row_id else "answer"] = _number(typed)
        elif typed:
            free_text.append(f"{_row_label(question, row_id)}: {typed}" if row_id else typed)
            if (
                collected.nps is None and question.heading and _NPS_HEADING.search(question.heading)
                and (score := re.fullmatch(r"\s*(10|[0-9])\s*", typed))
            ):
                collected.nps = (int(score.group(1)), question.heading)
        elif choice_id:
            if col_id:
                col_text, col_choices = question.cols.get(col_id, (f"column {col_id}", {}))
                label = col_choices.get(choice_id) or question.choices.get(choice_id) or f"choice {choice_id}"
            else:
                label = question.choices.get(choice_id) or question.others.get(choice_id) or f"choice {choice_id}"
            # "N/A" stays a label: it is the absence of a score, not a number.
            picked: Any = label if choice_id in question.na_choices else _choice_value(label)
            if row_id is None:
                chosen.append(picked)
            elif col_id:
                by_row.setdefault(_row_label(question, row_id), {})[_plain_label(col_text) or f"column {col_id}"] = picked
            elif multi_row:
                by_row.setdefault(_row_label(question, row_id), []).append(picked)
            else:
                by_row[_row_label(question, row_id)] = picked
            if (
                collected.nps is None and choice_id not in question.na_choices and question.heading
                and _NPS_HEADING.search(question.heading) and (score := _SCORE.match(label))
            ):
                collected.nps = (int(score.group(1)), question.heading)
            if collected.plan is None and row_id is None and question.heading and _PLAN_HEADING.search(question.heading):
                collected.plan = (question.heading, label)
        # anything else (a file upload, an empty answer, a presentation block) carries nothing to read

    if free_text:
        collected.blocks.append((heading, free_text))
    if other_choice and collected.plan is None and question.heading and _PLAN_HEADING.search(question.heading):
        collected.plan = (question.heading, other_choice)  # "Other: Enterprise trial" names a plan too
    value: Any = None
    if by_row:
        # A one-row scale ("How likely...?" as a rating matrix, a single date box) reads as its one value.
        value = next(iter(by_row.values())) if len(question.rows) == 1 and len(by_row) == 1 else by_row
    elif chosen:
        single = family == "single_choice" or (family is None and len(chosen) == 1)
        value = chosen[0] if single else chosen
    if value is not None:
        collected.values[_key(collected.values, heading, question.id)] = value
