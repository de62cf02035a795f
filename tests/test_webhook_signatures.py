"""Webhook signature schemes: known vectors, and every way a forgery or a replay is refused."""

from __future__ import annotations

import json
from datetime import datetime, timezone

import pytest

from feedback_sources.sources.intercom.webhooks import intercom_signature, verify_intercom
from feedback_sources.sources.surveymonkey.webhooks import surveymonkey_signature, verify_surveymonkey
from feedback_sources.sources.zendesk.webhooks import parse_zendesk_timestamp, verify_zendesk, zendesk_signature
from feedback_sources.webhooks.signatures import SignatureError, missing_secret_fields, verify

# Expected values were computed outside Python with OpenSSL, e.g.
#   printf '%s' '2021-03-25T05:09:27Z{"type":...}' | openssl dgst -sha256 -hmac 'zendesk-test-signing-secret' -binary | openssl base64 -A
ZENDESK_SECRET = "zendesk-test-signing-secret"
ZENDESK_TIMESTAMP = "2021-03-25T05:09:27Z"
ZENDESK_BODY = b'{"type":"zen:event-type:ticket.created","id":"01HX"}'
ZENDESK_EXPECTED = "n4r0Wbw4ry964Fw7UFS+khb5AyKdY4LBVxyhUtUG+ZE="
ZENDESK_UNIX_TIMESTAMP = "1616649000"
ZENDESK_UNIX_BODY = b'{"a":1}'
ZENDESK_UNIX_EXPECTED = "vbwH5TehGvTh2NDAxE0pVLywOenkr8fIPjAFBpRrCbA="

INTERCOM_SECRET = "intercom-client-secret"
INTERCOM_BODY = b'{"type":"notification_event","id":"notif_1"}'
INTERCOM_EXPECTED = "sha1=23227fc8c3b135104982418369555b8e0c12e64c"

SM_CLIENT_ID = "sm-client-id"
SM_CLIENT_SECRET = "sm-client-secret"
SM_BODY = b'{"event_id":"10001","event_type":"response_completed"}'
SM_EXPECTED = "5KIMlSZPvw4p1ks6VMeWKWHqcIg="

ZENDESK_SENT_AT = datetime(2021, 3, 25, 5, 9, 27, tzinfo=timezone.utc).timestamp()


def zendesk_headers(signature: str = ZENDESK_EXPECTED, timestamp: str = ZENDESK_TIMESTAMP) -> dict[str, str]:
    return {"X-Zendesk-Webhook-Signature": signature, "X-Zendesk-Webhook-Signature-Timestamp": timestamp}


