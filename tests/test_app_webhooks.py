"""Webhooks page (AppTest): receiver status, starting and stopping the receiver process, registering with each
vendor, and demo test events that travel emulator → receiver → store."""

from __future__ import annotations

import os
import socket
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
from app_fixtures import AppEnv, app_env, emulator_url, run_page, visible_strings  # noqa: F401  (fixtures)
from streamlit.testing.v1 import AppTest

from feedback_sources import workspace as workspace_module
from feedback_sources.credentials import SERVICE_NAME
from feedback_sources.emulator import Emulator, EmulatorConfig
from feedback_sources.sources.zendesk.emulator import (
    DEMO_ZENDESK_EMAIL, DEMO_ZENDESK_TOKEN, DEMO_ZENDESK_WEBHOOK_SECRET,
)
from feedback_sources.store import Store
from feedback_sources.ui.text import md_escape
from feedback_sources.webhooks import receiver_status, recent_events
from feedback_sources.webhooks.app import create_receiver_app
from feedback_sources.webhooks.server import running_receiver, secrets_from_configs
from feedback_sources.workspace import demo_workspace
from tests.helpers import free_port, wait_for

PAGE = "app_pages/webhooks.py"


@pytest.fixture
def demo_vendors(monkeypatch: pytest.MonkeyPatch) -> Emulator:
    """A small demo emulator of its own, so registrations and events of one test stay in that test."""
    emulator = Emulator(EmulatorConfig(seed=9, zendesk_tickets=30, intercom_conversations=20, surveymonkey_surveys=2,
                                       surveymonkey_responses_per_survey=8))
    monkeypatch.setattr(workspace_module, "_demo_emulator", emulator)
    return emulator


@contextmanager
def demo_receiver(env: AppEnv) -> Iterator[tuple[str, int]]:
    """The receiver on a thread of this process, on the demo database, as `serve-webhooks --demo` runs it."""
    port = free_port()
    demo = demo_workspace(env.demo_db)
    app = create_receiver_app(env.demo_db, secrets_from_configs(demo.configs), integrations_factory=demo.integration,
                              listen=("127.0.0.1", port), heartbeat_interval=0.1)
    with running_receiver(app, port=port) as url:
        yield url, port


def open_page(env: AppEnv, mode: str) -> AppTest:
    return run_page(env, PAGE, mode=mode)


def click(at: AppTest, key: str) -> AppTest:
    at.button(key=key).click().run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def metrics(at: AppTest) -> dict[str, str]:
    return {m.label: m.value for m in at.metric}


def source_rows(at: AppTest) -> list[dict[str, Any]]:
    frame = next(f for f in at.dataframe if "accepting" in f.value.columns).value
    return frame.to_dict("records")


def event_rows(at: AppTest) -> list[dict[str, Any]]:
    frame = next(f for f in at.dataframe if "event_id" in f.value.columns).value
    return frame[["source", "event_type", "verdict", "record_id"]].to_dict("records")


def successes(at: AppTest) -> list[str]:
    return [s.value for s in at.success if not s.value.startswith("Listening on")]


def status(path: Path) -> dict[str, Any]:
    with Store(path) as store:
        return receiver_status(store)


def stored(path: Path, source: str, source_id: str) -> dict[str, Any] | None:
    with Store(path) as store:
        return store.get_record(source, source_id)


# -- status --------------------------------------------------------------------------------------------------------


