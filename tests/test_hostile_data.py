"""Hostile text never blocks a source: a lone UTF-16 surrogate ("\\udcff" in JSON: text cut in the middle of an emoji),
a NUL, bytes that are not UTF-8 and megabyte-long strings, in any field of any vendor record.

The emulator's `hostile_text` fault appends such text to chosen strings of a real answer, over real HTTP; a whole
sync then runs through `sync.sync`. Each record kind a sync reads is poisoned in turn: Zendesk tickets and their
side-loaded requesters and organizations, Intercom conversations (search results and the full conversation with its
parts) and contacts, SurveyMonkey responses, survey details and the survey list.
"""

from __future__ import annotations

import csv
import io
import json
import uuid
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from feedback_sources.emulator import Emulator, run_emulator_server
from feedback_sources.emulator.faults import hostile_body, string_paths
from feedback_sources.export import MAX_CELL_CHARS, TRUNCATED_MARKER, export_csv
from feedback_sources.integrations.base import get_integration_class
from feedback_sources.models import REPLACEMENT, NormalizedRecord, clean_text, clean_value
from feedback_sources.store import Filters, Store
from feedback_sources.sync import SourceResult, sync
from tests.helpers import wait_for
from tests.reliability_support import ground_truth, integration_configs, past_config, stored_ids

SURROGATE = "\udcff"
# A megabyte of words with one that occurs nowhere else at its very end: the search must reach it.
BIG_WORD = "zebrafinchquartz"
BIG = " " + "lorem ipsum " * 87_381 + BIG_WORD
HOSTILE: dict[str, dict[str, Any]] = {
    "lone surrogate": {"text": SURROGATE},
    "NUL": {"text": "\x00"},
    "bytes that are not UTF-8": {"raw": b"\xff\xfe\xc3"},
}

# Strings a record is keyed or dated by, or that address something: poisoning them may make the record unmappable
# (its id or date is no longer one), which test_a_hostile_id_or_date_costs_at_most_its_own_records covers.
STRUCTURAL_KEY = re.compile(r"^(id|.*_id|.*_at|date_.*|.*url|href)$")
FTS_COLUMNS = ("title", "content", "customer_name")
_VENDOR_PREFIX = re.compile(r"^/(zendesk/[^/]+|intercom|surveymonkey/v3)")


# -- where to poison -------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Target:
    """One record kind in one vendor answer: which request serves it and how to find it in the answer."""

    label: str
    vendor: str
    request: str                                  # regex on the path below the vendor's base URL
    locate: Callable[[Any], tuple[Any, ...]]      # the node to poison, as a path into the answer
    owner: Callable[[Any, tuple[Any, ...]], str | None]  # the record the node belongs to (None: shared by several)
    big_field: str | None                         # key (last path step) of the main text field, for the 1 MB case
    big_lands_in: str | None                      # the stored column that main text field reaches
    # What a broken id may cost: "record" (only the owner), "nothing", or "survey" (every response of the survey).
    id_loss: str = "record"
    stored_as_is: bool = True                     # False: the sync reads a fuller copy of this node elsewhere
    # Which of the big_field paths get the megabyte (default: the first).
    big_paths: Callable[[Any, list[tuple[Any, ...]]], list[tuple[Any, ...]]] = lambda body, paths: paths[:1]

    def __str__(self) -> str:
        return self.label


def _requester(body: Any) -> tuple[int, int]:
    """(ticket index, user index) of the first ticket whose requester is side-loaded."""
    users = {user["id"]: index for index, user in enumerate(body["users"])}
    for index, ticket in enumerate(body["tickets"]):
        if ticket.get("requester_id") in users:
            return index, users[ticket["requester_id"]]
    raise AssertionError("no ticket with a side-loaded requester")


def _organization(body: Any) -> tuple[int, int]:
    organizations = {org["id"]: index for index, org in enumerate(body["organizations"])}
    for index, ticket in enumerate(body["tickets"]):
        if ticket.get("organization_id") in organizations:
            return index, organizations[ticket["organization_id"]]
    raise AssertionError("no ticket with a side-loaded organization")


