"""SurveyMonkey: surveys with their question structure, and bulk responses paged by page number.

The surveys use every question family and subtype the API documents, answered in the shapes real responses take:
single choice (vertical, horizontal, menu) and multiple choice with "Other (please specify)" (`{other_id, text}`),
rating scales with an N/A column (`is_na`) and comment boxes, matrices (single, multi, rating, menu with `col_id`,
ranking), open-ended single, multiple (`row_id`), essay and numerical boxes, dates and times, demographic blocks
(international and US, rows typed name, company, address, city, state, zip, country, email, phone) and presentation
blocks that are never answered. Most respondents come through a web link: no contact (`metadata` `{}` or
`{"contact": {}}`), empty names, whatever custom variables the link carried. A few are disqualified by the survey's
screening logic; deleted responses answer 404 and leave the bulk listing.
"""

from __future__ import annotations

import copy
import math
import random
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any
from urllib.parse import urlencode

from ...emulator.collection import Entry, LazyCollection
from ...emulator.config import EmulatorConfig
from ...emulator.data import (
    DISPLAY_PLAN, SALT_ADDED, SALT_RESPONSE, TOPICS, BlockCache, People, make_feedback, mix64, offset_time, pick,
    record_rng, to_unix, unit_interval,
)
from ...emulator.wire import BadRequest, Call, Reply, VendorApi, int_param

MAX_RESPONSES_PER_PAGE = 100
DEFAULT_PER_PAGE = 50
MAX_SURVEYS_PER_PAGE = 1000
DOCS_URL = "https://developer.surveymonkey.com/api/v3/#error-codes"

# Share of generated responses the survey's screening question disqualifies; decided from the id alone, so the
# ground truth (`responses_in_range`) knows them without building the records.
DISQUALIFIED_SHARE = 0.03
_SALT_DISQUALIFIED = 41

_NPS = tuple(str(n) for n in range(11))
_SATISFACTION = ("Very dissatisfied", "Dissatisfied", "Neutral", "Satisfied", "Very satisfied")

# Demographic rows as SurveyMonkey labels them (with the colon), by row type.
DEMOGRAPHIC_ROWS: dict[str, tuple[tuple[str, str], ...]] = {
    "international": (
        ("name", "Name:"), ("company", "Company:"), ("address", "Address:"), ("address2", "Address 2:"),
        ("city", "City/Town:"), ("state", "State/Province:"), ("zip", "ZIP/Postal Code:"), ("country", "Country:"),
        ("email", "Email Address:"), ("phone", "Phone Number:"),
    ),
    "us": (
        ("name", "Name:"), ("company", "Company:"), ("address", "Address:"), ("address2", "Address 2:"),
        ("city", "City/Town:"), ("state", "State:"), ("zip", "ZIP:"), ("email", "Email Address:"),
        ("phone", "Phone Number:"),
    ),
}


@dataclass(frozen=True)
class Spec:
    """One question of a survey template. `purpose` drives what the answers talk about."""

    family: str
    subtype: str
    heading: str
    purpose: str = ""
    choices: tuple[str, ...] = ()
    rows: tuple[str, ...] = ()
    cols: tuple[tuple[str, tuple[str, ...]], ...] = ()  # matrix menu: (column, its dropdown choices)
    other: str | None = None  # the "Other" field's label
    other_is_choice: bool = True  # False: a comment box beside the choices
    na: str | None = None  # the label of an N/A choice (`is_na`)


