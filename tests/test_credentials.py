"""Credential resolution (environment > .env > keyring), keyring safety and validation."""

from __future__ import annotations

import base64
import os
import traceback
from pathlib import Path

import keyring
import keyring.backend
import keyring.core
import keyring.errors
import pytest
from keyring.backends import chainer, fail, null

from feedback_sources.credentials import (
    SERVICE_NAME,
    SOURCE_FIELDS,
    CredentialStore,
    KEYRING_GUIDANCE,
    InMemoryKeyring,
    KeyringStatus,
    KeyringUnavailable,
)
from feedback_sources.sources.zendesk.config import normalize_subdomain as normalize_zendesk_subdomain

ZD_TOKEN = "canary-zd-7f3a91"
ZD_WEBHOOK = "canary-zdwh-5e12aa"
IC_TOKEN = "canary-ic-2b8e44"
SM_TOKEN = "canary-sm-91d0c7"
CANARIES = (ZD_TOKEN, ZD_WEBHOOK, IC_TOKEN, SM_TOKEN)


class PlaintextKeyring(keyring.backend.KeyringBackend):
    """Stands in for keyrings.alt's file backend: it would accept and keep secrets unencrypted."""

    priority = -20  # type: ignore[assignment]

    def __init__(self) -> None:
        super().__init__()
        self.written: dict[tuple[str, str], str] = {}

    def get_password(self, service: str, username: str) -> str | None:
        return self.written.get((service, username))

    def set_password(self, service: str, username: str, password: str) -> None:
        self.written[(service, username)] = password


class EchoingFailingKeyring(keyring.backend.KeyringBackend):
    """A backend whose errors quote the password, as careless backends do."""

    priority = -20  # type: ignore[assignment]

    def __init__(self, read_error: Exception | None = None) -> None:
        super().__init__()
        self.read_error = read_error

    def get_password(self, service: str, username: str) -> str | None:
        if self.read_error is not None:
            raise self.read_error
        return None

    def set_password(self, service: str, username: str, password: str) -> None:
        raise keyring.errors.PasswordSetError(f"could not store {password!r} for {username}")


@pytest.fixture
def memory() -> InMemoryKeyring:
    return InMemoryKeyring()


@pytest.fixture
def dotenv_file(tmp_path: Path) -> Path:
    return tmp_path / "settings.env"


def make_store(
    keyring_backend: keyring.backend.KeyringBackend,
    environ: dict[str, str] | None = None,
    dotenv_path: Path | None = None,
) -> CredentialStore:
    return CredentialStore(environ=environ or {}, dotenv_path=dotenv_path, keyring_backend=keyring_backend)


def test_source_fields_describe_every_field_and_env_var() -> None:
    described = {
        source: [(f.name, f.env_var, f.secret, f.required, f.choices) for f in fields]
        for source, fields in SOURCE_FIELDS.items()
    }
    assert described == {
        "zendesk": [
            ("subdomain", "ZENDESK_SUBDOMAIN", False, True, None),
            ("email", "ZENDESK_EMAIL", False, True, None),
            ("api_token", "ZENDESK_API_TOKEN", True, True, None),
            ("webhook_secret", "ZENDESK_WEBHOOK_SECRET", True, False, None),
            ("base_url", "ZENDESK_BASE_URL", False, False, None),
        ],
        "intercom": [
            ("access_token", "INTERCOM_ACCESS_TOKEN", True, True, None),
            ("region", "INTERCOM_REGION", False, False, ("us", "eu", "au")),
            ("client_secret", "INTERCOM_CLIENT_SECRET", True, False, None),
            ("base_url", "INTERCOM_BASE_URL", False, False, None),
        ],
        "surveymonkey": [
            ("access_token", "SURVEYMONKEY_ACCESS_TOKEN", True, True, None),
            ("client_id", "SURVEYMONKEY_CLIENT_ID", True, False, None),
            ("client_secret", "SURVEYMONKEY_CLIENT_SECRET", True, False, None),
            ("base_url", "SURVEYMONKEY_BASE_URL", False, False, None),
        ],
        "spreadsheet": [
            ("path", "SPREADSHEET_PATH", False, True, None),
            ("mapping", "SPREADSHEET_MAPPING", False, True, None),
            ("dataset", "SPREADSHEET_DATASET", False, False, None),
            ("encoding", "SPREADSHEET_ENCODING", False, False, ("auto", "utf-8", "utf-16", "cp1252", "latin-1")),
        ],
    }
    assert all(field.label and field.help for fields in SOURCE_FIELDS.values() for field in fields)