def _open_ended_headings(body: Any, paths: list[tuple[Any, ...]]) -> list[tuple[Any, ...]]:
    """The headings of open-text questions: their answers make a response's content ("Q: heading")."""
    def question(path: tuple[Any, ...]) -> Any:
        return body["pages"][path[1]]["questions"][path[3]]
    return [path for path in paths if path[:1] == ("pages",) and path[2] == "questions"
            and question(path).get("family") == "open_ended"]


TARGETS = [
    Target("Zendesk ticket", "zendesk", r"/incremental/tickets/cursor\.json", lambda b: ("tickets", 0),
           lambda b, at: str(b["tickets"][0]["id"]), "description", "content"),
    Target("Zendesk requester", "zendesk", r"/incremental/tickets/cursor\.json",
           lambda b: ("users", _requester(b)[1]), lambda b, at: str(b["tickets"][_requester(b)[0]]["id"]),
           "name", "customer_name", id_loss="nothing"),
    Target("Zendesk organization", "zendesk", r"/incremental/tickets/cursor\.json",
           lambda b: ("organizations", _organization(b)[1]),
           lambda b, at: str(b["tickets"][_organization(b)[0]]["id"]), "name", "metadata", id_loss="nothing"),
    Target("Intercom search result", "intercom", r"^/conversations/search$", lambda b: ("conversations", 0),
           lambda b, at: str(b["conversations"][0]["id"]), None, None, stored_as_is=False),
    Target("Intercom conversation and parts", "intercom", r"^/conversations/\d+$", lambda b: (),
           lambda b, at: None, "body", "content"),
    Target("Intercom contact", "intercom", r"^/contacts/[^/]+$", lambda b: (), lambda b, at: None,
           "name", "customer_name", id_loss="nothing"),
    Target("SurveyMonkey response", "surveymonkey", r"/responses/bulk$", lambda b: ("data", 0),
           lambda b, at: str(b["data"][0]["id"]), "text", "content"),
    Target("SurveyMonkey survey details", "surveymonkey", r"^/surveys/\d+/details$", lambda b: (),
           lambda b, at: None, "heading", "content", id_loss="nothing", big_paths=_open_ended_headings),
    Target("SurveyMonkey survey list", "surveymonkey", r"^/surveys$", lambda b: ("data", 0),
           lambda b, at: None, "title", "title", id_loss="survey"),
]


# -- the emulator, what it serves, and a sync against it ---------------------------------------------------------


class FirstBodies(httpx.AsyncBaseTransport):
    """Real HTTP; keeps the first 200 answer to each path, to learn the shapes the sync reads."""

    def __init__(self) -> None:
        self.inner = httpx.AsyncHTTPTransport()
        self.bodies: dict[str, Any] = {}

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        response = await self.inner.handle_async_request(request)
        content = await response.aread()
        if response.status_code == 200:
            self.bodies.setdefault(_VENDOR_PREFIX.sub("", request.url.path), json.loads(content))
        return httpx.Response(response.status_code, headers=response.headers, content=content)

    async def aclose(self) -> None:
        await self.inner.aclose()


@dataclass
class Vendors:
    emulator: Emulator
    configs: dict[str, dict[str, str]]
    samples: dict[str, dict[str, Any]]

    def sample(self, target: Target) -> Any:
        for path, body in self.samples[target.vendor].items():
            if re.search(target.request, path):
                return body
        raise AssertionError(f"the sync never asked for {target.request}")

    def sync(self, vendor: str, store: Store) -> SourceResult:
        return sync(store, {vendor: integration(self.configs, vendor)}, incremental=False)[vendor]


def integration(configs: dict[str, dict[str, str]], vendor: str, **options: Any) -> Any:
    # Zendesk pages hold up to 1000 tickets; 4 gives this dataset two pages, like the other vendors have.
    if vendor == "zendesk":
        options["page_size"] = 4
    return get_integration_class(vendor)(configs[vendor], **options)