SURVEY_TEMPLATES: tuple[tuple[str, str, tuple[tuple[Spec, ...], ...]], ...] = (
    ("Customer satisfaction (NPS)", "nps", (
        (
            Spec("presentation", "descriptive_text", "Thanks for taking two minutes to tell us how we are doing."),
            Spec("single_choice", "horizontal", "How likely are you to recommend Acme Cloud to a friend or colleague?",
                 "nps", choices=_NPS),
            Spec("open_ended", "essay", "What is the main reason for your score?", "nps_reason"),
        ),
        (
            Spec("multiple_choice", "vertical", "Which features do you use?", "features_used",
                 choices=("Dashboards", "CSV export", "SSO", "Mobile app", "Integrations", "API"),
                 other="Other (please specify)"),
            Spec("matrix", "rating", "How satisfied are you with each of these?", "satisfaction",
                 choices=_SATISFACTION, rows=("Performance", "Reliability", "Ease of use", "Customer support"),
                 other="Comments", other_is_choice=False, na="N/A"),
            Spec("open_ended", "single", "What one thing should we build next?", "next_feature"),
            Spec("datetime", "time_only", "When in the day do you usually work in Acme Cloud?", "time_of_day",
                 rows=("Time",)),
        ),
        (
            Spec("demographic", "international", "If you'd like us to follow up, leave your details.", "contact",
                 rows=tuple(label for _, label in DEMOGRAPHIC_ROWS["international"])),
        ),
    )),
    ("Onboarding experience", "onboarding", (
        (
            Spec("presentation", "image", "", "banner"),
            Spec("single_choice", "vertical", "How easy was it to get started?", "ease",
                 choices=("Very difficult", "Difficult", "Neither", "Easy", "Very easy")),
            Spec("multiple_choice", "vertical", "Which resources did you use?", "resources",
                 choices=("Help center", "Video tutorials", "Support chat", "Live webinar"),
                 other="Other (please specify)", na="None of these"),
            Spec("open_ended", "essay", "What almost stopped you from signing up?", "blocker"),
            Spec("single_choice", "menu", "Which plan are you on?", "plan",
                 choices=("Free", "Pro", "Business", "Enterprise"), other="Other (please specify)"),
        ),
        (
            Spec("datetime", "date_only", "When did you sign up?", "signup_date", rows=("Date",)),
            Spec("datetime", "both", "When would suit you for a 20-minute call?", "call_slot",
                 rows=("Date / Time",)),
            Spec("demographic", "us", "Your contact details (optional)", "contact",
                 rows=tuple(label for _, label in DEMOGRAPHIC_ROWS["us"])),
        ),
    )),
    ("Reporting & export feedback", "reporting", (
        (
            Spec("matrix", "rating", "How important are these to you?", "importance",
                 choices=("Not important", "Somewhat important", "Very important"),
                 rows=("Scheduled reports", "CSV export", "Custom dashboards", "Sharing with clients"), na="N/A"),
            Spec("single_choice", "horizontal", "How often do you export data?", "export_frequency",
                 choices=("Daily", "Weekly", "Monthly", "Never"), other="Comments", other_is_choice=False),
            Spec("matrix", "single", "How well does each report type work for you?", "report_quality",
                 choices=("Poorly", "OK", "Well"), rows=("Usage report", "Billing report", "Audit log")),
            Spec("matrix", "multi", "Where do you share each report?", "sharing",
                 choices=("Email", "Slack", "PDF", "Client portal"), rows=("Weekly summary", "Monthly review")),
        ),
        (
            Spec("matrix", "menu", "Your reporting setup", "setup",
                 rows=("Main workspace", "Client workspaces"),
                 cols=(("Export format", ("CSV", "Excel", "PDF")), ("Schedule", ("Daily", "Weekly", "Monthly")))),
            Spec("matrix", "ranking", "Rank these improvements from most to least wanted.", "ranking",
                 choices=("1", "2", "3", "4"),
                 rows=("Faster exports", "More chart types", "Scheduled emails", "White-label PDFs")),
            Spec("open_ended", "multi", "Tell us about your reporting", "reporting_rows",
                 rows=("What works well", "What gets in the way")),
            Spec("open_ended", "numerical", "Roughly how much time goes into reporting?", "reporting_numbers",
                 rows=("Hours per week", "People involved")),
            Spec("open_ended", "essay", "Describe your ideal reporting workflow.", "reporting_workflow"),
        ),
    )),
)


@dataclass(frozen=True)
class Question:
    id: str
    position: int
    family: str
    subtype: str
    heading: str
    choices: tuple[tuple[str, str], ...]    # (id, text)
    rows: tuple[tuple[str, str], ...]       # (id, text)
    other_id: str | None
    purpose: str
    other: str | None = None
    other_is_choice: bool = True
    na_id: str | None = None
    cols: tuple[tuple[str, str, tuple[tuple[str, str], ...]], ...] = ()  # (id, text, ((choice id, text), ...))
    row_types: tuple[str, ...] = ()  # demographic row types, aligned with rows
    na_label: str = ""


@dataclass(frozen=True)
class Page:
    id: str
    position: int
    questions: tuple[Question, ...]


