"""The vendor API emulator: wire formats, paging, auth, rate limits, faults, mutations, determinism and scale."""

from __future__ import annotations

import asyncio
import base64
import json
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta, timezone
from email.utils import parsedate_to_datetime
from typing import Any

import httpx
import pytest

from feedback_sources.emulator import ConnectionDropped, Emulator, EmulatorConfig, create_app, run_emulator_server
from feedback_sources.sources.intercom.emulator import DEMO_INTERCOM_TOKEN
from feedback_sources.sources.surveymonkey.emulator import DEMO_SURVEYMONKEY_TOKEN
from feedback_sources.sources.zendesk.emulator import DEMO_ZENDESK_EMAIL, DEMO_ZENDESK_SUBDOMAIN, DEMO_ZENDESK_TOKEN

START = datetime(2024, 1, 1, tzinfo=timezone.utc)
END = datetime(2024, 3, 1, tzinfo=timezone.utc)
START_TS = int(START.timestamp())
END_TS = int(END.timestamp())
EXPORT = "/api/v2/incremental/tickets/cursor.json"
SEARCH = "/conversations/search"
UPDATED_ASC = {"field": "updated_at", "order": "ascending"}


def small_config(**overrides: Any) -> EmulatorConfig:
    values: dict[str, Any] = dict(seed=7, zendesk_tickets=260, intercom_conversations=140, surveymonkey_surveys=3,
                                  surveymonkey_responses_per_survey=130, start=START, end=END)
    values.update(overrides)
    return EmulatorConfig(**values)


def zendesk_auth(email: str = DEMO_ZENDESK_EMAIL, token: str = DEMO_ZENDESK_TOKEN) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"{email}/token:{token}".encode()).decode()}


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


@contextmanager
def clients(emulator: Emulator) -> Iterator[dict[str, httpx.Client]]:
    """One authenticated client per vendor, talking to `emulator` over real HTTP on 127.0.0.1."""
    with run_emulator_server(emulator) as root:
        urls = emulator.base_urls(root)
        with httpx.Client(base_url=urls["zendesk"], headers=zendesk_auth(), timeout=5) as zendesk, \
                httpx.Client(base_url=urls["intercom"], headers=bearer(DEMO_INTERCOM_TOKEN), timeout=5) as intercom, \
                httpx.Client(base_url=urls["surveymonkey"], headers=bearer(DEMO_SURVEYMONKEY_TOKEN),
                             timeout=5) as surveymonkey:
            yield {"root": httpx.Client(base_url=root, timeout=5), "zendesk": zendesk, "intercom": intercom,
                   "surveymonkey": surveymonkey}


@pytest.fixture
def emulator() -> Emulator:
    return Emulator(small_config())


@pytest.fixture
def http(emulator: Emulator) -> Iterator[dict[str, httpx.Client]]:
    with clients(emulator) as vendor_clients:
        yield vendor_clients


def export_pages(client: httpx.Client, **params: Any) -> list[dict[str, Any]]:
    """Every page of the incremental export, following after_url until end_of_stream."""
    response = client.get(EXPORT, params={"start_time": START_TS, **params})
    pages = []
    while True:
        assert response.status_code == 200, response.text
        page = response.json()
        pages.append(page)
        if page["end_of_stream"]:
            return pages
        response = client.get(page["after_url"])


def search_pages(client: httpx.Client, query: dict[str, Any], per_page: int = 50) -> list[dict[str, Any]]:
    pagination: dict[str, Any] = {"per_page": per_page}
    pages = []
    while True:
        response = client.post(SEARCH, json={"query": query, "pagination": pagination, "sort": UPDATED_ASC})
        assert response.status_code == 200, response.text
        page = response.json()
        pages.append(page)
        following = page["pages"].get("next")
        if following is None:
            return pages
        pagination = {"per_page": per_page, "starting_after": following["starting_after"]}


def response_pages(client: httpx.Client, survey_id: str, **params: Any) -> list[dict[str, Any]]:
    response = client.get(f"/surveys/{survey_id}/responses/bulk", params={"per_page": 100, **params})
    pages = []
    while True:
        assert response.status_code == 200, response.text
        page = response.json()
        pages.append(page)
        if "next" not in page["links"]:
            return pages
        response = client.get(page["links"]["next"])


def window(low: int, high: int, field: str = "updated_at") -> dict[str, Any]:
    return {"operator": "AND", "value": [{"field": field, "operator": ">", "value": low},
                                         {"field": field, "operator": "<", "value": high}]}


# ---- public surface ------------------------------------------------------------------------------------------------

def test_base_urls_and_app_state(emulator: Emulator) -> None:
    assert emulator.base_urls("http://127.0.0.1:9/") == {
        "zendesk": f"http://127.0.0.1:9/zendesk/{DEMO_ZENDESK_SUBDOMAIN}",
        "intercom": "http://127.0.0.1:9/intercom",
        "surveymonkey": "http://127.0.0.1:9/surveymonkey/v3",
    }
    assert create_app(emulator).state.emulator is emulator


def test_default_config_is_a_demo_dataset_ending_now() -> None:
    config = EmulatorConfig()
    assert config.end is not None and config.start is not None
    assert abs(config.end.timestamp() - time.time()) < 5
    assert config.end - config.start == timedelta(days=120)
    assert config.time_scale is None


# ---- Zendesk -------------------------------------------------------------------------------------------------------

def test_zendesk_me_authenticated_anonymous_and_rejected(http: dict[str, httpx.Client]) -> None:
    me = http["zendesk"].get("/api/v2/users/me.json")
    assert me.status_code == 200
    user = me.json()["user"]
    assert (user["id"], user["email"], user["role"]) == (9_000_100, DEMO_ZENDESK_EMAIL, "admin")

    anonymous = http["root"].get(f"/zendesk/{DEMO_ZENDESK_SUBDOMAIN}/api/v2/users/me.json")
    assert anonymous.status_code == 200
    assert (anonymous.json()["user"]["id"], anonymous.json()["user"]["role"]) == (None, "end-user")

    for headers in (zendesk_auth(token="wrong"), zendesk_auth(email="someone@else.example"),
                    {"Authorization": "Basic !!!"}):
        rejected = http["root"].get(f"/zendesk/{DEMO_ZENDESK_SUBDOMAIN}/api/v2/users/me.json", headers=headers)
        assert (rejected.status_code, rejected.json()) == (401, {"error": "Couldn't authenticate you"})
    no_auth_export = http["root"].get(f"/zendesk/{DEMO_ZENDESK_SUBDOMAIN}{EXPORT}", params={"start_time": 0})
    assert (no_auth_export.status_code, no_auth_export.json()) == (401, {"error": "Couldn't authenticate you"})