@pytest.fixture(scope="module")
def vendors() -> Iterator[Vendors]:
    emulator = Emulator(past_config(zendesk_tickets=8, intercom_conversations=6, surveymonkey_surveys=2,
                                    surveymonkey_responses_per_survey=4))
    with run_emulator_server(emulator) as root:
        configs = integration_configs(emulator, root)
        samples = {}
        for vendor, config in configs.items():
            capture = FirstBodies()
            with Store(":memory:") as store:
                sync(store, {vendor: integration(configs, vendor, transport=capture)}, incremental=False)
            samples[vendor] = capture.bodies
        yield Vendors(emulator, configs, samples)
        emulator.faults.clear()


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    with Store(tmp_path / "feedback.db") as opened:
        yield opened


def text_paths(body: Any, at: tuple[Any, ...]) -> list[tuple[Any, ...]]:
    node = body
    for step in at:
        node = node[step]
    return [(*at, *path) for path in string_paths(node) if not STRUCTURAL_KEY.match(_key(path))]


def structural_paths(body: Any, at: tuple[Any, ...]) -> list[tuple[Any, ...]]:
    node = body
    for step in at:
        node = node[step]
    return [(*at, *path) for path in string_paths(node) if STRUCTURAL_KEY.match(_key(path))]


def _key(path: tuple[Any, ...]) -> str:
    """The name of the field a string sits in (a list item takes its list's name)."""
    names = [step for step in path if isinstance(step, str)]
    return names[-1] if names else ""


def rows(store: Store) -> dict[str, dict[str, Any]]:
    store.conn.row_factory = None
    cursor = store.conn.execute("SELECT * FROM feedback")
    names = [d[0] for d in cursor.description]
    return {row[names.index("source_id")]: dict(zip(names, row)) for row in cursor}


def carries(row: dict[str, Any], mark: str) -> bool:
    return any(isinstance(value, str) and mark in value for value in row.values())


def assert_nothing_unstorable(store: Store) -> None:
    for key, row in rows(store).items():
        for column, value in row.items():
            if isinstance(value, str):
                assert "\x00" not in value, (key, column)
                value.encode("utf-8")  # a lone surrogate would raise here
    assert store.integrity_check() == "ok"


def inject(vendors: Vendors, target: Target, paths: list[tuple[Any, ...]], hostile: dict[str, Any]) -> None:
    vendors.emulator.faults.clear()
    vendors.emulator.faults.inject(target.vendor, target.request, "hostile_text", times=1, paths=paths, **hostile)


# -- text fields: stored with U+FFFD, the rest of the page stored, the source complete -----------------------------


@pytest.mark.parametrize("hostile", list(HOSTILE), ids=str)
@pytest.mark.parametrize("target", TARGETS, ids=str)
def test_hostile_text_in_every_text_field_is_stored_cleaned(vendors: Vendors, store: Store, target: Target,
                                                            hostile: str) -> None:
    body = vendors.sample(target)
    at = target.locate(body)
    paths = text_paths(body, at)
    assert paths, "the record kind has text fields"
    inject(vendors, target, paths, HOSTILE[hostile])

    result = vendors.sync(target.vendor, store)

    assert (result.status, result.errors) == ("complete", None)
    assert [fault.remaining for fault in vendors.emulator.faults.pending()] == []  # the fault was served
    assert stored_ids(store.conn, [target.vendor])[target.vendor] == ground_truth(vendors.emulator)[target.vendor]
    stored = rows(store)
    marked = sorted(key for key, row in stored.items() if carries(row, REPLACEMENT))
    if target.stored_as_is:
        assert marked, "the hostile record is stored with U+FFFD"
        owner = target.owner(body, at)
        assert owner is None or owner in marked
    else:
        assert marked == []  # the full conversation, fetched next, replaces the search result
    assert_nothing_unstorable(store)