class Survey:
    def __init__(self, index: int, config: EmulatorConfig,
                 make_response: Callable[[Survey, random.Random, int], dict | None]) -> None:
        title, nickname, pages_spec = SURVEY_TEMPLATES[index % len(SURVEY_TEMPLATES)]
        round_number = index // len(SURVEY_TEMPLATES)
        self.index = index
        self.id = str(500_000_000 + (config.seed % 997) * 1000 + index)
        self.title = title if round_number == 0 else f"{title} #{round_number + 1}"
        self.nickname = nickname if round_number == 0 else f"{nickname}-{round_number + 1}"
        self.created_ts = config.start_ts - 30 * 86400
        self.collector_ids = (str(400_000_000 + index * 10 + 1), str(400_000_000 + index * 10 + 2))
        self._disqualified_key = mix64(config.seed * 7907 + index)
        pages = []
        question_number = 0
        for page_position, questions_spec in enumerate(pages_spec, start=1):
            questions = []
            for position, spec in enumerate(questions_spec, start=1):
                question_number += 1
                base = 80_000_000_000 + index * 1_000_000 + question_number * 1000
                row_types = (tuple(kind for kind, _ in DEMOGRAPHIC_ROWS[spec.subtype])
                             if spec.family == "demographic" else ())
                questions.append(Question(
                    id=str(70_000_000 + index * 1000 + question_number), position=position, family=spec.family,
                    subtype=spec.subtype, heading=spec.heading,
                    choices=tuple((str(base + n), text) for n, text in enumerate(spec.choices, start=1)),
                    rows=tuple((str(base + 500 + n), text) for n, text in enumerate(spec.rows, start=1)),
                    other_id=str(base + 999) if spec.other else None, purpose=spec.purpose, other=spec.other,
                    other_is_choice=spec.other_is_choice, na_id=str(base + 998) if spec.na else None,
                    na_label=spec.na or "",
                    cols=tuple((str(base + 700 + c), col_text,
                                tuple((str(base + 700 + c * 10 + n), text) for n, text in enumerate(options, 1)))
                               for c, (col_text, options) in enumerate(spec.cols, start=1)),
                    row_types=row_types,
                ))
            pages.append(Page(str(60_000_000 + index * 100 + page_position), page_position, tuple(questions)))
        self.pages = tuple(pages)
        first_id = 11_000_000_000 + index * 100_000_000
        span = config.end_ts - config.start_ts
        self._base = BlockCache(config.seed * 131 + index, SALT_RESPONSE,
                                lambda rng, i: make_response(self, rng, i))
        self.responses = LazyCollection(
            count=config.surveymonkey_responses_per_survey, start_ts=config.start_ts, end_ts=config.end_ts,
            seed=config.seed * 131 + index, salt=SALT_RESPONSE, first_id=first_id,
            max_lag_seconds=min(3 * 86400, span // 3), make_record=self._base.get,
        )
        # Deleted responses: gone from the API (404, left out of bulk), kept here for the response_deleted event.
        self.deleted: dict[int, dict[str, Any]] = {}

    @property
    def question_count(self) -> int:
        return sum(len(page.questions) for page in self.pages)

    def base_disqualified(self, index: int) -> bool:
        return unit_interval(self._disqualified_key, _SALT_DISQUALIFIED, index) < DISQUALIFIED_SHARE

    def is_disqualified(self, response_id: int) -> bool:
        """Without building the record: an overlay record says so itself, a base record by its id."""
        override = self.responses.overrides().get(response_id)
        if override is not None:
            return override[2].get("response_status") == "disqualified"
        index = self.responses.index_of(response_id)
        return index is not None and self.base_disqualified(index)


_TOPICS_BY_KEY = {topic.key: topic for topic in TOPICS}
_ANSWER_TOPIC_KEYS = {"reporting_workflow": ("csv_export", "dashboards"), "blocker": ("onboarding", "billing", "sso"),
                      "reporting_rows": ("csv_export", "dashboards")}
_OTHER_TEXTS = {
    "features_used": ("Zapier", "Public API", "Slack app", "Excel add-in"),
    "resources": ("A friend who uses it", "YouTube", "Our account manager"),
    "plan": ("Startup programme", "Nonprofit discount", "Not sure — IT set it up"),
}
_COMMENTS = (
    "Support was quick once I reached a person.", "Reliability has been better this quarter.",
    "The weekly export is the only thing we really use.", "Hard to rate: we only started last month.",
)
# Custom variables web links carry: whatever the survey owner appended to the link.
_LINK_VARIABLES = (
    {"ref": "in-app"}, {"utm_source": "newsletter", "utm_campaign": "q4-nps"}, {"source": "help-center"},
    {"c": "7f3a"}, {"account": "", "plan": ""},
)
_COMPANY_FALLBACK = ("Freelance", "Self-employed", "")
_STREETS = ("12 Harbour Road", "4 Rue des Lilas", "221 Market St", "Keizersgracht 88", "9 Chome-3 Ginza")
_STATES = ("CA", "NY", "TX", "WA", "MA")


class SurveyMonkeyDataset:
    def __init__(self, config: EmulatorConfig, people: People, now: Callable[[], int]) -> None:
        self.config = config
        self.people = people
        self._now = now
        self.seed = config.seed
        self.surveys: dict[str, Survey] = {}
        for index in range(config.surveymonkey_surveys):
            survey = Survey(index, config, self._base_response)
            self.surveys[survey.id] = survey

    # ---- generation ---------------------------------------------------------------------------------------------

    def _base_response(self, survey: Survey, rng: random.Random, index: int) -> dict[str, Any] | None:
        if index >= survey.responses.count:
            return None
        modified, created = survey.responses.stamps(index)
        return self._build(rng, survey, survey.responses.first_id + index, created, modified,
                           disqualified=survey.base_disqualified(index))

    def _build(self, rng: random.Random, survey: Survey, response_id: int, created: int,
               modified: int, *, disqualified: bool = False) -> dict[str, Any]:
        customer = self.people.pick_customer(rng)
        via_email = rng.random() < 0.4 and customer.email is not None
        completed = rng.random() < 0.9
        score = min(10, max(0, int(rng.gauss(7.5, 2.2))))
        fills_contact = rng.random() < (0.25 if via_email else 0.55)
        pages = []
        for page in survey.pages:
            questions = []
            # A disqualified respondent stops at the screening page; a partial one after the first page.
            if page.position == 1 or (completed and not disqualified):
                for question in page.questions:
                    answers = self._answers(rng, question, score, customer, fills_contact)
                    if answers:
                        questions.append({"id": question.id, "answers": answers})
            pages.append({"id": page.id, "questions": questions})
        metadata: dict[str, Any] = {}
        if via_email:
            metadata = {"contact": {"first_name": {"type": "string", "value": customer.first_name},
                                    "last_name": {"type": "string", "value": customer.last_name},
                                    "email": {"type": "string", "value": customer.email}}}
        elif rng.random() < 0.5:
            metadata = {"contact": {}}  # a web link: SurveyMonkey knows nothing about who answered
        custom_variables: dict[str, Any] = {}
        roll = rng.random()
        if roll < 0.3:
            custom_variables = {"plan": DISPLAY_PLAN[customer.tier], "account": f"cust_{customer.index}"}
        elif roll < 0.55 and not via_email:
            custom_variables = dict(pick(rng, _LINK_VARIABLES))
        rid = str(response_id)
        status = "disqualified" if disqualified else ("completed" if completed else "partial")
        return {
            "id": rid,
            "recipient_id": str(9_000_000_000 + response_id % 1_000_000_000) if via_email else "",
            "collection_mode": "default",
            "response_status": status,
            "custom_value": "",
            "first_name": customer.first_name if via_email else "",
            "last_name": customer.last_name if via_email else "",
            "email_address": customer.email if via_email else "",
            "ip_address": f"203.0.113.{response_id % 250 + 1}",
            "logic_path": {},
            "metadata": metadata,
            "page_path": [],
            "collector_id": survey.collector_ids[1] if via_email else survey.collector_ids[0],
            "survey_id": survey.id,
            "custom_variables": custom_variables,
            "edit_url": f"https://www.surveymonkey.com/r/?sm=edit_{rid}",
            "analyze_url": f"https://www.surveymonkey.com/analyze/browse/{survey.nickname}?respondent_id={rid}",
            "total_time": max(20, modified - created) if modified > created else rng.randint(20, 900),
            "date_modified": offset_time(modified),
            "date_created": offset_time(created),
            "pages": pages,
        }

    def _answers(self, rng: random.Random, question: Question, score: int, customer: Any,
                 fills_contact: bool) -> list[dict[str, Any]]:
        family, subtype = question.family, question.subtype
        if family == "presentation":
            return []  # text and images to read: nothing to answer
        if family == "demographic":
            return self._demographic(rng, question, customer) if fills_contact else []
        if rng.random() < 0.08:
            return []  # skipped question: SurveyMonkey leaves it out
        if family == "single_choice":
            if question.purpose == "nps":
                return [{"choice_id": question.choices[score][0]}]
            if question.purpose == "plan":
                if question.other_id and rng.random() < 0.06:
                    return [{"other_id": question.other_id, "text": pick(rng, _OTHER_TEXTS["plan"])}]
                position = {"free": 0, "professional": 1, "business": 2, "enterprise": 3}[customer.tier]
                return [{"choice_id": question.choices[position][0]}]
            answers: list[dict[str, Any]] = [{"choice_id": pick(rng, question.choices)[0]}]
            if question.other_id and not question.other_is_choice and rng.random() < 0.15:
                answers.append({"other_id": question.other_id, "text": pick(rng, _COMMENTS)})
            return answers
        if family == "multiple_choice":
            if question.na_id and rng.random() < 0.05:
                return [{"choice_id": question.na_id}]
            chosen = rng.sample(question.choices, k=rng.randint(1, min(3, len(question.choices))))
            answers = [{"choice_id": choice_id} for choice_id, _ in chosen]
            if rng.random() < 0.1 and question.other_id:
                answers.append({"other_id": question.other_id,
                                "text": pick(rng, _OTHER_TEXTS.get(question.purpose, ("Something else",)))})
            return answers
        if family == "matrix":
            return self._matrix(rng, question)
        if family == "datetime":
            return [{"row_id": question.rows[0][0], "text": self._datetime_text(rng, subtype)}]
        if family == "open_ended":
            if subtype == "numerical":
                values = (str(rng.randint(1, 12)), str(rng.randint(1, 8)))
                return [{"row_id": row_id, "text": value} for (row_id, _), value in zip(question.rows, values)
                        if rng.random() < 0.9]
            if rng.random() < 0.25:
                return []
            if subtype == "multi":
                return [{"row_id": row_id, "text": self._open_text(rng, question.purpose, score, customer.first_name)}
                        for row_id, _ in question.rows if rng.random() < 0.7]
            return [{"text": self._open_text(rng, question.purpose, score, customer.first_name)}]
        return []

    def _matrix(self, rng: random.Random, question: Question) -> list[dict[str, Any]]:
        subtype = question.subtype
        answers: list[dict[str, Any]] = []
        if subtype == "ranking":
            ranks = [choice_id for choice_id, _ in question.choices]
            rng.shuffle(ranks)
            return [{"row_id": row_id, "choice_id": rank} for (row_id, _), rank in zip(question.rows, ranks)]
        for row_id, _ in question.rows:
            if rng.random() >= 0.9:
                continue
            if subtype == "menu":
                for col_id, _, options in question.cols:
                    answers.append({"row_id": row_id, "col_id": col_id, "choice_id": pick(rng, options)[0]})
            elif subtype == "multi":
                for choice_id, _ in rng.sample(question.choices, k=rng.randint(1, 2)):
                    answers.append({"row_id": row_id, "choice_id": choice_id})
            elif question.na_id and rng.random() < 0.07:
                answers.append({"row_id": row_id, "choice_id": question.na_id})
            else:
                answers.append({"row_id": row_id, "choice_id": pick(rng, question.choices)[0]})
        if question.other_id and not question.other_is_choice and rng.random() < 0.12:
            answers.append({"other_id": question.other_id, "text": pick(rng, _COMMENTS)})
        return answers

    @staticmethod
    def _datetime_text(rng: random.Random, subtype: str) -> str:
        # SurveyMonkey hands back what the respondent entered in the question's format (MM/DD/YYYY, hh:mm AM).
        date = f"{rng.randint(1, 12):02d}/{rng.randint(1, 28):02d}/{rng.choice((2025, 2026))}"
        clock = f"{rng.randint(1, 12):02d}:{rng.choice(('00', '15', '30', '45'))} {rng.choice(('AM', 'PM'))}"
        return {"date_only": date, "time_only": clock}.get(subtype, f"{date} {clock}")

    def _demographic(self, rng: random.Random, question: Question, customer: Any) -> list[dict[str, Any]]:
        company = customer.company.name if customer.company else pick(rng, _COMPANY_FALLBACK)
        values = {
            "name": customer.name, "company": company, "address": pick(rng, _STREETS), "address2": "",
            "city": customer.city, "state": pick(rng, _STATES), "zip": f"{rng.randint(10000, 99999)}",
            "country": customer.country, "email": customer.email or "",
            "phone": f"+1 555 01{rng.randint(10, 99)}",
        }
        answers = []
        for (row_id, _), kind in zip(question.rows, question.row_types):
            # People fill in name and email, often company and country, seldom the postal address.
            keep = {"name": 0.95, "email": 0.9, "company": 0.6, "country": 0.6, "city": 0.4}.get(kind, 0.15)
            value = values.get(kind, "")
            if value and rng.random() < keep:
                answers.append({"row_id": row_id, "text": value})
        return answers

    def _open_text(self, rng: random.Random, purpose: str, score: int, first_name: str) -> str:
        if purpose == "nps_reason":
            kind = "praise" if score >= 9 else ("complaint" if score <= 6 else pick(rng, ("bug", "question")))
        elif purpose in ("next_feature", "reporting_workflow"):
            kind = "feature_request"
        else:
            kind = pick(rng, ("complaint", "question", "bug"))
        keys = _ANSWER_TOPIC_KEYS.get(purpose)
        topic = _TOPICS_BY_KEY[pick(rng, keys)] if keys else None
        feedback = make_feedback(rng, first_name, "Pro", kind=kind, topic=topic)
        # Survey answers are terse: the core sentences, without greeting and sign-off.
        body = [p for p in feedback.paragraphs if "\n" not in p and not p.endswith(",")]
        return " ".join(body[:2]) or feedback.subject

    # ---- lookups ------------------------------------------------------------------------------------------------

    def survey(self, survey_id: str) -> Survey | None:
        return self.surveys.get(str(survey_id))

    def survey_ids(self) -> list[str]:
        return list(self.surveys)

    def response(self, survey_id: str, response_id: str | int) -> dict[str, Any] | None:
        survey = self.survey(survey_id)
        if survey is None:
            return None
        try:
            numeric = int(response_id)
        except (TypeError, ValueError):
            return None
        if numeric in survey.deleted:
            return None
        response = survey.responses.get(numeric)
        return copy.deepcopy(response) if response is not None else None

    def find_response(self, response_id: str | int, *, include_deleted: bool = False) -> dict[str, Any] | None:
        """A response of any survey by its id; a deleted one only when asked (its deletion event names it)."""
        try:
            numeric = int(response_id)
        except (TypeError, ValueError):
            return None
        for survey in self.surveys.values():
            if numeric in survey.deleted:
                return copy.deepcopy(survey.deleted[numeric]) if include_deleted else None
            if survey.responses.exists(numeric):
                return self.response(survey.id, numeric)
        return None

    # ---- ground truth for tests ---------------------------------------------------------------------------------

    def responses_in_range(self, survey_id: str | None = None, start: datetime | int | None = None,
                           end: datetime | int | None = None, *, include_disqualified: bool = False) -> list[str]:
        """Ids of responses created (date_created) in [start, end), of one survey or all, ascending.

        These are the responses that are feedback: deleted ones never, disqualified ones only when asked (the API
        lists them, a sync must not keep them)."""
        low = to_unix(start) if start is not None else None
        high = to_unix(end) if end is not None else None
        surveys = [self._require(survey_id)] if survey_id is not None else list(self.surveys.values())
        ids: list[int] = []
        for survey in surveys:
            ids.extend(entry[1] for entry in survey.responses.all_entries()
                       if (low is None or entry[2] >= low) and (high is None or entry[2] < high)
                       and entry[1] not in survey.deleted
                       and (include_disqualified or not survey.is_disqualified(entry[1])))
        return [str(i) for i in sorted(ids)]

    def disqualified_ids(self, survey_id: str | None = None) -> list[str]:
        """Ids of the responses the API lists as disqualified (deleted ones left out), ascending."""
        surveys = [self._require(survey_id)] if survey_id is not None else list(self.surveys.values())
        return [str(i) for i in sorted(entry[1] for survey in surveys for entry in survey.responses.all_entries()
                                       if entry[1] not in survey.deleted and survey.is_disqualified(entry[1]))]

    def _require(self, survey_id: str) -> Survey:
        survey = self.survey(survey_id)
        if survey is None:
            raise KeyError(f"no survey {survey_id}")
        return survey

    # ---- mutations ----------------------------------------------------------------------------------------------

    def add_response(self, survey_id: str, **fields: Any) -> dict[str, Any]:
        """A new response, created and modified now (or at the given date_created/date_modified)."""
        survey = self._require(survey_id)
        with survey.responses.lock:
            response_id = survey.responses.next_id()
            created = to_unix(fields["date_created"]) if "date_created" in fields else self._now()
            rng = record_rng(self.seed, SALT_ADDED, response_id)
            record = self._build(rng, survey, response_id, created, created)
            return self._store(survey, response_id, record, created, fields)

    def disqualify_response(self, survey_id: str, response_id: str | int) -> dict[str, Any]:
        """The survey owner (or a quota rule) disqualifies a response: it stays, `response_status` "disqualified"."""
        return self.update_response(survey_id, response_id, response_status="disqualified")

    def delete_response(self, survey_id: str, response_id: str | int) -> dict[str, Any]:
        """The survey owner deletes a response: from now on it answers 404 and leaves the bulk listing."""
        survey = self._require(survey_id)
        numeric = int(response_id)
        with survey.responses.lock:
            current = self.response(survey_id, numeric)
            if current is None:
                raise KeyError(f"no response {response_id} in survey {survey_id}")
            survey.deleted[numeric] = current
            survey.responses.version += 1  # cached bulk listings must not serve it again
            survey.responses.forget_matches()
        return current

    def update_response(self, survey_id: str, response_id: str | int, **fields: Any) -> dict[str, Any]:
        survey = self._require(survey_id)
        numeric = int(response_id)
        with survey.responses.lock:
            current = self.response(survey_id, numeric)
            stamps = survey.responses.timestamps(numeric)
            if current is None or stamps is None:
                raise KeyError(f"no response {response_id} in survey {survey_id}")
            return self._store(survey, numeric, current, stamps[1], fields)

    def _store(self, survey: Survey, response_id: int, record: dict[str, Any], created: int,
               fields: dict[str, Any]) -> dict[str, Any]:
        fields = dict(fields)
        modified = to_unix(fields.pop("date_modified")) if "date_modified" in fields else self._now()
        if "date_created" in fields:
            created = to_unix(fields.pop("date_created"))
        record.update(fields)
        record["date_created"] = offset_time(created)
        record["date_modified"] = offset_time(modified)
        survey.responses.put(response_id, record, modified, created)
        return record


def _parse_date(value: str, name: str) -> int:
    text = value.strip()
    if text.endswith("Z"):
        text = text[:-1] + "+00:00"
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError as error:
        raise BadRequest(f"Invalid value for {name}: expected YYYY-MM-DDTHH:MM:SS", code="1002") from error
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=timezone.utc)  # SurveyMonkey reads dates without offset as UTC
    return int(parsed.timestamp())


