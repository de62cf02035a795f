"""Response bodies decode with orjson and, for what orjson refuses but JSON allows, the standard library: the values
are always those `response.json()` would give, and a body neither can read raises what get_json retries on."""

from __future__ import annotations

import json

import pytest

from feedback_sources.integrations.http import decode_json


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