def one_byte_changed(body: bytes) -> bytes:
    changed = bytearray(body)
    changed[len(changed) // 2] ^= 0x01
    return bytes(changed)


def reserialized(body: bytes) -> bytes:
    # Same JSON value, different bytes: what a framework that parses and re-dumps the body would verify.
    return json.dumps(json.loads(body), indent=1).encode()


# -- known vectors ---------------------------------------------------------------------------------------------


def test_zendesk_known_vectors():
    assert zendesk_signature(ZENDESK_SECRET, ZENDESK_TIMESTAMP, ZENDESK_BODY) == ZENDESK_EXPECTED
    assert zendesk_signature(ZENDESK_SECRET, ZENDESK_UNIX_TIMESTAMP, ZENDESK_UNIX_BODY) == ZENDESK_UNIX_EXPECTED


def test_intercom_known_vector():
    assert intercom_signature(INTERCOM_SECRET, INTERCOM_BODY) == INTERCOM_EXPECTED


def test_surveymonkey_known_vector():
    assert surveymonkey_signature(SM_CLIENT_ID, SM_CLIENT_SECRET, SM_BODY) == SM_EXPECTED


# -- Zendesk ---------------------------------------------------------------------------------------------------


def test_zendesk_accepts_the_known_delivery_within_the_window():
    verify_zendesk(zendesk_headers(), ZENDESK_BODY, ZENDESK_SECRET, now=ZENDESK_SENT_AT + 299)
    verify_zendesk(zendesk_headers(), ZENDESK_BODY, ZENDESK_SECRET, now=ZENDESK_SENT_AT - 299)


def test_zendesk_accepts_unix_second_timestamps():
    headers = zendesk_headers(ZENDESK_UNIX_EXPECTED, ZENDESK_UNIX_TIMESTAMP)
    verify_zendesk(headers, ZENDESK_UNIX_BODY, ZENDESK_SECRET, now=1616649000 + 10)


@pytest.mark.parametrize("offset", [301, -301, 86_400])
def test_zendesk_refuses_stale_and_future_timestamps(offset: float):
    with pytest.raises(SignatureError, match="replay window"):
        verify_zendesk(zendesk_headers(), ZENDESK_BODY, ZENDESK_SECRET, now=ZENDESK_SENT_AT + offset)


@pytest.mark.parametrize(
    ("headers", "body", "secret", "reason"),
    [
        (zendesk_headers(), ZENDESK_BODY, "another-secret", "mismatch"),
        (zendesk_headers(), one_byte_changed(ZENDESK_BODY), ZENDESK_SECRET, "mismatch"),
        (zendesk_headers(), reserialized(ZENDESK_BODY), ZENDESK_SECRET, "mismatch"),
        (zendesk_headers(timestamp="2021-03-25T05:09:28Z"), ZENDESK_BODY, ZENDESK_SECRET, "mismatch"),
        ({"X-Zendesk-Webhook-Signature-Timestamp": ZENDESK_TIMESTAMP}, ZENDESK_BODY, ZENDESK_SECRET, "missing"),
        ({"X-Zendesk-Webhook-Signature": ZENDESK_EXPECTED}, ZENDESK_BODY, ZENDESK_SECRET, "missing"),
        (zendesk_headers(signature="  "), ZENDESK_BODY, ZENDESK_SECRET, "missing"),
        (zendesk_headers(timestamp="yesterday"), ZENDESK_BODY, ZENDESK_SECRET, "unreadable"),
        (zendesk_headers(signature="n4r0Wbw4ry964Fw7UFS+khb5AyKdY4LBVxyhUtUG+ZE"), ZENDESK_BODY, ZENDESK_SECRET, "mismatch"),
        (zendesk_headers(signature="ñ" * 44), ZENDESK_BODY, ZENDESK_SECRET, "mismatch"),
    ],
    ids=["wrong-secret", "one-byte", "reserialized", "timestamp-changed", "no-signature", "no-timestamp",
         "blank-signature", "bad-timestamp", "truncated", "non-ascii"],
)
def test_zendesk_refuses_forgeries(headers: dict[str, str], body: bytes, secret: str, reason: str):
    with pytest.raises(SignatureError, match=reason):
        verify_zendesk(headers, body, secret, now=ZENDESK_SENT_AT)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2021-03-25T05:09:27Z", ZENDESK_SENT_AT),
        ("2021-03-25T05:09:27+00:00", ZENDESK_SENT_AT),
        ("2021-03-25T07:09:27+02:00", ZENDESK_SENT_AT),
        ("2021-03-25T05:09:27.500Z", ZENDESK_SENT_AT + 0.5),
        ("2021-03-25T05:09:27", ZENDESK_SENT_AT),
        ("1616648967", ZENDESK_SENT_AT),
        ("1616648967.25", ZENDESK_SENT_AT + 0.25),
        ("", None),
        ("soon", None),
        ("-1616648967", None),
        ("1e9", None),
    ],
)
def test_zendesk_timestamp_forms(text: str, expected: float | None):
    assert parse_zendesk_timestamp(text) == expected


# -- Intercom --------------------------------------------------------------------------------------------------


def test_intercom_accepts_the_known_delivery_at_any_age():
    verify_intercom({"X-Hub-Signature": INTERCOM_EXPECTED}, INTERCOM_BODY, INTERCOM_SECRET)
    # Lower-case header names (as servers deliver them) and upper-case hex are the same signature.
    verify_intercom({"x-hub-signature": INTERCOM_EXPECTED.upper().replace("SHA1=", "sha1=")}, INTERCOM_BODY, INTERCOM_SECRET)