def test_zendesk_unknown_subdomain_is_an_html_404(http: dict[str, httpx.Client]) -> None:
    response = http["root"].get("/zendesk/not-a-customer/api/v2/users/me.json", headers=zendesk_auth())
    assert response.status_code == 404
    assert response.headers["content-type"].startswith("text/html")
    with pytest.raises(json.JSONDecodeError):
        json.loads(response.text)


def test_zendesk_export_pages_to_the_end_in_update_order(emulator: Emulator, http: dict[str, httpx.Client]) -> None:
    pages = export_pages(http["zendesk"], per_page=100, include="users")
    assert [len(p["tickets"]) for p in pages] == [100, 100, 60]
    assert [p["end_of_stream"] for p in pages] == [False, False, True]
    assert all(p["before_url"] is None and p["before_cursor"] is None for p in pages)
    tickets = [t for p in pages for t in p["tickets"]]
    assert [t["id"] for t in tickets] == emulator.zendesk.all_ticket_ids(include_deleted=True)
    order = [(t["generated_timestamp"], t["id"]) for t in tickets]
    assert order == sorted(order)
    # Every page side-loads the users it references, except requesters deleted from the account.
    for page in pages:
        loaded = {u["id"] for u in page["users"]}
        referenced = {t["requester_id"] for t in page["tickets"]}
        missing = referenced - loaded
        assert all(emulator.zendesk.user(user_id) is None for user_id in missing)
        assert referenced & loaded
    # A page's after_url carries its own query (per_page, include) along with the cursor.
    assert "per_page=100" in pages[0]["after_url"] and "include=users" in pages[0]["after_url"]
    assert pages[-1]["after_cursor"]


def test_zendesk_ticket_shape(emulator: Emulator, http: dict[str, httpx.Client]) -> None:
    ticket = http["zendesk"].get("/api/v2/tickets/2.json").json()["ticket"]
    expected = emulator.zendesk.ticket(2)
    assert expected is not None
    base = str(http["zendesk"].base_url).rstrip("/")
    assert ticket == {"url": f"{base}/api/v2/tickets/2.json", **expected}
    assert set(ticket) >= {"id", "url", "subject", "raw_subject", "description", "priority", "status", "type",
                           "requester_id", "submitter_id", "assignee_id", "organization_id", "group_id", "tags",
                           "custom_fields", "via", "created_at", "updated_at", "generated_timestamp",
                           "satisfaction_rating"}
    assert ticket["created_at"].endswith("Z") and ticket["created_at"] <= ticket["updated_at"]
    assert http["zendesk"].get("/api/v2/tickets/99999.json").json() == {"error": "RecordNotFound",
                                                                        "description": "Not found"}


def test_zendesk_dataset_has_realistic_variety(emulator: Emulator) -> None:
    tickets = [emulator.zendesk.ticket(i) for i in emulator.zendesk.all_ticket_ids(include_deleted=True)]
    tags = {tag for t in tickets for tag in t["tags"]}
    assert {"bug", "feature_request", "question", "praise", "billing", "export", "sso"} <= tags
    assert {t["status"] for t in tickets} >= {"open", "solved", "closed", "deleted"}
    assert {t["priority"] for t in tickets} >= {"urgent", "high", "normal", "low", None}
    assert any(t["subject"] is None for t in tickets)
    assert any(emulator.zendesk.user(t["requester_id"]) is None for t in tickets)
    users = [emulator.zendesk.user(t["requester_id"]) for t in tickets]
    plans = {u["user_fields"].get("plan") for u in users if u}
    assert {"enterprise", "business", "pro", "free"} <= plans
    # Requesters whose account never set up user fields send an empty object; typed markup reaches descriptions.
    assert any(u["user_fields"] == {} for u in users if u)
    assert any("<b>" in t["description"] or "=SUM(" in t["description"] for t in tickets)
    domains = {u["email"].split("@")[1] for u in users if u and u["email"]}
    assert "gmail.com" in domains and len(domains) > 10


def test_zendesk_exclude_deleted(emulator: Emulator, http: dict[str, httpx.Client]) -> None:
    emulator.zendesk.delete_ticket(3)
    emulator.clock = lambda: END_TS + 3600
    pages = export_pages(http["zendesk"], exclude_deleted="true")
    ids = [t["id"] for p in pages for t in p["tickets"]]
    assert sorted(ids) == emulator.zendesk.all_ticket_ids()
    assert 3 not in ids and all(t["status"] != "deleted" for p in pages for t in p["tickets"])
    counted = http["zendesk"].get("/api/v2/tickets/count.json").json()["count"]
    assert counted["value"] == len(emulator.zendesk.all_ticket_ids())


def test_zendesk_start_time_rules(emulator: Emulator, http: dict[str, httpx.Client]) -> None:
    emulator.clock = lambda: datetime(2024, 3, 1, 0, 0, 30, tzinfo=timezone.utc)
    too_recent = http["zendesk"].get(EXPORT, params={"start_time": END_TS - 29})  # 59 s before the clock
    assert too_recent.status_code == 422 and too_recent.json()["error"] == "InvalidValue"
    future = http["zendesk"].get(EXPORT, params={"start_time": 4_102_444_800})
    assert future.status_code == 422
    assert http["zendesk"].get(EXPORT, params={"start_time": END_TS - 30}).status_code == 200  # exactly 60 s
    assert http["zendesk"].get(EXPORT).status_code == 400
    assert http["zendesk"].get(EXPORT, params={"cursor": "bm90IGEgY3Vyc29y"}).status_code == 400

    # start_time is inclusive: a ticket updated exactly then is in the first page.
    boundary = emulator.zendesk.ticket(100)
    assert boundary is not None
    page = http["zendesk"].get(EXPORT, params={"start_time": boundary["generated_timestamp"]}).json()
    assert page["tickets"][0]["generated_timestamp"] == boundary["generated_timestamp"]
    assert 100 in [t["id"] for t in page["tickets"]]
    assert all(t["generated_timestamp"] >= boundary["generated_timestamp"] for t in page["tickets"])