@pytest.mark.parametrize("target", [t for t in TARGETS if t.big_field], ids=str)
def test_a_megabyte_string_is_stored_searchable_and_exported_capped(vendors: Vendors, store: Store, target: Target,
                                                                    tmp_path: Path) -> None:
    body = vendors.sample(target)
    at = target.locate(body)
    paths = [path for path in text_paths(body, at) if _key(path) == target.big_field]
    assert paths, f"{target.big_field} is in the answer"
    inject(vendors, target, target.big_paths(body, paths), {"text": BIG})

    result = vendors.sync(target.vendor, store)

    assert (result.status, result.errors) == ("complete", None)
    assert stored_ids(store.conn, [target.vendor])[target.vendor] == ground_truth(vendors.emulator)[target.vendor]
    big_rows = {key for key, row in rows(store).items() if BIG_WORD in (row[target.big_lands_in] or "")}
    assert big_rows, f"the megabyte reached {target.big_lands_in}"
    owner = target.owner(body, at)
    assert owner is None or owner in big_rows
    if target.big_lands_in in FTS_COLUMNS:
        assert store.count(Filters(sources=(target.vendor,), text=BIG_WORD)) == len(big_rows)

    path = tmp_path / "out.csv"
    assert export_csv(store, Filters(sources=(target.vendor,)), path) == len(ground_truth(vendors.emulator)[target.vendor])
    exported = list(csv.reader(io.StringIO(path.read_text(encoding="utf-8")[1:], newline="")))
    header, cells = exported[0], [cell for row in exported[1:] for cell in row]
    assert all(len(cell) <= MAX_CELL_CHARS for cell in cells)
    column = header.index(target.big_lands_in)
    capped = [row[column] for row in exported[1:] if row[column].endswith(TRUNCATED_MARKER)]
    assert len(capped) == len(big_rows) and all(len(cell) == MAX_CELL_CHARS for cell in capped)


# -- ids and dates: the record may be lost, never the source ---------------------------------------------------------


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_a_hostile_id_or_date_costs_at_most_its_own_records(vendors: Vendors, tmp_path: Path, data: st.DataObject
                                                            ) -> None:
    target = data.draw(st.sampled_from(TARGETS), label="target")
    body = vendors.sample(target)
    at = target.locate(body)
    candidates = structural_paths(body, at)
    if not candidates:
        return
    path = data.draw(st.sampled_from(candidates), label="field")
    hostile = data.draw(st.sampled_from([{"text": SURROGATE}, {"text": "\x00"}, {"raw": b"\xff"}, {"text": BIG}]),
                        label="hostile")
    inject(vendors, target, [path], hostile)
    truth = ground_truth(vendors.emulator)[target.vendor]

    # A new file for every example: Hypothesis replays examples (and their draws) while it shrinks a failure.
    with Store(tmp_path / f"ids-{uuid.uuid4().hex}.db") as store:
        result = vendors.sync(target.vendor, store)
        assert (result.status, result.errors) == ("complete", None)
        stored = set(stored_ids(store.conn, [target.vendor])[target.vendor])
        lost = set(truth) - stored
        if target.id_loss == "nothing":
            assert lost == set()
        elif target.id_loss == "record":
            owner = target.owner(body, at)
            assert len(lost) <= 1 and (owner is None or lost <= {owner})
        else:  # the survey's own id is broken: its responses cannot be asked for, the other survey's are stored
            survey_id = str(body["data"][0]["id"])
            assert lost <= set(vendors.emulator.surveymonkey.responses_in_range(survey_id))
        # A record whose id the vendor sent damaged may also land under that id as cleaned (U+FFFD in place of the
        # broken character): the same record, never a second copy of another one.
        extra = stored - set(truth)
        assert len(extra) <= len(lost) and all("\ufffd" in source_id for source_id in extra)
        assert len(stored) == len(truth) - len(lost) + len(extra)
        assert_nothing_unstorable(store)


# -- the one boundary: NormalizedRecord ------------------------------------------------------------------------------

HOSTILE_CHARACTERS = st.sampled_from(["\udcff", "\ud83d", "\udfff", "\ud800", "\x00"])
HOSTILE_TEXT = st.lists(st.one_of(st.text(max_size=4), HOSTILE_CHARACTERS), max_size=6).map("".join)
JSON_LEAVES = st.one_of(st.none(), st.booleans(), st.integers(), HOSTILE_TEXT)
METADATA = st.dictionaries(HOSTILE_TEXT, st.recursive(JSON_LEAVES, lambda inner: st.one_of(
    st.lists(inner, max_size=3), st.dictionaries(HOSTILE_TEXT, inner, max_size=3)), max_leaves=8), max_size=4)


def unstorable(value: Any) -> bool:
    if isinstance(value, str):
        return "\x00" in value or any("\ud800" <= c <= "\udfff" for c in value)
    if isinstance(value, dict):
        return any(unstorable(k) or unstorable(v) for k, v in value.items())
    if isinstance(value, (list, tuple)):
        return any(unstorable(v) for v in value)
    return False