def test_environment_beats_dotenv_beats_keyring(memory: InMemoryKeyring, dotenv_file: Path) -> None:
    memory.set_password(SERVICE_NAME, "zendesk.api_token", "from-keyring")
    memory.set_password(SERVICE_NAME, "zendesk.subdomain", "keyring-co")
    memory.set_password(SERVICE_NAME, "zendesk.email", "kr@acme.example")
    dotenv_file.write_text("ZENDESK_API_TOKEN=from-dotenv\nZENDESK_SUBDOMAIN=dotenv-co\n")
    environ = {"ZENDESK_API_TOKEN": "from-env"}
    store = make_store(memory, environ, dotenv_file)

    assert store.get_config("zendesk") == {
        "subdomain": "dotenv-co",
        "email": "kr@acme.example",
        "api_token": "from-env",
    }
    assert store.field_origins("zendesk") == {
        "subdomain": ".env",
        "email": "keyring",
        "api_token": "environment",
        "webhook_secret": "missing",
        "base_url": "missing",
    }

    del environ["ZENDESK_API_TOKEN"]
    assert store.get_config("zendesk")["api_token"] == "from-dotenv"
    dotenv_file.write_text("")
    assert store.get_config("zendesk") == {
        "subdomain": "keyring-co",
        "email": "kr@acme.example",
        "api_token": "from-keyring",
    }
    assert set(store.field_origins("zendesk").values()) == {"keyring", "missing"}


def test_blank_values_do_not_shadow_lower_layers(memory: InMemoryKeyring, dotenv_file: Path) -> None:
    memory.set_password(SERVICE_NAME, "intercom.access_token", IC_TOKEN)
    dotenv_file.write_text("INTERCOM_ACCESS_TOKEN=\nINTERCOM_REGION\n")
    store = make_store(memory, {"INTERCOM_ACCESS_TOKEN": "   "}, dotenv_file)
    assert store.field_origins("intercom") == {
        "access_token": "keyring",
        "region": "missing",
        "client_secret": "missing",
        "base_url": "missing",
    }
    assert store.get_config("intercom") == {"access_token": IC_TOKEN, "region": "us"}


def test_values_are_stripped_and_normalized_on_read(memory: InMemoryKeyring) -> None:
    environ = {
        "ZENDESK_SUBDOMAIN": " https://Acme.zendesk.com/ ",
        "ZENDESK_EMAIL": "pm@acme.example/token",
        "ZENDESK_API_TOKEN": f"  {ZD_TOKEN}\n",
        "ZENDESK_BASE_URL": "http://127.0.0.1:8765/zendesk/acme/",
        "INTERCOM_ACCESS_TOKEN": IC_TOKEN,
        "INTERCOM_REGION": " EU ",
    }
    store = make_store(memory, environ)
    assert store.get_config("zendesk") == {
        "subdomain": "acme",
        "email": "pm@acme.example",
        "api_token": ZD_TOKEN,
        "base_url": "http://127.0.0.1:8765/zendesk/acme",
    }
    assert store.get_config("intercom") == {"access_token": IC_TOKEN, "region": "eu"}