class SurveyMonkeyApi(VendorApi):
    vendor = "surveymonkey"

    config: EmulatorConfig
    data: SurveyMonkeyDataset

    def authenticate(self, call: Call) -> Reply | None:
        return self.check_bearer(
            call, self.config.surveymonkey_token, self.config.surveymonkey_scopeless_tokens, "/users/me"
        )

    def error(self, status: int, message: str | None = None, code: str | None = None) -> Reply:
        defaults = {
            400: ("1002", "Bad Request", "Invalid request parameters."),
            401: ("1011", "Authorization Error", "The authorization token provided was invalid."),
            403: ("1014", "Permission Error", "The scopes of the access token do not allow this request."),
            404: ("1020", "Resource Not Found", "There was an error retrieving the requested resource."),
            429: ("1040", "Rate Limit Reached", "Too many requests were made, try again later."),
            500: ("1050", "Internal Server Error", "Oh bananas! We couldn't process your request."),
            503: ("1052", "Service Unavailable", "The service is temporarily unavailable."),
        }
        error_id, name, default_message = defaults.get(
            status, ("1050" if status >= 500 else "1000", "Server Error" if status >= 500 else "Error",
                     f"HTTP {status}"))
        return Reply(status, {"error": {"id": code if code and code.isdigit() else error_id, "name": name,
                                        "docs": DOCS_URL, "message": message or default_message,
                                        "http_status_code": status}})

    def handle(self, call: Call) -> Reply:
        if call.method != "GET":
            return self.error(404)
        endpoint = call.endpoint
        if endpoint == "/users/me":
            return Reply(200, self._me(call))
        if endpoint == "/surveys":
            return self._surveys(call)
        match = re.fullmatch(r"/surveys/(\d+)(/details|/responses/bulk|/responses/(\d+)(?:/details)?)?", endpoint)
        if not match:
            return self.error(404)
        survey = self.data.survey(match.group(1))
        if survey is None:
            return self.error(404)
        if match.group(2) is None:
            return Reply(200, self._survey_summary(call, survey, with_pages=False))
        if match.group(2) == "/details":
            return Reply(200, self._survey_summary(call, survey, with_pages=True))
        if match.group(2) == "/responses/bulk":
            return self._bulk(call, survey)
        response_id = int(match.group(3))
        response = None if response_id in survey.deleted else survey.responses.get(response_id)
        if response is None:
            return self.error(404)
        return Reply(200, self._render_response(call, survey, response))

    def _me(self, call: Call) -> dict[str, Any]:
        return {
            "id": "123456789", "username": "acme_research", "first_name": "Pat", "last_name": "Morgan",
            "language": "en", "email": "pat.morgan@acmecloud.example", "email_verified": True,
            "account_type": "enterprise_platinum", "date_created": offset_time(self.config.start_ts - 800 * 86400),
            "date_last_login": offset_time(self._now()), "question_types_version": 4, "sso_connections": [],
            "href": f"{call.base_url}/users/me",
        }

    def _surveys(self, call: Call) -> Reply:
        per_page = min(int_param(call.query, "per_page", DEFAULT_PER_PAGE), MAX_SURVEYS_PER_PAGE)
        page = int_param(call.query, "page", 1)
        include = {part.strip() for part in call.query.get("include", "").split(",") if part.strip()}
        surveys = list(self.data.surveys.values())
        selected = surveys[(page - 1) * per_page: page * per_page]
        data = []
        for survey in selected:
            item: dict[str, Any] = {"id": survey.id, "title": survey.title, "nickname": survey.nickname,
                                    "href": f"{call.base_url}/surveys/{survey.id}"}
            if "response_count" in include:
                item["response_count"] = survey.responses.size
            if "date_created" in include:
                item["date_created"] = offset_time(survey.created_ts)
            if "date_modified" in include:
                item["date_modified"] = offset_time(self.config.end_ts)
            if "question_count" in include:
                item["question_count"] = survey.question_count
            data.append(item)
        return Reply(200, {"data": data, "per_page": per_page, "page": page, "total": len(surveys),
                           "links": _links(call, page, per_page, len(surveys))})

    def _survey_summary(self, call: Call, survey: Survey, with_pages: bool) -> dict[str, Any]:
        href = f"{call.base_url}/surveys/{survey.id}"
        summary: dict[str, Any] = {
            "id": survey.id, "title": survey.title, "nickname": survey.nickname, "language": "en",
            "folder_id": "0", "category": "customer_feedback", "question_count": survey.question_count,
            "page_count": len(survey.pages), "response_count": survey.responses.size,
            "date_created": offset_time(survey.created_ts)[:19], "date_modified": offset_time(self.config.end_ts)[:19],
            "is_owner": True, "footer": True, "custom_variables": {"plan": "", "account": ""},
            "href": href, "analyze_url": f"https://www.surveymonkey.com/analyze/{survey.nickname}",
            "edit_url": f"https://www.surveymonkey.com/create/?sm={survey.nickname}",
            "collect_url": f"https://www.surveymonkey.com/collect/list?sm={survey.nickname}",
            "summary_url": f"https://www.surveymonkey.com/summary/{survey.nickname}",
            "preview": f"https://www.surveymonkey.com/r/Preview/?sm={survey.nickname}",
        }
        if with_pages:
            summary["pages"] = [self._page(href, page) for page in survey.pages]
        return summary

    @staticmethod
    def _page(survey_href: str, page: Page) -> dict[str, Any]:
        page_href = f"{survey_href}/pages/{page.id}"
        questions = []
        for question in page.questions:
            answers: dict[str, Any] = {}
            if question.choices or question.na_id:
                choices = [{"id": cid, "position": n, "visible": True, "is_na": False, "text": text}
                           for n, (cid, text) in enumerate(question.choices, start=1)]
                if question.na_id:
                    choices.append({"id": question.na_id, "position": len(choices) + 1, "visible": True,
                                    "is_na": True, "text": question.na_label})
                answers["choices"] = choices
            if question.rows:
                rows = []
                for n, (rid, text) in enumerate(question.rows, start=1):
                    row: dict[str, Any] = {"id": rid, "position": n, "visible": True, "text": text}
                    if question.row_types:
                        row.update(type=question.row_types[n - 1], required=False)
                    rows.append(row)
                answers["rows"] = rows
            if question.cols:
                answers["cols"] = [
                    {"id": col_id, "position": n, "visible": True, "text": text,
                     "choices": [{"id": cid, "position": k, "visible": True, "text": label}
                                 for k, (cid, label) in enumerate(options, start=1)]}
                    for n, (col_id, text, options) in enumerate(question.cols, start=1)
                ]
            if question.other_id:
                answers["other"] = {"id": question.other_id, "visible": True,
                                    "is_answer_choice": question.other_is_choice, "apply_all_rows": False,
                                    "text": question.other, "num_chars": 50,
                                    "num_lines": 1 if question.other_is_choice else 3, "position": 0,
                                    "error_text": ""}
            heading: dict[str, Any] = {"heading": question.heading}
            if question.subtype == "image":
                heading["image"] = {"url": f"https://surveymonkey-assets.s3.amazonaws.com/survey/{question.id}.png"}
            item: dict[str, Any] = {
                "id": question.id, "position": question.position, "visible": True, "family": question.family,
                "subtype": question.subtype, "layout": None, "sorting": None, "required": None,
                "validation": None, "forced_ranking": question.subtype == "ranking",
                "headings": [heading],
                "href": f"{page_href}/questions/{question.id}",
            }
            if answers:
                item["answers"] = answers
            questions.append(item)
        return {"id": page.id, "title": "", "description": "", "position": page.position,
                "question_count": len(page.questions), "href": page_href, "questions": questions}

    def _render_response(self, call: Call, survey: Survey, response: dict[str, Any]) -> dict[str, Any]:
        return {**response, "href": f"{call.base_url}/surveys/{survey.id}/responses/{response['id']}"}

    def _bulk(self, call: Call, survey: Survey) -> Reply:
        query = call.query
        per_page = int_param(query, "per_page", DEFAULT_PER_PAGE)
        if per_page > MAX_RESPONSES_PER_PAGE:
            raise BadRequest(f"Invalid value for per_page: the maximum is {MAX_RESPONSES_PER_PAGE}", code="1002")
        page = int_param(query, "page", 1)
        bounds = {name: _parse_date(query[name], name) for name in
                  ("start_created_at", "end_created_at", "start_modified_at", "end_modified_at") if query.get(name)}
        sort_by = query.get("sort_by", "date_modified")
        sort_order = query.get("sort_order", "ASC").upper()
        if sort_by not in ("date_modified", "date_created") or sort_order not in ("ASC", "DESC"):
            raise BadRequest("Invalid value for sort_by or sort_order", code="1002")

        created_low, created_high = bounds.get("start_created_at"), bounds.get("end_created_at")
        modified_low, modified_high = bounds.get("start_modified_at"), bounds.get("end_modified_at")

        def matches(created: int, modified: int, _id: int) -> bool:
            # Start bounds are inclusive, end bounds exclusive.
            return ((created_low is None or created >= created_low) and (created_high is None or created < created_high)
                    and (modified_low is None or modified >= modified_low)
                    and (modified_high is None or modified < modified_high))

        lowers = [b for b in (created_low, modified_low) if b is not None]
        uppers = [b - 1 for b in (modified_high,) if b is not None]
        if created_high is not None:
            uppers.append(created_high - 1 + survey.responses.max_lag)
        signature = (created_low, created_high, modified_low, modified_high)
        entries = survey.responses.matching(signature, matches, max(lowers) if lowers else None,
                                            min(uppers) if uppers else None)
        if survey.deleted:
            entries = [entry for entry in entries if entry[1] not in survey.deleted]
        if sort_by == "date_created":
            entries = sorted(entries, key=lambda e: (e[2], e[1]))
        if sort_order == "DESC":
            entries = entries[::-1]
        total = len(entries)
        selected: list[Entry] = [] if call.empty_page else entries[(page - 1) * per_page: page * per_page]
        data = [self._render_response(call, survey, survey.responses.record_for(e)) for e in selected]
        links = _links(call, page, per_page, total)
        if call.empty_page:
            links["next"] = links["self"]  # the same page again: it still holds the records this one left out
        return Reply(200, {"data": data, "per_page": per_page, "page": page, "total": total, "links": links})