@settings(max_examples=150, deadline=None)
@given(title=HOSTILE_TEXT, content=HOSTILE_TEXT, source_id=HOSTILE_TEXT.filter(lambda s: s != ""),
       name=HOSTILE_TEXT, email=HOSTILE_TEXT, metadata=METADATA)
def test_every_string_of_a_record_is_cleaned_and_stored(title: str, content: str, source_id: str, name: str,
                                                        email: str, metadata: dict[str, Any]) -> None:
    record = NormalizedRecord(source="zendesk", source_id=source_id, title=title, content=content,
                              customer_name=name, customer_email=email, metadata=metadata,
                              created_at=datetime(2026, 3, 1, tzinfo=timezone.utc))
    dumped = record.model_dump()
    assert not unstorable(dumped)
    assert (record.source_id, record.title, record.content, record.customer_name, record.customer_email) == (
        clean_text(source_id), clean_text(title), clean_text(content), clean_text(name), clean_text(email))
    assert record.metadata == clean_value(metadata)
    with Store(":memory:") as store:
        store.upsert_records([record])
        row = store.get_record("zendesk", record.source_id)
    assert row is not None and (row["title"], row["content"]) == (record.title, record.content)


@given(HOSTILE_TEXT)
def test_clean_text_replaces_only_what_cannot_be_stored(text: str) -> None:
    cleaned = clean_text(text)
    assert len(cleaned) == len(text)
    for before, after in zip(text, cleaned):
        assert after == (REPLACEMENT if unstorable(before) else before)
    cleaned.encode("utf-8")


def test_text_without_hostile_characters_is_the_same_object() -> None:
    text = "Café — naïve ✓ 🎉" * 1000
    assert clean_text(text) is text


def test_a_resume_cursor_holding_a_lone_surrogate_is_saved_and_read_back(fresh_store: Store) -> None:
    cursor = {"after_cursor": "MTc5NjE1" + SURROGATE, "position": "x\x00y"}
    fresh_store.begin_state("zendesk", "incremental", {}, None)
    fresh_store.upsert_records([], cursor_update=("zendesk", "incremental", cursor))
    assert fresh_store.get_state("zendesk", "incremental").cursor == cursor


def test_the_emulator_sends_a_lone_surrogate_as_the_json_escape() -> None:
    sent = hostile_body({"a": ["x"], "b": "y"}, {"paths": [("a", 0), ("b",)], "text": SURROGATE})
    assert sent == b'{"a":["x\\udcff"],"b":"y\\udcff"}'
    raw = hostile_body({"a": "x"}, {"paths": [("a",)], "raw": b"\xff"})
    assert raw == b'{"a":"x\xff"}'


# -- the webhook receiver: 2xx or 4xx, never 5xx; stored cleaned; the fetch queue moves on ------------------------

# Keys that say what an event or an item is: kept intact so the delivery is still the event it claims to be.
EVENT_KIND_KEYS = {"topic", "event_type", "subject"}


def poisoned_delivery(payload: dict[str, Any], hostile: dict[str, Any], *, ids_too: bool) -> bytes:
    paths = [path for path in string_paths(payload)
             if not (len(path) == 1 and path[0] in EVENT_KIND_KEYS) and path[-1] != "type"
             and (ids_too or not STRUCTURAL_KEY.match(_key(path)))]
    return hostile_body(payload, {"paths": paths, **hostile})


DELIVERY_HOSTILE = {**HOSTILE, "a megabyte": {"text": BIG}}


