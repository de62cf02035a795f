"""SurveyMonkey: each survey response becomes one feedback record.

The daily request budget (500 a day for private and draft apps) is what bounds a sync, so every choice here saves
requests: surveys are listed 1000 at a time, a survey's responses are asked for first (100 a page, the maximum), and
its question texts (`/details`) are fetched only when a page holds responses in range, once per survey per run.

Answers in a response are ids (question, choice, row, column); `map_response` joins them with the survey details to
get readable text, and falls back to the ids when a question or choice is gone from the survey. What the respondent
typed as feedback becomes the searchable content; every other answer (choices, ratings, rankings, numbers, dates,
contact details) is structured metadata. Disqualified responses are not feedback: a sync page carries them as
removals, and deletions arrive as webhook events (a deleted response simply vanishes from `responses/bulk`).
"""

from __future__ import annotations

import logging
import math
import os
import re
from collections.abc import AsyncIterator, Callable, Iterable, Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta, timezone
from typing import Any, Literal

import httpx
from pydantic import ValidationError

from ...models import Category, MappingError, NormalizedRecord, Removal, RemovalReason
from ...rules import Decision, Rules
from ...integrations.base import BaseIntegration, ConfigError, Page, in_range, parse_iso, register, utc_bound
from ...integrations.http import ErrorKind, HttpClient, SourceError, header_number
from ...integrations.text import html_to_text

logger = logging.getLogger("feedback_sources.sources.surveymonkey")

SOURCE = "surveymonkey"

# Each account lives in one data centre and only its own host answers for it (error 1018 otherwise).
REGION_BASE_URLS: dict[str, str] = {
    "us": "https://api.surveymonkey.com/v3",
    "eu": "https://api.eu.surveymonkey.com/v3",
    "ca": "https://api.surveymonkey.ca/v3",
}
DEFAULT_BASE_URL = REGION_BASE_URLS["us"]
BASE_URL_ENV = "SURVEYMONKEY_BASE_URL"

SURVEYS_PER_PAGE = 1000  # the API's global maximum page size
RESPONSES_PER_PAGE = 100  # the maximum for responses/bulk

# Our clock and SurveyMonkey's may disagree; the next incremental sync re-reads this much before the run started.
CLOCK_SKEW_ALLOWANCE = timedelta(minutes=5)
# The API's date filters take whole seconds; stepping back one makes the saved lower bound inclusive.
BOUNDARY_OVERLAP = timedelta(seconds=1)

SCOPE_LABELS: dict[str, str] = {
    "users_read": "View Users",
    "surveys_read": "View Surveys",
    "responses_read": "View Responses",
    "responses_read_detail": "View Response Details",
    "webhooks_read": "View Webhooks",
    "webhooks_write": "Create/Modify Webhooks",
}
REQUIRED_SCOPES = ("users_read", "surveys_read", "responses_read", "responses_read_detail")


# -- endpoints -------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Endpoint:
    """One API call: where it is, its fixed parameters, how it pages and which scope SurveyMonkey checks for it."""

    name: str
    path: str  # relative to the base URL, with {survey_id} placeholders
    params: Mapping[str, str | int]
    paging: Literal["none", "links.next"]
    scope: str
    bucket: str = "minute"

    def url(self, **ids: str) -> str:
        return self.path.format(**ids)

    def matches(self, url_path: str) -> bool:
        pattern = "[^/]+".join(re.escape(part) for part in re.split(r"\{\w+\}", self.path)) + "/?$"
        return re.search(pattern, url_path) is not None


USER_ME = Endpoint("user", "/users/me", {}, paging="none", scope="users_read")
SURVEYS = Endpoint(
    "surveys",
    "/surveys",
    # response_count lets a sync skip surveys nobody answered without spending a request on them.
    {"per_page": SURVEYS_PER_PAGE, "include": "response_count"},
    paging="links.next",
    scope="surveys_read",
)
SURVEY_DETAILS = Endpoint("survey_details", "/surveys/{survey_id}/details", {}, paging="none", scope="surveys_read")
RESPONSES_BULK = Endpoint(
    "responses",
    "/surveys/{survey_id}/responses/bulk",
    # Newest change first: a response changed while we page moves to page 1, which shifts later pages by one and
    # repeats a record instead of skipping one (oldest first would skip); the changed one itself is picked up by a
    # last look per survey at what changed while it was paged (`_changed_since`).
    {"per_page": RESPONSES_PER_PAGE, "sort_by": "date_modified", "sort_order": "DESC"},
    paging="links.next",
    scope="responses_read_detail",
)
WEBHOOKS = Endpoint("webhooks", "/webhooks", {"per_page": 1000}, paging="links.next", scope="webhooks_write")
WEBHOOK = Endpoint("webhook", "/webhooks/{webhook_id}", {}, paging="none", scope="webhooks_read")
ENDPOINTS: tuple[Endpoint, ...] = (USER_ME, SURVEYS, SURVEY_DETAILS, RESPONSES_BULK, WEBHOOKS, WEBHOOK)

