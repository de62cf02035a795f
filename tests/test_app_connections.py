"""Connections page (AppTest): origins without values, saving to the keyring, deleting, diagnosing a connection."""

from __future__ import annotations

import keyring
import pytest
from app_fixtures import (
    AppEnv,
    app_env,  # noqa: F401  (fixture)
    emulator_url,  # noqa: F401  (fixture)
    run_page,
    visible_strings,
)
from keyring.backends import fail
from streamlit.proto.TextInput_pb2 import TextInput as TextInputProto
from streamlit.testing.v1 import AppTest

from feedback_sources.credentials import KEYRING_GUIDANCE, SERVICE_NAME, SOURCE_FIELDS
from feedback_sources.emulator import DEMO_ZENDESK_EMAIL, DEMO_ZENDESK_TOKEN

CONNECTIONS = "app_pages/connections.py"
CANARY = "canary-zd-connections-5c1f"


TAB_LABELS = {"zendesk": "Zendesk", "intercom": "Intercom", "surveymonkey": "SurveyMonkey"}


def origins(at: AppTest, source: str) -> dict[str, str]:
    tab = next(t for t in at.tabs if t.label == TAB_LABELS[source])
    frame = tab.dataframe[0].value
    return dict(zip(frame["variable"], frame["comes from"]))


def stored(env: AppEnv, source: str, field: str) -> str | None:
    return env.keyring.get_password(SERVICE_NAME, f"{source}.{field}")


def press_test(at: AppTest, source: str) -> AppTest:
    return at.button(key=f"FormSubmitter:form_{source}-Test connection").click().run()


def fill_zendesk(at: AppTest, **values: str) -> AppTest:
    for name, value in values.items():
        at.text_input(key=f"field_zendesk_{name}").input(value)
    return at.button(key="FormSubmitter:form_zendesk-Save to keyring").click().run()