def test_zendesk_changes_reappear_after_the_saved_cursor(emulator: Emulator, http: dict[str, httpx.Client]) -> None:
    saved_cursor = export_pages(http["zendesk"])[-1]["after_cursor"]
    now = END_TS + 7200
    emulator.clock = lambda: now
    updated = emulator.zendesk.update_ticket(5, subject="CSV export broken again", status="open")
    added = emulator.zendesk.add_ticket(subject="New: SSO login fails", tags=["bug", "sso"])
    assert (updated["updated_at"], updated["generated_timestamp"]) == ("2024-03-01T02:00:00Z", now)
    assert added["id"] == 261 and added["created_at"] == added["updated_at"] == "2024-03-01T02:00:00Z"

    page = http["zendesk"].get(EXPORT, params={"cursor": saved_cursor}).json()
    assert [(t["id"], t["subject"], t["raw_subject"]) for t in page["tickets"]] == [
        (5, "CSV export broken again", "CSV export broken again"),
        (261, "New: SSO login fails", "New: SSO login fails"),
    ]
    assert page["end_of_stream"] is True
    again = http["zendesk"].get(EXPORT, params={"cursor": page["after_cursor"]}).json()
    assert (again["tickets"], again["end_of_stream"]) == ([], True)
    # A full export still holds each ticket once, the changed one with its new content.
    tickets = [t for p in export_pages(http["zendesk"]) for t in p["tickets"]]
    assert len(tickets) == len({t["id"] for t in tickets}) == 261
    assert emulator.zendesk.tickets_in_range(END, END + timedelta(days=1)) == [261]


def test_zendesk_hold_back_leaves_out_the_last_minute() -> None:
    emulator = Emulator(small_config(zendesk_export_hold_back_seconds=60))
    now = [END_TS + 3600]
    emulator.clock = lambda: now[0]
    with clients(emulator) as http:
        cursor = export_pages(http["zendesk"])[-1]["after_cursor"]
        emulator.zendesk.update_ticket(9, priority="urgent")
        assert http["zendesk"].get(EXPORT, params={"cursor": cursor}).json()["tickets"] == []
        now[0] += 61
        assert [t["id"] for t in http["zendesk"].get(EXPORT, params={"cursor": cursor}).json()["tickets"]] == [9]


def test_zendesk_ground_truth_matches_a_created_at_filter(emulator: Emulator, http: dict[str, httpx.Client]) -> None:
    low, high = datetime(2024, 1, 20, tzinfo=timezone.utc), datetime(2024, 2, 10, tzinfo=timezone.utc)
    tickets = [t for p in export_pages(http["zendesk"], exclude_deleted="true") for t in p["tickets"]]
    in_range = sorted(t["id"] for t in tickets
                      if low.strftime("%Y-%m-%dT%H:%M:%SZ") <= t["created_at"] < high.strftime("%Y-%m-%dT%H:%M:%SZ"))
    assert in_range == emulator.zendesk.tickets_in_range(low, high)
    assert 0 < len(in_range) < len(tickets)


# ---- Intercom ------------------------------------------------------------------------------------------------------

def test_intercom_me_and_auth_errors() -> None:
    emulator = Emulator(small_config(intercom_scopeless_tokens={"scopeless"}))
    with clients(emulator) as http:
        me = http["intercom"].get("/me").json()
        assert (me["type"], me["app"]["id_code"]) == ("admin", "demoapp1")

        bad = http["root"].get("/intercom/me", headers=bearer("nope"))
        assert bad.status_code == 401
        assert bad.json()["type"] == "error.list" and bad.json()["request_id"]
        assert bad.json()["errors"] == [{"code": "unauthorized", "message": "Access Token Invalid"}]
        assert http["root"].get("/intercom/me").status_code == 401

        assert http["root"].get("/intercom/me", headers=bearer("scopeless")).status_code == 200
        denied = http["root"].post("/intercom/conversations/search", headers=bearer("scopeless"),
                                   json={"query": window(0, END_TS + 1)})
        assert denied.status_code == 403
        assert denied.json()["errors"][0]["code"] == "token_unauthorized"


def test_intercom_search_pages_through_an_updated_at_window(emulator: Emulator,
                                                             http: dict[str, httpx.Client]) -> None:
    low, high = START_TS + 10 * 86400, START_TS + 40 * 86400
    pages = search_pages(http["intercom"], window(low, high), per_page=25)
    conversations = [c for p in pages for c in p["conversations"]]
    expected = sorted(
        (c["updated_at"], int(c["id"])) for c in map(emulator.intercom.conversation,
                                                       emulator.intercom.all_conversation_ids())
        if low < c["updated_at"] < high)
    assert [(c["updated_at"], int(c["id"])) for c in conversations] == expected
    assert len(expected) > 50
    assert all(p["total_count"] == len(expected) for p in pages)
    assert [p["pages"]["page"] for p in pages] == list(range(1, len(pages) + 1))
    assert all(p["pages"]["total_pages"] == len(pages) for p in pages)
    assert all("next" in p["pages"] for p in pages[:-1]) and "next" not in pages[-1]["pages"]
    assert all("conversation_parts" not in c for c in conversations)
    assert pages[0]["type"] == "conversation.list"


