"""The receiver and the Webhooks page read the source registry: a source's webhook part decides its route and its
place on the page, and a source without one is simply absent."""

from __future__ import annotations

import dataclasses
import hashlib
import hmac
import json
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import httpx
import pytest
from app_fixtures import AppEnv, app_env, run_page  # noqa: F401  (fixtures)

from feedback_sources import sources as sources_module
from feedback_sources import workspace as workspace_module
from feedback_sources.emulator import Emulator, EmulatorConfig
from feedback_sources.sources import registry
from feedback_sources.sources.spec import SourceSpec
from feedback_sources.webhooks import recent_events
from feedback_sources.store import Store
from feedback_sources.webhooks.app import create_receiver_app
from feedback_sources.webhooks.handler import WebhookHandler, webhook_sources
from feedback_sources.webhooks.payloads import Interpretation, MappingContext, event_id_of
from feedback_sources.webhooks.server import running_receiver, secrets_from_configs, startup_lines
from feedback_sources.webhooks.signatures import SignatureError, header, same

PAGE = "app_pages/webhooks.py"
PINGER_SECRET = "pinger-signing-secret"


# -- a plugin source with webhooks of its own, defined here and nowhere else ----------------------------------------


def _pinger_signature(secret: str, body: bytes) -> str:
    return hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def _pinger_headers(headers: Mapping[str, str], secrets: Mapping[str, str], now: float) -> None:
    if header(headers, "X-Pinger-Signature") is None:
        raise SignatureError("missing X-Pinger-Signature")


def _pinger_verify(headers: Mapping[str, str], body: bytes, secrets: Mapping[str, str], now: float) -> None:
    if not same(_pinger_signature(secrets["signing_secret"], body), header(headers, "X-Pinger-Signature") or ""):
        raise SignatureError("signature mismatch")


def _pinger_interpret(payload: dict[str, Any], context: MappingContext) -> Interpretation:
    return Interpretation(event_id_of(payload.get("id")), "ping", "ignored", detail="ping")


PINGER = WebhookHandler(
    source="pinger",
    secret_fields=("signing_secret",),
    secret_env_vars=("PINGER_SIGNING_SECRET",),
    check_headers=_pinger_headers,
    verify=_pinger_verify,
    interpret=_pinger_interpret,
)


@pytest.fixture
def without_intercom_webhooks(monkeypatch: pytest.MonkeyPatch) -> None:
    """The registry with Intercom's webhook part taken away (its integration and emulator stay)."""
    specs = {name: dataclasses.replace(spec, webhook=None) if name == "intercom" else spec
             for name, spec in registry().items()}
    monkeypatch.setattr(sources_module, "_SPECS", specs)


@pytest.fixture
def with_pinger(monkeypatch: pytest.MonkeyPatch) -> None:
    """The built-in sources plus a plugin whose only part besides its name is its webhook handler."""
    specs = dict(registry())
    specs["pinger"] = SourceSpec(name="pinger", label="Pinger", integration="tests.test_webhooks_registry:Missing",
                                 webhook="tests.test_webhooks_registry:PINGER")
    monkeypatch.setattr(sources_module, "_SPECS", specs)


@pytest.fixture
def receiver_url(tmp_path: Path) -> Iterator[tuple[str, Any]]:
    configs = {"zendesk": {"webhook_secret": "zd", "subdomain": "acme"}, "intercom": {"client_secret": "ic"},
               "surveymonkey": {"client_id": "id", "client_secret": "sm"}, "pinger": {"signing_secret": PINGER_SECRET}}
    app = create_receiver_app(tmp_path / "feedback.db", secrets_from_configs(configs), heartbeat_interval=0.1)
    with running_receiver(app) as url:
        yield url, app.state.receiver


def test_a_source_without_a_webhook_part_has_no_route(without_intercom_webhooks: None, receiver_url):
    url, receiver = receiver_url
    assert webhook_sources() == ("zendesk", "surveymonkey")
    assert list(receiver.source_states()) == ["zendesk", "surveymonkey"]
    with httpx.Client(base_url=url, trust_env=False) as http:
        assert http.post("/webhooks/intercom", content=b"{}").status_code == 404
        assert http.head("/webhooks/intercom").status_code == 404
        assert http.head("/webhooks/zendesk").status_code == 200
        assert http.head("/webhooks/surveymonkey").status_code == 200
    assert "intercom" not in secrets_from_configs({"intercom": {"client_secret": "ic"}})


def test_a_plugin_with_a_webhook_handler_gets_its_route_and_its_checks(with_pinger: None, receiver_url, tmp_path):
    url, receiver = receiver_url
    assert webhook_sources() == ("zendesk", "intercom", "surveymonkey", "pinger")
    assert receiver.source_states()["pinger"] == {"accepting": True, "missing": [], "fetches": False}
    body = json.dumps({"id": "ping-1"}).encode()
    with httpx.Client(base_url=url, trust_env=False) as http:
        unsigned = http.post("/webhooks/pinger", content=body)
        forged = http.post("/webhooks/pinger", content=body, headers={"X-Pinger-Signature": "0" * 64})
        signed = http.post("/webhooks/pinger", content=body,
                           headers={"X-Pinger-Signature": _pinger_signature(PINGER_SECRET, body)})
        again = http.post("/webhooks/pinger", content=body,
                          headers={"X-Pinger-Signature": _pinger_signature(PINGER_SECRET, body)})
    assert (unsigned.status_code, forged.status_code) == (401, 401)
    assert (signed.status_code, signed.json()["verdict"]) == (200, "ignored")
    assert (again.status_code, again.json()["verdict"]) == (200, "duplicate")
    with Store(tmp_path / "feedback.db") as store:
        events = recent_events(store)
    assert [(e["source"], e["event_id"], e["deliveries"]) for e in events] == [("pinger", "ping-1", 2)]


def test_startup_lines_name_the_plugin_s_own_variables(with_pinger: None):
    lines = startup_lines({"pinger": {"accepting": False, "missing": ["signing_secret"], "fetches": False}})
    assert lines == ["pinger        REJECTING every delivery: no signing_secret configured. Set PINGER_SIGNING_SECRET "
                     "or run `python -m feedback_sources credentials set pinger`."]


def test_the_webhooks_page_leaves_out_a_source_without_a_webhook_part(
    app_env: AppEnv, without_intercom_webhooks: None, monkeypatch: pytest.MonkeyPatch
):
    emulator = Emulator(EmulatorConfig(seed=9, zendesk_tickets=10, intercom_conversations=10, surveymonkey_surveys=1,
                                       surveymonkey_responses_per_survey=5))
    monkeypatch.setattr(workspace_module, "_demo_emulator", emulator)
    at = run_page(app_env, PAGE, mode="demo")
    frame = next(f for f in at.dataframe if "accepting" in f.value.columns).value
    assert list(frame["source"]) == ["Zendesk", "SurveyMonkey"]
    assert [b.key for b in at.button if b.key.startswith("webhooks_register_")] == [
        "webhooks_register_zendesk", "webhooks_register_surveymonkey"]
    tunnel_text = " ".join(m.value for m in at.markdown)
    assert "Zendesk and SurveyMonkey post from their own servers" in tunnel_text
