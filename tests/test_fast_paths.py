"""The sync's fast paths give exactly what the slower, validated paths give.

map_ticket builds a record with `NormalizedRecord.model_construct` when its own checks already guarantee the types;
these tests prove the result equals a fully validated record, field by field and type by type, on every ticket the
emulator generates and on hostile text, which must still take the validated (cleaning) path. The response decoder
uses orjson and falls back to the standard library for JSON that orjson refuses.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from feedback_sources.emulator import Emulator, EmulatorConfig
from feedback_sources.integrations.http import decode_json
from feedback_sources.integrations.zendesk import index_by_id, is_deleted, map_ticket
from feedback_sources.models import NormalizedRecord
from feedback_sources.rules import DEFAULT_RULES


def _validated(record: NormalizedRecord) -> NormalizedRecord:
    """The same values through the model's full validation (and, where the model cleans text, its cleaning)."""
    return NormalizedRecord(**{name: getattr(record, name) for name in NormalizedRecord.model_fields})


def _assert_same(record: NormalizedRecord, expected: NormalizedRecord) -> None:
    assert record == expected
    for name in NormalizedRecord.model_fields:
        assert type(getattr(record, name)) is type(getattr(expected, name)), name
    assert record.model_dump() == expected.model_dump()
    assert record.updated_at == expected.updated_at


def _emulated_tickets(count: int) -> tuple[list[dict[str, Any]], dict[Any, Any], dict[Any, Any]]:
    emulator = Emulator(EmulatorConfig(seed=5, zendesk_tickets=count, intercom_conversations=1, surveymonkey_surveys=1,
                                       surveymonkey_responses_per_survey=1))
    zendesk = emulator.zendesk
    tickets = [zendesk.ticket(ticket_id) for ticket_id in zendesk.all_ticket_ids()]
    tickets = [ticket for ticket in tickets if ticket is not None and not is_deleted(ticket)]
    users = index_by_id([zendesk.user(t["requester_id"]) for t in tickets if t.get("requester_id")])
    organizations = index_by_id([zendesk.organization(t["organization_id"]) for t in tickets
                                 if t.get("organization_id")])
    return tickets, users, organizations


def _count_constructions(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    built: list[int] = []
    construct = NormalizedRecord.model_construct

    def counting(*args: Any, **kwargs: Any) -> NormalizedRecord:
        built.append(1)
        return construct(*args, **kwargs)

    monkeypatch.setattr(NormalizedRecord, "model_construct", counting)
    return built


def test_constructed_records_equal_validated_records_for_every_emulated_ticket(monkeypatch: pytest.MonkeyPatch) -> None:
    built = _count_constructions(monkeypatch)
    tickets, users, organizations = _emulated_tickets(400)
    assert len(tickets) > 300
    tiers = set()
    for ticket in tickets:
        record = map_ticket(ticket, users, subdomain="acme", rules=DEFAULT_RULES, organizations_by_id=organizations)
        _assert_same(record, _validated(record))
        tiers.add(record.customer_tier)
    assert None in tiers and len(tiers) > 2  # both the "no plan" and several plan branches were taken
    assert len(built) == len(tickets)  # the fast path is the one that was compared


@pytest.mark.parametrize("hostile", ["cut emoji \udcff here", "nul \x00 inside", "\ud83d"])
@pytest.mark.parametrize("field", ["subject", "description", "tags", "satisfaction_rating"])
def test_hostile_text_takes_the_validated_path(hostile: str, field: str, monkeypatch: pytest.MonkeyPatch) -> None:
    built = _count_constructions(monkeypatch)
    ticket: dict[str, Any] = {"id": 7, "created_at": "2026-03-01T10:00:00Z", "updated_at": "2026-03-02T10:00:00Z",
                              "subject": "Export broken", "description": "It fails", "tags": ["export"],
                              "requester_id": 1, "status": "open"}
    value: Any = {"subject": hostile, "description": hostile, "tags": ["export", hostile],
                  "satisfaction_rating": {"score": "bad", "comment": hostile}}[field]
    ticket[field] = value
    users = {1: {"id": 1, "name": "Dana", "email": "dana@example.com"}}
    record = map_ticket(ticket, users, subdomain="acme", rules=DEFAULT_RULES)
    # Whatever the model does with such text (it cleans it), the mapper's record is what the model made of it.
    _assert_same(record, _validated(record))
    assert built == []


@pytest.mark.parametrize("body", [
    b'{"tickets": [{"id": 1, "subject": "caf\\u00e9 \\ud83d\\ude00"}], "end_of_stream": true}',
    b'{"text": "cut \\udcff emoji"}',  # a lone surrogate: orjson refuses it, JSON allows it
    b'{"n": NaN, "big": 123456789012345678901234567890}',
    b'\xef\xbb\xbf{"bom": 1}',
    '{"utf16": "\u00e9"}'.encode("utf-16"),
    b'{"nul": "a\\u0000b", "dup": 1, "dup": 2}',
])
def test_decode_json_matches_the_standard_library(body: bytes) -> None:
    decoded = decode_json(body)
    expected = json.loads(body)
    assert json.dumps(decoded, sort_keys=True) == json.dumps(expected, sort_keys=True)


@pytest.mark.parametrize("body", [b'{"tickets": [', b"<html>502</html>", b"\xff\xfe\x00garbage", b""])
def test_decode_json_raises_what_get_json_retries_on(body: bytes) -> None:
    with pytest.raises((json.JSONDecodeError, UnicodeDecodeError)):
        decode_json(body)