def test_intercom_search_on_created_at(emulator: Emulator, http: dict[str, httpx.Client]) -> None:
    low, high = START_TS + 5 * 86400, START_TS + 25 * 86400
    pages = search_pages(http["intercom"], window(low, high, "created_at"), per_page=150)
    ids = sorted(c["id"] for p in pages for c in p["conversations"])
    assert ids == sorted(emulator.intercom.conversations_in_range(low + 1, high))
    single = http["intercom"].post(SEARCH, json={"query": {"field": "created_at", "operator": ">", "value": low}})
    assert single.json()["total_count"] == len(emulator.intercom.conversations_in_range(low + 1))


def test_intercom_search_rejects_bad_requests(http: dict[str, httpx.Client]) -> None:
    too_big = http["intercom"].post(SEARCH, json={"query": window(0, 1), "pagination": {"per_page": 151}})
    assert too_big.status_code == 400 and too_big.json()["type"] == "error.list"
    assert http["intercom"].post(SEARCH, json={}).status_code == 400
    unknown_field = {"field": "source.body", "operator": "~", "value": "csv"}
    assert http["intercom"].post(SEARCH, json={"query": unknown_field}).status_code == 400
    bad_cursor = {"query": window(0, 1), "pagination": {"starting_after": "zzz"}}
    assert http["intercom"].post(SEARCH, json=bad_cursor).status_code == 400


def test_intercom_conversation_and_contact(emulator: Emulator, http: dict[str, httpx.Client]) -> None:
    conversations = [emulator.intercom.conversation(i) for i in emulator.intercom.all_conversation_ids()]
    conversation = next(c for c in conversations if c["conversation_parts"]["total_count"] >= 4)
    served = http["intercom"].get(f"/conversations/{conversation['id']}").json()
    assert served == conversation
    parts = served["conversation_parts"]
    assert parts["type"] == "conversation_part.list" and parts["total_count"] == len(parts["conversation_parts"])
    all_parts = [p for c in conversations for p in c["conversation_parts"]["conversation_parts"]]
    assert {p["part_type"] for p in all_parts} >= {"comment", "note", "assignment", "close"}
    assert {p["author"]["type"] for p in all_parts} >= {"admin", "user"}
    assert all(p["body"] is None for p in all_parts if p["part_type"] in ("assignment", "close"))
    assert any(c["source"]["subject"] == "" for c in conversations)
    assert any(c["source"]["subject"] for c in conversations)
    assert all(c["source"]["body"].startswith("<p>") for c in conversations)

    contact_id = served["contacts"]["contacts"][0]["id"]
    contact = http["intercom"].get(f"/contacts/{contact_id}").json()
    assert contact == emulator.intercom.contact(contact_id)
    assert (contact["type"], contact["id"]) == ("contact", contact_id)
    plans = {emulator.intercom.contact(c["contacts"]["contacts"][0]["id"])["custom_attributes"].get("plan")
             for c in conversations}
    assert {"Enterprise", "Business", "Free"} & plans and None in plans

    assert http["intercom"].get("/conversations/42").json()["errors"][0]["code"] == "not_found"
    assert http["intercom"].get("/contacts/deadbeef").status_code == 404


def test_intercom_changes_reappear_in_a_later_window(emulator: Emulator, http: dict[str, httpx.Client]) -> None:
    emulator.clock = lambda: END_TS + 600
    first_id = emulator.intercom.all_conversation_ids()[0]
    emulator.intercom.add_part(first_id, "<p>Still broken for us</p>")
    emulator.intercom.update_conversation(emulator.intercom.all_conversation_ids()[1], state="closed", open=False)
    added = emulator.intercom.add_conversation(title="Dark mode please")
    pages = search_pages(http["intercom"], window(END_TS, END_TS + 3600))
    found = [c for p in pages for c in p["conversations"]]
    assert [c["id"] for c in found] == sorted([first_id, emulator.intercom.all_conversation_ids()[1], added["id"]],
                                              key=int)
    thread = http["intercom"].get(f"/conversations/{first_id}").json()["conversation_parts"]["conversation_parts"]
    assert (thread[-1]["body"], thread[-1]["author"]["type"] in ("user", "lead")) == ("<p>Still broken for us</p>",
                                                                                       True)


# ---- SurveyMonkey --------------------------------------------------------------------------------------------------

def test_surveymonkey_me_and_auth_error(http: dict[str, httpx.Client]) -> None:
    me = http["surveymonkey"].get("/users/me").json()
    assert {"id", "username", "email", "account_type"} <= set(me)
    bad = http["root"].get("/surveymonkey/v3/users/me", headers=bearer("nope"))
    assert bad.status_code == 401
    error = bad.json()["error"]
    assert (error["id"], error["name"], error["http_status_code"]) == ("1011", "Authorization Error", 401)


def test_surveymonkey_surveys_and_details(emulator: Emulator, http: dict[str, httpx.Client]) -> None:
    listing = http["surveymonkey"].get("/surveys", params={"per_page": 2}).json()
    assert (listing["total"], listing["page"], listing["per_page"], len(listing["data"])) == (3, 1, 2, 2)
    second = http["surveymonkey"].get(listing["links"]["next"]).json()
    assert "next" not in second["links"]
    ids = [s["id"] for s in listing["data"] + second["data"]]
    assert ids == emulator.surveymonkey.survey_ids()
    assert set(listing["data"][0]) == {"id", "title", "nickname", "href"}

    kinds = set()
    for survey_id in ids:
        details = http["surveymonkey"].get(f"/surveys/{survey_id}/details").json()
        assert details["id"] == survey_id
        for page in details["pages"]:
            for question in page["questions"]:
                kinds.add((question["family"], question["subtype"]))
                # An image block may have no text, only its image.
                assert question["headings"][0]["heading"] or question["headings"][0]["image"]["url"]
    # Every family and subtype the API documents, in the three surveys of the demo.
    assert kinds == {
        ("single_choice", "vertical"), ("single_choice", "horizontal"), ("single_choice", "menu"),
        ("multiple_choice", "vertical"),
        ("matrix", "single"), ("matrix", "multi"), ("matrix", "rating"), ("matrix", "menu"), ("matrix", "ranking"),
        ("open_ended", "single"), ("open_ended", "multi"), ("open_ended", "essay"), ("open_ended", "numerical"),
        ("datetime", "date_only"), ("datetime", "time_only"), ("datetime", "both"),
        ("demographic", "international"), ("demographic", "us"),
        ("presentation", "descriptive_text"), ("presentation", "image"),
    }
    assert http["surveymonkey"].get("/surveys/1/details").json()["error"]["id"] == "1020"