@pytest.mark.parametrize(
    ("headers", "body", "secret", "reason"),
    [
        ({"X-Hub-Signature": INTERCOM_EXPECTED}, INTERCOM_BODY, "another-secret", "mismatch"),
        ({"X-Hub-Signature": INTERCOM_EXPECTED}, one_byte_changed(INTERCOM_BODY), INTERCOM_SECRET, "mismatch"),
        ({"X-Hub-Signature": INTERCOM_EXPECTED}, reserialized(INTERCOM_BODY), INTERCOM_SECRET, "mismatch"),
        ({}, INTERCOM_BODY, INTERCOM_SECRET, "missing"),
        ({"X-Hub-Signature": INTERCOM_EXPECTED[5:]}, INTERCOM_BODY, INTERCOM_SECRET, "sha1="),
        ({"X-Hub-Signature": "sha256=" + INTERCOM_EXPECTED[5:]}, INTERCOM_BODY, INTERCOM_SECRET, "sha1="),
        ({"X-Hub-Signature": "sha1="}, INTERCOM_BODY, INTERCOM_SECRET, "sha1="),
    ],
    ids=["wrong-secret", "one-byte", "reserialized", "no-header", "no-scheme", "other-scheme", "empty-digest"],
)
def test_intercom_refuses_forgeries(headers: dict[str, str], body: bytes, secret: str, reason: str):
    with pytest.raises(SignatureError, match=reason):
        verify_intercom(headers, body, secret)


# -- SurveyMonkey ----------------------------------------------------------------------------------------------


def test_surveymonkey_accepts_the_known_delivery():
    verify_surveymonkey({"Sm-Signature": SM_EXPECTED, "Sm-Apikey": SM_CLIENT_ID}, SM_BODY, SM_CLIENT_ID, SM_CLIENT_SECRET)


@pytest.mark.parametrize(
    ("headers", "body", "client_id", "client_secret", "reason"),
    [
        ({"Sm-Signature": SM_EXPECTED}, SM_BODY, SM_CLIENT_ID, "another-secret", "mismatch"),
        ({"Sm-Signature": SM_EXPECTED}, SM_BODY, "another-client", SM_CLIENT_SECRET, "mismatch"),
        ({"Sm-Signature": SM_EXPECTED}, one_byte_changed(SM_BODY), SM_CLIENT_ID, SM_CLIENT_SECRET, "mismatch"),
        ({"Sm-Signature": SM_EXPECTED}, reserialized(SM_BODY), SM_CLIENT_ID, SM_CLIENT_SECRET, "mismatch"),
        ({"Sm-Apikey": SM_CLIENT_ID}, SM_BODY, SM_CLIENT_ID, SM_CLIENT_SECRET, "missing"),
    ],
    ids=["wrong-secret", "wrong-client-id", "one-byte", "reserialized", "no-signature"],
)
def test_surveymonkey_refuses_forgeries(
    headers: dict[str, str], body: bytes, client_id: str, client_secret: str, reason: str
):
    with pytest.raises(SignatureError, match=reason):
        verify_surveymonkey(headers, body, client_id, client_secret)


def test_surveymonkey_key_ignores_the_callers_api_key_header():
    # A forger who signs with their own app's id and secret and names that id in Sm-Apikey is still refused.
    forged = surveymonkey_signature("attacker-app", "attacker-secret", SM_BODY)
    with pytest.raises(SignatureError, match="mismatch"):
        verify_surveymonkey({"Sm-Signature": forged, "Sm-Apikey": "attacker-app"}, SM_BODY, SM_CLIENT_ID, SM_CLIENT_SECRET)


# -- dispatch and missing secrets ------------------------------------------------------------------------------


def test_verify_dispatches_per_source():
    verify("zendesk", zendesk_headers(), ZENDESK_BODY, {"webhook_secret": ZENDESK_SECRET}, now=ZENDESK_SENT_AT)
    verify("intercom", {"X-Hub-Signature": INTERCOM_EXPECTED}, INTERCOM_BODY, {"client_secret": INTERCOM_SECRET}, now=0)
    verify(
        "surveymonkey",
        {"Sm-Signature": SM_EXPECTED},
        SM_BODY,
        {"client_id": SM_CLIENT_ID, "client_secret": SM_CLIENT_SECRET},
        now=0,
    )


@pytest.mark.parametrize(
    ("source", "secrets", "missing"),
    [
        ("zendesk", None, ["webhook_secret"]),
        ("zendesk", {"webhook_secret": "  "}, ["webhook_secret"]),
        ("intercom", {"access_token": "x"}, ["client_secret"]),
        ("surveymonkey", {"client_secret": SM_CLIENT_SECRET}, ["client_id"]),
        ("surveymonkey", {}, ["client_id", "client_secret"]),
    ],
)
def test_a_source_without_its_secret_fails_closed(source: str, secrets: dict[str, str] | None, missing: list[str]):
    assert missing_secret_fields(source, secrets) == missing
    with pytest.raises(SignatureError, match="configured"):
        verify(source, {}, b"{}", secrets, now=0)