def test_invalid_value_from_environment_names_field_and_variable(memory: InMemoryKeyring) -> None:
    store = make_store(memory, {"INTERCOM_ACCESS_TOKEN": IC_TOKEN, "INTERCOM_REGION": "mars"})
    with pytest.raises(ValueError, match=r"region: 'mars' is not one of us, eu, au.*INTERCOM_REGION"):
        store.get_config("intercom")


def test_malformed_secret_error_never_quotes_it(memory: InMemoryKeyring, dotenv_file: Path) -> None:
    dotenv_file.write_text(f'SURVEYMONKEY_ACCESS_TOKEN="{SM_TOKEN} pasted twice {SM_TOKEN}"\n')
    store = make_store(memory, {}, dotenv_file)
    with pytest.raises(ValueError) as caught:
        store.get_config("surveymonkey")
    message = str(caught.value)
    assert "access_token" in message and "SURVEYMONKEY_ACCESS_TOKEN in .env" in message
    assert SM_TOKEN not in message
    with pytest.raises(ValueError) as caught_on_set:
        store.set("surveymonkey", {"access_token": f"Bearer {SM_TOKEN}"})
    assert SM_TOKEN not in str(caught_on_set.value)
    assert memory._passwords == {}


def test_missing_required_and_is_configured(memory: InMemoryKeyring) -> None:
    store = make_store(memory, {"ZENDESK_EMAIL": "pm@acme.example", "ZENDESK_WEBHOOK_SECRET": ZD_WEBHOOK})
    assert store.missing_required("zendesk") == ["subdomain", "api_token"]
    assert store.missing_required("intercom") == ["access_token"]
    assert store.missing_required("surveymonkey") == ["access_token"]
    assert not store.is_configured("zendesk")

    store.set("zendesk", {"subdomain": "acme", "api_token": ZD_TOKEN})
    assert store.missing_required("zendesk") == []
    assert store.is_configured("zendesk")
    assert not store.is_configured("intercom")


def test_unknown_source_is_rejected(memory: InMemoryKeyring) -> None:
    store = make_store(memory)
    with pytest.raises(ValueError, match="unknown source 'jira'; expected one of zendesk, intercom, surveymonkey"):
        store.get_config("jira")


def test_set_and_delete_round_trip(memory: InMemoryKeyring) -> None:
    store = make_store(memory)
    store.set(
        "zendesk",
        {
            "subdomain": "acme.zendesk.com",
            "email": " pm@acme.example ",
            "api_token": f" {ZD_TOKEN} ",
            "webhook_secret": "",
        },
    )
    store.set("intercom", {"access_token": IC_TOKEN, "region": "AU"})
    assert memory._passwords == {
        (SERVICE_NAME, "zendesk.subdomain"): "acme",
        (SERVICE_NAME, "zendesk.email"): "pm@acme.example",
        (SERVICE_NAME, "zendesk.api_token"): ZD_TOKEN,
        (SERVICE_NAME, "intercom.access_token"): IC_TOKEN,
        (SERVICE_NAME, "intercom.region"): "au",
    }
    assert store.get_config("zendesk") == {"subdomain": "acme", "email": "pm@acme.example", "api_token": ZD_TOKEN}

    store.delete("zendesk", ["api_token", "webhook_secret"])  # webhook_secret was never stored: ignored
    assert store.get_config("zendesk") == {"subdomain": "acme", "email": "pm@acme.example"}
    assert store.missing_required("zendesk") == ["api_token"]

    store.delete("zendesk")
    store.delete("zendesk")
    assert memory._passwords == {
        (SERVICE_NAME, "intercom.access_token"): IC_TOKEN,
        (SERVICE_NAME, "intercom.region"): "au",
    }