def test_surveymonkey_responses_page_to_the_end_and_reference_the_details(
        emulator: Emulator, http: dict[str, httpx.Client]) -> None:
    for survey_id in emulator.surveymonkey.survey_ids():
        details = http["surveymonkey"].get(f"/surveys/{survey_id}/details").json()
        questions = {q["id"]: q for page in details["pages"] for q in page["questions"]}
        pages = response_pages(http["surveymonkey"], survey_id)
        assert [len(p["data"]) for p in pages] == [100, 30]
        assert all(p["links"]["next"].startswith("http://127.0.0.1:") for p in pages[:-1])
        responses = [r for p in pages for r in p["data"]]
        # The listing holds disqualified responses too, marked as such.
        assert sorted(r["id"] for r in responses) == emulator.surveymonkey.responses_in_range(
            survey_id, include_disqualified=True)
        assert sorted(r["id"] for r in responses if r["response_status"] == "disqualified") == (
            emulator.surveymonkey.disqualified_ids(survey_id))
        modified = [r["date_modified"] for r in responses]
        assert modified == sorted(modified) and modified[0].endswith("+00:00")
        for response in responses:
            assert response["survey_id"] == survey_id
            for page in response["pages"]:
                for answered in page["questions"]:
                    question = questions[answered["id"]]
                    assert question["family"] != "presentation"  # nothing to answer there
                    options = question.get("answers", {})
                    choices = {c["id"] for c in options.get("choices", [])}
                    rows = {r["id"] for r in options.get("rows", [])}
                    cols = {c["id"]: {k["id"] for k in c["choices"]} for c in options.get("cols", [])}
                    for answer in answered["answers"]:
                        if "other_id" in answer:
                            assert answer["other_id"] == options["other"]["id"] and answer["text"]
                        elif "col_id" in answer:
                            assert answer["row_id"] in rows and answer["choice_id"] in cols[answer["col_id"]]
                        elif "choice_id" in answer:
                            assert answer["choice_id"] in choices
                            assert "row_id" not in answer or answer["row_id"] in rows
                        elif "row_id" in answer:
                            assert question["family"] in ("open_ended", "datetime", "demographic")
                            assert answer["row_id"] in rows and answer["text"]
                        else:
                            assert question["family"] == "open_ended" and answer["text"]


def test_surveymonkey_date_filters_and_limits(emulator: Emulator, http: dict[str, httpx.Client]) -> None:
    survey_id = emulator.surveymonkey.survey_ids()[1]
    low, high = datetime(2024, 1, 15, tzinfo=timezone.utc), datetime(2024, 2, 5, 12, tzinfo=timezone.utc)
    pages = response_pages(http["surveymonkey"], survey_id, start_created_at="2024-01-15T00:00:00",
                           end_created_at="2024-02-05T12:00:00")
    ids = sorted(r["id"] for p in pages for r in p["data"])
    assert ids == emulator.surveymonkey.responses_in_range(survey_id, low, high, include_disqualified=True)
    assert 0 < len(ids) < 130
    assert pages[0]["total"] == len(ids)
    too_big = http["surveymonkey"].get(f"/surveys/{survey_id}/responses/bulk", params={"per_page": 101})
    assert too_big.status_code == 400 and too_big.json()["error"]["http_status_code"] == 400
    bad_date = http["surveymonkey"].get(f"/surveys/{survey_id}/responses/bulk", params={"start_created_at": "x"})
    assert bad_date.status_code == 400

    emulator.clock = lambda: END_TS + 60
    added = emulator.surveymonkey.add_response(survey_id)
    later = response_pages(http["surveymonkey"], survey_id, start_modified_at="2024-03-01T00:00:00")
    assert [r["id"] for p in later for r in p["data"]] == [added["id"]]
    assert added["date_created"] == "2024-03-01T00:01:00+00:00"


# ---- rate limits ---------------------------------------------------------------------------------------------------

def test_no_rate_limit_headers_without_time_scale(http: dict[str, httpx.Client]) -> None:
    for _ in range(12):
        response = http["zendesk"].get(EXPORT, params={"start_time": START_TS, "per_page": 1})
        assert response.status_code == 200
    assert not any("rate" in name.lower() for name in response.headers)


def test_zendesk_rate_limits_with_scaled_headers() -> None:
    emulator = Emulator(small_config(time_scale=6.0, zendesk_export_rate_limit=3, zendesk_account_rate_limit=5))
    now = [1_000_000.0]
    emulator.rate_clock = lambda: now[0]
    with clients(emulator) as http:
        zendesk = http["zendesk"]
        for remaining in (2, 1, 0):
            ok = zendesk.get(EXPORT, params={"start_time": START_TS, "per_page": 5})
            assert ok.status_code == 200
            assert ok.headers["Zendesk-RateLimit-incremental-exports"] == (
                f"total=3; remaining={remaining}; resets=6.00")
            assert (ok.headers["X-Rate-Limit"], ok.headers["ratelimit-limit"]) == ("5", "5")
        limited = zendesk.get(EXPORT, params={"start_time": START_TS})
        assert limited.status_code == 429
        assert limited.headers["Retry-After"] == "6.00"
        assert limited.json() == {"error": "APIRateLimitExceeded", "description": "Number of allowed incremental "
                                                                                  "export API requests per minute exceeded"}
        # The account limit is separate: two more ordinary calls fit, the third is refused.
        assert [zendesk.get("/api/v2/users/me.json").status_code for _ in range(3)] == [200, 200, 429]
        now[0] += 3.5
        again = zendesk.get("/api/v2/users/me.json")
        assert (again.status_code, again.headers["Retry-After"]) == (429, "2.50")
        now[0] += 2.5
        fresh = zendesk.get(EXPORT, params={"start_time": START_TS, "per_page": 5})
        assert fresh.status_code == 200
        assert fresh.headers["X-Rate-Limit-Remaining"] == "4"