WEBHOOK_NAME = "Feedback Hub"
# A SurveyMonkey webhook has one event type: one webhook each for new and changed answers, and for the two ways a
# response stops being feedback (the receiver removes it on those, without spending a request).
WEBHOOK_EVENT_TYPES = ("response_completed", "response_updated", "response_disqualified", "response_deleted")
WEBHOOK_SCOPES_HINT = (
    "In the developer portal, set the scopes View Webhooks (webhooks_read) and Create/Modify Webhooks "
    "(webhooks_write) to Required, then copy the access token again."
)
TUNNEL_HINT = (
    "SurveyMonkey calls the address from the internet, so 127.0.0.1 or a LAN address cannot work: expose the "
    "receiver's port through a tunnel (for example `cloudflared tunnel --url http://127.0.0.1:8787` or "
    "`ngrok http 8787`), check that it answers, and register the public https address it gives you."
)


def api_datetime(moment: datetime) -> str:
    """SurveyMonkey's date filter format: UTC, whole seconds, no offset."""
    return moment.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S")


def _ceil_second(moment: datetime) -> datetime:
    return moment if moment.microsecond == 0 else moment.replace(microsecond=0) + timedelta(seconds=1)


# -- rate limits -----------------------------------------------------------------------------------------------------

RATE_LIMIT_PREFIXES: dict[str, str] = {
    "minute": "X-Ratelimit-App-Global-Minute-",
    "day": "X-Ratelimit-App-Global-Day-",
}


def _seconds_until_utc_midnight(wall_now: float) -> float:
    now = datetime.fromtimestamp(wall_now, tz=timezone.utc)
    midnight = (now + timedelta(days=1)).replace(hour=0, minute=0, second=0, microsecond=0)
    return (midnight - now).total_seconds()


def _duration_text(seconds: float) -> str:
    minutes = max(1, math.ceil(seconds / 60))
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes} min" if hours else f"{minutes} min"


def read_rate_limits(response: httpx.Response, wall_now: float) -> list[tuple[str, int | None, int, float]]:
    """The minute and day windows from SurveyMonkey's headers, as (bucket, limit, remaining, seconds to reset).

    A 429 that says the day's budget is spent raises at once: the budget comes back at midnight UTC, and retrying
    until then would only hold the sync open for hours.
    """
    windows: list[tuple[str, int | None, int, float]] = []
    for bucket, prefix in RATE_LIMIT_PREFIXES.items():
        remaining = header_number(response.headers, prefix + "Remaining")
        if remaining is None:
            continue
        limit = header_number(response.headers, prefix + "Limit")
        reset = header_number(response.headers, prefix + "Reset")
        if reset is None:
            reset = 60.0 if bucket == "minute" else _seconds_until_utc_midnight(wall_now)
        windows.append((bucket, int(limit) if limit is not None else None, max(0, int(remaining)), max(0.0, reset)))
    day = next((window for window in windows if window[0] == "day"), None)
    if response.status_code == 429 and day is not None and day[2] <= 0:
        limit_text = f" ({day[1]} requests)" if day[1] is not None else ""
        raise SourceError(
            ErrorKind.rate_limited,
            f"SurveyMonkey's daily request budget{limit_text} is spent; it resets in {_duration_text(day[3])} "
            "(at midnight UTC). The next sync continues where this one stopped",
            status=429,
            hint="Private apps get 500 requests a day; SurveyMonkey sells higher limits. Sync less often meanwhile.",
            source=SOURCE,
        )
    # HttpClient waits for the latest reset it is told about after a 429; while the day still has requests left
    # the minute window is the one to wait for, not midnight.
    return [(bucket, limit, remaining, 0.0 if bucket == "day" and remaining > 0 else reset)
            for bucket, limit, remaining, reset in windows]


# -- errors ----------------------------------------------------------------------------------------------------------

AUTH_ERRORS: dict[str, str] = {
    "1010": "no access token was sent",
    "1011": "the access token was rejected",
    "1012": "the access token has expired",
    "1013": "access was revoked for this access token",
    "1052": "the SurveyMonkey user of this token was deleted",
    "1053": "the SurveyMonkey user of this token was deleted",
}


def _error_body(response: httpx.Response) -> dict[str, Any]:
    try:
        body = response.json()
    except ValueError:
        return {}
    error = body.get("error") if isinstance(body, dict) else None
    return error if isinstance(error, dict) else {}


def _endpoint_for(response: httpx.Response) -> Endpoint | None:
    try:
        path = response.request.url.path
    except RuntimeError:  # a response built without a request
        return None
    return next((endpoint for endpoint in ENDPOINTS if endpoint.matches(path)), None)


def _redact(text: str, secrets: Iterable[str]) -> str:
    for secret in secrets:
        if secret:
            text = text.replace(secret, "[redacted]")
    return text