def test_origins_are_shown_never_the_values(app_env: AppEnv, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ZENDESK_SUBDOMAIN", "acme")
    app_env.keyring.set_password(SERVICE_NAME, "zendesk.api_token", CANARY)
    at = run_page(app_env, CONNECTIONS)
    assert origins(at, "zendesk") == {
        "ZENDESK_SUBDOMAIN": "environment variable",
        "ZENDESK_EMAIL": "missing",
        "ZENDESK_API_TOKEN": "keyring",
        "ZENDESK_WEBHOOK_SECRET": "missing",
        "ZENDESK_BASE_URL": "missing",
    }
    assert [w.value for w in at.warning if "Not connected" in w.value][0] == "Not connected: missing agent email."
    assert not [s for s in visible_strings(at) if CANARY in s or s == "acme"]


def test_every_secret_field_is_a_password_input(app_env: AppEnv) -> None:
    at = run_page(app_env, CONNECTIONS)
    kinds = {t.key: t.proto.type for t in at.text_input}
    for source, specs in SOURCE_FIELDS.items():
        for spec in specs:
            if spec.choices:
                continue
            expected = TextInputProto.PASSWORD if spec.secret else TextInputProto.DEFAULT
            assert kinds[f"field_{source}_{spec.name}"] == expected, (source, spec.name)


def test_saving_stores_in_the_keyring_and_clears_the_form(app_env: AppEnv) -> None:
    at = run_page(app_env, CONNECTIONS)
    at = fill_zendesk(at, subdomain="https://Acme.zendesk.com/", email="pm@acme.example", api_token=CANARY)
    assert not at.exception
    assert [s.value for s in at.success if s.value.startswith("Saved")] == [
        "Saved to the keyring: api_token, email, subdomain."
    ]
    assert (stored(app_env, "zendesk", "subdomain"), stored(app_env, "zendesk", "email"),
            stored(app_env, "zendesk", "api_token")) == ("acme", "pm@acme.example", CANARY)
    assert origins(at, "zendesk")["ZENDESK_API_TOKEN"] == "keyring"
    assert [t.value for t in at.text_input if t.key.startswith("field_zendesk_")] == ["", "", "", "", ""]
    assert not [s for s in visible_strings(at) if CANARY in s]
    assert not [k for k, v in at.session_state.items() if CANARY in str(v)]
    assert at.radio(key="workspace_mode").value == "demo"  # saving never switches workspaces by itself


def test_invalid_value_is_explained_and_nothing_is_stored(app_env: AppEnv) -> None:
    at = run_page(app_env, CONNECTIONS)
    at = fill_zendesk(at, subdomain="acme corp", api_token=CANARY)
    assert [e.value.replace("\\", "") for e in at.error] == [
        "**Invalid value**: subdomain: 'acme corp' is not a Zendesk subdomain. Enter the part before .zendesk.com, "
        'e.g. "acme" for https://acme.zendesk.com (letters, digits and hyphens only).'
    ]
    assert stored(app_env, "zendesk", "api_token") is None
    assert stored(app_env, "zendesk", "subdomain") is None


def test_intercom_region_selector_saves_the_region(app_env: AppEnv) -> None:
    at = run_page(app_env, CONNECTIONS)
    region = at.selectbox(key="field_intercom_region")
    assert (region.options, region.value) == (["us", "eu", "au"], "us")
    region.set_value("eu")
    at.text_input(key="field_intercom_access_token").input(CANARY)
    at.button(key="FormSubmitter:form_intercom-Save to keyring").click().run()
    assert (stored(app_env, "intercom", "region"), stored(app_env, "intercom", "access_token")) == ("eu", CANARY)
    assert origins(at, "intercom")["INTERCOM_REGION"] == "keyring"
    assert at.selectbox(key="field_intercom_region").value == "eu"


def test_delete_removes_the_saved_values(app_env: AppEnv) -> None:
    for field, value in (("subdomain", "acme"), ("email", "pm@acme.example"), ("api_token", CANARY)):
        app_env.keyring.set_password(SERVICE_NAME, f"zendesk.{field}", value)
    at = run_page(app_env, CONNECTIONS)
    assert origins(at, "zendesk")["ZENDESK_API_TOKEN"] == "keyring"
    at.button(key="delete_zendesk").click().run()
    assert [s.value for s in at.success if s.value.startswith("Removed")] == [
        "Removed the saved Zendesk credentials from the keyring."
    ]
    assert [stored(app_env, "zendesk", f) for f in ("subdomain", "email", "api_token")] == [None, None, None]
    assert set(origins(at, "zendesk").values()) == {"missing"}


def test_unusable_keyring_offers_environment_or_a_confirmed_owner_only_dotenv(app_env: AppEnv) -> None:
    keyring.set_keyring(fail.Keyring())
    at = run_page(app_env, CONNECTIONS)
    assert any(w.value.startswith("**Keyring unavailable**") for w in at.warning)
    choices = [m.value.replace("\\", "") for m in at.markdown if "Environment variables" in m.value]
    assert len(choices) == 1
    assert "ZENDESK_API_TOKEN" in choices[0] and "readable only by your user (permissions 0600)" in choices[0]
    dotenv = app_env.root / ".env"

    # Without the confirmation nothing is written anywhere, and what was typed stays to be corrected.
    for name, value in (("subdomain", "acme"), ("email", "pm@acme.example"), ("api_token", CANARY)):
        at.text_input(key=f"field_zendesk_{name}").input(value)
    at = at.button(key="FormSubmitter:form_zendesk-Save to .env file").click().run()
    assert [w.value for w in at.warning if w.value.startswith("Nothing written")] == [
        "Nothing written: tick the box to confirm that the values may go to the .env file."
    ]
    assert not dotenv.exists()
    written = [p for p in app_env.root.rglob("*") if p.is_file() and CANARY.encode() in p.read_bytes()]
    assert written == []

    at.checkbox(key="connections_dotenv_consent_zendesk").check()
    at = at.button(key="FormSubmitter:form_zendesk-Save to .env file").click().run()
    assert not at.exception
    assert [s.value.replace("\\", "") for s in at.success if s.value.startswith("Saved")] == [
        f"Saved to {dotenv} (readable only by you): api_token, email, subdomain."
    ]
    assert dotenv.stat().st_mode & 0o777 == 0o600
    assert dotenv.read_text() == (
        "ZENDESK_SUBDOMAIN='acme'\nZENDESK_EMAIL='pm@acme.example'\n" f"ZENDESK_API_TOKEN='{CANARY}'\n"
    )
    assert origins(at, "zendesk") == {
        "ZENDESK_SUBDOMAIN": ".env file", "ZENDESK_EMAIL": ".env file", "ZENDESK_API_TOKEN": ".env file",
        "ZENDESK_WEBHOOK_SECRET": "missing", "ZENDESK_BASE_URL": "missing",
    }
    assert [t.value for t in at.text_input if t.key.startswith("field_zendesk_")] == ["", "", "", "", ""]
    assert not [s for s in visible_strings(at) if CANARY in s]


def diagnosis(at: AppTest) -> tuple[list[str], list[str], list[str]]:
    return ([s.value for s in at.success if s.value.startswith("Connected")], [e.value for e in at.error],
            [i.value for i in at.info if i.value.startswith("What to do")])


def configure_zendesk(monkeypatch: pytest.MonkeyPatch, url: str, subdomain: str, token: str) -> None:
    monkeypatch.setenv("ZENDESK_SUBDOMAIN", subdomain)
    monkeypatch.setenv("ZENDESK_EMAIL", DEMO_ZENDESK_EMAIL)
    monkeypatch.setenv("ZENDESK_API_TOKEN", token)
    monkeypatch.setenv("ZENDESK_BASE_URL", f"{url}/zendesk/{{subdomain}}")


def test_good_credentials_connect(app_env: AppEnv, emulator_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    configure_zendesk(monkeypatch, emulator_url, "demo", DEMO_ZENDESK_TOKEN)
    at = run_page(app_env, CONNECTIONS)
    press_test(at, "zendesk")
    assert diagnosis(at) == (
        ["Connected to Zendesk Support as pm@demo\\.example \\(admin\\) on demo"], [], []
    )


@pytest.mark.parametrize(
    "subdomain, token, title, hint",
    [
        ("demo", CANARY, "Bad token or email", "Check the email of the Zendesk user and the API token"),
        ("nope", DEMO_ZENDESK_TOKEN, "Wrong subdomain", "Check the subdomain"),
    ],
)
def test_bad_connection_shows_the_diagnosis_and_what_to_do(
    app_env: AppEnv, emulator_url: str, monkeypatch: pytest.MonkeyPatch, subdomain: str, token: str, title: str,
    hint: str,
) -> None:
    configure_zendesk(monkeypatch, emulator_url, subdomain, token)
    at = run_page(app_env, CONNECTIONS)
    press_test(at, "zendesk")
    connected, errors, hints = diagnosis(at)
    assert connected == []
    assert len(errors) == 1 and errors[0].startswith(f"**{title}**: ")
    assert len(hints) == 1 and hints[0].replace("\\", "").startswith(f"What to do: {hint}")
    assert not [s for s in visible_strings(at) if CANARY in s]


def test_unconfigured_source_says_what_is_missing(app_env: AppEnv) -> None:
    at = run_page(app_env, CONNECTIONS)
    press_test(at, "surveymonkey")
    _, errors, hints = diagnosis(at)
    assert [e.replace("\\", "") for e in errors] == [
        "**Not configured**: surveymonkey: missing required configuration: access_token"
    ]
    assert [h.replace("\\", "") for h in hints] == [
        "What to do: Fill in the missing fields on the Connections page or in the environment."
    ]


def test_test_connection_uses_the_typed_unsaved_values(
    app_env: AppEnv, emulator_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Saved: a working configuration. Typed over it, not saved: a wrong token.
    for field, value in (("subdomain", "demo"), ("email", DEMO_ZENDESK_EMAIL), ("api_token", DEMO_ZENDESK_TOKEN),
                         ("base_url", f"{emulator_url}/zendesk/{{subdomain}}")):
        app_env.keyring.set_password(SERVICE_NAME, f"zendesk.{field}", value)
    at = run_page(app_env, CONNECTIONS)
    at.text_input(key="field_zendesk_api_token").input(CANARY)
    at = press_test(at, "zendesk")
    connected, errors, _ = diagnosis(at)
    assert connected == [] and len(errors) == 1 and errors[0].startswith("**Bad token or email**: ")
    assert "Tested the values typed above (not saved)." in [c.value for c in at.caption]
    assert stored(app_env, "zendesk", "api_token") == DEMO_ZENDESK_TOKEN  # testing never saves
    assert at.text_input(key="field_zendesk_api_token").value == CANARY  # still there to be saved or corrected

    # Emptied again: the saved values are tested, and they work.
    at.text_input(key="field_zendesk_api_token").input("")
    at = press_test(at, "zendesk")
    assert diagnosis(at)[0] == ["Connected to Zendesk Support as pm@demo\\.example \\(admin\\) on demo"]
    assert "Tested the saved values." in [c.value for c in at.caption]


def test_network_error_names_the_host_that_was_tried(app_env: AppEnv) -> None:
    from helpers import free_port

    port = free_port()
    at = run_page(app_env, CONNECTIONS)
    at.text_input(key="field_intercom_access_token").input(CANARY)
    at.text_input(key="field_intercom_base_url").input(f"http://127.0.0.1:{port}")
    at = press_test(at, "intercom")
    _, errors, hints = diagnosis(at)
    assert len(errors) == 1
    assert errors[0].replace("\\", "").startswith(f"**Network problem**: intercom: could not reach 127.0.0.1:{port} ")
    assert hints == ["What to do: Check your internet connection, proxy or VPN\\."]
    assert stored(app_env, "intercom", "access_token") is None