def test_real_time_scale_sends_whole_seconds() -> None:
    emulator = Emulator(small_config(time_scale=60.0, zendesk_export_rate_limit=1, intercom_rate_limit=6))
    emulator.rate_clock = lambda: 2_000_000.25
    with clients(emulator) as http:
        assert http["zendesk"].get(EXPORT, params={"start_time": START_TS}).status_code == 200
        limited = http["zendesk"].get(EXPORT, params={"start_time": START_TS})
        assert (limited.status_code, limited.headers["Retry-After"]) == (429, "60")
        assert limited.headers["Zendesk-RateLimit-incremental-exports"] == "total=1; remaining=0; resets=60"
        intercom = http["intercom"].get("/me")
        assert (intercom.headers["X-RateLimit-Limit"], intercom.headers["X-RateLimit-Reset"]) == ("1", "2000011")


def test_intercom_rate_limit_has_no_retry_after() -> None:
    emulator = Emulator(small_config(time_scale=6.0, intercom_rate_limit=12))
    now = [1_000.0]
    emulator.rate_clock = lambda: now[0]
    with clients(emulator) as http:
        first, second = http["intercom"].get("/me"), http["intercom"].get("/me")
        assert [(r.headers["X-RateLimit-Limit"], r.headers["X-RateLimit-Remaining"], r.headers["X-RateLimit-Reset"])
                for r in (first, second)] == [("2", "1", "1001.000"), ("2", "0", "1001.000")]
        limited = http["intercom"].post(SEARCH, json={"query": window(0, 1)})
        assert limited.status_code == 429
        assert "Retry-After" not in limited.headers
        assert limited.headers["X-RateLimit-Reset"] == "1001.000"
        assert limited.json()["errors"][0]["code"] == "rate_limit_exceeded"
        now[0] = 1001.0
        assert http["intercom"].get("/me").status_code == 200


def test_surveymonkey_minute_and_day_budgets() -> None:
    emulator = Emulator(small_config(time_scale=6.0, surveymonkey_minute_limit=3, surveymonkey_day_limit=4))
    now = [5_000.0]
    emulator.rate_clock = lambda: now[0]
    with clients(emulator) as http:
        statuses = [http["surveymonkey"].get("/surveys").status_code for _ in range(4)]
        assert statuses == [200, 200, 200, 429]
        now[0] += 6.0
        last = http["surveymonkey"].get("/surveys")
        assert last.status_code == 200
        assert (last.headers["X-Ratelimit-App-Global-Day-Limit"], last.headers["X-Ratelimit-App-Global-Day-Remaining"],
                last.headers["X-Ratelimit-App-Global-Minute-Remaining"]) == ("4", "0", "2")
        blocked = http["surveymonkey"].get("/surveys")
        assert blocked.status_code == 429 and blocked.json()["error"]["id"] == "1040"
        assert blocked.headers["X-Ratelimit-App-Global-Day-Reset"] == f"{6.0 * 1440 - 6.0:.2f}"


# ---- faults --------------------------------------------------------------------------------------------------------

@pytest.mark.parametrize(("vendor", "path", "status", "error_check"), [
    ("zendesk", "/api/v2/users/me.json", 500, lambda body: body["error"] == "InternalError"),
    ("intercom", "/me", 503, lambda body: body["errors"][0]["code"] == "service_unavailable"),
    ("surveymonkey", "/users/me", 502, lambda body: body["error"]["http_status_code"] == 502),
    ("zendesk", "/api/v2/users/me.json", 429, lambda body: body["error"] == "APIRateLimitExceeded"),
])
def test_status_faults_fail_the_next_requests_then_clear(emulator: Emulator, http: dict[str, httpx.Client],
                                                          vendor: str, path: str, status: int, error_check) -> None:
    fault = emulator.faults.inject(vendor, r"me", status, times=2)
    responses = [http[vendor].get(path) for _ in range(3)]
    assert [r.status_code for r in responses] == [status, status, 200]
    assert error_check(responses[0].json())
    assert (fault.hits, fault.remaining, emulator.faults.pending()) == (2, 0, [])
    assert [r.fault for r in emulator.requests] == [str(status), str(status), None]


def test_intercom_status_429_fault_points_at_the_window_reset(emulator: Emulator,
                                                                 http: dict[str, httpx.Client]) -> None:
    emulator.faults.inject("intercom", "me", 429, reset_in=0.5)
    before = time.time()
    limited = http["intercom"].get("/me")
    assert (limited.status_code, limited.headers["X-RateLimit-Remaining"]) == (429, "0")
    assert "Retry-After" not in limited.headers
    assert before + 0.5 <= float(limited.headers["X-RateLimit-Reset"]) <= time.time() + 0.5


def test_clock_accepts_datetimes_and_stamps_mutations(emulator: Emulator) -> None:
    emulator.clock = lambda: datetime(2024, 3, 2, 8, 30)  # naive means UTC
    assert emulator.now() == datetime(2024, 3, 2, 8, 30, tzinfo=timezone.utc)
    assert emulator.now_ts() == int(datetime(2024, 3, 2, 8, 30, tzinfo=timezone.utc).timestamp())
    changed = emulator.intercom.update_conversation(emulator.intercom.all_conversation_ids()[0], priority="priority")
    assert changed["updated_at"] == emulator.now_ts()
    with pytest.raises(KeyError):
        emulator.zendesk.update_ticket(10_000, subject="missing")


def test_fault_matching_by_path_and_method(emulator: Emulator, http: dict[str, httpx.Client]) -> None:
    emulator.faults.inject("intercom", r"^/conversations/search$", 500, method="POST")
    assert http["intercom"].get("/me").status_code == 200
    assert http["intercom"].post(SEARCH, json={"query": window(0, 1)}).status_code == 500
    assert http["intercom"].post(SEARCH, json={"query": window(0, 1)}).status_code == 200
    with pytest.raises(ValueError):
        emulator.faults.inject("zendesk", "x", "explode")
    with pytest.raises(ValueError):
        emulator.faults.inject("github", "x", 500)