def describe_error(response: httpx.Response, *, secrets: Iterable[str] = ()) -> SourceError:
    """Turn SurveyMonkey's `{"error": {"id", "name", "message", ...}}` into a typed error a PM can act on."""
    status = response.status_code
    error = _error_body(response)
    error_id = _text(error.get("id"))
    vendor_message = _text(error.get("message"))
    said = f" — SurveyMonkey says: {_redact(vendor_message[:300], secrets)}" if vendor_message else ""
    endpoint = _endpoint_for(response)
    scope = endpoint.scope if endpoint else None

    # A 5xx is an outage whatever error id rides along with it; only 4xx answers can mean bad credentials.
    if status == 401 or (error_id in AUTH_ERRORS and status < 500):
        kind = ErrorKind.auth
        message = AUTH_ERRORS.get(error_id or "", "the access token was rejected")
        hint = "Copy the access token again from your app's Settings in the SurveyMonkey developer portal."
    elif error_id == "1018":
        kind = ErrorKind.config
        message = "this account is hosted in another SurveyMonkey region"
        hint = "Set the region to where the account lives: us, eu (surveymonkey.eu) or ca (surveymonkey.ca)."
    elif status == 403 or error_id in {"1014", "1015", "1016", "1017"}:
        kind = ErrorKind.forbidden
        scope_text = f"`{scope}` ({SCOPE_LABELS[scope]})" if scope else "a required scope"
        if error_id == "1015":
            message = f"the account's plan does not allow {scope_text} through the API"
        elif error_id == "1016":
            message = "the token's user cannot see this survey (not owned by or shared with them)"
        elif error_id == "1017":
            message = "the account hit a SurveyMonkey quota on this resource"
        else:
            message = f"the app was not granted the {scope_text} permission"
        needed = ", ".join(f"{SCOPE_LABELS[s]} ({s})" for s in REQUIRED_SCOPES)
        hint = f"In the developer portal, set these scopes to Required: {needed}; then copy the access token again."
    elif status == 404 and not error:
        # Not SurveyMonkey's own error body: the address is wrong, not a survey gone (which a sync steps over).
        kind = ErrorKind.bad_response
        message = "the base URL did not answer like SurveyMonkey's API"
        hint = "Check the base URL or region setting: the address should end in /v3."
    elif status == 404:
        kind = ErrorKind.not_found
        message = "SurveyMonkey did not find this resource"
        hint = "The survey may have been deleted; check the base URL or region setting otherwise."
    elif status == 429:
        kind = ErrorKind.rate_limited
        message = "SurveyMonkey kept refusing requests over its per-minute limit"
        hint = "Wait a minute and sync again."
    elif status >= 500:
        kind = ErrorKind.server
        message = "SurveyMonkey's server kept failing"
        hint = "Try again later, or check status.surveymonkey.com."
    else:
        kind = ErrorKind.client
        message = "SurveyMonkey refused the request"
        hint = "Check the configuration; the message above says what SurveyMonkey did not accept."
    return SourceError(kind, message + said, status=status, hint=hint, source=SOURCE)


# -- pure helpers for vendor JSON ------------------------------------------------------------------------------------


def _text(value: Any) -> str | None:
    """A non-empty string, or an id given as a number; anything else is absent."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return str(value)
    if isinstance(value, str):
        value = value.strip()
        return value or None
    return None


def _dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


def heading_text(value: str) -> str:
    """SurveyMonkey's rich-text headings and choices as text: one line per line, runs of spaces folded."""
    lines = (" ".join(line.split()) for line in html_to_text(value).splitlines())
    return "\n".join(line for line in lines if line)


def _label(value: Any) -> str | None:
    raw = value if isinstance(value, str) else None
    return (heading_text(raw) or None) if raw else None


# -- survey details --------------------------------------------------------------------------------------------------

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


@dataclass(frozen=True)
class SurveyIndex:
    """Survey details (`GET /surveys/{id}/details`) indexed by question id."""

    title: str | None
    questions: dict[str, Question]

    @classmethod
    def from_details(cls, details: Any) -> SurveyIndex:
        details = _dict(details)
        questions: dict[str, Question] = {}
        for page in _list(details.get("pages")):
            for question in _list(_dict(page).get("questions")):
                question = _dict(question)
                question_id = _text(question.get("id"))
                if question_id is None:
                    continue
                heading = next(
                    (text for h in _list(question.get("headings")) if (text := _label(_dict(h).get("heading")))),
                    None,
                )
                answers = _dict(question.get("answers"))
                other = answers.get("other")
                cols = {}
                for col in _list(answers.get("cols")):
                    col = _dict(col)
                    col_id = _text(col.get("id"))
                    if col_id is not None:
                        cols[col_id] = (_label(col.get("text")) or "", _options(col.get("choices")))
                choices = _list(answers.get("choices"))
                questions[question_id] = Question(
                    id=question_id,
                    heading=heading,
                    family=_text(question.get("family")),
                    subtype=_text(question.get("subtype")),
                    choices=_options(choices),
                    na_choices=frozenset(
                        cid for c in choices if _dict(c).get("is_na") is True and (cid := _text(_dict(c).get("id")))
                    ),
                    rows=_options(answers.get("rows")),
                    row_types={
                        rid: kind.lower()
                        for r in _list(answers.get("rows"))
                        if (rid := _text(_dict(r).get("id"))) and (kind := _text(_dict(r).get("type")))
                    },
                    cols=cols,
                    others=_options(other if isinstance(other, list) else [other]),
                    comment_ids=frozenset(
                        oid for o in (other if isinstance(other, list) else [other])
                        if _dict(o).get("is_answer_choice") is False and (oid := _text(_dict(o).get("id")))
                    ),
                )
        return cls(title=_label(details.get("title")), questions=questions)


def _options(items: Any) -> dict[str, str]:
    options: dict[str, str] = {}
    for item in _list(items):
        item = _dict(item)
        option_id = _text(item.get("id"))
        if option_id is not None:
            options[option_id] = _label(item.get("text")) or ""
    return options


# -- mapping ---------------------------------------------------------------------------------------------------------