def _links(call: Call, page: int, per_page: int, total: int) -> dict[str, str]:
    params = [(k, v) for k, v in call.query.items() if k not in ("page", "per_page")]

    def url(number: int) -> str:
        query = urlencode(params + [("page", str(number)), ("per_page", str(per_page))])
        return f"{call.base_url}{call.endpoint}?{query}"

    last_page = max(1, math.ceil(total / per_page))
    links = {"self": url(page)}
    if page > 1:
        links["prev"] = url(min(page - 1, last_page))
    if page * per_page < total:
        links["next"] = url(page + 1)
    links["last"] = url(last_page)
    return links


# -- emulator vendor: settings, rate limits, webhooks ------------------------------------------------------------

from ...emulator.ratelimit import RateDecision, Scale, WindowLimiter  # noqa: E402
from ...emulator.vendor import EmulatorVendor, RateLimitProfile  # noqa: E402
from .emulator_webhooks import WEBHOOKS  # noqa: E402

DEMO_SURVEYMONKEY_TOKEN = "demo-surveymonkey-token"
# The app's client id and secret, which together sign deliveries.
DEMO_SURVEYMONKEY_CLIENT_ID = "demo-surveymonkey-client-id"
DEMO_SURVEYMONKEY_CLIENT_SECRET = "demo-surveymonkey-client-secret"