def test_retry_after_faults(emulator: Emulator, http: dict[str, httpx.Client]) -> None:
    emulator.faults.inject("zendesk", "me", "retry_after_seconds", seconds=2)
    emulator.faults.inject("intercom", "me", "retry_after_seconds", seconds=0.35)
    emulator.faults.inject("surveymonkey", "me", "retry_after_date", seconds=30)
    seconds = http["zendesk"].get("/api/v2/users/me.json")
    assert (seconds.status_code, seconds.headers["Retry-After"]) == (429, "2")
    assert http["intercom"].get("/me").headers["Retry-After"] == "0.35"
    dated = http["surveymonkey"].get("/users/me")
    assert dated.status_code == 429
    retry_at = parsedate_to_datetime(dated.headers["Retry-After"])
    assert 25 <= (retry_at - datetime.now(timezone.utc)).total_seconds() <= 31


def test_timeout_fault_delays_the_answer(emulator: Emulator, http: dict[str, httpx.Client]) -> None:
    emulator.faults.inject("zendesk", "me", "timeout", seconds=5)
    started = time.monotonic()
    with pytest.raises(httpx.ReadTimeout):
        http["zendesk"].get("/api/v2/users/me.json", timeout=0.2)
    assert time.monotonic() - started < 2
    emulator.faults.inject("zendesk", "me", "timeout", seconds=0.3)
    started = time.monotonic()
    assert http["zendesk"].get("/api/v2/users/me.json").status_code == 200
    assert time.monotonic() - started >= 0.3


def test_malformed_and_truncated_bodies(emulator: Emulator, http: dict[str, httpx.Client]) -> None:
    intact = http["intercom"].get("/me")
    emulator.faults.inject("intercom", "me", "truncated")
    emulator.faults.inject("zendesk", "me", "malformed")
    truncated = http["intercom"].get("/me")
    assert truncated.status_code == 200
    assert truncated.content == intact.content[: len(intact.content) // 2]
    malformed = http["zendesk"].get("/api/v2/users/me.json")
    assert malformed.status_code == 200 and malformed.headers["content-type"].startswith("application/json")
    for broken in (truncated, malformed):
        with pytest.raises(json.JSONDecodeError):
            broken.json()


@pytest.mark.parametrize(("mode", "error"), [("rst", httpx.ReadError), ("close", httpx.RemoteProtocolError)])
def test_reset_fault_drops_the_connection(emulator: Emulator, http: dict[str, httpx.Client], mode: str,
                                          error: type[Exception]) -> None:
    emulator.faults.inject("surveymonkey", "surveys", "reset", mode=mode)
    with pytest.raises(error):
        http["surveymonkey"].get("/surveys")
    assert http["surveymonkey"].get("/surveys").status_code == 200
    assert [(r.status, r.fault) for r in emulator.requests] == [(None, "reset"), (200, None)]


def test_empty_page_with_next_continues_correctly(emulator: Emulator, http: dict[str, httpx.Client]) -> None:
    expected_tickets = [t["id"] for p in export_pages(http["zendesk"], per_page=100) for t in p["tickets"]]
    emulator.faults.inject("zendesk", "incremental", "empty_page_with_next")
    emulator.faults.inject("zendesk", "incremental", "empty_page_with_next")
    pages = export_pages(http["zendesk"], per_page=100)
    assert [len(p["tickets"]) for p in pages] == [0, 0, 100, 100, 60]
    assert [t["id"] for p in pages for t in p["tickets"]] == expected_tickets

    query = window(0, END_TS + 1)
    expected_conversations = [c["id"] for p in search_pages(http["intercom"], query) for c in p["conversations"]]
    emulator.faults.inject("intercom", "search", "empty_page_with_next")
    pages = search_pages(http["intercom"], query)
    assert len(pages[0]["conversations"]) == 0 and "next" in pages[0]["pages"]
    assert [c["id"] for p in pages for c in p["conversations"]] == expected_conversations

    survey_id = emulator.surveymonkey.survey_ids()[0]
    expected_responses = [r["id"] for p in response_pages(http["surveymonkey"], survey_id) for r in p["data"]]
    first = response_pages(http["surveymonkey"], survey_id)  # warm: the fault applies to the next request only
    assert [r["id"] for p in first for r in p["data"]] == expected_responses
    emulator.faults.inject("surveymonkey", "responses/bulk", "empty_page_with_next")
    pages = response_pages(http["surveymonkey"], survey_id)
    assert pages[0]["data"] == [] and pages[0]["links"]["next"]
    assert [r["id"] for p in pages for r in p["data"]] == expected_responses


def test_repeat_page_serves_the_previous_page_again(emulator: Emulator, http: dict[str, httpx.Client]) -> None:
    first = http["zendesk"].get(EXPORT, params={"start_time": START_TS, "per_page": 100})
    emulator.faults.inject("zendesk", "incremental", "repeat_page")
    repeated = http["zendesk"].get(first.json()["after_url"])
    assert repeated.content == first.content
    # Following the repeated page's cursor picks up where it left off: nothing is lost.
    rest = http["zendesk"].get(repeated.json()["after_url"]).json()
    assert rest["tickets"][0]["id"] == first.json()["tickets"][-1]["id"] + 1


def test_expire_token_and_outage(emulator: Emulator, http: dict[str, httpx.Client]) -> None:
    emulator.faults.inject("intercom", "me", "expire_token")
    assert [http["intercom"].get("/me").status_code for _ in range(2)] == [401, 401]
    assert http["intercom"].post(SEARCH, json={"query": window(0, 1)}).status_code == 401
    emulator.restore_token("intercom")
    assert http["intercom"].get("/me").status_code == 200

    emulator.set_down("surveymonkey", True)
    down = http["surveymonkey"].get("/users/me")
    assert (down.status_code, down.json()["error"]["http_status_code"]) == (503, 503)
    assert http["zendesk"].get("/api/v2/users/me.json").status_code == 200
    emulator.set_down("surveymonkey", False)
    assert http["surveymonkey"].get("/users/me").status_code == 200


# ---- request log ---------------------------------------------------------------------------------------------------

def test_request_log_records_what_was_fetched(emulator: Emulator, http: dict[str, httpx.Client]) -> None:
    http["zendesk"].get(EXPORT, params={"start_time": START_TS, "per_page": 7})
    http["intercom"].post(SEARCH, json={"query": window(1, 2)})
    http["root"].get("/intercom/me", headers=bearer("bad"))
    records = [(r.vendor, r.method, r.endpoint, r.query, r.status, r.body) for r in emulator.requests]
    assert records == [
        ("zendesk", "GET", EXPORT, {"start_time": str(START_TS), "per_page": "7"}, 200, None),
        ("intercom", "POST", SEARCH, {}, 200, {"query": window(1, 2)}),
        ("intercom", "GET", "/me", {}, 401, None),
    ]
    assert emulator.requests[0].path == f"/zendesk/{DEMO_ZENDESK_SUBDOMAIN}{EXPORT}"
    counts = (emulator.request_count("intercom"), emulator.request_count("zendesk"), emulator.request_count())
    assert counts == (2, 1, 3)
    assert emulator.request_count("intercom", r"search") == 1


# ---- in-process (demo mode) ----------------------------------------------------------------------------------------

def test_in_process_transport_serves_every_vendor() -> None:
    emulator = Emulator(small_config())
    urls = emulator.base_urls("http://emulator")

    async def scenario() -> tuple[int, int, int, str]:
        transport = httpx.ASGITransport(app=create_app(emulator))
        async with httpx.AsyncClient(transport=transport) as client:
            tickets = await client.get(urls["zendesk"] + EXPORT, params={"start_time": START_TS},
                                       headers=zendesk_auth())
            search = await client.post(urls["intercom"] + SEARCH, json={"query": window(0, END_TS + 1)},
                                       headers=bearer(DEMO_INTERCOM_TOKEN))
            bulk = await client.get(urls["surveymonkey"] + "/surveys/" + emulator.surveymonkey.survey_ids()[0]
                                    + "/responses/bulk", headers=bearer(DEMO_SURVEYMONKEY_TOKEN))
            emulator.faults.inject("zendesk", "me", "reset")
            with pytest.raises(httpx.ReadError) as dropped:
                await client.get(urls["zendesk"] + "/api/v2/users/me.json", headers=zendesk_auth())
            assert isinstance(dropped.value, ConnectionDropped)
            return (len(tickets.json()["tickets"]), search.json()["total_count"], bulk.json()["total"],
                    bulk.json()["links"]["next"])

    assert asyncio.run(scenario()) == (
        260, 140, 130,
        f"{urls['surveymonkey']}/surveys/{emulator.surveymonkey.survey_ids()[0]}/responses/bulk?page=2&per_page=50")


# ---- determinism and scale -----------------------------------------------------------------------------------------

def _snapshot(config: EmulatorConfig) -> list[bytes]:
    emulator = Emulator(config)
    urls = emulator.base_urls("http://emulator")

    async def fetch() -> list[bytes]:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=create_app(emulator))) as client:
            survey_id = emulator.surveymonkey.survey_ids()[2]
            responses = [
                await client.get(urls["zendesk"] + EXPORT, params={"start_time": START_TS, "include": "users"},
                                 headers=zendesk_auth()),
                await client.post(urls["intercom"] + SEARCH, json={"query": window(0, END_TS + 1),
                                                                   "pagination": {"per_page": 150}},
                                  headers=bearer(DEMO_INTERCOM_TOKEN)),
                await client.get(urls["intercom"] + "/conversations/1000007", headers=bearer(DEMO_INTERCOM_TOKEN)),
                await client.get(urls["surveymonkey"] + f"/surveys/{survey_id}/responses/bulk",
                                 params={"per_page": 100}, headers=bearer(DEMO_SURVEYMONKEY_TOKEN)),
            ]
            return [r.content for r in responses]

    return asyncio.run(fetch())