# A 0–10 choice reads "9" or "9 - Very likely"; a typed score must be the bare number.
_SCORE = re.compile(r"^\s*(10|[0-9])(?![0-9])")
_WHOLE_NUMBER = re.compile(r"^[+-]?\d{1,15}$")
_DECIMAL = re.compile(r"^[+-]?\d{0,15}[.,]\d{1,10}$")
_NPS_HEADING = re.compile(r"recommend", re.IGNORECASE)
_PLAN_HEADING = re.compile(r"\b(plan|tier|subscription)\b", re.IGNORECASE)
TIER_KEYS = ("plan", "tier")

# Families whose typed answers are data (numbers, dates, contact details), not the customer's feedback.
_STRUCTURED_TEXT_FAMILIES = frozenset({"datetime", "demographic"})
DISQUALIFIED = "disqualified"


def response_created_at(response: Any) -> datetime | None:
    """When the respondent started, in UTC (falls back to the last change when the start is missing)."""
    response = _dict(response)
    for key in ("date_created", "date_modified"):
        raw = response.get(key)
        moment = parse_iso(raw) if isinstance(raw, str) else None
        if moment is not None:
            return moment
    return None


def response_modified_at(response: Any) -> datetime | None:
    raw = _dict(response).get("date_modified")
    return parse_iso(raw) if isinstance(raw, str) else None


def is_disqualified(response: Any) -> bool:
    """A respondent screened out by the survey's logic: their answers are not feedback."""
    return _text(_dict(response).get("response_status")) == DISQUALIFIED


def response_removal(
    response: Any, *, reason: RemovalReason = RemovalReason.disqualified, at: datetime | None = None
) -> Removal | None:
    """The removal a disqualified (or deleted) response stands for; None without a usable id or time. Pure.

    A response is disqualified by its last change, so `date_modified` is when it stopped being feedback; an event's
    own time is passed as `at`. The store's tombstone then refuses any version changed at or before that moment."""
    response = _dict(response)
    response_id = _text(response.get("id"))
    when = at or response_modified_at(response) or response_created_at(response)
    if response_id is None or when is None:
        return None
    return Removal(source=SOURCE, source_id=response_id, reason=reason, removed_at=when)


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
class _Answers:
    values: dict[str, Any] = field(default_factory=dict)  # question heading → the structured answer
    blocks: list[tuple[str, list[str]]] = field(default_factory=list)  # (heading, lines) of free text
    nps: tuple[int, str] | None = None  # (score, question heading)
    plan: tuple[str, str] | None = None  # (question heading, chosen text) of a "Which plan are you on?" question
    email: str | None = None  # a demographic email answer
    name: str | None = None  # a demographic name answer


def _key(values: dict[str, Any], heading: str, question_id: str) -> str:
    # Two questions may share a heading ("Any other comments?" on two pages): the second one names its id.
    return heading if heading not in values else f"{heading} ({question_id})"


def _collect_answers(response: dict[str, Any], index: SurveyIndex) -> _Answers:
    collected = _Answers()
    for page in _list(response.get("pages")):
        for question in _list(_dict(page).get("questions")):
            question = _dict(question)
            question_id = _text(question.get("id"))
            if question_id is None:
                continue
            known = index.questions.get(question_id) or Question(id=question_id, heading=None, family=None)
            answers = [_dict(answer) for answer in _list(question.get("answers"))]
            _collect_question(collected, known, answers)
    return collected


def _row_label(question: Question, row_id: str) -> str:
    return _plain_label(question.rows.get(row_id)) or f"row {row_id}"


def _collect_question(collected: _Answers, question: Question, answers: list[dict[str, Any]]) -> None:
    """One question's answers: typed feedback to `blocks`, everything else as data to `values`."""
    heading = question.heading or f"question {question.id}"
    family = question.family
    free_text: list[str] = []
    other_choice: str | None = None  # what was typed into an "Other (please specify)" answer choice
    chosen: list[Any] = []  # choice values, for single/multiple choice and unknown questions
    by_row: dict[str, Any] = {}  # row label → value, for matrices, numerical boxes, dates, demographics
    multi_row = family == "matrix" and question.subtype == "multi"

    for answer in answers:
        row_id, col_id = _text(answer.get("row_id")), _text(answer.get("col_id"))
        choice_id, other_id = _text(answer.get("choice_id")), _text(answer.get("other_id"))
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
        candidates.append((key, _text(value)))
    if plan is not None:
        heading, chosen = plan
        candidates.append((f"answer to `{heading}`:", chosen))
    return candidates


def _custom_variables(raw: Any) -> dict[str, str]:
    """The survey link's custom variables as strings (they are whatever the link carried: ?ref=..&account=..)."""
    found: dict[str, str] = {}
    for key, value in _dict(raw).items():
        if not isinstance(key, str) or not key.strip():
            continue
        if isinstance(value, bool) or value is None or isinstance(value, (dict, list)):
            continue
        text = str(value).strip()
        if text:
            found[key.strip()] = text
    return found