SETTINGS: dict[str, Any] = {
    "surveymonkey_surveys": 3,
    "surveymonkey_responses_per_survey": 250,
    "surveymonkey_token": DEMO_SURVEYMONKEY_TOKEN,
    # Tokens that authenticate but lack the read scopes (answered 403).
    "surveymonkey_scopeless_tokens": frozenset(),
    "surveymonkey_client_id": DEMO_SURVEYMONKEY_CLIENT_ID,
    "surveymonkey_client_secret": DEMO_SURVEYMONKEY_CLIENT_SECRET,
    # Requests per vendor minute and per day (see EmulatorConfig.time_scale).
    "surveymonkey_minute_limit": 120,
    "surveymonkey_day_limit": 500,
}


class SurveyMonkeyLimiter:
    def __init__(self, config: EmulatorConfig, scale: Scale) -> None:
        self.scale = scale
        self.minute = WindowLimiter(config.surveymonkey_minute_limit, scale.seconds_per_minute)
        self.day = WindowLimiter(config.surveymonkey_day_limit, scale.seconds_per_minute * 1440)

    def check(self, is_export: bool, now: float) -> RateDecision:
        blocked_by = None
        if not self.day.has_room(now):
            blocked_by = self.day
        elif not self.minute.has_room(now):
            blocked_by = self.minute
        if blocked_by is None:
            self.minute.consume(now)
            self.day.consume(now)
        headers: dict[str, str] = {}
        for name, limiter in (("Minute", self.minute), ("Day", self.day)):
            headers[f"X-Ratelimit-App-Global-{name}-Limit"] = str(limiter.limit)
            headers[f"X-Ratelimit-App-Global-{name}-Remaining"] = str(limiter.remaining(now))
            headers[f"X-Ratelimit-App-Global-{name}-Reset"] = self.scale.duration(limiter.reset_at(now) - now)
        if blocked_by is not None:
            return RateDecision(False, headers, blocked_by.reset_at(now) - now)
        return RateDecision(True, headers)


def _fixed_headers(is_export: bool, limit: str, remaining: int, reset_at: float, reset_in: float) -> dict[str, str]:
    # A 429 carries X-Ratelimit-App-Global-Minute-Reset (seconds), no Retry-After.
    return {
        "X-Ratelimit-App-Global-Minute-Limit": limit,
        "X-Ratelimit-App-Global-Minute-Remaining": str(remaining),
        "X-Ratelimit-App-Global-Minute-Reset": f"{reset_in:.2f}",
    }


VENDOR = EmulatorVendor(
    name="surveymonkey",
    dataset=SurveyMonkeyDataset,
    api=SurveyMonkeyApi,
    base_path=lambda config: "/surveymonkey/v3",
    record_count=lambda config: config.surveymonkey_surveys * config.surveymonkey_responses_per_survey // 3,
    settings=SETTINGS,
    rate_limits=RateLimitProfile(limiter=SurveyMonkeyLimiter, fixed_headers=_fixed_headers),
    webhooks=WEBHOOKS,
)