def test_set_rejects_unknown_fields_and_bad_choices_before_writing(memory: InMemoryKeyring) -> None:
    store = make_store(memory)
    with pytest.raises(ValueError, match=r"^api_key: not a intercom field; expected one of access_token, region"):
        store.set("intercom", {"access_token": IC_TOKEN, "api_key": "x"})
    with pytest.raises(ValueError, match=r"^region: 'mars' is not one of us, eu, au"):
        store.set("intercom", {"access_token": IC_TOKEN, "region": "mars"})
    with pytest.raises(ValueError, match=r"^base_url: 'ftp://example.test' must be an http"):
        store.set("intercom", {"base_url": "ftp://example.test"})
    with pytest.raises(ValueError, match=r"^email: 'not-an-email' is not an email address"):
        store.set("zendesk", {"email": "not-an-email"})
    with pytest.raises(ValueError, match=r"^tokens: not a zendesk field"):
        store.delete("zendesk", ["tokens"])
    assert memory._passwords == {}


@pytest.mark.parametrize(
    "given",
    ["acme", "  acme  ", "ACME", "acme.zendesk.com", "https://acme.zendesk.com/", "http://acme.zendesk.com", "acme/"],
)
def test_zendesk_subdomain_forms_normalize_to_the_bare_name(given: str) -> None:
    assert normalize_zendesk_subdomain(given) == "acme"


@pytest.mark.parametrize(
    "given",
    [
        "",
        "acme.example.com",
        "https://acme.zendesk.com/agent",
        "acme co",
        "acme_co",
        "-acme",
        "acme-",
        "ac?me",
        "a" * 64,
    ],
)
def test_zendesk_subdomain_rejects_anything_else_with_guidance(given: str, memory: InMemoryKeyring) -> None:
    with pytest.raises(ValueError, match=r"^subdomain: .* e\.g\. \"acme\" for https://acme\.zendesk\.com"):
        normalize_zendesk_subdomain(given)
    with pytest.raises(ValueError, match="^subdomain: "):
        make_store(memory).set("zendesk", {"subdomain": given or "?"})
    assert memory._passwords == {}


def test_secret_values_lists_every_resolved_secret_and_the_basic_auth_form(
    memory: InMemoryKeyring, dotenv_file: Path
) -> None:
    memory.set_password(SERVICE_NAME, "intercom.access_token", IC_TOKEN)
    memory.set_password(SERVICE_NAME, "zendesk.subdomain", "acme")
    dotenv_file.write_text(f"SURVEYMONKEY_ACCESS_TOKEN={SM_TOKEN}\nZENDESK_WEBHOOK_SECRET={ZD_WEBHOOK}\n")
    environ = {"ZENDESK_API_TOKEN": ZD_TOKEN, "ZENDESK_EMAIL": "pm@acme.example"}
    store = make_store(memory, environ, dotenv_file)
    basic = base64.b64encode(f"pm@acme.example/token:{ZD_TOKEN}".encode()).decode()
    assert store.secret_values() == sorted([ZD_TOKEN, ZD_WEBHOOK, IC_TOKEN, SM_TOKEN, basic])


def test_reprs_never_show_secrets(memory: InMemoryKeyring) -> None:
    store = make_store(memory, {"ZENDESK_API_TOKEN": ZD_TOKEN, "ZENDESK_SUBDOMAIN": "acme"})
    store.set("intercom", {"access_token": IC_TOKEN})
    config = store.get_config("zendesk")
    assert config == {"subdomain": "acme", "api_token": ZD_TOKEN}
    assert repr(config) == "{'subdomain': 'acme', 'api_token': '***'}"
    shown = " ".join([repr(config), str(config), f"{config}", repr(store), repr(memory), repr(store.keyring_status())])
    shown += repr(SOURCE_FIELDS) + repr(store.field_origins("zendesk")) + repr(store.get_config("intercom"))
    assert not any(canary in shown for canary in CANARIES)


def test_in_memory_status_is_usable(memory: InMemoryKeyring) -> None:
    status = make_store(memory).keyring_status()
    assert status == KeyringStatus(
        usable=True,
        backend="feedback_sources.credentials.InMemoryKeyring",
        message="In-memory keyring: stored values last until the app stops.",
    )