def test_a_stopped_receiver_shows_how_to_start_it(app_env: AppEnv, demo_vendors: Emulator):
    at = open_page(app_env, "demo")
    assert metrics(at) == {"Receiver": "Stopped", "Port": "—", "Events today": "0", "Rejected today": "0"}
    assert source_rows(at) == [
        {"source": name, "accepting": "—", "events today": 0, "last event": "—", "last type": "—",
         "last verdict": "—"}
        for name in ("Zendesk", "Intercom", "SurveyMonkey")
    ]
    assert [b.key for b in at.button if b.key.startswith("webhooks_")] == [
        "webhooks_start", "webhooks_refresh", "webhooks_register_zendesk", "webhooks_register_intercom",
        "webhooks_register_surveymonkey"]
    assert at.number_input(key="webhooks_port").value == 8787
    assert "Start the receiver to send it signed test events from the demo vendors." in [c.value for c in at.caption]
    assert "No event has arrived in this workspace yet." in [c.value for c in at.caption]
    # The address to register follows the chosen port until someone types their own.
    assert at.text_input(key="webhooks_public_address").value == "http://127.0.0.1:8787"
    at.number_input(key="webhooks_port").set_value(9123).run()
    assert at.text_input(key="webhooks_public_address").value == "http://127.0.0.1:9123"
    at.text_input(key="webhooks_public_address").input("https://mine.example.com").run()
    at.number_input(key="webhooks_port").set_value(9124).run()
    assert at.text_input(key="webhooks_public_address").value == "https://mine.example.com"


def test_a_running_receiver_shows_its_port_events_and_rejections(app_env: AppEnv, demo_vendors: Emulator):
    with demo_receiver(app_env) as (url, port):
        ticket_id = demo_vendors.newest_record_ids("zendesk")[0]
        assert demo_vendors.send_event("zendesk", "created", ticket_id, url=f"{url}/webhooks/zendesk").status_code == 200
        forged = httpx.post(f"{url}/webhooks/intercom", content=b'{"id": "notif_x"}',
                            headers={"X-Hub-Signature": "sha1=00"})
        assert forged.status_code == 401
        wait_for(lambda: status(app_env.demo_db)["rejected_today"] == 1)
        at = open_page(app_env, "demo")

        assert metrics(at) == {"Receiver": "Running", "Port": str(port), "Events today": "1", "Rejected today": "1"}
        rows = source_rows(at)
        assert [(r["source"], r["accepting"], r["events today"], r["last type"], r["last verdict"]) for r in rows] == [
            ("Zendesk", "yes", 1, "zen:event-type:ticket.created", "Stored"),
            ("Intercom", "yes", 0, "—", "—"),
            ("SurveyMonkey", "yes", 0, "—", "—"),
        ]
        assert event_rows(at) == [{"source": "Zendesk", "event_type": "zen:event-type:ticket.created",
                                   "verdict": "Stored", "record_id": ticket_id}]
        # It runs inside this very process, so the page offers no stop button that would signal it.
        assert "webhooks_stop" not in [b.key for b in at.button]
        assert [s.value for s in at.success][0].startswith(f"Listening on http://127.0.0.1:{port}/webhooks/")


# -- demo test events ------------------------------------------------------------------------------------------------


def test_test_events_arrive_and_land_in_the_store(app_env: AppEnv, demo_vendors: Emulator):
    with demo_receiver(app_env):
        at = open_page(app_env, "demo")
        expected = {source: demo_vendors.newest_record_ids(source)[0]
                    for source in ("zendesk", "intercom", "surveymonkey")}

        click(at, "webhooks_test_zendesk")
        assert successes(at) == [
            f"Sent a Zendesk `created` event about record {expected['zendesk']}: the receiver answered stored; the "
            "record is in the store. Open Explore to see it."]
        assert stored(app_env.demo_db, "zendesk", expected["zendesk"]) is not None

        click(at, "webhooks_test_intercom")
        assert stored(app_env.demo_db, "intercom", expected["intercom"]) is not None

        click(at, "webhooks_test_surveymonkey")
        assert successes(at) == [
            f"Sent a SurveyMonkey `response_completed` event about record {expected['surveymonkey']}: the receiver "
            "answered queued; SurveyMonkey events carry ids only, so the receiver is fetching the response now. Open "
            "Explore to see it."]
        wait_for(lambda: stored(app_env.demo_db, "surveymonkey", expected["surveymonkey"]))

        click(at, "webhooks_refresh")
        assert event_rows(at) == [
            {"source": "SurveyMonkey", "event_type": "response_completed", "verdict": "Queued",
             "record_id": expected["surveymonkey"]},
            {"source": "Intercom", "event_type": "conversation.user.created", "verdict": "Stored",
             "record_id": expected["intercom"]},
            {"source": "Zendesk", "event_type": "zen:event-type:ticket.created", "verdict": "Stored",
             "record_id": expected["zendesk"]},
        ]
        # The next test event picks a record the store does not have yet, so it shows up as new.
        click(at, "webhooks_test_zendesk")
        second = demo_vendors.newest_record_ids("zendesk")[1]
        assert stored(app_env.demo_db, "zendesk", second) is not None
        assert metrics(at)["Events today"] == "4"


