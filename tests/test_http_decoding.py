"""Response bodies decode with orjson and, for what orjson refuses but JSON allows, the standard library: the values
are those `response.json()` gives, invalid UTF-8 inside a string becomes U+FFFD, and a body that is not JSON raises
what get_json retries on."""

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
    with pytest.raises(json.JSONDecodeError):
        decode_json(body)


def test_bytes_that_are_not_utf8_inside_a_string_become_replacement_characters() -> None:
    assert decode_json(b'{"text": "caf\xe9 ok", "n": 1}') == {"text": "caf\ufffd ok", "n": 1}