def _identity(response: dict[str, Any], answers: _Answers) -> tuple[str | None, str | None, str | None]:
    """(customer_id, email, name): the collector's contact first, then what the respondent typed in a demographic
    question. Web-link collectors know nobody: `metadata` is `{}` or `{"contact": {}}` and the names are ""."""
    contact = _dict(_dict(response.get("metadata")).get("contact"))
    email = (
        _text(_dict(contact.get("email")).get("value"))
        or _text(response.get("email_address"))
        or answers.email
    )
    first = _text(response.get("first_name")) or _text(_dict(contact.get("first_name")).get("value"))
    last = _text(response.get("last_name")) or _text(_dict(contact.get("last_name")).get("value"))
    name = " ".join(part for part in (first, last) if part) or answers.name
    recipient_id = _text(response.get("recipient_id"))
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
    response_id = _text(response.get("id"))
    if response_id is None:
        raise MappingError(SOURCE, "response without an id")
    if is_disqualified(response):
        raise MappingError(SOURCE, f"response {response_id} was disqualified: it is not feedback")
    created_at = response_created_at(response)
    if created_at is None:
        raise MappingError(SOURCE, f"response {response_id} has no valid date_created")
    updated_at = response_modified_at(response) or created_at

    index = details if isinstance(details, SurveyIndex) else SurveyIndex.from_details(details)
    answers = _collect_answers(response, index)
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
            title=_text(survey_title) or index.title,
            content=content,
            customer_id=customer_id,
            customer_email=email,
            customer_name=name,
            customer_tier=tier.value,
            category=category.value,
            created_at=created_at,
            metadata={
                "survey_id": _text(response.get("survey_id")),
                "collector_id": _text(response.get("collector_id")),
                "response_status": _text(response.get("response_status")),
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


# -- cursor ----------------------------------------------------------------------------------------------------------

_CURSOR_DATES = ("modified_after", "created_start", "created_end", "high_water", "pass_started_at")
_CURSOR_KEYS = frozenset({*_CURSOR_DATES, "surveys", "survey_id", "page"})


def _bad_cursor(reason: str) -> SourceError:
    return SourceError(
        ErrorKind.client,
        f"the saved SurveyMonkey sync position is not valid ({reason})",
        hint="Reset this source's sync position to run a full sync.",
        source=SOURCE,
    )


@dataclass(frozen=True)
class SyncCursor:
    """Where a sync stands. A pass walks every survey's responses; between passes only `modified_after` is set.

    - `modified_after`: responses changed at or after this (UTC) are fetched (`start_modified_at`).
    - `created_start`/`created_end`: the created-at window sent to the API for the pass in progress; page numbers
      only mean something under the same filters, so a resumed pass keeps them.
    - `survey_id`/`page`: the next page to fetch; `surveys`: the survey ids still to visit after it.
    - `high_water`: the latest `date_modified` seen in this pass; `pass_started_at`: our clock when it began.
    """

    modified_after: datetime | None = None
    created_start: datetime | None = None
    created_end: datetime | None = None
    surveys: tuple[str, ...] = ()
    survey_id: str | None = None
    page: int | None = None
    high_water: datetime | None = None
    pass_started_at: datetime | None = None

    @property
    def in_pass(self) -> bool:
        return self.survey_id is not None

    @classmethod
    def parse(cls, cursor: Any) -> SyncCursor:
        if cursor is None:
            return cls()
        if not isinstance(cursor, dict):
            raise _bad_cursor(f"expected an object, got {type(cursor).__name__}")
        unknown = sorted(str(key) for key in cursor if key not in _CURSOR_KEYS)
        if unknown:
            raise _bad_cursor(f"unknown keys {', '.join(unknown)}")
        dates: dict[str, datetime | None] = {}
        for key in _CURSOR_DATES:
            raw = cursor.get(key)
            if raw is None:
                dates[key] = None
                continue
            moment = parse_iso(raw) if isinstance(raw, str) else None
            if moment is None:
                raise _bad_cursor(f"`{key}` is not an ISO 8601 date")
            dates[key] = moment
        surveys = cursor.get("surveys") or []
        if not isinstance(surveys, list) or not all(isinstance(s, str) and s for s in surveys):
            raise _bad_cursor("`surveys` must be a list of survey ids")
        survey_id, page = cursor.get("survey_id"), cursor.get("page")
        if survey_id is not None and not (isinstance(survey_id, str) and survey_id):
            raise _bad_cursor("`survey_id` must be a survey id")
        if page is not None and (isinstance(page, bool) or not isinstance(page, int) or page < 1):
            raise _bad_cursor("`page` must be a positive page number")
        if survey_id is None and (surveys or page is not None):
            raise _bad_cursor("surveys are pending but no current survey is named")
        if survey_id is not None and page is None:
            raise _bad_cursor("`page` is missing for the current survey")
        return cls(surveys=tuple(surveys), survey_id=survey_id, page=page, **dates)

    def to_json(self) -> dict[str, Any]:
        def iso(moment: datetime | None) -> str | None:
            return moment.isoformat() if moment is not None else None

        return {
            "modified_after": iso(self.modified_after),
            "created_start": iso(self.created_start),
            "created_end": iso(self.created_end),
            "surveys": list(self.surveys),
            "survey_id": self.survey_id,
            "page": self.page,
            "high_water": iso(self.high_water),
            "pass_started_at": iso(self.pass_started_at),
        }

    def seen(self, moments: Iterable[datetime]) -> SyncCursor:
        latest = max(moments, default=None)
        if latest is None or (self.high_water is not None and latest <= self.high_water):
            return self
        return replace(self, high_water=latest)

    def at_page(self, page: int) -> SyncCursor:
        return replace(self, page=page)

    def next_survey(self) -> SyncCursor:
        if self.surveys:
            return replace(self, survey_id=self.surveys[0], surveys=self.surveys[1:], page=1)
        return self.finished()

    def finished(self) -> SyncCursor:
        """The pass is done: the next sync asks for what changed since, overlapping the boundary by a second.

        The saved point is capped at the pass's start (less the clock allowance): a response answered in a survey
        already visited would otherwise hide behind a later `date_modified` seen in another survey.
        """
        watermark = self.modified_after
        if self.high_water is not None:
            ceiling = self.high_water
            if self.pass_started_at is not None:
                ceiling = min(ceiling, self.pass_started_at - CLOCK_SKEW_ALLOWANCE)
            candidate = (ceiling - BOUNDARY_OVERLAP).replace(microsecond=0)
            watermark = candidate if watermark is None else max(watermark, candidate)
        return SyncCursor(modified_after=watermark)


# -- the integration -------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class SurveyListing:
    id: str
    title: str | None
    response_count: int | None


# Pages that bring nothing new in a row (an empty page, or `links.next` pointing back) before the sync gives up.
MAX_STALLED_PAGES = 5


def next_page_number(body: dict[str, Any], current: int) -> int | None:
    """The page `links.next` points to (None on the last page); page + 1 when the link names no page."""
    link = _text(_dict(body.get("links")).get("next"))
    if link is None:
        return None
    try:
        number = int(httpx.URL(link).params.get("page", ""))
    except (ValueError, httpx.InvalidURL):
        return current + 1
    return number if number >= 1 else current + 1


class _StallGuard:
    """Follows `links.next` even when it brings nothing new, but not forever."""

    def __init__(self, what: str) -> None:
        self.what = what
        self.stalled = 0

    def check(self, page: int, next_page: int, had_data: bool) -> None:
        self.stalled = self.stalled + 1 if (not had_data or next_page <= page) else 0
        if self.stalled > MAX_STALLED_PAGES:
            raise SourceError(
                ErrorKind.bad_response,
                f"SurveyMonkey kept answering {self.what} page {page} without moving on",
                hint="Try again later; if it persists, the survey's responses cannot be paged right now.",
                source=SOURCE,
            )


@register
class SurveyMonkeyIntegration(BaseIntegration):
    """Survey responses from SurveyMonkey (API v3) with a private app's access token."""

    name = SOURCE
    display_name = "SurveyMonkey"
    required_fields = ("access_token",)
    optional_fields = ("base_url", "region")
    max_concurrency = 1  # one request at a time: the daily budget, not latency, bounds a sync

    def __init__(self, config: dict[str, Any], *, clock: Callable[[], datetime] | None = None, **kwargs: Any):
        super().__init__(config, **kwargs)
        region = self.config.get("region") or "us"
        if not isinstance(region, str) or region.lower() not in REGION_BASE_URLS:
            raise ConfigError(self.name, ["region"], f"{self.name}: region must be one of us, eu, ca")
        self.region = region.lower()
        self._clock = clock or (lambda: datetime.now(timezone.utc))

    @property
    def base_url(self) -> str:
        return self.config.get("base_url") or os.environ.get(BASE_URL_ENV) or REGION_BASE_URLS[self.region]

    def client(self) -> HttpClient:
        token = self.config["access_token"]
        return self._http_client(
            base_url=self.base_url,
            headers={"Authorization": f"Bearer {token}", "Accept": "application/json"},
            rate_limit_reader=read_rate_limits,
            describe_error=lambda response: describe_error(response, secrets=(token,)),
        )

    async def _connection_probe(self, client: HttpClient) -> tuple[str, dict[str, Any]]:
        body = await client.get_json(USER_ME.url(), bucket=USER_ME.bucket)
        body = _dict(body)
        username, email = _text(body.get("username")), _text(body.get("email"))
        if username is None and email is None:
            raise SourceError(
                ErrorKind.bad_response,
                "users/me answered without a username or email",
                hint="Check the base URL: it should end in /v3.",
                source=self.name,
            )
        # users/me answers for any valid token; a sync also needs the survey and response scopes, so try them now
        # (two small requests) rather than failing halfway through the first sync.
        surveys = _dict(await client.get_json(SURVEYS.url(), params={"per_page": 1}, bucket=SURVEYS.bucket))
        first = next((item for item in surveys.get("data") or [] if isinstance(item, dict) and item.get("id")), None)
        if first is not None:
            await client.get_json(
                RESPONSES_BULK.url(survey_id=str(first["id"])), params={"per_page": 1}, bucket=RESPONSES_BULK.bucket
            )
        details = {
            "username": username,
            "email": email,
            "surveys": surveys.get("total"),
            "account_type": _text(body.get("account_type")),
            "rate_limit": dict(client.stats.rate_limit),
            "day_requests_remaining": client.stats.rate_limit.get("day", {}).get("remaining"),
        }
        return username or email or "", details

    async def iter_pages(
        self,
        start: datetime | None = None,
        end: datetime | None = None,
        cursor: dict[str, Any] | None = None,
    ) -> AsyncIterator[Page]:
        state = SyncCursor.parse(cursor)
        start, end = utc_bound(start), utc_bound(end)
        async with self.client() as client:
            try:
                async for page in self._pages(client, state, start, end):
                    self.last_stats = client.stats.as_dict()
                    yield page
            finally:
                self.last_stats = client.stats.as_dict()

    async def _pages(
        self, client: HttpClient, state: SyncCursor, start: datetime | None, end: datetime | None
    ) -> AsyncIterator[Page]:
        titles: dict[str, str | None] = {}
        if not state.in_pass:
            surveys = await self._list_surveys(client)
            titles = {survey.id: survey.title for survey in surveys}
            # A survey nobody answered cannot hold responses in any range: no request spent on it.
            pending = tuple(survey.id for survey in surveys if survey.response_count != 0)
            state = replace(
                state,
                created_start=start,
                created_end=end,
                surveys=pending,
                high_water=None,
                pass_started_at=self._clock(),
            ).next_survey()
            if not state.in_pass:
                yield Page([], state.to_json(), vendor_total=0)
                return

        details_cache: dict[str, SurveyIndex | None] = {}
        totals: dict[str, int] = {}
        # The API's totals count disqualified responses; the vendor total a PM compares with the store must not.
        disqualified: dict[str, set[str]] = {}
        survey_started: dict[str, datetime] = {}
        guard = _StallGuard(f"survey {state.survey_id} responses")
        while state.in_pass:
            survey_id, page_number = state.survey_id, state.page
            assert survey_id is not None and page_number is not None
            survey_started.setdefault(survey_id, self._clock() if page_number == 1 else state.pass_started_at or self._clock())
            body = await self._responses_page(client, state)
            data = _list(body.get("data"))
            following = next_page_number(body, page_number)
            if following is None and body:
                # Pages run newest change first, so a response changed while we paged jumped to a page already read.
                # One look at what changed since this survey began picks it up before the survey counts as done.
                data = data + await self._changed_since(client, state, survey_started[survey_id])
            total = body.get("total")
            if isinstance(total, int) and not isinstance(total, bool):
                totals[survey_id] = total
            state = state.seen(m for m in map(response_modified_at, data) if m is not None)
            in_range_responses = [
                response for response in data
                if (created := response_created_at(response)) is None or in_range(created, start, end)
            ]
            # A disqualified response is not feedback: it leaves the store (whatever its date, it may have been
            # stored as completed before) and costs no details request.
            removals: list[Removal] = []
            for response in data:
                if is_disqualified(response) and (removal := response_removal(response)) is not None:
                    removals.append(removal)
                    if (created := response_created_at(response)) is None or in_range(created, start, end):
                        disqualified.setdefault(survey_id, set()).add(removal.source_id)
            feedback = [response for response in in_range_responses if not is_disqualified(response)]
            records = []
            if feedback:
                if survey_id not in details_cache:
                    details_cache[survey_id] = await self._details(client, survey_id)
                index = details_cache[survey_id] or SurveyIndex(title=None, questions={})
                records = self._map_all(feedback, index, titles.get(survey_id) or index.title)
            if following is None:
                state = state.next_survey()
                guard = _StallGuard(f"survey {state.survey_id} responses")
            else:
                guard.check(page_number, following, bool(data))
                state = state.at_page(following)
            vendor_total = sum(max(0, total - len(disqualified.get(sid, ()))) for sid, total in totals.items())
            yield Page(records, state.to_json(), vendor_total=vendor_total, removals=removals)

    def _map_all(self, responses: list[Any], index: SurveyIndex, title: str | None) -> list[NormalizedRecord]:
        records = []
        for response in responses:
            try:
                records.append(map_response(response, index, rules=self.rules, survey_title=title))
            except MappingError as error:
                logger.warning("skipping a SurveyMonkey response that cannot be mapped: %s", error)
        return records

    async def register_webhook(self, url: str) -> bool:
        """Make SurveyMonkey announce every response event of every survey to `url`; True on success.

        SurveyMonkey webhooks have one event type each: one per type in `WEBHOOK_EVENT_TYPES` (completed, updated,
        disqualified, deleted) covers all surveys, listed 1000 to a page. A Feedback Hub webhook that already sends
        that event to `url` for all of them is kept as is; one that covers fewer surveys (some were added since) is
        replaced by the new one once that exists. SurveyMonkey first checks the address with a HEAD
        request: when that fails the SourceError says to expose the receiver through a tunnel. Deliveries are
        signed with the app's client id and secret, which the receiver needs (SURVEYMONKEY_CLIENT_ID/_SECRET).
        """
        if not isinstance(url, str) or httpx.URL(url).scheme not in ("http", "https") or not httpx.URL(url).host:
            raise SourceError(
                ErrorKind.config,
                f"{url!r} is not a web address SurveyMonkey can post to",
                source=self.name,
                hint="Give the receiver's full public address, e.g. https://feedback-hooks.example.com/webhooks/"
                "surveymonkey.",
            )
        try:
            return await self._register_webhook(url)
        except SourceError as error:
            if error.kind is ErrorKind.forbidden and error.status != 400:
                error.hint = WEBHOOK_SCOPES_HINT
            raise

    async def _register_webhook(self, url: str) -> bool:
        async with self.client() as client:
            survey_ids = [survey.id for survey in await self._list_surveys(client)]
            if not survey_ids:
                raise SourceError(
                    ErrorKind.client,
                    "this account has no surveys to subscribe to yet",
                    source=self.name,
                    hint="Create a survey, then register the webhook again.",
                )
            ours = await self._webhooks_to(client, url)
            for event_type in WEBHOOK_EVENT_TYPES:
                await self._register_event(client, url, event_type, survey_ids, ours.get(event_type, {}))
        return True

    async def _register_event(
        self, client: HttpClient, url: str, event_type: str, survey_ids: list[str], ours: dict[str, list[str]]
    ) -> None:
        if any(set(survey_ids) <= set(covered) for covered in ours.values()):
            return
        payload = {
            "name": WEBHOOK_NAME,
            "event_type": event_type,
            "object_type": "survey",
            "object_ids": survey_ids,
            "subscription_url": url,
        }
        try:
            await client.get_json(WEBHOOKS.path, method="POST", json_body=payload, bucket=WEBHOOKS.bucket)
        except SourceError as error:
            if error.status == 400:
                # describe_error words it "SurveyMonkey refused the request — SurveyMonkey says: ...".
                said = error.message.partition(" — ")[2]
                raise SourceError(
                    ErrorKind.client,
                    f"SurveyMonkey refused the webhook for {url}: before accepting one it checks that the "
                    f"address answers a HEAD request with 200{f' ({said})' if said else ''}",
                    status=400,
                    source=self.name,
                    hint=TUNNEL_HINT,
                ) from None
            raise
        for stale in ours:
            # Its surveys are all in the new webhook: keeping it would announce each response twice.
            try:
                await client.request("DELETE", WEBHOOK.url(webhook_id=stale), bucket=WEBHOOK.bucket)
            except SourceError as error:
                logger.warning("could not remove the older SurveyMonkey webhook %s: %s", stale, error)

    async def _webhooks_to(self, client: HttpClient, url: str) -> dict[str, dict[str, list[str]]]:
        """Our webhooks that already send response events to `url`: event type → id → the survey ids covered."""
        found: dict[str, dict[str, list[str]]] = {}
        guard = _StallGuard("the webhook list")
        page = 1
        while True:
            body = _dict(await client.get_json(WEBHOOKS.path, params={**WEBHOOKS.params, "page": page},
                                               bucket=WEBHOOKS.bucket))
            data = _list(body.get("data"))
            for item in data:
                item = _dict(item)
                webhook_id = _text(item.get("id"))
                # The list shows names only: details are read for our own webhooks, not for every one.
                if webhook_id is None or _text(item.get("name")) != WEBHOOK_NAME:
                    continue
                details = _dict(await client.get_json(WEBHOOK.url(webhook_id=webhook_id), bucket=WEBHOOK.bucket))
                event_type = details.get("event_type")
                if (
                    details.get("subscription_url") == url
                    and event_type in WEBHOOK_EVENT_TYPES
                    and details.get("object_type") == "survey"
                ):
                    found.setdefault(event_type, {})[webhook_id] = [str(i) for i in _list(details.get("object_ids"))]
            following = next_page_number(body, page)
            if following is None:
                return found
            guard.check(page, following, bool(data))
            page = following

    async def _list_surveys(self, client: HttpClient) -> list[SurveyListing]:
        surveys: list[SurveyListing] = []
        seen: set[str] = set()
        guard = _StallGuard("the survey list")
        page = 1
        while True:
            params = {**SURVEYS.params, "page": page}
            body = _dict(await client.get_json(SURVEYS.url(), params=params, bucket=SURVEYS.bucket))
            data = _list(body.get("data"))
            for item in data:
                item = _dict(item)
                survey_id = _text(item.get("id"))
                if survey_id is None or survey_id in seen:
                    continue
                seen.add(survey_id)
                count = item.get("response_count")
                surveys.append(
                    SurveyListing(
                        id=survey_id,
                        title=_label(item.get("title")) or _label(item.get("nickname")),
                        response_count=count if isinstance(count, int) and not isinstance(count, bool) else None,
                    )
                )
            following = next_page_number(body, page)
            if following is None:
                return surveys
            guard.check(page, following, bool(data))
            page = following

    async def _responses_page(self, client: HttpClient, state: SyncCursor) -> dict[str, Any]:
        assert state.survey_id is not None and state.page is not None
        params: dict[str, Any] = {**RESPONSES_BULK.params, "page": state.page}
        if state.modified_after is not None:
            params["start_modified_at"] = api_datetime(state.modified_after)
        if state.created_start is not None:
            params["start_created_at"] = api_datetime(state.created_start)
        if state.created_end is not None:
            params["end_created_at"] = api_datetime(_ceil_second(state.created_end))
        try:
            body = await client.get_json(RESPONSES_BULK.url(survey_id=state.survey_id), params=params,
                                         bucket=RESPONSES_BULK.bucket)
        except SourceError as error:
            if error.kind != ErrorKind.not_found:
                raise
            logger.info("survey %s is gone; moving on", state.survey_id)
            return {}
        return _dict(body)

    async def _changed_since(self, client: HttpClient, state: SyncCursor, began: datetime) -> list[Any]:
        since = began - CLOCK_SKEW_ALLOWANCE
        if state.modified_after is not None and state.modified_after > since:
            since = state.modified_after
        changed: list[Any] = []
        page: int | None = 1
        guard = _StallGuard(f"survey {state.survey_id} recent changes")
        while page is not None:
            body = await self._responses_page(client, replace(state, modified_after=since, page=page))
            data = _list(body.get("data"))
            changed.extend(data)
            following = next_page_number(body, page)
            if following is not None:
                guard.check(page, following, bool(data))
            page = following
        return changed

    async def _details(self, client: HttpClient, survey_id: str) -> SurveyIndex | None:
        try:
            body = await client.get_json(SURVEY_DETAILS.url(survey_id=survey_id), bucket=SURVEY_DETAILS.bucket)
        except SourceError as error:
            if error.kind != ErrorKind.not_found:
                raise
            logger.info("details of survey %s are gone; answers keep their ids", survey_id)
            return None
        return SurveyIndex.from_details(body)