def test_test_events_are_offered_only_in_the_demo(app_env: AppEnv, demo_vendors: Emulator):
    at = open_page(app_env, "real")
    assert not [b.key for b in at.button if b.key.startswith("webhooks_test_")]
    assert "Send a test event" not in [h.value for h in at.subheader]


# -- registering -----------------------------------------------------------------------------------------------------


def test_registering_in_the_demo_reaches_each_emulated_vendor(app_env: AppEnv, demo_vendors: Emulator):
    with demo_receiver(app_env) as (url, port):
        at = open_page(app_env, "demo")
        assert at.text_input(key="webhooks_public_address").value == f"http://127.0.0.1:{port}"

        click(at, "webhooks_register_zendesk")
        assert successes(at) == ["Zendesk will post ticket events to the receiver. The demo receiver already knows "
                                 "the emulator's signing secret."]
        click(at, "webhooks_register_surveymonkey")
        assert successes(at)[0].startswith("SurveyMonkey will announce completed, updated, disqualified and deleted "
                                           "responses of every survey to ")
        click(at, "webhooks_register_intercom")

        assert [(h["url"], h["events"]) for h in demo_vendors.registered_webhooks("zendesk")] == [
            (f"{url}/webhooks/zendesk", ["zen:event-type:ticket.created", "zen:event-type:ticket.comment_added",
                                        "zen:event-type:ticket.status_changed"])]
        # One SurveyMonkey webhook per event type, each for every survey.
        assert [(h["url"], h["events"], h["object_ids"]) for h in demo_vendors.registered_webhooks("surveymonkey")] == [
            (f"{url}/webhooks/surveymonkey", [event], demo_vendors.surveymonkey.survey_ids())
            for event in ("response_completed", "response_updated", "response_disqualified", "response_deleted")]
        assert [h["url"] for h in demo_vendors.registered_webhooks("intercom")] == [f"{url}/webhooks/intercom"]
        [steps] = [i.value for i in at.info if "Developer Hub" in i.value]
        assert "In the demo workspace the emulator has done this for you." in steps

        # Registered events now reach the receiver without naming its address.
        ticket_id = demo_vendors.newest_record_ids("zendesk")[0]
        assert demo_vendors.send_event("zendesk", "status_changed", ticket_id).json()["verdict"] == "stored"


def test_surveymonkey_registration_that_cannot_reach_the_address_says_to_use_a_tunnel(
    app_env: AppEnv, demo_vendors: Emulator
):
    at = open_page(app_env, "demo")
    at.text_input(key="webhooks_public_address").input(f"http://127.0.0.1:{free_port()}").run()
    click(at, "webhooks_register_surveymonkey")
    [error] = [e.value for e in at.error]
    assert error.startswith("**SurveyMonkey: ")
    assert "HEAD request" in error and "tunnel" in error
    assert demo_vendors.registered_webhooks("surveymonkey") == []


def test_registering_needs_an_address(app_env: AppEnv, demo_vendors: Emulator):
    at = open_page(app_env, "demo")
    at.text_input(key="webhooks_public_address").input("").run()
    click(at, "webhooks_register_zendesk")
    assert [w.value for w in at.warning] == ["Enter the receiver's public address first."]
    assert demo_vendors.registered_webhooks("zendesk") == []