@pytest.mark.parametrize("hostile", list(DELIVERY_HOSTILE), ids=str)
@pytest.mark.parametrize("source", ["zendesk", "intercom", "surveymonkey"])
def test_the_receiver_never_answers_5xx_to_hostile_text(tmp_path: Path, source: str, hostile: str) -> None:
    from tests.test_webhooks import BASE_PAYLOADS, receiver

    with receiver(tmp_path) as running:
        texts = running.deliver(source, poisoned_delivery(BASE_PAYLOADS[source](), DELIVERY_HOSTILE[hostile],
                                                          ids_too=False))
        everything = running.deliver(source, poisoned_delivery(BASE_PAYLOADS[source](event_id="e-2"),
                                                               DELIVERY_HOSTILE[hostile], ids_too=True))
        assert texts.status_code < 500 and everything.status_code < 500, (texts.text, everything.text)
        with Store(running.db_path) as store:
            assert_nothing_unstorable(store)
            events = store.conn.execute("SELECT event_id, verdict FROM webhook_events ORDER BY id").fetchall()
            stored = rows(store)
    if hostile == "a megabyte":
        # Over the receiver's body cap: refused before any JSON work, nothing stored.
        assert (texts.status_code, everything.status_code, events, stored) == (413, 413, [], {})
        return
    assert (texts.status_code, everything.status_code) == (200, 200)
    assert len(events) == 2  # both logged, the second under an id holding U+FFFD
    assert REPLACEMENT in events[1][0] and events[0][1] in ("stored", "queued")
    if source != "surveymonkey":  # SurveyMonkey events carry ids only
        record_id = {"zendesk": "35436", "intercom": "4711"}[source]
        assert carries(stored[record_id], REPLACEMENT)
        # With its id poisoned too, a ticket (whose id must be digits) is unmappable; a conversation is stored
        # under an id holding U+FFFD.
        others = sorted(set(stored) - {record_id})
        if source == "intercom":
            assert len(others) == 1 and others[0].startswith("4711" + REPLACEMENT)
        else:
            assert others == []


def test_a_fetch_of_a_hostile_record_completes_and_the_queue_moves_on(tmp_path: Path) -> None:
    from tests.test_webhooks import emulator_integrations, receiver, surveymonkey_event

    emulator = Emulator(past_config(zendesk_tickets=2, intercom_conversations=2, surveymonkey_surveys=1,
                                    surveymonkey_responses_per_survey=3))
    with run_emulator_server(emulator) as root:
        urls = emulator.base_urls(root)
        survey_id = emulator.surveymonkey.survey_ids()[0]
        first, second = emulator.surveymonkey.responses_in_range(survey_id)[:2]
        for response_id, hostile in ((first, {"text": SURROGATE}), (second, {"raw": b"\xff\xfe"})):
            sample = httpx.get(f"{urls['surveymonkey']}/surveys/{survey_id}/responses/{response_id}/details",
                               headers={"Authorization": f"Bearer {emulator.config.surveymonkey_token}"}).json()
            emulator.faults.inject("surveymonkey", rf"/responses/{response_id}/details$", "hostile_text",
                                   paths=text_paths(sample, ()), **hostile)
        with receiver(tmp_path, integrations_factory=emulator_integrations(urls)) as running:
            answers = [running.deliver("surveymonkey", surveymonkey_event(f"sm-{i}", response_id, survey_id))
                       for i, response_id in enumerate((first, second))]
            assert [a.json()["verdict"] for a in answers] == ["queued", "queued"]
            wait_for(lambda: running.counts()["webhook_fetches"] == 0)
            with Store(running.db_path) as store:
                stored = rows(store)
                assert_nothing_unstorable(store)
    assert sorted(stored) == sorted((first, second))
    assert all(carries(row, REPLACEMENT) for row in stored.values())
    assert emulator.faults.pending() == []


@given(source_id=HOSTILE_TEXT.filter(lambda s: s != ""))
def test_a_removal_with_a_hostile_id_is_cleaned_like_a_record(source_id: str) -> None:
    from feedback_sources.models import Removal

    removal = Removal(source="intercom", source_id=source_id, removed_at=datetime(2026, 3, 1, tzinfo=timezone.utc))
    assert removal.source_id == clean_text(source_id) and not unstorable(removal.model_dump())


def test_the_emulator_serves_stored_text_holding_a_lone_surrogate_as_the_json_escape() -> None:
    from feedback_sources.emulator.wire import Reply

    assert Reply(200, {"subject": "cut 🎉 then \ud83d"}).encode() == b'{"subject":"cut \\ud83c\\udf89 then \\ud83d"}'
    assert Reply(200, {"subject": "caf\u00e9"}).encode() == "{\"subject\":\"caf\u00e9\"}".encode()  # UTF-8 as before