def test_in_memory_keyring_is_never_picked_by_automatic_detection() -> None:
    assert InMemoryKeyring.priority < fail.Keyring.priority
    assert InMemoryKeyring.priority < null.Keyring.priority


@pytest.fixture
def isolated_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Point every place a file keyring could write to into tmp_path, and work from there."""
    home = tmp_path / "home"
    home.mkdir()
    for variable in ("HOME", "XDG_DATA_HOME", "XDG_CONFIG_HOME", "XDG_CACHE_HOME", "APPDATA", "LOCALAPPDATA"):
        monkeypatch.setenv(variable, str(home))
    monkeypatch.chdir(tmp_path)
    return tmp_path


def files_containing(root: Path, needle: str) -> list[Path]:
    return [path for path in root.rglob("*") if path.is_file() and needle.encode() in path.read_bytes()]


def test_fail_backend_refuses_to_store_with_actionable_message(
    isolated_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The default path: no backend passed, keyring's global backend is the fail one (headless Linux without D-Bus).
    monkeypatch.setattr(keyring.core, "_keyring_backend", fail.Keyring())
    store = CredentialStore(environ={"INTERCOM_ACCESS_TOKEN": IC_TOKEN})

    with pytest.raises(KeyringUnavailable) as caught:
        store.set("zendesk", {"subdomain": "acme", "email": "pm@acme.example", "api_token": ZD_TOKEN})
    message = str(caught.value)
    assert message.startswith("No system keyring is available (backend keyring.backends.fail.Keyring).")
    for guidance in ("gnome-keyring", "Keychain", "Credential Locker", "environment variables", ".env"):
        assert guidance in message
    assert ZD_TOKEN not in message
    assert files_containing(isolated_home, ZD_TOKEN) == []

    status = store.keyring_status()
    assert status == KeyringStatus(usable=False, backend="keyring.backends.fail.Keyring", message=message)
    # Reading still works from the environment, and the unusable keyring simply contributes nothing.
    assert store.get_config("intercom") == {"access_token": IC_TOKEN, "region": "us"}
    assert store.field_origins("zendesk")["api_token"] == "missing"
    with pytest.raises(KeyringUnavailable):
        store.delete("zendesk")


def test_null_backend_is_reported_unusable() -> None:
    store = make_store(null.Keyring(), {"SURVEYMONKEY_ACCESS_TOKEN": SM_TOKEN})
    status = store.keyring_status()
    assert (status.usable, status.backend) == (False, "keyring.backends.null.Keyring")
    assert status.message.startswith("The keyring is disabled (backend keyring.backends.null.Keyring)")
    assert "environment variables" in status.message
    assert store.get_config("surveymonkey") == {"access_token": SM_TOKEN}
    with pytest.raises(KeyringUnavailable, match="The keyring is disabled"):
        store.set("surveymonkey", {"access_token": SM_TOKEN})


def test_plaintext_backend_is_never_used(isolated_home: Path) -> None:
    plaintext = PlaintextKeyring()
    plaintext.written[(SERVICE_NAME, "intercom.access_token")] = "left-over-plaintext"
    store = make_store(plaintext)
    with pytest.raises(KeyringUnavailable, match="does not encrypt secrets"):
        store.set("intercom", {"access_token": IC_TOKEN})
    assert plaintext.written == {(SERVICE_NAME, "intercom.access_token"): "left-over-plaintext"}
    assert store.field_origins("intercom")["access_token"] == "missing"
    assert store.keyring_status().usable is False
    assert files_containing(isolated_home, IC_TOKEN) == []


def test_chainer_is_usable_only_when_every_chained_backend_is(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(chainer.ChainerBackend, "backends", [])
    empty = make_store(chainer.ChainerBackend()).keyring_status()
    assert (empty.usable, empty.backend) == (False, "keyring.backends.chainer.ChainerBackend")
    assert "nothing to chain" in empty.message

    plaintext = PlaintextKeyring()
    monkeypatch.setattr(chainer.ChainerBackend, "backends", [InMemoryKeyring(), plaintext])
    store = make_store(chainer.ChainerBackend())
    assert store.keyring_status().usable is False
    with pytest.raises(KeyringUnavailable):
        store.set("intercom", {"access_token": IC_TOKEN})
    assert plaintext.written == {}

    inner = InMemoryKeyring()
    monkeypatch.setattr(chainer.ChainerBackend, "backends", [inner])
    store = make_store(chainer.ChainerBackend())
    assert store.keyring_status().usable is True
    store.set("intercom", {"access_token": IC_TOKEN})
    assert inner._passwords == {(SERVICE_NAME, "intercom.access_token"): IC_TOKEN}


def test_backend_error_on_write_never_echoes_the_secret() -> None:
    store = make_store(EchoingFailingKeyring(), {"ZENDESK_WEBHOOK_SECRET": ZD_WEBHOOK})
    with pytest.raises(KeyringUnavailable) as caught:
        store.set("surveymonkey", {"access_token": SM_TOKEN})
    error = caught.value
    assert str(error).startswith(
        "The keyring failed: PasswordSetError: could not store '***' for surveymonkey.access_token"
    )
    assert error.__cause__ is None and error.__context__ is None
    rendered = "".join(traceback.format_exception(error)) + repr(error)
    assert SM_TOKEN not in rendered
    status = store.keyring_status()
    assert status.usable is False and SM_TOKEN not in status.message


def test_locked_keyring_reads_nothing_and_says_so(caplog: pytest.LogCaptureFixture) -> None:
    locked = EchoingFailingKeyring(read_error=keyring.errors.KeyringLocked("Failed to unlock the collection!"))
    store = make_store(locked, {"INTERCOM_ACCESS_TOKEN": IC_TOKEN})
    assert store.get_config("intercom") == {"access_token": IC_TOKEN, "region": "us"}
    assert store.get_config("zendesk") == {}
    status = store.keyring_status()
    assert status.usable is False
    assert "locked" in status.message and "unlock it" in status.message
    # One warning for the failure, not one per field read.
    assert [(r.levelname, r.getMessage()) for r in caplog.records] == [
        ("WARNING", f"The keyring failed: the keyring is locked (Failed to unlock the collection!); unlock it and "
         f"try again. {KEYRING_GUIDANCE}")
    ]


def test_dotenv_defaults_to_cwd_and_never_touches_os_environ(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, memory: InMemoryKeyring
) -> None:
    monkeypatch.chdir(tmp_path)
    for field in SOURCE_FIELDS["zendesk"]:
        monkeypatch.delenv(field.env_var, raising=False)
    (tmp_path / ".env").write_text(
        f"ZENDESK_API_TOKEN={ZD_TOKEN}\nZENDESK_SUBDOMAIN=acme\nZENDESK_EMAIL=pm@acme.example\n"
    )
    before = dict(os.environ)
    store = CredentialStore(keyring_backend=memory)
    assert store.get_config("zendesk") == {"subdomain": "acme", "email": "pm@acme.example", "api_token": ZD_TOKEN}
    assert store.field_origins("zendesk")["api_token"] == ".env"
    assert dict(os.environ) == before

    assert CredentialStore(environ={}, dotenv_path=None, keyring_backend=memory).get_config("zendesk") == {}


def test_dotenv_values_are_used_verbatim(memory: InMemoryKeyring, dotenv_file: Path) -> None:
    dotenv_file.write_text("INTERCOM_ACCESS_TOKEN='tok$HOME${HOME}x'\n")
    assert make_store(memory, {}, dotenv_file).get_config("intercom")["access_token"] == "tok$HOME${HOME}x"