def test_zendesk_registration_with_real_accounts_saves_the_secret_in_the_keyring(app_env: AppEnv, emulator_url: str):
    for field, value in (("subdomain", "demo"), ("email", DEMO_ZENDESK_EMAIL), ("api_token", DEMO_ZENDESK_TOKEN),
                         ("base_url", f"{emulator_url}/zendesk/demo")):
        app_env.keyring.set_password(SERVICE_NAME, f"zendesk.{field}", value)
    at = open_page(app_env, "real")
    assert at.text_input(key="webhooks_public_address").value == ""
    at.text_input(key="webhooks_public_address").input("http://127.0.0.1:8787").run()
    assert [w.value for w in at.warning][0].startswith("Vendors post from the internet and cannot reach this address")

    at.text_input(key="webhooks_public_address").input("https://hooks.example.com/").run()
    assert not at.warning
    click(at, "webhooks_register_zendesk")

    assert successes(at) == ["Zendesk will post ticket events to the receiver; its signing secret is saved in the "
                             "keyring."]
    assert app_env.keyring.get_password(SERVICE_NAME, "zendesk.webhook_secret") == DEMO_ZENDESK_WEBHOOK_SECRET
    assert not [s for s in visible_strings(at) if DEMO_ZENDESK_WEBHOOK_SECRET in s]


def test_registering_a_source_that_is_not_connected_points_to_connections(app_env: AppEnv):
    at = open_page(app_env, "real")
    at.text_input(key="webhooks_public_address").input("https://hooks.example.com").run()
    click(at, "webhooks_register_surveymonkey")
    assert [w.value for w in at.warning] == [
        "SurveyMonkey is not connected (missing access_token): add it on the Connections page first."]


# -- the receiver process ----------------------------------------------------------------------------------------


def test_start_and_stop_the_receiver_process(app_env: AppEnv, demo_vendors: Emulator):
    port = free_port()
    at = open_page(app_env, "demo")
    at.number_input(key="webhooks_port").set_value(port).run()
    click(at, "webhooks_start")
    try:
        assert successes(at) == [f"Receiver started on port {port}."]
        assert metrics(at)["Receiver"] == "Running" and metrics(at)["Port"] == str(port)
        with Store(app_env.demo_db) as store:
            pid = receiver_status(store)["heartbeat"]["pid"]
        assert pid != os.getpid()
        # The process runs the demo workspace: the emulator's signed events are accepted.
        ticket_id = demo_vendors.newest_record_ids("zendesk")[0]
        answer = demo_vendors.send_event("zendesk", "created", ticket_id, url=f"http://127.0.0.1:{port}/webhooks/zendesk")
        assert (answer.status_code, answer.json()["verdict"]) == (200, "stored")
        click(at, "webhooks_stop")
    except BaseException:
        with Store(app_env.demo_db) as store:
            beat = receiver_status(store)["heartbeat"]
        if beat and beat["pid"] != os.getpid():
            os.kill(beat["pid"], 15)
        raise
    assert successes(at) == ["Receiver stopped."]
    assert metrics(at)["Receiver"] == "Stopped"
    with Store(app_env.demo_db) as store:
        assert [(e["source"], e["record_id"]) for e in recent_events(store)] == [("zendesk", ticket_id)]
    assert "Webhook receiver stopped." in (app_env.demo_db.parent / "webhook-receiver.log").read_text()


def test_intercom_registration_shows_the_developer_hub_steps(app_env: AppEnv):
    app_env.keyring.set_password(SERVICE_NAME, "intercom.access_token", "ic-token-for-steps")
    at = open_page(app_env, "real")
    at.text_input(key="webhooks_public_address").input("https://hooks.example.com").run()
    click(at, "webhooks_register_intercom")
    [steps] = [i.value for i in at.info if "Developer Hub" in i.value]
    assert md_escape("2. Go to Configure → Webhooks and enter the endpoint URL: "
                     "https://hooks.example.com/webhooks/intercom") in steps
    assert md_escape("conversation.user.replied") in steps
    assert not successes(at) and not at.error


def test_a_receiver_that_cannot_start_says_why(app_env: AppEnv, demo_vendors: Emulator):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        at = open_page(app_env, "demo")
        at.number_input(key="webhooks_port").set_value(port).run()
        click(at, "webhooks_start")
    [error] = [e.value for e in at.error]
    assert error.startswith("The receiver stopped at once (exit code 1). Its last lines:")
    assert f"Could not listen on 127.0.0.1:{port} (is it already in use?)" in error
    assert metrics(at)["Receiver"] == "Stopped"