def test_same_seed_same_data_other_seed_other_data() -> None:
    first, second = _snapshot(small_config()), _snapshot(small_config())
    assert first == second
    other = _snapshot(small_config(seed=8))
    assert all(a != b for a, b in zip(first, other))
    # Records are generated independently of the order they are asked for.
    forward, backward = Emulator(small_config()), Emulator(small_config())
    ids = forward.zendesk.all_ticket_ids(include_deleted=True)
    assert [forward.zendesk.ticket(i) for i in ids] == [backward.zendesk.ticket(i) for i in reversed(ids)][::-1]


def test_large_dataset_is_generated_lazily() -> None:
    config = EmulatorConfig(seed=3, zendesk_tickets=200_000, intercom_conversations=50_000, start=START, end=END)
    emulator = Emulator(config)
    # Nothing is generated up front: no ticket block exists until a page is asked for.
    assert len(emulator.zendesk._base._blocks) == 0
    urls = emulator.base_urls("http://emulator")

    async def fetch() -> tuple[dict, dict, dict]:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=create_app(emulator))) as client:
            first = await client.get(urls["zendesk"] + EXPORT, params={"start_time": START_TS},
                                     headers=zendesk_auth())
            middle_ticket = emulator.zendesk.ticket(150_000)
            assert middle_ticket is not None
            middle = await client.get(urls["zendesk"] + EXPORT,
                                      params={"start_time": middle_ticket["generated_timestamp"]},
                                      headers=zendesk_auth())
            search = await client.post(urls["intercom"] + SEARCH, json={"query": window(0, END_TS + 1)},
                                       headers=bearer(DEMO_INTERCOM_TOKEN))
            return first.json(), middle.json(), search.json()

    first, middle, search = asyncio.run(fetch())
    assert [t["id"] for t in first["tickets"]] == list(range(1, 1001))
    assert first["end_of_stream"] is False
    middle_ids = [t["id"] for t in middle["tickets"]]
    assert len(middle_ids) == 1000 and 150_000 in middle_ids
    assert middle_ids == list(range(middle_ids[0], middle_ids[0] + 1000))
    assert search["total_count"] == 50_000
    assert len(emulator.zendesk._base._blocks) <= emulator.zendesk._base.max_blocks
